//! From the raw schema to the resolved model (backends, servers and checks are in
//! `backend`): inheritance from `[defaults]` and
//! `default-server`, which keys each section kind may use, names resolved to
//! indexes, and every value checked. The first problem found is returned with its
//! position; nothing is half-resolved.

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use toml::Spanned;

use super::error::{ConfigError, Locator};
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
                "on-marked-down",
            ],
            Kind::Backend => &[
                "bind",
                "maxconn",
                "use-backend",
                "default-backend",
                "dontlognull",
                "stats",
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
    add(p.dontlognull.is_some(), "dontlognull");
    add(p.balance.is_some(), "balance");
    add(p.hash_type.is_some(), "hash-type");
    add(p.cookie.is_some(), "cookie");
    add(p.check.is_some(), "check");
    add(p.default_server.is_some(), "default-server");
    add(p.servers.is_some(), "servers");
    add(p.retries.is_some(), "retries");
    add(p.redispatch.is_some(), "redispatch");
    add(p.on_marked_down.is_some(), "on-marked-down");
    add(p.stats.is_some(), "stats");
    k
}

pub(super) struct Resolver<'a> {
    pub(super) loc: &'a Locator<'a>,
    pub(super) defaults: RawProxy,
    pub(super) global_log: Vec<LogTarget>,
    pub(super) global_maxconn: u32,
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

    fn log_targets(&self, list: &[RawLogTarget], at: Range<usize>, ctx: &str) -> R<Vec<LogTarget>> {
        list.iter()
            .map(|t| self.log_target(t, at.clone(), ctx))
            .collect()
    }

    fn log_target(&self, t: &RawLogTarget, at: Range<usize>, ctx: &str) -> R<LogTarget> {
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

    fn frontend(
        &self,
        p: &Spanned<RawProxy>,
        kind: Kind,
        backends: &HashMap<String, usize>,
        own_backend: Option<usize>,
    ) -> R<Frontend> {
        let raw = p.get_ref();
        let name = raw
            .name
            .as_ref()
            .map(|n| n.get_ref().clone())
            .unwrap_or_default();
        let ctx = format!("{} \"{name}\"", kind.word());
        let mode = self.mode(raw, &ctx)?;
        let maxconn = match raw.maxconn.as_ref().or(self.defaults.maxconn.as_ref()) {
            Some(v) => self.int(v, &ctx, "maxconn", 0, 10_000_000)?,
            None => 0,
        };
        let binds_raw = raw
            .bind
            .as_ref()
            .filter(|b| !b.is_empty())
            .ok_or_else(|| self.err(span(p), &ctx, "no bind address (bind = [\"*:PORT\"])"))?;
        let mut binds = Vec::new();
        for b in binds_raw {
            let (addr, backlog, accept_proxy, ssl) = match b.get_ref() {
                RawBind::Address(a) => (a.clone(), None, false, None),
                RawBind::Table(t) => (
                    t.address.clone(),
                    t.backlog,
                    t.accept_proxy.unwrap_or(false),
                    t.ssl.as_ref(),
                ),
            };
            let tls = match ssl {
                None => None,
                Some(t) => {
                    let built = crate::tls::options(t).and_then(crate::tls::build);
                    Some(std::sync::Arc::new(built.map_err(|m| {
                        self.err(span(b), &ctx, format!("bind {addr}: {m}"))
                    })?))
                }
            };
            if accept_proxy {
                return Err(self.err(
                    span(b),
                    &ctx,
                    "bind accept-proxy: the PROXY protocol is not supported yet",
                ));
            }
            let addr = values::address(&addr)
                .map_err(|m| self.err(span(b), &ctx, format!("bind: {m}")))?;
            let backlog = match backlog {
                Some(n) if n > 0 && n <= i32::MAX as i64 => n as u32,
                Some(n) => {
                    return Err(self.err(
                        span(b),
                        &ctx,
                        format!("bind backlog {n} out of range 1-{}", i32::MAX),
                    ))
                }
                None if maxconn > 0 => maxconn,
                None => self.global_maxconn,
            };
            binds.push(Bind {
                addr,
                backlog,
                accept_proxy,
                tls,
            });
        }
        let lookup = |n: &Spanned<String>, key: &str| -> R<usize> {
            backends.get(n.get_ref()).copied().ok_or_else(|| {
                let msg = if n.get_ref().contains("%[") {
                    format!(
                        "{key} \"{}\": a backend name computed per request (log-format) is not supported; name the backend and use a condition",
                        n.get_ref()
                    )
                } else {
                    format!("{key} \"{}\" does not exist", n.get_ref())
                };
                self.err(span(n), &ctx, msg)
            })
        };
        let default_backend = match raw
            .default_backend
            .as_ref()
            .or(self.defaults.default_backend.as_ref())
        {
            Some(n) => Some(lookup(n, "default-backend")?),
            None => own_backend,
        };
        let mut use_backend = Vec::new();
        for u in raw.use_backend.iter().flatten() {
            let backend = lookup(&u.backend, "use-backend")?;
            let (condition, negate) = match (&u.if_, &u.unless) {
                (Some(c), None) => (c.clone(), false),
                (None, Some(c)) => (c.clone(), true),
                _ => {
                    return Err(self.err(
                        span(&u.backend),
                        &ctx,
                        "use-backend needs exactly one of `if` or `unless`",
                    ))
                }
            };
            use_backend.push(UseBackend {
                backend,
                condition: condition.into_inner(),
                negate,
            });
        }
        let log = match raw.log.as_ref().or(self.defaults.log.as_ref()) {
            None => Vec::new(),
            Some(l) => match l.get_ref() {
                RawProxyLog::Word(w) if w == "global" => self.global_log.clone(),
                RawProxyLog::Word(w) => {
                    return Err(self.err(
                        span(l),
                        &ctx,
                        format!("log: expected \"global\" or a list of targets, got \"{w}\""),
                    ))
                }
                RawProxyLog::Targets(t) => self.log_targets(t, span(l), &ctx)?,
            },
        };
        let log_format = match raw
            .log_format
            .as_ref()
            .or(self.defaults.log_format.as_ref())
        {
            None => match mode {
                Mode::Tcp => LogFormat::Tcp,
                Mode::Http => LogFormat::Http,
            },
            Some(f) => match f.get_ref().as_str() {
                "tcplog" => LogFormat::Tcp,
                "httplog" => LogFormat::Http,
                other => {
                    return Err(self.err(
                        span(f),
                        &ctx,
                        format!("unknown log-format \"{other}\" (tcplog, httplog)"),
                    ))
                }
            },
        };
        let flag = |own: Option<bool>, def: Option<bool>| own.or(def).unwrap_or(false);
        Ok(Frontend {
            name,
            binds,
            mode,
            maxconn,
            default_backend,
            use_backend,
            acl: raw
                .acl
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.get_ref().clone()))
                .collect(),
            timeouts: self.timeouts(raw.timeout.as_ref(), &ctx)?,
            log,
            log_format,
            dontlognull: flag(raw.dontlognull, self.defaults.dontlognull),
            disabled: raw.disabled.unwrap_or(false),
            forwardfor: flag(raw.forwardfor, self.defaults.forwardfor),
            http_keep_alive: flag(raw.http_keep_alive, self.defaults.http_keep_alive),
            httpclose: flag(raw.httpclose, self.defaults.httpclose),
            http_request: strings(&raw.http_request),
            http_response: strings(&raw.http_response),
            rules: Rules::default(),
            stats: match &raw.stats {
                None => None,
                Some(st) => Some(StatsSpec {
                    uri: st.uri.clone().unwrap_or_else(|| "/haproxy?stats".into()),
                    refresh: st
                        .refresh
                        .as_ref()
                        .map(|r| self.dur(r, &ctx, "stats refresh"))
                        .transpose()?,
                    realm: st.realm.clone(),
                    auth: st.auth.clone().unwrap_or_default(),
                    admin: st.admin.clone(),
                    hide_version: st.hide_version.unwrap_or(false),
                }),
            },
        })
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
    let g = raw.global.as_ref().map(|g| g.get_ref());
    let gctx = "global";
    let int = |v: &Spanned<i64>, key: &str, min: i64, max: i64| -> R<u32> {
        let n = *v.get_ref();
        if n < min || n > max {
            return Err(loc.error(
                v.span(),
                gctx,
                format!("{key} {n} out of range {min}-{max}"),
            ));
        }
        Ok(n as u32)
    };
    let maxconn = match g.and_then(|g| g.maxconn.as_ref()) {
        Some(v) => int(v, "maxconn", 1, 10_000_000)?,
        None => 4096,
    };
    let shards = match g.and_then(|g| g.shards.as_ref()) {
        None => None,
        Some(s) => match s.get_ref() {
            RawShards::Word(w) if w == "auto" => None,
            RawShards::Count(n) if (1..=64).contains(n) => Some(*n as usize),
            _ => {
                return Err(loc.error(
                    s.span(),
                    gctx,
                    "shards: expected \"auto\" or a number from 1 to 64",
                ))
            }
        },
    };
    let mut tune = Tune::default();
    if let Some(t) = g.and_then(|g| g.tune.as_ref()) {
        if let Some(v) = &t.pipesize {
            tune.pipesize = int(v, "tune pipesize", 4096, 1 << 30)? as usize;
        }
        if let Some(v) = &t.maxpipes {
            tune.maxpipes = int(v, "tune maxpipes", 0, 10_000_000)? as usize;
        }
        if let Some(v) = &t.bufsize {
            tune.bufsize = int(v, "tune bufsize", 1024, 1 << 26)? as usize;
        }
        if let Some(s) = t.splice {
            tune.splice = s;
        }
        if let Some(s) = t.ring_copy {
            tune.ring_copy = s;
        }
        if let Some(v) = &t.ring_buffers {
            let n = int(v, "tune ring-buffers", 16, 32768)?;
            if !n.is_power_of_two() {
                return Err(loc.error(
                    span(v),
                    "global",
                    format!("tune ring-buffers {n} must be a power of two"),
                ));
            }
            tune.ring_buffers = n as u16;
        }
    }
    let global_log = match g.and_then(|g| g.log.as_ref()) {
        None => Vec::new(),
        Some(list) => {
            let mut out = Vec::new();
            for t in list {
                let r = Resolver {
                    loc,
                    defaults: RawProxy::default(),
                    global_log: Vec::new(),
                    global_maxconn: maxconn,
                };
                out.push(r.log_target(t.get_ref(), t.span(), gctx)?);
            }
            out
        }
    };
    let hard_stop_after = match g.and_then(|g| g.hard_stop_after.as_ref()) {
        Some(v) => Some(
            values::duration(v.get_ref())
                .map_err(|m| loc.error(v.span(), gctx, format!("hard-stop-after: {m}")))?,
        ),
        None => None,
    };
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
    let gl = g.cloned_fields();
    Ok(Config {
        source: source.to_path_buf(),
        global: Global {
            maxconn,
            shards,
            pidfile: gl.pidfile.map(Into::into),
            daemon: gl.daemon,
            user: gl.user,
            group: gl.group,
            log: global_log,
            hard_stop_after,
            admin_socket: gl.admin_socket.map(Into::into),
            tune,
        },
        frontends,
        backends,
    })
}

/// The plain (position-free) global keys.
struct GlobalFields {
    pidfile: Option<String>,
    daemon: bool,
    user: Option<String>,
    group: Option<String>,
    admin_socket: Option<String>,
}

trait ClonedFields {
    fn cloned_fields(&self) -> GlobalFields;
}

impl ClonedFields for Option<&RawGlobal> {
    fn cloned_fields(&self) -> GlobalFields {
        GlobalFields {
            pidfile: self.and_then(|g| g.pidfile.clone()),
            daemon: self.and_then(|g| g.daemon).unwrap_or(false),
            user: self.and_then(|g| g.user.clone()),
            group: self.and_then(|g| g.group.clone()),
            admin_socket: self.and_then(|g| g.admin_socket.clone()),
        }
    }
}
