//! `show errors [<iid>|<proxy>] [request|response]`: the last malformed
//! request of each frontend and response of each backend (kept by the data
//! shards in `state::errors`), in HAProxy 2.6's layout — a header per event,
//! then the bytes as `dump_text_line` prints them (one input line per output
//! line, cut at 80 columns with `+` continuation lines, `\r`, `\n`, `\t`,
//! `\e`, `\\` escaped and other bytes as `\xHH`). The H1 flags HAProxy shows
//! are its mux's internals and read 0 here; the parser state and the error
//! position are located as HAProxy's parser would stop (`http::locate`).

use std::time::SystemTime;

use super::stats::{backend_iid, frontend_iid};
use crate::config::model::Config;
use crate::http::locate::locate;
use crate::state::errors::{Direction, ErrorLog, ErrorSnapshot};

/// Runs `show errors` with its arguments (`args` after the two words).
pub fn show(config: &Config, log: &ErrorLog, args: &[&str]) -> String {
    let only = match args.first() {
        None => None,
        Some(p) => match proxy_iid(config, p) {
            Some(iid) => Some(iid),
            None => return "No such proxy.\n\n".into(),
        },
    };
    let (requests, responses) = match args.get(1).copied() {
        Some("request") => (true, false),
        Some("response") => (false, true),
        _ => (true, true),
    };
    let mut out = format!(
        "Total events captured on [{}] : {}\n",
        date_ms(SystemTime::now()),
        log.events()
    );
    // HAProxy's order: proxy by proxy, its request then its response.
    let mut proxies: Vec<(usize, Option<usize>, Option<usize>)> = Vec::new();
    for fi in 0..config.frontends.len() {
        let listen = config
            .backends
            .iter()
            .position(|b| b.name == config.frontends[fi].name);
        proxies.push((frontend_iid(fi), Some(fi), listen));
    }
    for bi in 0..config.backends.len() {
        if !proxies.iter().any(|p| p.2 == Some(bi)) {
            proxies.push((backend_iid(config, bi), None, Some(bi)));
        }
    }
    proxies.sort_by_key(|p| p.0);
    for (iid, fe, be) in proxies {
        // A proxy asked for shows its own events and those it took part in.
        let wanted =
            |other_iid: Option<usize>| only.is_none_or(|o| o == iid || other_iid == Some(o));
        if let (true, Some(fi)) = (requests, fe) {
            if let Some(e) = log.last(Direction::Request, fi) {
                let other = e.other.map(|b| backend_iid(config, b));
                if wanted(other) {
                    out += &event(config, Direction::Request, fi, &e);
                }
            }
        }
        if let (true, Some(bi)) = (responses, be) {
            if let Some(e) = log.last(Direction::Response, bi) {
                let other = e.other.map(frontend_iid);
                if wanted(other) {
                    out += &event(config, Direction::Response, bi, &e);
                }
            }
        }
    }
    out + "\n"
}

/// A proxy named or numbered as HAProxy's `show errors` takes it.
fn proxy_iid(config: &Config, p: &str) -> Option<usize> {
    if let Some(fi) = config.frontends.iter().position(|f| f.name == p) {
        return Some(frontend_iid(fi));
    }
    if let Some(bi) = config.backends.iter().position(|b| b.name == p) {
        return Some(backend_iid(config, bi));
    }
    p.parse().ok().filter(|&n| n != 0)
}

fn event(config: &Config, dir: Direction, proxy: usize, e: &ErrorSnapshot) -> String {
    let (fe, be) = match dir {
        Direction::Request => (Some(proxy), e.other),
        Direction::Response => (e.other, Some(proxy)),
    };
    let fe_name = |f: Option<usize>| f.map_or("<NONE>", |f| config.frontends[f].name.as_str());
    let be_name = |b: Option<usize>| b.map_or("<NONE>", |b| config.backends[b].name.as_str());
    let fe_iid = fe.map_or(-1, |f| frontend_iid(f) as i64);
    let be_iid = be.map_or(-1, |b| backend_iid(config, b) as i64);
    let mut out = format!(" \n[{}]", date_ms(e.when));
    out += &match dir {
        Direction::Request => format!(
            " frontend {} (#{fe_iid}): invalid request\n  backend {} (#{be_iid})",
            fe_name(fe),
            be_name(be)
        ),
        Direction::Response => format!(
            " backend {} (#{be_iid}): invalid response\n  frontend {} (#{fe_iid})",
            be_name(be),
            fe_name(fe)
        ),
    };
    let server = be
        .zip(e.server)
        .map(|(b, s)| &config.backends[b].servers[s]);
    let (pos, state) = locate(&e.bytes, dir == Direction::Request);
    out += &format!(
        ", server {} (#{}), event #{}, src {}:{}\n  buffer starts at 0 (including 0 out), {} free,\n  \
         len {}, wraps at {}, error at position {pos}\n  \
         H1 connection flags 0x00000000, H1 stream flags 0x00000000\n  \
         H1 msg state {}({}), H1 msg flags 0x00000000\n  \
         H1 chunk len 0 bytes, H1 body len 0 bytes :\n  \n",
        server.map_or("<NONE>", |s| s.name.as_str()),
        e.server.map_or(-1, |s| s as i64 + 1),
        e.event,
        e.client.ip(),
        e.client.port(),
        e.size.saturating_sub(e.bytes.len()),
        e.bytes.len(),
        e.size,
        state.name(),
        state as u8,
    );
    out + &dump_text(&e.bytes)
}

/// HAProxy's `dump_text_line`, applied from the first byte to the last.
pub fn dump_text(buf: &[u8]) -> String {
    let mut out = String::new();
    let (mut ptr, mut line) = (0, 0);
    while ptr < buf.len() {
        let end = out.len() + 80;
        out += &format!("  {ptr:05}{} ", if ptr == line { ' ' } else { '+' });
        while ptr < buf.len() {
            let c = buf[ptr];
            let text = match c {
                b'\t' => "\\t".to_string(),
                b'\n' => "\\n".to_string(),
                b'\r' => "\\r".to_string(),
                0x1b => "\\e".to_string(),
                b'\\' => "\\\\".to_string(),
                0x20..=0x7e => (c as char).to_string(),
                _ => format!("\\x{c:02X}"),
            };
            // HAProxy's room checks: one more byte than the text needs.
            if out.len() + text.len() >= end {
                break;
            }
            out += &text;
            ptr += 1;
            if c == b'\n' {
                line = ptr;
                break;
            }
        }
        out.push('\n');
    }
    out
}

/// `26/Nov/2026:09:12:03.297`, UTC as ringlb's logs.
fn date_ms(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s, ms) = crate::log::civil(t);
    format!(
        "{d:02}/{}/{y:04}:{h:02}:{mi:02}:{s:02}.{ms:03}",
        crate::log::MONTHS[(mo - 1) as usize]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_dumped_line_by_line_as_haproxy_does() {
        assert_eq!(
            dump_text(b"GET /a b c HTTP/1.1\r\nHost: x\r\n\r\n"),
            "  00000  GET /a b c HTTP/1.1\\r\\n\n  00021  Host: x\\r\\n\n  00030  \\r\\n\n"
        );
        assert_eq!(dump_text(b"a\x01\\"), "  00000  a\\x01\\\\\n");
        let long = vec![b'a'; 100];
        let d = dump_text(&long);
        let lines: Vec<&str> = d.lines().collect();
        assert_eq!(lines.len(), 2, "{d}");
        assert!(
            lines[0].len() < 80 && lines[1].starts_with("  00070+ "),
            "{d}"
        );
    }
}
