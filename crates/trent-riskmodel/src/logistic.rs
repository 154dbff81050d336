//! The logistic-regression baseline.
//!
//! Every risk-stratification report should say how much the trees buy over a model a
//! statistician can read, so trent always fits one: standardised terms, an L2 penalty
//! on everything but the intercept, fitted by Newton–Raphson (IRLS) with step halving.
//!
//! Design terms per feature: numeric and binary features enter linearly, with missing
//! values imputed by the training mean and a missing-indicator term when the training
//! data had any missing; categorical features enter as one indicator per code (at most
//! `max_levels` most frequent codes; the most frequent is the reference, and codes not
//! seen in training count as the reference). Every term is standardised with the
//! training mean and standard deviation; constant terms are dropped.
//!
//! Explanations are coefficient × (standardised value − its training mean, which is 0),
//! summed over a feature's terms, so they add up to logit(p) − intercept exactly.

use crate::gbt::columns_for;
use crate::matrix::{FeatureKind, FeatureMatrix};
use crate::{Error, Result, chunks, logit, sigmoid};
use serde::{Deserialize, Serialize};

/// Fitting options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogisticParams {
    /// L2 penalty on the mean log-loss scale: minimise mean loss + l2/2 · ‖β‖².
    pub l2: f64,
    /// Maximum Newton iterations.
    pub max_iter: usize,
    /// Stop when the largest coefficient change is below this.
    pub tol: f64,
    /// Most indicator terms a categorical feature may get.
    pub max_levels: usize,
    /// Worker threads.
    pub threads: usize,
}

impl Default for LogisticParams {
    fn default() -> Self {
        LogisticParams {
            l2: 1e-4,
            max_iter: 50,
            tol: 1e-8,
            max_levels: 50,
            threads: 2,
        }
    }
}

/// What a design term measures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TermKind {
    /// The value itself (missing imputed by `impute`).
    Value {
        /// The training mean used for missing values.
        #[serde(with = "crate::exact")]
        impute: f64,
    },
    /// 1 when the value is missing.
    Missing,
    /// 1 when the categorical code equals `code`.
    Level {
        /// The code.
        code: i32,
    },
}

/// One column of the design matrix, with its standardisation and coefficient.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Term {
    /// Index into the model's features.
    pub feature: usize,
    /// What it measures.
    pub kind: TermKind,
    /// Training mean of the raw term.
    #[serde(with = "crate::exact")]
    pub mean: f64,
    /// Training standard deviation of the raw term.
    #[serde(with = "crate::exact")]
    pub sd: f64,
    /// Coefficient on the standardised term.
    #[serde(with = "crate::exact")]
    pub coef: f64,
}

impl Term {
    fn raw(&self, x: f32) -> f64 {
        match self.kind {
            TermKind::Value { impute } => {
                if x.is_nan() {
                    impute
                } else {
                    x as f64
                }
            }
            TermKind::Missing => x.is_nan() as u8 as f64,
            TermKind::Level { code } => (!x.is_nan() && x as i32 == code) as u8 as f64,
        }
    }

    fn z(&self, x: f32) -> f64 {
        (self.raw(x) - self.mean) / self.sd
    }
}

/// A fitted logistic regression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogisticModel {
    /// Feature names.
    pub features: Vec<String>,
    /// Feature kinds.
    pub kinds: Vec<FeatureKind>,
    /// Intercept on the standardised scale (log-odds at the training means).
    #[serde(with = "crate::exact")]
    pub intercept: f64,
    /// Design terms.
    pub terms: Vec<Term>,
    /// Options used.
    pub params: LogisticParams,
    /// Newton iterations taken.
    pub iterations: usize,
    /// Whether the tolerance was reached.
    pub converged: bool,
}

impl LogisticModel {
    /// Check internal consistency (after loading from a file).
    pub fn validate(&self) -> Result<()> {
        if self.features.len() != self.kinds.len() {
            return Err(Error::Invalid(
                "logistic model: features and kinds differ in length".into(),
            ));
        }
        for (i, t) in self.terms.iter().enumerate() {
            if t.feature >= self.features.len()
                || t.sd.is_nan()
                || t.sd <= 0.0
                || !t.coef.is_finite()
                || !t.mean.is_finite()
            {
                return Err(Error::Invalid(format!(
                    "logistic model: term {i} is invalid"
                )));
            }
        }
        Ok(())
    }

    /// A readable label for a term (`age`, `bmi (missing)`, `ethnicity = 3`).
    pub fn term_label(&self, t: &Term) -> String {
        let f = &self.features[t.feature];
        match t.kind {
            TermKind::Value { .. } => f.clone(),
            TermKind::Missing => format!("{f} (missing)"),
            TermKind::Level { code } => format!("{f} = {code}"),
        }
    }

    /// Intercept and coefficients on the original (unstandardised) scale of each term.
    pub fn original_scale(&self) -> (f64, Vec<(String, f64)>) {
        let mut b0 = self.intercept;
        let coefs = self
            .terms
            .iter()
            .map(|t| {
                b0 -= t.coef * t.mean / t.sd;
                (self.term_label(t), t.coef / t.sd)
            })
            .collect();
        (b0, coefs)
    }

    pub(crate) fn raw_scores(&self, cols: &[&[f32]], n: usize) -> Vec<f64> {
        (0..n)
            .map(|r| {
                self.intercept
                    + self
                        .terms
                        .iter()
                        .map(|t| t.coef * t.z(cols[t.feature][r]))
                        .sum::<f64>()
            })
            .collect()
    }

    pub(crate) fn contributions_row(&self, cols: &[&[f32]], row: usize) -> (f64, Vec<f64>) {
        let mut phi = vec![0.0; self.features.len()];
        for t in &self.terms {
            phi[t.feature] += t.coef * t.z(cols[t.feature][row]);
        }
        (self.intercept, phi)
    }
}

/// Fit the penalised logistic regression.
pub fn train_logistic(train: &FeatureMatrix, p: &LogisticParams) -> Result<LogisticModel> {
    if !(p.l2 >= 0.0 && p.l2.is_finite()) || p.max_iter == 0 || p.tol.is_nan() || p.tol <= 0.0 {
        return Err(Error::Invalid(
            "logistic parameters: l2 must be ≥ 0, max_iter ≥ 1 and tol > 0".into(),
        ));
    }
    let n = train.n_rows();
    if n == 0 || train.n_features() == 0 {
        return Err(Error::Invalid(
            "training matrix has no rows or no features".into(),
        ));
    }
    let y = train.labels();
    let events: usize = y.iter().map(|v| *v as usize).sum();
    if events == 0 || events == n {
        return Err(Error::Invalid(format!(
            "training matrix has {events} events in {n} rows; both outcomes are needed"
        )));
    }
    let features = train.names().to_vec();
    let kinds = train.kinds().to_vec();
    let cols = columns_for(train, &features, &kinds)?;
    // Design terms and their standardisation.
    let mut terms = Vec::new();
    for (f, (col, kind)) in cols.iter().zip(&kinds).enumerate() {
        let missing = col.iter().filter(|v| v.is_nan()).count();
        let present = n - missing;
        match kind {
            FeatureKind::Categorical => {
                let mut counts: std::collections::HashMap<i32, usize> = Default::default();
                for v in col.iter().filter(|v| !v.is_nan()) {
                    *counts.entry(*v as i32).or_default() += 1;
                }
                let mut levels: Vec<(i32, usize)> = counts.into_iter().collect();
                levels.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
                for (code, _) in levels.iter().skip(1).take(p.max_levels) {
                    terms.push(blank(f, TermKind::Level { code: *code }));
                }
            }
            _ => {
                let impute = if present > 0 {
                    col.iter()
                        .filter(|v| !v.is_nan())
                        .map(|v| *v as f64)
                        .sum::<f64>()
                        / present as f64
                } else {
                    0.0
                };
                terms.push(blank(f, TermKind::Value { impute }));
            }
        }
        if missing > 0 {
            terms.push(blank(f, TermKind::Missing));
        }
    }
    for t in terms.iter_mut() {
        let col = cols[t.feature];
        let mean = col.iter().map(|x| t.raw(*x)).sum::<f64>() / n as f64;
        let var = col.iter().map(|x| (t.raw(*x) - mean).powi(2)).sum::<f64>() / n as f64;
        t.mean = mean;
        t.sd = var.sqrt();
    }
    terms.retain(|t| t.sd > 1e-12 * t.mean.abs().max(1.0));
    let k = terms.len() + 1;
    let threads = p.threads.max(1);
    // Newton–Raphson with step halving on the penalised mean log-loss.
    let mut beta = vec![0.0; k];
    beta[0] = logit(events as f64 / n as f64);
    let pass = |beta: &[f64]| -> (f64, Vec<f64>, Vec<f64>) {
        let parts: Vec<(f64, Vec<f64>, Vec<f64>)> = std::thread::scope(|s| {
            let hs: Vec<_> = chunks(n, threads)
                .into_iter()
                .map(|r| {
                    let terms = &terms;
                    let cols = &cols;
                    s.spawn(move || {
                        let mut loss = 0.0;
                        let mut grad = vec![0.0; k];
                        let mut hess = vec![0.0; k * k];
                        let mut z = vec![0.0; k];
                        z[0] = 1.0;
                        for row in r {
                            for (zi, t) in z[1..].iter_mut().zip(terms.iter()) {
                                *zi = t.z(cols[t.feature][row]);
                            }
                            let eta: f64 = z.iter().zip(beta).map(|(a, b)| a * b).sum();
                            let pr = sigmoid(eta);
                            let yi = y[row] as f64;
                            let softplus = if eta > 0.0 {
                                eta + (-eta).exp().ln_1p()
                            } else {
                                eta.exp().ln_1p()
                            };
                            loss += softplus - yi * eta;
                            let resid = pr - yi;
                            let w = pr * (1.0 - pr);
                            for a in 0..k {
                                grad[a] += resid * z[a];
                                let wa = w * z[a];
                                for b in a..k {
                                    hess[a * k + b] += wa * z[b];
                                }
                            }
                        }
                        (loss, grad, hess)
                    })
                })
                .collect();
            hs.into_iter()
                .map(|h| h.join().expect("logistic thread panicked"))
                .collect()
        });
        let mut loss = 0.0;
        let mut grad = vec![0.0; k];
        let mut hess = vec![0.0; k * k];
        for (l, g, h) in parts {
            loss += l;
            for (a, b) in grad.iter_mut().zip(g) {
                *a += b;
            }
            for (a, b) in hess.iter_mut().zip(h) {
                *a += b;
            }
        }
        let nf = n as f64;
        loss /= nf;
        for a in 0..k {
            grad[a] /= nf;
            for b in a..k {
                hess[a * k + b] /= nf;
                hess[b * k + a] = hess[a * k + b];
            }
        }
        for a in 1..k {
            loss += 0.5 * p.l2 * beta[a] * beta[a];
            grad[a] += p.l2 * beta[a];
            hess[a * k + a] += p.l2;
        }
        (loss, grad, hess)
    };
    let (mut loss, mut grad, mut hess) = pass(&beta);
    let mut converged = false;
    let mut iterations = 0;
    while iterations < p.max_iter {
        iterations += 1;
        let step = cholesky_solve(&hess, &grad, k).ok_or_else(|| {
            Error::Invalid("logistic regression: the information matrix is singular (perfectly collinear features?); raise l2".into())
        })?;
        let mut scale = 1.0;
        let mut accepted = false;
        for _ in 0..30 {
            let cand: Vec<f64> = beta.iter().zip(&step).map(|(b, s)| b - scale * s).collect();
            let (l2, g2, h2) = pass(&cand);
            if l2 <= loss + 1e-12 {
                beta = cand;
                (loss, grad, hess) = (l2, g2, h2);
                accepted = true;
                break;
            }
            scale *= 0.5;
        }
        let max_step = step.iter().fold(0.0f64, |m, s| m.max((s * scale).abs()));
        if !accepted || max_step < p.tol {
            converged = accepted || max_step < p.tol;
            break;
        }
    }
    for (t, b) in terms.iter_mut().zip(&beta[1..]) {
        t.coef = *b;
    }
    Ok(LogisticModel {
        features,
        kinds,
        intercept: beta[0],
        terms,
        params: p.clone(),
        iterations,
        converged,
    })
}

fn blank(feature: usize, kind: TermKind) -> Term {
    Term {
        feature,
        kind,
        mean: 0.0,
        sd: 1.0,
        coef: 0.0,
    }
}

/// Solve A x = b for symmetric positive-definite A (k × k, row-major) by Cholesky.
pub(crate) fn cholesky_solve(a: &[f64], b: &[f64], k: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; k * k];
    for i in 0..k {
        for j in 0..=i {
            let mut s = a[i * k + j];
            for m in 0..j {
                s -= l[i * k + m] * l[j * k + m];
            }
            if i == j {
                if s <= 0.0 || !s.is_finite() {
                    return None;
                }
                l[i * k + i] = s.sqrt();
            } else {
                l[i * k + j] = s / l[j * k + j];
            }
        }
    }
    let mut z = vec![0.0; k];
    for i in 0..k {
        let mut s = b[i];
        for m in 0..i {
            s -= l[i * k + m] * z[m];
        }
        z[i] = s / l[i * k + i];
    }
    let mut x = vec![0.0; k];
    for i in (0..k).rev() {
        let mut s = z[i];
        for m in i + 1..k {
            s -= l[m * k + i] * x[m];
        }
        x[i] = s / l[i * k + i];
    }
    Some(x)
}
