//! `ringlb import`: haproxy.cfg to ringlb TOML. The .cfg is parsed and fully
//! validated first (an invalid file writes nothing); the TOML is the same raw
//! schema serialized section by section in file order, so it loads into an
//! identical `Config`. Comments survive: those on a line of their own and those
//! after a directive are written above the section they were in, in order, the
//! latter with the directive they annotated. `defaults` sections are folded
//! into each proxy (their comments are kept where the section was).

use std::fmt::Write as _;
use std::path::PathBuf;

use super::error::Locator;
use super::haproxy::{self, lexer::Env};
use super::{resolve, ConfigError, ConfigErrorKind};

/// Translates haproxy.cfg sources (in order) into TOML text; also returns the
/// notices met while parsing.
pub fn haproxy_to_toml(
    sources: &[(PathBuf, String)],
    lenient: bool,
    env: Env,
) -> Result<(String, Vec<String>), ConfigError> {
    let loaded = super::parse_haproxy(sources, lenient, env)?;
    let (text, parts) = super::concat(sources);
    let loc = Locator::multi(&parts, &text);
    let starts: Vec<usize> = parts.iter().map(|p| p.0).collect();
    let parsed = haproxy::parse(&text, &starts, &haproxy::Options { lenient, env })
        .map_err(|e| loc.error(e.at, "", e.msg))?;
    // Validated by parse_haproxy already; this keeps the check explicit.
    let source = parts.first().map(|p| p.1.clone()).unwrap_or_default();
    resolve::resolve(parsed.raw.clone(), &loc, &source)?;

    let ser_err = |e: String| ConfigError {
        file: source.clone(),
        line: 0,
        col: 0,
        kind: ConfigErrorKind::Syntax(format!("cannot write TOML: {e}")),
    };
    let mut out = String::new();
    let names: Vec<String> = parts.iter().map(|p| p.1.display().to_string()).collect();
    let _ = writeln!(
        out,
        "# Imported from {} by `ringlb import`.",
        names.join(", ")
    );
    let _ = writeln!(
        out,
        "# `defaults` sections are folded into each frontend/backend/listen below.\n"
    );
    let comments = &parsed.comments;
    let mut ci = 0;
    let mut emit_comments_before = |out: &mut String, limit: usize| {
        while ci < comments.len() && comments[ci].line_start < limit {
            let c = &comments[ci];
            match &c.after {
                None => {
                    let _ = writeln!(out, "# {}", c.text);
                }
                Some(d) => {
                    let _ = writeln!(out, "# {}    (on `{d}`)", c.text);
                }
            }
            ci += 1;
        }
    };
    let secs = &parsed.sections;
    let mut counters = [0usize; 3];
    let mut global_done = false;
    for (k, (start, kind, _)) in secs.iter().enumerate() {
        let end = secs.get(k + 1).map(|s| s.0).unwrap_or(usize::MAX);
        // Comments before the section header belong above it.
        emit_comments_before(&mut out, *start);
        let mut table = toml::Table::new();
        match kind.as_str() {
            "global" if !global_done => {
                global_done = true;
                if let Some(g) = &parsed.raw.global {
                    let v =
                        toml::Value::try_from(g.get_ref()).map_err(|e| ser_err(e.to_string()))?;
                    table.insert("global".into(), v);
                }
            }
            "frontend" | "backend" | "listen" => {
                let (i, list) = match kind.as_str() {
                    "frontend" => (0, &parsed.raw.frontend),
                    "backend" => (1, &parsed.raw.backend),
                    _ => (2, &parsed.raw.listen),
                };
                let p = &list[counters[i]];
                counters[i] += 1;
                let v = toml::Value::try_from(p.get_ref()).map_err(|e| ser_err(e.to_string()))?;
                table.insert(kind.clone(), toml::Value::Array(vec![v]));
            }
            other => {
                let _ = writeln!(
                    out,
                    "# ({other} section: folded into the proxies that use it)"
                );
            }
        }
        emit_comments_before(&mut out, end);
        if !table.is_empty() {
            let s = toml::to_string(&table).map_err(|e| ser_err(e.to_string()))?;
            // A `[global]` holding only sub-tables would be written as just
            // `[global.tune]`, which the spanned schema cannot read: name it.
            if !s.starts_with('[') || s.starts_with("[global.") {
                out.push_str("[global]\n");
            }
            out.push_str(&s);
        }
        out.push('\n');
    }
    emit_comments_before(&mut out, usize::MAX);
    Ok((out, loaded.notices))
}
