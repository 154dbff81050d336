//! CSV feeds shaped like the national datasets, one reader per care setting.
//!
//! Each feed's columns follow its national dataset in spirit — SUS Admitted Patient
//! Care and Outpatients, the Emergency Care Data Set, a GP system extract, the Community
//! Services and Mental Health Services Data Sets, the Adult Social Care Client Level
//! Data, an ambulance trust's incident extract — but carry trent's fields and value
//! sets (`docs/schema.md`), so a row maps to the lake without a terminology server.
//! Every feed except `gp` carries the patient's demographics on each row, as those
//! datasets do; the `gp` feed is one file with a `record_type` column (patient rows
//! first, then events that refer to them by `local_patient_id`).
//!
//! Rules: the header must be exactly the feed's (a file of another feed is
//! `wrong_feed`, naming it; then every data line is rejected with the same reason so the
//! counts still account for every line). One rejection per bad line. A last line with
//! no newline and the wrong number of fields is `truncated_file`. Quoted fields follow
//! RFC 4180 (a quoted field may span lines; the line number is where the record starts).
//!
//! Rows are read by column name through [`Fields`], which the OMOP reader shares.

use std::collections::HashMap;
use std::path::Path;

use crate::fhir::{PRIORITIES, SERVICES};
use crate::reject::{Bad, Position, Reason, Rejection};
use crate::sink::{Origin, Raw, Sink};
use crate::stage::*;
use crate::validate::{self as v, Life};
use crate::{FeedError, ReadOptions};

/// Field values by column name; `None` when the column is absent or the value empty.
/// Implemented for CSV rows here; the lead implements it over Arrow record batches to
/// feed Parquet OMOP tables to [`crate::omop`].
pub trait Fields {
    /// The trimmed value of a column, `None` if absent or empty.
    fn get(&self, col: &str) -> Option<&str>;
}

impl Fields for HashMap<String, String> {
    fn get(&self, col: &str) -> Option<&str> {
        HashMap::get(self, col)
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
    }
}

/// A CSV row with its header.
pub struct Row<'a> {
    /// column name → index
    pub index: &'a HashMap<String, usize>,
    /// the values
    pub fields: &'a [String],
}

impl Fields for Row<'_> {
    fn get(&self, col: &str) -> Option<&str> {
        let i = *self.index.get(col)?;
        self.fields
            .get(i)
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
    }
}

/// A CSV feed (the `--feed` argument of `trent ingest csv`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Feed {
    /// GP system extract (patients, consultations, problems, observations, issues,
    /// referrals, allergies).
    Gp,
    /// SUS Admitted Patient Care, one row per spell.
    Apc,
    /// Emergency Care Data Set, one row per attendance.
    Ae,
    /// SUS Outpatients, one row per attendance.
    Op,
    /// Community Services Data Set, one row per contact.
    Community,
    /// Mental Health Services Data Set, one row per contact or spell.
    MentalHealth,
    /// Adult Social Care Client Level Data, one row per assessment or service.
    SocialCare,
    /// Ambulance incidents, one row per incident.
    Ambulance,
}

/// The demographics every feed row carries (the gp feed on its patient rows).
pub const PERSON_COLUMNS: &[&str] = &[
    "local_patient_id",
    "nhs_number",
    "given_name",
    "family_name",
    "birth_date",
    "sex",
    "postcode",
    "address_line",
    "gp_practice_code",
    "ethnic_category",
];

macro_rules! header {
    ($first:literal; $($rest:literal),*) => {
        &[$first, "local_patient_id", "nhs_number", "given_name", "family_name", "birth_date",
          "sex", "postcode", "address_line", "gp_practice_code", "ethnic_category", $($rest),*]
    };
}

const GP: &[&str] = &[
    "record_type",
    "record_id",
    "local_patient_id",
    "nhs_number",
    "given_name",
    "family_name",
    "birth_date",
    "sex",
    "postcode",
    "address_line",
    "gp_practice_code",
    "ethnic_category",
    "death_date",
    "event_datetime",
    "code_system",
    "code",
    "value",
    "unit",
    "days_supply",
    "cost_gbp",
    "specialty",
    "priority",
];
const APC: &[&str] = header!("spell_id"; "provider_code", "site_code", "admission_datetime",
    "discharge_datetime", "admission_method", "patient_class", "treatment_function_code",
    "primary_diagnosis", "secondary_diagnoses", "discharge_destination", "medically_fit_date",
    "cost_gbp");
const AE: &[&str] = header!("attendance_id"; "provider_code", "site_code", "arrival_datetime",
    "departure_datetime", "department_type", "arrival_mode", "primary_diagnosis",
    "discharge_destination", "cost_gbp");
const OP: &[&str] = header!("attendance_id"; "provider_code", "site_code", "appointment_datetime",
    "attendance_type", "treatment_function_code", "primary_diagnosis", "referral_id", "cost_gbp");
const COMMUNITY: &[&str] = header!("contact_id"; "provider_code", "contact_datetime",
    "end_datetime", "patient_class", "cost_gbp");
const MENTAL_HEALTH: &[&str] = header!("record_id"; "provider_code", "start_datetime",
    "end_datetime", "patient_class", "admission_method", "primary_diagnosis",
    "treatment_function_code", "discharge_destination", "cost_gbp");
const SOCIAL_CARE: &[&str] = header!("event_id"; "la_code", "event_type", "service_type",
    "start_date", "end_date", "weekly_cost_gbp");
const AMBULANCE: &[&str] = header!("incident_id"; "provider_code", "call_datetime",
    "close_datetime", "response_category", "outcome", "response_minutes", "cost_gbp");

impl Feed {
    /// Every feed.
    pub const ALL: &'static [Feed] = &[
        Feed::Gp,
        Feed::Apc,
        Feed::Ae,
        Feed::Op,
        Feed::Community,
        Feed::MentalHealth,
        Feed::SocialCare,
        Feed::Ambulance,
    ];

    /// The feed's name (`--feed` value).
    pub fn name(self) -> &'static str {
        match self {
            Feed::Gp => "gp",
            Feed::Apc => "apc",
            Feed::Ae => "ae",
            Feed::Op => "op",
            Feed::Community => "community",
            Feed::MentalHealth => "mental_health",
            Feed::SocialCare => "social_care",
            Feed::Ambulance => "ambulance",
        }
    }

    /// The feed with this name.
    pub fn parse(name: &str) -> Option<Feed> {
        Feed::ALL.iter().copied().find(|f| f.name() == name)
    }

    /// The exact header.
    pub fn header(self) -> &'static [&'static str] {
        match self {
            Feed::Gp => GP,
            Feed::Apc => APC,
            Feed::Ae => AE,
            Feed::Op => OP,
            Feed::Community => COMMUNITY,
            Feed::MentalHealth => MENTAL_HEALTH,
            Feed::SocialCare => SOCIAL_CARE,
            Feed::Ambulance => AMBULANCE,
        }
    }

    /// The kind of record a row is (gp and social care rows say per row).
    fn row_kind(self) -> &'static str {
        match self {
            Feed::Gp => "unknown",
            Feed::SocialCare => "social_care",
            _ => "activity",
        }
    }
}

/// One CSV record: where it starts, its text, its fields (or why not).
pub(crate) struct CsvRecord<'a> {
    pub line: u64,
    pub raw: &'a str,
    pub fields: Result<Vec<String>, String>,
    /// false for a last record with no newline after it
    pub terminated: bool,
}

/// Split CSV text into records (RFC 4180; `\n` or `\r\n`), one at a time: a feed file's
/// records are read as they are checked, so memory holds the file's text and one
/// record's fields, not every field of the file (a 460 MB GP extract once took 5.7 GB).
pub(crate) fn records(text: &str, delim: u8) -> Records<'_> {
    Records {
        text,
        delim,
        i: 0,
        line: 1,
    }
}

/// The records of CSV text, in order ([`records`]); blank lines are not records.
pub(crate) struct Records<'a> {
    text: &'a str,
    delim: u8,
    i: usize,
    line: u64,
}

impl<'a> Iterator for Records<'a> {
    type Item = CsvRecord<'a>;

    fn next(&mut self) -> Option<CsvRecord<'a>> {
        let text = self.text;
        let delim = self.delim;
        let b = text.as_bytes();
        let mut i = self.i;
        let mut line = self.line;
        while i < b.len() {
            let start = i;
            let start_line = line;
            let mut fields = Vec::new();
            let mut cur: Vec<u8> = Vec::new();
            let mut err: Option<String> = None;
            let mut in_quotes = false;
            let mut field_start = true;
            let mut was_quoted = false;
            let mut terminated = false;
            while i < b.len() {
                let c = b[i];
                if in_quotes {
                    if c == b'"' {
                        if b.get(i + 1) == Some(&b'"') {
                            cur.push(b'"');
                            i += 2;
                            continue;
                        }
                        in_quotes = false;
                        i += 1;
                        continue;
                    }
                    if c == b'\n' {
                        line += 1;
                    }
                    cur.push(c);
                    i += 1;
                    continue;
                }
                if c == b'"' && field_start {
                    in_quotes = true;
                    was_quoted = true;
                    field_start = false;
                    i += 1;
                    continue;
                }
                if c == delim {
                    fields.push(std::mem::take(&mut cur));
                    field_start = true;
                    was_quoted = false;
                    i += 1;
                    continue;
                }
                if c == b'\n' || (c == b'\r' && b.get(i + 1) == Some(&b'\n')) {
                    i += if c == b'\r' { 2 } else { 1 };
                    line += 1;
                    terminated = true;
                    break;
                }
                if was_quoted && err.is_none() {
                    err = Some(format!(
                        "character {:?} after the closing quote of field {}",
                        c as char,
                        fields.len() + 1
                    ));
                } else if c == b'"' && err.is_none() {
                    err = Some(format!("quote inside unquoted field {}", fields.len() + 1));
                }
                field_start = false;
                cur.push(c);
                i += 1;
            }
            if in_quotes && err.is_none() {
                err = Some("unterminated quoted field".into());
            }
            fields.push(cur);
            let end = if terminated {
                // drop the line ending from the raw text
                let mut e = i;
                if e > start && b[e - 1] == b'\n' {
                    e -= 1;
                }
                if e > start && b[e - 1] == b'\r' {
                    e -= 1;
                }
                e
            } else {
                i
            };
            let raw = &text[start..end];
            let fields = match err {
                Some(e) => Err(e),
                None => Ok(fields
                    .into_iter()
                    .map(|f| String::from_utf8(f).expect("split at ASCII bytes of valid UTF-8"))
                    .collect()),
            };
            // blank lines are not records
            if raw.trim().is_empty() {
                continue;
            }
            self.i = i;
            self.line = line;
            return Some(CsvRecord {
                line: start_line,
                raw,
                fields,
                terminated,
            });
        }
        self.i = i;
        self.line = line;
        None
    }
}

/// Read one CSV feed file. Only I/O fails; bad content becomes rejections.
pub fn read_csv_feed(
    feed: Feed,
    path: &Path,
    source: &str,
    opts: &ReadOptions,
    sink: &mut dyn Sink,
) -> Result<(), FeedError> {
    let data = std::fs::read(path).map_err(|e| FeedError::io(path, e))?;
    read_csv_bytes(feed, &data, &path.display().to_string(), source, opts, sink);
    Ok(())
}

/// How a header compares with the feeds' headers.
pub fn header_verdict(feed: Feed, header: &[String]) -> Result<(), Bad> {
    let h: Vec<String> = header
        .iter()
        .map(|c| c.trim().to_ascii_lowercase())
        .collect();
    let want = feed.header();
    if h.len() == want.len() && h.iter().zip(want).all(|(a, b)| a == b) {
        return Ok(());
    }
    for other in Feed::ALL {
        let oh = other.header();
        if h.len() == oh.len() && h.iter().zip(oh).all(|(a, b)| a == b) {
            return Err(Bad::new(
                Reason::WrongFeed,
                format!(
                    "header is that of the {} feed, not {}",
                    other.name(),
                    feed.name()
                ),
            ));
        }
    }
    // the feed whose own (non-demographic) columns the header shares most
    let own = |f: Feed| -> Vec<&'static str> {
        f.header()
            .iter()
            .copied()
            .filter(|c| !PERSON_COLUMNS.contains(c))
            .collect()
    };
    let score = |f: Feed| {
        let o = own(f);
        o.iter().filter(|c| h.iter().any(|x| x == *c)).count() as f64 / o.len() as f64
    };
    let best = Feed::ALL
        .iter()
        .copied()
        .max_by(|a, b| score(*a).total_cmp(&score(*b)))
        .expect("feeds");
    if best != feed && score(best) >= 0.5 && score(best) > score(feed) {
        return Err(Bad::new(
            Reason::WrongFeed,
            format!(
                "header looks like the {} feed ({:.0}% of its own columns), not {}",
                best.name(),
                score(best) * 100.0,
                feed.name()
            ),
        ));
    }
    let missing: Vec<&str> = want
        .iter()
        .copied()
        .filter(|c| !h.iter().any(|x| x == c))
        .collect();
    let extra: Vec<&str> = h
        .iter()
        .filter(|x| !want.contains(&x.as_str()))
        .map(String::as_str)
        .collect();
    let msg = if missing.is_empty() && extra.is_empty() {
        format!(
            "header of the {} feed has its columns in the wrong order or repeated; expected: {}",
            feed.name(),
            want.join(",")
        )
    } else {
        format!(
            "header is not that of the {} feed: missing [{}], unexpected [{}]",
            feed.name(),
            missing.join(", "),
            extra.join(", ")
        )
    };
    Err(Bad::new(Reason::WrongHeader, msg))
}

/// Read a CSV feed from memory.
pub fn read_csv_bytes(
    feed: Feed,
    data: &[u8],
    file: &str,
    source: &str,
    opts: &ReadOptions,
    sink: &mut dyn Sink,
) {
    let text = String::from_utf8_lossy(data);
    let mut body = records(&text, b',');
    let reject = |sink: &mut dyn Sink, line: u64, kind: &str, bad: Bad, raw: &str| {
        sink.reject(Rejection {
            source: source.to_string(),
            file: file.to_string(),
            position: Position::line(line),
            resource_type: Some(kind.to_string()),
            reason: bad.reason,
            message: bad.message,
            raw: raw.to_string(),
        })
    };
    let Some(head) = body.next() else {
        return;
    };
    let header = match &head.fields {
        Ok(h) => h.clone(),
        Err(e) => vec![format!("<malformed header: {e}>")],
    };
    if let Err(bad) = header_verdict(feed, &header) {
        // the header line and every data line are rejected, so every line is counted
        reject(sink, head.line, "header", bad.clone(), head.raw);
        for r in body {
            let b = Bad::new(
                bad.reason,
                format!(
                    "line not read: the file's header was rejected ({})",
                    bad.message
                ),
            );
            reject(sink, r.line, feed.row_kind(), b, r.raw);
        }
        return;
    }
    let index: HashMap<String, usize> = header
        .iter()
        .enumerate()
        .map(|(i, c)| (c.trim().to_ascii_lowercase(), i))
        .collect();
    let mut st = State {
        source,
        opts,
        lives: HashMap::new(),
        persons: HashMap::new(),
    };
    let n = header.len();
    for r in body {
        let fields = match &r.fields {
            Ok(f) if f.len() == n => f,
            Ok(f) => {
                let (reason, why) = if !r.terminated {
                    (
                        Reason::TruncatedFile,
                        format!(
                            "last line has no newline and {} of {} fields: the file was cut short",
                            f.len(),
                            n
                        ),
                    )
                } else {
                    (
                        Reason::MalformedCsv,
                        format!("{} fields, the header has {}", f.len(), n),
                    )
                };
                reject(sink, r.line, feed.row_kind(), Bad::new(reason, why), r.raw);
                continue;
            }
            Err(e) => {
                let reason = if !r.terminated {
                    Reason::TruncatedFile
                } else {
                    Reason::MalformedCsv
                };
                reject(
                    sink,
                    r.line,
                    feed.row_kind(),
                    Bad::new(reason, e.clone()),
                    r.raw,
                );
                continue;
            }
        };
        let row = Row {
            index: &index,
            fields,
        };
        let origin = Origin {
            file,
            line: r.line,
            entry: None,
            raw: Raw::Text(r.raw),
        };
        let (kind, out) = st.row(feed, &row);
        match out {
            Ok((person, rec)) => {
                if let Some(p) = person {
                    st.persons
                        .insert(p.source_id.clone(), p.content_hash.clone());
                    sink.record(Staged::Person(p), &origin);
                }
                sink.record(rec, &origin);
            }
            Err(bad) => reject(sink, r.line, kind, bad, r.raw),
        }
    }
}

struct State<'a> {
    source: &'a str,
    opts: &'a ReadOptions,
    lives: HashMap<String, Life>,
    /// person source id → content hash already emitted from this file
    persons: HashMap<String, String>,
}

fn req<'a>(row: &'a dyn Fields, col: &str) -> Result<&'a str, Bad> {
    row.get(col).ok_or_else(|| {
        Bad::new(
            Reason::MissingRequired,
            format!("column {col} is empty and is required"),
        )
    })
}

fn opt_num(row: &dyn Fields, col: &str) -> Result<Option<f64>, Bad> {
    row.get(col).map(|x| v::number(col, x)).transpose()
}

fn opt_int(row: &dyn Fields, col: &str) -> Result<Option<i32>, Bad> {
    row.get(col).map(|x| v::integer(col, x)).transpose()
}

fn opt_date(row: &dyn Fields, col: &str) -> Result<Option<i32>, Bad> {
    row.get(col).map(|x| v::parse_date(col, x)).transpose()
}

fn opt_one_of(row: &dyn Fields, col: &str, allowed: &[&str]) -> Result<Option<String>, Bad> {
    row.get(col).map(|x| v::one_of(col, x, allowed)).transpose()
}

fn opt_icd(row: &dyn Fields, col: &str) -> Result<Option<String>, Bad> {
    row.get(col).map(|x| v::icd10(col, x)).transpose()
}

/// Read the demographic columns into a person.
pub fn person_from(
    row: &dyn Fields,
    source: &str,
    derived: bool,
    today: i32,
) -> Result<StagedPerson, Bad> {
    let birth = opt_date(row, "birth_date")?;
    if let Some(b) = birth {
        Life::default().check("birth_date", b, today)?;
    }
    let death = opt_date(row, "death_date")?;
    if let Some(d) = death {
        Life { birth, death: None }.check("death_date", d, today)?;
    }
    Ok(StagedPerson {
        source: source.to_string(),
        source_id: req(row, "local_patient_id")?.to_string(),
        derived,
        nhs_number: row
            .get("nhs_number")
            .map(|x| v::nhs_number("nhs_number", x))
            .transpose()?,
        given_name: row.get("given_name").map(str::to_string),
        family_name: row.get("family_name").map(str::to_string),
        birth_date: birth,
        sex: row
            .get("sex")
            .map(|x| v::sex("sex", x))
            .transpose()?
            .flatten()
            .map(str::to_string),
        postcode: row.get("postcode").map(v::postcode),
        address: row.get("address_line").map(str::to_string),
        practice_code: row.get("gp_practice_code").map(str::to_string),
        ethnicity: row
            .get("ethnic_category")
            .map(|x| v::ethnicity("ethnic_category", x))
            .transpose()?,
        death_date: death,
        death_cause: None,
        omop_concepts: None,
        content_hash: String::new(),
    }
    .seal())
}

type RowOut = Result<(Option<StagedPerson>, Staged), Bad>;

impl State<'_> {
    fn row(&mut self, feed: Feed, row: &Row<'_>) -> (&'static str, RowOut) {
        match feed {
            Feed::Gp => self.gp(row),
            Feed::SocialCare => self.social_care(row),
            _ => ("activity", self.spell(feed, row)),
        }
    }

    /// The person a row carries, emitted once per version per file.
    fn carried(&mut self, row: &dyn Fields) -> Result<(Option<StagedPerson>, Life), Bad> {
        let p = person_from(row, self.source, true, self.opts.today)?;
        let life = Life {
            birth: p.birth_date,
            death: p.death_date,
        };
        // marked as emitted only when its row is accepted (see `read_csv_bytes`): a
        // person whose first row is bad is carried by their next good row
        let new = self.persons.get(&p.source_id) != Some(&p.content_hash);
        Ok((new.then_some(p), life))
    }

    fn ts(&self, row: &dyn Fields, col: &str, life: &Life) -> Result<i64, Bad> {
        let t = v::parse_datetime(col, req(row, col)?, false)?;
        life.check(col, v::day_of(t), self.opts.today)?;
        Ok(t)
    }

    fn end_ts(
        &self,
        row: &dyn Fields,
        col: &str,
        start: i64,
        life: &Life,
    ) -> Result<Option<i64>, Bad> {
        let Some(x) = row.get(col) else {
            return Ok(None);
        };
        let t = v::parse_datetime(col, x, false)?;
        if t < start {
            return Err(Bad::new(
                Reason::InvalidDate,
                format!("{col} {x} is before the start"),
            ));
        }
        life.check(col, v::day_of(t), self.opts.today)?;
        Ok(Some(t))
    }

    fn spell(&mut self, feed: Feed, row: &Row<'_>) -> RowOut {
        let (person, life) = self.carried(row)?;
        let source_person = req(row, "local_patient_id")?.to_string();
        let (id_col, start_col, end_col) = match feed {
            Feed::Apc => ("spell_id", "admission_datetime", Some("discharge_datetime")),
            Feed::Ae => (
                "attendance_id",
                "arrival_datetime",
                Some("departure_datetime"),
            ),
            Feed::Op => ("attendance_id", "appointment_datetime", None),
            Feed::Community => ("contact_id", "contact_datetime", Some("end_datetime")),
            Feed::MentalHealth => ("record_id", "start_datetime", Some("end_datetime")),
            Feed::Ambulance => ("incident_id", "call_datetime", Some("close_datetime")),
            Feed::Gp | Feed::SocialCare => unreachable!("not spell feeds"),
        };
        let id = req(row, id_col)?.to_string();
        let start_ts = self.ts(row, start_col, &life)?;
        let end_ts = match end_col {
            Some(c) => self.end_ts(row, c, start_ts, &life)?,
            None => None,
        };
        let mut a = StagedActivity {
            source: self.source.to_string(),
            source_id: id,
            source_person,
            setting: feed.name().to_string(),
            start_ts,
            end_ts,
            provider_code: Some(req(row, "provider_code")?.to_string()),
            site_code: row.get("site_code").map(str::to_string),
            cost_gbp: opt_num(row, "cost_gbp")?,
            ..Default::default()
        };
        match feed {
            Feed::Apc => {
                a.admission_method = Some(v::one_of(
                    "admission_method",
                    req(row, "admission_method")?,
                    &["elective", "emergency", "maternity", "transfer"],
                )?);
                a.patient_class = opt_one_of(row, "patient_class", &["ordinary", "day_case"])?;
                a.specialty = row.get("treatment_function_code").map(str::to_string);
                a.primary_diagnosis = Some(v::icd10(
                    "primary_diagnosis",
                    req(row, "primary_diagnosis")?,
                )?);
                if let Some(sd) = row.get("secondary_diagnoses") {
                    for c in sd.split(';').map(str::trim).filter(|c| !c.is_empty()) {
                        a.secondary_diagnoses
                            .push(v::icd10("secondary_diagnoses", c)?);
                    }
                }
                a.discharge_destination = opt_one_of(
                    row,
                    "discharge_destination",
                    &["usual_residence", "care_home", "other_hospital", "died"],
                )?;
                a.medically_fit_date = opt_date(row, "medically_fit_date")?;
                if let (Some(e), Some(d)) = (a.end_ts, a.medically_fit_date)
                    && d > v::day_of(e)
                {
                    return Err(Bad::new(
                        Reason::InvalidDate,
                        format!(
                            "medically_fit_date {} is after discharge",
                            trent_model::time::iso(d)
                        ),
                    ));
                }
                a.los_days = a.end_ts.map(|e| v::day_of(e) - v::day_of(a.start_ts));
            }
            Feed::Ae => {
                a.patient_class = Some(v::one_of(
                    "department_type",
                    req(row, "department_type")?,
                    &["type1", "type3"],
                )?);
                a.arrival_mode = opt_one_of(row, "arrival_mode", &["ambulance", "walk_in"])?;
                a.primary_diagnosis = opt_icd(row, "primary_diagnosis")?;
                a.discharge_destination = opt_one_of(
                    row,
                    "discharge_destination",
                    &["discharged", "admitted", "referred", "died"],
                )?;
            }
            Feed::Op => {
                a.patient_class = Some(v::one_of(
                    "attendance_type",
                    req(row, "attendance_type")?,
                    &["first", "follow_up"],
                )?);
                a.specialty = Some(req(row, "treatment_function_code")?.to_string());
                a.primary_diagnosis = opt_icd(row, "primary_diagnosis")?;
                a.source_referral = row.get("referral_id").map(str::to_string);
            }
            Feed::Community => {
                a.patient_class = opt_one_of(row, "patient_class", &["inpatient", "contact"])?;
            }
            Feed::MentalHealth => {
                a.patient_class = opt_one_of(row, "patient_class", &["inpatient", "contact"])?;
                a.admission_method = opt_one_of(
                    row,
                    "admission_method",
                    &["elective", "emergency", "maternity", "transfer"],
                )?;
                a.primary_diagnosis = opt_icd(row, "primary_diagnosis")?;
                a.specialty = row.get("treatment_function_code").map(str::to_string);
                a.discharge_destination = opt_one_of(
                    row,
                    "discharge_destination",
                    &["usual_residence", "care_home", "other_hospital", "died"],
                )?;
                if a.patient_class.as_deref() == Some("inpatient") {
                    a.los_days = a.end_ts.map(|e| v::day_of(e) - v::day_of(a.start_ts));
                }
            }
            Feed::Ambulance => {
                a.ambulance_category = Some(v::one_of(
                    "response_category",
                    req(row, "response_category")?,
                    &["red1", "red2", "green"],
                )?);
                a.patient_class = Some(v::one_of(
                    "outcome",
                    req(row, "outcome")?,
                    &["see_and_convey", "see_and_treat", "hear_and_treat"],
                )?);
                a.response_minutes = opt_num(row, "response_minutes")?;
                if let Some(m) = a.response_minutes
                    && m < 0.0
                {
                    return Err(Bad::new(
                        Reason::InvalidValue,
                        format!("response_minutes {m} is negative"),
                    ));
                }
            }
            Feed::Gp | Feed::SocialCare => unreachable!(),
        }
        if let Some(c) = a.cost_gbp
            && c < 0.0
        {
            return Err(Bad::new(
                Reason::InvalidValue,
                format!("cost_gbp {c} is negative"),
            ));
        }
        Ok((person, Staged::Activity(a.seal())))
    }

    fn social_care(&mut self, row: &Row<'_>) -> (&'static str, RowOut) {
        let kind = match row.get("event_type") {
            Some("assessment") => "activity",
            _ => "social_care",
        };
        (kind, self.social_care_row(row))
    }

    fn social_care_row(&mut self, row: &Row<'_>) -> RowOut {
        let (person, life) = self.carried(row)?;
        let source_person = req(row, "local_patient_id")?.to_string();
        let id = req(row, "event_id")?.to_string();
        let la = req(row, "la_code")?.to_string();
        let start = v::parse_date("start_date", req(row, "start_date")?)?;
        life.check("start_date", start, self.opts.today)?;
        let end = opt_date(row, "end_date")?;
        if let Some(e) = end {
            if e < start {
                return Err(Bad::new(
                    Reason::InvalidDate,
                    "end_date is before start_date",
                ));
            }
            life.check("end_date", e, self.opts.today)?;
        }
        let rec = match v::one_of(
            "event_type",
            req(row, "event_type")?,
            &["assessment", "service"],
        )?
        .as_str()
        {
            "assessment" => Staged::Activity(
                StagedActivity {
                    source: self.source.to_string(),
                    source_id: id,
                    source_person,
                    setting: "social_care_assessment".into(),
                    start_ts: i64::from(start) * 86_400,
                    end_ts: end.map(|e| i64::from(e) * 86_400),
                    provider_code: Some(la),
                    ..Default::default()
                }
                .seal(),
            ),
            _ => Staged::SocialCare(
                StagedSocialCare {
                    source: self.source.to_string(),
                    source_id: id,
                    source_person,
                    service: v::one_of("service_type", req(row, "service_type")?, SERVICES)?,
                    start_date: start,
                    end_date: end,
                    weekly_cost_gbp: opt_num(row, "weekly_cost_gbp")?,
                    la_code: Some(la),
                    content_hash: String::new(),
                }
                .seal(),
            ),
        };
        Ok((person, rec))
    }

    fn gp(&mut self, row: &Row<'_>) -> (&'static str, RowOut) {
        let kind = match row.get("record_type") {
            Some("patient") => "person",
            Some("consultation") => "activity",
            Some("condition") => "condition",
            Some("observation") => "observation",
            Some("medication") => "medication",
            Some("referral") => "referral",
            Some("allergy") => "allergy",
            _ => "unknown",
        };
        (kind, self.gp_row(kind, row))
    }

    fn gp_row(&mut self, kind: &str, row: &Row<'_>) -> RowOut {
        if kind == "unknown" {
            return Err(match row.get("record_type") {
                None => Bad::new(
                    Reason::MissingRequired,
                    "column record_type is empty and is required",
                ),
                Some(t) => Bad::new(
                    Reason::UnknownResourceType,
                    format!(
                        "record_type {t:?} is not patient, consultation, condition, observation, medication, referral or allergy"
                    ),
                ),
            });
        }
        let id = req(row, "record_id")?.to_string();
        let source_person = req(row, "local_patient_id")?.to_string();
        if kind == "person" {
            let mut p = person_from(row, self.source, false, self.opts.today)?;
            p.source_id = source_person.clone();
            let p = p.seal();
            self.lives.insert(
                source_person,
                Life {
                    birth: p.birth_date,
                    death: p.death_date,
                },
            );
            return Ok((None, Staged::Person(p)));
        }
        let life = self.lives.get(&source_person).copied().unwrap_or_default();
        let ts = self.ts(row, "event_datetime", &life)?;
        let day = v::day_of(ts);
        let source = self.source.to_string();
        let code_of = |allowed: &[&str]| -> Result<(String, String), Bad> {
            let sys = v::one_of("code_system", req(row, "code_system")?, allowed)
                .map_err(|b| Bad::new(Reason::UnknownCodeSystem, b.message))?;
            let c = req(row, "code")?;
            let code = match sys.as_str() {
                "SNOMED" | "DMD" => v::snomed("code", c)?,
                "ICD10" => v::icd10("code", c)?,
                "BNF" => v::bnf("code", c)?,
                "TRENT" => {
                    if !c.starts_with("trent-") {
                        return Err(Bad::new(
                            Reason::InvalidCode,
                            format!("code {c:?} is not a trent- local code"),
                        ));
                    }
                    c.to_string()
                }
                _ => c.to_string(),
            };
            Ok((sys, code))
        };
        let rec = match kind {
            "activity" => Staged::Activity(
                StagedActivity {
                    source,
                    source_id: id,
                    source_person,
                    setting: "gp".into(),
                    start_ts: ts,
                    provider_code: Some(req(row, "gp_practice_code")?.to_string()),
                    cost_gbp: opt_num(row, "cost_gbp")?,
                    ..Default::default()
                }
                .seal(),
            ),
            "condition" => {
                let (code_system, code) = code_of(&["SNOMED", "ICD10"])?;
                Staged::Condition(
                    StagedCondition {
                        source,
                        source_id: id,
                        source_person,
                        code_system,
                        code,
                        recorded_date: day,
                        ..Default::default()
                    }
                    .seal(),
                )
            }
            "observation" => {
                let (code_system, code) = code_of(&["SNOMED", "TRENT"])?;
                let (value, unit) =
                    v::observation_unit(&code, opt_num(row, "value")?, row.get("unit"))?;
                Staged::Observation(
                    StagedObservation {
                        source,
                        source_id: id,
                        source_person,
                        code_system,
                        code,
                        value,
                        unit,
                        obs_date: day,
                        ..Default::default()
                    }
                    .seal(),
                )
            }
            "medication" => {
                let (code_system, code) = code_of(&["BNF", "DMD"])?;
                Staged::Medication(
                    StagedMedication {
                        source,
                        source_id: id,
                        source_person,
                        code_system,
                        code,
                        kind: "request".into(),
                        issue_date: day,
                        cost_gbp: opt_num(row, "cost_gbp")?,
                        days_supply: opt_int(row, "days_supply")?,
                        ..Default::default()
                    }
                    .seal(),
                )
            }
            "referral" => Staged::Referral(
                StagedReferral {
                    source,
                    source_id: id,
                    source_person,
                    practice_code: row.get("gp_practice_code").map(str::to_string),
                    specialty: Some(req(row, "specialty")?.to_string()),
                    referral_date: day,
                    priority: v::one_of("priority", req(row, "priority")?, PRIORITIES)?,
                    content_hash: String::new(),
                }
                .seal(),
            ),
            _ => {
                let (code_system, code) = code_of(&["SNOMED", "DMD"])?;
                Staged::Allergy(
                    StagedAllergy {
                        source,
                        source_id: id,
                        source_person,
                        code_system,
                        code,
                        recorded_date: day,
                        ..Default::default()
                    }
                    .seal(),
                )
            }
        };
        Ok((None, rec))
    }
}
