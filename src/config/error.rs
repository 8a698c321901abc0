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

/// Maps byte offsets of the source text to 1-based line and column. The text
/// may be several files concatenated (haproxy.cfg `-f a -f b`): `parts` holds
/// where each begins, and positions are counted within the file they fall in.
pub struct Locator<'a> {
    pub file: &'a Path,
    text: &'a str,
    parts: Vec<(usize, &'a Path)>,
}

impl<'a> Locator<'a> {
    pub fn new(file: &'a Path, text: &'a str) -> Locator<'a> {
        Locator {
            file,
            text,
            parts: vec![(0, file)],
        }
    }

    /// Several files concatenated in `text`, each starting at its offset.
    pub fn multi(parts: &'a [(usize, std::path::PathBuf)], text: &'a str) -> Locator<'a> {
        Locator {
            file: parts
                .first()
                .map(|p| p.1.as_path())
                .unwrap_or(Path::new("")),
            text,
            parts: parts.iter().map(|(o, p)| (*o, p.as_path())).collect(),
        }
    }

    /// The file an offset falls in and that file's first byte.
    pub fn file_at(&self, offset: usize) -> (&'a Path, usize) {
        let i = self.parts.partition_point(|p| p.0 <= offset).max(1) - 1;
        self.parts
            .get(i)
            .map(|p| (p.1, p.0))
            .unwrap_or((self.file, 0))
    }

    pub fn position(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let (_, start) = self.file_at(offset);
        let before = &self.text[start.min(offset)..offset];
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
            file: self.file_at(span.start).0.to_path_buf(),
            line,
            col,
            kind: ConfigErrorKind::Invalid {
                context: context.to_string(),
                message: message.into(),
            },
        }
    }

    /// The source offset of byte `at` of `value`, a string read from `span`:
    /// inside a TOML string literal (after its opening quotes), or, for
    /// haproxy.cfg words re-joined into `value`, in the matching word.
    pub fn string_offset(&self, span: Range<usize>, value: &str, at: usize) -> usize {
        let raw = self.text.get(span.clone()).unwrap_or("");
        if raw == value {
            return span.start + at.min(raw.len());
        }
        let tokens = |s: &str| crate::http::acl::tokenize(s).unwrap_or_default();
        let (a, b) = (tokens(raw), tokens(value));
        if a.len() == 1 && (raw.starts_with('"') || raw.starts_with('\'')) {
            let q = if raw.starts_with("\"\"\"") || raw.starts_with("'''") {
                3
            } else {
                1
            };
            let mut start = span.start + q;
            if q == 3 {
                let rest = &self.text[start..];
                start += if rest.starts_with("\r\n") {
                    2
                } else {
                    rest.starts_with('\n') as usize
                };
            }
            return (start + at).min(span.end.saturating_sub(q).max(start));
        }
        if a.len() == b.len() {
            if let Some(i) = b.iter().rposition(|t| t.at <= at) {
                return span.start + a[i].at + (at - b[i].at).min(a[i].text.len());
            }
        }
        span.start
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
