//! Code normalisation. Hospital data (SUS/HES) writes ICD-10 codes in several shapes —
//! `I50.0`, `I500`, `i500`, `I10X` (filler X on a 3-character code), `I10-`, `A170D` and
//! `G019A` (dagger/asterisk marks) — and every index must see one shape. A code that does
//! not have the ICD-10 shape after normalising is *malformed*: the caller counts and
//! reports it; it is never silently treated as "no condition".

use std::fmt;

/// Why a code was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    /// the code as given
    pub code: String,
    /// what is wrong with it
    pub reason: &'static str,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.code, self.reason)
    }
}

/// Normalise an ICD-10 code: trim, drop dots and spaces at the ends, upper-case, strip
/// trailing `X`, `-`, `D`, `A`, `*`, `+`, `!` and `†` marks (never below three
/// characters), then require the ICD-10 shape `[A-Z][0-9][0-9A-Z][0-9A-Z]*` (at most 7
/// characters, as ICD-10-CM allows).
pub fn normalise_icd10(raw: &str) -> Result<String, Malformed> {
    let bad = |reason| Malformed {
        code: raw.to_string(),
        reason,
    };
    let t = raw.trim();
    if t.is_empty() {
        return Err(bad("empty code"));
    }
    let mut s: String = t
        .chars()
        .filter(|c| *c != '.')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    while s.chars().count() > 3 && s.ends_with(['X', '-', 'D', 'A', '*', '+', '!', '\u{2020}']) {
        s.pop();
    }
    let b = s.as_bytes();
    if !s.is_ascii() {
        return Err(bad("non-ASCII character"));
    }
    if b.len() < 3 {
        return Err(bad("shorter than three characters"));
    }
    if b.len() > 7 {
        return Err(bad("longer than seven characters"));
    }
    if !b[0].is_ascii_uppercase() {
        return Err(bad("does not start with a letter"));
    }
    if !b[1].is_ascii_digit() {
        return Err(bad("second character is not a digit"));
    }
    if !b[2..]
        .iter()
        .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
    {
        return Err(bad("contains a character other than a letter or digit"));
    }
    Ok(s)
}

/// Normalise a SNOMED CT concept id: digits only, 6 to 18 of them, no leading zero.
pub fn normalise_snomed(raw: &str) -> Result<String, Malformed> {
    let t = raw.trim();
    let bad = |reason| Malformed {
        code: raw.to_string(),
        reason,
    };
    if t.is_empty() {
        return Err(bad("empty code"));
    }
    if !t.bytes().all(|c| c.is_ascii_digit()) {
        return Err(bad("SNOMED CT id is not all digits"));
    }
    if t.len() < 6 || t.len() > 18 || t.starts_with('0') {
        return Err(bad(
            "SNOMED CT id must have 6-18 digits and no leading zero",
        ));
    }
    Ok(t.to_string())
}

/// Normalise a BNF code of an issued medicine: a chemical substance (9 characters),
/// product (11) or presentation (15), upper-case ASCII letters and digits starting with a
/// two-digit chapter. A bare section code does not identify a medicine and is malformed.
pub fn normalise_bnf(raw: &str) -> Result<String, Malformed> {
    let t = raw.trim().to_ascii_uppercase();
    let bad = |reason| Malformed {
        code: raw.to_string(),
        reason,
    };
    if t.is_empty() {
        return Err(bad("empty code"));
    }
    let b = t.as_bytes();
    if ![9, 11, 15].contains(&b.len()) || !b[..2].iter().all(u8::is_ascii_digit) {
        return Err(bad(
            "BNF code must be 9, 11 or 15 characters starting with a chapter number",
        ));
    }
    if !b
        .iter()
        .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
    {
        return Err(bad(
            "BNF code contains a character other than a letter or digit",
        ));
    }
    Ok(t)
}

/// The terminology a code belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodeSystem {
    /// ICD-10 (hospital diagnoses)
    Icd10,
    /// SNOMED CT concept id (GP record)
    Snomed,
    /// BNF code (a prescription issue)
    Bnf,
}

impl CodeSystem {
    /// Parse a code-system column value: `icd10`/`icd-10`/`icd`, `snomed`/`snomedct`/`sct`,
    /// `bnf` (any case).
    pub fn parse(s: &str) -> Option<CodeSystem> {
        match s
            .trim()
            .to_ascii_lowercase()
            .replace(['-', '_', ' '], "")
            .as_str()
        {
            "icd10" | "icd" => Some(CodeSystem::Icd10),
            "snomed" | "snomedct" | "sct" => Some(CodeSystem::Snomed),
            "bnf" => Some(CodeSystem::Bnf),
            _ => None,
        }
    }

    /// Normalise a code of this system.
    pub fn normalise(self, raw: &str) -> Result<String, Malformed> {
        match self {
            CodeSystem::Icd10 => normalise_icd10(raw),
            CodeSystem::Snomed => normalise_snomed(raw),
            CodeSystem::Bnf => normalise_bnf(raw),
        }
    }
}

/// One coded event in a person's record, for the primary-care indices (eFI, CMS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event<'a> {
    /// terminology of `code`
    pub system: CodeSystem,
    /// the code as recorded (normalised by the index)
    pub code: &'a str,
    /// days between the event and the index date; `None` when undated, which the indices
    /// treat as inside every look-back window (the caller is then responsible for having
    /// restricted the rows to the window — see `docs/indices.md`)
    pub days_ago: Option<u32>,
}

impl<'a> Event<'a> {
    /// An undated event.
    pub fn new(system: CodeSystem, code: &'a str) -> Self {
        Event {
            system,
            code,
            days_ago: None,
        }
    }

    /// A dated event, `days_ago` days before the index date.
    pub fn dated(system: CodeSystem, code: &'a str, days_ago: u32) -> Self {
        Event {
            system,
            code,
            days_ago: Some(days_ago),
        }
    }

    /// True when the event falls within `days` of the index date (undated events do).
    pub fn within(&self, days: u32) -> bool {
        self.days_ago.is_none_or(|d| d <= days)
    }
}
