//! Errors: a definition error names the file and the field; a run error names the
//! indicator and what failed.

/// A bad indicator definition (or imported file).
#[derive(Debug, Clone, thiserror::Error, serde::Serialize)]
#[error("{file}{}{field}: {message}", if field.is_empty() { "" } else { ": " })]
pub struct DefError {
    /// the file
    pub file: String,
    /// the field (or line)
    pub field: String,
    /// what is wrong
    pub message: String,
}

/// A failure of the Observatory as a whole.
#[derive(Debug, thiserror::Error)]
pub enum ObsError {
    /// the lake
    #[error(transparent)]
    Lake(#[from] trent_lake::LakeError),
    /// a query
    #[error("indicator `{id}`: {message}")]
    Indicator {
        /// indicator
        id: String,
        /// what failed
        message: String,
    },
    /// DataFusion
    #[error(transparent)]
    DataFusion(#[from] datafusion::error::DataFusionError),
    /// Arrow
    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),
    /// a file
    #[error("{path}: {message}")]
    File {
        /// path
        path: String,
        /// what failed
        message: String,
    },
}
