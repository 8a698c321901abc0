//! `bind ADDR[,ADDR...] [options]`, `server NAME ADDR [options]` and
//! `default-server [options]` mapped onto [`RawBind`] and [`RawServer`]. Options
//! ringlb has are mapped; placement hints that change nothing here (`bind ...
//! transparent`, `name`, `interface`; `server ... id`, `init-addr`) are accepted;
//! any other option is refused at its own word (under `--lenient`: skipped, the
//! line kept).

use super::global::int;
use super::lexer::Word;
use super::{cover, perr, sp, KwErr};
use crate::config::schema::*;
use toml::Spanned;

fn bad(w: &Word, msg: impl Into<String>) -> KwErr {
    KwErr::Bad(perr(&w.span, msg))
}

fn next(words: &[Word], i: usize) -> Result<&Word, KwErr> {
    words.get(i + 1).ok_or_else(|| {
        bad(
            &words[i],
            format!("\"{}\" needs an argument", words[i].text),
        )
    })
}

pub(super) fn bind(p: &mut RawProxy, words: &[Word]) -> Result<(), KwErr> {
    let addrs = words
        .get(1)
        .ok_or_else(|| bad(&words[0], "bind needs an address (bind *:PORT)"))?;
    let mut table = RawBindTable {
        address: String::new(),
        ssl: None,
        accept_proxy: None,
        backlog: None,
        freebind: None,
        transparent: None,
    };
    let mut unsupported: Option<Word> = None;
    let mut i = 2;
    while i < words.len() {
        let w = &words[i];
        match w.text.as_str() {
            "ssl" => {
                table.ssl.get_or_insert_with(toml::Table::new);
            }
            "crt" | "alpn" | "ciphers" | "ca-file" | "crl-file" | "verify" | "ssl-min-ver"
            | "ssl-max-ver" | "ciphersuites" | "crt-list" | "ca-ignore-err" | "crt-ignore-err"
            | "tls-ticket-keys" => {
                let v = next(words, i)?;
                let ssl = table.ssl.get_or_insert_with(toml::Table::new);
                let val = toml::Value::String(v.text.clone());
                // `crt` may be given several times: a list then.
                match ssl.get_mut(&w.text) {
                    Some(toml::Value::Array(a)) if w.text == "crt" => a.push(val),
                    Some(prev) if w.text == "crt" => {
                        *prev = toml::Value::Array(vec![prev.clone(), val]);
                    }
                    _ => {
                        ssl.insert(w.text.clone(), val);
                    }
                }
                i += 1;
            }
            "accept-proxy" => table.accept_proxy = Some(true),
            "backlog" => {
                let v = next(words, i)?;
                table.backlog = Some(int(v)?);
                i += 1;
            }
            "freebind" => table.freebind = Some(true),
            "transparent" => table.transparent = Some(true),
            // Placement hints that do not change what is accepted.
            "v4v6" | "v6only" | "defer-accept" | "tfo" => {}
            "name" | "interface" | "process" | "thread" | "id" | "nice" | "mss" => i += 1,
            _ => {
                unsupported.get_or_insert_with(|| w.clone());
            }
        }
        i += 1;
    }
    let list = p.bind.get_or_insert_with(Vec::new);
    // Comma-separated addresses share the word's span.
    for a in addrs.text.split(',') {
        let a = a
            .strip_prefix("ipv4@")
            .or_else(|| a.strip_prefix("ipv6@"))
            .unwrap_or(a);
        if a.starts_with('/') || a.contains('@') {
            return Err(bad(
                addrs,
                format!("bind \"{a}\": only TCP addresses (HOST:PORT) are supported"),
            ));
        }
        let b = if table.ssl.is_none()
            && table.accept_proxy.is_none()
            && table.backlog.is_none()
            && table.freebind.is_none()
            && table.transparent.is_none()
        {
            RawBind::Address(a.to_string())
        } else {
            RawBind::Table(RawBindTable {
                address: a.to_string(),
                ..table.clone()
            })
        };
        list.push(Spanned::new(addrs.span.clone(), b));
    }
    unsupported.map_or(Ok(()), |w| Err(KwErr::UnsupportedOpt(w)))
}

pub(super) fn server(p: &mut RawProxy, words: &[Word]) -> Result<(), KwErr> {
    let (Some(name), Some(addr)) = (words.get(1), words.get(2)) else {
        return Err(KwErr::Bad(perr(
            &cover(words),
            "server needs a name and an address (server NAME HOST:PORT [options])",
        )));
    };
    let mut s = RawServer {
        name: Some(sp(name, name.text.clone())),
        address: Some(sp(addr, addr.text.clone())),
        ..RawServer::default()
    };
    let r = server_options(&mut s, words, 3);
    p.servers
        .get_or_insert_with(Vec::new)
        .push(Spanned::new(cover(words), s));
    r
}

/// Server options from word `from` on. Unsupported options are skipped and the
/// first is returned as an error after all others were applied (so `--lenient`
/// keeps the server).
pub(super) fn server_options(s: &mut RawServer, words: &[Word], from: usize) -> Result<(), KwErr> {
    let mut unsupported: Option<Word> = None;
    let mut i = from;
    while i < words.len() {
        let w = &words[i];
        let num = |i: usize| -> Result<Spanned<i64>, KwErr> {
            let v = next(words, i)?;
            Ok(sp(v, int(v)?))
        };
        let dur = |i: usize| -> Result<Spanned<RawDuration>, KwErr> {
            let v = next(words, i)?;
            Ok(sp(v, RawDuration::Text(v.text.clone())))
        };
        let mut takes = true;
        match w.text.as_str() {
            "weight" => s.weight = Some(num(i)?),
            "maxconn" => s.maxconn = Some(num(i)?),
            "maxqueue" => s.maxqueue = Some(num(i)?),
            "rise" => s.rise = Some(num(i)?),
            "fall" => s.fall = Some(num(i)?),
            "port" => s.port = Some(num(i)?),
            "inter" => s.inter = Some(dur(i)?),
            "fastinter" => s.fastinter = Some(dur(i)?),
            "downinter" => s.downinter = Some(dur(i)?),
            "slowstart" => s.slowstart = Some(dur(i)?),
            "pool-max-conn" => s.pool_max_conn = Some(num(i)?),
            "pool-purge-delay" => s.pool_purge_delay = Some(dur(i)?),
            "pool-low-conn" => s.pool_low_conn = Some(num(i)?),
            "addr" => {
                let v = next(words, i)?;
                s.addr = Some(sp(v, v.text.clone()));
            }
            "cookie" => s.cookie = Some(next(words, i)?.text.clone()),
            "on-marked-down" => {
                let v = next(words, i)?;
                s.on_marked_down = Some(sp(v, v.text.clone()));
            }
            "on-marked-up" => {
                let v = next(words, i)?;
                s.on_marked_up = Some(sp(v, v.text.clone()));
            }
            "verify" | "ca-file" | "crl-file" | "sni" | "verifyhost" | "crt" => {
                let v = next(words, i)?;
                let val = Some(sp(v, v.text.clone()));
                match w.text.as_str() {
                    "verify" => s.verify = val,
                    "ca-file" => s.ca_file = val,
                    "crl-file" => s.crl_file = val,
                    "sni" => s.sni = val,
                    "crt" => s.crt = val,
                    _ => s.verifyhost = val,
                }
            }
            "id" | "init-addr" => {
                next(words, i)?;
            }
            _ => {
                takes = false;
                match w.text.as_str() {
                    "check" => s.check = Some(true),
                    "no-check" => s.check = Some(false),
                    "backup" => s.backup = Some(true),
                    "no-backup" => s.backup = Some(false),
                    "disabled" => s.disabled = Some(true),
                    "enabled" => s.disabled = Some(false),
                    "send-proxy" => s.send_proxy = Some(sp(w, "v1".into())),
                    "send-proxy-v2" => s.send_proxy = Some(sp(w, "v2".into())),
                    "no-send-proxy" | "no-send-proxy-v2" => s.send_proxy = None,
                    "ssl" => s.ssl = Some(true),
                    "no-ssl" => s.ssl = Some(false),
                    "check-ssl" => s.check_ssl = Some(true),
                    "no-check-ssl" => s.check_ssl = Some(false),
                    _ => {
                        unsupported.get_or_insert_with(|| w.clone());
                    }
                }
            }
        }
        i += if takes { 2 } else { 1 };
    }
    unsupported.map_or(Ok(()), |w| Err(KwErr::UnsupportedOpt(w)))
}
