//! The `global` section's keywords, mapped onto [`RawGlobal`]: `maxconn`,
//! `nbthread` (→ shards), `pidfile`, `daemon`, `user`/`group`/`uid`/`gid`,
//! `log`, `hard-stop-after`, `stats socket` (→ admin socket), `tune.*` that
//! ringlb has, and the no-ops HAProxy users carry (`nbproc`, `cpu-map`,
//! `chroot`, the other `tune.ssl.*`...) accepted with a notice.

use super::lexer::Word;
use super::{perr, sp, KwErr};
use crate::config::schema::*;

type K = Result<(), KwErr>;

fn arg(words: &[Word], i: usize) -> Result<&Word, KwErr> {
    words.get(i).ok_or_else(|| {
        KwErr::Bad(perr(
            &words[0].span,
            format!("\"{}\" needs an argument", words[0].text),
        ))
    })
}

pub(super) fn int(w: &Word) -> Result<i64, KwErr> {
    w.text.parse().map_err(|_| {
        KwErr::Bad(perr(
            &w.span,
            format!("expected an integer, got \"{}\"", w.text),
        ))
    })
}

/// HAProxy sizes: a number with an optional `k`, `m` or `g` suffix.
pub(super) fn size(w: &Word) -> Result<i64, KwErr> {
    let t = w.text.to_ascii_lowercase();
    let (num, mul) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1024),
        Some('m') => (&t[..t.len() - 1], 1024 * 1024),
        Some('g') => (&t[..t.len() - 1], 1024 * 1024 * 1024),
        _ => (t.as_str(), 1),
    };
    num.parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(mul))
        .ok_or_else(|| {
            KwErr::Bad(perr(
                &w.span,
                format!(
                    "expected a size (a number with optional k, m, g), got \"{}\"",
                    w.text
                ),
            ))
        })
}

/// `log ADDR [len N] [format F] [sample R:N] FACILITY [LEVEL [MINLEVEL]]`.
pub(super) fn log_target(words: &[Word]) -> Result<RawLogTarget, KwErr> {
    let addr = arg(words, 1)?;
    let target = match addr.text.as_str() {
        "stdout" | "stderr" => addr.text.clone(),
        a if a.starts_with('/') => format!("unix://{a}"),
        a if a.starts_with("udp@") || a.starts_with("udp4@") => {
            format!("udp://{}", a.split_once('@').map(|x| x.1).unwrap_or(a))
        }
        a if a.starts_with("unix@") => format!("unix://{}", &a[5..]),
        a if a.contains('@') => {
            return Err(KwErr::Bad(perr(
                &addr.span,
                format!("log: unsupported address family in \"{a}\""),
            )))
        }
        a => format!("udp://{a}"),
    };
    let mut rest: Vec<&Word> = Vec::new();
    let mut i = 2;
    while i < words.len() {
        match words[i].text.as_str() {
            "len" | "format" | "sample" => i += 2,
            _ => {
                rest.push(&words[i]);
                i += 1;
            }
        }
    }
    if rest.is_empty() {
        return Err(KwErr::Bad(perr(
            &addr.span,
            "log: a facility is required after the address",
        )));
    }
    if rest.len() > 3 {
        return Err(KwErr::Bad(perr(
            &rest[3].span,
            format!("log: unexpected \"{}\"", rest[3].text),
        )));
    }
    Ok(RawLogTarget {
        target,
        facility: Some(rest[0].text.clone()),
        level: rest.get(1).map(|w| w.text.clone()),
        min_level: rest.get(2).map(|w| w.text.clone()),
    })
}

/// The `[global]` TOML key a global keyword sets, if any.
pub(super) fn key_of(kw: &str) -> Option<&'static str> {
    Some(match kw {
        "maxconn" => "maxconn",
        "nbthread" => "shards",
        "pidfile" => "pidfile",
        "daemon" => "daemon",
        "user" | "uid" => "user",
        "server-state-file" => "server-state-file",
        "group" | "gid" => "group",
        "log" => "log",
        "hard-stop-after" => "hard-stop-after",
        "stats" => "admin-socket",
        "master-worker" => "master-worker",
        "nosplice" => "tune",
        k if k.starts_with("tune.") => "tune",
        _ => return None,
    })
}

pub(super) fn keyword(g: &mut RawGlobal, words: &[Word], notices: &mut Vec<(usize, String)>) -> K {
    let kw = &words[0];
    let mut notice = |m: String| notices.push((kw.span.start, format!("notice: {m}")));
    match kw.text.as_str() {
        "maxconn" => {
            let w = arg(words, 1)?;
            g.maxconn = Some(sp(w, int(w)?));
        }
        "nbthread" => {
            let w = arg(words, 1)?;
            g.shards = Some(sp(w, RawShards::Count(int(w)?)));
            notice(format!(
                "nbthread {} maps to {} data shards",
                w.text, w.text
            ));
        }
        "pidfile" => g.pidfile = Some(arg(words, 1)?.text.clone()),
        "daemon" => g.daemon = Some(true),
        "user" => g.user = Some(arg(words, 1)?.text.clone()),
        "group" => g.group = Some(arg(words, 1)?.text.clone()),
        "uid" => g.user = Some(arg(words, 1)?.text.clone()),
        "server-state-file" => g.server_state_file = Some(arg(words, 1)?.text.clone()),
        "gid" => g.group = Some(arg(words, 1)?.text.clone()),
        "log" => {
            let t = log_target(words)?;
            g.log.get_or_insert_with(Vec::new).push(sp(kw, t));
        }
        "hard-stop-after" => {
            let w = arg(words, 1)?;
            g.hard_stop_after = Some(sp(w, RawDuration::Text(w.text.clone())));
        }
        "stats" => match words.get(1).map(|w| w.text.as_str()) {
            Some("socket") => {
                let w = arg(words, 2)?;
                g.admin_socket = Some(w.text.strip_prefix("unix@").unwrap_or(&w.text).to_string());
                let opts: Vec<&str> = words[3..].iter().map(|w| w.text.as_str()).collect();
                let mut rest = Vec::new();
                let mut i = 0;
                while i < opts.len() {
                    if opts[i] == "expose-fd" && opts.get(i + 1) == Some(&"listeners") {
                        g.expose_fd_listeners = Some(true);
                        i += 2;
                    } else {
                        rest.push(opts[i]);
                        i += 1;
                    }
                }
                if !rest.is_empty() {
                    notice(format!(
                        "stats socket: options {} are ignored",
                        rest.join(" ")
                    ));
                }
            }
            Some("timeout") | Some("maxconn") => {
                notice(format!("stats {} has no effect in ringlb", words[1].text))
            }
            _ => return Err(KwErr::Unsupported),
        },
        "tune.pipesize" => {
            let w = arg(words, 1)?;
            g.tune.get_or_insert_with(RawTune::default).pipesize = Some(sp(w, size(w)?));
        }
        "tune.maxpipes" => {
            let w = arg(words, 1)?;
            g.tune.get_or_insert_with(RawTune::default).maxpipes = Some(sp(w, int(w)?));
        }
        "tune.bufsize" => {
            let w = arg(words, 1)?;
            g.tune.get_or_insert_with(RawTune::default).bufsize = Some(sp(w, size(w)?));
        }
        "tune.http.maxhdr" => {
            let w = arg(words, 1)?;
            g.tune.get_or_insert_with(RawTune::default).http_maxhdr = Some(sp(w, int(w)?));
        }
        "tune.maxrewrite" => {
            let w = arg(words, 1)?;
            g.tune.get_or_insert_with(RawTune::default).maxrewrite = Some(sp(w, size(w)?));
        }
        "tune.ssl.lifetime" => {
            let w = arg(words, 1)?;
            // HAProxy's unit for this keyword is the second.
            let text = if w.text.bytes().all(|b| b.is_ascii_digit()) {
                format!("{}s", w.text)
            } else {
                w.text.clone()
            };
            g.tune.get_or_insert_with(RawTune::default).ssl_lifetime =
                Some(sp(w, RawDuration::Text(text)));
        }
        "tune.ssl.ktls" => {
            let w = arg(words, 1)?;
            let on = match w.text.as_str() {
                "on" => true,
                "off" => false,
                other => {
                    return Err(KwErr::Bad(perr(
                        &w.span,
                        format!("tune.ssl.ktls: expected on or off, got \"{other}\""),
                    )))
                }
            };
            g.tune.get_or_insert_with(RawTune::default).ssl_ktls = Some(on);
        }
        "nosplice" => g.tune.get_or_insert_with(RawTune::default).splice = Some(false),
        "nbproc" => notice("nbproc is obsolete (one process with shards); ignored".into()),
        "cpu-map" => notice("cpu-map ignored: shards pin themselves one per CPU".into()),
        "chroot" => g.chroot = Some(arg(words, 1)?.text.clone()),
        "ulimit-n" => notice("ulimit-n ignored: ringlb raises the fd limit from maxconn".into()),
        "quiet"
        | "noepoll"
        | "nopoll"
        | "noreuseport"
        | "spread-checks"
        | "node"
        | "description"
        | "localpeer"
        | "set-dumpable"
        | "expose-experimental-directives"
        | "insecure-fork-wanted"
        | "busy-polling"
        | "maxsslconn"
        | "maxcompcpuusage"
        | "log-send-hostname"
        | "log-tag" => notice(format!("{} has no effect in ringlb; ignored", kw.text)),
        t if t.starts_with("tune.ssl.")
            || t.starts_with("ssl-default-")
            || t == "ssl-server-verify"
            || t == "ca-base"
            || t == "crt-base" =>
        {
            notice(format!(
                "{t}: not applied (TLS options go on each bind and server line); ignored"
            ))
        }
        "master-worker" => {
            if let Some(w) = words.get(1) {
                return Err(KwErr::Bad(perr(
                    &w.span,
                    format!(
                        "master-worker: unsupported option \"{}\" (a worker that dies stops the master, as HAProxy's default)",
                        w.text
                    ),
                )));
            }
            g.master_worker = Some(true);
        }
        _ => return Err(KwErr::Unsupported),
    }
    Ok(())
}
