//! The slope index of inequality: an indicator's values across the area's deprivation
//! deciles, for each period, summarised as the absolute gap between the most and least
//! deprived ends of the social gradient (PHE method: weighted regression on the
//! cumulative population midpoint of each decile).

use std::collections::BTreeMap;

use crate::compute::{Exact, IndicatorValue, apply_marks};
use crate::definition::Indicator;
use crate::error::ObsError;
use crate::rollup::Places;
use crate::run::RunReport;
use crate::stat;

/// (decile, value, lower, upper, denominator).
type Decile = (usize, f64, f64, f64, f64);

/// Rows of an SII indicator, from the values already computed for the indicator it reads.
pub fn rows(
    ind: &Indicator,
    done: &RunReport,
    places: &Places,
    lake_batch: &str,
) -> Result<Vec<(IndicatorValue, Exact)>, ObsError> {
    let of = &ind.def.sii.as_ref().expect("checked").of;
    let fail = |m: String| ObsError::Indicator {
        id: ind.def.id.clone(),
        message: m,
    };
    if !done.values.iter().any(|v| &v.indicator == of) {
        return Err(fail(format!(
            "`{of}` has no values to compare across deciles (is it in the catalogue, and did it run?)"
        )));
    }
    // period → decile → (value, lower, upper, denominator)
    let mut by_period: BTreeMap<(String, String, String), Vec<Decile>> = BTreeMap::new();
    for (v, e) in done.values.iter().zip(&done.exact) {
        if &v.indicator != of || v.level != "imd_decile" || v.breakdown != "all" {
            continue;
        }
        let (Some(val), Some(lo), Some(hi)) = (e.value, e.lower, e.upper) else {
            continue;
        };
        let d: usize = v.place.trim_start_matches("IMD").parse().unwrap_or(0);
        by_period
            .entry((
                v.period.clone(),
                v.period_start.clone(),
                v.period_end.clone(),
            ))
            .or_default()
            .push((d, val, lo, hi, e.den));
    }
    let mut out = vec![];
    for ((period, ps, pe), mut deciles) in by_period {
        // least deprived first (see stat::sii)
        deciles.sort_by_key(|d| std::cmp::Reverse(d.0));
        if deciles.len() < 5 {
            continue;
        }
        let rate = done
            .indicators
            .iter()
            .find(|i| &i.def.id == of)
            .is_some_and(|i| {
                matches!(
                    i.def.method,
                    crate::definition::Method::Rate | crate::definition::Method::Dsr
                )
            });
        let Some((sii, lo, hi)) = stat::sii(
            &deciles
                .iter()
                .map(|d| (d.4, d.1, d.2, d.3))
                .collect::<Vec<_>>(),
            rate,
        ) else {
            continue;
        };
        let stp = &places.codes[places.stp as usize];
        let mut row = IndicatorValue {
            indicator: ind.def.id.clone(),
            definition_version: ind.version.clone(),
            lake_batch: lake_batch.to_string(),
            level: "stp".into(),
            place: stp.clone(),
            place_name: places.names[places.stp as usize].clone(),
            period,
            period_start: ps.clone(),
            period_end: pe,
            breakdown: "all".into(),
            breakdown_value: "all".into(),
            numerator: None,
            denominator: None,
            value: Some(sii),
            lower: Some(lo),
            upper: Some(hi),
            baseline: None,
            target: None,
            trajectory: None,
            on_trajectory: None,
            variation: None,
            assurance: None,
            suppressed: false,
            unit: ind.def.unit.clone(),
        };
        let day = trent_model::time::parse(&ps).unwrap_or(0) + 182;
        apply_marks(ind, &mut row, places, day);
        out.push((
            row,
            Exact {
                value: Some(sii),
                lower: Some(lo),
                upper: Some(hi),
                ..Exact::default()
            },
        ));
    }
    Ok(out)
}
