//! The crate's one error type: each variant says which layer refused (lake, query,
//! plan file, or an input that makes no sense for this lake).

/// Why a lake-tied computation failed.
#[derive(Debug, thiserror::Error)]
pub enum CostingError {
    /// The lake could not be opened.
    #[error(transparent)]
    Lake(#[from] trent_lake::LakeError),
    /// A query failed.
    #[error("query: {0}")]
    Query(#[from] datafusion::error::DataFusionError),
    /// A result column had an unexpected type.
    #[error("result: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// A plan, scheme or alliance file, or a bed-model input, was refused.
    #[error(transparent)]
    Finance(#[from] trent_finance::FinanceError),
    /// An option or file value does not fit this lake (unknown place, year, level …).
    #[error("{0}")]
    Invalid(String),
}
