//! FHIR search parameters: parsing a query string into clauses the store runs.
//!
//! Why strict: FHIR lets a server ignore parameters it does not know, but a clinician
//! searching `Patient?birthdat=1950` who silently gets every patient back has been misled.
//! Every unknown parameter, modifier, prefix or malformed value is an error naming the
//! parameter (HTTP 400), as with `Prefer: handling=strict`.
//!
//! Semantics (FHIR R4 §3.1.1.4, "Search"): parameters are ANDed; comma-separated values
//! within one parameter are ORed; tokens are `[system]|[code]`, `code` or `system|`;
//! strings match case-insensitively from the start (`:exact` matches the whole normalised
//! value, `:contains` anywhere); dates take the prefixes `eq ne lt gt le ge` over the
//! implicit range of the value's precision; references are `Type/id` or `id`.

use crate::index::{ParamKind, date_bounds, instant_text, normalise, param_kind};

/// Largest `_count` honoured.
pub const MAX_COUNT: usize = 1000;
/// `_count` when none is given.
pub const DEFAULT_COUNT: usize = 50;

/// Date comparison prefixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatePrefix {
    /// The resource's range lies within the value's range.
    Eq,
    /// Not `eq`.
    Ne,
    /// The resource's range starts before the value's.
    Lt,
    /// The resource's range ends after the value's.
    Gt,
    /// `lt` or overlapping.
    Le,
    /// `gt` or overlapping.
    Ge,
}

/// How a string parameter matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrMatch {
    /// Starts with (the FHIR default).
    StartsWith,
    /// Whole value (`:exact`; compared normalised).
    Exact,
    /// Anywhere (`:contains`).
    Contains,
}

/// One ANDed condition; each holds ORed alternatives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Clause {
    /// `_id`.
    Id(Vec<String>),
    /// A token parameter: `(system, code)`, `None` meaning any.
    Token {
        /// Parameter.
        param: &'static str,
        /// Alternatives.
        alternatives: Vec<(Option<String>, Option<String>)>,
    },
    /// A string parameter (values normalised).
    Str {
        /// Parameter.
        param: &'static str,
        /// Alternatives.
        alternatives: Vec<(StrMatch, String)>,
    },
    /// A date parameter: `(prefix, low, high exclusive)` as instant text.
    Date {
        /// Parameter.
        param: &'static str,
        /// Alternatives.
        alternatives: Vec<(DatePrefix, String, String)>,
    },
    /// A reference parameter: `(target type, id)`.
    Reference {
        /// Parameter.
        param: &'static str,
        /// Alternatives.
        alternatives: Vec<(Option<String>, String)>,
    },
}

/// An `_include=Source:param[:Target]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Include {
    /// The parameter on the searched type.
    pub param: &'static str,
    /// The target type, if restricted.
    pub target: Option<String>,
}

/// A parsed search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchRequest {
    /// The conditions.
    pub clauses: Vec<Clause>,
    /// Page size.
    pub count: usize,
    /// Offset of the page.
    pub offset: usize,
    /// `_include`s.
    pub includes: Vec<Include>,
    /// The one person the search is restricted to (a `patient`/`subject` reference with a
    /// single value), if any — the subject of the access decision.
    pub subject: Option<String>,
    /// The query string without `_offset`, for `self`/`next` links.
    pub canonical: String,
}

/// A search parameter error (HTTP 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("search parameter {param:?}: {message}")]
pub struct SearchError {
    /// The parameter.
    pub param: String,
    /// What is wrong.
    pub message: String,
}

fn err(param: &str, message: impl Into<String>) -> SearchError {
    SearchError {
        param: param.to_string(),
        message: message.into(),
    }
}

fn static_param(res_type: &str, name: &str) -> Option<&'static str> {
    crate::index::SEARCH_PARAMS
        .iter()
        .find(|(t, n, _)| *t == res_type && *n == name)
        .map(|(_, n, _)| *n)
}

/// Percent-encodes a query component (RFC 3986 unreserved characters kept).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Parses the (already percent-decoded) query pairs of a search on `res_type`.
pub fn parse(res_type: &str, pairs: &[(String, String)]) -> Result<SearchRequest, SearchError> {
    let mut req = SearchRequest {
        clauses: Vec::new(),
        count: DEFAULT_COUNT,
        offset: 0,
        includes: Vec::new(),
        subject: None,
        canonical: String::new(),
    };
    let mut canonical = Vec::new();
    let mut subjects: Vec<Option<String>> = Vec::new();
    for (key, value) in pairs {
        if key != "_offset" {
            canonical.push(format!("{}={}", encode(key), encode(value)));
        }
        match key.as_str() {
            "_count" => {
                req.count = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n <= MAX_COUNT)
                    .ok_or_else(|| {
                        err(
                            key,
                            format!("{value:?} is not a whole number from 0 to {MAX_COUNT}"),
                        )
                    })?;
                continue;
            }
            "_offset" => {
                req.offset = value
                    .parse::<usize>()
                    .map_err(|_| err(key, format!("{value:?} is not a whole number")))?;
                continue;
            }
            "_format" => {
                if !matches!(
                    value.as_str(),
                    "json" | "application/fhir+json" | "application/json"
                ) {
                    return Err(err(key, "only JSON is supported"));
                }
                continue;
            }
            "_include" => {
                let mut parts = value.split(':');
                let (src, p, target) = (parts.next(), parts.next(), parts.next());
                if parts.next().is_some() || src != Some(res_type) {
                    return Err(err(
                        key,
                        format!("{value:?}: expected {res_type}:<reference parameter>[:<type>]"),
                    ));
                }
                let p = p.unwrap_or("");
                let name = static_param(res_type, p)
                    .filter(|n| param_kind(res_type, n) == Some(ParamKind::Reference))
                    .ok_or_else(|| {
                        err(
                            key,
                            format!("{p:?} is not a reference parameter of {res_type}"),
                        )
                    })?;
                req.includes.push(Include {
                    param: name,
                    target: target.map(str::to_string),
                });
                continue;
            }
            "_id" => {
                let ids: Vec<String> = value.split(',').map(str::to_string).collect();
                if ids.iter().any(|i| !crate::index::is_fhir_id(i)) {
                    return Err(err(key, format!("{value:?} is not a list of FHIR ids")));
                }
                req.clauses.push(Clause::Id(ids));
                continue;
            }
            _ => {}
        }
        let (name, modifier) = match key.split_once(':') {
            Some((n, m)) => (n, Some(m)),
            None => (key.as_str(), None),
        };
        let param = static_param(res_type, name).ok_or_else(|| {
            err(
                key,
                format!("not a search parameter of {res_type} on this server (see /fhir/metadata)"),
            )
        })?;
        let kind = param_kind(res_type, name).expect("listed");
        if value.is_empty() {
            return Err(err(key, "empty value"));
        }
        let values: Vec<&str> = value.split(',').collect();
        let clause = match kind {
            ParamKind::Token => {
                if let Some(m) = modifier {
                    return Err(err(
                        key,
                        format!("modifier :{m} is not supported on token parameters"),
                    ));
                }
                let alternatives = values
                    .iter()
                    .map(|v| {
                        let (system, code) = match v.split_once('|') {
                            Some((s, c)) => {
                                (Some(s.to_string()), (!c.is_empty()).then(|| c.to_string()))
                            }
                            None => (None, Some(v.to_string())),
                        };
                        let code = match (&system, code) {
                            (Some(s), Some(c)) if s == trent_fhir::NHS_NUMBER => {
                                Some(trent_model::nhs_number::validate(&c).unwrap_or(c))
                            }
                            (_, c) => c,
                        };
                        if system.is_none() && code.is_none() {
                            return Err(err(key, "empty token"));
                        }
                        Ok((system, code))
                    })
                    .collect::<Result<_, _>>()?;
                Clause::Token {
                    param,
                    alternatives,
                }
            }
            ParamKind::Str => {
                let mode = match modifier {
                    None => StrMatch::StartsWith,
                    Some("exact") => StrMatch::Exact,
                    Some("contains") => StrMatch::Contains,
                    Some(m) => {
                        return Err(err(
                            key,
                            format!("modifier :{m} is not supported (use :exact or :contains)"),
                        ));
                    }
                };
                Clause::Str {
                    param,
                    alternatives: values.iter().map(|v| (mode, normalise(v))).collect(),
                }
            }
            ParamKind::Date => {
                if let Some(m) = modifier {
                    return Err(err(
                        key,
                        format!("modifier :{m} is not supported on date parameters"),
                    ));
                }
                let alternatives = values
                    .iter()
                    .map(|v| {
                        let (prefix, rest) = match v.get(..2) {
                            Some("eq") => (DatePrefix::Eq, &v[2..]),
                            Some("ne") => (DatePrefix::Ne, &v[2..]),
                            Some("lt") => (DatePrefix::Lt, &v[2..]),
                            Some("gt") => (DatePrefix::Gt, &v[2..]),
                            Some("le") => (DatePrefix::Le, &v[2..]),
                            Some("ge") => (DatePrefix::Ge, &v[2..]),
                            Some(p) if p.bytes().all(|b| b.is_ascii_alphabetic()) => {
                                return Err(err(
                                    key,
                                    format!(
                                        "prefix {p:?} is not supported (eq, ne, lt, gt, le, ge)"
                                    ),
                                ));
                            }
                            _ => (DatePrefix::Eq, *v),
                        };
                        let (low, high) = date_bounds(rest).ok_or_else(|| {
                            err(key, format!("{rest:?} is not a FHIR date or dateTime"))
                        })?;
                        Ok((prefix, instant_text(&low), instant_text(&high)))
                    })
                    .collect::<Result<_, _>>()?;
                Clause::Date {
                    param,
                    alternatives,
                }
            }
            ParamKind::Reference => {
                if let Some(m) = modifier {
                    return Err(err(
                        key,
                        format!("modifier :{m} is not supported on reference parameters"),
                    ));
                }
                let implied = match param {
                    "patient" | "subject" => Some("Patient"),
                    "encounter" => Some("Encounter"),
                    "based-on" => Some("ServiceRequest"),
                    _ => None,
                };
                let alternatives: Vec<(Option<String>, String)> = values
                    .iter()
                    .map(|v| {
                        let (ty, id) = match crate::index::parse_reference(v) {
                            Some((t, i)) => (Some(t.to_string()), i.to_string()),
                            None if crate::index::is_fhir_id(v) => {
                                (implied.map(str::to_string), v.to_string())
                            }
                            None => {
                                return Err(err(
                                    key,
                                    format!("{v:?} is not a reference (Type/id or id)"),
                                ));
                            }
                        };
                        if let (Some(t), Some(i)) = (&ty, implied)
                            && t != i
                        {
                            return Err(err(key, format!("{v:?}: {param} refers to a {i}")));
                        }
                        Ok((ty, id))
                    })
                    .collect::<Result<_, _>>()?;
                if matches!(param, "patient" | "subject") {
                    subjects.push(if alternatives.len() == 1 {
                        Some(alternatives[0].1.clone())
                    } else {
                        None
                    });
                }
                Clause::Reference {
                    param,
                    alternatives,
                }
            }
        };
        req.clauses.push(clause);
    }
    // One subject only if every patient/subject clause names the same single person.
    if let Some(first) = subjects.first().cloned().flatten()
        && subjects
            .iter()
            .all(|s| s.as_deref() == Some(first.as_str()))
    {
        req.subject = Some(first);
    }
    req.canonical = canonical.join("&");
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn parses_tokens_strings_dates_and_references() {
        let r = parse(
            "Patient",
            &p(&[
                (
                    "identifier",
                    "https://fhir.nhs.uk/Id/nhs-number|943 476 5919",
                ),
                ("name:exact", "Smith,Jones"),
                ("birthdate", "ge1950"),
                ("_count", "10"),
            ]),
        )
        .unwrap();
        assert_eq!(r.count, 10);
        assert_eq!(
            r.clauses[0],
            Clause::Token {
                param: "identifier",
                alternatives: vec![(
                    Some(trent_fhir::NHS_NUMBER.into()),
                    Some("9434765919".into())
                )]
            }
        );
        assert_eq!(
            r.clauses[1],
            Clause::Str {
                param: "name",
                alternatives: vec![
                    (StrMatch::Exact, "smith".into()),
                    (StrMatch::Exact, "jones".into())
                ]
            }
        );
        assert_eq!(
            r.clauses[2],
            Clause::Date {
                param: "birthdate",
                alternatives: vec![(
                    DatePrefix::Ge,
                    "1950-01-01T00:00:00Z".into(),
                    "1951-01-01T00:00:00Z".into()
                )]
            }
        );
        let r = parse(
            "Encounter",
            &p(&[("patient", "Patient/p1"), ("_include", "Encounter:subject")]),
        )
        .unwrap();
        assert_eq!(r.subject.as_deref(), Some("p1"));
        assert_eq!(
            r.includes,
            vec![Include {
                param: "subject",
                target: None
            }]
        );
        let r = parse("Encounter", &p(&[("patient", "p1,p2")])).unwrap();
        assert_eq!(r.subject, None);
    }

    #[test]
    fn refuses_what_it_does_not_support() {
        let e = parse("Patient", &p(&[("birthdat", "1950")])).unwrap_err();
        assert_eq!(e.param, "birthdat");
        assert!(
            parse("Patient", &p(&[("birthdate", "sa1950")]))
                .unwrap_err()
                .message
                .contains("prefix")
        );
        assert!(parse("Patient", &p(&[("birthdate", "1950-13")])).is_err());
        assert!(parse("Patient", &p(&[("_count", "5000")])).is_err());
        assert!(parse("Encounter", &p(&[("_include", "Encounter:status")])).is_err());
        assert!(parse("Encounter", &p(&[("patient", "Encounter/e1")])).is_err());
        assert!(parse("Patient", &p(&[("gender:not", "male")])).is_err());
    }
}
