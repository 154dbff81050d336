//! Published risk models ("scorecards") read from a TOML file.
//!
//! Many ICSs must run a model someone else published (a national or regional
//! emergency-admission score) rather than one trained locally. A scorecard is a logistic
//! model written down: an intercept and, per feature, a coefficient applied after
//! optional capping and a transform, or coefficients per categorical level. Example:
//!
//! ```toml
//! name = "Example emergency admission score"
//! source = "Author et al. (year), Journal, table 2"
//! intercept = -4.1
//!
//! [[term]]
//! feature = "age"
//! coef = 0.031
//! min = 18.0          # cap below (optional)
//! max = 100.0         # cap above (optional)
//! missing = 50.0      # value used when missing (optional; else missing is an error)
//! reference = 50.0    # explanations are coef × (value − reference); default 0
//!
//! [[term]]
//! feature = "prior_emergency_admissions"
//! transform = "log1p" # none | log1p | log | sqrt
//! coef = 0.62
//!
//! [[term]]
//! feature = "deprivation_quintile"
//! levels = { "1" = 0.35, "2" = 0.2 }   # other codes contribute 0
//! ```
//!
//! Order of operations for a numeric term: missing substitution, caps, transform, then
//! × coef. A scorecard naming a feature the matrix lacks is refused ("model file from
//! another feature set"), as is a missing value with no `missing` rule.

use crate::matrix::FeatureMatrix;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A transform applied to a capped value before the coefficient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transform {
    /// The value itself.
    #[default]
    None,
    /// ln(1 + x).
    Log1p,
    /// ln(x).
    Log,
    /// √x.
    Sqrt,
}

/// One term of a scorecard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreTerm {
    /// The feature it reads.
    pub feature: String,
    /// Coefficient for a numeric term.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coef: Option<f64>,
    /// Transform after capping.
    #[serde(default)]
    pub transform: Transform,
    /// Lower cap (applied before the transform).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Upper cap (applied before the transform).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Value substituted for a missing value (before caps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing: Option<f64>,
    /// Transformed value at which the term contributes nothing to an explanation.
    #[serde(default)]
    pub reference: f64,
    /// Coefficients per categorical code (keys are integer codes as strings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub levels: Option<BTreeMap<String, f64>>,
}

/// A published model: intercept and terms on the log-odds scale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scorecard {
    /// Model name.
    pub name: String,
    /// Citation of the publication the coefficients come from.
    #[serde(default)]
    pub source: String,
    /// Intercept (log-odds).
    pub intercept: f64,
    /// Terms.
    #[serde(rename = "term", default)]
    pub terms: Vec<ScoreTerm>,
}

impl Scorecard {
    /// Parse and check a scorecard from TOML text; `file` names it in errors.
    pub fn from_toml_str(text: &str, file: &str) -> Result<Scorecard> {
        let sc: Scorecard = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() as u64 + 1);
            Error::Input {
                file: file.to_string(),
                line,
                column: None,
                message: e.message().to_string(),
            }
        })?;
        sc.check(file)?;
        Ok(sc)
    }

    /// Read a scorecard file.
    pub fn load(path: impl AsRef<std::path::Path>) -> Result<Scorecard> {
        let path = path.as_ref();
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            file: file.clone(),
            source,
        })?;
        Scorecard::from_toml_str(&text, &file)
    }

    /// Check that every term is usable; `file` names the source in errors.
    pub fn check(&self, file: &str) -> Result<()> {
        let bad = |i: usize, t: &ScoreTerm, m: String| Error::Input {
            file: file.to_string(),
            line: None,
            column: Some(format!("term {} ('{}')", i + 1, t.feature)),
            message: m,
        };
        if !self.intercept.is_finite() {
            return Err(Error::Input {
                file: file.to_string(),
                line: None,
                column: Some("intercept".into()),
                message: "not a finite number".into(),
            });
        }
        for (i, t) in self.terms.iter().enumerate() {
            match (&t.coef, &t.levels) {
                (Some(_), Some(_)) => return Err(bad(i, t, "has both coef and levels".into())),
                (None, None) => return Err(bad(i, t, "has neither coef nor levels".into())),
                (Some(c), None) if !c.is_finite() => {
                    return Err(bad(i, t, "coef is not finite".into()));
                }
                (None, Some(levels)) => {
                    if t.transform != Transform::None || t.min.is_some() || t.max.is_some() {
                        return Err(bad(i, t, "a levels term takes no transform or caps".into()));
                    }
                    for (k, v) in levels {
                        if k.trim().parse::<i32>().is_err() {
                            return Err(bad(i, t, format!("level '{k}' is not an integer code")));
                        }
                        if !v.is_finite() {
                            return Err(bad(
                                i,
                                t,
                                format!("level '{k}' has a non-finite coefficient"),
                            ));
                        }
                    }
                }
                _ => {}
            }
            if let (Some(lo), Some(hi)) = (t.min, t.max)
                && lo > hi
            {
                return Err(bad(i, t, format!("min {lo} is above max {hi}")));
            }
        }
        Ok(())
    }

    /// Feature names the scorecard reads, in term order (duplicates kept).
    pub fn features(&self) -> Vec<String> {
        self.terms.iter().map(|t| t.feature.clone()).collect()
    }

    fn columns<'a>(&self, m: &'a FeatureMatrix) -> Result<Vec<&'a [f32]>> {
        self.terms
            .iter()
            .map(|t| {
                m.index_of(&t.feature).map(|j| m.column(j)).ok_or_else(|| {
                    Error::FeatureMismatch(format!(
                        "scorecard '{}' uses feature '{}', which the matrix lacks",
                        self.name, t.feature
                    ))
                })
            })
            .collect()
    }

    /// The term's contribution before subtracting the reference.
    fn term_value(&self, t: &ScoreTerm, x: f32, id: i64) -> Result<f64> {
        if let Some(levels) = &t.levels {
            if x.is_nan() {
                return match t.missing {
                    Some(v) => Ok(v),
                    None => Err(Error::Invalid(format!(
                        "scorecard '{}': feature '{}' is missing for id {id} and the term has no `missing` rule",
                        self.name, t.feature
                    ))),
                };
            }
            let code = x as i32;
            return Ok(levels
                .iter()
                .find(|(k, _)| k.trim().parse::<i32>().ok() == Some(code))
                .map(|(_, v)| *v)
                .unwrap_or(0.0));
        }
        let mut v = if x.is_nan() {
            t.missing.ok_or_else(|| {
                Error::Invalid(format!(
                    "scorecard '{}': feature '{}' is missing for id {id} and the term has no `missing` rule",
                    self.name, t.feature
                ))
            })?
        } else {
            x as f64
        };
        if let Some(lo) = t.min {
            v = v.max(lo);
        }
        if let Some(hi) = t.max {
            v = v.min(hi);
        }
        let tv = match t.transform {
            Transform::None => v,
            Transform::Log1p => v.ln_1p(),
            Transform::Log => v.ln(),
            Transform::Sqrt => v.sqrt(),
        };
        if !tv.is_finite() {
            return Err(Error::Invalid(format!(
                "scorecard '{}': {:?} of feature '{}' = {v} is undefined (id {id}); add a `min` cap",
                self.name, t.transform, t.feature
            )));
        }
        Ok((tv - t.reference) * t.coef.unwrap_or(0.0))
    }

    /// Log-odds for every row.
    pub fn raw_scores(&self, m: &FeatureMatrix) -> Result<Vec<f64>> {
        let cols = self.columns(m)?;
        let mut out = vec![self.base_value(); m.n_rows()];
        for (t, col) in self.terms.iter().zip(&cols) {
            for (r, o) in out.iter_mut().enumerate() {
                *o += self.term_value(t, col[r], m.ids()[r])?;
            }
        }
        Ok(out)
    }

    /// Log-odds when every numeric term is at its reference and every level term at 0.
    pub fn base_value(&self) -> f64 {
        self.intercept
            + self
                .terms
                .iter()
                .filter(|t| t.levels.is_none())
                .map(|t| t.coef.unwrap_or(0.0) * t.reference)
                .sum::<f64>()
    }

    /// Base value and per-term contributions for one row (terms on one feature summed;
    /// the order is that of [`Scorecard::distinct_features`]).
    pub fn contributions_row(
        &self,
        m: &FeatureMatrix,
        row: usize,
    ) -> Result<(f64, Vec<(String, f64)>)> {
        let cols = self.columns(m)?;
        let mut out: Vec<(String, f64)> = self
            .distinct_features()
            .into_iter()
            .map(|f| (f, 0.0))
            .collect();
        for (t, col) in self.terms.iter().zip(&cols) {
            let c = self.term_value(t, col[row], m.ids()[row])?;
            if let Some(slot) = out.iter_mut().find(|(f, _)| *f == t.feature) {
                slot.1 += c;
            }
        }
        Ok((self.base_value(), out))
    }

    /// Features in order of first use.
    pub fn distinct_features(&self) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for t in &self.terms {
            if !v.contains(&t.feature) {
                v.push(t.feature.clone());
            }
        }
        v
    }
}
