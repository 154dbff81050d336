//! Population health management over the lake (issue 4): who in the population most needs
//! proactive care, and why.
//!
//! - [`features`]: one row per person registered on an index date, with documented
//!   look-back windows — demographics, long-term conditions, prior use of every care
//!   setting, prescribing, social care, the published comorbidity and frailty indices, and
//!   the outcome (an emergency admission in the following 12 months). The features are
//!   DataFusion plans (plain SQL, so Ballista can run them at national scale, and DuckDB
//!   can run the same text in the benchmark); a deliberately simple row-by-row reference
//!   computes the same numbers and the tests require the two to agree.
//! - [`segment`]: the Bridges to Health segments, eFI frailty bands and the rising-risk flag.
//!
//! Everything here reads the pseudonymised lake only: person ids, never identifiers.

pub mod cohort;
mod engine;
pub mod error;
pub mod features;
pub mod segment;
pub mod stratify;

pub use error::PhmError;
pub use features::{Features, IndexDate};
