//! The public-health statistics the Observatory applies, at 95% confidence: a thin
//! adapter over `trent_stats::methods` and `trent_stats::spc` (docs/methods.md gives each
//! method's reference and the variant chosen). Values PHE would not publish (a DSR of
//! fewer than 10 events, a life expectancy of 5,000 people or fewer) come back as None.

use trent_stats::methods::{self, LE_AGES, SiiValueType};
use trent_stats::spc::{self, Direction, SpcOptions};
use trent_stats::stats::ESP2013;

const CONF: f64 = 0.95;

fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

/// Wilson score interval of a proportion num/den.
pub fn wilson(num: f64, den: f64) -> (f64, f64) {
    methods::wilson(num, den, CONF).unwrap_or((f64::NAN, f64::NAN))
}

/// Byar's interval of a count (exact below 10 events, as PHE).
pub fn byar(o: f64) -> (f64, f64) {
    methods::byars(o, CONF).unwrap_or((f64::NAN, f64::NAN))
}

/// Directly standardised rate per person-year, ESP 2013, Dobson interval.
pub fn dsr(events: &[f64; 19], py: &[f64; 19]) -> Option<(f64, f64, f64)> {
    // bands with no population carry no weight (the standard is renormalised), as the
    // restricted age ranges (under-75s) need
    let (mut e, mut p, mut w) = (vec![], vec![], vec![]);
    for b in 0..19 {
        if py[b] > 0.0 {
            e.push(events[b]);
            p.push(py[b]);
            w.push(ESP2013[b]);
        }
    }
    if p.is_empty() {
        return None;
    }
    let d = methods::dsr(&e, &p, &w, 1.0, CONF).ok()?;
    Some((
        finite(d.estimate.value)?,
        d.estimate.lower,
        d.estimate.upper,
    ))
}

/// Life expectancy at birth (Chiang II, PHE's bands 0, 1-4, 5-9 … 90+).
pub fn life_expectancy(deaths: &[f64; 20], py: &[f64; 20]) -> Option<(f64, f64, f64)> {
    let le = methods::life_expectancy(&LE_AGES, deaths, py, CONF).ok()?;
    let e = le.first()?.estimate;
    Some((finite(e.value)?, e.lower, e.upper))
}

/// Healthy life expectancy at birth (Sullivan), from (not good, asked) by band. A band
/// nobody was asked in takes the prevalence of the nearest band that was.
pub fn healthy_life_expectancy(
    deaths: &[f64; 20],
    py: &[f64; 20],
    bad: &[(f64, f64); 20],
) -> Option<(f64, f64, f64)> {
    let asked: Vec<usize> = (0..20).filter(|&i| bad[i].1 > 0.0).collect();
    if asked.is_empty() {
        return None;
    }
    let mut good = [0.0; 20];
    let mut n = [0.0; 20];
    for i in 0..20 {
        let j = *asked
            .iter()
            .min_by_key(|&&j| (j as i64 - i as i64).abs())
            .expect("some");
        good[i] = 1.0 - bad[j].0 / bad[j].1;
        n[i] = bad[i].1;
    }
    let h = methods::healthy_life_expectancy(&LE_AGES, deaths, py, &good, &n, CONF).ok()?;
    let e = h.first()?.estimate;
    Some((finite(e.value)?, e.lower, e.upper))
}

/// An XmR chart read the Making Data Count way (NHSRplotthedots defaults).
#[derive(Debug, Clone)]
pub struct Chart {
    /// per point: the variation icon's label
    pub variation: Vec<String>,
    /// against the target: the assurance icon's label
    pub assurance: Option<String>,
}

/// XmR chart of a series, with new segments at the `rebase` positions; `improve`:
/// Some(true) if higher is better.
pub fn xmr(
    values: &[f64],
    rebase: &[usize],
    improve: Option<bool>,
    target: Option<f64>,
) -> Option<Chart> {
    let opts = SpcOptions {
        direction: match improve {
            Some(true) => Direction::Increase,
            Some(false) => Direction::Decrease,
            None => Direction::Neutral,
        },
        target,
        ..SpcOptions::default()
    };
    let c = spc::xmr(values, rebase, &opts).ok()?;
    Some(Chart {
        variation: c
            .points
            .iter()
            .map(|p| p.variation.label().to_string())
            .collect(),
        assurance: c.assurance.map(|a| a.label().to_string()),
    })
}

/// Slope index of inequality from (population, value, lower, upper) by decile, least
/// deprived first, so that the SII is the most deprived end of the gradient minus the
/// least deprived end (positive when the most deprived have the higher value), as the
/// plan quotes it. PHE's regression; simulated interval (10,000 draws, seed 1).
pub fn sii(deciles: &[(f64, f64, f64, f64)], rate: bool) -> Option<(f64, f64, f64)> {
    let vt = if rate {
        SiiValueType::Rate
    } else {
        SiiValueType::Normal
    };
    let pop: Vec<f64> = deciles.iter().map(|d| d.0).collect();
    let val: Vec<f64> = deciles.iter().map(|d| d.1).collect();
    let se: Vec<f64> = deciles
        .iter()
        .map(|d| methods::sii_se_from_limits(d.2, d.3, vt))
        .collect();
    let s = methods::sii(&pop, &val, &se, vt, 1.0, CONF, 10_000, 1).ok()?;
    Some((finite(s.sii.value)?, s.sii.lower, s.sii.upper))
}

/// Funnel limits of a proportion `p` for a unit of size `n` at `z`.
pub fn funnel_proportion(p: f64, n: f64, z: f64) -> (f64, f64) {
    methods::funnel_proportion_limits(n, p, methods::normal_cdf(z) * 2.0 - 1.0)
}

/// Funnel limits of a count with expectation `e` at `z` (exact Poisson).
pub fn funnel_poisson(e: f64, z: f64) -> (f64, f64) {
    methods::funnel_poisson_limits(e, methods::normal_cdf(z) * 2.0 - 1.0)
}
