//! The versioned JSON file a model lives in between training and scoring.
//!
//! A model trained in March scores people in April, perhaps with a newer trent; the
//! artefact carries everything needed to check that is safe: the format version, the
//! trent-riskmodel version that wrote it, the features (names and kinds, in order),
//! the caller's metadata (training window, index date, data extract), the
//! hyperparameters, the model itself and its evaluation. Loading refuses a newer format
//! and a matrix with another feature set, each with a message saying which.

use crate::eval::Evaluation;
use crate::matrix::{FeatureKind, FeatureMatrix};
use crate::model::Model;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// The artefact format this build writes and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;

/// A feature as the model expects it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureSpec {
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: FeatureKind,
}

/// A model with its provenance and evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Artefact {
    /// Format version ([`FORMAT_VERSION`] when written by this build).
    pub format_version: u32,
    /// "trent-riskmodel <version>".
    pub created_by: String,
    /// "gbt", "logistic" or "scorecard".
    pub model_kind: String,
    /// Features in the model's order (scorecards: kinds are as in the training matrix).
    pub features: Vec<FeatureSpec>,
    /// The caller's metadata: training window, index date, extract, purpose.
    pub metadata: serde_json::Value,
    /// Hyperparameters (a copy of those inside the model, for readers of the file).
    pub hyperparameters: serde_json::Value,
    /// The model.
    pub model: Model,
    /// Evaluation on held-out data, if done.
    pub evaluation: Option<Evaluation>,
}

impl Artefact {
    /// Wrap a model; `features` gives the kinds (from the training matrix).
    pub fn new(
        model: Model,
        training: &FeatureMatrix,
        metadata: serde_json::Value,
        evaluation: Option<Evaluation>,
    ) -> Result<Artefact> {
        let features = model
            .feature_names()
            .into_iter()
            .map(|name| {
                let j = training.index_of(&name).ok_or_else(|| {
                    Error::FeatureMismatch(format!(
                        "the model uses feature '{name}', which the training matrix lacks"
                    ))
                })?;
                Ok(FeatureSpec {
                    name,
                    kind: training.kinds()[j],
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let hyperparameters = match &model {
            Model::Gbt(g) => serde_json::to_value(&g.params),
            Model::Logistic(l) => serde_json::to_value(&l.params),
            Model::Scorecard(s) => {
                serde_json::to_value(serde_json::json!({"name": s.name, "source": s.source}))
            }
        }
        .map_err(|e| Error::Invalid(format!("hyperparameters: {e}")))?;
        Ok(Artefact {
            format_version: FORMAT_VERSION,
            created_by: format!("trent-riskmodel {}", env!("CARGO_PKG_VERSION")),
            model_kind: model.kind().to_string(),
            features,
            metadata,
            hyperparameters,
            model,
            evaluation,
        })
    }

    /// The artefact as pretty JSON.
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self).map_err(|e| Error::Invalid(format!("artefact: {e}")))
    }

    /// Parse an artefact; `file` names the source in errors.
    pub fn from_json(text: &str, file: &str) -> Result<Artefact> {
        let input = |line: Option<u64>, column: Option<&str>, message: String| Error::Input {
            file: file.to_string(),
            line,
            column: column.map(str::to_string),
            message,
        };
        let v: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| input(Some(e.line() as u64), None, e.to_string()))?;
        let version = v
            .get("format_version")
            .and_then(|x| x.as_u64())
            .ok_or_else(|| {
                input(
                    None,
                    Some("format_version"),
                    "missing or not a whole number".into(),
                )
            })?;
        if version > FORMAT_VERSION as u64 {
            return Err(input(
                None,
                Some("format_version"),
                format!(
                    "format version {version} is newer than this build reads ({FORMAT_VERSION}); written by {}; upgrade trent",
                    v.get("created_by")
                        .and_then(|c| c.as_str())
                        .unwrap_or("an unknown program")
                ),
            ));
        }
        if version == 0 {
            return Err(input(
                None,
                Some("format_version"),
                "format version 0 does not exist".into(),
            ));
        }
        let a: Artefact = serde_json::from_str(text)
            .map_err(|e| input(Some(e.line() as u64), None, e.to_string()))?;
        a.model
            .validate()
            .map_err(|e| input(None, Some("model"), e.to_string()))?;
        let names: Vec<String> = a.features.iter().map(|f| f.name.clone()).collect();
        if names != a.model.feature_names() {
            return Err(input(
                None,
                Some("features"),
                "do not match the model's features".into(),
            ));
        }
        if a.model.kind() != a.model_kind {
            return Err(input(
                None,
                Some("model_kind"),
                format!(
                    "says '{}' but the model is '{}'",
                    a.model_kind,
                    a.model.kind()
                ),
            ));
        }
        Ok(a)
    }

    /// Write to a file.
    pub fn save(&self, path: impl AsRef<std::path::Path>) -> Result<()> {
        let path = path.as_ref();
        std::fs::write(path, self.to_json()?).map_err(|source| Error::Io {
            file: path.display().to_string(),
            source,
        })
    }

    /// Read from a file, refusing newer formats.
    pub fn load(path: impl AsRef<std::path::Path>) -> Result<Artefact> {
        let path = path.as_ref();
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            file: file.clone(),
            source,
        })?;
        Artefact::from_json(&text, &file)
    }

    /// Read from a file and check it can score `m`.
    pub fn load_for(path: impl AsRef<std::path::Path>, m: &FeatureMatrix) -> Result<Artefact> {
        let a = Artefact::load(path)?;
        a.check_features(m)?;
        Ok(a)
    }

    /// Refuse a matrix lacking one of the model's features or holding it as another kind.
    pub fn check_features(&self, m: &FeatureMatrix) -> Result<()> {
        for f in &self.features {
            match m.index_of(&f.name) {
                None => {
                    return Err(Error::FeatureMismatch(format!(
                        "the model uses feature '{}', which the matrix lacks",
                        f.name
                    )));
                }
                Some(j) if m.kinds()[j] != f.kind => {
                    return Err(Error::FeatureMismatch(format!(
                        "feature '{}' is {:?} in the model but {:?} in the matrix",
                        f.name,
                        f.kind,
                        m.kinds()[j]
                    )));
                }
                _ => {}
            }
        }
        Ok(())
    }
}
