//! The FHIR R4 reader: Bundles (transaction, batch, collection …) and Bulk Data NDJSON.
//!
//! A file is either one JSON value (a Bundle or a single resource, pretty-printed or
//! not; `.json`) or NDJSON, one value per line (`.ndjson`; Bulk Data export files and
//! `trent synth --format fhir`, whose lines are whole transaction Bundles). Other
//! extensions are sniffed: a file that parses as one JSON value is one value.
//!
//! Resources are read as `serde_json::Value` (trent has no FHIR model crate, see
//! `docs/ARCHITECTURE.md`) and checked for the R4 cardinalities of the elements trent
//! reads (e.g. `Condition.subject` 1..1, `Observation.status` and `.code` 1..1) plus what
//! the lake needs (a date for every event). What `trent-fhir` writes is read back
//! exactly (tested), and general R4 as the specification's examples write it.
//!
//! **Identity of a resource** (`source_id`): its `id`; else its first identifier as
//! `system|value`; else the bundle entry's `fullUrl`. A reference to a patient resolves
//! to that patient's `source_id`: `urn:uuid:` references through the bundle's
//! `fullUrl`s (a miss is `dangling_reference`), `Patient/{id}` to `{id}` (the patient
//! may be in another file or only in the vault: see [`crate::Batch::unresolved`]), a
//! logical reference by identifier to `system|value`.
//!
//! Entries with `request.method = DELETE` become [`crate::stage::Deleted`].

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;
use trent_fhir::{
    BNF, ETHNIC_EXTENSION, ICD10, NHS_NUMBER, ODS_CODE, SNOMED, TREATMENT_FUNCTION, TRENT_BASE,
    UCUM, code_system,
};

use crate::reject::{Bad, Position, Reason, Rejection};
use crate::sink::{Origin, Raw, Sink};
use crate::stage::*;
use crate::validate::{self as v, Life};
use crate::{FeedError, ReadOptions};

/// dm+d code system (NHSBSA).
pub const DMD: &str = "https://dmd.nhs.uk";
/// LOINC.
pub const LOINC: &str = "http://loinc.org";
/// RxNorm.
pub const RXNORM: &str = "http://www.nlm.nih.gov/research/umls/rxnorm";
/// OPCS-4 as UK Core names it.
pub const OPCS4: &str = "http://hl7.org/fhir/sid/opcs-4";

/// The resource types this reader takes.
pub const RESOURCE_TYPES: &[&str] = &[
    "Patient",
    "Encounter",
    "EpisodeOfCare",
    "Condition",
    "Observation",
    "MedicationRequest",
    "MedicationStatement",
    "Procedure",
    "ServiceRequest",
    "AllergyIntolerance",
];

/// Read one FHIR file (a Bundle or resource as one JSON value, or NDJSON) into `sink`.
/// Only I/O fails; bad content becomes rejections.
pub fn read_fhir_file(
    path: &Path,
    source: &str,
    opts: &ReadOptions,
    sink: &mut dyn Sink,
) -> Result<(), FeedError> {
    let data = std::fs::read(path).map_err(|e| FeedError::io(path, e))?;
    let file = path.display().to_string();
    let ndjson = match path.extension().and_then(|e| e.to_str()) {
        Some("ndjson") | Some("jsonl") => Some(true),
        Some("json") => Some(false),
        _ => None,
    };
    read_fhir_bytes(&data, &file, ndjson, source, opts, sink);
    Ok(())
}

/// Read FHIR from memory. `ndjson`: `Some(true)` NDJSON, `Some(false)` one JSON value,
/// `None` sniff (one value if the whole input parses as one, else NDJSON).
pub fn read_fhir_bytes(
    data: &[u8],
    file: &str,
    ndjson: Option<bool>,
    source: &str,
    opts: &ReadOptions,
    sink: &mut dyn Sink,
) {
    let mut cx = Cx {
        source,
        file,
        opts,
        lives: HashMap::new(),
    };
    let whole = match ndjson {
        Some(true) => None,
        Some(false) => Some(serde_json::from_slice::<Value>(data)),
        None => {
            let trimmed = data.iter().filter(|b| !b.is_ascii_whitespace()).count();
            if trimmed == 0 {
                return;
            }
            match serde_json::from_slice::<Value>(data) {
                Ok(v) => Some(Ok(v)),
                Err(_) => None,
            }
        }
    };
    match whole {
        Some(Ok(v)) => cx.value(&v, 1, sink),
        Some(Err(e)) => {
            if data.iter().all(u8::is_ascii_whitespace) {
                return;
            }
            let reason = if e.is_eof() {
                Reason::TruncatedFile
            } else {
                Reason::MalformedJson
            };
            sink.reject(Rejection {
                source: source.to_string(),
                file: file.to_string(),
                position: Position::line(e.line() as u64),
                resource_type: None,
                reason,
                message: format!("not valid JSON: {e}"),
                raw: String::from_utf8_lossy(data).into_owned(),
            });
        }
        None => {
            let ends_with_newline = data.last() == Some(&b'\n');
            let mut line_no = 0u64;
            let mut rest = data;
            while !rest.is_empty() {
                line_no += 1;
                let (line, next) = match rest.iter().position(|b| *b == b'\n') {
                    Some(i) => (&rest[..i], &rest[i + 1..]),
                    None => (rest, &rest[rest.len()..]),
                };
                rest = next;
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                match serde_json::from_slice::<Value>(line) {
                    Ok(v) => cx.value(&v, line_no, sink),
                    Err(e) => {
                        let last = rest.is_empty() && !ends_with_newline;
                        let reason = if last && e.is_eof() {
                            Reason::TruncatedFile
                        } else {
                            Reason::MalformedJson
                        };
                        sink.reject(Rejection {
                            source: source.to_string(),
                            file: file.to_string(),
                            position: Position::line(line_no),
                            resource_type: None,
                            reason,
                            message: if reason == Reason::TruncatedFile {
                                format!("last line ends without a newline inside a JSON value: {e}")
                            } else {
                                format!("not valid JSON: {e}")
                            },
                            raw: String::from_utf8_lossy(line).into_owned(),
                        });
                    }
                }
            }
        }
    }
}

fn s<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k)?.as_str().map(str::trim).filter(|s| !s.is_empty())
}

fn required<'a>(r: &'a Value, rt: &str, k: &str) -> Result<&'a str, Bad> {
    match r.get(k) {
        None | Some(Value::Null) => Err(Bad::new(
            Reason::MissingRequired,
            format!("{rt}.{k} is required (1..1) and missing"),
        )
        .at(format!("/{k}"))),
        Some(Value::String(x)) if !x.trim().is_empty() => Ok(x.trim()),
        Some(other) => Err(Bad::new(
            Reason::InvalidValue,
            format!("{rt}.{k} must be a non-empty string, found {other}"),
        )
        .at(format!("/{k}"))),
    }
}

fn status(r: &Value, rt: &str, allowed: &[&str]) -> Result<(), Bad> {
    let st = required(r, rt, "status")?;
    if allowed.contains(&st) {
        Ok(())
    } else {
        Err(Bad::new(
            Reason::InvalidCode,
            format!("{rt}.status {st:?} is not one of {}", allowed.join(", ")),
        )
        .at("/status"))
    }
}

/// The (system, code) pairs of a CodeableConcept.
fn codings(cc: Option<&Value>) -> impl Iterator<Item = (&str, &str)> {
    cc.and_then(|c| c.get("coding"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| Some((s(c, "system").unwrap_or(""), s(c, "code")?)))
}

fn array<'a>(v: &'a Value, k: &str) -> &'a [Value] {
    v.get(k)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// True when `url` is `{TRENT_BASE}/{kind}/{name}` (compared without allocating).
fn is_trent_url(url: &str, kind: &str, name: &str) -> bool {
    url.strip_prefix(TRENT_BASE)
        .and_then(|r| r.strip_prefix('/'))
        .and_then(|r| r.strip_prefix(kind))
        .and_then(|r| r.strip_prefix('/'))
        == Some(name)
}

/// The value of an extension with one of trent's URLs.
fn extension<'a>(r: &'a Value, name: &str) -> Option<&'a Value> {
    array(r, "extension")
        .iter()
        .find(|e| s(e, "url").is_some_and(|u| is_trent_url(u, "StructureDefinition", name)))
}

fn ext_code(r: &Value, name: &str) -> Option<String> {
    extension(r, name)
        .and_then(|e| e.get("valueCoding"))
        .and_then(|c| s(c, "code"))
        .map(str::to_string)
}

fn ext_money(r: &Value, name: &str) -> Result<Option<f64>, Bad> {
    match extension(r, name).and_then(|e| e.get("valueMoney")) {
        None => Ok(None),
        Some(m) => match m.get("value").and_then(Value::as_f64) {
            Some(x) => Ok(Some(x)),
            None => Err(Bad::new(
                Reason::InvalidValue,
                format!("extension {name}: valueMoney.value is not a number"),
            )
            .at("/extension")),
        },
    }
}

/// A code from a trent code system in a CodeableConcept.
fn trent_code(cc: Option<&Value>, system: &str) -> Option<String> {
    codings(cc)
        .find(|(s, _)| is_trent_url(s, "CodeSystem", system))
        .map(|(_, c)| c.to_string())
}

/// An organisation code from an `identifier` (ODS/ONS) or a `Organization/{id}` reference.
fn org_code(r: Option<&Value>) -> Option<String> {
    let r = r?;
    if let Some(id) = r.get("identifier")
        && let Some(v) = s(id, "value")
    {
        return Some(v.to_string());
    }
    let rf = s(r, "reference")?;
    rf.rsplit_once("Organization/")
        .map(|(_, id)| id.trim_end_matches('/').to_string())
}

struct Cx<'a> {
    source: &'a str,
    file: &'a str,
    opts: &'a ReadOptions,
    /// Patients' birth and death dates by source id, from this file.
    lives: HashMap<String, Life>,
}

/// fullUrl (and `Type/id`) → (resource type, source id) of a bundle's entries.
#[derive(Default)]
struct Index<'a> {
    by_url: HashMap<&'a str, (&'a str, usize)>,
    by_type_id: HashMap<String, (&'a str, usize)>,
    ids: Vec<Option<String>>,
}

impl Index<'_> {
    fn get(&self, key: &str) -> Option<(&str, &str)> {
        let (rt, i) = self.by_url.get(key).or_else(|| self.by_type_id.get(key))?;
        Some((rt, self.ids[*i].as_deref()?))
    }
}

/// What a reference resolved to.
fn resolve(
    idx: Option<&Index<'_>>,
    reference: Option<&Value>,
    want: &str,
    field: &str,
) -> Result<Option<String>, Bad> {
    let Some(rv) = reference else {
        return Ok(None);
    };
    if let Some(rf) = s(rv, "reference") {
        if rf.starts_with("urn:uuid:") || rf.starts_with("urn:oid:") {
            return match idx.and_then(|i| i.get(rf)) {
                Some((rt, id)) if rt == want => Ok(Some(id.to_string())),
                Some((rt, _)) => Err(Bad::new(
                    Reason::DanglingReference,
                    format!("{field}: {rf} is a {rt}, expected a {want}"),
                )),
                None => Err(Bad::new(
                    Reason::DanglingReference,
                    format!("{field}: {rf} is not the fullUrl of any entry of the bundle"),
                )),
            };
        }
        // relative or absolute RESTful reference, maybe with _history
        let mut parts: Vec<&str> = rf.split('/').collect();
        if parts.len() >= 4 && parts[parts.len() - 2] == "_history" {
            parts.truncate(parts.len() - 2);
        }
        if parts.len() >= 2 && parts[parts.len() - 2] == want {
            let id = parts[parts.len() - 1];
            // a bundle entry with that id or fullUrl
            if let Some(i) = idx {
                if let Some((rt, sid)) = i.get(rf)
                    && rt == want
                {
                    return Ok(Some(sid.to_string()));
                }
                if let Some((_, sid)) = i.get(&format!("{want}/{id}")) {
                    return Ok(Some(sid.to_string()));
                }
            }
            if !id.is_empty() {
                return Ok(Some(id.to_string()));
            }
        }
        return Err(Bad::new(
            Reason::DanglingReference,
            format!("{field}: {rf:?} is not a reference to a {want}"),
        ));
    }
    if let Some(id) = rv.get("identifier")
        && let (Some(sys), Some(val)) = (s(id, "system"), s(id, "value"))
    {
        let val = if sys == NHS_NUMBER {
            v::nhs_number(&format!("{field}.identifier"), val)?
        } else {
            val.to_string()
        };
        return Ok(Some(format!("{sys}|{val}")));
    }
    Err(Bad::new(
        Reason::DanglingReference,
        format!("{field}: a reference with neither reference nor identifier"),
    ))
}

fn required_ref(
    idx: Option<&Index<'_>>,
    r: &Value,
    rt: &str,
    k: &str,
    want: &str,
) -> Result<String, Bad> {
    match resolve(idx, r.get(k), want, &format!("{rt}.{k}")) {
        Ok(Some(x)) => Ok(x),
        Ok(None) => Err(Bad::new(
            Reason::MissingRequired,
            format!("{rt}.{k} is required (1..1) and missing"),
        )
        .at(format!("/{k}"))),
        Err(e) => Err(e.at(format!("/{k}"))),
    }
}

/// The identity of a resource in its source.
fn source_id(r: &Value, full_url: Option<&str>) -> Option<String> {
    if let Some(id) = s(r, "id") {
        return Some(id.to_string());
    }
    for i in array(r, "identifier") {
        if let (Some(sys), Some(val)) = (s(i, "system"), s(i, "value")) {
            let val = if sys == NHS_NUMBER {
                v::nhs_number("identifier", val).unwrap_or_else(|_| val.to_string())
            } else {
                val.to_string()
            };
            return Some(format!("{sys}|{val}"));
        }
    }
    full_url.map(str::to_string)
}

/// The date of a FHIR `date` or `dateTime` as written (the whole value validated).
fn fhir_date(field: &str, x: &str) -> Result<i32, Bad> {
    v::parse_datetime(field, x, true)?;
    v::parse_date(field, x.get(..10).unwrap_or(x))
}

fn life_of_patient(r: &Value) -> Life {
    Life {
        birth: s(r, "birthDate").and_then(|d| v::parse_date("", d).ok()),
        death: s(r, "deceasedDateTime")
            .and_then(|d| v::parse_datetime("", d, true).ok())
            .map(v::day_of),
    }
}

/// A date from a date/dateTime element: the date as written (before any offset).
fn event_day(r: &Value, rt: &str, keys: &[&str]) -> Result<(i32, &'static str), Bad> {
    for k in keys {
        let (val, ptr) = match k.split_once('.') {
            Some((a, b)) => (r.get(a).and_then(|x| s(x, b)), format!("/{a}/{b}")),
            None => (s(r, k), format!("/{k}")),
        };
        if let Some(x) = val {
            let field = format!("{rt}.{k}");
            let d = fhir_date(&field, x).map_err(|e| e.at(ptr))?;
            return Ok((d, leak(k)));
        }
    }
    Err(Bad::new(
        Reason::MissingRequired,
        format!("{rt}: no date ({} all missing)", keys.join(", ")),
    ))
}

fn leak(k: &str) -> &'static str {
    // the handful of element names used with event_day
    const NAMES: &[&str] = &[
        "recordedDate",
        "onsetDateTime",
        "onsetPeriod.start",
        "effectiveDateTime",
        "effectivePeriod.start",
        "issued",
        "authoredOn",
        "dateAsserted",
        "performedDateTime",
        "performedPeriod.start",
    ];
    NAMES.iter().find(|n| **n == k).copied().unwrap_or("date")
}

impl Cx<'_> {
    fn life(&self, person: &str) -> Life {
        self.lives.get(person).copied().unwrap_or_default()
    }

    fn check(&self, person: &str, field: &str, day: i32) -> Result<(), Bad> {
        self.life(person).check(field, day, self.opts.today)
    }

    #[allow(clippy::too_many_arguments)]
    fn reject_value(
        &self,
        line: u64,
        entry: Option<usize>,
        rt: Option<&str>,
        bad: Bad,
        base: &str,
        raw: String,
        sink: &mut dyn Sink,
    ) {
        sink.reject(Rejection {
            source: self.source.to_string(),
            file: self.file.to_string(),
            position: Position {
                line,
                entry,
                pointer: Some(format!("{base}{}", bad.pointer.as_deref().unwrap_or(""))),
            },
            resource_type: rt.map(str::to_string),
            reason: bad.reason,
            message: bad.message,
            raw,
        });
    }

    /// One top-level JSON value: a Bundle or a resource.
    fn value(&mut self, val: &Value, line: u64, sink: &mut dyn Sink) {
        if s(val, "resourceType") == Some("Bundle") {
            self.bundle(val, line, sink);
            return;
        }
        let id = source_id(val, None);
        self.entry(val, id, None, line, None, Raw::Json(val), sink);
    }

    fn bundle(&mut self, b: &Value, line: u64, sink: &mut dyn Sink) {
        let entries = match b.get("entry") {
            None | Some(Value::Null) => return,
            Some(Value::Array(a)) => a,
            Some(_) => {
                self.reject_value(
                    line,
                    None,
                    Some("Bundle"),
                    Bad::new(Reason::InvalidValue, "Bundle.entry is not an array").at("/entry"),
                    "",
                    b.to_string(),
                    sink,
                );
                return;
            }
        };
        // pass 1: index fullUrls, learn patients' dates
        let mut idx = Index {
            by_url: HashMap::with_capacity(entries.len()),
            by_type_id: HashMap::new(),
            ids: Vec::with_capacity(entries.len()),
        };
        for (i, e) in entries.iter().enumerate() {
            let r = e.get("resource");
            let rt = r.and_then(|r| s(r, "resourceType"));
            let full = s(e, "fullUrl");
            let id = r.and_then(|r| source_id(r, full));
            if let (Some(r), Some(rt), Some(id)) = (r, rt, &id) {
                if rt == "Patient" {
                    self.lives.insert(id.clone(), life_of_patient(r));
                }
                if let Some(f) = full {
                    idx.by_url.insert(f, (rt, i));
                }
                if let Some(rid) = s(r, "id") {
                    idx.by_type_id.insert(format!("{rt}/{rid}"), (rt, i));
                }
            }
            idx.ids.push(id);
        }
        // pass 2
        for (i, e) in entries.iter().enumerate() {
            let base = || format!("/entry/{i}");
            let method = e.get("request").and_then(|q| s(q, "method"));
            if method == Some("DELETE") {
                let url = e.get("request").and_then(|q| s(q, "url")).unwrap_or("");
                let (rt, id) = match url.split_once(['/', '?']) {
                    Some((rt, id)) if !rt.is_empty() && !id.is_empty() => (rt, id),
                    _ => {
                        self.reject_value(
                            line,
                            Some(i),
                            None,
                            Bad::new(
                                Reason::MissingRequired,
                                format!("DELETE entry: request.url {url:?} is not Type/id or Type?search"),
                            )
                            .at("/request/url"),
                            &base(),
                            e.to_string(),
                            sink,
                        );
                        continue;
                    }
                };
                let d = Deleted {
                    source: self.source.to_string(),
                    resource_type: rt.to_string(),
                    source_id: id.to_string(),
                };
                sink.record(
                    Staged::Deleted(d),
                    &Origin {
                        file: self.file,
                        line,
                        entry: Some(i),
                        raw: Raw::Json(e),
                    },
                );
                continue;
            }
            let Some(r) = e.get("resource") else {
                self.reject_value(
                    line,
                    Some(i),
                    None,
                    Bad::new(Reason::MissingRequired, "Bundle.entry.resource is missing")
                        .at("/resource"),
                    &base(),
                    e.to_string(),
                    sink,
                );
                continue;
            };
            let id = idx.ids[i].clone();
            self.entry(r, id, Some(&idx), line, Some(i), Raw::Json(e), sink);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn entry(
        &mut self,
        r: &Value,
        id: Option<String>,
        idx: Option<&Index<'_>>,
        line: u64,
        entry: Option<usize>,
        raw: Raw<'_>,
        sink: &mut dyn Sink,
    ) {
        let rt = s(r, "resourceType");
        let result = match (rt, id) {
            (None, _) => Err(Bad::new(
                Reason::MissingRequired,
                "resourceType is missing: not a FHIR resource",
            )
            .at("/resourceType")),
            (Some(t), _) if !RESOURCE_TYPES.contains(&t) => Err(Bad::new(
                Reason::UnknownResourceType,
                format!(
                    "resource type {t:?} is not read by trent (reads {})",
                    RESOURCE_TYPES.join(", ")
                ),
            )
            .at("/resourceType")),
            (Some(t), None) => Err(Bad::new(
                Reason::MissingRequired,
                format!("{t} has no id, identifier or fullUrl: cannot be ingested idempotently"),
            )
            .at("/id")),
            (Some(t), Some(id)) => self.resource(t, r, id, idx),
        };
        match result {
            Ok(rec) => {
                if let Staged::Person(p) = &rec
                    && idx.is_none()
                {
                    self.lives.insert(
                        p.source_id.clone(),
                        Life {
                            birth: p.birth_date,
                            death: p.death_date,
                        },
                    );
                }
                sink.record(
                    rec,
                    &Origin {
                        file: self.file,
                        line,
                        entry,
                        raw,
                    },
                );
            }
            Err(bad) => {
                let text = raw.text();
                let base = entry
                    .map(|i| format!("/entry/{i}/resource"))
                    .unwrap_or_default();
                self.reject_value(line, entry, rt, bad, &base, text, sink)
            }
        }
    }

    fn resource(
        &self,
        rt: &str,
        r: &Value,
        id: String,
        idx: Option<&Index<'_>>,
    ) -> Result<Staged, Bad> {
        match rt {
            "Patient" => self.patient(r, id).map(Staged::Person),
            "Encounter" => self.encounter(r, id, idx).map(Staged::Activity),
            "EpisodeOfCare" => self.episode(r, id, idx).map(Staged::SocialCare),
            "Condition" => self.condition(r, id, idx).map(Staged::Condition),
            "Observation" => self.observation(r, id, idx).map(Staged::Observation),
            "MedicationRequest" | "MedicationStatement" => {
                self.medication(rt, r, id, idx).map(Staged::Medication)
            }
            "Procedure" => self.procedure(r, id, idx).map(Staged::Procedure),
            "ServiceRequest" => self.service_request(r, id, idx).map(Staged::Referral),
            "AllergyIntolerance" => self.allergy(r, id, idx).map(Staged::Allergy),
            _ => unreachable!("checked against RESOURCE_TYPES"),
        }
    }

    fn patient(&self, r: &Value, id: String) -> Result<StagedPerson, Bad> {
        let mut p = StagedPerson {
            source: self.source.to_string(),
            source_id: id,
            ..Default::default()
        };
        for (i, ident) in array(r, "identifier").iter().enumerate() {
            if s(ident, "system") == Some(NHS_NUMBER) {
                let val = s(ident, "value").ok_or_else(|| {
                    Bad::new(
                        Reason::MissingRequired,
                        "Patient.identifier: NHS number identifier without a value",
                    )
                    .at(format!("/identifier/{i}/value"))
                })?;
                p.nhs_number = Some(
                    v::nhs_number("Patient.identifier (NHS number)", val)
                        .map_err(|e| e.at(format!("/identifier/{i}/value")))?,
                );
                break;
            }
        }
        let names = array(r, "name");
        if let Some(n) = names
            .iter()
            .find(|n| s(n, "use") == Some("official"))
            .or_else(|| names.iter().find(|n| s(n, "use") != Some("old")))
        {
            p.family_name = s(n, "family").map(str::to_string);
            let given: Vec<&str> = array(n, "given")
                .iter()
                .filter_map(|g| g.as_str().map(str::trim).filter(|g| !g.is_empty()))
                .collect();
            if !given.is_empty() {
                p.given_name = Some(given.join(" "));
            }
        }
        if let Some(g) = s(r, "gender") {
            p.sex = match g {
                "female" => Some("F".into()),
                "male" => Some("M".into()),
                "other" | "unknown" => None,
                _ => {
                    return Err(Bad::new(
                        Reason::InvalidCode,
                        format!("Patient.gender {g:?} is not male, female, other or unknown"),
                    )
                    .at("/gender"));
                }
            };
        }
        if let Some(b) = s(r, "birthDate") {
            let d = v::parse_date("Patient.birthDate", b).map_err(|e| e.at("/birthDate"))?;
            Life::default()
                .check("Patient.birthDate", d, self.opts.today)
                .map_err(|e| e.at("/birthDate"))?;
            p.birth_date = Some(d);
        }
        if let Some(dd) = s(r, "deceasedDateTime") {
            let d =
                fhir_date("Patient.deceasedDateTime", dd).map_err(|e| e.at("/deceasedDateTime"))?;
            Life {
                birth: p.birth_date,
                death: None,
            }
            .check("Patient.deceasedDateTime", d, self.opts.today)
            .map_err(|e| e.at("/deceasedDateTime"))?;
            p.death_date = Some(d);
        }
        let addrs = array(r, "address");
        if let Some(a) = addrs
            .iter()
            .find(|a| s(a, "use") == Some("home"))
            .or_else(|| addrs.iter().find(|a| s(a, "use") != Some("old")))
        {
            p.address = array(a, "line")
                .first()
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_string);
            p.postcode = s(a, "postalCode").map(v::postcode);
        }
        for gp in array(r, "generalPractitioner") {
            if let Some(ident) = gp.get("identifier")
                && s(ident, "system") == Some(ODS_CODE)
                && let Some(code) = s(ident, "value")
            {
                p.practice_code = Some(code.to_string());
                break;
            }
        }
        for (i, e) in array(r, "extension").iter().enumerate() {
            if s(e, "url") == Some(ETHNIC_EXTENSION) {
                if let Some((_, c)) = codings(e.get("valueCodeableConcept")).next() {
                    p.ethnicity = Some(
                        v::ethnicity("Patient ethnic category", c)
                            .map_err(|b| b.at(format!("/extension/{i}")))?,
                    );
                }
                break;
            }
        }
        Ok(p.seal())
    }

    fn encounter(
        &self,
        r: &Value,
        id: String,
        idx: Option<&Index<'_>>,
    ) -> Result<StagedActivity, Bad> {
        const RT: &str = "Encounter";
        status(
            r,
            RT,
            &[
                "planned",
                "arrived",
                "triaged",
                "in-progress",
                "onleave",
                "finished",
                "cancelled",
                "entered-in-error",
                "unknown",
            ],
        )?;
        let class = r.get("class").and_then(|c| s(c, "code")).ok_or_else(|| {
            Bad::new(
                Reason::MissingRequired,
                "Encounter.class is required (1..1) and missing",
            )
            .at("/class")
        })?;
        let person = required_ref(idx, r, RT, "subject", "Patient")?;
        let period = r.get("period");
        let start = period.and_then(|p| s(p, "start")).ok_or_else(|| {
            Bad::new(
                Reason::MissingRequired,
                "Encounter.period.start is missing (every contact needs a start)",
            )
            .at("/period")
        })?;
        let start_ts = v::parse_datetime("Encounter.period.start", start, true)
            .map_err(|e| e.at("/period/start"))?;
        self.check(&person, "Encounter.period.start", v::day_of(start_ts))
            .map_err(|e| e.at("/period/start"))?;
        let end_ts = match period.and_then(|p| s(p, "end")) {
            None => None,
            Some(e) => {
                let t = v::parse_datetime("Encounter.period.end", e, true)
                    .map_err(|b| b.at("/period/end"))?;
                if t < start_ts {
                    return Err(Bad::new(
                        Reason::InvalidDate,
                        format!("Encounter.period.end {e} is before period.start {start}"),
                    )
                    .at("/period/end"));
                }
                self.check(&person, "Encounter.period.end", v::day_of(t))
                    .map_err(|b| b.at("/period/end"))?;
                Some(t)
            }
        };
        let mut setting = None;
        for t in array(r, "type") {
            if let Some(c) = trent_code(Some(t), "setting") {
                setting = Some(
                    v::one_of("Encounter.type (setting)", &c, SETTINGS)
                        .map_err(|e| e.at("/type"))?,
                );
            }
        }
        let patient_class = ext_code(r, "patient-class");
        let setting = match setting {
            Some(x) => x,
            None => match class {
                "IMP" | "ACUTE" | "NONAC" | "SS" => "apc",
                "EMER" => "ae",
                "HH" => "community",
                "FLD" => "ambulance",
                "VR" => "nhs111",
                "AMB" | "OBSENC" | "PRENC" => "op",
                other => {
                    return Err(Bad::new(
                        Reason::InvalidCode,
                        format!("Encounter.class {other:?} is not a v3 ActCode trent maps to a care setting"),
                    )
                    .at("/class"));
                }
            }
            .to_string(),
        };
        let primary = codings(array(r, "reasonCode").first())
            .find(|(sys, _)| is_icd10(sys))
            .map(|(_, c)| v::icd10("Encounter.reasonCode", c))
            .transpose()
            .map_err(|e| e.at("/reasonCode/0"))?;
        let specialty = codings(r.get("serviceType"))
            .find(|(sys, _)| *sys == TREATMENT_FUNCTION)
            .map(|(_, c)| c.to_string());
        let los =
            match r.get("length").and_then(|l| l.get("value")) {
                None => None,
                Some(x) => Some(x.as_i64().and_then(|n| i32::try_from(n).ok()).ok_or_else(
                    || {
                        Bad::new(
                            Reason::InvalidValue,
                            format!("Encounter.length.value {x} is not a whole number of days"),
                        )
                        .at("/length/value")
                    },
                )?),
            };
        let hosp = r.get("hospitalization");
        let medically_fit = match extension(r, "medically-fit-date").and_then(|e| s(e, "valueDate"))
        {
            None => None,
            Some(d) => Some(
                v::parse_date("Encounter medically-fit-date", d).map_err(|e| e.at("/extension"))?,
            ),
        };
        let response = match extension(r, "response-minutes").and_then(|e| e.get("valueDecimal")) {
            None => None,
            Some(x) => Some(x.as_f64().ok_or_else(|| {
                Bad::new(
                    Reason::InvalidValue,
                    format!("response-minutes {x} is not a number"),
                )
                .at("/extension")
            })?),
        };
        let referral = match array(r, "basedOn").first() {
            None => None,
            Some(b) => resolve(idx, Some(b), "ServiceRequest", "Encounter.basedOn")
                .map_err(|e| e.at("/basedOn/0"))?,
        };
        Ok(StagedActivity {
            source: self.source.to_string(),
            source_id: id,
            source_person: person,
            setting,
            start_ts,
            end_ts,
            provider_code: org_code(r.get("serviceProvider")),
            site_code: array(r, "location")
                .first()
                .and_then(|l| org_code(l.get("location"))),
            admission_method: trent_code(
                hosp.and_then(|h| h.get("admitSource")),
                "admission-method",
            ),
            patient_class,
            primary_diagnosis: primary,
            secondary_diagnoses: Vec::new(),
            specialty,
            cost_gbp: ext_money(r, "cost")?,
            discharge_destination: trent_code(
                hosp.and_then(|h| h.get("dischargeDisposition")),
                "discharge-destination",
            ),
            los_days: los,
            medically_fit_date: medically_fit,
            arrival_mode: ext_code(r, "arrival-mode"),
            ambulance_category: ext_code(r, "ambulance-category"),
            response_minutes: response,
            source_referral: referral,
            omop_concept_id: None,
            content_hash: String::new(),
        }
        .seal())
    }

    fn episode(
        &self,
        r: &Value,
        id: String,
        idx: Option<&Index<'_>>,
    ) -> Result<StagedSocialCare, Bad> {
        const RT: &str = "EpisodeOfCare";
        status(
            r,
            RT,
            &[
                "planned",
                "waitlist",
                "active",
                "onhold",
                "finished",
                "cancelled",
                "entered-in-error",
            ],
        )?;
        let person = required_ref(idx, r, RT, "patient", "Patient")?;
        let service = array(r, "type")
            .iter()
            .find_map(|t| trent_code(Some(t), "social-care-service"))
            .ok_or_else(|| {
                Bad::new(
                    Reason::MissingRequired,
                    format!(
                        "EpisodeOfCare.type has no code from {} (trent reads EpisodeOfCare as an adult social care package)",
                        code_system("social-care-service")
                    ),
                )
                .at("/type")
            })?;
        let service =
            v::one_of("EpisodeOfCare.type", &service, SERVICES).map_err(|e| e.at("/type"))?;
        let period = r.get("period");
        let start = period.and_then(|p| s(p, "start")).ok_or_else(|| {
            Bad::new(
                Reason::MissingRequired,
                "EpisodeOfCare.period.start is missing",
            )
            .at("/period")
        })?;
        let start_date =
            fhir_date("EpisodeOfCare.period.start", start).map_err(|e| e.at("/period/start"))?;
        self.check(&person, "EpisodeOfCare.period.start", start_date)
            .map_err(|e| e.at("/period/start"))?;
        let end_date = match period.and_then(|p| s(p, "end")) {
            None => None,
            Some(e) => {
                let d =
                    fhir_date("EpisodeOfCare.period.end", e).map_err(|b| b.at("/period/end"))?;
                if d < start_date {
                    return Err(Bad::new(
                        Reason::InvalidDate,
                        format!("EpisodeOfCare.period.end {e} is before period.start {start}"),
                    )
                    .at("/period/end"));
                }
                Some(d)
            }
        };
        Ok(StagedSocialCare {
            source: self.source.to_string(),
            source_id: id,
            source_person: person,
            service,
            start_date,
            end_date,
            weekly_cost_gbp: ext_money(r, "weekly-cost")?,
            la_code: org_code(r.get("managingOrganization")),
            content_hash: String::new(),
        }
        .seal())
    }

    fn condition(
        &self,
        r: &Value,
        id: String,
        idx: Option<&Index<'_>>,
    ) -> Result<StagedCondition, Bad> {
        const RT: &str = "Condition";
        let person = required_ref(idx, r, RT, "subject", "Patient")?;
        let (code_system, code) = coded(r.get("code"), RT, "code", &[Sys::Snomed, Sys::Icd10])?;
        let (day, field) = event_day(
            r,
            RT,
            &["recordedDate", "onsetDateTime", "onsetPeriod.start"],
        )?;
        self.check(&person, &format!("{RT}.{field}"), day)?;
        let source_activity = resolve(idx, r.get("encounter"), "Encounter", "Condition.encounter")
            .map_err(|e| e.at("/encounter"))?;
        Ok(StagedCondition {
            source: self.source.to_string(),
            source_id: id,
            source_person: person,
            code_system,
            code,
            recorded_date: day,
            source_activity,
            omop_concept_id: None,
            content_hash: String::new(),
        }
        .seal())
    }

    fn observation(
        &self,
        r: &Value,
        id: String,
        idx: Option<&Index<'_>>,
    ) -> Result<StagedObservation, Bad> {
        const RT: &str = "Observation";
        status(
            r,
            RT,
            &[
                "registered",
                "preliminary",
                "final",
                "amended",
                "corrected",
                "cancelled",
                "entered-in-error",
                "unknown",
            ],
        )?;
        if r.get("code").is_none() {
            return Err(Bad::new(
                Reason::MissingRequired,
                "Observation.code is required (1..1) and missing",
            )
            .at("/code"));
        }
        let person = required_ref(idx, r, RT, "subject", "Patient")?;
        let (code_system, code) = coded(
            r.get("code"),
            RT,
            "code",
            &[Sys::Snomed, Sys::Trent, Sys::Loinc],
        )?;
        let (day, field) = event_day(
            r,
            RT,
            &["effectiveDateTime", "effectivePeriod.start", "issued"],
        )?;
        self.check(&person, &format!("{RT}.{field}"), day)?;
        let (value, unit) = match r.get("valueQuantity") {
            None => (None, None),
            Some(q) => {
                let val = q.get("value").and_then(Value::as_f64).ok_or_else(|| {
                    Bad::new(
                        Reason::InvalidValue,
                        format!(
                            "Observation.valueQuantity.value is not a number: {}",
                            q.get("value").unwrap_or(&Value::Null)
                        ),
                    )
                    .at("/valueQuantity/value")
                })?;
                let unit = if s(q, "system") == Some(UCUM) {
                    s(q, "code").or_else(|| s(q, "unit"))
                } else {
                    s(q, "unit").or_else(|| s(q, "code"))
                };
                (Some(val), unit)
            }
        };
        let (value, unit) =
            v::observation_unit(&code, value, unit).map_err(|e| e.at("/valueQuantity"))?;
        Ok(StagedObservation {
            source: self.source.to_string(),
            source_id: id,
            source_person: person,
            code_system,
            code,
            value,
            unit,
            obs_date: day,
            omop_concept_id: None,
            content_hash: String::new(),
        }
        .seal())
    }

    fn medication(
        &self,
        rt: &str,
        r: &Value,
        id: String,
        idx: Option<&Index<'_>>,
    ) -> Result<StagedMedication, Bad> {
        let request = rt == "MedicationRequest";
        if request {
            status(
                r,
                rt,
                &[
                    "active",
                    "on-hold",
                    "cancelled",
                    "completed",
                    "entered-in-error",
                    "stopped",
                    "draft",
                    "unknown",
                ],
            )?;
            required(r, rt, "intent")?;
        } else {
            status(
                r,
                rt,
                &[
                    "active",
                    "completed",
                    "entered-in-error",
                    "intended",
                    "stopped",
                    "on-hold",
                    "unknown",
                    "not-taken",
                ],
            )?;
        }
        let person = required_ref(idx, r, rt, "subject", "Patient")?;
        let Some(cc) = r.get("medicationCodeableConcept") else {
            let why = if r.get("medicationReference").is_some() {
                "medicationReference (to a Medication resource) is not read; send medicationCodeableConcept"
            } else {
                "medication[x] is required (1..1) and missing"
            };
            return Err(Bad::new(Reason::MissingRequired, format!("{rt}.{why}"))
                .at("/medicationCodeableConcept"));
        };
        let (code_system, code) = coded(
            Some(cc),
            rt,
            "medicationCodeableConcept",
            &[Sys::Bnf, Sys::Dmd, Sys::Snomed, Sys::RxNorm],
        )?;
        let keys: &[&str] = if request {
            &["authoredOn"]
        } else {
            &["effectiveDateTime", "effectivePeriod.start", "dateAsserted"]
        };
        let (day, field) = event_day(r, rt, keys)?;
        self.check(&person, &format!("{rt}.{field}"), day)?;
        let days_supply = match r
            .get("dispenseRequest")
            .and_then(|d| d.get("expectedSupplyDuration"))
        {
            None => None,
            Some(q) => {
                let unit = s(q, "code").or_else(|| s(q, "unit")).unwrap_or("d");
                let factor = match unit {
                    "d" | "day" | "days" => 1.0,
                    "wk" | "week" | "weeks" => 7.0,
                    other => {
                        return Err(Bad::new(
                            Reason::InvalidUnit,
                            format!("{rt}.dispenseRequest.expectedSupplyDuration unit {other:?} is not d or wk"),
                        )
                        .at("/dispenseRequest/expectedSupplyDuration"));
                    }
                };
                let n = q.get("value").and_then(Value::as_f64).ok_or_else(|| {
                    Bad::new(
                        Reason::InvalidValue,
                        format!(
                            "{rt}.dispenseRequest.expectedSupplyDuration.value is not a number"
                        ),
                    )
                    .at("/dispenseRequest/expectedSupplyDuration/value")
                })?;
                Some((n * factor).round() as i32)
            }
        };
        Ok(StagedMedication {
            source: self.source.to_string(),
            source_id: id,
            source_person: person,
            code_system,
            code,
            kind: if request { "request" } else { "statement" }.to_string(),
            issue_date: day,
            cost_gbp: ext_money(r, "cost")?,
            days_supply,
            omop_concept_id: None,
            content_hash: String::new(),
        }
        .seal())
    }

    fn procedure(
        &self,
        r: &Value,
        id: String,
        idx: Option<&Index<'_>>,
    ) -> Result<StagedProcedure, Bad> {
        const RT: &str = "Procedure";
        status(
            r,
            RT,
            &[
                "preparation",
                "in-progress",
                "not-done",
                "on-hold",
                "stopped",
                "completed",
                "entered-in-error",
                "unknown",
            ],
        )?;
        let person = required_ref(idx, r, RT, "subject", "Patient")?;
        let (code_system, code) = coded(r.get("code"), RT, "code", &[Sys::Snomed, Sys::Opcs4])?;
        let (day, field) = event_day(r, RT, &["performedDateTime", "performedPeriod.start"])?;
        self.check(&person, &format!("{RT}.{field}"), day)?;
        let source_activity = resolve(idx, r.get("encounter"), "Encounter", "Procedure.encounter")
            .map_err(|e| e.at("/encounter"))?;
        Ok(StagedProcedure {
            source: self.source.to_string(),
            source_id: id,
            source_person: person,
            code_system,
            code,
            performed_date: day,
            source_activity,
            omop_concept_id: None,
            content_hash: String::new(),
        }
        .seal())
    }

    fn service_request(
        &self,
        r: &Value,
        id: String,
        idx: Option<&Index<'_>>,
    ) -> Result<StagedReferral, Bad> {
        const RT: &str = "ServiceRequest";
        status(
            r,
            RT,
            &[
                "draft",
                "active",
                "on-hold",
                "revoked",
                "completed",
                "entered-in-error",
                "unknown",
            ],
        )?;
        required(r, RT, "intent")?;
        let person = required_ref(idx, r, RT, "subject", "Patient")?;
        let (day, field) = event_day(r, RT, &["authoredOn"])?;
        self.check(&person, &format!("{RT}.{field}"), day)?;
        let priority = match ext_code(r, "referral-priority") {
            Some(p) => v::one_of("ServiceRequest referral-priority", &p, PRIORITIES)
                .map_err(|e| e.at("/extension"))?,
            None => {
                match s(r, "priority") {
                    None | Some("routine") => "routine".to_string(),
                    Some("urgent") | Some("asap") | Some("stat") => "urgent".to_string(),
                    Some(other) => {
                        return Err(Bad::new(
                        Reason::InvalidCode,
                        format!("ServiceRequest.priority {other:?} is not routine, urgent, asap or stat"),
                    )
                    .at("/priority"));
                    }
                }
            }
        };
        Ok(StagedReferral {
            source: self.source.to_string(),
            source_id: id,
            source_person: person,
            practice_code: org_code(r.get("requester")),
            specialty: codings(r.get("performerType"))
                .find(|(sys, _)| *sys == TREATMENT_FUNCTION)
                .map(|(_, c)| c.to_string()),
            referral_date: day,
            priority,
            content_hash: String::new(),
        }
        .seal())
    }

    fn allergy(
        &self,
        r: &Value,
        id: String,
        idx: Option<&Index<'_>>,
    ) -> Result<StagedAllergy, Bad> {
        const RT: &str = "AllergyIntolerance";
        let person = required_ref(idx, r, RT, "patient", "Patient")?;
        let (code_system, code) = coded(r.get("code"), RT, "code", &[Sys::Snomed, Sys::Dmd])?;
        let (day, field) = event_day(
            r,
            RT,
            &["recordedDate", "onsetDateTime", "onsetPeriod.start"],
        )?;
        self.check(&person, &format!("{RT}.{field}"), day)?;
        let criticality = match s(r, "criticality") {
            None => None,
            Some(c) => Some(
                v::one_of(
                    "AllergyIntolerance.criticality",
                    c,
                    &["low", "high", "unable-to-assess"],
                )
                .map_err(|e| e.at("/criticality"))?,
            ),
        };
        Ok(StagedAllergy {
            source: self.source.to_string(),
            source_id: id,
            source_person: person,
            code_system,
            code,
            recorded_date: day,
            clinical_status: codings(r.get("clinicalStatus"))
                .next()
                .map(|(_, c)| c.to_string()),
            criticality,
            content_hash: String::new(),
        }
        .seal())
    }
}

/// `activity.setting` values.
pub const SETTINGS: &[&str] = &[
    "gp",
    "ae",
    "apc",
    "op",
    "community",
    "mental_health",
    "ambulance",
    "nhs111",
    "social_care_assessment",
];
/// `social_care.service` values.
pub const SERVICES: &[&str] = &[
    "residential",
    "nursing",
    "home_care",
    "reablement",
    "direct_payment",
];
/// `referral.priority` values.
pub const PRIORITIES: &[&str] = &["routine", "urgent", "two_week_wait"];

fn is_icd10(sys: &str) -> bool {
    sys == ICD10 || sys == "http://hl7.org/fhir/sid/icd-10-uk"
}

#[derive(Clone, Copy, PartialEq)]
enum Sys {
    Snomed,
    Icd10,
    Trent,
    Loinc,
    Bnf,
    Dmd,
    RxNorm,
    Opcs4,
}

impl Sys {
    fn matches(self, sys: &str) -> bool {
        match self {
            Sys::Snomed => sys == SNOMED,
            Sys::Icd10 => is_icd10(sys),
            Sys::Trent => is_trent_url(sys, "CodeSystem", "observation"),
            Sys::Loinc => sys == LOINC,
            Sys::Bnf => sys == BNF,
            Sys::Dmd => sys == DMD,
            Sys::RxNorm => sys == RXNORM,
            Sys::Opcs4 => {
                let l = sys.to_ascii_lowercase();
                l == OPCS4 || l.ends_with("opcs-4") || l.ends_with("opcs4")
            }
        }
    }

    fn validate(self, field: &str, code: &str) -> Result<(&'static str, String), Bad> {
        Ok(match self {
            Sys::Snomed => ("SNOMED", v::snomed(field, code)?),
            Sys::Dmd => ("DMD", v::snomed(field, code)?),
            Sys::Icd10 => ("ICD10", v::icd10(field, code)?),
            Sys::Opcs4 => ("OPCS4", v::opcs4(field, code)?),
            Sys::Bnf => ("BNF", v::bnf(field, code)?),
            Sys::Trent => {
                if !code.starts_with("trent-") {
                    return Err(Bad::new(
                        Reason::InvalidCode,
                        format!("{field}: {code:?} is not a trent- local code"),
                    ));
                }
                ("TRENT", code.to_string())
            }
            Sys::Loinc | Sys::RxNorm => {
                let ok = if self == Sys::Loinc {
                    code.split_once('-').is_some_and(|(a, b)| {
                        (1..=7).contains(&a.len())
                            && a.bytes().all(|c| c.is_ascii_digit())
                            && b.len() == 1
                            && b.bytes().all(|c| c.is_ascii_digit())
                    })
                } else {
                    !code.is_empty() && code.len() <= 12 && code.bytes().all(|c| c.is_ascii_digit())
                };
                if !ok {
                    return Err(Bad::new(
                        Reason::InvalidCode,
                        format!(
                            "{field}: {code:?} is not a {} code",
                            if self == Sys::Loinc {
                                "LOINC"
                            } else {
                                "RxNorm"
                            }
                        ),
                    ));
                }
                (
                    if self == Sys::Loinc {
                        "LOINC"
                    } else {
                        "RXNORM"
                    },
                    code.to_string(),
                )
            }
        })
    }
}

/// The first coding of the preferred systems (in `prefer` order), validated.
fn coded(cc: Option<&Value>, rt: &str, k: &str, prefer: &[Sys]) -> Result<(String, String), Bad> {
    let field = format!("{rt}.{k}");
    let ptr = format!("/{k}");
    if cc.is_none() {
        return Err(Bad::new(
            Reason::MissingRequired,
            format!("{field} is required and missing"),
        )
        .at(ptr));
    }
    let all: Vec<(&str, &str)> = codings(cc).collect();
    for sys in prefer {
        if let Some((_, c)) = all.iter().find(|(s, _)| sys.matches(s)) {
            let (name, code) = sys.validate(&field, c).map_err(|e| e.at(ptr.clone()))?;
            return Ok((name.to_string(), code));
        }
    }
    if all.is_empty() {
        return Err(Bad::new(
            Reason::MissingRequired,
            format!("{field} has no coding with a code"),
        )
        .at(ptr));
    }
    Err(Bad::new(
        Reason::UnknownCodeSystem,
        format!(
            "{field}: no coding from a system trent reads here; found {}",
            all.iter()
                .map(|(s, c)| format!("{s}|{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )
    .at(ptr))
}
