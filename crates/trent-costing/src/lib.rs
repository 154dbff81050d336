//! The financial model's lake-tied parts: schemes costed bottom-up from activity, weighted
//! capitation and control totals, alliance outturns from a pathway's cost, and bed
//! capacity from admissions and lengths of stay.
//!
//! Why a crate of its own: `trent-finance` is pure (a plan file in, figures out) so that
//! a finance team can rerun a plan anywhere in milliseconds; the figures that must be
//! checked against what actually happened — is £72m of savings from 30% fewer emergency
//! admissions plausible? what is each practice's fair share? did the pathway beat its
//! budget? are there beds for the admissions after the reduction? — need the person-level
//! lake. This crate reads the lake (Apache DataFusion SQL over `trent_lake::Lake::session`,
//! so every aggregation can scale out), and hands the small aggregates to the pure
//! functions of `trent-finance` ([`trent_finance::activity`], [`trent_finance::alliance`],
//! [`trent_finance::beds`]).
//!
//! Conventions shared by every module:
//! - **One financial year** (1 April – 31 March) of the lake is read, by default the last
//!   complete one ([`LakeView::year`]).
//! - **Scale.** A lake made at scale *s* holds *s* × the area's population. Money, activity
//!   and admissions are reported **at full scale** (lake figures ÷ *s*) — every report says
//!   so; counts of people are the lake's own (they are what small-number suppression is
//!   about).
//! - **Privacy.** Only aggregates leave this crate; a unit of fewer than
//!   [`SUPPRESS_BELOW`] people is shown as suppressed (`docs/PRIVACY.md`).
//!
//! Modules: [`costing`] (bottom-up vs top-down), [`capitation`], [`pathway`] (alliance
//! risk/reward and patient choice), [`beds`] (the "fifth test"); [`places`] resolves the
//! organisation hierarchy, [`select`] turns an activity selection into SQL.

pub mod beds;
pub mod capitation;
pub mod costing;
mod error;
pub mod pathway;
pub mod places;
pub mod select;
mod table;

use std::path::Path;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::prelude::SessionContext;
use serde::Serialize;
use trent_lake::Lake;

pub use error::CostingError;
pub use places::Places;
pub use table::OutputFormat;

/// Aggregates drawn from fewer people than this are suppressed in outputs.
pub const SUPPRESS_BELOW: u64 = 10;

/// A financial year, 1 April to 31 March, as days since 1970-01-01.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FinancialYear {
    /// `2018/19`.
    pub label: String,
    /// First day.
    pub start: i32,
    /// The day after the last.
    pub end: i32,
}

impl FinancialYear {
    /// The year beginning 1 April of `year`.
    pub fn starting(year: i32) -> FinancialYear {
        FinancialYear {
            label: format!("{}/{:02}", year, (year + 1) % 100),
            start: trent_model::time::days(year, 4, 1),
            end: trent_model::time::days(year + 1, 4, 1),
        }
    }

    /// Days in the year (365 or 366).
    pub fn days(&self) -> f64 {
        (self.end - self.start) as f64
    }

    /// SQL condition: a timestamp column falls in the year.
    pub fn ts_sql(&self, col: &str) -> String {
        format!(
            "{col} >= TIMESTAMP '{} 00:00:00' AND {col} < TIMESTAMP '{} 00:00:00'",
            trent_model::time::iso(self.start),
            trent_model::time::iso(self.end)
        )
    }

    /// SQL condition: a date column falls in the year.
    pub fn date_sql(&self, col: &str) -> String {
        format!(
            "{col} >= DATE '{}' AND {col} < DATE '{}'",
            trent_model::time::iso(self.start),
            trent_model::time::iso(self.end)
        )
    }
}

/// An open lake with its session, scale, complete financial years and places.
pub struct LakeView {
    /// The lake (catalog, paths).
    pub lake: Lake,
    /// A DataFusion session with every lake table registered.
    pub ctx: SessionContext,
    /// The lake's population scale (catalog run info `scale`; 1.0 if absent).
    pub scale: f64,
    /// The complete financial years in the lake's span, oldest first.
    pub years: Vec<FinancialYear>,
    /// The organisation hierarchy.
    pub places: Places,
}

impl LakeView {
    /// Open the lake in a data directory.
    pub async fn open(dir: &Path) -> Result<LakeView, CostingError> {
        let lake = Lake::open(dir)?;
        let ctx = lake.session().await?;
        let scale = lake
            .catalog
            .run
            .get("scale")
            .and_then(|v| v.as_f64())
            .filter(|s| s.is_finite() && *s > 0.0)
            .unwrap_or(1.0);
        let years = complete_years(&lake.catalog.span_start, &lake.catalog.span_end);
        let places = Places::load(&ctx).await?;
        Ok(LakeView {
            lake,
            ctx,
            scale,
            years,
            places,
        })
    }

    /// A financial year by label (`2016/17`), or the last complete year of the lake.
    pub fn year(&self, label: Option<&str>) -> Result<FinancialYear, CostingError> {
        let known = || {
            self.years
                .iter()
                .map(|y| y.label.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match label {
            None => self.years.last().cloned().ok_or_else(|| {
                CostingError::Invalid(format!(
                    "the lake ({} to {}) holds no complete financial year (1 April to 31 March)",
                    self.lake.catalog.span_start, self.lake.catalog.span_end
                ))
            }),
            Some(l) => self
                .years
                .iter()
                .find(|y| y.label == l)
                .cloned()
                .ok_or_else(|| {
                    CostingError::Invalid(format!(
                        "--year {l:?}: not a complete financial year of the lake; years: {}",
                        known()
                    ))
                }),
        }
    }

    /// Run SQL and collect the result.
    pub async fn query(&self, sql: &str) -> Result<Vec<RecordBatch>, CostingError> {
        Ok(self.ctx.sql(sql).await?.collect().await?)
    }

    /// A sentence saying how lake figures were scaled.
    pub fn scale_note(&self) -> String {
        if (self.scale - 1.0).abs() < 1e-12 {
            "lake at full scale (1.0)".to_string()
        } else {
            format!(
                "lake at scale {}: money and activity are shown at full scale (lake figures ÷ {}); people are the lake's own counts",
                self.scale, self.scale
            )
        }
    }
}

/// The complete financial years between two ISO dates (inclusive span).
pub fn complete_years(span_start: &str, span_end: &str) -> Vec<FinancialYear> {
    let (Some(a), Some(b)) = (
        trent_model::time::parse(span_start),
        trent_model::time::parse(span_end),
    ) else {
        return Vec::new();
    };
    let (y0, _, _) = trent_model::time::ymd(a);
    let (y1, _, _) = trent_model::time::ymd(b);
    (y0 - 1..=y1)
        .map(FinancialYear::starting)
        .filter(|fy| fy.start >= a && fy.end <= b + 1)
        .collect()
}

// ------------------------------------------------------------ column access

fn cast(b: &RecordBatch, i: usize, to: &DataType) -> Result<arrow::array::ArrayRef, CostingError> {
    Ok(arrow::compute::cast(b.column(i), to)?)
}

/// Column `i` of a result as strings (nulls as None), whatever the string type.
pub fn strings(b: &RecordBatch, i: usize) -> Result<Vec<Option<String>>, CostingError> {
    let a = cast(b, i, &DataType::Utf8)?;
    let s = a.as_string::<i32>();
    Ok((0..s.len())
        .map(|k| (!s.is_null(k)).then(|| s.value(k).to_string()))
        .collect())
}

/// Column `i` of a result as f64 (nulls as 0).
pub fn floats(b: &RecordBatch, i: usize) -> Result<Vec<f64>, CostingError> {
    let a = cast(b, i, &DataType::Float64)?;
    let s = a.as_primitive::<Float64Type>();
    Ok((0..s.len())
        .map(|k| if s.is_null(k) { 0.0 } else { s.value(k) })
        .collect())
}

/// Column `i` of a result as i64 (nulls as 0).
pub fn ints(b: &RecordBatch, i: usize) -> Result<Vec<i64>, CostingError> {
    let a = cast(b, i, &DataType::Int64)?;
    let s = a.as_primitive::<Int64Type>();
    Ok((0..s.len())
        .map(|k| if s.is_null(k) { 0 } else { s.value(k) })
        .collect())
}

/// Quote a string as an SQL literal.
pub(crate) fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `col IN ('a', 'b')`.
pub(crate) fn in_list(col: &str, values: &[String]) -> String {
    let v: Vec<String> = values.iter().map(|s| lit(s)).collect();
    format!("{col} IN ({})", v.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_years_are_whole_april_to_march_years() {
        let y = complete_years("2014-04-01", "2019-03-31");
        let l: Vec<&str> = y.iter().map(|y| y.label.as_str()).collect();
        assert_eq!(l, ["2014/15", "2015/16", "2016/17", "2017/18", "2018/19"]);
        let y = complete_years("2014-05-01", "2016-04-30");
        assert_eq!(y.len(), 1);
        assert_eq!(y[0].label, "2015/16");
        assert_eq!(FinancialYear::starting(2015).days(), 366.0);
        assert_eq!(FinancialYear::starting(1999).label, "1999/00");
    }
}
