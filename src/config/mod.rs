//! Configuration: TOML or haproxy.cfg in, a validated [`model::Config`] out. Every
//! error names `FILE:LINE:COL`, the section and the key; unknown keys are errors.
//! Both formats produce the same raw schema, so every semantic check runs once.
//! Nothing here opens a socket, so a config that fails here changes nothing.

mod backend;
mod error;
pub mod errorfile;
mod frontend;
mod global;
pub mod haproxy;
pub mod import;
mod lint;
pub mod model;
mod resolve;
mod rules;
mod schema;
pub mod server_state;
mod values;

use std::path::{Path, PathBuf};

pub use error::{ConfigError, ConfigErrorKind};
pub use lint::warnings;

use error::Locator;

/// Largest configuration file read (a guard against reading a device or a log).
pub const MAX_FILE_SIZE: u64 = 16 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// By extension: `.cfg` (or a directory) is haproxy.cfg, anything else TOML.
    #[default]
    Auto,
    Toml,
    Haproxy,
}

#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    pub format: Format,
    /// haproxy.cfg: unsupported keywords are warnings instead of errors.
    pub lenient: bool,
}

/// A loaded configuration and the notices/warnings met on the way, each already
/// formatted as `FILE:LINE:COL: notice: ...`.
pub struct Loaded {
    pub config: model::Config,
    pub notices: Vec<String>,
}

fn io_error(path: &Path, e: std::io::Error) -> ConfigError {
    ConfigError {
        file: path.to_path_buf(),
        line: 0,
        col: 0,
        kind: ConfigErrorKind::Io(e),
    }
}

/// Reads one file, refusing anything over [`MAX_FILE_SIZE`] or not UTF-8.
fn read_capped(path: &Path) -> Result<String, ConfigError> {
    let buf = read_bytes_capped(path)?;
    String::from_utf8(buf).map_err(|e| {
        // Point at the first bad byte: the text before it is valid UTF-8.
        let at = e.utf8_error().valid_up_to();
        let before = String::from_utf8_lossy(&e.as_bytes()[..at]);
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        ConfigError {
            file: path.to_path_buf(),
            line,
            col,
            kind: ConfigErrorKind::Syntax(format!(
                "invalid UTF-8 (byte 0x{:02x}); a TOML configuration must be UTF-8",
                e.as_bytes()[at]
            )),
        }
    })
}

/// Reads an haproxy.cfg: like HAProxy, bytes that are not UTF-8 (a comment
/// written in GBK or Latin-1) are accepted; they become U+FFFD, which the
/// parser refuses anywhere but in a comment.
pub fn read_haproxy_file(path: &Path) -> Result<String, ConfigError> {
    let buf = read_bytes_capped(path)?;
    Ok(match String::from_utf8(buf) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

fn read_bytes_capped(path: &Path) -> Result<Vec<u8>, ConfigError> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| io_error(path, e))?;
    let mut buf = Vec::new();
    f.take(MAX_FILE_SIZE + 1)
        .read_to_end(&mut buf)
        .map_err(|e| io_error(path, e))?;
    if buf.len() as u64 > MAX_FILE_SIZE {
        return Err(ConfigError {
            file: path.to_path_buf(),
            line: 0,
            col: 0,
            kind: ConfigErrorKind::Syntax(format!(
                "file is larger than {} MiB; refusing to read it as a configuration",
                MAX_FILE_SIZE >> 20
            )),
        });
    }
    Ok(buf)
}

/// Expands `-f` arguments as HAProxy does: a directory stands for its `*.cfg`
/// files in lexical order.
pub fn expand_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ConfigError> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| io_error(p, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "cfg") && f.is_file())
                .collect();
            files.sort();
            out.extend(files);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// Reads and resolves a configuration file (TOML, or haproxy.cfg by extension).
pub fn load(path: &Path) -> Result<model::Config, ConfigError> {
    load_with(&[path.to_path_buf()], &LoadOptions::default()).map(|l| l.config)
}

/// Reads one TOML file, or one or more haproxy.cfg files and directories.
pub fn load_with(paths: &[PathBuf], opts: &LoadOptions) -> Result<Loaded, ConfigError> {
    let first = paths.first().cloned().unwrap_or_default();
    let haproxy = match opts.format {
        Format::Haproxy => true,
        Format::Toml => false,
        Format::Auto => paths
            .iter()
            .any(|p| p.is_dir() || p.extension().is_some_and(|x| x == "cfg")),
    };
    if !haproxy && paths.len() > 1 {
        return Err(ConfigError {
            file: paths[1].clone(),
            line: 0,
            col: 0,
            kind: ConfigErrorKind::Syntax(
                "several configuration files are read only as haproxy.cfg (*.cfg, or --format haproxy)"
                    .into(),
            ),
        });
    }
    if !haproxy {
        let text = read_capped(&first)?;
        return parse_str(&text, &first).map(|config| Loaded {
            config,
            notices: Vec::new(),
        });
    }
    let files = expand_paths(paths)?;
    if files.is_empty() {
        return Err(io_error(
            &first,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no *.cfg file in directory"),
        ));
    }
    let mut sources = Vec::new();
    for f in &files {
        sources.push((f.clone(), read_haproxy_file(f)?));
    }
    parse_haproxy(&sources, opts.lenient, &|k| std::env::var(k).ok())
}

/// Resolves haproxy.cfg text (one or more files, in order); `env` answers
/// environment variables.
pub fn parse_haproxy(
    sources: &[(PathBuf, String)],
    lenient: bool,
    env: haproxy::lexer::Env,
) -> Result<Loaded, ConfigError> {
    let (text, parts) = concat(sources);
    let loc = Locator::multi(&parts, &text);
    let starts: Vec<usize> = parts.iter().map(|p| p.0).collect();
    let parsed = haproxy::parse(&text, &starts, &haproxy::Options { lenient, env })
        .map_err(|e| loc.error(e.at, "", e.msg))?;
    let source = parts.first().map(|p| p.1.clone()).unwrap_or_default();
    let config = resolve::resolve(parsed.raw, &loc, &source)?;
    let notices = parsed
        .notices
        .iter()
        .map(|(at, m)| {
            let (line, col) = loc.position(*at);
            format!("{}:{line}:{col}: {m}", loc.file_at(*at).0.display())
        })
        .collect();
    Ok(Loaded { config, notices })
}

/// Joins files into one text (each ending in a newline) and where each starts.
pub(crate) fn concat(sources: &[(PathBuf, String)]) -> (String, Vec<(usize, PathBuf)>) {
    let mut text = String::new();
    let mut parts = Vec::new();
    for (p, t) in sources {
        parts.push((text.len(), p.clone()));
        text.push_str(t);
        if !t.ends_with('\n') {
            text.push('\n');
        }
    }
    (text, parts)
}

/// Resolves configuration text; `source` names it in errors.
pub fn parse_str(text: &str, source: &Path) -> Result<model::Config, ConfigError> {
    let loc = Locator::new(source, text);
    let raw: schema::RawConfig = toml::from_str(text).map_err(|e| loc.syntax(&e))?;
    resolve::resolve(raw, &loc, source)
}

#[cfg(test)]
mod tests;
