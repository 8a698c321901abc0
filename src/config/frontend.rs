//! Resolving a `[[frontend]]` (or the frontend half of a `[[listen]]`): binds,
//! limits, the backend it routes to (names resolved to indexes), timeouts, logs,
//! options and the stats page, each value checked with its position.

use std::collections::HashMap;

use toml::Spanned;

use super::model::*;
use super::resolve::{span, strings, Kind, Resolver, R};
use super::schema::*;
use super::values;

impl Resolver<'_> {
    pub(super) fn frontend(
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
            let (freebind, transparent) = match b.get_ref() {
                RawBind::Address(_) => (false, false),
                RawBind::Table(t) => (t.freebind.unwrap_or(false), t.transparent.unwrap_or(false)),
            };
            let tls = match ssl {
                None => None,
                Some(t) => {
                    let built = crate::tls::options(t).and_then(|mut o| {
                        o.ticket_lifetime = self.ssl_lifetime;
                        crate::tls::build(o)
                    });
                    Some(std::sync::Arc::new(built.map_err(|m| {
                        self.err(span(b), &ctx, format!("bind {addr}: {m}"))
                    })?))
                }
            };
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
                freebind,
                transparent,
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
                other => match crate::log::LogFormat::parse(other) {
                    Ok(f) => LogFormat::Custom(std::sync::Arc::new(f)),
                    Err(e) => return Err(self.err(span(f), &ctx, format!("log-format: {e}"))),
                },
            },
        };
        let tcp = raw.tcp_request.as_ref();
        if let (Some(t), Mode::Http) = (tcp, mode) {
            return Err(self.err(
                span(t),
                &ctx,
                "tcp-request: supported in mode tcp only (in mode http, use http-request rules)",
            ));
        }
        let tcp_inspect_delay = match tcp.and_then(|t| t.get_ref().inspect_delay.as_ref()) {
            Some(d) => Some(self.dur(d, &ctx, "tcp-request inspect-delay")?),
            None => None,
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
            forwardfor: self.forwardfor(raw, &ctx)?,
            http_keep_alive: flag(raw.http_keep_alive, self.defaults.http_keep_alive),
            httpclose: flag(raw.httpclose, self.defaults.httpclose),
            http_server_close: flag(raw.http_server_close, self.defaults.http_server_close),
            errorfiles: self.errorfiles(raw, &ctx)?,
            request_captures: self.captures(raw, true, &ctx)?,
            response_captures: self.captures(raw, false, &ctx)?,
            http_request: strings(&raw.http_request),
            http_response: strings(&raw.http_response),
            tcp_inspect_delay: tcp_inspect_delay.filter(|d| !d.is_zero()),
            tcp_content: strings(&tcp.and_then(|t| t.get_ref().content.clone())),
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
                    admin: st.admin.clone().or_else(|| st.admin_unless.clone()),
                    admin_negate: st.admin.is_none() && st.admin_unless.is_some(),
                    hide_version: st.hide_version.unwrap_or(false),
                }),
            },
        })
    }
}
