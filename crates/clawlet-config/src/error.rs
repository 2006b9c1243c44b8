use std::fmt;
use std::path::PathBuf;

/// One problem with the configuration. Every message names where the value came from (the file, an
/// environment variable or a CLI flag), the key path, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `--config` or `CLAWLET_CONFIG` names a file that does not exist.
    #[error("{}: config file not found; fix the path given with --config or CLAWLET_CONFIG", path.display())]
    NotFound {
        /// The path that was asked for.
        path: PathBuf,
    },
    /// The file exists but could not be read.
    #[error("{}: cannot read the config file: {reason}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        reason: String,
    },
    /// The file is not valid YAML.
    #[error("{}: not valid YAML: {reason}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message, with the line and column.
        reason: String,
    },
    /// `${VAR}` names a variable that is not set and has no `:-default`.
    #[error("{origin}: {key}: environment variable {var} is not set")]
    UnsetVariable {
        /// The file.
        origin: String,
        /// The key path whose value holds the reference.
        key: String,
        /// The variable.
        var: String,
    },
    /// A `${` that does not form a valid reference.
    #[error("{origin}: {key}: {reason}")]
    Interpolation {
        /// The file.
        origin: String,
        /// The key path.
        key: String,
        /// What is wrong and how to write it.
        reason: String,
    },
    /// A key the schema does not have; usually a typo.
    #[error("{origin}: {key}: unknown key{}", suggestion.as_ref().map(|s| format!("; did you mean `{s}`?")).unwrap_or_else(|| "; remove it or check the spelling".to_owned()))]
    UnknownKey {
        /// Where the key was written.
        origin: String,
        /// The full key path.
        key: String,
        /// The nearest known key at that level, when one is close.
        suggestion: Option<String>,
    },
    /// A value that is present but wrong: out of range, malformed, or inconsistent with another.
    #[error("{origin}: {key}: {message}")]
    Invalid {
        /// Where the value came from.
        origin: String,
        /// The key path.
        key: String,
        /// What is wrong and the fix.
        message: String,
    },
}

impl ConfigError {
    /// The key path the problem is about, when it is about one key.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::NotFound { .. } | Self::Read { .. } | Self::Syntax { .. } => None,
            Self::UnsetVariable { key, .. }
            | Self::Interpolation { key, .. }
            | Self::UnknownKey { key, .. }
            | Self::Invalid { key, .. } => Some(key),
        }
    }
}

/// Every problem found in one load; never empty when returned as an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// The individual problems, in the order they were found.
    pub fn errors(&self) -> &[ConfigError] {
        &self.0
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl From<ConfigError> for ConfigErrors {
    fn from(e: ConfigError) -> Self {
        Self(vec![e])
    }
}
