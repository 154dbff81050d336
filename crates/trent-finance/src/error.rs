//! The one error type of the financial model.
//!
//! A finance director who mistypes a plan file must be told *where* (file), *what* (the
//! key, written as a path such as `schemes[primary_community].falls_on.nuh`) and *which
//! value* is wrong, so every content error carries all three. A plan is validated whole
//! before anything is computed: no figure is ever produced from a half-valid plan.

/// Why a plan, scenario or alliance file could not be used, or why an input to one of the
/// pure functions (beds, alliance) was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FinanceError {
    /// The file could not be read.
    #[error("{file}: cannot read: {message}")]
    Io {
        /// the file
        file: String,
        /// the operating system's message
        message: String,
    },
    /// The file is not valid TOML or does not match the plan format (unknown key, wrong
    /// type, missing key). The parser's message names the key and, for a plan file read
    /// on its own, the line and column.
    #[error("{file}: {message}")]
    Parse {
        /// the file (for a scenario, `plan.toml + scenario.toml`)
        file: String,
        /// the parser's message
        message: String,
    },
    /// The file parses but a value is not acceptable.
    #[error("{file}: {key} = {value}: {problem}")]
    Invalid {
        /// the file, or `<input>` for values passed to a function
        file: String,
        /// the key at fault, e.g. `schemes[estates].low`
        key: String,
        /// the offending value as written
        value: String,
        /// what is wrong and what would be right
        problem: String,
    },
}

impl FinanceError {
    /// An [`FinanceError::Invalid`] with the value formatted by `Debug`.
    pub(crate) fn invalid(
        file: &str,
        key: impl Into<String>,
        value: impl std::fmt::Debug,
        problem: impl Into<String>,
    ) -> FinanceError {
        FinanceError::Invalid {
            file: file.to_string(),
            key: key.into(),
            value: format!("{value:?}"),
            problem: problem.into(),
        }
    }
}
