//! SPC on every series: each (indicator, place, breakdown) over its periods is read as an
//! XmR chart the way NHS England's "Making Data Count" does, giving each point its
//! variation (special cause improving / concerning, common cause) and the series its
//! assurance against the target.

use std::collections::BTreeMap;

use crate::compute::{Exact, IndicatorValue};
use crate::definition::{Indicator, Polarity};
use crate::stat;

/// Fewest points an XmR chart is drawn on (Making Data Count advises 15-20; 12 lets a
/// monthly series chart after one year).
pub const MIN_POINTS: usize = 12;

/// Set `variation` and `assurance` on every series long enough to chart.
pub fn apply(
    ind: &Indicator,
    mut rows: Vec<(IndicatorValue, Exact)>,
) -> Vec<(IndicatorValue, Exact)> {
    let mut series: BTreeMap<(String, String, String, String), Vec<usize>> = BTreeMap::new();
    for (i, (r, _)) in rows.iter().enumerate() {
        series
            .entry((
                r.level.clone(),
                r.place.clone(),
                r.breakdown.clone(),
                r.breakdown_value.clone(),
            ))
            .or_default()
            .push(i);
    }
    for idx in series.values() {
        let pts: Vec<usize> = idx
            .iter()
            .copied()
            .filter(|&i| rows[i].0.value.is_some())
            .collect();
        if pts.len() < MIN_POINTS {
            continue;
        }
        let values: Vec<f64> = pts
            .iter()
            .map(|&i| rows[i].0.value.expect("filtered"))
            .collect();
        let target = rows[pts[0]].0.target;
        let improve = match ind.def.polarity {
            Polarity::Higher => Some(true),
            Polarity::Lower => Some(false),
            Polarity::Neither => None,
        };
        // a rebase point starts a new segment at the first period starting on or after it
        let rebase: Vec<usize> = ind
            .def
            .spc_rebase
            .iter()
            .filter_map(|r| crate::period::parse_label(r))
            .filter_map(|(g, p)| {
                let day = trent_model::time::iso(crate::period::bounds(g, p).0);
                pts.iter().position(|&i| rows[i].0.period_start >= day)
            })
            .filter(|&k| k > 0)
            .collect();
        let Some(chart) = stat::xmr(&values, &rebase, improve, target) else {
            continue;
        };
        for (k, &i) in pts.iter().enumerate() {
            rows[i].0.variation = Some(chart.variation[k].clone());
            rows[i].0.assurance = chart.assurance.clone();
        }
    }
    rows
}
