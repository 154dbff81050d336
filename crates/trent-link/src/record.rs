//! The record every feed is reduced to before linkage, and its CSV form.
//!
//! Linkage sees only identity: where a record came from, its id there, and the six
//! demographic fields the NHS uses to trace a person (NHS number, given name, family
//! name, date of birth, sex, postcode). Everything else stays in the feed. All
//! identity fields are optional because real feeds omit them (social care rarely has
//! an NHS number).
//!
//! The CSV reader is strict: a malformed date or sex code is an error naming the file,
//! line and field, never a silently blank value. Values that are present but *invalid*
//! as identifiers (a bad NHS check digit, a postcode that is not a UK postcode) are not
//! errors — they are counted by the normaliser (see [`crate::normalise`]) and treated
//! as missing, because that is what they are for matching.

use std::fmt;
use std::io::{BufRead, Write};
use std::path::Path;

use crate::LinkError;

/// A calendar date of birth (proleptic Gregorian).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    /// Year, e.g. 1957.
    pub year: i32,
    /// Month 1–12.
    pub month: u8,
    /// Day 1–31.
    pub day: u8,
}

fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

/// Days in a month of a year (0 for a month outside 1–12).
pub fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

impl Date {
    /// A checked date: `None` when the day does not exist in that month.
    pub fn new(year: i32, month: u8, day: u8) -> Option<Date> {
        (day >= 1 && day <= days_in_month(year, month)).then_some(Date { year, month, day })
    }

    /// Days since 1970-01-01 (negative before).
    pub fn to_days(self) -> i32 {
        // Howard Hinnant's days_from_civil algorithm.
        let y = self.year - i32::from(self.month <= 2);
        let era = if y >= 0 { y } else { y - 399 } / 400;
        let yoe = y - era * 400;
        let m = i32::from(self.month);
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i32::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// The date `days` after 1970-01-01.
    pub fn from_days(days: i32) -> Date {
        let z = days + 719_468;
        let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let y = yoe + era * 400;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
        let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
        Date {
            year: y + i32::from(m <= 2),
            month: m,
            day: d,
        }
    }

    /// Parse `YYYY-MM-DD`.
    pub fn parse(s: &str) -> Result<Date, String> {
        let parts: Vec<&str> = s.trim().split('-').collect();
        if parts.len() != 3 || parts[0].len() != 4 || parts[1].len() != 2 || parts[2].len() != 2 {
            return Err(format!("expected a date as YYYY-MM-DD, found {s:?}"));
        }
        let num = |p: &str| p.parse::<i32>().map_err(|_| format!("not a date: {s:?}"));
        let (y, m, d) = (num(parts[0])?, num(parts[1])?, num(parts[2])?);
        if !(1..=12).contains(&m) {
            return Err(format!("month {m} out of range in {s:?}"));
        }
        Date::new(y, m as u8, d as u8)
            .filter(|_| (1..=31).contains(&d))
            .ok_or_else(|| format!("day {d} does not exist in {y}-{m:02}"))
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// Sex as recorded (NHS Data Dictionary "person stated gender" codes 1 and 2; codes 0
/// "not known" and 9 "not specified" are read as missing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sex {
    /// Male (code 1, `M`).
    Male,
    /// Female (code 2, `F`).
    Female,
}

impl Sex {
    /// Parse a sex code; `Ok(None)` for the "unknown" codes and blank.
    pub fn parse(s: &str) -> Result<Option<Sex>, String> {
        match s.trim().to_ascii_uppercase().as_str() {
            "M" | "MALE" | "1" => Ok(Some(Sex::Male)),
            "F" | "FEMALE" | "2" => Ok(Some(Sex::Female)),
            "" | "U" | "UNKNOWN" | "0" | "9" | "X" => Ok(None),
            _ => Err(format!(
                "expected a sex code M/F/1/2 (or U/0/9 for unknown), found {s:?}"
            )),
        }
    }

    /// The one-letter code written to CSV.
    pub fn code(self) -> &'static str {
        match self {
            Sex::Male => "M",
            Sex::Female => "F",
        }
    }
}

/// One record from one feed, reduced to the identity fields linkage uses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LinkRecord {
    /// The feed the record came from (e.g. `gp`, `hospital`, `social_care`).
    pub source: String,
    /// The record's id within its source; (source, record_id) must be unique.
    pub record_id: String,
    /// NHS number as given (may be invalid; validated by the normaliser).
    pub nhs_number: Option<String>,
    /// Given (first) name as given.
    pub given_name: Option<String>,
    /// Family name (surname) as given.
    pub family_name: Option<String>,
    /// Date of birth.
    pub birth_date: Option<Date>,
    /// Sex.
    pub sex: Option<Sex>,
    /// Postcode as given.
    pub postcode: Option<String>,
}

/// The CSV header [`read_csv`] expects and [`write_csv`] writes.
pub const CSV_HEADER: [&str; 8] = [
    "source",
    "record_id",
    "nhs_number",
    "given_name",
    "family_name",
    "birth_date",
    "sex",
    "postcode",
];

/// Split one CSV line (RFC 4180 quoting, no embedded newlines).
pub(crate) fn split_csv_line(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut in_quotes = false;
    let mut field_started_quoted = false;
    while let Some(c) = chars.next() {
        if in_quotes {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    cur.push('"');
                    chars.next();
                } else {
                    in_quotes = false;
                }
            } else {
                cur.push(c);
            }
        } else if c == '"' && cur.is_empty() && !field_started_quoted {
            in_quotes = true;
            field_started_quoted = true;
        } else if c == ',' {
            out.push(std::mem::take(&mut cur));
            field_started_quoted = false;
        } else if c == '"' {
            return Err(format!("unexpected quote in field {}", out.len() + 1));
        } else {
            cur.push(c);
        }
    }
    if in_quotes {
        return Err("unterminated quoted field".into());
    }
    out.push(cur);
    Ok(out)
}

pub(crate) fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn opt(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// Read records from CSV with the [`CSV_HEADER`] columns (any order; extra columns are
/// ignored). `path` is used only in error messages.
pub fn read_csv(reader: impl BufRead, path: &Path) -> Result<Vec<LinkRecord>, LinkError> {
    let err = |line: usize, field: &str, message: String| LinkError::Csv {
        path: path.display().to_string(),
        line,
        field: field.to_string(),
        message,
    };
    let mut lines = reader.lines();
    let header = match lines.next() {
        Some(h) => h.map_err(|e| err(1, "-", e.to_string()))?,
        None => return Err(err(1, "-", "empty file: no header".into())),
    };
    let header = split_csv_line(header.trim_start_matches('\u{feff}').trim_end_matches('\r'))
        .map_err(|m| err(1, "-", m))?;
    let mut idx = [0usize; 8];
    for (k, name) in CSV_HEADER.iter().enumerate() {
        idx[k] = header
            .iter()
            .position(|h| h.trim() == *name)
            .ok_or_else(|| err(1, name, format!("missing column {name:?}")))?;
    }
    let mut out = Vec::new();
    for (n, line) in lines.enumerate() {
        let ln = n + 2;
        let line = line.map_err(|e| err(ln, "-", e.to_string()))?;
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        let f = split_csv_line(line).map_err(|m| err(ln, "-", m))?;
        if f.len() != header.len() {
            return Err(err(
                ln,
                "-",
                format!("expected {} fields, found {}", header.len(), f.len()),
            ));
        }
        let get = |k: usize| f[idx[k]].as_str();
        let source = get(0).trim().to_string();
        if source.is_empty() {
            return Err(err(ln, "source", "source is empty".into()));
        }
        let record_id = get(1).trim().to_string();
        if record_id.is_empty() {
            return Err(err(ln, "record_id", "record_id is empty".into()));
        }
        let birth_date = match opt(get(5)) {
            None => None,
            Some(s) => Some(Date::parse(&s).map_err(|m| err(ln, "birth_date", m))?),
        };
        let sex = Sex::parse(get(6)).map_err(|m| err(ln, "sex", m))?;
        out.push(LinkRecord {
            source,
            record_id,
            nhs_number: opt(get(2)),
            given_name: opt(get(3)),
            family_name: opt(get(4)),
            birth_date,
            sex,
            postcode: opt(get(7)),
        });
    }
    Ok(out)
}

/// Write records as CSV with the [`CSV_HEADER`] columns.
pub fn write_csv(mut w: impl Write, records: &[LinkRecord]) -> std::io::Result<()> {
    writeln!(w, "{}", CSV_HEADER.join(","))?;
    for r in records {
        let o = |s: &Option<String>| s.as_deref().map(csv_field).unwrap_or_default();
        writeln!(
            w,
            "{},{},{},{},{},{},{},{}",
            csv_field(&r.source),
            csv_field(&r.record_id),
            o(&r.nhs_number),
            o(&r.given_name),
            o(&r.family_name),
            r.birth_date.map(|d| d.to_string()).unwrap_or_default(),
            r.sex.map(Sex::code).unwrap_or_default(),
            o(&r.postcode),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_and_validate() {
        for d in [-800_000, -1, 0, 1, 11_016, 20_000, 60_000] {
            assert_eq!(Date::from_days(d).to_days(), d);
        }
        assert_eq!(Date::new(1970, 1, 1).unwrap().to_days(), 0);
        assert_eq!(Date::new(2000, 3, 1).unwrap().to_days(), 11_017);
        assert!(Date::new(1900, 2, 29).is_none());
        assert!(Date::new(2000, 2, 29).is_some());
        assert!(Date::parse("1957-13-01").is_err());
        assert!(Date::parse("1957-02-30").is_err());
        assert_eq!(Date::parse("1957-02-03").unwrap().to_string(), "1957-02-03");
    }

    #[test]
    fn csv_round_trip_and_errors_name_line_and_field() {
        let recs = vec![LinkRecord {
            source: "gp".into(),
            record_id: "1".into(),
            nhs_number: Some("943 476 5919".into()),
            given_name: Some("O'Neil, Jr".into()),
            family_name: Some("SMITH \"X\"".into()),
            birth_date: Date::new(1950, 1, 2),
            sex: Some(Sex::Female),
            postcode: None,
        }];
        let mut buf = Vec::new();
        write_csv(&mut buf, &recs).unwrap();
        let back = read_csv(&buf[..], Path::new("x.csv")).unwrap();
        assert_eq!(back, recs);

        let bad = "source,record_id,nhs_number,given_name,family_name,birth_date,sex,postcode\n\
                   gp,1,,A,B,1950-01-02,F,\n\
                   gp,2,,A,B,1950-02-31,F,\n";
        let e = read_csv(bad.as_bytes(), Path::new("feed.csv")).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("feed.csv") && msg.contains("line 3") && msg.contains("birth_date"),
            "{msg}"
        );
        let bad_sex = "source,record_id,nhs_number,given_name,family_name,birth_date,sex,postcode\n\
                       gp,1,,A,B,1950-01-02,Q,\n";
        let msg = read_csv(bad_sex.as_bytes(), Path::new("f.csv"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("line 2") && msg.contains("sex"), "{msg}");
    }
}
