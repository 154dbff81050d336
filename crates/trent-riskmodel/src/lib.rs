//! Emergency-admission risk models for population health management.
//!
//! An integrated care system wants, for everyone it serves, the probability of an
//! emergency admission in the next 12 months: trained on its own population, explainable
//! to the clinician who receives the list, and honest about how well it works and for
//! whom. This crate is the learning, evaluation and artefact machinery; it knows nothing
//! of the lake. The caller (the `trent` binary) builds a dense [`FeatureMatrix`] at an
//! index date and hands it over.
//!
//! - [`matrix`]: the column-major feature matrix (f32, NaN = missing) and its CSV reader;
//! - [`gbt`]: LightGBM-style gradient-boosted trees for binary log-loss (quantile bins,
//!   histogram subtraction, leaf-wise growth, two threads) with exact path-dependent
//!   TreeSHAP explanations;
//! - [`logistic`]: the penalised logistic-regression baseline (Newton–Raphson);
//! - [`scorecard`]: published models read from a TOML file;
//! - [`model`]: the [`Model`] enum over the three, with `train`, `predict`, `explain`;
//! - [`eval`]: discrimination (AUROC with DeLong CI), calibration and top-k capture,
//!   overall and by subgroup;
//! - [`artefact`]: the versioned JSON file a trained model is kept in.
//!
//! The crate is deliberately pure (no DataFusion, no async runtime) so it builds in
//! seconds and can be tested on synthetic data alone. Methods, references and known
//! deviations from LightGBM: `docs/risk-model.md`.

pub mod artefact;
pub mod eval;
pub mod gbt;
pub mod logistic;
pub mod matrix;
pub mod model;
pub mod scorecard;

pub use artefact::{Artefact, FORMAT_VERSION};
pub use eval::{Evaluation, evaluate, evaluate_scores};
pub use gbt::{GbtModel, GbtParams};
pub use logistic::{LogisticModel, LogisticParams};
pub use matrix::{FeatureKind, FeatureMatrix, GroupColumn};
pub use model::{Explanation, Model, TrainParams, train};
pub use scorecard::Scorecard;

/// Everything that can go wrong, each saying what and where.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A problem in an input file, with its line (1-based, header = line 1) and column.
    #[error("{file}{}{}: {message}", line.map(|l| format!(", line {l}")).unwrap_or_default(), column.as_ref().map(|c| format!(", column '{c}'")).unwrap_or_default())]
    Input {
        /// The file.
        file: String,
        /// Line number, when the problem is on one line.
        line: Option<u64>,
        /// Column or field name, when the problem is in one.
        column: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// A file could not be read or written.
    #[error("{file}: {source}")]
    Io {
        /// The file.
        file: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A model and a matrix do not describe the same features.
    #[error("model file from another feature set: {0}")]
    FeatureMismatch(String),
    /// An argument or a matrix the method cannot use.
    #[error("{0}")]
    Invalid(String),
}

/// Shorthand for this crate's results.
pub type Result<T> = std::result::Result<T, Error>;

/// The logistic function.
pub fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// log(p / (1 − p)), with p clamped to [1e-15, 1 − 1e-15] so certain predictions stay finite.
pub fn logit(p: f64) -> f64 {
    let p = p.clamp(1e-15, 1.0 - 1e-15);
    (p / (1.0 - p)).ln()
}

/// Split `0..n` into `parts` contiguous ranges of near-equal length (fixed, so results
/// do not depend on thread timing).
pub(crate) fn chunks(n: usize, parts: usize) -> Vec<std::ops::Range<usize>> {
    let parts = parts.max(1);
    (0..parts)
        .map(|i| (n * i / parts)..(n * (i + 1) / parts))
        .collect()
}

/// Serde helpers that make model numbers survive a JSON round trip bit for bit.
///
/// serde_json (without its `float_roundtrip` feature, which the workspace does not
/// enable) parses some 17-digit numbers one ulp off, so a reloaded model could score a
/// person differently from the model that was evaluated. A value whose shortest decimal
/// form serde_json reads back exactly is written as a JSON number (almost all); any
/// other is written as a string holding that decimal form, which `str::parse` reads
/// exactly. Readers accept either.
pub(crate) mod exact {
    use serde::{Deserialize, Deserializer, Serializer};

    fn exact_via_json(v: f64) -> bool {
        let text = serde_json::to_string(&v).unwrap_or_default();
        serde_json::from_str::<f64>(&text).is_ok_and(|back| back.to_bits() == v.to_bits())
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumOrText {
        Num(f64),
        Text(String),
    }

    fn decode<E: serde::de::Error>(v: NumOrText) -> Result<f64, E> {
        match v {
            NumOrText::Num(x) => Ok(x),
            NumOrText::Text(s) => s
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| E::custom(format!("'{s}' is not a finite number"))),
        }
    }

    /// Write an f64 exactly.
    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if !v.is_finite() {
            return Err(serde::ser::Error::custom(format!("{v} cannot be stored")));
        }
        if exact_via_json(*v) {
            s.serialize_f64(*v)
        } else {
            s.serialize_str(&format!("{v:?}"))
        }
    }

    /// Read an f64 written by [`serialize`] (or any JSON number).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        decode(NumOrText::deserialize(d)?)
    }

    /// The same for f32.
    pub mod f32 {
        use serde::{Deserializer, Serializer};

        /// Write an f32 exactly.
        pub fn serialize<S: Serializer>(v: &f32, s: S) -> Result<S::Ok, S::Error> {
            if !v.is_finite() {
                return Err(serde::ser::Error::custom(format!("{v} cannot be stored")));
            }
            let text = serde_json::to_string(v).unwrap_or_default();
            let exact =
                serde_json::from_str::<f32>(&text).is_ok_and(|b| b.to_bits() == v.to_bits());
            if exact {
                s.serialize_f32(*v)
            } else {
                s.serialize_str(&format!("{v:?}"))
            }
        }

        /// Read an f32 written by [`serialize`].
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f32, D::Error> {
            use serde::Deserialize;
            match super::NumOrText::deserialize(d)? {
                super::NumOrText::Num(x) => Ok(x as f32),
                super::NumOrText::Text(s) => s
                    .parse::<f32>()
                    .ok()
                    .filter(|x| x.is_finite())
                    .ok_or_else(|| {
                        serde::de::Error::custom(format!("'{s}' is not a finite number"))
                    }),
            }
        }
    }

    /// The same for a vector of f64.
    pub mod vec {
        use serde::{Deserialize, Deserializer, Serialize, Serializer};

        #[derive(Serialize, Deserialize)]
        struct Wrap(#[serde(with = "super")] f64);

        /// Write every value exactly.
        pub fn serialize<S: Serializer>(v: &[f64], s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(v.iter().map(|x| Wrap(*x)))
        }

        /// Read values written by [`serialize`].
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
            Ok(Vec::<Wrap>::deserialize(d)?
                .into_iter()
                .map(|w| w.0)
                .collect())
        }
    }
}
