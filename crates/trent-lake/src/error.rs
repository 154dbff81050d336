//! Lake errors: each names the path involved.

use std::path::PathBuf;

/// Why a lake operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    /// I/O on a path.
    #[error("{path}: {source}")]
    Io {
        /// the path
        path: PathBuf,
        /// the OS error
        source: std::io::Error,
    },
    /// The output directory exists and holds something that is not a trent lake.
    #[error("{path}: directory is not empty and is not a trent data directory (no {marker}); choose another --out or empty it", marker = crate::MARKER)]
    NotTrentDir {
        /// the directory
        path: PathBuf,
    },
    /// No lake has been written to this directory.
    #[error("{path}: no lake here; run `trent synth --out {path}` or `trent up` first")]
    NoLake {
        /// the directory
        path: PathBuf,
    },
    /// The catalog is unreadable.
    #[error("{path}: bad catalog: {message}")]
    BadCatalog {
        /// the catalog path
        path: PathBuf,
        /// what is wrong
        message: String,
    },
    /// Parquet encoding failed.
    #[error("{path}: parquet: {source}")]
    Parquet {
        /// the file
        path: PathBuf,
        /// the parquet error
        source: parquet::errors::ParquetError,
    },
    /// A query failed.
    #[error("query: {0}")]
    Query(#[from] datafusion::error::DataFusionError),
}

/// Wrap an I/O error with the path it happened on (`.map_err(io(&path))`).
pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> LakeError {
    let path = path.into();
    move |source| LakeError::Io { path, source }
}
