//! ACLs and conditions, HAProxy 2.6 syntax, compiled once at load into plain
//! data a shard evaluates without allocating.
//!
//! An [`AclSet`] holds a section's named ACLs (several definitions of one name
//! are OR'ed: one TOML string may hold several, one per line), the anonymous
//! `{ ... }` ACLs its conditions use, and HAProxy's predefined ACLs
//! (`METH_GET`, `HTTP_1.1`, `LOCALHOST`, `TRUE`...). A [`Cond`] is an `if` or
//! `unless` condition: OR (`||`, `or`) of AND-ed terms, each an ACL or its
//! negation (`!`). Every error is an [`Error`]: a byte offset in the string
//! compiled and a message, which config code turns into `FILE:LINE:COL`.

pub mod auth;
pub mod msg;
pub mod pattern;
pub mod payload;
pub mod sample;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;

pub use auth::Userlist;
pub use msg::Message;
pub use pattern::{Method, Patterns, Sample};
pub use sample::{Counters, Ctx, Expr, NoCounters, Scratch, Vars};

/// A compile error: byte offset in the compiled string, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub at: usize,
    pub msg: String,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.msg)
    }
}

/// One word of a rule or condition, unquoted, with its offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tok {
    pub text: String,
    pub at: usize,
    /// Whether any part was quoted (`"{"` is a pattern, not a brace).
    pub quoted: bool,
}

/// Splits a string into words as haproxy.cfg does: blanks separate, `"..."`
/// (with backslash escapes) and `'...'` quote, a backslash escapes the next
/// character.
pub fn tokenize(s: &str) -> Result<Vec<Tok>, Error> {
    let mut out = Vec::new();
    let mut it = s.char_indices().peekable();
    while let Some(&(i, c)) = it.peek() {
        if c.is_whitespace() {
            it.next();
            continue;
        }
        let mut text = String::new();
        let mut quoted = false;
        while let Some(&(j, c)) = it.peek() {
            if c.is_whitespace() {
                break;
            }
            it.next();
            match c {
                '"' => {
                    quoted = true;
                    loop {
                        match it.next() {
                            None => {
                                return Err(Error {
                                    at: j,
                                    msg: "unterminated double quote".into(),
                                })
                            }
                            Some((_, '"')) => break,
                            Some((_, '\\')) => match it.next() {
                                Some((_, e)) => unescape(e, &mut text),
                                None => {
                                    return Err(Error {
                                        at: j,
                                        msg: "unterminated double quote".into(),
                                    })
                                }
                            },
                            Some((_, e)) => text.push(e),
                        }
                    }
                }
                '\'' => {
                    quoted = true;
                    loop {
                        match it.next() {
                            None => {
                                return Err(Error {
                                    at: j,
                                    msg: "unterminated single quote".into(),
                                })
                            }
                            Some((_, '\'')) => break,
                            Some((_, e)) => text.push(e),
                        }
                    }
                }
                '\\' => match it.next() {
                    Some((_, e)) => {
                        quoted = true;
                        unescape(e, &mut text)
                    }
                    None => text.push('\\'),
                },
                c => text.push(c),
            }
        }
        out.push(Tok {
            text,
            at: i,
            quoted,
        });
    }
    Ok(out)
}

/// The character after a backslash, as haproxy.cfg reads it: blanks, `#`,
/// quotes, `$` and `\\` stand for themselves, `\\r \\n \\t` for control
/// characters; anything else keeps its backslash (`\\1` in a replacement).
fn unescape(e: char, text: &mut String) {
    match e {
        ' ' | '\t' | '#' | '"' | '\'' | '\\' | '$' => text.push(e),
        'r' => text.push('\r'),
        'n' => text.push('\n'),
        't' => text.push('\t'),
        e => {
            text.push('\\');
            text.push(e);
        }
    }
}

/// What compiling needs from the configuration: backend names (`nbsrv`,
/// `be_conn`, `use_backend`), userlists, the transaction variable names
/// (shared by every section, so ids agree), map files read so far, and
/// whether response fetches are allowed where this compiles.
#[derive(Debug, Clone, Default)]
pub struct Env {
    pub backends: Vec<String>,
    pub userlists: Vec<Arc<Userlist>>,
    pub vars: Vec<String>,
    pub maps: HashMap<String, Arc<sample::MapTable>>,
    pub response: bool,
    /// In `http-response` rules: request fetches are refused.
    pub request_gone: bool,
}

impl Env {
    /// Why `f` cannot be used where this compiles, if it cannot.
    pub fn unavailable(&self, f: &sample::Fetch) -> Option<&'static str> {
        if f.response_only() && !self.response {
            Some("reads the response, which is not available here")
        } else if f.request_only() && self.request_gone {
            Some("reads the request headers, which are not available in http-response rules")
        } else {
            None
        }
    }

    pub fn backend(&self, name: &str) -> Option<usize> {
        self.backends.iter().position(|b| b == name)
    }

    pub fn userlist(&self, name: &str) -> Option<Arc<Userlist>> {
        self.userlists.iter().find(|u| u.name == name).cloned()
    }

    /// The id of variable `txn.NAME` (also `sess.`, `req.`, `res.`: all live
    /// as long as the transaction here).
    pub fn var(&mut self, name: &str, at: usize) -> Result<usize, Error> {
        let Some((scope, n)) = name.split_once('.') else {
            return Err(Error {
                at,
                msg: format!("variable \"{name}\" needs a scope (txn.NAME)"),
            });
        };
        if !matches!(scope, "txn" | "sess" | "req" | "res" | "proc") || n.is_empty() {
            return Err(Error {
                at,
                msg: format!(
                    "variable \"{name}\": unknown scope \"{scope}\" (txn, sess, req, res, proc)"
                ),
            });
        }
        let key = format!("{scope}.{n}");
        Ok(match self.vars.iter().position(|v| *v == key) {
            Some(i) => i,
            None => {
                self.vars.push(key);
                self.vars.len() - 1
            }
        })
    }

    pub fn map(&mut self, path: &str) -> Result<Arc<sample::MapTable>, String> {
        if let Some(m) = self.maps.get(path) {
            return Ok(m.clone());
        }
        let m = Arc::new(sample::load_map(path)?);
        self.maps.insert(path.to_string(), m.clone());
        Ok(m)
    }
}

/// One ACL definition line: a fetch expression, how to match, the patterns.
#[derive(Debug, Clone)]
pub struct AclLine {
    pub expr: Expr,
    pub fold: bool,
    pub patterns: Patterns,
}

impl AclLine {
    pub fn matches(&self, ctx: &Ctx, scratch: &mut Scratch) -> bool {
        let (p, fold) = (&self.patterns, self.fold);
        if matches!(self.expr.fetch, sample::Fetch::Method) && self.expr.convs.is_empty() {
            // HAProxy matches a known method by its identity: `-i` does not
            // make `get` match GET (checked against haproxy); other methods
            // compare as text.
            return self.expr.each(ctx, scratch, &mut |s| {
                let known = matches!(
                    s,
                    Sample::Str(
                        b"GET"
                            | b"HEAD"
                            | b"POST"
                            | b"PUT"
                            | b"DELETE"
                            | b"OPTIONS"
                            | b"TRACE"
                            | b"CONNECT"
                    )
                );
                p.matches(s, fold && !known)
            });
        }
        self.expr.each(ctx, scratch, &mut |s| p.matches(s, fold))
    }

    /// Compiles `FETCH [FLAGS] [OPERATOR] [PATTERN]...` from words.
    pub fn compile(toks: &[Tok], env: &mut Env) -> Result<AclLine, Error> {
        let first = toks.first().ok_or(Error {
            at: 0,
            msg: "an ACL needs a fetch".into(),
        })?;
        let (base, method) = acl_keyword(&first.text);
        let expr = sample::parse_expr(&base, first.at, env)?;
        if let Some(why) = env.unavailable(&expr.fetch) {
            return Err(Error {
                at: first.at,
                msg: format!("fetch \"{}\" {why}", first.text),
            });
        }
        let mut method = method.unwrap_or_else(|| {
            if expr.convs.is_empty() {
                expr.fetch.default_method()
            } else {
                Method::Str
            }
        });
        let mut fold = false;
        let mut files: Vec<&Tok> = Vec::new();
        let mut i = 1;
        while i < toks.len() && toks[i].text.starts_with('-') && !toks[i].quoted {
            let t = &toks[i];
            match t.text.as_str() {
                "-i" => fold = true,
                "-n" | "-u" => {}
                "--" => {
                    i += 1;
                    break;
                }
                "-m" => {
                    let m = toks.get(i + 1).ok_or(Error {
                        at: t.at,
                        msg: "-m needs a match method".into(),
                    })?;
                    method = Method::from_name(&m.text).ok_or(Error {
                        at: m.at,
                        msg: format!(
                            "unknown match method \"{}\" (str, beg, end, sub, reg, dir, dom, found, bool, len, int, ip)",
                            m.text
                        ),
                    })?;
                    i += 1;
                }
                "-f" => {
                    let f = toks.get(i + 1).ok_or(Error {
                        at: t.at,
                        msg: "-f needs a file".into(),
                    })?;
                    files.push(f);
                    i += 1;
                }
                _ if t.text.parse::<i64>().is_ok() => break,
                _ => {
                    return Err(Error {
                        at: t.at,
                        msg: format!("unknown ACL flag \"{}\"", t.text),
                    })
                }
            }
            i += 1;
        }
        if method == Method::Bool && i < toks.len() {
            // HAProxy accepts `ssl_fc 1` and ignores the patterns: a boolean
            // matches when true (checked against haproxy).
            i = toks.len();
        }
        let mut patterns = Patterns::empty(method);
        let int_like = matches!(method, Method::Int | Method::Len);
        let mut op: Option<&str> = None;
        for t in &toks[i..] {
            if int_like
                && op.is_none()
                && matches!(t.text.as_str(), "eq" | "ge" | "gt" | "le" | "lt")
            {
                op = Some(t.text.as_str());
                continue;
            }
            patterns
                .add(&t.text, fold, op.take())
                .map_err(|msg| Error { at: t.at, msg })?;
        }
        if let Some(op) = op {
            let t = toks.last().map_or(0, |t| t.at);
            return Err(Error {
                at: t,
                msg: format!("operator \"{op}\" needs a value"),
            });
        }
        for f in files {
            let text = std::fs::read_to_string(&f.text).map_err(|e| Error {
                at: f.at,
                msg: format!("cannot read pattern file \"{}\": {e}", f.text),
            })?;
            for (n, line) in text.lines().enumerate() {
                let l = line.trim();
                if l.is_empty() || l.starts_with('#') {
                    continue;
                }
                patterns.add(l, fold, None).map_err(|m| Error {
                    at: f.at,
                    msg: format!("{}:{}: {m}", f.text, n + 1),
                })?;
            }
        }
        Ok(AclLine {
            expr,
            fold,
            patterns,
        })
    }
}

/// ACL keywords that are a fetch plus a match method (`path_beg`,
/// `hdr_dom(host)`, `url_param_reg(x)`...): the fetch expression and method.
fn acl_keyword(word: &str) -> (String, Option<Method>) {
    let cut = word.find(['(', ',']).unwrap_or(word.len());
    let (name, rest) = word.split_at(cut);
    const SUFFIXES: &[(&str, Method)] = &[
        ("_beg", Method::Beg),
        ("_end", Method::End),
        ("_sub", Method::Sub),
        ("_reg", Method::Reg),
        ("_dir", Method::Dir),
        ("_dom", Method::Dom),
        ("_len", Method::Len),
        ("_str", Method::Str),
        ("_found", Method::Found),
        ("_ip", Method::Ip),
        ("_val", Method::Int),
    ];
    const BASES: &[&str] = &[
        "path",
        "url",
        "base",
        "hdr",
        "req.hdr",
        "shdr",
        "res.hdr",
        "cook",
        "req.cook",
        "scook",
        "res.cook",
        "urlp",
        "url_param",
        "query",
        "method",
    ];
    for (suffix, m) in SUFFIXES {
        if let Some(base) = name.strip_suffix(suffix) {
            if BASES.contains(&base) {
                return (format!("{base}{rest}"), Some(*m));
            }
        }
    }
    (word.to_string(), None)
}

/// One named or anonymous ACL: its lines, OR'ed.
#[derive(Debug, Clone, Default)]
pub struct Acl {
    pub name: String,
    pub lines: Vec<AclLine>,
}

/// The ACLs of one section.
#[derive(Debug, Clone, Default)]
pub struct AclSet {
    acls: Vec<Acl>,
    names: HashMap<String, usize>,
}

const PREDEFINED: &[(&str, &str)] = &[
    ("FALSE", "always_false"),
    ("TRUE", "always_true"),
    ("HTTP", "always_true"),
    ("HTTP_1.0", "req.ver 1.0"),
    ("HTTP_1.1", "req.ver 1.1"),
    ("HTTP_CONTENT", "hdr_val(content-length) gt 0"),
    ("HTTP_URL_ABS", "url_reg ^[^/:]*://"),
    ("HTTP_URL_SLASH", "url_beg /"),
    ("HTTP_URL_STAR", "url *"),
    ("LOCALHOST", "src 127.0.0.1/8 ::1"),
    ("METH_CONNECT", "method CONNECT"),
    ("METH_DELETE", "method DELETE"),
    ("METH_GET", "method GET HEAD"),
    ("METH_HEAD", "method HEAD"),
    ("METH_OPTIONS", "method OPTIONS"),
    ("METH_POST", "method POST"),
    ("METH_PUT", "method PUT"),
    ("METH_TRACE", "method TRACE"),
    // No request body is buffered for rules, and rules run once the head is
    // complete.
    ("REQ_CONTENT", "always_false"),
    ("WAIT_END", "always_true"),
];

impl AclSet {
    pub fn new() -> AclSet {
        AclSet::default()
    }

    /// Adds a definition of `name` (OR'ed with earlier ones). `text` may hold
    /// several definitions, one per line; offsets in errors are into `text`.
    pub fn define(&mut self, name: &str, text: &str, env: &mut Env) -> Result<(), Error> {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
        {
            return Err(Error {
                at: 0,
                msg: format!("invalid ACL name \"{name}\" (letters, digits, '-', '_', '.', ':')"),
            });
        }
        let mut lines = Vec::new();
        let mut off = 0;
        for l in text.split('\n') {
            let toks = tokenize(l).map_err(|e| Error {
                at: off + e.at,
                msg: e.msg,
            })?;
            if !toks.is_empty() {
                lines.push(AclLine::compile(&toks, env).map_err(|e| Error {
                    at: off + e.at,
                    msg: e.msg,
                })?);
            }
            off += l.len() + 1;
        }
        if lines.is_empty() {
            return Err(Error {
                at: 0,
                msg: format!("acl \"{name}\" has no fetch"),
            });
        }
        match self.names.get(name) {
            Some(&i) => self.acls[i].lines.extend(lines),
            None => {
                self.names.insert(name.to_string(), self.acls.len());
                self.acls.push(Acl {
                    name: name.to_string(),
                    lines,
                });
            }
        }
        Ok(())
    }

    /// Index of ACL `name`: defined here, else predefined.
    fn lookup(&mut self, name: &str, env: &mut Env) -> Option<usize> {
        if let Some(&i) = self.names.get(name) {
            return Some(i);
        }
        let (_, text) = PREDEFINED.iter().find(|(n, _)| *n == name)?;
        let toks = tokenize(text).ok()?;
        let line = AclLine::compile(&toks, env).ok()?;
        self.names.insert(name.to_string(), self.acls.len());
        self.acls.push(Acl {
            name: name.to_string(),
            lines: vec![line],
        });
        Some(self.acls.len() - 1)
    }

    pub fn matches(&self, acl: usize, ctx: &Ctx, scratch: &mut Scratch) -> bool {
        self.acls
            .get(acl)
            .is_some_and(|a| a.lines.iter().any(|l| l.matches(ctx, scratch)))
    }

    pub fn len(&self) -> usize {
        self.acls.len()
    }

    pub fn is_empty(&self) -> bool {
        self.acls.is_empty()
    }

    /// Compiles a condition from words (after `if`/`unless`).
    pub fn cond(&mut self, toks: &[Tok], unless: bool, env: &mut Env) -> Result<Cond, Error> {
        let mut terms: Vec<Vec<Term>> = vec![Vec::new()];
        let mut neg = false;
        let mut i = 0;
        let end_at = toks.last().map_or(0, |t| t.at + t.text.len());
        while i < toks.len() {
            let t = &toks[i];
            let w = t.text.as_str();
            if !t.quoted && (w == "||" || w == "or") {
                if neg || terms.last().is_some_and(|a| a.is_empty()) {
                    return Err(Error {
                        at: t.at,
                        msg: format!("\"{w}\" without a condition before it"),
                    });
                }
                terms.push(Vec::new());
                i += 1;
                continue;
            }
            if !t.quoted && w == "!" {
                neg = !neg;
                i += 1;
                continue;
            }
            if !t.quoted && w == "!{" {
                neg = !neg;
            }
            if !t.quoted && (w == "{" || w == "!{") {
                let close = toks[i + 1..]
                    .iter()
                    .position(|x| !x.quoted && x.text == "}")
                    .ok_or(Error {
                        at: t.at,
                        msg: "missing '}' closing the anonymous ACL".into(),
                    })?;
                let inner = &toks[i + 1..i + 1 + close];
                if inner.is_empty() {
                    return Err(Error {
                        at: t.at,
                        msg: "empty anonymous ACL".into(),
                    });
                }
                let line = AclLine::compile(inner, env)?;
                self.acls.push(Acl {
                    name: String::new(),
                    lines: vec![line],
                });
                let acl = self.acls.len() - 1;
                terms
                    .last_mut()
                    .expect("never empty")
                    .push(Term { acl, neg });
                neg = false;
                i += close + 2;
                continue;
            }
            if !t.quoted && w == "}" {
                return Err(Error {
                    at: t.at,
                    msg: "'}' without '{'".into(),
                });
            }
            let (n, name) = match w.strip_prefix('!') {
                Some(rest) if !t.quoted => (true, rest),
                _ => (false, w),
            };
            let acl = self.lookup(name, env).ok_or(Error {
                at: t.at + n as usize,
                msg: format!("ACL \"{name}\" is not defined"),
            })?;
            if let Some(why) = self.acls[acl]
                .lines
                .iter()
                .find_map(|l| env.unavailable(&l.expr.fetch))
            {
                return Err(Error {
                    at: t.at + n as usize,
                    msg: format!("ACL \"{name}\" {why}"),
                });
            }
            terms
                .last_mut()
                .expect("never empty")
                .push(Term { acl, neg: neg != n });
            neg = false;
            i += 1;
        }
        if neg || terms.last().is_some_and(|a| a.is_empty()) {
            return Err(Error {
                at: end_at,
                msg: "the condition is incomplete".into(),
            });
        }
        Ok(Cond { terms, unless })
    }

    /// Compiles condition text (what follows `if`/`unless`).
    pub fn cond_str(&mut self, text: &str, unless: bool, env: &mut Env) -> Result<Cond, Error> {
        let toks = tokenize(text)?;
        self.cond(&toks, unless, env)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Term {
    pub acl: usize,
    pub neg: bool,
}

/// `if`/`unless` condition: OR of AND-ed terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cond {
    pub terms: Vec<Vec<Term>>,
    pub unless: bool,
}

/// HAProxy's three-valued ACL results (`ACL_TEST_FAIL`, `_MISS`, `_PASS`),
/// combined bitwise as HAProxy does: AND is `&`, OR is `|`.
const FAIL: u8 = 0;
const MISS: u8 = 1;
const PASS: u8 = 3;

impl AclSet {
    /// Like `matches`, but MISS when a line failed on bytes that may still
    /// come ([`payload::Inspect`]).
    fn test(&self, acl: usize, ctx: &Ctx, scratch: &mut Scratch) -> u8 {
        let mut r = FAIL;
        for l in self.acls.get(acl).map_or(&[][..], |a| &a.lines) {
            if let Some(i) = ctx.inspect {
                i.short.set(false);
            }
            if l.matches(ctx, scratch) {
                return PASS;
            }
            if ctx.inspect.is_some_and(|i| i.short.get()) {
                r = MISS;
            }
        }
        r
    }
}

impl Cond {
    /// `tcp-request content`'s evaluation: `None` while the answer may
    /// still change with more of the client's bytes, else whether the
    /// condition (with `unless` applied) holds.
    pub fn test(&self, acls: &AclSet, ctx: &Ctx, scratch: &mut Scratch) -> Option<bool> {
        let mut cond = FAIL;
        for and in &self.terms {
            let mut suite = PASS;
            for t in and {
                let r = match acls.test(t.acl, ctx, scratch) {
                    PASS if t.neg => FAIL,
                    FAIL if t.neg => PASS,
                    r => r,
                };
                suite &= r;
                if suite == FAIL {
                    break;
                }
            }
            cond |= suite;
            if cond == PASS {
                break;
            }
        }
        match cond {
            MISS => None,
            c => Some((c == PASS) != self.unless),
        }
    }

    pub fn eval(&self, acls: &AclSet, ctx: &Ctx, scratch: &mut Scratch) -> bool {
        let r = self.terms.iter().any(|and| {
            and.iter()
                .all(|t| acls.matches(t.acl, ctx, scratch) != t.neg)
        });
        r != self.unless
    }
}
