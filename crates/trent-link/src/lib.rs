//! Record linkage for trent: which records, from which feeds, are the same person.
//!
//! GP, hospital, community, mental health, social care and ambulance feeds describe
//! the same people with different identifiers and different mistakes. Linking only on
//! NHS number — the usual practice — loses most social care records (they often have
//! none) and anyone whose number was mistyped. This crate links in two passes:
//!
//! 1. **Deterministic**: records with the same *valid* NHS number (modulus 11) are
//!    the same person, unless their demographics strongly disagree (then the pair
//!    goes to clerical review; see [`link`]).
//! 2. **Probabilistic** (Fellegi–Sunter, estimated as Splink does — u by random
//!    sampling, m and λ by EM over blocked pairs, term-frequency adjustment for
//!    names): pairs are scored on name, date of birth, sex, postcode and NHS number,
//!    linked above an upper threshold, queued for review between thresholds.
//!
//! Linked pairs are clustered into persons with a guard against chaining, and each
//! person gets a stable key. [`evaluate`] scores a result against ground truth;
//! [`corrupt`] and [`synth`] make realistic synthetic test data.
//!
//! The crate is pure Rust with no I/O beyond CSV readers/writers that take
//! `BufRead`/`Write`, and runs on `std::thread::scope` threads. It logs nothing: row
//! values appear only in returned values and error messages the caller asked for.
//! See `docs/linkage.md` for the method, defaults and benchmark.

pub mod blocking;
pub mod compare;
pub mod corrupt;
pub mod evaluate;
pub mod link;
pub mod model;
pub mod names;
pub mod normalise;
pub mod record;
pub mod synth;

pub use blocking::BlockingRule;
pub use evaluate::{Evaluation, evaluate};
pub use link::{LinkConfig, LinkResult, LinkStats, PairKind, ScoredPair, link, link_incremental};
pub use model::ModelParams;
pub use record::{Date, LinkRecord, Sex};

/// Errors from linkage: bad input or configuration, named precisely.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// A CSV file could not be read.
    #[error("{path}: line {line}, field {field}: {message}")]
    Csv {
        /// File path.
        path: String,
        /// 1-based line number.
        line: usize,
        /// Column name (`-` for the whole line).
        field: String,
        /// What is wrong.
        message: String,
    },
    /// Two input records share (source, record_id).
    #[error("duplicate record {source_name}/{record_id} (input record {index})")]
    DuplicateRecord {
        /// 0-based index of the second occurrence.
        index: usize,
        /// Source.
        source_name: String,
        /// Record id.
        record_id: String,
    },
    /// Invalid configuration.
    #[error("invalid linkage configuration: {0}")]
    Config(String),
    /// Evaluation inputs do not line up.
    #[error("evaluation: {0}")]
    Evaluation(String),
}
