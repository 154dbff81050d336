//! Errors of population health management, each naming what and where.

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum PhmError {
    /// The lake could not be read.
    #[error(transparent)]
    Lake(#[from] trent_lake::LakeError),
    /// A query failed.
    #[error("query failed: {0}")]
    Query(#[from] datafusion::error::DataFusionError),
    /// Arrow failed.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// An index date the lake cannot support.
    #[error("index date {date}: {why}")]
    IndexDate {
        /// the date asked for
        date: String,
        /// why it cannot be used
        why: String,
    },
    /// Anything else, with its context.
    #[error("{0}")]
    Other(String),
}
