//! Backend sections: balance, cookies, health-check specs (`check = {...}` and
//! tcp-check steps), and servers with `default-server` inheritance. Part of the
//! resolver; every refusal carries the position of the offending value.

use std::collections::HashMap;
use std::time::Duration;

use toml::Spanned;

use super::model::*;
use super::resolve::{span, strings, Kind, Resolver, R};
use super::schema::*;
use super::values;

impl Resolver<'_> {
    fn check_spec(&self, own: Option<&RawCheck>, ctx: &str) -> R<CheckSpec> {
        let d = self.defaults.check.clone().unwrap_or_default();
        let o = own.cloned().unwrap_or_default();
        let ty = o.type_.as_ref().or(d.type_.as_ref());
        let method = o.method.or(d.method).unwrap_or_else(|| "OPTIONS".into());
        let uri = o.uri.or(d.uri).unwrap_or_else(|| "/".into());
        let version = o.version.or(d.version).unwrap_or_else(|| "HTTP/1.0".into());
        let host = o.host.or(d.host);
        let expect = o.expect.as_ref().or(d.expect.as_ref());
        let user = o.user.or(d.user);
        let steps = o.steps.as_ref().or(d.steps.as_ref());
        let Some(ty) = ty else {
            return Ok(CheckSpec::Tcp);
        };
        let at = span(ty);
        Ok(match ty.get_ref().as_str() {
            "tcp" => CheckSpec::Tcp,
            "http" => {
                let expect = match expect {
                    None => HttpExpect::Status2xx3xx,
                    Some(e) => {
                        let text = e.get_ref().trim();
                        let (word, arg) = text
                            .split_once(' ')
                            .map(|(w, a)| (w, a.trim()))
                            .unwrap_or((text, ""));
                        match word {
                            "status" => HttpExpect::Status(arg.parse().ok().filter(|c| (100..=599).contains(c)).ok_or_else(|| self.err(span(e), ctx, format!("check expect: invalid status \"{arg}\"")))?),
                            "rstatus" if !arg.is_empty() => HttpExpect::RStatus(Pattern::new(arg).map_err(|m| self.err(span(e), ctx, format!("check expect: {m}")))?),
                            "string" if !arg.is_empty() => HttpExpect::String(arg.into()),
                            _ => return Err(self.err(span(e), ctx, format!("check expect: expected \"status N\", \"rstatus REGEX\" or \"string TEXT\", got \"{text}\""))),
                        }
                    }
                };
                CheckSpec::Http {
                    method,
                    uri,
                    version,
                    host,
                    expect,
                }
            }
            "redis" => CheckSpec::Redis,
            "pgsql" => CheckSpec::Pgsql {
                user: user.ok_or_else(|| {
                    self.err(at.clone(), ctx, "check type \"pgsql\" needs `user`")
                })?,
            },
            "mysql" => CheckSpec::Mysql { user },
            "tcp-check" => {
                let steps = steps.ok_or_else(|| {
                    self.err(at.clone(), ctx, "check type \"tcp-check\" needs `steps`")
                })?;
                let mut out = Vec::new();
                for s in steps {
                    out.push(self.tcp_step(s, ctx)?);
                }
                CheckSpec::TcpCheck { steps: out }
            }
            other => {
                return Err(self.err(
                    at,
                    ctx,
                    format!(
                    "unknown check type \"{other}\" (tcp, http, redis, pgsql, mysql, tcp-check)"
                ),
                ))
            }
        })
    }

    fn tcp_step(&self, s: &Spanned<RawCheckStep>, ctx: &str) -> R<TcpCheckStep> {
        let r = s.get_ref();
        let e = |m: String| self.err(span(s), ctx, format!("tcp-check step: {m}"));
        let set = [
            r.connect.is_some(),
            r.send.is_some(),
            r.send_binary.is_some(),
            r.expect.is_some(),
        ];
        if set.iter().filter(|&&b| b).count() != 1 {
            return Err(e(
                "needs exactly one of connect, send, send-binary, expect".into()
            ));
        }
        if r.connect.is_some() {
            return Ok(TcpCheckStep::Connect);
        }
        if let Some(t) = &r.send {
            return values::unescape(t).map(TcpCheckStep::Send).map_err(e);
        }
        if let Some(t) = &r.send_binary {
            return values::hex(t).map(TcpCheckStep::SendBinary).map_err(e);
        }
        let text = r.expect.as_deref().unwrap_or("").trim();
        let (word, arg) = text
            .split_once(' ')
            .map(|(w, a)| (w, a.trim()))
            .unwrap_or((text, ""));
        match word {
            "string" if !arg.is_empty() => Ok(TcpCheckStep::ExpectString(arg.into())),
            "rstring" if !arg.is_empty() => Pattern::new(arg)
                .map(TcpCheckStep::ExpectRString)
                .map_err(|m| e(format!("expect: {m}"))),
            "binary" => values::hex(arg).map(TcpCheckStep::ExpectBinary).map_err(e),
            _ => Err(e(format!("expect: expected \"string TEXT\", \"rstring REGEX\" or \"binary HEX\", got \"{text}\""))),
        }
    }

    /// `on-marked-down`: `shutdown-sessions` or `nothing`.
    fn on_marked_down(&self, o: &Spanned<String>, ctx: &str) -> R<OnMarkedDown> {
        match o.get_ref().as_str() {
            "shutdown-sessions" => Ok(OnMarkedDown::ShutdownSessions),
            "nothing" => Ok(OnMarkedDown::Nothing),
            other => Err(self.err(
                span(o),
                ctx,
                format!("unknown on-marked-down \"{other}\" (shutdown-sessions)"),
            )),
        }
    }

    /// `on-marked-up shutdown-backup-sessions`: whether it is set.
    fn on_marked_up(&self, o: &Spanned<String>, ctx: &str) -> R<bool> {
        if o.get_ref() == "shutdown-backup-sessions" {
            return Ok(true);
        }
        Err(self.err(
            span(o),
            ctx,
            format!(
                "unknown on-marked-up \"{}\" (shutdown-backup-sessions)",
                o.get_ref()
            ),
        ))
    }

    fn server(
        &self,
        s: &Spanned<RawServer>,
        base: &RawServer,
        marked: Marked,
        ctx: &str,
    ) -> R<Server> {
        let r = merge_server(base, s.get_ref());
        let name = r
            .name
            .as_ref()
            .ok_or_else(|| self.err(span(s), ctx, "server without `name`"))?;
        let sctx = format!("{ctx}: server \"{}\"", name.get_ref());
        let addr_raw = r
            .address
            .as_ref()
            .ok_or_else(|| self.err(span(s), &sctx, "server without `address`"))?;
        let addr =
            values::address(addr_raw.get_ref()).map_err(|m| self.err(span(addr_raw), &sctx, m))?;
        let int = |v: &Option<Spanned<i64>>, key: &str, min: i64, max: i64, def: u32| -> R<u32> {
            match v {
                Some(v) => self.int(v, &sctx, key, min, max),
                None => Ok(def),
            }
        };
        let dur = |v: &Option<Spanned<RawDuration>>, key: &str| -> R<Option<Duration>> {
            v.as_ref().map(|v| self.dur(v, &sctx, key)).transpose()
        };
        let inter = dur(&r.inter, "inter")?.unwrap_or(Duration::from_secs(2));
        let send_proxy = match r.send_proxy.as_ref() {
            None => None,
            Some(sp) => match sp.get_ref().as_str() {
                "v1" | "1" => Some(ProxyProtocol::V1),
                "v2" | "2" => Some(ProxyProtocol::V2),
                other => {
                    return Err(self.err(
                        span(sp),
                        &sctx,
                        format!(
                            "send-proxy: expected \"v1\" or \"v2\", got \"{}\"",
                            values::excerpt(other)
                        ),
                    ))
                }
            },
        };
        let ssl = if r.ssl == Some(true) {
            let text = |v: &Option<Spanned<String>>| v.as_ref().map(|v| v.get_ref().clone());
            let opts = crate::tls::ClientOptions {
                verify: text(&r.verify),
                ca_file: text(&r.ca_file),
                crl_file: text(&r.crl_file),
                sni: text(&r.sni),
                verifyhost: text(&r.verifyhost),
                crt: text(&r.crt),
            };
            // An error about a file points at that file's word.
            let at = |m: &str| {
                let file = [("crl-file ", &r.crl_file), ("crt ", &r.crt)]
                    .into_iter()
                    .find(|(k, _)| m.starts_with(k))
                    .and_then(|(_, v)| v.as_ref());
                file.or(r.verify.as_ref())
                    .or(r.ca_file.as_ref())
                    .or(r.sni.as_ref())
                    .or(r.crt.as_ref())
                    .map_or_else(|| span(s), span)
            };
            Some(std::sync::Arc::new(
                crate::tls::build_client(opts).map_err(|m| self.err(at(&m), &sctx, m))?,
            ))
        } else {
            None
        };
        // Checks go over TLS with `check-ssl`, and by default for an `ssl`
        // server checked on its own address (HAProxy: a check `port` or
        // `addr` needs `check-ssl` to keep TLS).
        let check_tls = match r.check_ssl {
            Some(true) => match &ssl {
                Some(t) => Some(t.clone()),
                None => {
                    let text =
                        |v: &Option<Spanned<String>>| v.as_ref().map(|v| v.get_ref().clone());
                    let opts = crate::tls::ClientOptions {
                        verify: text(&r.verify),
                        ca_file: text(&r.ca_file),
                        crl_file: text(&r.crl_file),
                        sni: text(&r.sni),
                        verifyhost: text(&r.verifyhost),
                        crt: text(&r.crt),
                    };
                    Some(std::sync::Arc::new(
                        crate::tls::build_client(opts).map_err(|m| self.err(span(s), &sctx, m))?,
                    ))
                }
            },
            Some(false) => None,
            None if r.port.is_none() && r.addr.is_none() => ssl.clone(),
            None => None,
        };
        Ok(Server {
            name: name.get_ref().clone(),
            addr,
            weight: int(&r.weight, "weight", 0, 256, 1)?,
            maxconn: int(&r.maxconn, "maxconn", 0, 10_000_000, 0)?,
            maxqueue: int(&r.maxqueue, "maxqueue", 0, 10_000_000, 0)?,
            check: r.check.unwrap_or(false),
            inter,
            fastinter: dur(&r.fastinter, "fastinter")?.unwrap_or(inter),
            downinter: dur(&r.downinter, "downinter")?.unwrap_or(inter),
            rise: int(&r.rise, "rise", 1, 1000, 2)?,
            fall: int(&r.fall, "fall", 1, 1000, 3)?,
            check_port: r
                .port
                .as_ref()
                .map(|p| self.int(p, &sctx, "port", 1, 65535).map(|p| p as u16))
                .transpose()?,
            check_addr: r
                .addr
                .as_ref()
                .map(|a| {
                    a.get_ref().parse().map_err(|_| {
                        self.err(
                            span(a),
                            &sctx,
                            format!("addr: invalid IP address \"{}\"", a.get_ref()),
                        )
                    })
                })
                .transpose()?,
            backup: r.backup.unwrap_or(false),
            disabled: r.disabled.unwrap_or(false),
            cookie: r.cookie.clone(),
            send_proxy,
            ssl,
            check_tls,
            slowstart: dur(&r.slowstart, "slowstart")?,
            saved: None,
            pool_max_conn: match &r.pool_max_conn {
                Some(v) if *v.get_ref() >= 0 => Some(PoolMax::Max(self.int(
                    v,
                    &sctx,
                    "pool-max-conn",
                    -1,
                    10_000_000,
                )?)),
                Some(v) => {
                    self.int(v, &sctx, "pool-max-conn", -1, 10_000_000)?;
                    Some(PoolMax::Unlimited)
                }
                None => None,
            },
            pool_purge_delay: dur(&r.pool_purge_delay, "pool-purge-delay")?
                .unwrap_or(Duration::from_secs(5)),
            pool_low_conn: int(&r.pool_low_conn, "pool-low-conn", 0, 10_000_000, 0)?,
            on_marked_down: match &r.on_marked_down {
                Some(o) => self.on_marked_down(o, &sctx)?,
                None => marked.down,
            },
            shutdown_backup_sessions: match &r.on_marked_up {
                Some(o) => self.on_marked_up(o, &sctx)?,
                None => marked.up_kills_backups,
            },
        })
    }

    pub(super) fn backend(&self, p: &Spanned<RawProxy>, kind: Kind) -> R<Backend> {
        let raw = p.get_ref();
        let name = raw
            .name
            .as_ref()
            .map(|n| n.get_ref().clone())
            .unwrap_or_default();
        let ctx = format!("{} \"{name}\"", kind.word());
        let (balance, balance_arg, balance_opts) =
            match raw.balance.as_ref().or(self.defaults.balance.as_ref()) {
                None => (Balance::RoundRobin, None, BalanceOptions::default()),
                Some(b) => parse_balance(b.get_ref()).map_err(|m| self.err(span(b), &ctx, m))?,
            };
        let hash_type = match raw.hash_type.as_ref().or(self.defaults.hash_type.as_ref()) {
            None => HashType::MapBased,
            Some(h) => match h.get_ref().as_str() {
                "map-based" => HashType::MapBased,
                "consistent" => HashType::Consistent,
                other => {
                    return Err(self.err(
                        span(h),
                        &ctx,
                        format!("unknown hash-type \"{other}\" (map-based, consistent)"),
                    ))
                }
            },
        };
        // The backend's (or defaults') choice; a server's own key wins.
        let marked = Marked {
            down: match raw
                .on_marked_down
                .as_ref()
                .or(self.defaults.on_marked_down.as_ref())
            {
                None => OnMarkedDown::Nothing,
                Some(o) => self.on_marked_down(o, &ctx)?,
            },
            up_kills_backups: match raw
                .on_marked_up
                .as_ref()
                .or(self.defaults.on_marked_up.as_ref())
            {
                None => false,
                Some(o) => self.on_marked_up(o, &ctx)?,
            },
        };
        let load_server_state = match raw
            .load_server_state_from_file
            .as_ref()
            .or(self.defaults.load_server_state_from_file.as_ref())
        {
            None => false,
            Some(o) => match o.get_ref().as_str() {
                "global" => true,
                "none" => false,
                other => {
                    return Err(self.err(
                        span(o),
                        &ctx,
                        format!(
                            "load-server-state-from-file \"{other}\": only global and none \
                             are supported (local with server-state-file-name is not)"
                        ),
                    ))
                }
            },
        };
        let http_reuse = match raw
            .http_reuse
            .as_ref()
            .or(self.defaults.http_reuse.as_ref())
        {
            None => HttpReuse::Safe,
            Some(o) => match o.get_ref().as_str() {
                "never" => HttpReuse::Never,
                "safe" => HttpReuse::Safe,
                "aggressive" | "always" => HttpReuse::Always,
                other => {
                    return Err(self.err(
                        span(o),
                        &ctx,
                        format!("unknown http-reuse \"{other}\" (never, safe, aggressive, always)"),
                    ))
                }
            },
        };
        let cookie = match raw.cookie.as_ref().or(self.defaults.cookie.as_ref()) {
            None => None,
            Some(c) => {
                let mode = match &c.mode {
                    None => "insert".to_string(),
                    Some(m) if ["insert", "rewrite", "prefix"].contains(&m.get_ref().as_str()) => {
                        m.get_ref().clone()
                    }
                    Some(m) => {
                        return Err(self.err(
                            span(m),
                            &ctx,
                            format!("cookie mode \"{}\" (insert, rewrite, prefix)", m.get_ref()),
                        ))
                    }
                };
                Some(CookieSpec {
                    name: c.name.clone(),
                    mode,
                    indirect: c.indirect.unwrap_or(false),
                    nocache: c.nocache.unwrap_or(false),
                    postonly: c.postonly.unwrap_or(false),
                    preserve: c.preserve.unwrap_or(false),
                    httponly: c.httponly.unwrap_or(false),
                    secure: c.secure.unwrap_or(false),
                    domain: c.domain.clone(),
                    maxidle: c
                        .maxidle
                        .as_ref()
                        .map(|d| self.dur(d, &ctx, "cookie maxidle"))
                        .transpose()?,
                    maxlife: c
                        .maxlife
                        .as_ref()
                        .map(|d| self.dur(d, &ctx, "cookie maxlife"))
                        .transpose()?,
                })
            }
        };
        let base = merge_server(
            &self.defaults.default_server.clone().unwrap_or_default(),
            &raw.default_server.clone().unwrap_or_default(),
        );
        let mut servers = Vec::new();
        let mut seen: HashMap<String, ()> = HashMap::new();
        for s in raw.servers.iter().flatten() {
            let srv = self.server(s, &base, marked, &ctx)?;
            if seen.insert(srv.name.clone(), ()).is_some() {
                let at = s.get_ref().name.as_ref().map(span).unwrap_or(span(s));
                return Err(self.err(at, &ctx, format!("duplicate server name \"{}\"", srv.name)));
            }
            servers.push(srv);
        }
        let retries = match raw.retries.as_ref().or(self.defaults.retries.as_ref()) {
            Some(v) => self.int(v, &ctx, "retries", 0, 100)?,
            None => 3,
        };
        Ok(Backend {
            name,
            mode: self.mode(raw, &ctx)?,
            balance,
            balance_arg,
            balance_opts,
            hash_type,
            servers,
            timeouts: self.timeouts(raw.timeout.as_ref(), &ctx)?,
            retries,
            redispatch: raw.redispatch.or(self.defaults.redispatch).unwrap_or(false),
            persist: raw.persist.or(self.defaults.persist).unwrap_or(false),
            check: self.check_spec(raw.check.as_ref(), &ctx)?,
            http_reuse,
            load_server_state,
            disabled: raw.disabled.unwrap_or(false),
            cookie,
            errorfiles: self.errorfiles(raw, &ctx)?,
            forwardfor: self.forwardfor(raw, &ctx)?,
            http_request: strings(&raw.http_request),
            http_response: strings(&raw.http_response),
            rules: Rules::default(),
        })
    }
}

/// `balance ALGO [options]`: the algorithm, its argument (`url_param(NAME)`,
/// `hdr(NAME)`) and the options HAProxy takes after it (`uri`: `len N`,
/// `depth N`, `whole`, `path-only`; `hdr`: `use_domain_only`).
fn parse_balance(s: &str) -> Result<(Balance, Option<String>, BalanceOptions), String> {
    let mut words = s.split_whitespace();
    let algo = words.next().unwrap_or("");
    let arg = |prefix: &str| {
        algo.strip_prefix(prefix)
            .and_then(|r| r.strip_suffix(')'))
            .filter(|a| !a.is_empty())
            .map(str::to_string)
    };
    let unknown = || {
        format!(
            "unknown balance \"{s}\" (roundrobin, static-rr, leastconn, first, source, random, \
             uri, url_param(NAME), hdr(NAME))"
        )
    };
    let (balance, name) = match algo {
        "roundrobin" => (Balance::RoundRobin, None),
        "static-rr" => (Balance::StaticRr, None),
        "leastconn" => (Balance::LeastConn, None),
        "first" => (Balance::First, None),
        "source" => (Balance::Source, None),
        "random" => (Balance::Random, None),
        "uri" => (Balance::Uri, None),
        _ if algo.starts_with("url_param(") => (
            Balance::UrlParam,
            Some(arg("url_param(").ok_or_else(unknown)?),
        ),
        _ if algo.starts_with("hdr(") => (Balance::Hdr, Some(arg("hdr(").ok_or_else(unknown)?)),
        _ => return Err(unknown()),
    };
    let mut opts = BalanceOptions::default();
    let rest: Vec<&str> = words.collect();
    let mut i = 0;
    while i < rest.len() {
        let num = |i: usize| -> Result<usize, String> {
            rest.get(i + 1)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("balance {algo}: {} needs a number", rest[i]))
        };
        match (balance, rest[i]) {
            (Balance::Uri, "len") => {
                opts.uri.len = num(i)?;
                i += 1;
            }
            (Balance::Uri, "depth") => {
                opts.uri.depth = num(i)?;
                i += 1;
            }
            (Balance::Uri, "whole") => opts.uri.whole = true,
            (Balance::Uri, "path-only") => opts.uri.path_only = true,
            (Balance::Hdr, "use_domain_only") => opts.use_domain_only = true,
            (_, other) => return Err(format!("balance {algo}: unknown option \"{other}\"")),
        }
        i += 1;
    }
    Ok((balance, name, opts))
}

/// `over`'s keys win over `base`'s, one by one.
/// What a backend says servers do when marked DOWN or UP (HAProxy's server
/// options, given here to all servers of the backend; a server may override).
#[derive(Clone, Copy)]
struct Marked {
    down: OnMarkedDown,
    up_kills_backups: bool,
}

pub(super) fn merge_server(base: &RawServer, over: &RawServer) -> RawServer {
    macro_rules! m {
        ($($f:ident),*) => { RawServer { $($f: over.$f.clone().or_else(|| base.$f.clone()),)* } };
    }
    m!(
        name,
        address,
        weight,
        maxconn,
        maxqueue,
        check,
        inter,
        fastinter,
        downinter,
        rise,
        fall,
        port,
        addr,
        backup,
        disabled,
        cookie,
        send_proxy,
        ssl,
        check_ssl,
        verify,
        ca_file,
        crl_file,
        sni,
        verifyhost,
        crt,
        slowstart,
        pool_max_conn,
        pool_purge_delay,
        pool_low_conn,
        on_marked_down,
        on_marked_up
    )
}
