//! Reading and validating source feeds: the pure half of `trent ingest`.
//!
//! Issue 3 builds one repository from every care setting. The lake side (batches,
//! linkage wiring, pseudonyms, the `quarantine` table) lives in the binary and the lake
//! crate; this crate turns what a source *delivered* — FHIR R4 Bundles and Bulk Data
//! NDJSON, CSV extracts shaped like the national datasets, OMOP CDM tables — into
//! owned, validated, normalised **staged records** ([`stage`]), and every entry it cannot
//! accept into a [`Rejection`] with a stable reason code, the place it was found and the
//! original text. Nothing panics on bad input and nothing is dropped silently: each input
//! entry yields exactly one outcome, and [`Counts`] keeps `received = accepted +
//! rejected` per source and resource type.
//!
//! Why pure: ingest is the part of trent that meets other people's data, so it must be
//! fuzzable, fast to build and testable without a lake. The crate does no I/O beyond
//! reading the files it is given, and logs nothing (row values appear only in the
//! rejections the caller asked for). [`synth_feeds`] writes synthetic feeds with known
//! faults and ground truth, so every rule here is tested end to end.
//!
//! See `docs/feeds.md` for every format, rule and reason code.

pub mod csv_feeds;
pub mod fhir;
pub mod omop;
pub mod reject;
pub mod sample;
pub mod sink;
pub mod stage;
pub mod synth_feeds;
pub mod validate;

pub use csv_feeds::{Feed, read_csv_feed};
pub use fhir::read_fhir_file;
pub use omop::read_omop_dir;
pub use reject::{Position, Reason, Rejection};
pub use sink::{Batch, Collect, Counts, Origin, Raw, Sink, Tally};
pub use stage::Staged;

use std::path::PathBuf;

/// Errors that stop a read: only I/O. Bad *content* never becomes an error; it goes to
/// the [`Sink`] as a [`Rejection`].
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// A file or directory could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// the path
        path: PathBuf,
        /// the I/O error
        source: std::io::Error,
    },
}

impl FeedError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> FeedError {
        FeedError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Settings shared by every reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOptions {
    /// "Today" as days since 1970-01-01: no date may be after it (`date_in_future`).
    /// A parameter, not the clock, so that a re-run of an old batch gives the same answer.
    pub today: i32,
}

impl ReadOptions {
    /// Options with `today` given as days since 1970-01-01.
    pub fn new(today: i32) -> ReadOptions {
        ReadOptions { today }
    }

    /// Options with `today` taken from the system clock (UTC date).
    pub fn from_clock() -> ReadOptions {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        ReadOptions {
            today: secs.div_euclid(86_400) as i32,
        }
    }
}
