//! `trent ingest`: landing source feeds in the lake and the identity vault.
//!
//! Issue 3 asks for one repository of person-level data from every care setting, where
//! real feeds disagree, arrive twice and carry mistakes, and nothing may be lost.
//! `trent-feeds` reads and validates; this crate makes a read into a **batch**:
//!
//! - people are linked inside the vault (deterministic on a valid NHS number,
//!   Fellegi–Sunter otherwise, a clerical-review queue for the uncertain band —
//!   `trent-link`);
//! - the lake receives only keyed pseudonyms (HMAC-SHA-256 with a key that lives in the
//!   vault), birth month rather than date, LSOA rather than postcode ([`pseudo`]);
//! - every rejected record lands in the lake table `quarantine` with identifying values
//!   masked ([`mask`]) and its raw text in the vault;
//! - a batch lands whole or not at all: a new lake generation that hard-links the
//!   previous one's files and is published by one atomic rename ([`run`]);
//! - re-ingesting the same file adds nothing; a changed record replaces its old rows; a
//!   FHIR delete removes them ([`vault`] keeps the record keys).
//!
//! See `docs/ingest.md` for the batch contract and `docs/PRIVACY.md` for what may be
//! where.

pub mod mask;
pub mod pseudo;
pub mod review;
pub mod run;
pub mod table;
pub mod vault;

pub use review::{evaluate_linkage, feeds_folder, quarantine};
pub use run::{Format, Input, Options, Report, ingest, read_postcodes};

use std::path::{Path, PathBuf};

/// Why a batch did not land. Bad *records* never become errors (they are quarantined);
/// these stop the batch, and then nothing of it is published.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// the path
        path: PathBuf,
        /// the error
        source: std::io::Error,
    },
    /// A Parquet file could not be read or written.
    #[error("{path}: {message}")]
    Parquet {
        /// the path
        path: PathBuf,
        /// what went wrong
        message: String,
    },
    /// An input that cannot be ingested at all (missing, wrong area, bad lookup file).
    #[error("{path}: {message}")]
    Input {
        /// the path
        path: PathBuf,
        /// what is wrong
        message: String,
    },
    /// The vault is damaged.
    #[error("vault: {message}")]
    Vault {
        /// what is wrong
        message: String,
    },
    /// Linkage failed.
    #[error("linkage: {0}")]
    Link(String),
    /// Another batch is running on the same data directory.
    #[error("{path}: another ingest (process {pid}) is running on this data directory")]
    Busy {
        /// the lock file
        path: PathBuf,
        /// its process
        pid: String,
    },
    /// The lake could not be opened or published.
    #[error(transparent)]
    Lake(#[from] trent_lake::LakeError),
    /// A test failpoint fired (nothing was published).
    #[error("failpoint {0}: batch stopped before publishing (nothing was written)")]
    Failpoint(String),
}

impl IngestError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> IngestError {
        IngestError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
