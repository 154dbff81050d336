//! The one error type of area loading: every variant names the file and, for content
//! problems, the key.

/// Why an area could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum AreaError {
    /// `--area NAME` names no bundled area.
    #[error("unknown area {name:?}; bundled areas: {}; use --area-file PATH for another file", known.join(", "))]
    UnknownArea {
        /// the name asked for
        name: String,
        /// bundled names
        known: Vec<String>,
    },
    /// The file could not be read.
    #[error("{file}: cannot read: {message}")]
    Io {
        /// file
        file: String,
        /// OS message
        message: String,
    },
    /// The file is not valid TOML or does not match the area format.
    #[error("{file}: {message}")]
    Parse {
        /// file
        file: String,
        /// parser message (with line and column)
        message: String,
    },
    /// The file parses but is inconsistent.
    #[error("{file}: {key}: {problem}")]
    Invalid {
        /// file
        file: String,
        /// the key at fault, e.g. `practices[3].hub`
        key: String,
        /// what is wrong
        problem: String,
    },
}
