//! OMOP CDM v5.3/v5.4 tables (CSV, tab- or comma-separated) into staged records.
//!
//! OMOP standard concept ids are *not* SNOMED CT or ICD-10 codes, and trent ships no
//! vocabulary. So each clinical row is coded from its `*_source_value`, where OMOP
//! ETLs (Synthea's, Eunomia's) keep the source code — SNOMED CT for conditions and
//! procedures, LOINC for measurements, RxNorm for drugs — validated as that system, and
//! the standard concept id is kept beside it (`omop_concept_id`). A row whose source
//! value is empty or not a valid code of any system the field takes is rejected:
//! trent will not guess a code from a concept id. See `docs/feeds.md` for the mapping.
//!
//! Rows are read by column name through [`Fields`], so the lead can drive
//! [`OmopReader::row`] from Arrow record batches for Parquet OMOP; [`read_omop_dir`] is
//! the CSV path. `death` rows are merged into their person (OMOP keeps death apart; the
//! lake keeps it on the person): a death row for a person not in `person` is
//! `dangling_reference`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::csv_feeds::{Fields, Row, records};
use crate::reject::{Bad, Position, Reason, Rejection};
use crate::sink::{Origin, Raw, Sink};
use crate::stage::*;
use crate::validate::{self as v, Life};
use crate::{FeedError, ReadOptions};

/// The OMOP tables read, in reading order (`death` before `person`, so deaths can be
/// merged; `person` before events, so event dates can be checked against life).
pub const OMOP_TABLES: &[&str] = &[
    "death",
    "person",
    "visit_occurrence",
    "condition_occurrence",
    "drug_exposure",
    "measurement",
    "observation",
    "procedure_occurrence",
];

/// OMOP visit concepts → trent care settings (OMOP "Visit" domain standard concepts).
pub const VISIT_SETTINGS: &[(i64, &str, Option<&str>)] = &[
    (9201, "apc", None),             // Inpatient Visit
    (9202, "op", None),              // Outpatient Visit
    (9203, "ae", None),              // Emergency Room Visit
    (262, "apc", Some("emergency")), // Emergency Room and Inpatient Visit
    (32037, "apc", None),            // Intensive Care
    (581476, "community", None),     // Home Visit
    (42898160, "community", None),   // Non-hospital institution Visit
    (581458, "gp", None),            // Pharmacy visit → primary care contact
    (38004193, "gp", None),          // Case Management Visit (Synthea wellness)
];

/// One OMOP table's rows in, staged records out, with the state that spans tables.
#[derive(Debug, Default)]
pub struct OmopReader {
    source: String,
    today: i32,
    lives: HashMap<String, Life>,
    deaths: HashMap<String, (i32, Option<String>, bool)>,
}

/// An id column: trimmed, a pandas-style `123.0` read as `123`.
fn id<'a>(row: &'a dyn Fields, col: &str) -> Result<&'a str, Bad> {
    let x = row.get(col).ok_or_else(|| {
        Bad::new(
            Reason::MissingRequired,
            format!("column {col} is empty and is required"),
        )
    })?;
    Ok(x.strip_suffix(".0")
        .filter(|s| s.bytes().all(|c| c.is_ascii_digit()))
        .unwrap_or(x))
}

fn concept(row: &dyn Fields, col: &str) -> Result<Option<i64>, Bad> {
    match row.get(col) {
        None => Ok(None),
        Some(x) => {
            let t = x.strip_suffix(".0").unwrap_or(x);
            t.parse::<i64>().map(Some).map_err(|_| {
                Bad::new(
                    Reason::InvalidValue,
                    format!("{col}: {x:?} is not a concept id"),
                )
            })
        }
    }
}

/// A date column: `YYYY-MM-DD`, a datetime (date part), or `YYYYMMDD`.
fn date(row: &dyn Fields, col: &str) -> Result<Option<i32>, Bad> {
    let Some(x) = row.get(col) else {
        return Ok(None);
    };
    if x.len() == 8 && x.bytes().all(|c| c.is_ascii_digit()) {
        let iso = format!("{}-{}-{}", &x[..4], &x[4..6], &x[6..]);
        return v::parse_date(col, &iso).map(Some);
    }
    if x.len() > 10 && x.is_char_boundary(10) {
        v::parse_datetime(col, x, false)?;
        return v::parse_date(col, &x[..10]).map(Some);
    }
    v::parse_date(col, x).map(Some)
}

fn req_date(row: &dyn Fields, col: &str) -> Result<i32, Bad> {
    date(row, col)?.ok_or_else(|| {
        Bad::new(
            Reason::MissingRequired,
            format!("column {col} is empty and is required"),
        )
    })
}

fn num(row: &dyn Fields, col: &str) -> Result<Option<f64>, Bad> {
    row.get(col).map(|x| v::number(col, x)).transpose()
}

/// Code a source value as the first of `systems` it is valid in.
fn source_code(row: &dyn Fields, col: &str, systems: &[&str]) -> Result<(String, String), Bad> {
    let x = row.get(col).ok_or_else(|| {
        Bad::new(
            Reason::MissingRequired,
            format!("{col} is empty: an OMOP concept id alone is not a code trent can store"),
        )
    })?;
    for sys in systems {
        let r = match *sys {
            "SNOMED" => v::snomed(col, x),
            "DMD" => v::snomed(col, x),
            "ICD10" => v::icd10(col, x),
            "OPCS4" => v::opcs4(col, x),
            "BNF" => v::bnf(col, x),
            "LOINC" => {
                let ok = x.split_once('-').is_some_and(|(a, b)| {
                    (1..=7).contains(&a.len())
                        && a.bytes().all(|c| c.is_ascii_digit())
                        && b.len() == 1
                        && b.bytes().all(|c| c.is_ascii_digit())
                });
                if ok {
                    Ok(x.to_string())
                } else {
                    Err(Bad::new(Reason::InvalidCode, ""))
                }
            }
            "RXNORM" => {
                if !x.is_empty() && x.len() <= 12 && x.bytes().all(|c| c.is_ascii_digit()) {
                    Ok(x.to_string())
                } else {
                    Err(Bad::new(Reason::InvalidCode, ""))
                }
            }
            "TRENT" => {
                if x.starts_with("trent-") {
                    Ok(x.to_string())
                } else {
                    Err(Bad::new(Reason::InvalidCode, ""))
                }
            }
            _ => Err(Bad::new(Reason::InvalidCode, "")),
        };
        if let Ok(code) = r {
            return Ok((sys.to_string(), code));
        }
    }
    Err(Bad::new(
        Reason::InvalidCode,
        format!(
            "{col}: {x:?} is not a valid code of {}",
            systems.join(" or ")
        ),
    ))
}

impl OmopReader {
    /// A reader for one OMOP source.
    pub fn new(source: &str, opts: &ReadOptions) -> OmopReader {
        OmopReader {
            source: source.to_string(),
            today: opts.today,
            ..Default::default()
        }
    }

    fn check(&self, person: &str, col: &str, day: i32) -> Result<(), Bad> {
        self.lives
            .get(person)
            .copied()
            .unwrap_or_default()
            .check(col, day, self.today)
    }

    /// Persons with a death row but no person row (call after every table is read):
    /// `(person_id, death row was consumed)`.
    pub fn unmatched_deaths(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .deaths
            .iter()
            .filter(|(_, (_, _, used))| !used)
            .map(|(k, _)| k.clone())
            .collect();
        v.sort();
        v
    }

    /// Read one row of `table`. `Ok(None)` for a `death` row (merged into its person,
    /// which must be read after it).
    pub fn row(&mut self, table: &str, row: &dyn Fields) -> Result<Option<Staged>, Bad> {
        let src = self.source.clone();
        let tid = |col: &str| -> Result<String, Bad> { Ok(format!("{table}/{}", id(row, col)?)) };
        let rec = match table {
            "death" => {
                let p = id(row, "person_id")?.to_string();
                let d = req_date(row, "death_date")?;
                let cause = row
                    .get("cause_source_value")
                    .map(|c| v::icd10("cause_source_value", c))
                    .transpose()
                    .unwrap_or(None);
                if d > self.today {
                    return Err(Life::default()
                        .check("death_date", d, self.today)
                        .unwrap_err());
                }
                self.deaths.insert(p, (d, cause, false));
                return Ok(None);
            }
            "person" => {
                let pid = id(row, "person_id")?.to_string();
                let gender = concept(row, "gender_concept_id")?;
                let year = row.get("year_of_birth").ok_or_else(|| {
                    Bad::new(
                        Reason::MissingRequired,
                        "column year_of_birth is empty and is required",
                    )
                })?;
                let birth = match date(row, "birth_datetime")? {
                    Some(d) => Some(d),
                    None => match (row.get("month_of_birth"), row.get("day_of_birth")) {
                        (Some(m), Some(d)) => {
                            let num = |s: &str| s.strip_suffix(".0").unwrap_or(s).to_string();
                            let iso = format!("{:0>4}-{:0>2}-{:0>2}", num(year), num(m), num(d));
                            Some(v::parse_date("year/month/day_of_birth", &iso)?)
                        }
                        _ => None,
                    },
                };
                if let Some(b) = birth {
                    Life::default().check("birth_date", b, self.today)?;
                }
                let (death, cause) = match self.deaths.get_mut(&pid) {
                    Some((d, c, used)) => {
                        *used = true;
                        if let Some(b) = birth
                            && *d < b
                        {
                            return Err(Bad::new(
                                Reason::DateBeforeBirth,
                                format!(
                                    "death_date {} is before birth {}",
                                    trent_model::time::iso(*d),
                                    trent_model::time::iso(b)
                                ),
                            ));
                        }
                        (Some(*d), c.clone())
                    }
                    None => (None, None),
                };
                self.lives.insert(pid.clone(), Life { birth, death });
                Staged::Person(
                    StagedPerson {
                        source: src,
                        source_id: pid,
                        derived: false,
                        birth_date: birth,
                        sex: match gender {
                            Some(8507) => Some("M".into()),
                            Some(8532) => Some("F".into()),
                            _ => None,
                        },
                        death_date: death,
                        death_cause: cause,
                        omop_concepts: Some(format!(
                            "gender={};race={};ethnicity={}",
                            gender.map(|g| g.to_string()).unwrap_or_default(),
                            concept(row, "race_concept_id")?
                                .map(|g| g.to_string())
                                .unwrap_or_default(),
                            concept(row, "ethnicity_concept_id")?
                                .map(|g| g.to_string())
                                .unwrap_or_default()
                        )),
                        practice_code: row.get("care_site_id").map(str::to_string),
                        ..Default::default()
                    }
                    .seal(),
                )
            }
            "visit_occurrence" => {
                let person = id(row, "person_id")?.to_string();
                let c = concept(row, "visit_concept_id")?.ok_or_else(|| {
                    Bad::new(
                        Reason::MissingRequired,
                        "column visit_concept_id is empty and is required",
                    )
                })?;
                let (_, setting, method) = VISIT_SETTINGS.iter().find(|(k, _, _)| *k == c).ok_or_else(|| {
                    Bad::new(
                        Reason::InvalidCode,
                        format!("visit_concept_id {c} is not a visit concept trent maps to a care setting"),
                    )
                })?;
                let start = req_date(row, "visit_start_date")?;
                self.check(&person, "visit_start_date", start)?;
                let start_ts = match row.get("visit_start_datetime") {
                    Some(x) if x.len() > 10 => v::parse_datetime("visit_start_datetime", x, false)?,
                    _ => i64::from(start) * 86_400,
                };
                let end = date(row, "visit_end_date")?;
                if let Some(e) = end {
                    if e < start {
                        return Err(Bad::new(
                            Reason::InvalidDate,
                            "visit_end_date is before visit_start_date",
                        ));
                    }
                    self.check(&person, "visit_end_date", e)?;
                }
                let end_ts = match (row.get("visit_end_datetime"), end) {
                    (Some(x), Some(_)) if x.len() > 10 => {
                        Some(v::parse_datetime("visit_end_datetime", x, false)?.max(start_ts))
                    }
                    (_, Some(e)) => Some(i64::from(e) * 86_400),
                    _ => None,
                };
                Staged::Activity(
                    StagedActivity {
                        source: src,
                        source_id: tid("visit_occurrence_id")?,
                        source_person: person,
                        setting: setting.to_string(),
                        start_ts,
                        end_ts,
                        provider_code: row
                            .get("care_site_id")
                            .or(row.get("provider_id"))
                            .map(str::to_string),
                        admission_method: method.map(str::to_string),
                        los_days: if *setting == "apc" {
                            end.map(|e| e - start)
                        } else {
                            None
                        },
                        omop_concept_id: Some(c),
                        ..Default::default()
                    }
                    .seal(),
                )
            }
            "condition_occurrence" => {
                let person = id(row, "person_id")?.to_string();
                let (code_system, code) =
                    source_code(row, "condition_source_value", &["SNOMED", "ICD10"])?;
                let d = req_date(row, "condition_start_date")?;
                self.check(&person, "condition_start_date", d)?;
                Staged::Condition(
                    StagedCondition {
                        source: src,
                        source_id: tid("condition_occurrence_id")?,
                        source_person: person,
                        code_system,
                        code,
                        recorded_date: d,
                        source_activity: row
                            .get("visit_occurrence_id")
                            .map(|_| id(row, "visit_occurrence_id"))
                            .transpose()?
                            .map(|x| format!("visit_occurrence/{x}")),
                        omop_concept_id: concept(row, "condition_concept_id")?,
                        content_hash: String::new(),
                    }
                    .seal(),
                )
            }
            "drug_exposure" => {
                let person = id(row, "person_id")?.to_string();
                let (code_system, code) =
                    source_code(row, "drug_source_value", &["BNF", "DMD", "RXNORM"])?;
                let d = req_date(row, "drug_exposure_start_date")?;
                self.check(&person, "drug_exposure_start_date", d)?;
                let days = match num(row, "days_supply")? {
                    Some(x) if x < 0.0 || x.fract() != 0.0 => {
                        return Err(Bad::new(
                            Reason::InvalidValue,
                            format!("days_supply {x} is not a whole number of days"),
                        ));
                    }
                    x => x.map(|x| x as i32),
                };
                Staged::Medication(
                    StagedMedication {
                        source: src,
                        source_id: tid("drug_exposure_id")?,
                        source_person: person,
                        code_system,
                        code,
                        kind: "statement".into(),
                        issue_date: d,
                        cost_gbp: None,
                        days_supply: days,
                        omop_concept_id: concept(row, "drug_concept_id")?,
                        content_hash: String::new(),
                    }
                    .seal(),
                )
            }
            "measurement" | "observation" => {
                let person = id(row, "person_id")?.to_string();
                let (code_system, code) = source_code(
                    row,
                    &format!("{table}_source_value"),
                    &["SNOMED", "LOINC", "TRENT"],
                )?;
                let d = req_date(row, &format!("{table}_date"))?;
                self.check(&person, &format!("{table}_date"), d)?;
                let (value, unit) = v::observation_unit(
                    &code,
                    num(row, "value_as_number")?,
                    row.get("unit_source_value"),
                )?;
                Staged::Observation(
                    StagedObservation {
                        source: src,
                        source_id: tid(&format!("{table}_id"))?,
                        source_person: person,
                        code_system,
                        code,
                        value,
                        unit,
                        obs_date: d,
                        omop_concept_id: concept(row, &format!("{table}_concept_id"))?,
                        content_hash: String::new(),
                    }
                    .seal(),
                )
            }
            "procedure_occurrence" => {
                let person = id(row, "person_id")?.to_string();
                let (code_system, code) =
                    source_code(row, "procedure_source_value", &["SNOMED", "OPCS4"])?;
                let d = req_date(row, "procedure_date")?;
                self.check(&person, "procedure_date", d)?;
                Staged::Procedure(
                    StagedProcedure {
                        source: src,
                        source_id: tid("procedure_occurrence_id")?,
                        source_person: person,
                        code_system,
                        code,
                        performed_date: d,
                        source_activity: row
                            .get("visit_occurrence_id")
                            .map(|_| id(row, "visit_occurrence_id"))
                            .transpose()?
                            .map(|x| format!("visit_occurrence/{x}")),
                        omop_concept_id: concept(row, "procedure_concept_id")?,
                        content_hash: String::new(),
                    }
                    .seal(),
                )
            }
            other => {
                return Err(Bad::new(
                    Reason::UnknownResourceType,
                    format!(
                        "OMOP table {other:?} is not read (reads {})",
                        OMOP_TABLES.join(", ")
                    ),
                ));
            }
        };
        Ok(Some(rec))
    }
}

/// The file of an OMOP table in `dir` (`person.csv`, `PERSON.csv`, `.tsv`, `.txt`).
pub fn table_file(dir: &Path, table: &str) -> Option<PathBuf> {
    for name in [table.to_string(), table.to_ascii_uppercase()] {
        for ext in ["csv", "tsv", "txt"] {
            let p = dir.join(format!("{name}.{ext}"));
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// Read every OMOP table found in `dir` ([`OMOP_TABLES`]; other files, such as the
/// vocabulary tables, are not read). Only I/O fails.
pub fn read_omop_dir(
    dir: &Path,
    source: &str,
    opts: &ReadOptions,
    sink: &mut dyn Sink,
) -> Result<(), FeedError> {
    let mut reader = OmopReader::new(source, opts);
    let mut death_lines: HashMap<String, (String, u64, String)> = HashMap::new();
    for table in OMOP_TABLES {
        let Some(path) = table_file(dir, table) else {
            continue;
        };
        let data = std::fs::read(&path).map_err(|e| FeedError::io(&path, e))?;
        let file = path.display().to_string();
        let text = String::from_utf8_lossy(&data);
        let delim = if text.lines().next().is_some_and(|h| h.contains('\t')) {
            b'\t'
        } else {
            b','
        };
        let recs: Vec<_> = records(&text, delim).collect();
        let Some((head, body)) = recs.split_first() else {
            continue;
        };
        let kind = match *table {
            "person" | "death" => "person",
            "visit_occurrence" => "activity",
            "condition_occurrence" => "condition",
            "drug_exposure" => "medication",
            "procedure_occurrence" => "procedure",
            _ => "observation",
        };
        let reject = |sink: &mut dyn Sink, line: u64, bad: Bad, raw: &str| {
            sink.reject(Rejection {
                source: source.to_string(),
                file: file.clone(),
                position: Position::line(line),
                resource_type: Some(kind.to_string()),
                reason: bad.reason,
                message: format!("{table}: {}", bad.message),
                raw: raw.to_string(),
            })
        };
        let header: Vec<String> = match &head.fields {
            Ok(h) => h
                .iter()
                .map(|c| c.trim().trim_matches('"').to_ascii_lowercase())
                .collect(),
            Err(e) => {
                for r in &recs {
                    reject(
                        sink,
                        r.line,
                        Bad::new(Reason::WrongHeader, format!("malformed header: {e}")),
                        r.raw,
                    );
                }
                continue;
            }
        };
        let index: HashMap<String, usize> = header
            .iter()
            .enumerate()
            .map(|(i, c)| (c.clone(), i))
            .collect();
        let key = format!("{table}_id");
        let need = if *table == "death" || *table == "person" {
            "person_id"
        } else {
            key.as_str()
        };
        if !index.contains_key(need) || !index.contains_key("person_id") {
            let bad = Bad::new(
                Reason::WrongHeader,
                format!("header has no {need} column: not an OMOP {table} table"),
            );
            for r in &recs {
                reject(sink, r.line, bad.clone(), r.raw);
            }
            continue;
        }
        for r in body {
            let fields = match &r.fields {
                Ok(f) if f.len() == header.len() => f,
                Ok(f) => {
                    let reason = if r.terminated {
                        Reason::MalformedCsv
                    } else {
                        Reason::TruncatedFile
                    };
                    reject(
                        sink,
                        r.line,
                        Bad::new(
                            reason,
                            format!("{} fields, the header has {}", f.len(), header.len()),
                        ),
                        r.raw,
                    );
                    continue;
                }
                Err(e) => {
                    let reason = if r.terminated {
                        Reason::MalformedCsv
                    } else {
                        Reason::TruncatedFile
                    };
                    reject(sink, r.line, Bad::new(reason, e.clone()), r.raw);
                    continue;
                }
            };
            let row = Row {
                index: &index,
                fields,
            };
            match reader.row(table, &row) {
                Ok(Some(rec)) => sink.record(
                    rec,
                    &Origin {
                        file: &file,
                        line: r.line,
                        entry: None,
                        raw: Raw::Text(r.raw),
                    },
                ),
                Ok(None) => {
                    if let Some(p) = row.get("person_id") {
                        death_lines.insert(
                            p.strip_suffix(".0").unwrap_or(p).to_string(),
                            (file.clone(), r.line, r.raw.to_string()),
                        );
                    }
                }
                Err(bad) => reject(sink, r.line, bad, r.raw),
            }
        }
    }
    for p in reader.unmatched_deaths() {
        if let Some((file, line, raw)) = death_lines.remove(&p) {
            sink.reject(Rejection {
                source: source.to_string(),
                file,
                position: Position::line(line),
                resource_type: Some("person".into()),
                reason: Reason::DanglingReference,
                message: format!("death: person_id {p} is not in the person table"),
                raw,
            });
        }
    }
    Ok(())
}
