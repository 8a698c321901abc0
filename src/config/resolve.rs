//! From the raw schema to the resolved model (the global section is in `global`,
//! frontends in `frontend`, backends, servers and checks in `backend`): the order
//! of resolution, inheritance from `[defaults]` and
//! `default-server`, which keys each section kind may use, names resolved to
//! indexes, and every value checked. The first problem found is returned with its
//! position; nothing is half-resolved.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use toml::Spanned;

use super::error::{ConfigError, Locator};
use super::errorfile::ErrorFiles;
use super::model::*;
use super::schema::*;
use super::values;

pub(super) type R<T> = Result<T, ConfigError>;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(in crate::config) enum Kind {
    Defaults,
    Frontend,
    Backend,
    Listen,
}

impl Kind {
    pub(in crate::config) fn word(self) -> &'static str {
        match self {
            Kind::Defaults => "defaults",
            Kind::Frontend => "frontend",
            Kind::Backend => "backend",
            Kind::Listen => "listen",
        }
    }

    /// Keys a section of this kind may not carry.
    pub(in crate::config) fn forbidden(self) -> &'static [&'static str] {
        match self {
            Kind::Defaults => &[
                "name",
                "bind",
                "acl",
                "use-backend",
                "use-server",
                "servers",
                "http-request",
                "http-response",
                "tcp-request",
                "capture",
            ],
            Kind::Frontend => &[
                "balance",
                "hash-type",
                "cookie",
                "check",
                "default-server",
                "servers",
                "use-server",
                "retries",
                "redispatch",
                "persist",
                "on-marked-down",
                "on-marked-up",
                "http-reuse",
                "load-server-state-from-file",
            ],
            Kind::Backend => &[
                "bind",
                "maxconn",
                "use-backend",
                "default-backend",
                "dontlognull",
                "stats",
                "capture",
                "tcp-request",
            ],
            Kind::Listen => &[],
        }
    }
}

fn present_keys(p: &RawProxy) -> Vec<&'static str> {
    let mut k = Vec::new();
    let mut add = |cond: bool, name: &'static str| {
        if cond {
            k.push(name)
        }
    };
    add(p.name.is_some(), "name");
    add(p.bind.is_some(), "bind");
    add(p.maxconn.is_some(), "maxconn");
    add(p.acl.is_some(), "acl");
    add(p.use_backend.is_some(), "use-backend");
    add(p.use_server.is_some(), "use-server");
    add(p.default_backend.is_some(), "default-backend");
    add(p.http_request.is_some(), "http-request");
    add(p.http_response.is_some(), "http-response");
    add(p.tcp_request.is_some(), "tcp-request");
    add(p.dontlognull.is_some(), "dontlognull");
    add(p.balance.is_some(), "balance");
    add(p.hash_type.is_some(), "hash-type");
    add(p.cookie.is_some(), "cookie");
    add(p.check.is_some(), "check");
    add(p.default_server.is_some(), "default-server");
    add(p.servers.is_some(), "servers");
    add(p.retries.is_some(), "retries");
    add(p.redispatch.is_some(), "redispatch");
    add(p.persist.is_some(), "persist");
    add(p.on_marked_down.is_some(), "on-marked-down");
    add(p.on_marked_up.is_some(), "on-marked-up");
    add(p.http_reuse.is_some(), "http-reuse");
    add(
        p.load_server_state_from_file.is_some(),
        "load-server-state-from-file",
    );
    add(p.stats.is_some(), "stats");
    add(p.errorfile.is_some(), "errorfile");
    add(p.capture.is_some(), "capture");
    add(p.forwardfor_header.is_some(), "forwardfor-header");
    add(p.forwardfor_except.is_some(), "forwardfor-except");
    add(p.forwardfor_if_none.is_some(), "forwardfor-if-none");
    k
}

pub(super) struct Resolver<'a> {
    pub(super) loc: &'a Locator<'a>,
    pub(super) defaults: RawProxy,
    pub(super) global_log: Vec<LogTarget>,
    pub(super) global_maxconn: u32,
    /// `tune.bufsize`: the largest `errorfile`.
    pub(super) bufsize: usize,
    /// `tune.ssl.lifetime`, seconds, for every `bind ... ssl`.
    pub(super) ssl_lifetime: u32,
}

/// The texts of a list of spanned strings.
pub(super) fn strings(v: &Option<Vec<Spanned<String>>>) -> Vec<String> {
    v.iter().flatten().map(|s| s.get_ref().clone()).collect()
}

pub(super) fn span<T>(s: &Spanned<T>) -> Range<usize> {
    s.span()
}

impl Resolver<'_> {
    pub(super) fn err(&self, at: Range<usize>, ctx: &str, msg: impl Into<String>) -> ConfigError {
        self.loc.error(at, ctx, msg)
    }

    pub(super) fn dur(&self, v: &Spanned<RawDuration>, ctx: &str, key: &str) -> R<Duration> {
        values::duration(v.get_ref()).map_err(|m| self.err(span(v), ctx, format!("{key}: {m}")))
    }

    pub(super) fn int(&self, v: &Spanned<i64>, ctx: &str, key: &str, min: i64, max: i64) -> R<u32> {
        let n = *v.get_ref();
        if n < min || n > max {
            return Err(self.err(span(v), ctx, format!("{key} {n} out of range {min}-{max}")));
        }
        Ok(n as u32)
    }

    pub(super) fn log_targets(
        &self,
        list: &[RawLogTarget],
        at: Range<usize>,
        ctx: &str,
    ) -> R<Vec<LogTarget>> {
        list.iter()
            .map(|t| self.log_target(t, at.clone(), ctx))
            .collect()
    }

    pub(super) fn log_target(&self, t: &RawLogTarget, at: Range<usize>, ctx: &str) -> R<LogTarget> {
        let e = |m: String| self.err(at.clone(), ctx, format!("log: {m}"));
        let dest = match t.target.as_str() {
            "stdout" => LogDest::Stdout,
            "stderr" => LogDest::Stderr,
            s if s.starts_with("udp://") => {
                let a = &s[6..];
                let a = if a.contains(':') {
                    a.to_string()
                } else {
                    format!("{a}:514")
                };
                LogDest::Udp(values::address(&a).map_err(e)?)
            }
            s if s.starts_with("unix://") => LogDest::Unix(s[7..].into()),
            "" => return Err(e("empty target".into())),
            s => LogDest::File(s.into()),
        };
        Ok(LogTarget {
            dest,
            facility: values::facility(t.facility.as_deref().unwrap_or("local0")).map_err(e)?,
            level: values::level(t.level.as_deref().unwrap_or("info")).map_err(e)?,
            min_level: t
                .min_level
                .as_deref()
                .map(values::level)
                .transpose()
                .map_err(e)?,
        })
    }

    pub(super) fn timeouts(&self, own: Option<&RawTimeouts>, ctx: &str) -> R<Timeouts> {
        let d = self.defaults.timeout.clone().unwrap_or_default();
        let o = own.cloned().unwrap_or_default();
        let pick = |a: &Option<Spanned<RawDuration>>,
                    b: &Option<Spanned<RawDuration>>,
                    key: &str|
         -> R<Option<Duration>> {
            // HAProxy: a timeout of 0 is no timeout at all (and warns about it,
            // see `lint`), not a timeout that expires at once.
            match a.as_ref().or(b.as_ref()) {
                Some(v) => self
                    .dur(v, ctx, &format!("timeout {key}"))
                    .map(|d| (!d.is_zero()).then_some(d)),
                None => Ok(None),
            }
        };
        Ok(Timeouts {
            connect: pick(&o.connect, &d.connect, "connect")?,
            client: pick(&o.client, &d.client, "client")?,
            server: pick(&o.server, &d.server, "server")?,
            tunnel: pick(&o.tunnel, &d.tunnel, "tunnel")?,
            client_fin: pick(&o.client_fin, &d.client_fin, "client-fin")?,
            server_fin: pick(&o.server_fin, &d.server_fin, "server-fin")?,
            queue: pick(&o.queue, &d.queue, "queue")?,
            check: pick(&o.check, &d.check, "check")?,
            http_request: pick(&o.http_request, &d.http_request, "http-request")?,
            http_keep_alive: pick(&o.http_keep_alive, &d.http_keep_alive, "http-keep-alive")?,
            tarpit: match pick(&o.tarpit, &d.tarpit, "tarpit")? {
                Some(t) => Some(t),
                None => pick(&o.connect, &d.connect, "connect")?,
            },
        })
    }

    /// `capture request|response header NAME len N` (HAProxy allows lengths
    /// up to 64 KiB; the log line cuts what it shows to its own limit).
    pub(super) fn captures(
        &self,
        p: &RawProxy,
        request: bool,
        ctx: &str,
    ) -> R<Vec<crate::http::capture::HeaderCapture>> {
        let list = p.capture.as_ref().and_then(|c| {
            if request {
                c.request.as_ref()
            } else {
                c.response.as_ref()
            }
        });
        let mut out = Vec::new();
        for c in list.into_iter().flatten() {
            let v = c.get_ref();
            if !(1..=65536).contains(&v.len) {
                return Err(self.err(c.span(), ctx, "capture: len must be between 1 and 65536"));
            }
            if v.header.is_empty() || !v.header.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
                return Err(self.err(c.span(), ctx, "capture: a header name is required"));
            }
            out.push(crate::http::capture::HeaderCapture {
                name: v.header.clone(),
                len: v.len as usize,
            });
        }
        Ok(out)
    }

    /// `option forwardfor` and its `header`, `except` and `if-none` (each
    /// taken from the section, else from the defaults).
    pub(super) fn forwardfor(
        &self,
        p: &RawProxy,
        ctx: &str,
    ) -> R<Option<crate::http::rewrite::ForwardFor>> {
        let d = &self.defaults;
        if !p.forwardfor.or(d.forwardfor).unwrap_or(false) {
            return Ok(None);
        }
        let mut ff = crate::http::rewrite::ForwardFor::default();
        if let Some(h) = p
            .forwardfor_header
            .as_ref()
            .or(d.forwardfor_header.as_ref())
        {
            let name = h.get_ref();
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
                return Err(self.err(h.span(), ctx, "forwardfor header: not a header name"));
            }
            ff.header = name.clone();
        }
        if let Some(e) = p
            .forwardfor_except
            .as_ref()
            .or(d.forwardfor_except.as_ref())
        {
            ff.except = Some(
                crate::http::rewrite::Network::parse(e.get_ref()).ok_or_else(|| {
                    self.err(
                        e.span(),
                        ctx,
                        format!(
                            "forwardfor except: '{}' is not an address or network",
                            e.get_ref()
                        ),
                    )
                })?,
            );
        }
        ff.if_none = p
            .forwardfor_if_none
            .or(d.forwardfor_if_none)
            .unwrap_or(false);
        Ok(Some(ff))
    }

    /// `errorfile` lines: the defaults' and the section's own (which win for
    /// the same code), each file read and checked now.
    pub(super) fn errorfiles(&self, p: &RawProxy, ctx: &str) -> R<ErrorFiles> {
        let mut all: BTreeMap<&String, &Spanned<String>> = BTreeMap::new();
        all.extend(self.defaults.errorfile.iter().flatten());
        all.extend(p.errorfile.iter().flatten());
        let mut out = ErrorFiles::default();
        for (code, path) in all {
            let f = super::errorfile::load(code, path.get_ref(), self.bufsize)
                .map_err(|m| self.err(path.span(), ctx, m))?;
            out.0.push(f);
        }
        Ok(out)
    }

    pub(super) fn mode(&self, p: &RawProxy, ctx: &str) -> R<Mode> {
        match p.mode.as_ref().or(self.defaults.mode.as_ref()) {
            None => Ok(Mode::Tcp),
            Some(m) => match m.get_ref().as_str() {
                "tcp" => Ok(Mode::Tcp),
                "http" => Ok(Mode::Http),
                other => Err(self.err(
                    span(m),
                    ctx,
                    format!("unknown mode \"{other}\" (tcp, http)"),
                )),
            },
        }
    }
}

fn mode_word(m: Mode) -> &'static str {
    match m {
        Mode::Tcp => "tcp",
        Mode::Http => "http",
    }
}

fn check_keys(loc: &Locator, p: &Spanned<RawProxy>, kind: Kind) -> R<()> {
    let name = p
        .get_ref()
        .name
        .as_ref()
        .map(|n| n.get_ref().as_str())
        .unwrap_or("");
    for key in present_keys(p.get_ref()) {
        if kind.forbidden().contains(&key) {
            let ctx = if kind == Kind::Defaults {
                "defaults".to_string()
            } else {
                format!("{} \"{name}\"", kind.word())
            };
            return Err(loc.error(
                p.span(),
                &ctx,
                format!("key `{key}` is not allowed in a {} section", kind.word()),
            ));
        }
    }
    if kind != Kind::Defaults && p.get_ref().name.is_none() {
        return Err(loc.error(p.span(), kind.word(), "section without `name`"));
    }
    Ok(())
}

pub fn resolve(raw: RawConfig, loc: &Locator, source: &Path) -> R<Config> {
    // Frontends and listens share one namespace, backends and listens another;
    // a name taken twice in one namespace is refused where it is taken again.
    let claim = |taken: &mut HashMap<String, usize>, p: &Spanned<RawProxy>, kind: Kind| -> R<()> {
        let name = p.get_ref().name.as_ref().expect("checked by check_keys");
        if let Some(first) = taken.get(name.get_ref()) {
            return Err(loc.error(
                name.span(),
                kind.word(),
                format!(
                    "duplicate name \"{}\" (first defined at line {first})",
                    name.get_ref()
                ),
            ));
        }
        taken.insert(name.get_ref().clone(), loc.position(name.span().start).0);
        Ok(())
    };
    let global = super::global::global(raw.global.as_ref().map(|g| g.get_ref()), loc)?;
    let (maxconn, global_log) = (global.maxconn, global.log.clone());
    if let Some(d) = &raw.defaults {
        check_keys(loc, d, Kind::Defaults)?;
    }
    for f in &raw.frontend {
        check_keys(loc, f, Kind::Frontend)?;
    }
    for b in &raw.backend {
        check_keys(loc, b, Kind::Backend)?;
    }
    for l in &raw.listen {
        check_keys(loc, l, Kind::Listen)?;
    }
    let r = Resolver {
        loc,
        defaults: raw
            .defaults
            .as_ref()
            .map(|d| d.get_ref().clone())
            .unwrap_or_default(),
        global_log: global_log.clone(),
        global_maxconn: maxconn,
        bufsize: global.tune.bufsize,
        ssl_lifetime: global.tune.ssl_lifetime,
    };
    // Backends first: frontends refer to them by name.
    let mut backend_names: HashMap<String, usize> = HashMap::new();
    let mut backend_lines: HashMap<String, usize> = HashMap::new();
    let mut backends = Vec::new();
    let mut listen_backend = Vec::new();
    for (kind, list) in [(Kind::Backend, &raw.backend), (Kind::Listen, &raw.listen)] {
        for p in list {
            claim(&mut backend_lines, p, kind)?;
            let name = p.get_ref().name.as_ref().expect("checked above");
            backend_names.insert(name.get_ref().clone(), backends.len());
            if kind == Kind::Listen {
                listen_backend.push(backends.len());
            }
            backends.push(r.backend(p, kind)?);
        }
    }
    let mut frontend_lines: HashMap<String, usize> = HashMap::new();
    let mut frontends = Vec::new();
    for (kind, list) in [(Kind::Frontend, &raw.frontend), (Kind::Listen, &raw.listen)] {
        for (i, p) in list.iter().enumerate() {
            claim(&mut frontend_lines, p, kind)?;
            let own = (kind == Kind::Listen).then(|| listen_backend[i]);
            let fe = r.frontend(p, kind, &backend_names, own)?;
            for b in fe
                .default_backend
                .iter()
                .chain(fe.use_backend.iter().map(|u| &u.backend))
            {
                if backends[*b].mode != fe.mode {
                    let at = p
                        .get_ref()
                        .default_backend
                        .as_ref()
                        .map(|d| d.span())
                        .unwrap_or(p.span());
                    return Err(loc.error(
                        at,
                        &format!("{} \"{}\"", kind.word(), fe.name),
                        format!(
                            "mode {} does not match backend \"{}\" in mode {}",
                            mode_word(fe.mode),
                            backends[*b].name,
                            mode_word(backends[*b].mode)
                        ),
                    ));
                }
            }
            frontends.push(fe);
        }
    }
    super::rules::compile(&raw, &mut frontends, &mut backends, loc)?;
    Ok(Config {
        source: source.to_path_buf(),
        global,
        frontends,
        backends,
    })
}
