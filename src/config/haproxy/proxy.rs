//! Keywords of proxy sections (`defaults`, `frontend`, `backend`, `listen`)
//! mapped onto [`RawProxy`]: mode, maxconn, routing (`acl`, `use_backend`,
//! `default_backend`), `balance`, `hash-type`, `timeout`, `retries`, `option` /
//! `no option`, health checks (`option httpchk|redis-check|pgsql-check|
//! mysql-check|tcp-check`, `http-check`, `tcp-check`), `cookie`, `log`, rules kept
//! as strings, `errorfile`, and `stats`. Servers and binds are in `server`. Each
//! handler returns the TOML key it set so the caller can refuse its use in the
//! wrong section.

use std::collections::BTreeMap;

use super::global::{int, log_target};
use super::lexer::Word;
use super::{cover, join, perr, server, sp, KwErr};
use crate::config::schema::*;
use toml::Spanned;

type K = Result<Option<&'static str>, KwErr>;

fn arg(words: &[Word], i: usize) -> Result<&Word, KwErr> {
    words.get(i).ok_or_else(|| {
        let what = words[..i.min(words.len())]
            .iter()
            .map(|w| w.text.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        KwErr::Bad(perr(&cover(words), format!("\"{what}\" needs an argument")))
    })
}

fn bad(w: &Word, msg: impl Into<String>) -> KwErr {
    KwErr::Bad(perr(&w.span, msg))
}

/// Keywords this module knows, to tell "wrong section" from "unsupported".
pub(super) fn is_proxy_keyword(k: &str) -> bool {
    matches!(
        k,
        "mode"
            | "bind"
            | "maxconn"
            | "acl"
            | "use_backend"
            | "use-server"
            | "default_backend"
            | "balance"
            | "hash-type"
            | "server"
            | "default-server"
            | "timeout"
            | "retries"
            | "option"
            | "no"
            | "http-check"
            | "tcp-check"
            | "cookie"
            | "http-request"
            | "redirect"
            | "http-response"
            | "tcp-request"
            | "stats"
            | "disabled"
            | "enabled"
            | "errorfile"
            | "capture"
            | "log-format"
            | "load-server-state-from-file"
    )
}

pub(super) fn keyword(p: &mut RawProxy, words: &[Word], notices: &mut Vec<(usize, String)>) -> K {
    let kw = &words[0];
    let at = kw.span.start;
    let mut notice = |m: String| notices.push((at, format!("notice: {m}")));
    Ok(Some(match kw.text.as_str() {
        "mode" => {
            let w = arg(words, 1)?;
            p.mode = Some(sp(w, w.text.clone()));
            "mode"
        }
        "maxconn" => {
            let w = arg(words, 1)?;
            p.maxconn = Some(sp(w, int(w)?));
            "maxconn"
        }
        "bind" => {
            server::bind(p, words)?;
            "bind"
        }
        "server" => {
            server::server(p, words)?;
            "servers"
        }
        "default-server" => {
            let mut s = p.default_server.take().unwrap_or_default();
            let r = server::server_options(&mut s, words, 1);
            p.default_server = Some(s);
            r?;
            "default-server"
        }
        "acl" => {
            let name = arg(words, 1)?;
            arg(words, 2)?;
            let text = join(&words[2..]);
            let acl = p.acl.get_or_insert_with(Default::default);
            if let Some(old) = acl.get_mut(&name.text) {
                // HAProxy ORs repeated definitions; with the same fetch and flags
                // that is one line listing every value, otherwise one more
                // definition line (an ACL string holds one per line).
                let head = acl_head(&words[2..]);
                let old = old.get_mut();
                let same = old.starts_with(&format!("{} ", join(&words[2..2 + head])))
                    && !old.contains('\n');
                let spans = p.acl_words.entry(name.text.clone()).or_default();
                if same && words.len() > 2 + head {
                    old.push(' ');
                    old.push_str(&join(&words[2 + head..]));
                    spans.extend(words[2 + head..].iter().map(|w| w.span.clone()));
                } else {
                    old.push('\n');
                    old.push_str(&text);
                    spans.extend(words[2..].iter().map(|w| w.span.clone()));
                }
            } else {
                acl.insert(name.text.clone(), Spanned::new(cover(&words[2..]), text));
                p.acl_words.insert(
                    name.text.clone(),
                    words[2..].iter().map(|w| w.span.clone()).collect(),
                );
            }
            "acl"
        }
        "use_backend" => {
            let name = arg(words, 1)?;
            let (if_, unless) = match words.get(2).map(|w| w.text.as_str()) {
                None => (
                    Some(Spanned::new(name.span.clone(), "TRUE".to_string())),
                    None,
                ),
                Some("if") => (Some(cond(words, 3)?), None),
                Some("unless") => (None, Some(cond(words, 3)?)),
                Some(_) => {
                    return Err(bad(
                        &words[2],
                        format!(
                            "use_backend: expected \"if\" or \"unless\", got \"{}\"",
                            words[2].text
                        ),
                    ))
                }
            };
            p.use_backend
                .get_or_insert_with(Vec::new)
                .push(RawUseBackend {
                    backend: sp(name, name.text.clone()),
                    if_,
                    unless,
                });
            "use-backend"
        }
        "use-server" => {
            let name = arg(words, 1)?;
            let (if_, unless) = match words.get(2).map(|w| w.text.as_str()) {
                Some("if") => (Some(cond(words, 3)?), None),
                Some("unless") => (None, Some(cond(words, 3)?)),
                _ => {
                    return Err(bad(
                        name,
                        "use-server: expected \"if\" or \"unless\" and a condition",
                    ))
                }
            };
            p.use_server
                .get_or_insert_with(Vec::new)
                .push(RawUseServer {
                    server: sp(name, name.text.clone()),
                    if_,
                    unless,
                });
            "use-server"
        }
        "default_backend" => {
            let w = arg(words, 1)?;
            p.default_backend = Some(sp(w, w.text.clone()));
            "default-backend"
        }
        "balance" => {
            let w = arg(words, 1)?;
            // `url_param NAME` is written `url_param(NAME)`; the options
            // after the algorithm follow it, space-separated.
            let (mut algo, extra) = match w.text.as_str() {
                "url_param" => (format!("url_param({})", arg(words, 2)?.text), 3),
                _ => (w.text.clone(), 2),
            };
            for o in &words[extra.min(words.len())..] {
                if o.text == "check_post" {
                    notice("balance url_param: check_post is not implemented; ignored".into());
                    continue;
                }
                algo.push(' ');
                algo.push_str(&o.text);
            }
            p.balance = Some(Spanned::new(cover(&words[1..]), algo));
            "balance"
        }
        "hash-type" => {
            let w = arg(words, 1)?;
            if words.len() > 2 {
                notice("hash-type: the hash function argument is ignored".into());
            }
            p.hash_type = Some(sp(w, w.text.clone()));
            "hash-type"
        }
        "timeout" => {
            let which = arg(words, 1)?;
            let v = arg(words, 2)?;
            if let Some(w) = words.get(3) {
                return Err(bad(w, format!("timeout: unexpected \"{}\"", w.text)));
            }
            let d = Some(sp(v, RawDuration::Text(v.text.clone())));
            let t = p.timeout.get_or_insert_with(RawTimeouts::default);
            match which.text.as_str() {
                "connect" => t.connect = d,
                "client" => t.client = d,
                "server" => t.server = d,
                "tunnel" => t.tunnel = d,
                "client-fin" => t.client_fin = d,
                "server-fin" => t.server_fin = d,
                "queue" => t.queue = d,
                "check" => t.check = d,
                "http-request" => t.http_request = d,
                "http-keep-alive" => t.http_keep_alive = d,
                "tarpit" => t.tarpit = d,
                _ => return Err(KwErr::Unsupported),
            }
            "timeout"
        }
        legacy @ ("contimeout" | "clitimeout" | "srvtimeout") => {
            let v = arg(words, 1)?;
            let d = Some(sp(v, RawDuration::Text(v.text.clone())));
            let t = p.timeout.get_or_insert_with(RawTimeouts::default);
            match legacy {
                "contimeout" => t.connect = d,
                "clitimeout" => t.client = d,
                _ => t.server = d,
            }
            let new = match legacy {
                "contimeout" => "connect",
                "clitimeout" => "client",
                _ => "server",
            };
            notice(format!("{legacy} is deprecated; read as timeout {new}"));
            "timeout"
        }
        "load-server-state-from-file" => {
            let w = arg(words, 1)?;
            p.load_server_state_from_file = Some(sp(w, w.text.clone()));
            "load-server-state-from-file"
        }
        "http-reuse" => {
            let w = arg(words, 1)?;
            p.http_reuse = Some(sp(w, w.text.clone()));
            "http-reuse"
        }
        "retries" => {
            let w = arg(words, 1)?;
            p.retries = Some(sp(w, int(w)?));
            "retries"
        }
        "option" => return option(p, words, true, &mut notice),
        "no" if arg(words, 1)?.text == "log" => {
            // `no log`: no targets, whatever `defaults` said (`log = []`).
            let w = &words[1];
            p.log = Some(sp(w, RawProxyLog::Targets(Vec::new())));
            "log"
        }
        "no" => {
            if arg(words, 1)?.text != "option" {
                return Err(KwErr::Unsupported);
            }
            return option(p, &words[1..], false, &mut notice);
        }
        "http-check" => {
            http_check(p, words, &mut notice)?;
            "check"
        }
        "tcp-check" => {
            tcp_check(p, words, &mut notice)?;
            "check"
        }
        "cookie" => {
            let name = arg(words, 1)?;
            let mut c = RawCookie {
                name: name.text.clone(),
                ..RawCookie::default()
            };
            let mut i = 2;
            while i < words.len() {
                let w = &words[i];
                match w.text.as_str() {
                    "insert" | "rewrite" | "prefix" => c.mode = Some(sp(w, w.text.clone())),
                    "indirect" => c.indirect = Some(true),
                    "nocache" => c.nocache = Some(true),
                    "postonly" => c.postonly = Some(true),
                    "preserve" => c.preserve = Some(true),
                    "httponly" => c.httponly = Some(true),
                    "secure" => c.secure = Some(true),
                    "domain" => {
                        c.domain = Some(arg(words, i + 1)?.text.clone());
                        i += 1;
                    }
                    "maxidle" | "maxlife" => {
                        let v = arg(words, i + 1)?;
                        let d = Some(sp(v, RawDuration::Text(v.text.clone())));
                        if w.text == "maxidle" {
                            c.maxidle = d;
                        } else {
                            c.maxlife = d;
                        }
                        i += 1;
                    }
                    "dynamic" => notice(format!(
                        "cookie option \"{}\" is not implemented; ignored",
                        w.text
                    )),
                    "attr" => {
                        notice(format!(
                            "cookie option \"{}\" is not implemented; ignored",
                            w.text
                        ));
                        i += 1;
                    }
                    other => return Err(bad(w, format!("cookie: unknown option \"{other}\""))),
                }
                i += 1;
            }
            p.cookie = Some(c);
            "cookie"
        }
        "log" => {
            let w = arg(words, 1)?;
            match w.text.as_str() {
                "global" => p.log = Some(sp(w, RawProxyLog::Word("global".into()))),
                _ => {
                    let t = log_target(words)?;
                    match p.log.as_mut().map(|l| l.get_mut()) {
                        Some(RawProxyLog::Targets(v)) => v.push(t),
                        _ => {
                            p.log = Some(Spanned::new(cover(words), RawProxyLog::Targets(vec![t])))
                        }
                    }
                }
            }
            "log"
        }
        "redirect" => {
            // The section keyword is `http-request redirect` (HAProxy runs
            // these after the http-request rules; here they keep file order).
            arg(words, 1)?;
            let rule = Spanned::new(cover(words), join(words));
            p.http_request.get_or_insert_with(Vec::new).push(rule);
            "http-request"
        }
        "http-request" | "http-response" => {
            arg(words, 1)?;
            let rule = Spanned::new(cover(&words[1..]), join(&words[1..]));
            let list = if kw.text == "http-request" {
                &mut p.http_request
            } else {
                &mut p.http_response
            };
            list.get_or_insert_with(Vec::new).push(rule);
            if kw.text == "http-request" {
                "http-request"
            } else {
                "http-response"
            }
        }
        "tcp-request" => {
            let what = arg(words, 1)?;
            let t = p
                .tcp_request
                .get_or_insert_with(|| Spanned::new(cover(words), RawTcpRequest::default()))
                .get_mut();
            match what.text.as_str() {
                "inspect-delay" => {
                    let v = arg(words, 2)?;
                    if let Some(w) = words.get(3) {
                        return Err(bad(
                            w,
                            format!("tcp-request inspect-delay: unexpected \"{}\"", w.text),
                        ));
                    }
                    t.inspect_delay = Some(sp(v, RawDuration::Text(v.text.clone())));
                }
                "content" => {
                    arg(words, 2)?;
                    let rule = Spanned::new(cover(&words[2..]), join(&words[2..]));
                    t.content.get_or_insert_with(Vec::new).push(rule);
                }
                // `connection`, `session`: not implemented.
                _ => return Err(KwErr::Unsupported),
            }
            "tcp-request"
        }
        "stats" => {
            stats(p, words, &mut notice)?;
            "stats"
        }
        "capture" => {
            // capture request|response header NAME len N
            let dir = arg(words, 1)?;
            let what = arg(words, 2)?;
            if what.text != "header" {
                return Err(bad(
                    what,
                    format!(
                        "capture {}: only 'header NAME len N' is supported",
                        dir.text
                    ),
                ));
            }
            let name = arg(words, 3)?;
            let len_kw = arg(words, 4)?;
            if len_kw.text != "len" {
                return Err(bad(len_kw, "expected 'len N'"));
            }
            let len = arg(words, 5)?;
            if let Some(w) = words.get(6) {
                return Err(bad(w, "unexpected word after 'len N'"));
            }
            let n: i64 = len
                .text
                .parse()
                .map_err(|_| bad(len, "len must be a number"))?;
            let c = p.capture.get_or_insert_with(RawCaptures::default);
            let list = match dir.text.as_str() {
                "request" => &mut c.request,
                "response" => &mut c.response,
                _ => return Err(bad(dir, "capture: 'request' or 'response' expected")),
            };
            let item = RawCapture {
                header: name.text.clone(),
                len: n,
            };
            list.get_or_insert_with(Vec::new)
                .push(Spanned::new(cover(words), item));
            "capture"
        }
        "log-format" => {
            // The format is one word (quoted, or with escaped blanks);
            // several are joined with a space, as HAProxy warns and does.
            arg(words, 1)?;
            let text = words[1..]
                .iter()
                .map(|w| w.text.as_str())
                .collect::<Vec<_>>()
                .join(" ");
            p.log_format = Some(Spanned::new(cover(&words[1..]), text));
            "log-format"
        }
        "errorfile" => {
            let code = arg(words, 1)?;
            let file = arg(words, 2)?;
            if let Some(w) = words.get(3) {
                return Err(bad(w, "errorfile takes a status code and a file"));
            }
            p.errorfile
                .get_or_insert_with(BTreeMap::new)
                .insert(code.text.clone(), sp(file, file.text.clone()));
            "errorfile"
        }
        "disabled" => {
            p.disabled = Some(true);
            "disabled"
        }
        "enabled" => {
            p.disabled = Some(false);
            "disabled"
        }
        "description" | "id" | "fullconn" | "backlog" => {
            notice(format!("{} has no effect in ringlb; ignored", kw.text));
            return Ok(None);
        }
        _ => return Err(KwErr::Unsupported),
    }))
}

/// How many words of an ACL definition are its fetch and flags.
fn acl_head(words: &[Word]) -> usize {
    let mut i = 1;
    while i < words.len() && words[i].text.starts_with('-') {
        i += if matches!(words[i].text.as_str(), "-m" | "-f" | "-M") {
            2
        } else {
            1
        };
    }
    i.min(words.len())
}

/// The condition after `if`/`unless` at word `from`, re-joined.
fn cond(words: &[Word], from: usize) -> Result<Spanned<String>, KwErr> {
    if words.len() <= from {
        return Err(bad(&words[from - 1], "a condition is required"));
    }
    Ok(Spanned::new(cover(&words[from..]), join(&words[from..])))
}

fn option(p: &mut RawProxy, words: &[Word], on: bool, notice: &mut dyn FnMut(String)) -> K {
    let name = arg(words, 1)?;
    let args = &words[2..];
    let flag = Some(on);
    fn check<'p>(p: &'p mut RawProxy, name: &Word, ty: &str) -> &'p mut RawCheck {
        let c = p.check.get_or_insert_with(RawCheck::default);
        c.type_ = Some(sp(name, ty.to_string()));
        c
    }
    let no_args = |k: &'static str| -> Result<(), KwErr> {
        match args.first() {
            Some(w) => Err(bad(w, format!("option {k} takes no argument"))),
            None => Ok(()),
        }
    };
    Ok(Some(match name.text.as_str() {
        "redispatch" => {
            p.redispatch = flag;
            "redispatch"
        }
        "persist" => {
            no_args("persist")?;
            p.persist = flag;
            "persist"
        }
        "httplog" | "tcplog" => {
            if on {
                p.log_format = Some(sp(name, name.text.clone()));
            }
            if !args.is_empty() {
                notice(format!("option {}: arguments ignored", name.text));
            }
            "log-format"
        }
        "dontlognull" => {
            p.dontlognull = flag;
            "dontlognull"
        }
        "forwardfor" => {
            let mut i = 0;
            while i < args.len() {
                match args[i].text.as_str() {
                    "except" | "header" => {
                        let v = args.get(i + 1).ok_or_else(|| {
                            bad(&args[i], format!("{} needs a value", args[i].text))
                        })?;
                        let val = Some(sp(v, v.text.clone()));
                        if args[i].text == "except" {
                            p.forwardfor_except = val;
                        } else {
                            p.forwardfor_header = val;
                        }
                        i += 2;
                    }
                    "if-none" => {
                        p.forwardfor_if_none = Some(true);
                        i += 1;
                    }
                    other => {
                        return Err(bad(
                            &args[i],
                            format!("option forwardfor: unknown argument \"{other}\""),
                        ))
                    }
                }
            }
            p.forwardfor = flag;
            "forwardfor"
        }
        "http-keep-alive" => {
            no_args("http-keep-alive")?;
            p.http_keep_alive = flag;
            "http-keep-alive"
        }
        "httpclose" | "forceclose" => {
            p.httpclose = flag;
            "httpclose"
        }
        "http-server-close" => {
            no_args("http-server-close")?;
            p.http_server_close = flag;
            "http-server-close"
        }
        "httpchk" if on => {
            let c = check(p, name, "http");
            match args {
                [] => {}
                [uri] => c.uri = Some(uri.text.clone()),
                [m, uri, rest @ ..] => {
                    c.method = Some(m.text.clone());
                    c.uri = Some(uri.text.clone());
                    if !rest.is_empty() {
                        let v = rest
                            .iter()
                            .map(|w| w.text.as_str())
                            .collect::<Vec<_>>()
                            .join(" ");
                        let mut parts = v.split("\r\n");
                        c.version = parts.next().map(str::to_string);
                        for h in parts {
                            if let Some((k, val)) = h.split_once(':') {
                                if k.trim().eq_ignore_ascii_case("host") {
                                    c.host = Some(val.trim().to_string());
                                }
                            }
                        }
                    }
                }
            }
            "check"
        }
        "redis-check" if on => {
            no_args("redis-check")?;
            check(p, name, "redis");
            "check"
        }
        "pgsql-check" if on => {
            let c = check(p, name, "pgsql");
            match args {
                [u, user] if u.text == "user" => c.user = Some(user.text.clone()),
                _ => return Err(bad(name, "option pgsql-check needs \"user NAME\"")),
            }
            "check"
        }
        "mysql-check" if on => {
            let c = check(p, name, "mysql");
            match args {
                [] => {}
                [u, user, rest @ ..] if u.text == "user" && rest.len() <= 1 => {
                    c.user = Some(user.text.clone())
                }
                _ => {
                    return Err(bad(
                        name,
                        "option mysql-check takes [user NAME [post-41|pre-41]]",
                    ))
                }
            }
            "check"
        }
        "tcp-check" if on => {
            no_args("tcp-check")?;
            check(p, name, "tcp-check");
            "check"
        }
        "abortonclose"
        | "http-use-htx"
        | "log-health-checks"
        | "splice-auto"
        | "splice-request"
        | "splice-response"
        | "tcpka"
        | "clitcpka"
        | "srvtcpka"
        | "independent-streams"
        | "log-separate-errors"
        | "http-buffer-request"
        | "prefer-last-server"
        | "socket-stats"
        | "contstats"
        | "dontlog-normal"
        | "nolinger"
        | "http-pretend-keepalive" => {
            notice(format!(
                "option {} has no effect in ringlb; ignored",
                name.text
            ));
            return Ok(None);
        }
        _ => return Err(KwErr::Unsupported),
    }))
}

fn http_check(
    p: &mut RawProxy,
    words: &[Word],
    notice: &mut dyn FnMut(String),
) -> Result<(), KwErr> {
    let sub = arg(words, 1)?;
    if !matches!(
        sub.text.as_str(),
        "expect" | "send" | "disable-on-404" | "send-state" | "connect"
    ) {
        return Err(KwErr::Unsupported);
    }
    let c = p.check.get_or_insert_with(RawCheck::default);
    match sub.text.as_str() {
        "expect" => {
            let mut rest = &words[2..];
            if rest.first().is_some_and(|w| w.text == "!") {
                return Err(bad(
                    &rest[0],
                    "http-check expect: negated matches are not implemented",
                ));
            }
            if rest.len() < 2 {
                return Err(bad(sub, "http-check expect needs a match and a pattern"));
            }
            let text = join(&rest[..2]);
            let at = cover(rest);
            rest = &rest[2..];
            if let Some(w) = rest.first() {
                return Err(bad(
                    w,
                    format!("http-check expect: unexpected \"{}\"", w.text),
                ));
            }
            c.expect = Some(Spanned::new(at, text));
        }
        "send" => {
            let mut i = 2;
            while i < words.len() {
                let v = arg(words, i + 1)?;
                match words[i].text.as_str() {
                    "meth" => c.method = Some(v.text.clone()),
                    "uri" => c.uri = Some(v.text.clone()),
                    "ver" => c.version = Some(v.text.clone()),
                    "hdr" => {
                        let val = arg(words, i + 2)?;
                        if v.text.eq_ignore_ascii_case("host") {
                            c.host = Some(val.text.clone());
                        } else {
                            return Err(bad(
                                v,
                                "http-check send: only the Host header is supported",
                            ));
                        }
                        i += 1;
                    }
                    other => {
                        return Err(bad(
                            &words[i],
                            format!("http-check send: unsupported \"{other}\""),
                        ))
                    }
                }
                i += 2;
            }
        }
        "disable-on-404" | "send-state" | "connect" => notice(format!(
            "http-check {} is not implemented; ignored",
            sub.text
        )),
        _ => return Err(KwErr::Unsupported),
    }
    Ok(())
}

fn tcp_check(
    p: &mut RawProxy,
    words: &[Word],
    notice: &mut dyn FnMut(String),
) -> Result<(), KwErr> {
    let sub = arg(words, 1)?;
    let at = cover(words);
    let step = match sub.text.as_str() {
        "connect" => {
            if words.len() > 2 {
                return Err(bad(
                    &words[2],
                    "tcp-check connect: options are not implemented",
                ));
            }
            RawCheckStep {
                connect: Some(true),
                ..RawCheckStep::default()
            }
        }
        "send" => RawCheckStep {
            // The lexer already decoded escapes; keep backslashes literal for
            // the model's own escape decoding.
            send: Some(arg(words, 2)?.text.replace('\\', "\\\\")),
            ..RawCheckStep::default()
        },
        "send-binary" => RawCheckStep {
            send_binary: Some(arg(words, 2)?.text.clone()),
            ..RawCheckStep::default()
        },
        "expect" => {
            let mut rest = &words[2..];
            if rest.first().is_some_and(|w| w.text == "!") {
                return Err(bad(
                    &rest[0],
                    "tcp-check expect: negated matches are not implemented",
                ));
            }
            // Leading options (min-recv N, comment X, on-success X, ...).
            while let Some(w) = rest.first() {
                match w.text.as_str() {
                    "min-recv" | "comment" | "on-success" | "on-error" | "status-code"
                    | "ok-status" | "error-status" | "tout-status" => {
                        notice(format!(
                            "tcp-check expect {} is not implemented; ignored",
                            w.text
                        ));
                        rest = rest.get(2..).unwrap_or(&[]);
                    }
                    _ => break,
                }
            }
            if rest.len() < 2 {
                return Err(bad(sub, "tcp-check expect needs a match and a pattern"));
            }
            RawCheckStep {
                expect: Some(format!("{} {}", rest[0].text, rest[1].text)),
                ..RawCheckStep::default()
            }
        }
        "comment" => return Ok(()),
        _ => return Err(KwErr::Unsupported),
    };
    let c = p.check.get_or_insert_with(RawCheck::default);
    c.steps
        .get_or_insert_with(Vec::new)
        .push(Spanned::new(at, step));
    Ok(())
}

fn stats(p: &mut RawProxy, words: &[Word], notice: &mut dyn FnMut(String)) -> Result<(), KwErr> {
    let sub = arg(words, 1)?;
    if !matches!(
        sub.text.as_str(),
        "enable"
            | "uri"
            | "realm"
            | "auth"
            | "refresh"
            | "admin"
            | "hide-version"
            | "show-legends"
            | "show-node"
            | "show-desc"
    ) {
        return Err(KwErr::Unsupported);
    }
    let s = p.stats.get_or_insert_with(RawStats::default);
    match sub.text.as_str() {
        "enable" => {}
        "uri" => s.uri = Some(arg(words, 2)?.text.clone()),
        "realm" => s.realm = Some(arg(words, 2)?.text.clone()),
        "auth" => {
            let a = arg(words, 2)?;
            if !a.text.contains(':') {
                return Err(bad(a, "stats auth expects USER:PASSWORD"));
            }
            s.auth.get_or_insert_with(Vec::new).push(a.text.clone())
        }
        "refresh" => {
            let w = arg(words, 2)?;
            s.refresh = Some(sp(w, RawDuration::Text(w.text.clone())));
        }
        "admin" => match words.get(2).map(|w| w.text.as_str()) {
            Some("if") => s.admin = Some(cond(words, 3)?.into_inner()),
            Some("unless") => s.admin_unless = Some(cond(words, 3)?.into_inner()),
            _ => return Err(bad(sub, "stats admin needs \"if COND\" or \"unless COND\"")),
        },
        "hide-version" => s.hide_version = Some(true),
        "show-legends" | "show-node" | "show-desc" => {
            notice(format!("stats {} is not implemented; ignored", sub.text))
        }
        _ => return Err(KwErr::Unsupported),
    }
    Ok(())
}
