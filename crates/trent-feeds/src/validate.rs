//! Validation and normalisation of the values feeds carry: dates, codes, units, NHS
//! numbers, postcodes.
//!
//! Every function returns the normalised value or a [`Bad`] naming the field and the
//! value, so the reader can turn it into a [`crate::Rejection`] with its position.
//! Sources of the rules:
//!
//! - **Dates**: ISO 8601 / FHIR R4 `date` and `dateTime` (<https://hl7.org/fhir/R4/datatypes.html#dateTime>).
//!   Only *full* dates are accepted (`YYYY-MM-DD`): a partial date (`1970`, `1970-03`)
//!   is valid FHIR but cannot be placed in the lake and is rejected `invalid_date`.
//!   A dateTime with an offset is normalised to UTC (the offset subtracted); `Z` is
//!   read as written, which is how `trent-fhir` writes the lake's timestamps. CSV feeds
//!   may omit the offset (national datasets record local civil time).
//! - **ICD-10** (WHO, and the NHS 5th edition): letter, two digits, then up to two
//!   characters (`I10`, `I21.9`, `M24.06`, the NHS filler `I10X`); the dot, if present,
//!   must follow the third character; stored without the dot (SUS convention).
//! - **SNOMED CT identifiers** (SNOMED International, *Technical Implementation Guide*,
//!   "SNOMED CT Identifiers": SCTID structure, partition identifier and check digit):
//!   6–18 digits, no leading zero, the last digit a Verhoeff check digit over the rest,
//!   the two digits before it the partition identifier — `00` (concept, International
//!   release) or `10` (concept, extension namespace, e.g. the UK's `999791000000106`)
//!   for a concept id. dm+d ids (NHSBSA, *dm+d Data Model*) are SNOMED CT concept ids
//!   and are checked the same way.
//! - **OPCS-4** (NHS England, *OPCS Classification of Interventions and Procedures*):
//!   chapter letter (A–Z except I and O), two digits, one digit after an optional dot;
//!   stored without the dot.
//! - **BNF chemical substance codes** (NHSBSA BNF code structure): seven digits
//!   (chapter, section, paragraph, sub-paragraph) then two alphanumerics.
//! - **UCUM units** (<https://ucum.org/ucum>) for the observation codes trent uses
//!   ([`trent_model::codes::OBSERVATIONS`]); a known code with another unit is
//!   `invalid_unit`, except the few conversions listed in [`OBS_UNITS`].
//! - **NHS numbers**: [`trent_model::nhs_number::validate`] (modulus 11; ten identical
//!   digits rejected even where the arithmetic passes; spaces and hyphens removed).
//! - **Postcodes**: upper case, one space before the inward code
//!   ([`trent_link::normalise::Postcode`]); a value that is not UK-shaped is kept
//!   upper-cased and trimmed (linkage treats it as missing and counts it).
//! - **NHS ethnic category** (NHS Data Dictionary, "Ethnic Category", 2001 census
//!   classification): `A`–`H`, `J`–`N`, `P`, `R`, `S`, `Z`.

use crate::reject::{Bad, Reason};

/// Parse a full ISO 8601 date `YYYY-MM-DD` to days since 1970-01-01.
pub fn parse_date(field: &str, s: &str) -> Result<i32, Bad> {
    let t = s.trim();
    let b = t.as_bytes();
    let bad = |why: &str| {
        Bad::new(
            Reason::InvalidDate,
            format!("{field}: {why}, found {s:?} (expected YYYY-MM-DD)"),
        )
    };
    if b.len() == 4 || b.len() == 7 {
        if b.iter().all(|c| c.is_ascii_digit() || *c == b'-') {
            return Err(bad("partial date"));
        }
        return Err(bad("not a date"));
    }
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(bad("not a date"));
    }
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        let mut v = 0u32;
        for &c in &b[r] {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u32::from(c - b'0');
        }
        Some(v)
    };
    let (Some(y), Some(m), Some(d)) = (digits(0..4), digits(5..7), digits(8..10)) else {
        return Err(bad("not a date"));
    };
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return Err(bad("month or day out of range"));
    }
    let z = trent_model::time::days(y as i32, m, d);
    if trent_model::time::ymd(z) != (y as i32, m, d) {
        return Err(bad("no such day"));
    }
    Ok(z)
}

/// Parse an ISO 8601 date or dateTime to seconds since 1970-01-01. A bare date is
/// midnight. `zone_required` (FHIR): a time must carry `Z` or `±hh:mm`; without it
/// (CSV) a time with no zone is taken as written. Fractions of a second are dropped.
pub fn parse_datetime(field: &str, s: &str, zone_required: bool) -> Result<i64, Bad> {
    let t = s.trim();
    let bad = |why: &str| {
        Bad::new(
            Reason::InvalidDate,
            format!("{field}: {why}, found {s:?} (expected YYYY-MM-DDThh:mm:ss with Z or ±hh:mm)"),
        )
    };
    if t.len() <= 10 {
        return parse_date(field, t).map(|d| i64::from(d) * 86_400);
    }
    if !t.is_ascii() {
        return Err(bad("not a dateTime"));
    }
    let (date, rest) = t.split_at(10);
    let day = parse_date(field, date)?;
    let rest = rest
        .strip_prefix('T')
        .or_else(|| (!zone_required).then(|| rest.strip_prefix(' ')).flatten())
        .ok_or_else(|| bad("no 'T' between date and time"))?;
    // split off the zone
    let (time, zone) = match rest.find(['Z', '+', '-']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let tb = time.as_bytes();
    let two = |i: usize| -> Option<i64> {
        let a = *tb.get(i)?;
        let b = *tb.get(i + 1)?;
        (a.is_ascii_digit() && b.is_ascii_digit()).then(|| i64::from((a - b'0') * 10 + (b - b'0')))
    };
    let (hh, mm) = match (two(0), tb.get(2), two(3)) {
        (Some(h), Some(b':'), Some(m)) => (h, m),
        _ => return Err(bad("bad time")),
    };
    let ss = if tb.len() > 5 {
        match (tb[5], two(6)) {
            (b':', Some(s)) => {
                let frac = &tb[8..];
                let frac_ok = frac.is_empty()
                    || (frac[0] == b'.'
                        && frac.len() > 1
                        && frac[1..].iter().all(u8::is_ascii_digit));
                if !frac_ok {
                    return Err(bad("bad seconds"));
                }
                s
            }
            _ => return Err(bad("bad seconds")),
        }
    } else if zone_required {
        return Err(bad("seconds missing"));
    } else {
        0
    };
    if hh > 23 || mm > 59 || ss > 60 {
        return Err(bad("time out of range"));
    }
    let offset = match zone {
        "" if zone_required => return Err(bad("time zone missing")),
        "" | "Z" => 0,
        z => {
            let zb = z.as_bytes();
            let sign = if zb[0] == b'-' { -1 } else { 1 };
            let ok = zb.len() == 6
                && zb[3] == b':'
                && [1, 2, 4, 5].iter().all(|&i| zb[i].is_ascii_digit());
            if !ok {
                return Err(bad("bad time zone"));
            }
            let h = i64::from((zb[1] - b'0') * 10 + (zb[2] - b'0'));
            let m = i64::from((zb[4] - b'0') * 10 + (zb[5] - b'0'));
            if h > 14 || m > 59 {
                return Err(bad("time zone out of range"));
            }
            sign * (h * 3600 + m * 60)
        }
    };
    Ok(i64::from(day) * 86_400 + hh * 3600 + mm * 60 + ss.min(59) - offset)
}

/// The date of an instant.
pub fn day_of(ts: i64) -> i32 {
    ts.div_euclid(86_400) as i32
}

/// The person's life and the batch date, against which every event date is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Life {
    /// Date of birth, if known.
    pub birth: Option<i32>,
    /// Date of death, if known.
    pub death: Option<i32>,
}

impl Life {
    /// Check an event date: not before birth, not after death, not after `today`.
    pub fn check(&self, field: &str, day: i32, today: i32) -> Result<(), Bad> {
        let iso = trent_model::time::iso;
        if day > today {
            return Err(Bad::new(
                Reason::DateInFuture,
                format!("{field}: {} is after today ({})", iso(day), iso(today)),
            ));
        }
        if let Some(b) = self.birth
            && day < b
        {
            return Err(Bad::new(
                Reason::DateBeforeBirth,
                format!(
                    "{field}: {} is before the date of birth {}",
                    iso(day),
                    iso(b)
                ),
            ));
        }
        if let Some(d) = self.death
            && day > d
        {
            return Err(Bad::new(
                Reason::DateAfterDeath,
                format!(
                    "{field}: {} is after the date of death {}",
                    iso(day),
                    iso(d)
                ),
            ));
        }
        Ok(())
    }
}

/// Validate an ICD-10 code; returns it upper-cased without the dot.
pub fn icd10(field: &str, s: &str) -> Result<String, Bad> {
    let t = s.trim();
    let bad = || {
        Bad::new(
            Reason::InvalidCode,
            format!(
                "{field}: {s:?} is not an ICD-10 code (letter, two digits, up to two more characters)"
            ),
        )
    };
    let b = t.as_bytes();
    if let Some(i) = t.find('.')
        && (i != 3 || t.len() == 4)
    {
        return Err(bad());
    }
    let c: Vec<u8> = b
        .iter()
        .filter(|c| **c != b'.')
        .map(u8::to_ascii_uppercase)
        .collect();
    if !(3..=5).contains(&c.len())
        || !c[0].is_ascii_uppercase()
        || !c[1].is_ascii_digit()
        || !c[2].is_ascii_digit()
        || !c[3..].iter().all(u8::is_ascii_alphanumeric)
    {
        return Err(bad());
    }
    Ok(String::from_utf8(c).expect("ascii"))
}

const VERHOEFF_D: [[u8; 10]; 10] = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
    [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
    [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
    [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
    [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
    [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
    [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
    [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
    [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
];
const VERHOEFF_P: [[u8; 10]; 8] = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
    [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
    [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
    [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
    [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
    [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
    [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
];

/// True when a digit string (check digit last) passes the Verhoeff check (the
/// dihedral group D5 scheme of Verhoeff 1969, as SNOMED CT uses it).
pub fn verhoeff_ok(digits: &str) -> bool {
    let mut c = 0u8;
    for (i, ch) in digits.bytes().rev().enumerate() {
        if !ch.is_ascii_digit() {
            return false;
        }
        c = VERHOEFF_D[c as usize][VERHOEFF_P[i % 8][(ch - b'0') as usize] as usize];
    }
    c == 0
}

/// Validate a SNOMED CT concept id (also dm+d ids); returns it trimmed.
pub fn snomed(field: &str, s: &str) -> Result<String, Bad> {
    let t = s.trim();
    let bad = |why: &str| {
        Bad::new(
            Reason::InvalidCode,
            format!("{field}: {s:?} is not a SNOMED CT concept id ({why})"),
        )
    };
    if !(6..=18).contains(&t.len()) || !t.bytes().all(|c| c.is_ascii_digit()) {
        return Err(bad("6 to 18 digits"));
    }
    if t.starts_with('0') {
        return Err(bad("leading zero"));
    }
    let n = t.len();
    let partition = &t[n - 3..n - 1];
    if partition != "00" && partition != "10" {
        return Err(bad(&format!(
            "partition identifier {partition} is not a concept partition (00 or 10)"
        )));
    }
    if !verhoeff_ok(t) {
        return Err(bad("Verhoeff check digit fails"));
    }
    Ok(t.to_string())
}

/// Validate an OPCS-4 code; returns it upper-cased without the dot.
pub fn opcs4(field: &str, s: &str) -> Result<String, Bad> {
    let t = s.trim();
    let c: Vec<u8> = t
        .bytes()
        .filter(|c| *c != b'.')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let dot_ok = t
        .find('.')
        .is_none_or(|i| i == 3 && t.matches('.').count() == 1);
    if !dot_ok
        || c.len() != 4
        || !c[0].is_ascii_uppercase()
        || c[0] == b'I'
        || c[0] == b'O'
        || !c[1..].iter().all(u8::is_ascii_digit)
    {
        return Err(Bad::new(
            Reason::InvalidCode,
            format!("{field}: {s:?} is not an OPCS-4 code (chapter letter, three digits)"),
        ));
    }
    Ok(String::from_utf8(c).expect("ascii"))
}

/// Validate a BNF chemical substance code (9 characters).
pub fn bnf(field: &str, s: &str) -> Result<String, Bad> {
    let t = s.trim();
    let b = t.as_bytes();
    if b.len() != 9
        || !b[..7].iter().all(u8::is_ascii_digit)
        || !b[7..].iter().all(u8::is_ascii_alphanumeric)
    {
        return Err(Bad::new(
            Reason::InvalidCode,
            format!(
                "{field}: {s:?} is not a BNF chemical substance code (7 digits + 2 characters)"
            ),
        ));
    }
    Ok(t.to_ascii_uppercase())
}

/// Validate an NHS number; the ten-digit canonical form.
pub fn nhs_number(field: &str, s: &str) -> Result<String, Bad> {
    trent_model::nhs_number::validate(s).map_err(|e| {
        Bad::new(
            Reason::InvalidNhsNumber,
            format!("{field}: {s:?} is not a valid NHS number: {e}"),
        )
    })
}

/// Normalise a postcode: upper case, one space before the inward code.
pub fn postcode(s: &str) -> String {
    match trent_link::normalise::Postcode::parse(s) {
        Some(p) => p.full(),
        None => s.trim().to_ascii_uppercase(),
    }
}

/// A sex code: `F`/`M` (also `female`/`male`, NHS codes `2`/`1`); `None` for unknown
/// (`U`, `0`, `9`, `unknown`, `other`, blank).
pub fn sex(field: &str, s: &str) -> Result<Option<&'static str>, Bad> {
    match s.trim().to_ascii_lowercase().as_str() {
        "f" | "female" | "2" => Ok(Some("F")),
        "m" | "male" | "1" => Ok(Some("M")),
        "" | "u" | "unknown" | "0" | "9" | "other" | "x" => Ok(None),
        _ => Err(Bad::new(
            Reason::InvalidCode,
            format!("{field}: {s:?} is not a sex code (F/M/female/male/1/2, or U/0/9 unknown)"),
        )),
    }
}

/// An NHS ethnic category code.
pub fn ethnicity(field: &str, s: &str) -> Result<String, Bad> {
    let t = s.trim().to_ascii_uppercase();
    if t.len() == 1 && "ABCDEFGHJKLMNPRSZ".contains(&t) {
        Ok(t)
    } else {
        Err(Bad::new(
            Reason::InvalidCode,
            format!("{field}: {s:?} is not an NHS ethnic category code (A-H, J-N, P, R, S, Z)"),
        ))
    }
}

/// A finite number.
pub fn number(field: &str, s: &str) -> Result<f64, Bad> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(Bad::new(
            Reason::InvalidValue,
            format!("{field}: {s:?} is not a number"),
        )),
    }
}

/// A whole number in `i32` range.
pub fn integer(field: &str, s: &str) -> Result<i32, Bad> {
    s.trim().parse::<i32>().map_err(|_| {
        Bad::new(
            Reason::InvalidValue,
            format!("{field}: {s:?} is not a whole number"),
        )
    })
}

/// A value that must be one of a closed list.
pub fn one_of(field: &str, s: &str, allowed: &[&str]) -> Result<String, Bad> {
    let t = s.trim();
    if allowed.contains(&t) {
        Ok(t.to_string())
    } else {
        Err(Bad::new(
            Reason::InvalidCode,
            format!("{field}: {s:?} is not one of {}", allowed.join(", ")),
        ))
    }
}

/// One row of [`OBS_UNITS`]: (code, canonical UCUM unit or `None` for a finding recorded
/// by code alone, other accepted units with the factor converting them to the canonical).
pub type ObsUnit = (
    &'static str,
    Option<&'static str>,
    &'static [(&'static str, f64)],
);

/// The UCUM units accepted for each observation code trent uses
/// ([`trent_model::codes::OBSERVATIONS`]).
pub const OBS_UNITS: &[ObsUnit] = &[
    ("77176002", None, &[]),
    ("8517006", None, &[]),
    ("266919005", None, &[]),
    ("60621009", Some("kg/m2"), &[]),
    ("271649006", Some("mm[Hg]"), &[]),
    ("271650006", Some("mm[Hg]"), &[]),
    ("999791000000106", Some("mmol/mol"), &[]),
    ("160573003", Some("[arb'U]/wk"), &[]),
    ("trent-activity-min-wk", Some("min/wk"), &[]),
    ("trent-srh-good", Some("1"), &[]),
    ("364589006", Some("g"), &[("kg", 1000.0)]),
    ("412726003", Some("wk"), &[("d", 1.0 / 7.0)]),
    ("trent-bf-6-8wk", Some("1"), &[]),
    ("trent-ncmp-centile", Some("%"), &[]),
    ("trent-hc-invited", None, &[]),
    ("trent-hc-done", None, &[]),
];

/// Check an observation's value and unit against [`OBS_UNITS`]; returns the value and
/// unit converted to the canonical unit. Codes not in the table pass unchanged.
pub fn observation_unit(
    code: &str,
    value: Option<f64>,
    unit: Option<&str>,
) -> Result<(Option<f64>, Option<String>), Bad> {
    let Some((_, canon, alts)) = OBS_UNITS.iter().find(|(c, _, _)| *c == code) else {
        return Ok((value, unit.map(str::to_string)));
    };
    match (canon, value) {
        (None, None) => Ok((None, None)),
        (None, Some(v)) => Err(Bad::new(
            Reason::InvalidUnit,
            format!("code {code} is a finding recorded by code alone, found a value {v}"),
        )),
        (Some(_), None) => Ok((None, None)),
        (Some(c), Some(v)) => {
            let u = unit.unwrap_or("");
            if u == *c {
                return Ok((Some(v), Some(c.to_string())));
            }
            if let Some((_, f)) = alts.iter().find(|(a, _)| *a == u) {
                return Ok((Some(v * f), Some(c.to_string())));
            }
            Err(Bad::new(
                Reason::InvalidUnit,
                format!("code {code}: unit {u:?} is not {c:?} (UCUM)"),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trent_model::codes;

    #[test]
    fn dates_and_datetimes() {
        assert_eq!(parse_date("d", "2015-04-01").unwrap(), 16_526);
        for bad in [
            "2015-02-29",
            "2015-13-01",
            "2015-4-1",
            "1970",
            "1970-03",
            "x",
            "",
        ] {
            let e = parse_date("d", bad).unwrap_err();
            assert_eq!(e.reason, Reason::InvalidDate, "{bad}");
        }
        assert!(
            parse_date("d", "1970")
                .unwrap_err()
                .message
                .contains("partial")
        );
        let z = parse_datetime("t", "2015-04-01T10:00:00Z", true).unwrap();
        assert_eq!(z, 16_526 * 86_400 + 36_000);
        assert_eq!(
            parse_datetime("t", "2015-04-01T11:00:00+01:00", true).unwrap(),
            z
        );
        assert_eq!(
            parse_datetime("t", "2015-04-01T05:30:00.123-04:30", true).unwrap(),
            z
        );
        assert_eq!(
            parse_datetime("t", "2015-04-01", true).unwrap(),
            16_526 * 86_400
        );
        assert_eq!(parse_datetime("t", "2015-04-01 10:00", false).unwrap(), z);
        for bad in [
            "2015-04-01T10:00:00",
            "2015-04-01T10:00Z",
            "2015-04-01T25:00:00Z",
            "2015-04-01T10:00:00+1:00",
            "2015-04-01X10:00:00Z",
        ] {
            assert_eq!(
                parse_datetime("t", bad, true).unwrap_err().reason,
                Reason::InvalidDate,
                "{bad}"
            );
        }
    }

    #[test]
    fn life_rules() {
        let l = Life {
            birth: Some(100),
            death: Some(200),
        };
        assert!(l.check("x", 150, 300).is_ok());
        assert_eq!(
            l.check("x", 99, 300).unwrap_err().reason,
            Reason::DateBeforeBirth
        );
        assert_eq!(
            l.check("x", 201, 300).unwrap_err().reason,
            Reason::DateAfterDeath
        );
        assert_eq!(
            l.check("x", 150, 120).unwrap_err().reason,
            Reason::DateInFuture
        );
    }

    #[test]
    fn icd10_shapes() {
        assert_eq!(icd10("c", "I21.9").unwrap(), "I219");
        assert_eq!(icd10("c", "i219").unwrap(), "I219");
        assert_eq!(icd10("c", "I10").unwrap(), "I10");
        assert_eq!(icd10("c", "M24.06").unwrap(), "M2406");
        assert_eq!(icd10("c", "I10X").unwrap(), "I10X");
        for bad in ["I2", "121", "I2.19", "I21.", "I21.123", "IAB", "I21-9", ""] {
            assert!(icd10("c", bad).is_err(), "{bad}");
        }
        for c in codes::CONDITIONS {
            assert_eq!(icd10("c", c.icd10).unwrap(), c.icd10);
        }
    }

    #[test]
    fn snomed_check_digit_and_partition() {
        // every SNOMED CT code trent writes passes
        for c in codes::CONDITIONS {
            snomed("c", c.snomed).unwrap_or_else(|e| panic!("{}: {}", c.key, e.message));
        }
        for o in codes::OBSERVATIONS
            .iter()
            .filter(|o| !o.code.starts_with("trent-"))
        {
            snomed("c", o.code).unwrap_or_else(|e| panic!("{}: {}", o.key, e.message));
        }
        snomed("c", "3457005").unwrap();
        // dm+d VMP id (paracetamol 500mg tablets)
        snomed("c", "322236009").unwrap();
        // one digit changed: Verhoeff catches every single-digit error
        let e = snomed("c", "38341004").unwrap_err();
        assert!(e.message.contains("Verhoeff"), "{}", e.message);
        // a description id (partition 01) is not a concept id
        assert!(
            snomed("c", "1234011")
                .unwrap_err()
                .message
                .contains("partition")
        );
        for bad in ["12345", "0383410", "38341003x", "1234567890123456789"] {
            assert!(snomed("c", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn opcs_bnf_sex_ethnicity() {
        assert_eq!(opcs4("p", "K40.1").unwrap(), "K401");
        assert_eq!(opcs4("p", "w371").unwrap(), "W371");
        for bad in ["K40", "I401", "O401", "K4.01", "K40.12"] {
            assert!(opcs4("p", bad).is_err(), "{bad}");
        }
        for (c, _, _) in codes::MEDICINES {
            assert_eq!(bnf("m", c).unwrap(), *c);
        }
        assert!(bnf("m", "0206020A").is_err());
        assert_eq!(sex("s", "female").unwrap(), Some("F"));
        assert_eq!(sex("s", "9").unwrap(), None);
        assert!(sex("s", "Q").is_err());
        assert_eq!(ethnicity("e", "a").unwrap(), "A");
        assert!(ethnicity("e", "I").is_err());
        assert_eq!(postcode(" ng72uh "), "NG7 2UH");
        assert_eq!(postcode("nowhere"), "NOWHERE");
    }

    #[test]
    fn units() {
        assert_eq!(
            observation_unit("60621009", Some(25.0), Some("kg/m2")).unwrap(),
            (Some(25.0), Some("kg/m2".into()))
        );
        assert_eq!(
            observation_unit("364589006", Some(3.4), Some("kg"))
                .unwrap()
                .0,
            Some(3400.0)
        );
        assert_eq!(
            observation_unit("60621009", Some(25.0), Some("kg"))
                .unwrap_err()
                .reason,
            Reason::InvalidUnit
        );
        assert_eq!(
            observation_unit("77176002", Some(1.0), None)
                .unwrap_err()
                .reason,
            Reason::InvalidUnit
        );
        // every code and unit trent writes is accepted
        for o in codes::OBSERVATIONS {
            let v = o.unit.map(|_| 1.0);
            observation_unit(o.code, v, o.unit).unwrap();
        }
    }
}
