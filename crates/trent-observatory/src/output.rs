//! `indicator_value` as Arrow: written beside the lake as a derived table (so
//! `trent query "SELECT … FROM indicator_value"` reads it) and exported as CSV or JSON.

use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, Float64Array, RecordBatch, StringArray};
use arrow::datatypes::{Field, Schema};

use crate::compute::IndicatorValue;
use crate::error::ObsError;

/// The table's name in the lake.
pub const TABLE: &str = "indicator_value";

/// The values as one Arrow batch.
pub fn batch(values: &[IndicatorValue]) -> Result<RecordBatch, ObsError> {
    let s = |f: &dyn Fn(&IndicatorValue) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(values.iter().map(f)))
    };
    let os = |f: &dyn Fn(&IndicatorValue) -> Option<&str>| -> ArrayRef {
        Arc::new(values.iter().map(f).collect::<StringArray>())
    };
    let n = |f: &dyn Fn(&IndicatorValue) -> Option<f64>| -> ArrayRef {
        Arc::new(values.iter().map(f).collect::<Float64Array>())
    };
    let cols: Vec<(&str, ArrayRef)> = vec![
        ("indicator", s(&|v| &v.indicator)),
        ("definition_version", s(&|v| &v.definition_version)),
        ("lake_batch", s(&|v| &v.lake_batch)),
        ("level", s(&|v| &v.level)),
        ("place", s(&|v| &v.place)),
        ("place_name", s(&|v| &v.place_name)),
        ("period", s(&|v| &v.period)),
        ("period_start", s(&|v| &v.period_start)),
        ("period_end", s(&|v| &v.period_end)),
        ("breakdown", s(&|v| &v.breakdown)),
        ("breakdown_value", s(&|v| &v.breakdown_value)),
        ("numerator", n(&|v| v.numerator)),
        ("denominator", n(&|v| v.denominator)),
        ("value", n(&|v| v.value)),
        ("lower", n(&|v| v.lower)),
        ("upper", n(&|v| v.upper)),
        ("baseline", n(&|v| v.baseline)),
        ("target", n(&|v| v.target)),
        ("trajectory", n(&|v| v.trajectory)),
        (
            "on_trajectory",
            Arc::new(
                values
                    .iter()
                    .map(|v| v.on_trajectory)
                    .collect::<BooleanArray>(),
            ),
        ),
        ("variation", os(&|v| v.variation.as_deref())),
        ("assurance", os(&|v| v.assurance.as_deref())),
        (
            "suppressed",
            Arc::new(
                values
                    .iter()
                    .map(|v| Some(v.suppressed))
                    .collect::<BooleanArray>(),
            ),
        ),
        ("unit", s(&|v| &v.unit)),
    ];
    to_batch(cols)
}

/// The funnel table's name in the lake.
pub const FUNNEL_TABLE: &str = "indicator_funnel";

/// Funnel points as one Arrow batch.
pub fn funnel_batch(points: &[crate::funnel::FunnelPoint]) -> Result<RecordBatch, ObsError> {
    use crate::funnel::FunnelPoint;
    let s = |f: &dyn Fn(&FunnelPoint) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(points.iter().map(f)))
    };
    let n = |f: &dyn Fn(&FunnelPoint) -> f64| -> ArrayRef {
        Arc::new(Float64Array::from_iter_values(points.iter().map(f)))
    };
    let cols: Vec<(&str, ArrayRef)> = vec![
        ("indicator", s(&|p| &p.indicator)),
        ("level", s(&|p| &p.level)),
        ("place", s(&|p| &p.place)),
        ("period", s(&|p| &p.period)),
        ("value", n(&|p| p.value)),
        ("denominator", n(&|p| p.denominator)),
        ("centre", n(&|p| p.centre)),
        ("lower95", n(&|p| p.lower95)),
        ("upper95", n(&|p| p.upper95)),
        ("lower998", n(&|p| p.lower998)),
        ("upper998", n(&|p| p.upper998)),
        ("position", s(&|p| &p.position)),
    ];
    to_batch(cols)
}

/// The referral dashboard's table name in the lake.
pub const REFERRAL_TABLE: &str = "referral_dashboard";

/// Referral dashboard rows as one Arrow batch.
pub fn referral_batch(rows: &[crate::referrals::ReferralRow]) -> Result<RecordBatch, ObsError> {
    use crate::referrals::ReferralRow;
    let s = |f: &dyn Fn(&ReferralRow) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
    };
    let n = |f: &dyn Fn(&ReferralRow) -> Option<f64>| -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<Float64Array>())
    };
    let cols: Vec<(&str, ArrayRef)> = vec![
        ("practice", s(&|r| &r.practice)),
        ("practice_name", s(&|r| &r.practice_name)),
        ("specialty", s(&|r| &r.specialty)),
        ("period", s(&|r| &r.period)),
        ("referrals", n(&|r| r.referrals)),
        ("list_size", n(&|r| Some(r.list_size))),
        ("weighted_list", n(&|r| Some(r.weighted_list))),
        ("rate_per_1000_weighted", n(&|r| r.rate_per_1000_weighted)),
        ("peer_rate_per_1000", n(&|r| Some(r.peer_rate_per_1000))),
        ("ratio", n(&|r| r.ratio)),
        (
            "position",
            Arc::new(
                rows.iter()
                    .map(|r| r.position.as_deref())
                    .collect::<StringArray>(),
            ),
        ),
    ];
    to_batch(cols)
}

/// Named columns as one batch, every field nullable (so runs can be merged).
fn to_batch(cols: Vec<(&str, ArrayRef)>) -> Result<RecordBatch, ObsError> {
    let schema = Arc::new(Schema::new(
        cols.iter()
            .map(|(name, a)| Field::new(*name, a.data_type().clone(), true))
            .collect::<Vec<_>>(),
    ));
    Ok(RecordBatch::try_new(
        schema,
        cols.into_iter().map(|(_, a)| a).collect(),
    )?)
}
