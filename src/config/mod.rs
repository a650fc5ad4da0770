//! Configuration: the TOML file and the command-line flags are both [`Options`];
//! [`Settings::resolve`] merges them once (flags win per key) and validates the
//! result into one [`Settings`].

mod address;
mod options;
mod settings;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

pub use address::{parse_dns_listen, parse_domain, parse_listen, parse_upstream, parse_zone};
pub use options::{Options, flag_of};
pub use settings::*;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error(transparent)]
    Corefile(#[from] crate::corefile::CorefileError),
    #[error("{origin}: key `{key}`: {message}")]
    Invalid {
        origin: String,
        key: &'static str,
        message: String,
    },
}

impl Options {
    /// The keys of the config file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(path, &text)
    }

    /// The keys of a config file's `text`; `path` is for the messages. Unknown keys are refused.
    pub fn from_toml(path: &Path, text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })
    }
}
