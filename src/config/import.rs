//! `ringlb import`: haproxy.cfg to ringlb TOML. The .cfg is parsed and fully
//! validated first (an invalid file writes nothing); the TOML is the same raw
//! schema the .cfg produced, written section by section in file order, so it
//! loads into an identical `Config`. Comments stay where they were: a comment
//! on a line of its own is written at the same place among the keys, a comment
//! after a directive is written after the key that directive set (servers,
//! `use_backend` rules and log targets become multi-line arrays, one element per
//! line, so each keeps its own comment). Tables are written as dotted keys
//! (`timeout.connect = "5s"`) for the same reason. A single `defaults` section
//! that every proxy uses is written as `[defaults]` (after checking that this
//! resolves to the same `Config`); otherwise (named or several `defaults`)
//! they are folded into each proxy, as the parser does, their comments kept
//! where they were.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::PathBuf;

use super::error::Locator;
use super::haproxy::{self, lexer::Env, Comment};
use super::{ConfigError, ConfigErrorKind};

/// Translates haproxy.cfg sources (in order) into TOML text; also returns the
/// notices met while parsing.
pub fn haproxy_to_toml(
    sources: &[(PathBuf, String)],
    lenient: bool,
    env: Env,
) -> Result<(String, Vec<String>), ConfigError> {
    // Validates everything (and collects the notices) first.
    let loaded = super::parse_haproxy(sources, lenient, env)?;
    let (text, parts) = super::concat(sources);
    let loc = Locator::multi(&parts, &text);
    let starts: Vec<usize> = parts.iter().map(|p| p.0).collect();
    let parsed = haproxy::parse(&text, &starts, &haproxy::Options { lenient, env })
        .map_err(|e| loc.error(e.at, "", e.msg))?;
    let source = parts.first().map(|p| p.1.clone()).unwrap_or_default();
    let ser_err = |e: String| ConfigError {
        file: source.clone(),
        line: 0,
        col: 0,
        kind: ConfigErrorKind::Syntax(format!("cannot write TOML: {e}")),
    };
    // One `defaults` section used by every proxy stays a `[defaults]` table, if
    // (checked here) that resolves to exactly the same Config; else folded.
    let unfolded = parsed.unfolded.as_ref().filter(|u| {
        super::resolve::resolve((*u).clone(), &loc, &source).is_ok_and(|mut c| {
            c.source = loaded.config.source.clone();
            c == loaded.config
        })
    });
    let raw = unfolded.unwrap_or(&parsed.raw);
    let names: Vec<String> = parts.iter().map(|p| p.1.display().to_string()).collect();
    let mut w = Writer {
        out: String::new(),
        comments: &parsed.comments,
        consumed: HashSet::new(),
    };
    let _ = writeln!(
        w.out,
        "# Imported from {} by `ringlb import`.",
        clean(&names.join(", "))
    );
    if unfolded.is_none() && secs_have_defaults(&parsed.sections) {
        let _ = writeln!(
            w.out,
            "# `defaults` sections are folded into each frontend/backend/listen below."
        );
    }
    w.out.push('\n');
    let secs = &parsed.sections;
    let mut counters = [0usize; 3];
    let mut global_done = false;
    // Comments before the first section.
    let first = secs.first().map(|s| s.0).unwrap_or(usize::MAX);
    w.loose_comments(0, first);
    for (k, (start, kind, _)) in secs.iter().enumerate() {
        let end = secs.get(k + 1).map(|s| s.0).unwrap_or(usize::MAX);
        let value = match kind.as_str() {
            "global" if !global_done => {
                global_done = true;
                match &parsed.raw.global {
                    Some(g) => Some((
                        "[global]",
                        toml::Value::try_from(g.get_ref()).map_err(|e| ser_err(e.to_string()))?,
                    )),
                    None => None,
                }
            }
            "defaults" => match raw.defaults.as_ref() {
                Some(d) => Some((
                    "[defaults]",
                    toml::Value::try_from(d.get_ref()).map_err(|e| ser_err(e.to_string()))?,
                )),
                None => None,
            },
            "frontend" | "backend" | "listen" => {
                let (i, list, header) = match kind.as_str() {
                    "frontend" => (0, &raw.frontend, "[[frontend]]"),
                    "backend" => (1, &raw.backend, "[[backend]]"),
                    _ => (2, &raw.listen, "[[listen]]"),
                };
                let p = &list[counters[i]];
                counters[i] += 1;
                Some((
                    header,
                    toml::Value::try_from(p.get_ref()).map_err(|e| ser_err(e.to_string()))?,
                ))
            }
            _ => None,
        };
        match value {
            Some((header, toml::Value::Table(t))) => {
                let keys: Vec<(usize, &'static str, Option<String>)> = parsed
                    .keys
                    .iter()
                    .filter(|(l, _, _)| *l >= *start && *l < end)
                    .cloned()
                    .collect();
                w.section(header, &t, *start, end, &keys);
            }
            _ => {
                let what = if kind == "defaults" {
                    "folded into the proxies that use it"
                } else {
                    "merged into the [global] above"
                };
                let _ = writeln!(w.out, "# ({kind} section: {what})");
                w.loose_comments(*start, end);
            }
        }
        w.out.push('\n');
    }
    w.loose_comments(first, usize::MAX);
    if let Some(lists) = &parsed.raw.userlist {
        w.out.push_str("\n[userlist]\n");
        for (name, lines) in lists {
            let _ = writeln!(w.out, "{} = [", key(name));
            for l in lines {
                let _ = writeln!(
                    w.out,
                    "  {},",
                    inline(&toml::Value::String(l.get_ref().clone()))
                );
            }
            w.out.push_str("]\n");
        }
    }
    Ok((w.out, loaded.notices))
}

fn secs_have_defaults(secs: &[(usize, String, usize)]) -> bool {
    secs.iter().any(|s| s.1 == "defaults")
}

struct Writer<'a> {
    out: String,
    comments: &'a [Comment],
    /// Indexes of comments already written.
    consumed: HashSet<usize>,
}

/// A key as TOML writes it: bare when it can be, else quoted.
fn key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        k.to_string()
    } else {
        toml::Value::String(k.to_string()).to_string()
    }
}

/// Comment text TOML can carry: control characters (a TOML comment may hold
/// none but tab) are written escaped, `\r` style.
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() && c != '\t' {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn inline(v: &toml::Value) -> String {
    v.to_string()
}

impl Writer<'_> {
    fn comment_line(&mut self, i: usize, indent: &str) {
        if !self.consumed.insert(i) {
            return;
        }
        let c = &self.comments[i];
        match &c.after {
            None => {
                let _ = writeln!(self.out, "{indent}# {}", clean(&c.text));
            }
            Some(d) => {
                let _ = writeln!(
                    self.out,
                    "{indent}# {}    (on `{}`)",
                    clean(&c.text),
                    clean(d)
                );
            }
        }
    }

    /// Every not yet written comment whose line is in `from..to`.
    fn loose_comments(&mut self, from: usize, to: usize) {
        for i in 0..self.comments.len() {
            let l = self.comments[i].line_start;
            if l >= from && l < to {
                self.comment_line(i, "");
            }
        }
    }

    /// The index of the comment after the directive on the line at `line`.
    fn trailing(&self, line: usize) -> Option<usize> {
        self.comments
            .iter()
            .position(|c| c.line_start == line && c.after.is_some())
    }

    fn with_trailing(&mut self, text: String, line: Option<usize>) {
        self.out.push_str(&text);
        if let Some(i) = line.and_then(|l| self.trailing(l)) {
            if self.consumed.insert(i) {
                let _ = write!(self.out, "  # {}", clean(&self.comments[i].text));
            }
        }
        self.out.push('\n');
    }

    fn value(&mut self, k: &str, v: &toml::Value, line: Option<usize>) {
        match v {
            toml::Value::Table(t) if t.is_empty() => {
                self.with_trailing(format!("{} = {{}}", key(k)), line)
            }
            toml::Value::Table(t) => {
                let mut line = line;
                for (sk, sv) in t {
                    self.with_trailing(format!("{}.{} = {}", key(k), key(sk), inline(sv)), line);
                    line = None;
                }
            }
            _ => self.with_trailing(format!("{} = {}", key(k), inline(v)), line),
        }
    }

    /// One section: its header (with the header line's comment), keys set by no
    /// directive of its own (name, inherited defaults), then comments and keys
    /// in the order of the directives that set them.
    fn section(
        &mut self,
        header: &str,
        t: &toml::Table,
        start: usize,
        end: usize,
        keys: &[(usize, &'static str, Option<String>)],
    ) {
        self.with_trailing(header.to_string(), Some(start));
        let touched: HashSet<&str> = keys.iter().map(|k| k.1).collect();
        if let Some(n) = t.get("name") {
            self.value("name", n, None);
        }
        for (k, v) in t {
            if !touched.contains(k.as_str()) && k != "name" {
                self.value(k, v, None);
            }
        }
        // Tables whose every directive names its sub-key (`acl`, `timeout`) are
        // written one sub-key per directive, each with its comment.
        let by_sub: HashSet<&str> = touched
            .iter()
            .copied()
            .filter(|k| keys.iter().filter(|x| x.1 == *k).all(|x| x.2.is_some()))
            .filter(|k| t.get(*k).is_some_and(|v| v.is_table()))
            .collect();
        let mut done: HashSet<&str> = HashSet::new();
        let mut done_sub: HashSet<(&str, String)> = HashSet::new();
        let mut pos = start;
        for (i, (line, k, sub)) in keys.iter().enumerate() {
            let (line, k) = (*line, *k);
            self.loose_comments_own(pos, line);
            pos = line;
            let Some(v) = t.get(k) else {
                if let Some(c) = self.trailing(line) {
                    self.comment_line(c, "");
                }
                continue;
            };
            if let (true, Some(sub), toml::Value::Table(tt)) = (by_sub.contains(k), sub, v) {
                if done.insert(k) {
                    if tt.is_empty() {
                        // `stats enable`: the table exists, with nothing in it.
                        self.with_trailing(format!("{} = {{}}", key(k)), Some(line));
                    }
                    // Sub-keys no directive of this section set (inherited).
                    let own: HashSet<&str> = keys
                        .iter()
                        .filter(|x| x.1 == k)
                        .filter_map(|x| x.2.as_deref())
                        .collect();
                    for (sk, sv) in tt {
                        if !own.contains(sk.as_str()) {
                            self.with_trailing(
                                format!("{}.{} = {}", key(k), key(sk), inline(sv)),
                                None,
                            );
                        }
                    }
                }
                match tt.get(sub) {
                    Some(sv) if done_sub.insert((k, sub.clone())) => self.with_trailing(
                        format!("{}.{} = {}", key(k), key(sub), inline(sv)),
                        Some(line),
                    ),
                    _ => {
                        if let Some(c) = self.trailing(line) {
                            self.comment_line(c, "");
                        }
                    }
                }
                continue;
            }
            if !done.insert(k) {
                if let Some(c) = self.trailing(line) {
                    self.comment_line(c, "");
                }
                continue;
            }
            let lines: Vec<usize> = keys[i..].iter().filter(|x| x.1 == k).map(|x| x.0).collect();
            match v {
                toml::Value::Array(a)
                    if a.len() == lines.len() && a.iter().all(|e| e.is_table()) =>
                {
                    self.out.push_str(&format!("{} = [\n", key(k)));
                    for (j, e) in a.iter().enumerate() {
                        if j > 0 {
                            self.loose_comments_own_indented(lines[j - 1], lines[j]);
                        }
                        self.with_trailing(format!("  {},", inline(e)), Some(lines[j]));
                    }
                    self.out.push_str("]\n");
                }
                _ => self.value(k, v, Some(line)),
            }
        }
        self.loose_comments_own(pos, end);
        // Trailing comments of lines that set nothing (notices, no-ops).
        self.loose_comments(start, end);
    }

    fn loose_comments_own(&mut self, from: usize, to: usize) {
        for i in 0..self.comments.len() {
            let c = &self.comments[i];
            if c.after.is_none() && c.line_start >= from && c.line_start < to {
                self.comment_line(i, "");
            }
        }
    }

    fn loose_comments_own_indented(&mut self, from: usize, to: usize) {
        for i in 0..self.comments.len() {
            let c = &self.comments[i];
            if c.after.is_none() && c.line_start > from && c.line_start < to {
                self.comment_line(i, "  ");
            }
        }
    }
}
