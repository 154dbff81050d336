//! What the store derives from a resource when it is written: structural validation, the
//! person it belongs to, its search index entries and the care-relationship facts it
//! carries (registered practice, episodes with an organisation).
//!
//! Why pure and separate from the store: the same extraction must give the same rows on
//! SQLite and PostgreSQL, and validation must happen before anything is written so that a
//! bad entry in a transaction bundle leaves the database untouched. Everything here works
//! on `serde_json::Value` — trent-fhir's shapes — and names the offending element (FHIRPath
//! style, e.g. `Patient.identifier[0].value`) in every error.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc};
use serde_json::Value;
use trent_access::{EpisodeKind, OdsCode, ResourceKind};

/// The resource types the record serves, in CapabilityStatement order.
pub const SUPPORTED_TYPES: &[&str] = &[
    "Patient",
    "Encounter",
    "EpisodeOfCare",
    "Condition",
    "Observation",
    "MedicationRequest",
    "ServiceRequest",
    "AllergyIntolerance",
    "CarePlan",
];

/// The open end of a period, as stored in the date index (text order is time order).
pub const OPEN_END: &str = "9999-12-31T23:59:59Z";

/// The access kind of a supported FHIR type.
pub fn kind_of(res_type: &str) -> Option<ResourceKind> {
    if SUPPORTED_TYPES.contains(&res_type) {
        ResourceKind::from_code(res_type)
    } else {
        None
    }
}

/// A resource that breaks the structure trent requires (HTTP 422 / 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct Invalid {
    /// Where, FHIRPath style (`Observation.subject.reference`).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

fn invalid(path: impl Into<String>, message: impl Into<String>) -> Invalid {
    Invalid {
        path: path.into(),
        message: message.into(),
    }
}

/// Whether `id` is a FHIR id: `[A-Za-z0-9\-\.]{1,64}`.
pub fn is_fhir_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// A search-parameter definition: name, kind and the elements it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// `system|code` tokens.
    Token,
    /// Case-insensitive prefix match on normalised text.
    Str,
    /// Date ranges with prefixes `eq lt gt le ge ne`.
    Date,
    /// References `Type/id`.
    Reference,
}

/// Every search parameter the record supports, per type: `(type, name, kind)`.
pub const SEARCH_PARAMS: &[(&str, &str, ParamKind)] = &[
    ("Patient", "identifier", ParamKind::Token),
    ("Patient", "name", ParamKind::Str),
    ("Patient", "family", ParamKind::Str),
    ("Patient", "given", ParamKind::Str),
    ("Patient", "birthdate", ParamKind::Date),
    ("Patient", "gender", ParamKind::Token),
    ("Patient", "general-practitioner", ParamKind::Token),
    ("Encounter", "patient", ParamKind::Reference),
    ("Encounter", "subject", ParamKind::Reference),
    ("Encounter", "date", ParamKind::Date),
    ("Encounter", "status", ParamKind::Token),
    ("Encounter", "class", ParamKind::Token),
    ("Encounter", "type", ParamKind::Token),
    ("Encounter", "service-provider", ParamKind::Token),
    ("Encounter", "based-on", ParamKind::Reference),
    ("EpisodeOfCare", "patient", ParamKind::Reference),
    ("EpisodeOfCare", "date", ParamKind::Date),
    ("EpisodeOfCare", "status", ParamKind::Token),
    ("EpisodeOfCare", "type", ParamKind::Token),
    ("EpisodeOfCare", "organization", ParamKind::Token),
    ("Condition", "patient", ParamKind::Reference),
    ("Condition", "subject", ParamKind::Reference),
    ("Condition", "code", ParamKind::Token),
    ("Condition", "clinical-status", ParamKind::Token),
    ("Condition", "category", ParamKind::Token),
    ("Condition", "recorded-date", ParamKind::Date),
    ("Condition", "encounter", ParamKind::Reference),
    ("Observation", "patient", ParamKind::Reference),
    ("Observation", "subject", ParamKind::Reference),
    ("Observation", "code", ParamKind::Token),
    ("Observation", "status", ParamKind::Token),
    ("Observation", "date", ParamKind::Date),
    ("Observation", "encounter", ParamKind::Reference),
    ("MedicationRequest", "patient", ParamKind::Reference),
    ("MedicationRequest", "subject", ParamKind::Reference),
    ("MedicationRequest", "code", ParamKind::Token),
    ("MedicationRequest", "status", ParamKind::Token),
    ("MedicationRequest", "intent", ParamKind::Token),
    ("MedicationRequest", "authoredon", ParamKind::Date),
    ("MedicationRequest", "encounter", ParamKind::Reference),
    ("ServiceRequest", "patient", ParamKind::Reference),
    ("ServiceRequest", "subject", ParamKind::Reference),
    ("ServiceRequest", "code", ParamKind::Token),
    ("ServiceRequest", "status", ParamKind::Token),
    ("ServiceRequest", "authored", ParamKind::Date),
    ("ServiceRequest", "performer", ParamKind::Token),
    ("ServiceRequest", "encounter", ParamKind::Reference),
    ("AllergyIntolerance", "patient", ParamKind::Reference),
    ("AllergyIntolerance", "code", ParamKind::Token),
    ("AllergyIntolerance", "clinical-status", ParamKind::Token),
    ("AllergyIntolerance", "date", ParamKind::Date),
    ("CarePlan", "patient", ParamKind::Reference),
    ("CarePlan", "subject", ParamKind::Reference),
    ("CarePlan", "status", ParamKind::Token),
    ("CarePlan", "category", ParamKind::Token),
    ("CarePlan", "date", ParamKind::Date),
    ("CarePlan", "encounter", ParamKind::Reference),
];

/// The kind of search parameter `name` on `res_type`, if supported.
pub fn param_kind(res_type: &str, name: &str) -> Option<ParamKind> {
    SEARCH_PARAMS
        .iter()
        .find(|(t, n, _)| *t == res_type && *n == name)
        .map(|(_, _, k)| *k)
}

/// One token index row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    /// Parameter name.
    pub param: &'static str,
    /// Code system (empty when none).
    pub system: String,
    /// Code.
    pub code: String,
}

/// One string index row (value normalised: lower case, trimmed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StringRow {
    /// Parameter name.
    pub param: &'static str,
    /// Normalised value.
    pub value: String,
}

/// One date index row: an inclusive range of instants as fixed-width UTC text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateRow {
    /// Parameter name.
    pub param: &'static str,
    /// First instant.
    pub low: String,
    /// Last instant ([`OPEN_END`] when open).
    pub high: String,
}

/// One reference index row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefRow {
    /// Parameter name.
    pub param: &'static str,
    /// Target type.
    pub target_type: String,
    /// Target id.
    pub target_id: String,
}

/// A care relationship a resource establishes: an encounter, episode or referral of a
/// person with an organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CareLinkRow {
    /// Encounter, episode of care or referral.
    pub kind: EpisodeKind,
    /// The organisation (ODS code, or ONS code for a local authority).
    pub organisation: OdsCode,
    /// Start (RFC 3339 UTC).
    pub start: String,
    /// End (RFC 3339 UTC), `None` while open.
    pub end: Option<String>,
}

/// Everything derived from one resource.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extracted {
    /// The person (Patient id) the resource belongs to.
    pub person: Option<String>,
    /// Token index rows.
    pub tokens: Vec<TokenRow>,
    /// String index rows.
    pub strings: Vec<StringRow>,
    /// Date index rows.
    pub dates: Vec<DateRow>,
    /// Reference index rows (not the person's own reference, `patient` / `subject`: the
    /// store answers those from `person`).
    pub refs: Vec<RefRow>,
    /// Care relationships (Encounter, EpisodeOfCare, ServiceRequest).
    pub care_links: Vec<CareLinkRow>,
    /// The registered practice (Patient.generalPractitioner with an ODS code).
    pub registered_practice: Option<OdsCode>,
}

/// A normalised string for the string index and string search: trimmed, lower case.
pub fn normalise(s: &str) -> String {
    s.trim().to_lowercase()
}

/// Parses a FHIR date, dateTime or instant into the inclusive range of UTC instants it
/// covers (`2024` → the whole year). Returns `None` when malformed.
pub fn date_range(text: &str) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let (start, next) = date_bounds(text)?;
    Some((start, next - Duration::seconds(1)))
}

/// Like [`date_range`] but with the end exclusive (the first instant after the range).
pub fn date_bounds(text: &str) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let t = text.trim();
    let midnight = |d: NaiveDate| Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).expect("valid"));
    match t.len() {
        4 => {
            let y: i32 = t.parse().ok()?;
            let a = NaiveDate::from_ymd_opt(y, 1, 1)?;
            let b = NaiveDate::from_ymd_opt(y + 1, 1, 1)?;
            Some((midnight(a), midnight(b)))
        }
        7 => {
            let a = NaiveDate::parse_from_str(&format!("{t}-01"), "%Y-%m-%d").ok()?;
            let b = if a.month() == 12 {
                NaiveDate::from_ymd_opt(a.year() + 1, 1, 1)?
            } else {
                NaiveDate::from_ymd_opt(a.year(), a.month() + 1, 1)?
            };
            Some((midnight(a), midnight(b)))
        }
        10 => {
            let a = ymd(t)?;
            Some((midnight(a), midnight(a.succ_opt()?)))
        }
        _ => {
            let at = if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
                dt.with_timezone(&Utc)
            } else {
                // FHIR allows a dateTime without seconds' fraction but requires a zone when
                // a time is given; accept a zone-less time as UTC (trent writes `Z`).
                let n = NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S").ok()?;
                Utc.from_utc_datetime(&n)
            };
            Some((at, at + Duration::seconds(1)))
        }
    }
}

/// `YYYY-MM-DD` (exactly: four, two and two ASCII digits) as a date, `None` when it is
/// not one or names no day of the calendar. By hand, as `NaiveDate::parse_from_str`
/// would, without parsing a pattern each time.
fn ymd(t: &str) -> Option<NaiveDate> {
    let b = t.as_bytes();
    let num = |r: std::ops::Range<usize>| {
        b[r].iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)
}

/// An instant as the fixed-width text the store compares (`2024-05-01T00:00:00Z`).
pub fn instant_text(t: &DateTime<Utc>) -> String {
    let (y, mo, d) = (t.year(), t.month(), t.day());
    let (h, mi, s) = (t.hour(), t.minute(), t.second());
    if !(0..=9999).contains(&y) {
        // outside four digits: chrono's own rendering (sign or fifth digit)
        return t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    }
    // by hand: chrono's `format` parses its pattern on every call, and a bundle makes
    // two of these per dated resource
    let mut b = *b"0000-00-00T00:00:00Z";
    let mut put = |at: usize, v: u32, digits: usize| {
        let mut v = v;
        for k in (0..digits).rev() {
            b[at + k] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, y as u32, 4);
    put(5, mo, 2);
    put(8, d, 2);
    put(11, h, 2);
    put(14, mi, 2);
    put(17, s, 2);
    String::from_utf8(b.to_vec()).expect("ASCII digits")
}

fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key).filter(|x| !x.is_null())
}

fn expect_string<'a>(v: &'a Value, path: &str) -> Result<&'a str, Invalid> {
    string_problem(v).map_err(|m| invalid(path, m))
}

/// The string in `v`, or what is wrong with it (the path is only formatted on failure:
/// a bundle's thousand resources are checked field by field).
fn string_problem(v: &Value) -> Result<&str, &'static str> {
    match v.as_str() {
        None => Err("must be a string"),
        Some(s) if s.trim().is_empty() => Err("must not be empty"),
        Some(s) => Ok(s),
    }
}

fn opt_string<'a>(v: &'a Value, key: &str, path: &str) -> Result<Option<&'a str>, Invalid> {
    opt_string_at(v, key, || path.to_string())
}

/// [`opt_string`] with the parent's path made only if it is needed for an error.
fn opt_string_at<'a>(
    v: &'a Value,
    key: &str,
    path: impl FnOnce() -> String,
) -> Result<Option<&'a str>, Invalid> {
    match get(v, key) {
        None => Ok(None),
        Some(x) => string_problem(x)
            .map(Some)
            .map_err(|m| invalid(format!("{}.{key}", path()), m)),
    }
}

fn req_string<'a>(v: &'a Value, key: &str, path: &str) -> Result<&'a str, Invalid> {
    opt_string(v, key, path)?
        .ok_or_else(|| invalid(format!("{path}.{key}"), "is required (cardinality 1..1)"))
}

fn opt_object<'a>(v: &'a Value, key: &str, path: &str) -> Result<Option<&'a Value>, Invalid> {
    match get(v, key) {
        None => Ok(None),
        Some(x) if x.is_object() => Ok(Some(x)),
        Some(_) => Err(invalid(format!("{path}.{key}"), "must be an object")),
    }
}

fn opt_array<'a>(v: &'a Value, key: &str, path: &str) -> Result<&'a [Value], Invalid> {
    match get(v, key) {
        None => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(invalid(
            format!("{path}.{key}"),
            "must be an array (cardinality 0..*)",
        )),
    }
}

fn codes_of(
    cc: &Value,
    path: &str,
    param: &'static str,
    out: &mut Vec<TokenRow>,
) -> Result<(), Invalid> {
    if !cc.is_object() {
        return Err(invalid(path, "must be a CodeableConcept object"));
    }
    for (i, c) in opt_array(cc, "coding", path)?.iter().enumerate() {
        // the path is only formatted when something is wrong
        let p = || format!("{path}.coding[{i}]");
        if !c.is_object() {
            return Err(invalid(p(), "must be a Coding object"));
        }
        let system = opt_string_at(c, "system", p)?.unwrap_or("");
        if let Some(code) = opt_string_at(c, "code", p)? {
            out.push(TokenRow {
                param,
                system: system.to_string(),
                code: code.to_string(),
            });
        }
    }
    Ok(())
}

fn code_token(
    v: &Value,
    key: &str,
    path: &str,
    param: &'static str,
    out: &mut Vec<TokenRow>,
) -> Result<(), Invalid> {
    if let Some(code) = opt_string(v, key, path)? {
        out.push(TokenRow {
            param,
            system: String::new(),
            code: code.to_string(),
        });
    }
    Ok(())
}

/// The identifier of an `{ "identifier": {system, value} }` reference, if it has one.
fn reference_identifier<'a>(
    r: &'a Value,
    path: &str,
) -> Result<Option<(&'a str, &'a str)>, Invalid> {
    let Some(id) = opt_object(r, "identifier", path)? else {
        return Ok(None);
    };
    let p = format!("{path}.identifier");
    let system = opt_string(id, "system", &p)?.unwrap_or("");
    let value = req_string(id, "value", &p)?;
    Ok(Some((system, value)))
}

/// Parses a literal reference `Type/id` (absolute URLs ending in `Type/id` are accepted).
pub fn parse_reference(reference: &str) -> Option<(&str, &str)> {
    let mut parts = reference.rsplitn(3, '/');
    let id = parts.next()?;
    let ty = parts.next()?;
    if is_fhir_id(id) && !ty.is_empty() && ty.bytes().all(|b| b.is_ascii_alphabetic()) {
        Some((ty, id))
    } else {
        None
    }
}

fn literal_ref<'a>(r: &'a Value, path: &str) -> Result<Option<(&'a str, &'a str)>, Invalid> {
    if !r.is_object() {
        return Err(invalid(path, "must be a Reference object"));
    }
    match opt_string(r, "reference", path)? {
        None => Ok(None),
        Some(s) => parse_reference(s).map(Some).ok_or_else(|| {
            invalid(
                format!("{path}.reference"),
                format!("{s:?} is not a reference of the form Type/id"),
            )
        }),
    }
}

fn ods_of(system: &str, value: &str, path: &str) -> Result<Option<OdsCode>, Invalid> {
    if system == trent_fhir::ODS_CODE || system == trent_fhir::ONS_CODE {
        OdsCode::new(value)
            .map(Some)
            .map_err(|e| invalid(format!("{path}.identifier.value"), e.to_string()))
    } else {
        Ok(None)
    }
}

fn period_range(p: &Value, path: &str) -> Result<(String, Option<String>), Invalid> {
    let start = req_string(p, "start", path)?;
    let (low, _) = date_range(start).ok_or_else(|| {
        invalid(
            format!("{path}.start"),
            format!("{start:?} is not a FHIR dateTime"),
        )
    })?;
    let end = match opt_string(p, "end", path)? {
        None => None,
        Some(e) => {
            let (_, high) = date_range(e).ok_or_else(|| {
                invalid(
                    format!("{path}.end"),
                    format!("{e:?} is not a FHIR dateTime"),
                )
            })?;
            if high < low {
                return Err(invalid(format!("{path}.end"), "is before period.start"));
            }
            Some(instant_text(&high))
        }
    };
    Ok((instant_text(&low), end))
}

fn date_of(
    v: &Value,
    key: &str,
    path: &str,
    param: &'static str,
    out: &mut Vec<DateRow>,
) -> Result<(), Invalid> {
    if let Some(s) = opt_string(v, key, path)? {
        let (low, high) = date_range(s).ok_or_else(|| {
            invalid(
                format!("{path}.{key}"),
                format!("{s:?} is not a FHIR date/dateTime"),
            )
        })?;
        out.push(DateRow {
            param,
            low: instant_text(&low),
            high: instant_text(&high),
        });
    }
    Ok(())
}

fn period_of(
    v: &Value,
    key: &str,
    path: &str,
    param: &'static str,
    out: &mut Vec<DateRow>,
) -> Result<Option<(String, Option<String>)>, Invalid> {
    let Some(p) = opt_object(v, key, path)? else {
        return Ok(None);
    };
    let (low, high) = period_range(p, &format!("{path}.{key}"))?;
    out.push(DateRow {
        param,
        low: low.clone(),
        high: high.clone().unwrap_or_else(|| OPEN_END.to_string()),
    });
    Ok(Some((low, high)))
}

/// Validates a resource of a supported type and derives its person, index rows and
/// relationship facts. `id` is the id the resource will be stored under.
pub fn extract(res_type: &str, id: &str, r: &Value) -> Result<Extracted, Invalid> {
    let t = res_type;
    if !r.is_object() {
        return Err(invalid(t, "a resource must be a JSON object"));
    }
    match r.get("resourceType").and_then(Value::as_str) {
        Some(rt) if rt == t => {}
        Some(rt) => {
            return Err(invalid(
                format!("{t}.resourceType"),
                format!("is {rt:?}, expected {t:?}"),
            ));
        }
        None => return Err(invalid(format!("{t}.resourceType"), "is required")),
    }
    if let Some(rid) = get(r, "id") {
        let rid = rid
            .as_str()
            .ok_or_else(|| invalid(format!("{t}.id"), "must be a string"))?;
        if rid != id {
            return Err(invalid(
                format!("{t}.id"),
                format!("is {rid:?} but the request addresses {id:?}"),
            ));
        }
    }
    if !is_fhir_id(id) {
        return Err(invalid(
            format!("{t}.id"),
            format!("{id:?} is not a FHIR id"),
        ));
    }
    let mut x = Extracted::default();
    // The person's reference: `subject` for most types, `patient` for some.
    let subject_key = match t {
        "Patient" => None,
        "EpisodeOfCare" | "AllergyIntolerance" => Some("patient"),
        _ => Some("subject"),
    };
    if let Some(key) = subject_key {
        let path = format!("{t}.{key}");
        let r_subj = get(r, key).ok_or_else(|| {
            invalid(
                &path,
                "is required: every resource in the record belongs to a person",
            )
        })?;
        match literal_ref(r_subj, &path)? {
            Some(("Patient", pid)) => {
                // No reference rows for `patient` / `subject`: the person is the stored
                // resource's `person_id`, and searches on them read that column (its index
                // `resource_person`) — a second copy of the same fact in `idx_reference`
                // doubled the index rows every write makes.
                x.person = Some(pid.to_string());
            }
            Some((other, _)) => {
                return Err(invalid(
                    format!("{path}.reference"),
                    format!("must reference a Patient, not a {other}"),
                ));
            }
            None => return Err(invalid(format!("{path}.reference"), "is required")),
        }
    } else {
        x.person = Some(id.to_string());
    }
    match t {
        "Patient" => patient(r, &mut x)?,
        "Encounter" => {
            let status = req_string(r, "status", t)?;
            x.tokens.push(TokenRow {
                param: "status",
                system: String::new(),
                code: status.into(),
            });
            let class = opt_object(r, "class", t)?
                .ok_or_else(|| invalid("Encounter.class", "is required (cardinality 1..1)"))?;
            let sys = opt_string(class, "system", "Encounter.class")?.unwrap_or("");
            if let Some(code) = opt_string(class, "code", "Encounter.class")? {
                x.tokens.push(TokenRow {
                    param: "class",
                    system: sys.into(),
                    code: code.into(),
                });
            }
            for (i, ty) in opt_array(r, "type", t)?.iter().enumerate() {
                codes_of(ty, &format!("Encounter.type[{i}]"), "type", &mut x.tokens)?;
            }
            let period = period_of(r, "period", t, "date", &mut x.dates)?;
            for (i, b) in opt_array(r, "basedOn", t)?.iter().enumerate() {
                let p = format!("Encounter.basedOn[{i}]");
                if let Some((ty, rid)) = literal_ref(b, &p)? {
                    x.refs.push(RefRow {
                        param: "based-on",
                        target_type: ty.into(),
                        target_id: rid.into(),
                    });
                }
            }
            if let Some(sp) = opt_object(r, "serviceProvider", t)?
                && let Some((system, value)) =
                    reference_identifier(sp, "Encounter.serviceProvider")?
            {
                x.tokens.push(TokenRow {
                    param: "service-provider",
                    system: system.into(),
                    code: value.into(),
                });
                if let (Some(org), Some((start, end))) = (
                    ods_of(system, value, "Encounter.serviceProvider")?,
                    period.clone(),
                ) {
                    x.care_links.push(CareLinkRow {
                        kind: EpisodeKind::Encounter,
                        organisation: org,
                        start,
                        end,
                    });
                }
            }
        }
        "EpisodeOfCare" => {
            let status = req_string(r, "status", t)?;
            x.tokens.push(TokenRow {
                param: "status",
                system: String::new(),
                code: status.into(),
            });
            for (i, ty) in opt_array(r, "type", t)?.iter().enumerate() {
                codes_of(
                    ty,
                    &format!("EpisodeOfCare.type[{i}]"),
                    "type",
                    &mut x.tokens,
                )?;
            }
            let period = period_of(r, "period", t, "date", &mut x.dates)?;
            if let Some(mo) = opt_object(r, "managingOrganization", t)?
                && let Some((system, value)) =
                    reference_identifier(mo, "EpisodeOfCare.managingOrganization")?
            {
                x.tokens.push(TokenRow {
                    param: "organization",
                    system: system.into(),
                    code: value.into(),
                });
                if let (Some(org), Some((start, end))) = (
                    ods_of(system, value, "EpisodeOfCare.managingOrganization")?,
                    period,
                ) {
                    // An episode that is no longer active has ended, even without a period end.
                    let end = end.or_else(|| {
                        matches!(status, "finished" | "cancelled" | "entered-in-error")
                            .then(|| start.clone())
                    });
                    x.care_links.push(CareLinkRow {
                        kind: EpisodeKind::EpisodeOfCare,
                        organisation: org,
                        start,
                        end,
                    });
                }
            }
        }
        "Condition" => {
            if let Some(code) = opt_object(r, "code", t)? {
                codes_of(code, "Condition.code", "code", &mut x.tokens)?;
            }
            if let Some(cs) = opt_object(r, "clinicalStatus", t)? {
                codes_of(
                    cs,
                    "Condition.clinicalStatus",
                    "clinical-status",
                    &mut x.tokens,
                )?;
            }
            for (i, c) in opt_array(r, "category", t)?.iter().enumerate() {
                codes_of(
                    c,
                    &format!("Condition.category[{i}]"),
                    "category",
                    &mut x.tokens,
                )?;
            }
            date_of(r, "recordedDate", t, "recorded-date", &mut x.dates)?;
            encounter_ref(r, t, &mut x)?;
        }
        "Observation" => {
            let status = req_string(r, "status", t)?;
            x.tokens.push(TokenRow {
                param: "status",
                system: String::new(),
                code: status.into(),
            });
            let code = opt_object(r, "code", t)?
                .ok_or_else(|| invalid("Observation.code", "is required (cardinality 1..1)"))?;
            codes_of(code, "Observation.code", "code", &mut x.tokens)?;
            date_of(r, "effectiveDateTime", t, "date", &mut x.dates)?;
            period_of(r, "effectivePeriod", t, "date", &mut x.dates)?;
            encounter_ref(r, t, &mut x)?;
        }
        "MedicationRequest" => {
            let status = req_string(r, "status", t)?;
            x.tokens.push(TokenRow {
                param: "status",
                system: String::new(),
                code: status.into(),
            });
            code_token(r, "intent", t, "intent", &mut x.tokens)?;
            req_string(r, "intent", t)?;
            match (
                opt_object(r, "medicationCodeableConcept", t)?,
                opt_object(r, "medicationReference", t)?,
            ) {
                (Some(cc), None) => codes_of(
                    cc,
                    "MedicationRequest.medicationCodeableConcept",
                    "code",
                    &mut x.tokens,
                )?,
                (None, Some(_)) => {}
                (Some(_), Some(_)) => {
                    return Err(invalid(
                        "MedicationRequest.medication[x]",
                        "only one of medicationCodeableConcept and medicationReference may be given",
                    ));
                }
                (None, None) => {
                    return Err(invalid(
                        "MedicationRequest.medication[x]",
                        "is required (cardinality 1..1)",
                    ));
                }
            }
            date_of(r, "authoredOn", t, "authoredon", &mut x.dates)?;
            encounter_ref(r, t, &mut x)?;
        }
        "ServiceRequest" => {
            let status = req_string(r, "status", t)?;
            x.tokens.push(TokenRow {
                param: "status",
                system: String::new(),
                code: status.into(),
            });
            req_string(r, "intent", t)?;
            if let Some(code) = opt_object(r, "code", t)? {
                codes_of(code, "ServiceRequest.code", "code", &mut x.tokens)?;
            }
            date_of(r, "authoredOn", t, "authored", &mut x.dates)?;
            encounter_ref(r, t, &mut x)?;
            let start = get(r, "authoredOn")
                .and_then(Value::as_str)
                .and_then(date_range)
                .map(|(l, _)| instant_text(&l));
            let closed = matches!(status, "completed" | "revoked" | "entered-in-error");
            for (i, p) in opt_array(r, "performer", t)?.iter().enumerate() {
                let path = format!("ServiceRequest.performer[{i}]");
                if !p.is_object() {
                    return Err(invalid(path, "must be a Reference object"));
                }
                if let Some((system, value)) = reference_identifier(p, &path)? {
                    x.tokens.push(TokenRow {
                        param: "performer",
                        system: system.into(),
                        code: value.into(),
                    });
                    if let Some(org) = ods_of(system, value, &path)? {
                        let start = start.clone().ok_or_else(|| {
                            invalid("ServiceRequest.authoredOn", "is required when a performer organisation is given (it starts the care relationship)")
                        })?;
                        let end = closed.then(|| start.clone());
                        x.care_links.push(CareLinkRow {
                            kind: EpisodeKind::Referral,
                            organisation: org,
                            start,
                            end,
                        });
                    }
                }
            }
        }
        "AllergyIntolerance" => {
            if let Some(code) = opt_object(r, "code", t)? {
                codes_of(code, "AllergyIntolerance.code", "code", &mut x.tokens)?;
            }
            if let Some(cs) = opt_object(r, "clinicalStatus", t)? {
                codes_of(
                    cs,
                    "AllergyIntolerance.clinicalStatus",
                    "clinical-status",
                    &mut x.tokens,
                )?;
            }
            date_of(r, "recordedDate", t, "date", &mut x.dates)?;
        }
        "CarePlan" => {
            let status = req_string(r, "status", t)?;
            x.tokens.push(TokenRow {
                param: "status",
                system: String::new(),
                code: status.into(),
            });
            req_string(r, "intent", t)?;
            for (i, c) in opt_array(r, "category", t)?.iter().enumerate() {
                codes_of(
                    c,
                    &format!("CarePlan.category[{i}]"),
                    "category",
                    &mut x.tokens,
                )?;
            }
            period_of(r, "period", t, "date", &mut x.dates)?;
            encounter_ref(r, t, &mut x)?;
        }
        other => return Err(invalid(other, "resource type not supported by this server")),
    }
    Ok(x)
}

fn encounter_ref(r: &Value, t: &str, x: &mut Extracted) -> Result<(), Invalid> {
    if let Some(e) = get(r, "encounter") {
        let path = format!("{t}.encounter");
        match literal_ref(e, &path)? {
            Some(("Encounter", id)) => x.refs.push(RefRow {
                param: "encounter",
                target_type: "Encounter".into(),
                target_id: id.into(),
            }),
            Some((other, _)) => {
                return Err(invalid(
                    format!("{path}.reference"),
                    format!("must reference an Encounter, not a {other}"),
                ));
            }
            None => {}
        }
    }
    Ok(())
}

fn patient(r: &Value, x: &mut Extracted) -> Result<(), Invalid> {
    let t = "Patient";
    for (i, id) in opt_array(r, "identifier", t)?.iter().enumerate() {
        let p = format!("Patient.identifier[{i}]");
        if !id.is_object() {
            return Err(invalid(p, "must be an Identifier object"));
        }
        let system = opt_string(id, "system", &p)?.unwrap_or("");
        let value = req_string(id, "value", &p)?;
        let value = if system == trent_fhir::NHS_NUMBER {
            trent_model::nhs_number::validate(value).map_err(|e| {
                invalid(
                    format!("{p}.value"),
                    format!("{value:?} is not a valid NHS number: {e}"),
                )
            })?
        } else {
            value.to_string()
        };
        x.tokens.push(TokenRow {
            param: "identifier",
            system: system.into(),
            code: value,
        });
    }
    for (i, n) in opt_array(r, "name", t)?.iter().enumerate() {
        let p = format!("Patient.name[{i}]");
        if !n.is_object() {
            return Err(invalid(p, "must be a HumanName object"));
        }
        if let Some(f) = opt_string(n, "family", &p)? {
            x.strings.push(StringRow {
                param: "family",
                value: normalise(f),
            });
            x.strings.push(StringRow {
                param: "name",
                value: normalise(f),
            });
        }
        for (j, g) in opt_array(n, "given", &p)?.iter().enumerate() {
            let g = expect_string(g, &format!("{p}.given[{j}]"))?;
            x.strings.push(StringRow {
                param: "given",
                value: normalise(g),
            });
            x.strings.push(StringRow {
                param: "name",
                value: normalise(g),
            });
        }
        if let Some(text) = opt_string(n, "text", &p)? {
            x.strings.push(StringRow {
                param: "name",
                value: normalise(text),
            });
        }
    }
    if let Some(g) = opt_string(r, "gender", t)? {
        if !matches!(g, "male" | "female" | "other" | "unknown") {
            return Err(invalid(
                "Patient.gender",
                format!("{g:?} is not one of male, female, other, unknown"),
            ));
        }
        x.tokens.push(TokenRow {
            param: "gender",
            system: String::new(),
            code: g.into(),
        });
    }
    date_of(r, "birthDate", t, "birthdate", &mut x.dates)?;
    if let Some(b) = get(r, "birthDate").and_then(Value::as_str)
        && b.len() != 10
        && b.len() != 7
        && b.len() != 4
    {
        return Err(invalid(
            "Patient.birthDate",
            "must be a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD)",
        ));
    }
    for (i, gp) in opt_array(r, "generalPractitioner", t)?.iter().enumerate() {
        let p = format!("Patient.generalPractitioner[{i}]");
        if !gp.is_object() {
            return Err(invalid(p, "must be a Reference object"));
        }
        if let Some((system, value)) = reference_identifier(gp, &p)? {
            x.tokens.push(TokenRow {
                param: "general-practitioner",
                system: system.into(),
                code: value.into(),
            });
            if let Some(org) = ods_of(system, value, &p)?
                && x.registered_practice.is_none()
            {
                x.registered_practice = Some(org);
            }
        }
    }
    Ok(())
}

/// The NHS number of a Patient resource (validated, canonical), if it carries one.
pub fn nhs_number_of(r: &Value) -> Option<String> {
    r.get("identifier")?
        .as_array()?
        .iter()
        .find(|i| i.get("system").and_then(Value::as_str) == Some(trent_fhir::NHS_NUMBER))
        .and_then(|i| i.get("value")?.as_str())
        .and_then(|v| trent_model::nhs_number::validate(v).ok())
}

/// Applies `f` to every `reference` string in a resource (nested anywhere), replacing it
/// with the returned value; stops at the first error.
pub fn rewrite_references<E>(
    v: &mut Value,
    f: &mut dyn FnMut(&str) -> Result<Option<String>, E>,
) -> Result<(), E> {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                if k == "reference"
                    && let Value::String(s) = child
                {
                    if let Some(new) = f(s)? {
                        *s = new;
                    }
                    continue;
                }
                rewrite_references(child, f)?;
            }
            Ok(())
        }
        Value::Array(a) => {
            for child in a {
                rewrite_references(child, f)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Every `reference` string anywhere in a resource.
pub fn all_references(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    if k == "reference"
                        && let Value::String(s) = child
                    {
                        out.push(s.clone());
                    } else {
                        walk(child, out);
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|c| walk(c, out)),
            _ => {}
        }
    }
    walk(v, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dates_and_instants_by_hand_agree_with_chrono() {
        // every day of four years (a leap year among them) and the ends of the range
        let mut d = NaiveDate::from_ymd_opt(2023, 1, 1).unwrap();
        while d < NaiveDate::from_ymd_opt(2027, 1, 1).unwrap() {
            let text = d.format("%Y-%m-%d").to_string();
            assert_eq!(ymd(&text), Some(d), "{text}");
            let t = Utc.from_utc_datetime(&d.and_hms_opt(23, 59, 58).unwrap());
            assert_eq!(instant_text(&t), t.format("%Y-%m-%dT%H:%M:%SZ").to_string());
            d = d.succ_opt().unwrap();
        }
        for y in [0, 1, 999, 9999] {
            let t = Utc.with_ymd_and_hms(y, 12, 31, 0, 0, 0).unwrap();
            assert_eq!(instant_text(&t), t.format("%Y-%m-%dT%H:%M:%SZ").to_string());
        }
        let t = Utc.with_ymd_and_hms(10000, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(instant_text(&t), t.format("%Y-%m-%dT%H:%M:%SZ").to_string());
        // not dates: what chrono's pattern also refuses
        for bad in [
            "2023-02-29",
            "2023-13-01",
            "2023-00-10",
            "2023-1-011",
            "2023/01/01",
            "２０２３-01-1",
            "-202-01-01",
            "2023-01-0x",
        ] {
            assert_eq!(ymd(bad), None, "{bad}");
            assert!(
                NaiveDate::parse_from_str(bad, "%Y-%m-%d").is_err() || bad.starts_with('-'),
                "{bad}"
            );
        }
    }

    #[test]
    fn date_ranges_cover_their_precision() {
        let (a, b) = date_range("2024").unwrap();
        assert_eq!(instant_text(&a), "2024-01-01T00:00:00Z");
        assert_eq!(instant_text(&b), "2024-12-31T23:59:59Z");
        let (a, b) = date_range("2024-12").unwrap();
        assert_eq!(instant_text(&a), "2024-12-01T00:00:00Z");
        assert_eq!(instant_text(&b), "2024-12-31T23:59:59Z");
        let (a, b) = date_range("2024-02-29").unwrap();
        assert_eq!(
            (instant_text(&a), instant_text(&b)),
            ("2024-02-29T00:00:00Z".into(), "2024-02-29T23:59:59Z".into())
        );
        let (a, _) = date_range("2024-02-29T10:00:00+01:00").unwrap();
        assert_eq!(instant_text(&a), "2024-02-29T09:00:00Z");
        assert!(date_range("2023-02-29").is_none());
        assert!(date_range("yesterday").is_none());
    }

    #[test]
    fn patients_are_validated_and_indexed() {
        let p = json!({
            "resourceType": "Patient",
            "identifier": [{"system": trent_fhir::NHS_NUMBER, "value": "943 476 5919"}],
            "name": [{"family": "Ávila", "given": ["Ana", "María"]}],
            "gender": "female",
            "birthDate": "1950-03-04",
            "generalPractitioner": [{"identifier": {"system": trent_fhir::ODS_CODE, "value": "C84001"}}]
        });
        let x = extract("Patient", "p1", &p).unwrap();
        assert_eq!(x.person.as_deref(), Some("p1"));
        assert_eq!(
            x.registered_practice.as_ref().map(|o| o.as_str()),
            Some("C84001")
        );
        assert!(
            x.tokens
                .iter()
                .any(|t| t.param == "identifier" && t.code == "9434765919")
        );
        assert!(
            x.strings
                .iter()
                .any(|s| s.param == "family" && s.value == "ávila")
        );
        let mut bad = p.clone();
        bad["identifier"][0]["value"] = json!("9434765918");
        let e = extract("Patient", "p1", &bad).unwrap_err();
        assert_eq!(e.path, "Patient.identifier[0].value");
        assert!(e.message.contains("check digit"), "{e}");
        let mut bad = p.clone();
        bad["name"] = json!({"family": "x"});
        assert_eq!(
            extract("Patient", "p1", &bad).unwrap_err().path,
            "Patient.name"
        );
        assert_eq!(
            extract("Encounter", "p1", &p).unwrap_err().path,
            "Encounter.resourceType"
        );
    }

    #[test]
    fn encounters_give_care_links_and_need_a_subject() {
        let e = json!({
            "resourceType": "Encounter", "status": "finished",
            "class": {"system": trent_fhir::ACT_CODE, "code": "IMP"},
            "subject": {"reference": "Patient/p1"},
            "period": {"start": "2025-01-01T10:00:00Z", "end": "2025-01-03"},
            "serviceProvider": {"identifier": {"system": trent_fhir::ODS_CODE, "value": "RX1"}}
        });
        let x = extract("Encounter", "e1", &e).unwrap();
        assert_eq!(x.person.as_deref(), Some("p1"));
        assert_eq!(x.care_links.len(), 1);
        assert_eq!(x.care_links[0].end.as_deref(), Some("2025-01-03T23:59:59Z"));
        assert_eq!(x.dates[0].low, "2025-01-01T10:00:00Z");
        let mut bad = e.clone();
        bad.as_object_mut().unwrap().remove("subject");
        assert_eq!(
            extract("Encounter", "e1", &bad).unwrap_err().path,
            "Encounter.subject"
        );
        let mut bad = e.clone();
        bad["subject"] = json!({"reference": "Encounter/e2"});
        assert!(
            extract("Encounter", "e1", &bad)
                .unwrap_err()
                .message
                .contains("Patient")
        );
        let mut bad = e;
        bad["period"]["end"] = json!("2024-01-01");
        assert_eq!(
            extract("Encounter", "e1", &bad).unwrap_err().path,
            "Encounter.period.end"
        );
    }

    #[test]
    fn references_are_found_and_rewritten() {
        let mut v =
            json!({"subject": {"reference": "urn:uuid:a"}, "x": [{"reference": "Encounter/e"}]});
        assert_eq!(
            all_references(&v),
            vec!["urn:uuid:a".to_string(), "Encounter/e".to_string()]
        );
        rewrite_references::<()>(&mut v, &mut |s| {
            Ok((s == "urn:uuid:a").then(|| "Patient/p".to_string()))
        })
        .unwrap();
        assert_eq!(v["subject"]["reference"], "Patient/p");
        assert_eq!(parse_reference("Patient/p-1"), Some(("Patient", "p-1")));
        assert_eq!(
            parse_reference("https://x/fhir/Patient/p"),
            Some(("Patient", "p"))
        );
        assert_eq!(parse_reference("urn:uuid:1"), None);
    }
}
