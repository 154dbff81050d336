//! One interface over the three model kinds, so scoring, explaining, evaluating and
//! saving do not care which produced the risk.
//!
//! Every model matches a matrix's columns by feature name (never by position), so a
//! matrix whose columns were reordered still scores correctly and a matrix from another
//! feature set is refused.

use crate::gbt::{GbtModel, GbtParams, columns_for, train_gbt};
use crate::logistic::{LogisticModel, LogisticParams, train_logistic};
use crate::matrix::FeatureMatrix;
use crate::scorecard::Scorecard;
use crate::{Error, Result, sigmoid};
use serde::{Deserialize, Serialize};

/// A trained or published model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Model {
    /// Gradient-boosted trees.
    Gbt(GbtModel),
    /// Penalised logistic regression.
    Logistic(LogisticModel),
    /// A published scorecard.
    Scorecard(Scorecard),
}

/// What to train.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TrainParams {
    /// Gradient-boosted trees.
    Gbt(GbtParams),
    /// Logistic regression (the validation matrix is not used).
    Logistic(LogisticParams),
}

/// Per-feature contributions to one person's log-odds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    /// The log-odds with no feature information (trees: the expected tree output;
    /// linear: the log-odds at the training means or scorecard references).
    pub base_value: f64,
    /// (feature, contribution on the log-odds scale), in the model's feature order.
    /// `base_value` plus their sum is the person's log-odds.
    pub contributions: Vec<(String, f64)>,
}

impl Explanation {
    /// The person's log-odds, rebuilt from the parts.
    pub fn log_odds(&self) -> f64 {
        self.base_value + self.contributions.iter().map(|c| c.1).sum::<f64>()
    }

    /// The `k` features that pushed risk up most (largest positive contributions first;
    /// features that lowered risk are not listed).
    pub fn top_up(&self, k: usize) -> Vec<(String, f64)> {
        top_up(self.contributions.iter().map(|(n, c)| (n.as_str(), *c)), k)
    }
}

/// The `k` largest positive contributions, largest first (ties by name).
fn top_up<'a>(contributions: impl Iterator<Item = (&'a str, f64)>, k: usize) -> Vec<(String, f64)> {
    let mut v: Vec<(&str, f64)> = contributions.filter(|c| c.1 > 0.0).collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    v.truncate(k);
    v.into_iter().map(|(n, c)| (n.to_string(), c)).collect()
}

/// Train a model: trees early-stop on `valid` when given; logistic ignores it.
pub fn train(
    train: &FeatureMatrix,
    valid: Option<&FeatureMatrix>,
    params: &TrainParams,
) -> Result<Model> {
    match params {
        TrainParams::Gbt(p) => Ok(Model::Gbt(train_gbt(train, valid, p)?)),
        TrainParams::Logistic(p) => Ok(Model::Logistic(train_logistic(train, p)?)),
    }
}

impl Model {
    /// "gbt", "logistic" or "scorecard".
    pub fn kind(&self) -> &'static str {
        match self {
            Model::Gbt(_) => "gbt",
            Model::Logistic(_) => "logistic",
            Model::Scorecard(_) => "scorecard",
        }
    }

    /// The features the model reads, in its own order.
    pub fn feature_names(&self) -> Vec<String> {
        match self {
            Model::Gbt(m) => m.features.clone(),
            Model::Logistic(m) => m.features.clone(),
            Model::Scorecard(s) => s.distinct_features(),
        }
    }

    /// Check internal consistency (after loading from a file).
    pub fn validate(&self) -> Result<()> {
        match self {
            Model::Gbt(m) => m.validate(),
            Model::Logistic(m) => m.validate(),
            Model::Scorecard(s) => s.check("scorecard"),
        }
    }

    /// Log-odds of the outcome for every row.
    pub fn predict_log_odds(&self, m: &FeatureMatrix) -> Result<Vec<f64>> {
        match self {
            Model::Gbt(g) => {
                let cols = columns_for(m, &g.features, &g.kinds)?;
                Ok(g.raw_scores(&cols, m.n_rows()))
            }
            Model::Logistic(l) => {
                let cols = columns_for(m, &l.features, &l.kinds)?;
                Ok(l.raw_scores(&cols, m.n_rows()))
            }
            Model::Scorecard(s) => s.raw_scores(m),
        }
    }

    /// Probability of the outcome for every row.
    pub fn predict(&self, m: &FeatureMatrix) -> Result<Vec<f64>> {
        Ok(self.predict_log_odds(m)?.into_iter().map(sigmoid).collect())
    }

    /// Base value and every feature's contribution to row `row`'s log-odds: exact
    /// path-dependent TreeSHAP for trees, coefficient × (x − mean) for linear models.
    pub fn contributions(&self, m: &FeatureMatrix, row: usize) -> Result<Explanation> {
        if row >= m.n_rows() {
            return Err(Error::Invalid(format!(
                "row {row} asked of a matrix of {} rows",
                m.n_rows()
            )));
        }
        let named = |names: &[String], base: f64, phi: Vec<f64>| Explanation {
            base_value: base,
            contributions: names.iter().cloned().zip(phi).collect(),
        };
        match self {
            Model::Gbt(g) => {
                let cols = columns_for(m, &g.features, &g.kinds)?;
                let (base, phi) = g.shap_row(&cols, row);
                Ok(named(&g.features, base, phi))
            }
            Model::Logistic(l) => {
                let cols = columns_for(m, &l.features, &l.kinds)?;
                let (base, phi) = l.contributions_row(&cols, row);
                Ok(named(&l.features, base, phi))
            }
            Model::Scorecard(s) => {
                let (base, contributions) = s.contributions_row(m, row)?;
                Ok(Explanation {
                    base_value: base,
                    contributions,
                })
            }
        }
    }

    /// The `k` features that pushed row `row`'s risk up most, with their contributions
    /// on the log-odds scale.
    pub fn explain(&self, m: &FeatureMatrix, row: usize, k: usize) -> Result<Vec<(String, f64)>> {
        Ok(self.contributions(m, row)?.top_up(k))
    }

    /// [`Model::explain`] for each of `rows`, the same answers: the matrix's columns are
    /// matched to the model once, and trees reuse one scratch path for every row.
    pub fn explain_rows(
        &self,
        m: &FeatureMatrix,
        rows: &[usize],
        k: usize,
    ) -> Result<Vec<Vec<(String, f64)>>> {
        if let Some(&row) = rows.iter().find(|&&r| r >= m.n_rows()) {
            return Err(Error::Invalid(format!(
                "row {row} asked of a matrix of {} rows",
                m.n_rows()
            )));
        }
        match self {
            Model::Gbt(g) => {
                let cols = columns_for(m, &g.features, &g.kinds)?;
                let mut out = Vec::with_capacity(rows.len());
                g.shap_rows(&cols, rows, |phi| {
                    out.push(top_up(
                        g.features
                            .iter()
                            .map(String::as_str)
                            .zip(phi.iter().copied()),
                        k,
                    ));
                });
                Ok(out)
            }
            _ => rows.iter().map(|&r| self.explain(m, r, k)).collect(),
        }
    }
}
