//! haproxy.cfg in, the same [`RawConfig`] the TOML schema produces out, with
//! every value a `Spanned` over the byte range of its haproxy.cfg word, so
//! `resolve` runs every semantic check once and its errors point at
//! `FILE:LINE:COL` of the .cfg. This module owns the section loop (`global`,
//! `defaults [NAME] [from NAME]`, `frontend|backend|listen NAME [from NAME]`,
//! refused `userlist`/`resolvers`/`peers`/...), file boundaries, notices and
//! `defaults` inheritance (flattened into each proxy, which is what lets named
//! and repeated `defaults` sections map onto one model).

mod cond;
mod global;
pub mod lexer;
mod proxy;
mod server;
mod tls;

use std::ops::Range;

use toml::Spanned;

use super::resolve::Kind;
use super::schema::*;
use cond::{Conditions, Directive};
use lexer::{Env, Word};

/// A refusal at a byte range of the whole source text.
#[derive(Debug, Clone)]
pub struct PErr {
    pub at: Range<usize>,
    pub msg: String,
}

pub(crate) type P<T> = Result<T, PErr>;

pub(crate) fn perr(at: &Range<usize>, msg: impl Into<String>) -> PErr {
    PErr {
        at: at.clone(),
        msg: msg.into(),
    }
}

/// A keyword handler's refusal: `Unsupported` becomes a warning under
/// `--lenient`; `Bad` is always an error.
pub(crate) enum KwErr {
    Unsupported,
    /// An unsupported option word of a supported keyword (`server`, `bind`).
    UnsupportedOpt(Word),
    Bad(PErr),
}

impl From<PErr> for KwErr {
    fn from(e: PErr) -> Self {
        KwErr::Bad(e)
    }
}

pub struct Options<'a> {
    /// Unsupported keywords become warnings (and are ignored).
    pub lenient: bool,
    pub env: Env<'a>,
}

/// A comment of the source, for `ringlb import`.
#[derive(Debug, Clone)]
pub struct Comment {
    /// Byte offset of its line.
    pub line_start: usize,
    pub text: String,
    /// The directive it follows on the same line, if any (re-joined words).
    pub after: Option<String>,
}

/// The result of reading haproxy.cfg text.
pub struct Parsed {
    pub raw: RawConfig,
    /// Notices and warnings, each at a byte offset.
    pub notices: Vec<(usize, String)>,
    pub comments: Vec<Comment>,
    /// Each section's header offset and kind word, in file order (for import).
    pub sections: Vec<(usize, String, usize)>,
    /// When the file has exactly one `defaults` section and every proxy uses
    /// it: the same configuration with that section kept as `[defaults]` and
    /// the proxies holding only their own keys (for import, which checks that
    /// it resolves to the same `Config` before using it).
    pub unfolded: Option<RawConfig>,
    /// For each directive that set a TOML key: its line's first byte, the
    /// top-level key of its section's table and, for `acl` and `timeout`, the
    /// sub-key (for import).
    pub keys: Vec<(usize, &'static str, Option<String>)>,
}

struct Defaults {
    name: Option<String>,
    raw: RawProxy,
    header: Range<usize>,
}

struct Proxy {
    kind: Kind,
    raw: RawProxy,
    header: Range<usize>,
    defaults: Option<usize>,
}

enum Cur {
    None,
    Global,
    Defaults(usize),
    Proxy(usize),
    /// An unsupported section skipped under `--lenient`.
    Skip,
    /// A `userlist` section.
    Userlist(String),
    /// An `http-errors` section.
    HttpErrors(String),
}

/// Where an `errorfiles NAME [CODE...]` line imports its section's files.
#[derive(Clone, Copy)]
enum ErrTarget {
    Defaults(usize),
    Proxy(usize),
}

/// Keywords that only `global` takes, to name the right section in errors.
const GLOBAL_ONLY: &[&str] = &[
    "daemon",
    "nbthread",
    "nbproc",
    "pidfile",
    "user",
    "group",
    "uid",
    "gid",
    "chroot",
    "hard-stop-after",
    "cpu-map",
    "ulimit-n",
    "master-worker",
    "stats socket",
];

/// Parses the concatenated source `text`; `file_starts` holds the byte offset
/// where each file begins (sections never continue across files).
pub fn parse(text: &str, file_starts: &[usize], opts: &Options) -> P<Parsed> {
    let mut st = State {
        opts,
        global: None,
        defaults: Vec::new(),
        proxies: Vec::new(),
        notices: Vec::new(),
        comments: Vec::new(),
        sections: Vec::new(),
        keys: Vec::new(),
        line_start: 0,
        current_defaults: None,
        userlists: Default::default(),
        http_errors: Default::default(),
        errorfiles: Vec::new(),
        tls: Default::default(),
    };
    let mut bounds: Vec<usize> = file_starts.to_vec();
    bounds.push(text.len());
    for w in bounds.windows(2) {
        st.file(&text[w[0]..w[1]], w[0])?;
    }
    st.finish()
}

struct State<'a> {
    opts: &'a Options<'a>,
    global: Option<(RawGlobal, Range<usize>)>,
    defaults: Vec<Defaults>,
    proxies: Vec<Proxy>,
    notices: Vec<(usize, String)>,
    comments: Vec<Comment>,
    sections: Vec<(usize, String, usize)>,
    keys: Vec<(usize, &'static str, Option<String>)>,
    /// First byte of the line being handled.
    line_start: usize,
    current_defaults: Option<usize>,
    userlists: std::collections::BTreeMap<String, Vec<Spanned<String>>>,
    /// `http-errors NAME` sections: status code to file, as `errorfile`.
    http_errors:
        std::collections::BTreeMap<String, std::collections::BTreeMap<String, Spanned<String>>>,
    /// `errorfiles NAME [CODE...]` lines, resolved once every section is read
    /// (HAProxy allows the section after its users).
    errorfiles: Vec<(ErrTarget, Word, Vec<Word>)>,
    /// `crt-base`, `ca-base`, `ssl-default-bind-*`: applied in `finish`.
    tls: tls::TlsGlobals,
}

pub(crate) fn sp<T>(w: &Word, v: T) -> Spanned<T> {
    Spanned::new(w.span.clone(), v)
}

/// Re-joins words into one string that splits back the same way: words with
/// blanks or quotes are double-quoted (for conditions, ACLs and rules).
pub(crate) fn join(words: &[Word]) -> String {
    let mut out = String::new();
    for (i, w) in words.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let t = &w.text;
        if t.is_empty() || t.contains([' ', '\t', '"', '\'', '#', '\\']) {
            out.push('"');
            for c in t.chars() {
                if matches!(c, '"' | '\\' | '$') {
                    out.push('\\');
                }
                out.push(c);
            }
            out.push('"');
        } else {
            out.push_str(t);
        }
    }
    out
}

/// Span covering a run of words.
pub(crate) fn cover(words: &[Word]) -> Range<usize> {
    match (words.first(), words.last()) {
        (Some(a), Some(b)) => a.span.start..b.span.end,
        _ => 0..0,
    }
}

impl State<'_> {
    fn file(&mut self, src: &str, base: usize) -> P<()> {
        let mut cur = Cur::None;
        let mut conds = Conditions::default();
        let mut off = 0;
        for raw_line in src.split_inclusive('\n') {
            let start = base + off;
            off += raw_line.len();
            let line_text = raw_line.strip_suffix('\n').unwrap_or(raw_line);
            let line = lexer::lex_line(line_text, start, self.opts.env).map_err(|e| PErr {
                at: e.at..e.at + 1,
                msg: e.msg,
            })?;
            if let Some(c) = &line.comment {
                self.comments.push(Comment {
                    line_start: start,
                    text: c.clone(),
                    after: (!line.words.is_empty()).then(|| join(&line.words)),
                });
            }
            match conds
                .line(&line.words, self.opts.env)
                .map_err(|(at, m)| perr(&(at..at + 1), m))?
            {
                Directive::Line(true) => {}
                Directive::Line(false) | Directive::Handled => continue,
                Directive::Message(m) => {
                    self.notices.push((start, m));
                    continue;
                }
            }
            self.line_start = start;
            self.directive(&line.words, &mut cur)?;
        }
        conds.finish().map_err(|(at, m)| perr(&(at..at + 1), m))
    }

    fn unsupported(&mut self, kw: &[Word], section: &str) -> P<()> {
        let what = kw
            .iter()
            .map(|w| w.text.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        let mut msg = format!("unsupported keyword \"{what}\" in section \"{section}\"");
        if let Some(s) = suggest(&kw[0].text) {
            msg.push_str(&format!(" (did you mean \"{s}\"?)"));
        }
        if self.opts.lenient {
            self.notices.push((
                kw[0].span.start,
                format!("warning: {msg}, ignored (--lenient)"),
            ));
            Ok(())
        } else {
            Err(perr(&cover(kw), msg))
        }
    }

    fn directive(&mut self, words: &[Word], cur: &mut Cur) -> P<()> {
        if let Some(w) = words.iter().find(|w| w.text.contains('\u{FFFD}')) {
            return Err(perr(
                &w.span,
                "bytes that are not UTF-8 in a value (only comments may use another encoding; convert the file with iconv)",
            ));
        }
        let kw = &words[0];
        let header = cover(words);
        let name_of = |words: &[Word]| -> P<(Option<Word>, Option<String>)> {
            // NAME [from DEFAULTS]
            let mut name = None;
            let mut from = None;
            let mut i = 1;
            while i < words.len() {
                if words[i].text == "from" {
                    let f = words.get(i + 1).ok_or_else(|| {
                        perr(
                            &words[i].span,
                            "\"from\" needs the name of a defaults section",
                        )
                    })?;
                    from = Some(f.text.clone());
                    i += 2;
                } else if name.is_none() {
                    name = Some(words[i].clone());
                    i += 1;
                } else {
                    return Err(perr(
                        &words[i].span,
                        format!("unexpected \"{}\" after the section name", words[i].text),
                    ));
                }
            }
            Ok((name, from))
        };
        match kw.text.as_str() {
            "global" => {
                self.sections.push((kw.span.start, "global".into(), 0));
                if words.len() > 1 {
                    return Err(perr(&words[1].span, "global takes no argument"));
                }
                if self.global.is_none() {
                    self.global = Some((RawGlobal::default(), header.clone()));
                }
                *cur = Cur::Global;
                return Ok(());
            }
            "defaults" => {
                self.sections.push((kw.span.start, "defaults".into(), 0));
                let (name, from) = name_of(words)?;
                let raw = match &from {
                    Some(f) => self.named_defaults(f, &header)?.raw.clone(),
                    None => RawProxy::default(),
                };
                self.defaults.push(Defaults {
                    name: name.map(|n| n.text),
                    raw,
                    header: header.clone(),
                });
                let i = self.defaults.len() - 1;
                self.current_defaults = Some(i);
                *cur = Cur::Defaults(i);
                return Ok(());
            }
            "frontend" | "backend" | "listen" => {
                let kind = match kw.text.as_str() {
                    "frontend" => Kind::Frontend,
                    "backend" => Kind::Backend,
                    _ => Kind::Listen,
                };
                let (name, from) = name_of(words)?;
                let name =
                    name.ok_or_else(|| perr(&kw.span, format!("\"{}\" needs a name", kw.text)))?;
                let defaults = match &from {
                    Some(f) => {
                        let name = f.clone();
                        let idx = self
                            .defaults
                            .iter()
                            .rposition(|d| d.name.as_deref() == Some(name.as_str()));
                        Some(idx.ok_or_else(|| {
                            perr(&header, format!("no defaults section named \"{name}\""))
                        })?)
                    }
                    None => self.current_defaults,
                };
                self.sections
                    .push((kw.span.start, kw.text.clone(), self.proxies.len()));
                self.proxies.push(Proxy {
                    kind,
                    raw: RawProxy {
                        name: Some(sp(&name, name.text.clone())),
                        ..RawProxy::default()
                    },
                    header: header.clone(),
                    defaults,
                });
                *cur = Cur::Proxy(self.proxies.len() - 1);
                return Ok(());
            }
            "userlist" => {
                let name = words
                    .get(1)
                    .ok_or_else(|| perr(&kw.span, "userlist needs a name"))?;
                if self.userlists.contains_key(&name.text) {
                    return Err(perr(
                        &name.span,
                        format!("duplicate userlist \"{}\"", name.text),
                    ));
                }
                self.userlists.insert(name.text.clone(), Vec::new());
                *cur = Cur::Userlist(name.text.clone());
                return Ok(());
            }
            "http-errors" => {
                let name = words
                    .get(1)
                    .ok_or_else(|| perr(&kw.span, "http-errors needs a name"))?;
                if self.http_errors.contains_key(&name.text) {
                    return Err(perr(
                        &name.span,
                        format!("duplicate http-errors \"{}\"", name.text),
                    ));
                }
                self.http_errors
                    .insert(name.text.clone(), Default::default());
                *cur = Cur::HttpErrors(name.text.clone());
                return Ok(());
            }
            "resolvers" | "peers" | "mailers" | "cache" | "program" | "ring" | "fcgi-app"
            | "crt-store" | "traces" => {
                self.sections.push((kw.span.start, kw.text.clone(), 0));
                let msg = format!(
                    "unsupported section \"{}\": ringlb does not implement it",
                    kw.text
                );
                if self.opts.lenient {
                    self.notices.push((
                        kw.span.start,
                        format!("warning: {msg}; section ignored (--lenient)"),
                    ));
                    *cur = Cur::Skip;
                    return Ok(());
                }
                return Err(perr(&header, msg));
            }
            _ => {}
        }
        match cur {
            Cur::None => {
                let hint = suggest(&kw.text)
                    .map(|s| format!("; did you mean \"{s}\"?"))
                    .unwrap_or_default();
                Err(perr(
                    &kw.span,
                    format!(
                        "unknown keyword \"{}\" out of any section (expected global, defaults, frontend, backend or listen){hint}",
                        kw.text
                    ),
                ))
            }

            Cur::Skip => Ok(()),
            Cur::HttpErrors(name) => {
                if kw.text != "errorfile" {
                    return Err(perr(
                        &kw.span,
                        format!(
                            "unknown keyword \"{}\" in http-errors section (errorfile CODE FILE)",
                            kw.text
                        ),
                    ));
                }
                let (Some(code), Some(file), None) = (words.get(1), words.get(2), words.get(3))
                else {
                    return Err(perr(
                        &cover(words),
                        "errorfile takes a status code and a file",
                    ));
                };
                if let Some(m) = self.http_errors.get_mut(name) {
                    m.insert(code.text.clone(), sp(file, file.text.clone()));
                }
                Ok(())
            }
            Cur::Userlist(name) => {
                if let Some(l) = self.userlists.get_mut(name) {
                    l.push(Spanned::new(cover(words), join(words)));
                }
                Ok(())
            }
            Cur::Global => {
                if let Some(r) = self.tls.keyword(words) {
                    let ns = r.map_err(|m| perr(&kw.span, m))?;
                    for n in ns {
                        self.notices.push((kw.span.start, format!("notice: {n}")));
                    }
                    return Ok(());
                }
                let mut g = self.global.take().expect("set by the header");
                let r = global::keyword(&mut g.0, words, &mut self.notices);
                self.global = Some(g);
                match r {
                    Ok(()) => {
                        if let Some(k) = global::key_of(&kw.text) {
                            let sub = match kw.text.as_str() {
                                "nosplice" => Some("splice".to_string()),
                                t => t.strip_prefix("tune.").map(str::to_string),
                            };
                            self.keys.push((self.line_start, k, sub));
                        }
                        Ok(())
                    }
                    Err(KwErr::Bad(e)) => Err(e),
                    Err(KwErr::UnsupportedOpt(w)) => Err(perr(&w.span, "unsupported option")),
                    Err(KwErr::Unsupported) => {
                        if proxy::is_proxy_keyword(&kw.text) {
                            return Err(perr(
                                &kw.span,
                                format!(
                                    "keyword \"{}\" is not allowed in section \"global\"",
                                    kw.text
                                ),
                            ));
                        }
                        self.unsupported(&words[..1], "global")
                    }
                }
            }
            Cur::Defaults(i) if kw.text == "errorfiles" => {
                let t = ErrTarget::Defaults(*i);
                self.errorfiles_line(t, words)
            }
            Cur::Proxy(i) if kw.text == "errorfiles" => {
                let t = ErrTarget::Proxy(*i);
                self.errorfiles_line(t, words)
            }
            Cur::Defaults(i) => {
                let i = *i;
                let mut raw = std::mem::take(&mut self.defaults[i].raw);
                let r = proxy::keyword(&mut raw, words, &mut self.notices);
                self.defaults[i].raw = raw;
                self.after_keyword(r, words, Kind::Defaults, "defaults")
            }
            Cur::Proxy(i) => {
                let i = *i;
                let kind = self.proxies[i].kind;
                let mut raw = std::mem::take(&mut self.proxies[i].raw);
                let r = proxy::keyword(&mut raw, words, &mut self.notices);
                let section = format!(
                    "{} {}",
                    kind.word(),
                    raw.name
                        .as_ref()
                        .map(|n| n.get_ref().as_str())
                        .unwrap_or("")
                );
                self.proxies[i].raw = raw;
                self.after_keyword(r, words, kind, &section)
            }
        }
    }

    fn after_keyword(
        &mut self,
        r: Result<Option<&'static str>, KwErr>,
        words: &[Word],
        kind: Kind,
        section: &str,
    ) -> P<()> {
        let kw = &words[0];
        match r {
            Ok(Some(key)) if kind.forbidden().contains(&key) => {
                let n = keyword_words(words);
                Err(perr(
                    &cover(&words[..n]),
                    format!(
                        "keyword \"{}\" is not allowed in a {} section (\"{section}\")",
                        join(&words[..n]),
                        kind.word()
                    ),
                ))
            }
            Ok(Some(key)) => {
                let sub = match (key, kw.text.as_str()) {
                    ("acl", _) | ("timeout", "timeout") | ("stats", _) => {
                        words.get(1).map(|w| w.text.clone())
                    }
                    _ => None,
                };
                self.keys.push((self.line_start, key, sub));
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(KwErr::Bad(e)) => Err(e),
            Err(KwErr::UnsupportedOpt(w)) => {
                let msg = format!(
                    "unsupported option \"{}\" of \"{}\" in section \"{section}\"",
                    w.text, kw.text
                );
                if self.opts.lenient {
                    self.notices
                        .push((w.span.start, format!("warning: {msg}, ignored (--lenient)")));
                    Ok(())
                } else {
                    Err(perr(&w.span, msg))
                }
            }
            Err(KwErr::Unsupported) => {
                let n = keyword_words(words);
                if n == 1 && GLOBAL_ONLY.contains(&kw.text.as_str()) {
                    return Err(perr(
                        &kw.span,
                        format!(
                            "keyword \"{}\" is only valid in section \"global\", not in \"{section}\"",
                            kw.text
                        ),
                    ));
                }
                self.unsupported(&words[..n.min(words.len())], section)
            }
        }
    }

    fn named_defaults(&self, name: &str, at: &Range<usize>) -> P<&Defaults> {
        self.defaults
            .iter()
            .rev()
            .find(|d| d.name.as_deref() == Some(name))
            .ok_or_else(|| perr(at, format!("no defaults section named \"{name}\"")))
    }

    /// Keeps an `errorfiles NAME [CODE...]` line for `resolve_errorfiles`.
    fn errorfiles_line(&mut self, target: ErrTarget, words: &[Word]) -> P<()> {
        let name = words
            .get(1)
            .ok_or_else(|| perr(&words[0].span, "errorfiles needs an http-errors name"))?;
        self.errorfiles
            .push((target, name.clone(), words[2..].to_vec()));
        self.keys.push((self.line_start, "errorfile", None));
        Ok(())
    }

    /// Imports each `errorfiles NAME [CODE...]` into its section's
    /// `errorfile` entries; an `errorfile` of the section's own wins.
    fn resolve_errorfiles(&mut self) -> P<()> {
        for (target, name, codes) in std::mem::take(&mut self.errorfiles) {
            let files = self.http_errors.get(&name.text).ok_or_else(|| {
                perr(
                    &name.span,
                    format!("no http-errors section named \"{}\"", name.text),
                )
            })?;
            let mut chosen: Vec<(String, Spanned<String>)> = Vec::new();
            if codes.is_empty() {
                chosen.extend(files.iter().map(|(c, f)| (c.clone(), f.clone())));
            }
            for c in &codes {
                let f = files.get(&c.text).ok_or_else(|| {
                    perr(
                        &c.span,
                        format!("http-errors \"{}\" has no errorfile {}", name.text, c.text),
                    )
                })?;
                chosen.push((c.text.clone(), f.clone()));
            }
            let raw = match target {
                ErrTarget::Defaults(i) => &mut self.defaults[i].raw,
                ErrTarget::Proxy(i) => &mut self.proxies[i].raw,
            };
            let own = raw.errorfile.get_or_insert_with(Default::default);
            for (c, f) in chosen {
                own.entry(c).or_insert(f);
            }
        }
        Ok(())
    }

    fn finish(mut self) -> P<Parsed> {
        self.resolve_errorfiles()?;
        let userlist = (!self.userlists.is_empty()).then_some(self.userlists);
        let mut raw = RawConfig {
            global: self.global.map(|(g, at)| Spanned::new(at, g)),
            userlist: userlist.clone(),
            ..RawConfig::default()
        };
        let single = self.defaults.len() == 1 && self.proxies.iter().all(|p| p.defaults == Some(0));
        let mut unfolded = single.then(|| RawConfig {
            global: raw.global.clone(),
            userlist,
            defaults: Some(Spanned::new(
                self.defaults[0].header.clone(),
                self.defaults[0].raw.clone(),
            )),
            ..RawConfig::default()
        });
        for mut p in self.proxies {
            self.tls.apply(&mut p.raw);
            if let Some(u) = &mut unfolded {
                let mut own = p.raw.clone();
                // What finish_checks does to the folded proxy, done to its own
                // keys: a tcp-check that ends up without any rule connects.
                let d = &self.defaults[0].raw;
                if !p.kind.forbidden().contains(&"check") {
                    let ty = |c: &Option<RawCheck>| c.as_ref().and_then(|c| c.type_.clone());
                    let steps = |c: &Option<RawCheck>| c.as_ref().and_then(|c| c.steps.clone());
                    let tcp = ty(&own.check)
                        .or_else(|| ty(&d.check))
                        .is_some_and(|t| t.get_ref() == "tcp-check");
                    if tcp && steps(&own.check).is_none() && steps(&d.check).is_none() {
                        let at = ty(&own.check)
                            .or_else(|| ty(&d.check))
                            .map(|t| t.span())
                            .unwrap_or(0..0);
                        own.check.get_or_insert_with(RawCheck::default).steps =
                            Some(vec![Spanned::new(
                                at,
                                RawCheckStep {
                                    connect: Some(true),
                                    ..RawCheckStep::default()
                                },
                            )]);
                    }
                }
                let s = Spanned::new(p.header.clone(), own);
                match p.kind {
                    Kind::Frontend => u.frontend.push(s),
                    Kind::Backend => u.backend.push(s),
                    _ => u.listen.push(s),
                }
            }
            if let Some(d) = p.defaults {
                inherit(&self.defaults[d].raw, &mut p.raw, p.kind);
            }
            finish_checks(&mut p.raw);
            let s = Spanned::new(p.header, p.raw);
            match p.kind {
                Kind::Frontend => raw.frontend.push(s),
                Kind::Backend => raw.backend.push(s),
                _ => raw.listen.push(s),
            }
        }
        Ok(Parsed {
            raw,
            notices: self.notices,
            comments: self.comments,
            sections: self.sections,
            unfolded,
            keys: self.keys,
        })
    }
}

/// How many words name a directive (`option httpchk`, `no option X`, `timeout
/// connect`, ...), for messages.
fn keyword_words(words: &[Word]) -> usize {
    let two = matches!(
        words[0].text.as_str(),
        "option" | "no" | "timeout" | "stats" | "http-check" | "tcp-check" | "tcp-request"
    );
    let n = if words[0].text == "no" {
        3
    } else if two {
        2
    } else {
        1
    };
    n.min(words.len())
}

/// Words a misspelt keyword is compared against for "did you mean".
const KNOWN: &[&str] = &[
    "global",
    "defaults",
    "frontend",
    "backend",
    "listen",
    "mode",
    "bind",
    "maxconn",
    "acl",
    "use_backend",
    "default_backend",
    "balance",
    "hash-type",
    "server",
    "default-server",
    "timeout",
    "retries",
    "option",
    "http-check",
    "tcp-check",
    "cookie",
    "http-request",
    "http-response",
    "tcp-request",
    "stats",
    "disabled",
    "enabled",
    "log",
    "daemon",
    "nbthread",
    "pidfile",
    "user",
    "group",
    "hard-stop-after",
];

/// The known keyword closest to `word` (at most 2 edits away, not equal).
fn suggest(word: &str) -> Option<&'static str> {
    fn dist(a: &str, b: &str) -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut prev: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut cur = vec![i + 1];
            for (j, cb) in b.iter().enumerate() {
                let sub = prev[j] + usize::from(ca != *cb);
                cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
            }
            prev = cur;
        }
        prev[b.len()]
    }
    if word.chars().count() > 40 {
        return None;
    }
    KNOWN
        .iter()
        .map(|k| (dist(word, k), *k))
        .filter(|(d, _)| *d > 0 && *d <= 2)
        .min()
        .map(|(_, k)| k)
}

/// `option tcp-check` without any `tcp-check` rule is a plain connect check, as in
/// HAProxy.
fn finish_checks(p: &mut RawProxy) {
    if let Some(c) = &mut p.check {
        let tcp_check = c.type_.as_ref().is_some_and(|t| t.get_ref() == "tcp-check");
        if tcp_check && c.steps.is_none() {
            let at = c.type_.as_ref().map(|t| t.span()).unwrap_or(0..0);
            c.steps = Some(vec![Spanned::new(
                at,
                RawCheckStep {
                    connect: Some(true),
                    ..RawCheckStep::default()
                },
            )]);
        }
    }
}

/// Copies what `def` sets and `own` does not into `own` — exactly the keys
/// `resolve` would take from `[defaults]`, skipping those `kind` may not carry.
fn inherit(def: &RawProxy, own: &mut RawProxy, kind: Kind) {
    let allowed = |key: &str| !kind.forbidden().contains(&key);
    macro_rules! take {
        ($($f:ident => $key:expr),* $(,)?) => {
            $( if own.$f.is_none() && allowed($key) { own.$f = def.$f.clone(); } )*
        };
    }
    take!(
        mode => "mode", maxconn => "maxconn", default_backend => "default-backend",
        log => "log", log_format => "log-format", dontlognull => "dontlognull",
        forwardfor => "forwardfor", forwardfor_header => "forwardfor-header",
        forwardfor_except => "forwardfor-except", forwardfor_if_none => "forwardfor-if-none",
        http_keep_alive => "http-keep-alive",
        httpclose => "httpclose", http_server_close => "http-server-close", balance => "balance", hash_type => "hash-type",
        on_marked_down => "on-marked-down", on_marked_up => "on-marked-up", cookie => "cookie", retries => "retries",
        redispatch => "redispatch", persist => "persist", http_reuse => "http-reuse",
        load_server_state_from_file => "load-server-state-from-file",
    );
    // Error files merge by status code, the section's own winning.
    if let Some(d) = &def.errorfile {
        let o = own.errorfile.get_or_insert_with(Default::default);
        for (code, file) in d {
            o.entry(code.clone()).or_insert_with(|| file.clone());
        }
    }
    if let Some(d) = &def.timeout {
        let o = own.timeout.get_or_insert_with(RawTimeouts::default);
        macro_rules! t {
            ($($f:ident),*) => { $( if o.$f.is_none() { o.$f = d.$f.clone(); } )* };
        }
        t!(
            connect,
            client,
            server,
            tunnel,
            client_fin,
            server_fin,
            queue,
            check,
            http_request,
            http_keep_alive,
            tarpit
        );
    }
    if allowed("check") {
        if let Some(d) = &def.check {
            let o = own.check.get_or_insert_with(RawCheck::default);
            macro_rules! c {
                ($($f:ident),*) => { $( if o.$f.is_none() { o.$f = d.$f.clone(); } )* };
            }
            c!(type_, method, uri, version, host, expect, user, steps);
        }
    }
    if allowed("default-server") {
        if let Some(d) = &def.default_server {
            let o = own.default_server.take().unwrap_or_default();
            own.default_server = Some(super::backend::merge_server(d, &o));
        }
    }
}

#[cfg(test)]
mod tests;
