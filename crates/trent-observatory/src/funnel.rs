//! Funnel plots for unwarranted variation: every practice, hub, locality, CCG and
//! provider of an indicator against the area's value in the same period, with control
//! limits at 95% and 99.8% that narrow as the unit's denominator grows (Spiegelhalter
//! 2005): binomial limits for proportions, exact Poisson (Byar) limits for rates and
//! counts per person-year, normal limits for means. A place outside 99.8% is a signal
//! to look at, not a verdict.

use crate::compute::{Exact, IndicatorValue};
use crate::definition::{Indicator, Method};
use crate::stat;

/// Place levels plotted.
pub const LEVELS: &[&str] = &["practice", "hub", "locality", "ccg", "provider"];

/// One point of a funnel plot.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FunnelPoint {
    /// indicator
    pub indicator: String,
    /// place level
    pub level: String,
    /// place
    pub place: String,
    /// period
    pub period: String,
    /// the place's value
    pub value: f64,
    /// its denominator (units or person-years)
    pub denominator: f64,
    /// the area's value (the funnel's centre)
    pub centre: f64,
    /// lower 95% limit at this denominator
    pub lower95: f64,
    /// upper 95% limit
    pub upper95: f64,
    /// lower 99.8% limit
    pub lower998: f64,
    /// upper 99.8% limit
    pub upper998: f64,
    /// `above_99.8`, `above_95`, `within`, `below_95`, `below_99.8`
    pub position: String,
}

/// Funnel points of one indicator's computed rows (never of redacted values).
pub fn points(ind: &Indicator, rows: &[(IndicatorValue, Exact)]) -> Vec<FunnelPoint> {
    if !matches!(
        ind.def.method,
        Method::Proportion | Method::Rate | Method::Mean
    ) {
        return vec![];
    }
    let m = ind.def.multiplier;
    let centre: std::collections::HashMap<&str, Exact> = rows
        .iter()
        .filter(|(v, _)| v.level == "stp" && v.breakdown == "all")
        .map(|(v, e)| (v.period.as_str(), *e))
        .collect();
    let mut out = vec![];
    for (v, e) in rows {
        if !LEVELS.contains(&v.level.as_str()) || v.breakdown != "all" || v.suppressed {
            continue;
        }
        let (Some(value), true) = (v.value, e.den > 0.0) else {
            continue;
        };
        let Some(&c) = centre.get(v.period.as_str()) else {
            continue;
        };
        let Some(c0) = c.value else { continue };
        let limits = |z: f64| -> (f64, f64) {
            match ind.def.method {
                Method::Proportion => {
                    let p = c0 / m;
                    let (lo, hi) = stat::funnel_proportion(p, e.den, z);
                    (lo * m, hi * m)
                }
                Method::Rate => {
                    let r = c0 / m;
                    let (lo, hi) = stat::funnel_poisson(r * e.den, z);
                    (lo / e.den * m, hi / e.den * m)
                }
                _ => {
                    let sd = if c.den > 1.0 {
                        ((c.num2 - c.num * c.num / c.den) / (c.den - 1.0))
                            .max(0.0)
                            .sqrt()
                    } else {
                        0.0
                    };
                    let hw = z * sd / e.den.sqrt() * m;
                    (c0 - hw, c0 + hw)
                }
            }
        };
        let (l95, u95) = limits(1.959_963_984_540_054);
        let (l998, u998) = limits(3.090_232_306_167_813);
        let position = if value > u998 {
            "above_99.8"
        } else if value > u95 {
            "above_95"
        } else if value < l998 {
            "below_99.8"
        } else if value < l95 {
            "below_95"
        } else {
            "within"
        };
        out.push(FunnelPoint {
            indicator: v.indicator.clone(),
            level: v.level.clone(),
            place: v.place.clone(),
            period: v.period.clone(),
            value,
            denominator: e.den,
            centre: c0,
            lower95: l95,
            upper95: u95,
            lower998: l998,
            upper998: u998,
            position: position.into(),
        });
    }
    out
}
