//! `ConfigError`: every refusal names the file, the line and column of the
//! offending value, the section and the key. Displayed as
//! `FILE:LINE:COL: section "name": message`.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based; 0 when the error has no position (file unreadable).
    pub line: usize,
    pub col: usize,
    pub kind: ConfigErrorKind,
}

#[derive(Debug)]
pub enum ConfigErrorKind {
    /// The file could not be read.
    Io(std::io::Error),
    /// TOML syntax, a wrong type or an unknown key (serde's message).
    Syntax(String),
    /// A value that parses but means nothing valid; `context` names the section.
    Invalid { context: String, message: String },
}

impl ConfigError {
    pub fn message(&self) -> String {
        match &self.kind {
            ConfigErrorKind::Io(e) => format!("cannot read: {e}"),
            ConfigErrorKind::Syntax(m) => m.clone(),
            ConfigErrorKind::Invalid { context, message } if context.is_empty() => message.clone(),
            ConfigErrorKind::Invalid { context, message } => format!("{context}: {message}"),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message())
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                self.line,
                self.col,
                self.message()
            )
        }
    }
}

impl std::error::Error for ConfigError {}

/// Maps byte offsets of the source text to 1-based line and column.
pub struct Locator<'a> {
    pub file: &'a Path,
    text: &'a str,
}

impl<'a> Locator<'a> {
    pub fn new(file: &'a Path, text: &'a str) -> Locator<'a> {
        Locator { file, text }
    }

    pub fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
        let col = before[line_start..].chars().count() + 1;
        (line, col)
    }

    pub fn error(
        &self,
        span: Range<usize>,
        context: &str,
        message: impl Into<String>,
    ) -> ConfigError {
        let (line, col) = self.position(span.start);
        ConfigError {
            file: self.file.to_path_buf(),
            line,
            col,
            kind: ConfigErrorKind::Invalid {
                context: context.to_string(),
                message: message.into(),
            },
        }
    }

    pub fn syntax(&self, e: &toml::de::Error) -> ConfigError {
        let (line, col) = e.span().map(|s| self.position(s.start)).unwrap_or((1, 1));
        ConfigError {
            file: self.file.to_path_buf(),
            line,
            col,
            kind: ConfigErrorKind::Syntax(e.message().trim().to_string()),
        }
    }
}
