//! How well a risk model works, and for whom.
//!
//! The figures a population-health team and its information governance board need
//! before acting on a list of high-risk people (TRIPOD, Collins et al. 2015; Van
//! Calster et al. 2019, "Calibration: the Achilles heel of predictive analytics"):
//!
//! - discrimination: AUROC with a 95% CI from DeLong, DeLong & Clarke-Pearson (1988),
//!   computed with the O(n log n) midrank algorithm of Sun & Xu (2014, IEEE Signal
//!   Processing Letters 21:1389), so it runs on a million people;
//! - accuracy: the Brier score;
//! - calibration: calibration-in-the-large (the intercept of a logistic regression of
//!   the outcome with logit(p) as offset; 0 is ideal) and the calibration slope (the
//!   coefficient of logit(p) in a logistic regression; 1 is ideal), each with a Wald 95%
//!   CI, and a table by tenths of predicted risk;
//! - the use case: sensitivity and PPV when the top 0.5%, 1% and 5% by risk are
//!   flagged (ties at the boundary broken by row order);
//! - all of these by every group column the matrix carries. A subgroup's list is the
//!   population's list (the people in the population-wide top x% who belong to the
//!   subgroup), because that is the list a team acts on. Subgroups with fewer than 8
//!   events are flagged and their performance figures withheld rather than reported
//!   as if reliable.

use crate::matrix::{FeatureMatrix, GroupColumn};
use crate::model::Model;
use crate::{Error, Result, logit, sigmoid};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The fewest events a group needs for its performance figures to be reported.
pub const MIN_EVENTS: usize = 8;

/// The fractions of the population flagged for the top-k figures.
pub const TOP_FRACTIONS: [f64; 3] = [0.005, 0.01, 0.05];

/// A point estimate with a 95% confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// The estimate.
    pub value: f64,
    /// Standard error.
    pub se: f64,
    /// Lower 95% limit.
    pub lower: f64,
    /// Upper 95% limit.
    pub upper: f64,
}

impl fmt::Display for Estimate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:.4} ({:.4} to {:.4})",
            self.value, self.lower, self.upper
        )
    }
}

/// Sensitivity and PPV when the top `fraction` of the population by risk is flagged.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TopK {
    /// Fraction of the whole population flagged.
    pub fraction: f64,
    /// People flagged (in this group).
    pub flagged: usize,
    /// Events among them.
    pub flagged_events: usize,
    /// Share of the group's events that were flagged.
    pub sensitivity: Option<f64>,
    /// Share of the flagged who had the event.
    pub ppv: Option<f64>,
}

/// One tenth of the population by predicted risk.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CalibrationBin {
    /// 1 = lowest predicted risk.
    pub decile: usize,
    /// People.
    pub n: usize,
    /// Events.
    pub events: usize,
    /// Mean predicted risk.
    pub mean_predicted: f64,
    /// Observed event rate.
    pub observed: f64,
}

/// The figures for one population or subgroup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// People.
    pub n: usize,
    /// Events.
    pub events: usize,
    /// events / n.
    pub prevalence: f64,
    /// Mean predicted risk.
    pub mean_predicted: f64,
    /// False when the performance figures are withheld (too few events or non-events).
    pub reliable: bool,
    /// Why figures are withheld.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Area under the ROC curve with DeLong 95% CI.
    pub auroc: Option<Estimate>,
    /// Mean squared error of the predicted probabilities.
    pub brier: Option<f64>,
    /// Calibration-in-the-large (0 is ideal).
    pub calibration_in_the_large: Option<Estimate>,
    /// Calibration slope (1 is ideal).
    pub calibration_slope: Option<Estimate>,
    /// Sensitivity and PPV at the top 0.5%, 1% and 5%.
    pub top: Vec<TopK>,
}

/// Metrics for each level of one group column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubgroupTable {
    /// The group column.
    pub column: String,
    /// (level, metrics), levels sorted.
    pub groups: Vec<(String, Metrics)>,
}

/// The full evaluation of a model on a test matrix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// The whole test population.
    pub overall: Metrics,
    /// Calibration by tenths of predicted risk.
    pub deciles: Vec<CalibrationBin>,
    /// By each group column.
    pub subgroups: Vec<SubgroupTable>,
}

/// Evaluate `model` on `test` (which must carry outcomes).
pub fn evaluate(model: &Model, test: &FeatureMatrix) -> Result<Evaluation> {
    let p = model.predict(test)?;
    evaluate_scores(&p, test.labels(), test.groups())
}

/// Evaluate predicted probabilities against outcomes, with optional group columns.
pub fn evaluate_scores(p: &[f64], y: &[u8], groups: &[GroupColumn]) -> Result<Evaluation> {
    let n = p.len();
    if n == 0 {
        return Err(Error::Invalid("nothing to evaluate: no rows".into()));
    }
    if y.len() != n {
        return Err(Error::Invalid(format!(
            "{n} predictions but {} outcomes",
            y.len()
        )));
    }
    if let Some(i) = p.iter().position(|v| !(0.0..=1.0).contains(v)) {
        return Err(Error::Invalid(format!(
            "prediction {i} is {}, not a probability",
            p[i]
        )));
    }
    if let Some(i) = y.iter().position(|v| *v > 1) {
        return Err(Error::Invalid(format!(
            "outcome {i} is {}, not 0 or 1",
            y[i]
        )));
    }
    for g in groups {
        if g.codes.len() != n {
            return Err(Error::Invalid(format!(
                "group column '{}' has {} rows, predictions {n}",
                g.name,
                g.codes.len()
            )));
        }
    }
    // Descending order of risk, ties by row; a row's rank decides whether it is flagged.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|a, b| p[*b].total_cmp(&p[*a]).then(a.cmp(b)));
    let mut rank = vec![0usize; n];
    for (k, r) in order.iter().enumerate() {
        rank[*r] = k;
    }
    let cut: Vec<usize> = TOP_FRACTIONS
        .iter()
        .map(|f| ((f * n as f64).ceil() as usize).max(1))
        .collect();
    let all: Vec<usize> = (0..n).collect();
    let overall = metrics(p, y, &all, &rank, &cut);
    let mut deciles = Vec::new();
    for d in 0..10 {
        // Ascending risk: the lowest tenth first.
        let lo = n * d / 10;
        let hi = n * (d + 1) / 10;
        if hi <= lo {
            continue;
        }
        let rows = &order[n - hi..n - lo];
        let events = rows.iter().map(|r| y[*r] as usize).sum::<usize>();
        deciles.push(CalibrationBin {
            decile: d + 1,
            n: rows.len(),
            events,
            mean_predicted: rows.iter().map(|r| p[*r]).sum::<f64>() / rows.len() as f64,
            observed: events as f64 / rows.len() as f64,
        });
    }
    let mut subgroups = Vec::new();
    for g in groups {
        let mut members: Vec<Vec<usize>> = vec![Vec::new(); g.levels.len()];
        for (r, c) in g.codes.iter().enumerate() {
            members[*c as usize].push(r);
        }
        let mut rows: Vec<(String, Metrics)> = g
            .levels
            .iter()
            .zip(&members)
            .filter(|(_, m)| !m.is_empty())
            .map(|(l, m)| (l.clone(), metrics(p, y, m, &rank, &cut)))
            .collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        subgroups.push(SubgroupTable {
            column: g.name.clone(),
            groups: rows,
        });
    }
    Ok(Evaluation {
        overall,
        deciles,
        subgroups,
    })
}

fn metrics(p: &[f64], y: &[u8], rows: &[usize], rank: &[usize], cut: &[usize]) -> Metrics {
    let n = rows.len();
    let events = rows.iter().map(|r| y[*r] as usize).sum::<usize>();
    let mean_predicted = rows.iter().map(|r| p[*r]).sum::<f64>() / n as f64;
    let mut m = Metrics {
        n,
        events,
        prevalence: events as f64 / n as f64,
        mean_predicted,
        reliable: false,
        note: None,
        auroc: None,
        brier: None,
        calibration_in_the_large: None,
        calibration_slope: None,
        top: Vec::new(),
    };
    if events < MIN_EVENTS || n - events < MIN_EVENTS {
        m.note = Some(format!(
            "{events} events and {} non-events; performance is not reported below {MIN_EVENTS} of either",
            n - events
        ));
        return m;
    }
    m.reliable = true;
    let ps: Vec<f64> = rows.iter().map(|r| p[*r]).collect();
    let ys: Vec<u8> = rows.iter().map(|r| y[*r]).collect();
    m.auroc = delong(&ps, &ys).map(|(auc, var)| {
        let se = var.max(0.0).sqrt();
        let z = z95();
        Estimate {
            value: auc,
            se,
            lower: (auc - z * se).max(0.0),
            upper: (auc + z * se).min(1.0),
        }
    });
    m.brier = Some(
        ps.iter()
            .zip(&ys)
            .map(|(p, y)| (p - *y as f64).powi(2))
            .sum::<f64>()
            / n as f64,
    );
    let offs: Vec<f64> = ps.iter().map(|p| logit(*p)).collect();
    m.calibration_in_the_large = calibration_in_the_large(&offs, &ys);
    m.calibration_slope = calibration_slope(&offs, &ys);
    m.top = cut
        .iter()
        .zip(TOP_FRACTIONS)
        .map(|(k, fraction)| {
            let flagged: Vec<usize> = rows.iter().copied().filter(|r| rank[*r] < *k).collect();
            let fe = flagged.iter().map(|r| y[*r] as usize).sum::<usize>();
            TopK {
                fraction,
                flagged: flagged.len(),
                flagged_events: fe,
                sensitivity: Some(fe as f64 / events as f64),
                ppv: (!flagged.is_empty()).then(|| fe as f64 / flagged.len() as f64),
            }
        })
        .collect();
    m
}

fn z95() -> f64 {
    trent_stats::methods::normal_quantile(0.975)
}

/// Midranks (1-based; ties share the mean of their ranks).
fn midranks(x: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..x.len()).collect();
    idx.sort_by(|a, b| x[*a].total_cmp(&x[*b]));
    let mut out = vec![0.0; x.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && x[idx[j + 1]] == x[idx[i]] {
            j += 1;
        }
        let mid = (i + j) as f64 / 2.0 + 1.0;
        for k in &idx[i..=j] {
            out[*k] = mid;
        }
        i = j + 1;
    }
    out
}

/// AUROC and its DeLong variance (Sun & Xu's fast algorithm). `None` without both
/// outcomes.
pub fn delong(p: &[f64], y: &[u8]) -> Option<(f64, f64)> {
    let pos: Vec<f64> = p
        .iter()
        .zip(y)
        .filter(|(_, y)| **y == 1)
        .map(|(p, _)| *p)
        .collect();
    let neg: Vec<f64> = p
        .iter()
        .zip(y)
        .filter(|(_, y)| **y == 0)
        .map(|(p, _)| *p)
        .collect();
    let (m, k) = (pos.len(), neg.len());
    if m == 0 || k == 0 {
        return None;
    }
    let tx = midranks(&pos);
    let ty = midranks(&neg);
    let mut all = pos.clone();
    all.extend_from_slice(&neg);
    let tz = midranks(&all);
    let (mf, kf) = (m as f64, k as f64);
    let auc = (tz[..m].iter().sum::<f64>() - mf * (mf + 1.0) / 2.0) / (mf * kf);
    let v10: Vec<f64> = (0..m).map(|i| (tz[i] - tx[i]) / kf).collect();
    let v01: Vec<f64> = (0..k).map(|j| 1.0 - (tz[m + j] - ty[j]) / mf).collect();
    let var = |v: &[f64]| {
        if v.len() < 2 {
            return 0.0;
        }
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (v.len() - 1) as f64
    };
    Some((auc, var(&v10) / mf + var(&v01) / kf))
}

/// Intercept α of logit P(y) = α + offset, by Newton–Raphson, with a Wald CI.
pub fn calibration_in_the_large(offset: &[f64], y: &[u8]) -> Option<Estimate> {
    let mut a = 0.0;
    for _ in 0..100 {
        let (mut g, mut h) = (0.0, 0.0);
        for (o, yi) in offset.iter().zip(y) {
            let pr = sigmoid(a + o);
            g += *yi as f64 - pr;
            h += pr * (1.0 - pr);
        }
        if h.is_nan() || h <= 0.0 {
            return None;
        }
        let step = g / h;
        a += step;
        if step.abs() < 1e-10 {
            let se = 1.0 / h.sqrt();
            let z = z95();
            return Some(Estimate {
                value: a,
                se,
                lower: a - z * se,
                upper: a + z * se,
            });
        }
    }
    None
}

/// Slope β of logit P(y) = α + β·x, by Newton–Raphson, with a Wald CI.
pub fn calibration_slope(x: &[f64], y: &[u8]) -> Option<Estimate> {
    let (mut a, mut b) = (0.0, 1.0);
    for _ in 0..100 {
        let (mut g0, mut g1, mut h00, mut h01, mut h11) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for (xi, yi) in x.iter().zip(y) {
            let pr = sigmoid(a + b * xi);
            let r = *yi as f64 - pr;
            let w = pr * (1.0 - pr);
            g0 += r;
            g1 += r * xi;
            h00 += w;
            h01 += w * xi;
            h11 += w * xi * xi;
        }
        let det = h00 * h11 - h01 * h01;
        if !det.is_finite() || det <= 0.0 {
            return None;
        }
        let da = (h11 * g0 - h01 * g1) / det;
        let db = (h00 * g1 - h01 * g0) / det;
        a += da;
        b += db;
        if !b.is_finite() {
            return None;
        }
        if da.abs().max(db.abs()) < 1e-10 {
            let se = (h00 / det).sqrt();
            let z = z95();
            return Some(Estimate {
                value: b,
                se,
                lower: b - z * se,
                upper: b + z * se,
            });
        }
    }
    None
}

fn opt<T: fmt::Display>(v: &Option<T>) -> String {
    v.as_ref()
        .map_or_else(|| "-".to_string(), |x| x.to_string())
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |x| format!("{:.1}%", 100.0 * x))
}

impl fmt::Display for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "n {}  events {}  prevalence {:.2}%  mean predicted {:.2}%",
            self.n,
            self.events,
            100.0 * self.prevalence,
            100.0 * self.mean_predicted
        )?;
        if let Some(note) = &self.note {
            return writeln!(f, "  NOT RELIABLE: {note}");
        }
        writeln!(f, "  AUROC (DeLong 95% CI)            {}", opt(&self.auroc))?;
        writeln!(
            f,
            "  Brier score                      {}",
            self.brier.map_or("-".into(), |b| format!("{b:.5}"))
        )?;
        writeln!(
            f,
            "  calibration-in-the-large (0)     {}",
            opt(&self.calibration_in_the_large)
        )?;
        writeln!(
            f,
            "  calibration slope (1)            {}",
            opt(&self.calibration_slope)
        )?;
        for t in &self.top {
            writeln!(
                f,
                "  top {:>4.1}%: flagged {:>7}  events {:>6}  sensitivity {:>6}  PPV {:>6}",
                100.0 * t.fraction,
                t.flagged,
                t.flagged_events,
                pct(t.sensitivity),
                pct(t.ppv)
            )?;
        }
        Ok(())
    }
}

impl fmt::Display for Evaluation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Overall")?;
        write!(f, "{}", self.overall)?;
        writeln!(f, "\nCalibration by tenth of predicted risk")?;
        writeln!(f, "  decile        n  events  mean predicted  observed")?;
        for d in &self.deciles {
            writeln!(
                f,
                "  {:>6} {:>8} {:>7}  {:>13.3}%  {:>7.3}%",
                d.decile,
                d.n,
                d.events,
                100.0 * d.mean_predicted,
                100.0 * d.observed
            )?;
        }
        for s in &self.subgroups {
            writeln!(f, "\nBy {}", s.column)?;
            for (level, m) in &s.groups {
                write!(f, "[{level}] {m}")?;
            }
        }
        Ok(())
    }
}
