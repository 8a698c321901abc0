//! Compiles every section's `acl`, `use-backend`, `http-request` and
//! `http-response` strings (and the `userlist`s they use) with
//! `http::acl`/`http::rules`, so a bad fetch, regex, undefined ACL or a rule
//! in the wrong direction is refused at load with `FILE:LINE:COL` pointing
//! into the string.

use std::sync::Arc;

use toml::Spanned;

use super::error::Locator;
use super::model::{Backend, Frontend, Rules};
use super::resolve::R;
use super::schema::{RawConfig, RawProxy};
use crate::http::acl::{Env, Error, Userlist};
use crate::http::rules::{compile_section, Item};

fn err_at(loc: &Locator, s: &Spanned<String>, e: &Error, ctx: &str) -> super::ConfigError {
    let at = loc.string_offset(s.span(), s.get_ref(), e.at);
    loc.error(at..at, ctx, e.msg.clone())
}

/// Where byte `at` of an ACL's text is in the source: through the spans of
/// its words when haproxy.cfg recorded them (an ACL defined over several
/// lines), else as for any string.
fn acl_offset(loc: &Locator, p: &RawProxy, name: &str, s: &Spanned<String>, at: usize) -> usize {
    if let Some(spans) = p.acl_words.get(name) {
        let toks = crate::http::acl::tokenize(s.get_ref()).unwrap_or_default();
        if toks.len() == spans.len() {
            if let Some(i) = toks.iter().rposition(|t| t.at <= at) {
                let w = &spans[i];
                let inner = (at - toks[i].at + toks[i].quoted as usize).min(w.len());
                return w.start + inner;
            }
        }
    }
    loc.string_offset(s.span(), s.get_ref(), at)
}

struct Section<'a> {
    raw: &'a RawProxy,
    acls: Vec<(&'a String, &'a Spanned<String>)>,
    routes: Vec<&'a Spanned<String>>,
    request: Vec<&'a Spanned<String>>,
    response: Vec<&'a Spanned<String>>,
    tcp: Vec<&'a Spanned<String>>,
}

fn section(p: &RawProxy, with_routes: bool) -> Section<'_> {
    Section {
        raw: p,
        acls: p.acl.iter().flatten().collect(),
        routes: if with_routes {
            p.use_backend
                .iter()
                .flatten()
                .filter_map(|u| u.if_.as_ref().or(u.unless.as_ref()))
                .collect()
        } else {
            Vec::new()
        },
        request: p.http_request.iter().flatten().collect(),
        response: p.http_response.iter().flatten().collect(),
        tcp: p
            .tcp_request
            .iter()
            .flat_map(|t| t.get_ref().content.iter().flatten())
            .collect(),
    }
}

fn build(
    loc: &Locator,
    ctx: &str,
    name: &str,
    s: &Section,
    routes: &[(usize, String, bool)],
    default_backend: Option<usize>,
    env: &mut Env,
) -> R<Rules> {
    if s.acls.is_empty()
        && routes.is_empty()
        && s.request.is_empty()
        && s.response.is_empty()
        && s.tcp.is_empty()
    {
        return Ok(Rules::default());
    }
    let acls: Vec<(String, String)> = s
        .acls
        .iter()
        .map(|(n, v)| ((*n).clone(), v.get_ref().clone()))
        .collect();
    let req: Vec<String> = s.request.iter().map(|v| v.get_ref().clone()).collect();
    let res: Vec<String> = s.response.iter().map(|v| v.get_ref().clone()).collect();
    let mut compiled = compile_section(name, &acls, routes, default_backend, &req, &res, env)
        .map_err(|(item, e)| {
            let (what, sp) = match item {
                Item::Acl(i) => ("acl", s.acls[i].1),
                Item::UseBackend(i) => ("use-backend", s.routes[i]),
                Item::Request(i) => ("http-request", s.request[i]),
                Item::Response(i) => ("http-response", s.response[i]),
            };
            let msg = format!("{what}: {}", e.msg);
            if let Item::Acl(i) = item {
                let at = acl_offset(loc, s.raw, s.acls[i].0, sp, e.at);
                return loc.error(at..at, ctx, msg);
            }
            err_at(loc, sp, &Error { at: e.at, msg }, ctx)
        })?;
    let tcp: Vec<String> = s.tcp.iter().map(|v| v.get_ref().clone()).collect();
    compiled.add_tcp_content(&tcp, env).map_err(|(i, e)| {
        let msg = format!("tcp-request content: {}", e.msg);
        err_at(loc, s.tcp[i], &Error { at: e.at, msg }, ctx)
    })?;
    Ok(Rules(Some(Arc::new(compiled))))
}

fn use_server(loc: &Locator, ctx: &str, p: &RawProxy, b: &mut Backend, env: &mut Env) -> R<()> {
    let Some(list) = p.use_server.as_ref().filter(|l| !l.is_empty()) else {
        return Ok(());
    };
    let mut rules = Vec::new();
    let mut conds = Vec::new();
    for u in list {
        let name = u.server.get_ref();
        let idx = b
            .servers
            .iter()
            .position(|s| s.name == *name)
            .ok_or_else(|| {
                loc.error(
                    u.server.span(),
                    ctx,
                    format!("use-server: server \"{name}\" does not exist in this backend"),
                )
            })?;
        let (c, negate) = match (&u.if_, &u.unless) {
            (Some(c), None) => (c, false),
            (None, Some(c)) => (c, true),
            _ => {
                return Err(loc.error(
                    u.server.span(),
                    ctx,
                    "use-server needs exactly one of `if` or `unless`",
                ))
            }
        };
        rules.push((idx, c.get_ref().clone(), negate));
        conds.push(c);
    }
    let mut compiled = editable(&b.rules, &b.name);
    compiled.add_use_server(&rules, env).map_err(|(i, e)| {
        let e = Error {
            at: e.at,
            msg: format!("use-server: {}", e.msg),
        };
        err_at(loc, conds[i], &e, ctx)
    })?;
    b.rules = Rules(Some(Arc::new(compiled)));
    Ok(())
}

pub(super) fn compile(
    raw: &RawConfig,
    frontends: &mut [Frontend],
    backends: &mut [Backend],
    loc: &Locator,
) -> R<()> {
    let mut env = Env {
        backends: backends.iter().map(|b| b.name.clone()).collect(),
        ..Env::default()
    };
    for (name, lines) in raw.userlist.iter().flatten() {
        let text: Vec<&str> = lines.iter().map(|l| l.get_ref().as_str()).collect();
        let ul = Userlist::parse(name, &text)
            .map_err(|(i, e)| err_at(loc, &lines[i], &e, &format!("userlist \"{name}\"")))?;
        env.userlists.push(Arc::new(ul));
    }
    // Backends: [[backend]] then the backend half of [[listen]] (whose
    // rules live on its frontend half).
    for (i, p) in raw.backend.iter().enumerate() {
        let b = &mut backends[i];
        let ctx = format!("backend \"{}\"", b.name);
        let s = section(p.get_ref(), false);
        b.rules = build(loc, &ctx, &b.name, &s, &[], None, &mut env)?;
        use_server(loc, &ctx, p.get_ref(), b, &mut env)?;
        server_sni(loc, &ctx, p, b, &mut env)?;
    }
    // A listen's use-server rules go with its backend half.
    for (i, p) in raw.listen.iter().enumerate() {
        let b = &mut backends[raw.backend.len() + i];
        let ctx = format!("listen \"{}\"", b.name);
        if p.get_ref()
            .use_server
            .as_ref()
            .is_some_and(|l| !l.is_empty())
        {
            // Its ACLs, compiled again for the backend half.
            let mut s = section(p.get_ref(), false);
            s.request.clear();
            s.response.clear();
            s.tcp.clear();
            b.rules = build(loc, &ctx, &b.name, &s, &[], None, &mut env)?;
        }
        use_server(loc, &ctx, p.get_ref(), b, &mut env)?;
        server_sni(loc, &ctx, p, b, &mut env)?;
    }
    let raws = raw
        .frontend
        .iter()
        .map(|p| (p, "frontend"))
        .chain(raw.listen.iter().map(|p| (p, "listen")));
    for (fe, (p, kind)) in frontends.iter_mut().zip(raws) {
        let ctx = format!("{kind} \"{}\"", fe.name);
        let s = section(p.get_ref(), true);
        let routes: Vec<(usize, String, bool)> = fe
            .use_backend
            .iter()
            .map(|u| (u.backend, u.condition.clone(), u.negate))
            .collect();
        fe.rules = build(
            loc,
            &ctx,
            &fe.name,
            &s,
            &routes,
            fe.default_backend,
            &mut env,
        )?;
        let fmt = p.get_ref().log_format.as_ref().or(raw
            .defaults
            .as_ref()
            .and_then(|d| d.get_ref().log_format.as_ref()));
        if let (crate::config::model::LogFormat::Custom(f), Some(text)) =
            (fe.log_format.clone(), fmt)
        {
            log_samples(loc, &ctx, fe, &f, text, &mut env)?;
        }
        if let Some(text) = fe.stats.as_ref().and_then(|st| st.admin.as_deref()) {
            // The stats page compiles it again for itself; checked here so a
            // bad condition is a load error, not a page left read-only.
            let mut acls = crate::http::acl::AclSet::new();
            let mut env = env.clone();
            // The section's ACLs compiled above: an error in one is reported there.
            for (name, def) in &fe.acl {
                let _ = acls.define(name, def, &mut env);
            }
            let negate = fe.stats.as_ref().is_some_and(|s| s.admin_negate);
            acls.cond_str(text, negate, &mut env).map_err(|e| {
                let at = p.span().start;
                loc.error(at..at, &ctx, format!("stats admin if {text}: {}", e.msg))
            })?;
        }
    }
    Ok(())
}

/// A section's compiled rules to add to: a copy of what it has, or empty.
fn editable(rules: &Rules, name: &str) -> crate::http::rules::SectionRules {
    rules
        .get()
        .cloned()
        .unwrap_or_else(|| crate::http::rules::SectionRules {
            name: name.to_string(),
            ..Default::default()
        })
}

/// Compiles the `sni EXPR` of a backend's `ssl` servers (`sni req.hdr(host)`)
/// in its rules' environment; the shard computes it for each new server
/// connection of a request.
fn server_sni(
    loc: &Locator,
    ctx: &str,
    p: &Spanned<RawProxy>,
    b: &mut Backend,
    env: &mut Env,
) -> R<()> {
    let dynamic: Vec<(usize, String)> = b
        .servers
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let t = s.ssl.as_deref().filter(|t| t.dynamic_sni)?;
            Some((i, t.options.sni.clone()?))
        })
        .collect();
    if dynamic.is_empty() {
        return Ok(());
    }
    let raw_servers = p.get_ref().servers.as_deref().unwrap_or_default();
    let at = |i: usize| {
        raw_servers
            .get(i)
            .and_then(|s| s.get_ref().sni.as_ref())
            .map_or(p.span(), |s| s.span())
    };
    if b.mode == crate::config::model::Mode::Tcp {
        let (i, text) = &dynamic[0];
        return Err(loc.error(
            at(*i),
            ctx,
            format!(
                "server \"{}\": sni {text}: an expression is computed per request, in mode http; \
                 in mode tcp use a fixed name (sni str(NAME))",
                b.servers[*i].name
            ),
        ));
    }
    env.response = false;
    env.request_gone = false;
    let mut compiled = editable(&b.rules, &b.name);
    for (i, text) in dynamic {
        let lf = crate::http::rules::logfmt::LogFmt::parse(&format!("%[{text}]"), 0, env).map_err(
            |e| {
                let msg = format!("server \"{}\": sni {text}: {}", b.servers[i].name, e.msg);
                match raw_servers.get(i).and_then(|s| s.get_ref().sni.as_ref()) {
                    Some(s) => err_at(
                        loc,
                        s,
                        &Error {
                            at: e.at.saturating_sub(2),
                            msg,
                        },
                        ctx,
                    ),
                    None => loc.error(p.span(), ctx, msg),
                }
            },
        )?;
        compiled.server_sni.push((i, lf));
    }
    b.rules = Rules(Some(Arc::new(compiled)));
    Ok(())
}

/// Compiles the `%[...]` samples of a frontend's `log-format` in its rules'
/// environment (so `var(txn.x)` names what its `set-var` rules set); the
/// shard evaluates them when a request ends.
fn log_samples(
    loc: &Locator,
    ctx: &str,
    fe: &mut Frontend,
    f: &crate::log::LogFormat,
    text: &Spanned<String>,
    env: &mut Env,
) -> R<()> {
    if f.samples.is_empty() {
        return Ok(());
    }
    env.response = true;
    env.request_gone = false;
    let mut compiled = editable(&fe.rules, &fe.name);
    for (inner, at) in &f.samples {
        let one = format!("%[{inner}]");
        let lf = crate::http::rules::logfmt::LogFmt::parse(&one, at - 2, env).map_err(|e| {
            let e = Error {
                at: e.at,
                msg: format!("log-format: {}", e.msg),
            };
            err_at(loc, text, &e, ctx)
        })?;
        compiled.log_samples.push(lf);
    }
    fe.rules = Rules(Some(Arc::new(compiled)));
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use crate::http::acl::{Message, NoCounters};
    use crate::http::rules::{Conn, Txn, Verdict};

    fn toml(text: &str) -> Result<crate::config::model::Config, String> {
        crate::config::parse_str(text, Path::new("t.toml")).map_err(|e| e.to_string())
    }

    fn cfg(text: &str) -> Result<crate::config::model::Config, String> {
        crate::config::parse_haproxy(
            &[(PathBuf::from("h.cfg"), text.to_string())],
            false,
            &|_| None,
        )
        .map(|l| l.config)
        .map_err(|e| e.to_string())
    }

    fn toml_with(acl: &str, rule: &str) -> String {
        format!(
            r#"
[[frontend]]
name = "fe"
mode = "http"
bind = ["127.0.0.1:9000"]
acl = {{ {acl} }}
use-backend = [{{ backend = "api", if = "is_api" }}]
default-backend = "web"
http-request = [{rule}]

[[backend]]
name = "web"
mode = "http"
servers = [{{ name = "a", address = "127.0.0.1:8000" }}]

[[backend]]
name = "api"
mode = "http"
servers = [{{ name = "b", address = "127.0.0.1:8001" }}]
"#
        )
    }

    const CFG: &str = "frontend fe
    mode http
    bind 127.0.0.1:9000
    acl is_api path_beg /api/
    acl is_api hdr(host) -i api.example
    use_backend api if is_api
    default_backend web
    http-request deny if { path_beg /admin } !{ src 10.0.0.0/8 }

backend web
    mode http
    server a 127.0.0.1:8000

backend api
    mode http
    server b 127.0.0.1:8001
";

    fn route(c: &crate::config::model::Config, raw: &str) -> Option<usize> {
        let rules = c.frontends[0].rules.get().expect("compiled");
        let mut txn = Txn::default();
        txn.req = Message::parse_request(raw.as_bytes()).unwrap();
        let conn = Conn {
            client: "192.0.2.1:1000".parse().unwrap(),
            local: "127.0.0.1:9000".parse().unwrap(),
            tls: None,
            backend: None,
            counters: &NoCounters,
        };
        let mut out = Vec::new();
        if rules.apply_request(&mut txn, &conn, &mut out) != Verdict::Continue {
            return None;
        }
        rules.route(&mut txn, &conn)
    }

    #[test]
    fn log_format_samples_compile_with_the_rules() {
        let text = |fmt: &str| {
            format!(
                "defaults\n    mode http\nfrontend fe\n    bind 127.0.0.1:9000\n    \
                 http-request set-var(txn.who) str(x)\n    log-format \"{fmt}\"\n    \
                 default_backend b\nbackend b\n    server s 127.0.0.1:1\n"
            )
        };
        let c = cfg(&text("%ci %[var(txn.who)] %{+Q}[req.hdr(host),lower]")).unwrap();
        assert_eq!(c.frontends[0].rules.get().unwrap().log_samples.len(), 2);
        let e = cfg(&text("%ci %[nosuch(1)]")).unwrap_err();
        assert!(e.contains("h.cfg:6:") && e.contains("log-format"), "{e}");
        let e = cfg(&text("%ci %[path,nosuch]")).unwrap_err();
        assert!(e.contains("h.cfg:6:"), "{e}");
        let e = cfg(&text("%zz")).unwrap_err();
        assert!(e.contains("unknown log-format variable '%zz'"), "{e}");
    }

    #[test]
    fn toml_and_haproxy_cfg_compile_the_same_rules() {
        let t = toml(&toml_with(
            r#"is_api = "path_beg /api/\nhdr(host) -i api.example""#,
            r#""deny if { path_beg /admin } !{ src 10.0.0.0/8 }""#,
        ))
        .unwrap();
        let h = cfg(CFG).unwrap();
        for c in [&t, &h] {
            assert_eq!(route(c, "GET /api/x HTTP/1.1\r\nHost: a\r\n\r\n"), Some(1));
            assert_eq!(
                route(c, "GET / HTTP/1.1\r\nHost: API.example\r\n\r\n"),
                Some(1)
            );
            assert_eq!(route(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n"), Some(0));
            assert_eq!(route(c, "GET /admin HTTP/1.1\r\nHost: a\r\n\r\n"), None);
            assert!(c.backends[0].rules.get().is_none());
        }
    }

    #[test]
    fn toml_errors_point_into_the_string() {
        let e = toml(&toml_with(
            r#"is_api = "path_beg -i /api/""#,
            r#""deny if nope""#,
        ))
        .unwrap_err();
        // Line 9: `http-request = ["deny if nope"]`, "nope" at column 25.
        assert!(
            e.starts_with(
                "t.toml:9:26: frontend \"fe\": http-request: ACL \"nope\" is not defined"
            ),
            "{e}"
        );
        let e = toml(&toml_with(r#"is_api = "pathx /api/""#, "")).unwrap_err();
        assert!(
            e.starts_with("t.toml:6:19: frontend \"fe\": acl: unknown fetch method \"pathx\""),
            "{e}"
        );
        let e = toml(&toml_with(r#"is_api = "path_reg ^(/api""#, "")).unwrap_err();
        assert!(e.starts_with("t.toml:6:28: "), "{e}");
        assert!(e.contains("invalid regex"), "{e}");
        let e = toml(&toml_with(r#"is_api = "path /""#, r#""set-status 500""#)).unwrap_err();
        assert!(e.contains("t.toml:9:18: frontend \"fe\": http-request: \"set-status\" is not a valid http-request action"), "{e}");
        let e = toml(&toml_with(r#"x = "path /""#, "")).unwrap_err();
        assert!(e.starts_with("t.toml:7:"), "{e}");
        assert!(
            e.contains("use-backend: ACL \"is_api\" is not defined"),
            "{e}"
        );
    }

    #[test]
    fn haproxy_cfg_errors_name_line_and_column() {
        let e = cfg(&CFG.replace("path_beg /api/", "path_bag /api/")).unwrap_err();
        assert!(
            e.starts_with("h.cfg:4:16: frontend \"fe\": acl: unknown fetch method \"path_bag\""),
            "{e}"
        );
        let e = cfg(&CFG.replace("use_backend api if is_api", "use_backend api if is_apx"))
            .unwrap_err();
        assert!(e.starts_with("h.cfg:6:24: "), "{e}");
        assert!(e.contains("ACL \"is_apx\" is not defined"), "{e}");
        let e = cfg(&CFG.replace("{ src 10.0.0.0/8 }", "{ path_reg ( }")).unwrap_err();
        assert!(e.starts_with("h.cfg:8:58: "), "{e}");
        assert!(e.contains("invalid regex"), "{e}");
        let e = cfg(&CFG.replace(
            "    http-request deny",
            "    http-response set-path /x\n    http-request deny",
        ))
        .unwrap_err();
        assert!(e.starts_with("h.cfg:8:19: "), "{e}");
        assert!(e.contains("not a valid http-response action"), "{e}");
        let e = cfg(&format!(
            "{CFG}\nuserlist L\n    user bob password nothash\n"
        ))
        .unwrap_err();
        assert!(
            e.starts_with("h.cfg:19:23: userlist \"L\": password"),
            "{e}"
        );
    }

    #[test]
    fn userlist_in_toml_and_cfg() {
        let t = toml(&format!(
            "{}\n[userlist]\nL = [\"user bob insecure-password secret\"]\n",
            toml_with(
                r#"is_api = "path /""#,
                r#""auth realm R unless { http_auth(L) }""#
            )
        ));
        // `[userlist]` after the arrays of tables is a top-level table.
        let t = t.unwrap();
        assert!(t.frontends[0].rules.get().is_some());
        let e = toml(&toml_with(
            r#"is_api = "path /""#,
            r#""auth unless { http_auth(M) }""#,
        ))
        .unwrap_err();
        assert!(e.contains("userlist \"M\" does not exist"), "{e}");
        let h = cfg(&format!(
            "{}\nuserlist L\n    group admins\n    user bob insecure-password secret groups admins\n",
            CFG.replace(
                "http-request deny",
                "http-request auth unless { http_auth_group(L) admins }\n    http-request deny"
            )
        ))
        .unwrap();
        assert_eq!(route(&h, "GET / HTTP/1.1\r\nHost: a\r\n\r\n"), None, "401");
        assert_eq!(
            route(
                &h,
                "GET / HTTP/1.1\r\nHost: a\r\nAuthorization: Basic Ym9iOnNlY3JldA==\r\n\r\n"
            ),
            Some(0)
        );
    }
}

#[cfg(test)]
mod redirect_keyword {
    use std::path::PathBuf;

    #[test]
    fn the_redirect_section_keyword_is_an_http_request_redirect() {
        let text = "frontend fe
    mode http
    bind 127.0.0.1:9000
    redirect scheme https code 301 if !{ ssl_fc }
    default_backend web

backend web
    mode http
    server a 127.0.0.1:8000
";
        let c =
            crate::config::parse_haproxy(&[(PathBuf::from("h.cfg"), text.into())], false, &|_| {
                None
            })
            .unwrap()
            .config;
        assert_eq!(
            c.frontends[0].http_request,
            ["redirect scheme https code 301 if !{ ssl_fc }"]
        );
        let e = crate::config::parse_haproxy(
            &[(PathBuf::from("h.cfg"), text.replace("code 301", "code 399"))],
            false,
            &|_| None,
        )
        .err()
        .expect("refused")
        .to_string();
        assert!(e.starts_with("h.cfg:4:32: "), "{e}");
    }
}

#[cfg(test)]
mod dynamic_backend {
    #[test]
    fn a_computed_backend_name_is_refused_clearly() {
        let text = r#"
[[frontend]]
name = "fe"
mode = "http"
bind = ["127.0.0.1:9000"]
use-backend = [{ backend = "%[req.hdr(host),lower,map(/etc/hosts.map,web)]", if = "TRUE" }]
default-backend = "web"

[[backend]]
name = "web"
mode = "http"
servers = [{ name = "a", address = "127.0.0.1:8000" }]
"#;
        let e = crate::config::parse_str(text, std::path::Path::new("t.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("t.toml:6:28: "), "{e}");
        assert!(e.contains("computed per request"), "{e}");
    }
}

#[cfg(test)]
mod use_server_tests {
    use std::path::PathBuf;

    use crate::http::acl::{Message, NoCounters};
    use crate::http::rules::{Conn, Txn};

    fn pick(c: &crate::config::model::Config, b: usize, raw: &str) -> Option<usize> {
        let rules = c.backends[b].rules.get()?;
        let mut txn = Txn::default();
        txn.req = Message::parse_request(raw.as_bytes()).unwrap();
        let conn = Conn {
            client: "192.0.2.1:1000".parse().unwrap(),
            local: "127.0.0.1:9000".parse().unwrap(),
            tls: None,
            backend: Some(b),
            counters: &NoCounters,
        };
        rules.use_server(&mut txn, &conn)
    }

    #[test]
    fn use_server_in_toml_and_haproxy_cfg() {
        let cfg = "listen app
    mode http
    bind 127.0.0.1:9000
    acl admin path_beg /admin
    use-server s2 if admin
    use-server s1 unless { hdr(x-any) -m found }
    server s1 127.0.0.1:8001
    server s2 127.0.0.1:8002
";
        let h =
            crate::config::parse_haproxy(&[(PathBuf::from("h.cfg"), cfg.into())], false, &|_| None)
                .unwrap_or_else(|e| panic!("{e}"))
                .config;
        assert_eq!(pick(&h, 0, "GET /admin/x HTTP/1.1\r\n\r\n"), Some(1));
        assert_eq!(pick(&h, 0, "GET / HTTP/1.1\r\n\r\n"), Some(0));
        assert_eq!(pick(&h, 0, "GET / HTTP/1.1\r\nX-Any: 1\r\n\r\n"), None);
        let e = crate::config::parse_haproxy(
            &[(
                PathBuf::from("h.cfg"),
                cfg.replace("use-server s2", "use-server s9"),
            )],
            false,
            &|_| None,
        )
        .err()
        .expect("refused")
        .to_string();
        assert!(
            e.starts_with("h.cfg:5:16: listen \"app\": use-server: server \"s9\" does not exist"),
            "{e}"
        );
        let toml = r#"
[[backend]]
name = "be"
mode = "http"
acl = { admin = "path_beg /admin" }
use-server = [{ server = "b", if = "admin" }]
servers = [{ name = "a", address = "127.0.0.1:8000" }, { name = "b", address = "127.0.0.1:8001" }]
"#;
        let t = crate::config::parse_str(toml, std::path::Path::new("t.toml")).unwrap();
        assert_eq!(pick(&t, 0, "GET /admin HTTP/1.1\r\n\r\n"), Some(1));
        assert_eq!(pick(&t, 0, "GET / HTTP/1.1\r\n\r\n"), None);
        let e = crate::config::parse_str(
            &toml.replace("if = \"admin\"", "if = \"nope\""),
            std::path::Path::new("t.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("t.toml:6:37: backend \"be\": use-server: ACL \"nope\" is not defined"),
            "{e}"
        );
        let e = crate::config::parse_str(
            "[[frontend]]\nname = \"f\"\nbind = [\"127.0.0.1:1\"]\nuse-server = [{ server = \"a\", if = \"TRUE\" }]\n",
            std::path::Path::new("t.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("`use-server` is not allowed in a frontend"),
            "{e}"
        );
    }
}

#[cfg(test)]
mod tutorial {
    use std::path::Path;

    use crate::http::acl::{Message, NoCounters};
    use crate::http::rules::cookie::{on_request, on_response, ServerView, Stick};
    use crate::http::rules::{Conn, Txn};

    /// The tutorial's L7 front end, from its TOML and its haproxy.cfg: `/ms1/`
    /// and `/ms2/` (any case) go to their backends, the rest to the default
    /// one; each backend inserts its sticky cookie once and honours it.
    #[test]
    fn the_tutorial_l7_routes_and_sticks() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        let toml = crate::config::load(&root.join("tutorial-l7.toml")).unwrap();
        let cfg = crate::config::load(&root.join("haproxy/tutorial-l7.cfg")).unwrap();
        for c in [&toml, &cfg] {
            let fe = c
                .frontends
                .iter()
                .find(|f| f.name == "http-in")
                .expect("http-in");
            let rules = fe.rules.get().expect("compiled");
            let conn = Conn {
                client: "192.0.2.7:5000".parse().unwrap(),
                local: "192.0.2.1:80".parse().unwrap(),
                tls: None,
                backend: None,
                counters: &NoCounters,
            };
            let route = |path: &str| {
                let mut txn = Txn::default();
                txn.req = Message::parse_request(
                    format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
                )
                .unwrap();
                let b = rules.route(&mut txn, &conn).expect("a backend");
                c.backends[b].name.clone()
            };
            assert_eq!(route("/ms1/index.html"), "ms1");
            assert_eq!(route("/MS2/a"), "ms2");
            assert_eq!(route("/ms3/"), "default_servers");
            assert_eq!(route("/"), "default_servers");
            // ms1's cookie: inserted on the first response, then sticky and
            // stripped towards the server (indirect).
            let be = c.backends.iter().find(|b| b.name == "ms1").unwrap();
            let spec = be.cookie.as_ref().unwrap();
            let servers: Vec<ServerView> = be
                .servers
                .iter()
                .map(|s| ServerView {
                    cookie: s.cookie.as_deref(),
                    usable: true,
                })
                .collect();
            let mut res = Message::parse_response(b"HTTP/1.1 200 OK\r\n\r\n").unwrap();
            on_response(
                spec,
                &mut res,
                Some((1, servers[1].cookie)),
                Stick::None,
                b"GET",
            );
            let set = res.lines(b"set-cookie").next().unwrap().to_vec();
            assert_eq!(set, b"HA_STICKY_ms1=ms1.srv2; path=/");
            let mut req = Message::parse_request(
                b"GET /ms1/ HTTP/1.1\r\nCookie: HA_STICKY_ms1=ms1.srv2\r\n\r\n",
            )
            .unwrap();
            assert_eq!(
                on_request(spec, &mut req, &servers, false),
                Stick::Server(1)
            );
            assert_eq!(req.lines(b"cookie").count(), 0);
            // ms1.srv2 down: load-balanced instead.
            let mut down = servers.clone();
            down[1].usable = false;
            let mut req = Message::parse_request(
                b"GET /ms1/ HTTP/1.1\r\nCookie: HA_STICKY_ms1=ms1.srv2\r\n\r\n",
            )
            .unwrap();
            assert_eq!(on_request(spec, &mut req, &down, false), Stick::Down(1));
        }
    }
}

#[cfg(test)]
mod tarpit_timeout {
    use std::path::PathBuf;
    use std::time::Duration;

    #[test]
    fn timeout_tarpit_defaults_to_timeout_connect() {
        let cfg = "defaults
    mode http
    timeout connect 3s
frontend a
    bind 127.0.0.1:9000
    timeout tarpit 7s
    http-request tarpit if { path /x }
    default_backend b
frontend c
    bind 127.0.0.1:9001
    default_backend b
backend b
    server s 127.0.0.1:1
";
        let c =
            crate::config::parse_haproxy(&[(PathBuf::from("t.cfg"), cfg.into())], false, &|_| None)
                .unwrap_or_else(|e| panic!("{e}"))
                .config;
        assert_eq!(c.frontends[0].timeouts.tarpit, Some(Duration::from_secs(7)));
        assert_eq!(c.frontends[1].timeouts.tarpit, Some(Duration::from_secs(3)));
    }
}

#[cfg(test)]
mod multi_line_acl {
    use std::path::PathBuf;

    fn err(cfg: &str) -> String {
        crate::config::parse_haproxy(&[(PathBuf::from("m.cfg"), cfg.into())], false, &|_| None)
            .err()
            .expect("refused")
            .to_string()
    }

    #[test]
    fn an_error_in_a_later_acl_line_points_at_that_line() {
        let base = "frontend fe
    mode http
    bind 127.0.0.1:9000
    acl static path_end .jpg
    use_backend b if static
    acl static path_end .png
    acl static path_reg ^/img/
    default_backend b
backend b
    mode http
    server s 127.0.0.1:1
";
        // Same fetch: values appended to the first line.
        let e = err(&base.replace(
            "    default_backend b\n",
            "    acl lan src 10.0.0.0/8\n    acl lan src 10.0.0.300\n    default_backend b\n",
        ));
        assert!(e.starts_with("m.cfg:9:17: "), "{e}");
        // Another fetch: its own definition line.
        let e = err(&base.replace("^/img/", "^/(img/"));
        assert!(e.starts_with("m.cfg:7:25: "), "{e}");
        assert!(e.contains("invalid regex"), "{e}");
        let e = err(&base.replace("path_reg ^/img/", "path_rex ^/img/"));
        assert!(e.starts_with("m.cfg:7:16: "), "{e}");
        let e = err(&base.replace(
            "acl static path_end .png",
            "acl static path_end .png\n    acl static src 10.0.0.300",
        ));
        assert!(e.starts_with("m.cfg:7:20: "), "{e}");
    }
}
