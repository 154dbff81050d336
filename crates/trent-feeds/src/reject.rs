//! Rejections: what could not be accepted, why, and where.
//!
//! A rejection is data, not an error: the lead's ingest lands every one in the lake's
//! `quarantine` table with the original text, so a feed owner can be told precisely
//! which record to fix. Reason codes are a public contract (people filter on them), so
//! they are spelled once, here, and documented in `docs/feeds.md`.

use std::fmt;

/// Why a record was rejected. The snake_case code ([`Reason::code`]) is stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// The line or file is not valid JSON.
    MalformedJson,
    /// The line is not valid CSV (unterminated quote, wrong number of fields).
    MalformedCsv,
    /// The header is not the one the feed must have (and looks like no other feed).
    WrongHeader,
    /// The header is exactly or mostly that of a different feed.
    WrongFeed,
    /// A FHIR resource type (or OMOP table) this reader does not take.
    UnknownResourceType,
    /// A field that must be present is missing or empty.
    MissingRequired,
    /// A date or dateTime that is not a valid ISO 8601 full date / dateTime.
    InvalidDate,
    /// A date before the person's date of birth.
    DateBeforeBirth,
    /// A date after the person's date of death.
    DateAfterDeath,
    /// A date after the batch's `today`.
    DateInFuture,
    /// An NHS number that fails the modulus 11 check (or all digits the same).
    InvalidNhsNumber,
    /// A code that is not a valid code of its system (shape, check digit, value set).
    InvalidCode,
    /// A code from a system this reader does not take for that field.
    UnknownCodeSystem,
    /// A unit that is not the UCUM unit of a known observation code.
    InvalidUnit,
    /// A value of the wrong type or out of range (a number that is not a number …).
    InvalidValue,
    /// The same record (same id, same content) twice in one batch.
    DuplicateInBatch,
    /// The same record id twice in one batch with different content.
    ConflictingRecord,
    /// The last line of the file has no newline and the wrong number of fields.
    TruncatedFile,
    /// A reference inside a bundle to an entry that is not in the bundle, or not to the
    /// kind of resource the field needs.
    DanglingReference,
}

impl Reason {
    /// Every reason, in documentation order.
    pub const ALL: &'static [Reason] = &[
        Reason::MalformedJson,
        Reason::MalformedCsv,
        Reason::WrongHeader,
        Reason::WrongFeed,
        Reason::UnknownResourceType,
        Reason::MissingRequired,
        Reason::InvalidDate,
        Reason::DateBeforeBirth,
        Reason::DateAfterDeath,
        Reason::DateInFuture,
        Reason::InvalidNhsNumber,
        Reason::InvalidCode,
        Reason::UnknownCodeSystem,
        Reason::InvalidUnit,
        Reason::InvalidValue,
        Reason::DuplicateInBatch,
        Reason::ConflictingRecord,
        Reason::TruncatedFile,
        Reason::DanglingReference,
    ];

    /// The stable snake_case code.
    pub fn code(self) -> &'static str {
        match self {
            Reason::MalformedJson => "malformed_json",
            Reason::MalformedCsv => "malformed_csv",
            Reason::WrongHeader => "wrong_header",
            Reason::WrongFeed => "wrong_feed",
            Reason::UnknownResourceType => "unknown_resource_type",
            Reason::MissingRequired => "missing_required",
            Reason::InvalidDate => "invalid_date",
            Reason::DateBeforeBirth => "date_before_birth",
            Reason::DateAfterDeath => "date_after_death",
            Reason::DateInFuture => "date_in_future",
            Reason::InvalidNhsNumber => "invalid_nhs_number",
            Reason::InvalidCode => "invalid_code",
            Reason::UnknownCodeSystem => "unknown_code_system",
            Reason::InvalidUnit => "invalid_unit",
            Reason::InvalidValue => "invalid_value",
            Reason::DuplicateInBatch => "duplicate_in_batch",
            Reason::ConflictingRecord => "conflicting_record",
            Reason::TruncatedFile => "truncated_file",
            Reason::DanglingReference => "dangling_reference",
        }
    }

    /// The reason with this code.
    pub fn from_code(code: &str) -> Option<Reason> {
        Reason::ALL.iter().copied().find(|r| r.code() == code)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Where in a file a rejected entry was.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Position {
    /// 1-based line (CSV and NDJSON; 1 for a single-JSON bundle file); 0 when the
    /// rejection is about the whole file.
    pub line: u64,
    /// 0-based index of the entry within a bundle.
    pub entry: Option<usize>,
    /// JSON pointer (RFC 6901) of the offending element, e.g. `/entry/3/resource/subject`.
    pub pointer: Option<String>,
}

impl Position {
    /// A line of a CSV or NDJSON file.
    pub fn line(line: u64) -> Position {
        Position {
            line,
            entry: None,
            pointer: None,
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}", self.line)?;
        if let Some(e) = self.entry {
            write!(f, ", entry {e}")?;
        }
        if let Some(p) = &self.pointer {
            write!(f, ", at {p}")?;
        }
        Ok(())
    }
}

/// One rejected input entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// The feed name the caller gave.
    pub source: String,
    /// The file it was read from.
    pub file: String,
    /// Where in the file.
    pub position: Position,
    /// The resource type (FHIR) or record kind (CSV/OMOP) when known.
    pub resource_type: Option<String>,
    /// Why.
    pub reason: Reason,
    /// What, naming the field and the value.
    pub message: String,
    /// The original text of the entry (the CSV line, the NDJSON line, the bundle entry).
    pub raw: String,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} {}: {}{}: {}",
            self.source,
            self.file,
            self.position,
            self.reason,
            self.resource_type
                .as_deref()
                .map(|t| format!(" ({t})"))
                .unwrap_or_default(),
            self.message
        )
    }
}

/// A reason and message, before the reader adds where it happened.
#[derive(Debug, Clone, PartialEq)]
pub struct Bad {
    /// Why.
    pub reason: Reason,
    /// What, naming field and value.
    pub message: String,
    /// JSON pointer below the entry, if known.
    pub pointer: Option<String>,
}

impl Bad {
    /// A reason with a message.
    pub fn new(reason: Reason, message: impl Into<String>) -> Bad {
        Bad {
            reason,
            message: message.into(),
            pointer: None,
        }
    }

    /// The same, located at a JSON pointer (relative to the resource).
    pub fn at(mut self, pointer: impl Into<String>) -> Bad {
        self.pointer = Some(pointer.into());
        self
    }
}
