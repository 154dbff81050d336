//! The Observatory of Health and Care Outcomes.
//!
//! The plan's targets become indicator definitions — data, one TOML file each in
//! `config/indicators/` — instead of spreadsheets. trent computes every indicator for
//! every place of the area (practice up to STP, local authority, district, deprivation
//! decile, provider), every period in the lake and the breakdowns that show inequality,
//! with the statistics English public health uses, SPC as NHS England's "Making Data
//! Count" reads it, and funnel plots for unwarranted variation. Every value records the
//! definition version and the lake generation it came from.
//!
//! Two implementations compute each indicator: the fast path ([`engine`], DataFusion
//! plans over Parquet) and a row-by-row reference ([`reference`]); tests require them
//! to agree. See `docs/observatory.md`.

pub mod compute;
pub mod definition;
pub mod engine;
pub mod error;
pub mod expr;
pub mod funnel;
pub mod import;
pub mod output;
pub mod period;
pub mod reference;
pub mod referrals;
pub mod rollup;
pub mod run;
pub mod sii;
pub mod spc;
pub mod stat;
pub mod views;

pub use compute::IndicatorValue;
pub use definition::{Indicator, load};
pub use error::{DefError, ObsError};
