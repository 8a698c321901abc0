//! Configuration: TOML in, a validated [`model::Config`] out. Every error names
//! `FILE:LINE:COL`, the section and the key; unknown keys are errors. Nothing here
//! opens a socket, so a config that fails here changes nothing.

mod backend;
mod error;
mod lint;
pub mod model;
mod resolve;
mod schema;
mod values;

use std::path::Path;

pub use error::{ConfigError, ConfigErrorKind};
pub use lint::warnings;

use error::Locator;

/// Reads and resolves a TOML configuration file.
pub fn load(path: &Path) -> Result<model::Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.to_path_buf(),
        line: 0,
        col: 0,
        kind: ConfigErrorKind::Io(e),
    })?;
    parse_str(&text, path)
}

/// Resolves configuration text; `source` names it in errors.
pub fn parse_str(text: &str, source: &Path) -> Result<model::Config, ConfigError> {
    let loc = Locator::new(source, text);
    let raw: schema::RawConfig = toml::from_str(text).map_err(|e| loc.syntax(&e))?;
    resolve::resolve(raw, &loc, source)
}

#[cfg(test)]
mod tests;
