//! `show sess [ID|all]` and `shutdown session ID` for the runtime API: the
//! control shard asks the data shards through their inboxes (each answers on
//! a channel sent with the question, from its own thread) and waits a bounded
//! time for the answers, sleeping on its executor, never blocking it. The
//! output is HAProxy 2.6's (`0xID: proto=tcpv4 src=… fe=… be=… srv=… age=…`);
//! the fields HAProxy takes from its stream internals (task state, buffer
//! flags, expiry timers) ringlb has no equivalent for and shows as zero or
//! empty, so scripts that split the line find every field in its place.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::TryRecvError;

use super::stats::{backend_iid, frontend_iid};
use crate::config::model::{Config, Mode};
use crate::state::sessions::shard_of;
use crate::state::{SessionInfo, ShardMsg, Shared};

/// How long a command waits for the shards: a shard answers between two
/// ring rounds, so only a stuck shard makes this bound matter.
const ANSWER_WITHIN: Duration = Duration::from_secs(2);

/// Every live session of every shard, by id. A shard that does not answer in
/// time is left out.
pub async fn gather(shared: &Shared) -> Vec<SessionInfo> {
    let (tx, rx) = crossbeam_channel::unbounded();
    for inbox in &shared.inboxes {
        inbox.send(ShardMsg::ListSessions { reply: tx.clone() });
    }
    drop(tx);
    let mut out = Vec::new();
    let mut waiting = shared.inboxes.len();
    let end = Instant::now() + ANSWER_WITHIN;
    while waiting > 0 && Instant::now() < end {
        match rx.try_recv() {
            Ok((_, sessions)) => {
                out.extend(sessions);
                waiting -= 1;
            }
            Err(TryRecvError::Empty) => super::timers::sleep(Duration::from_millis(1)).await,
            Err(TryRecvError::Disconnected) => break,
        }
    }
    out.sort_by_key(|s| s.id);
    out
}

/// Kills session `id` on its shard: `Some(true)` if it was there.
pub async fn kill(shared: &Shared, id: u64) -> Option<bool> {
    let inbox = shared.inboxes.get(shard_of(id))?;
    let (tx, rx) = crossbeam_channel::bounded(1);
    inbox.send(ShardMsg::KillSession { id, reply: tx });
    let end = Instant::now() + ANSWER_WITHIN;
    while Instant::now() < end {
        match rx.try_recv() {
            Ok(found) => return Some(found),
            Err(TryRecvError::Empty) => super::timers::sleep(Duration::from_millis(1)).await,
            Err(TryRecvError::Disconnected) => return None,
        }
    }
    None
}

/// A session id as HAProxy's commands take a stream pointer (`strtoul(…, 0)`:
/// `0x` hex, a leading `0` octal, else decimal); `None` for 0 or garbage.
pub fn parse_id(s: &str) -> Option<u64> {
    let v = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()
    } else if s.len() > 1 && s.starts_with('0') {
        u64::from_str_radix(&s[1..], 8).ok()
    } else {
        s.parse().ok()
    };
    v.filter(|&v| v != 0)
}

/// HAProxy's `human_time`: at most two units, `0s` for zero.
pub fn human_time(d: Duration) -> String {
    let t = d.as_secs();
    let mut out = String::new();
    let mut left = 2;
    if t >= 86400 {
        out += &format!("{}d", t / 86400);
        left -= 1;
    }
    if left > 0 && t % 86400 / 3600 > 0 {
        out += &format!("{}h", t % 86400 / 3600);
        left -= 1;
    }
    if left > 0 && t % 3600 / 60 > 0 {
        out += &format!("{}m", t % 3600 / 60);
        left -= 1;
    }
    if (left > 0 && !t.is_multiple_of(60)) || t == 0 {
        out += &format!("{}s", t % 60);
    }
    out
}

fn proto(s: &SessionInfo) -> &'static str {
    match s.client.or(s.local) {
        Some(a) if a.is_ipv6() => "tcpv6",
        _ => "tcpv4",
    }
}

/// An address as HAProxy prints one (`addr_to_str` then `:port`, no brackets).
fn addr(a: std::net::SocketAddr) -> String {
    format!("{}:{}", a.ip(), a.port())
}

struct Names<'a> {
    fe: &'a str,
    be: &'a str,
    srv: &'a str,
}

fn names<'a>(config: &'a Config, s: &SessionInfo) -> Names<'a> {
    let be = s.backend.map(|b| &config.backends[b]);
    Names {
        fe: &config.frontends[s.frontend].name,
        be: be.map_or("<NONE>", |b| b.name.as_str()),
        srv: be
            .zip(s.server)
            .map_or("<none>", |(b, i)| b.servers[i].name.as_str()),
    }
}

/// `show sess`: one line per session, then the blank line ending the answer.
pub fn list(config: &Config, sessions: &[SessionInfo]) -> String {
    let mut out = String::new();
    for s in sessions {
        let n = names(config, s);
        let src = s.client.map_or_else(|| "?".to_string(), addr);
        out += &format!(
            "0x{:x}: proto={} src={src} fe={} be={} srv={} ts=00 epoch=0 age={} calls=0 rate=0 \
             cpu=0 lat=0 rq[f=000000h,i=0,an=00h,rx=,wx=,ax=] rp[f=000000h,i=0,an=00h,rx=,wx=,ax=] \
             scf=[8,0h,fd={}] scb=[{},1h,fd=-1] exp= rc=0 c_exp=\n",
            s.id,
            proto(s),
            n.fe,
            n.be,
            n.srv,
            human_time(s.age),
            s.fd,
            if s.server.is_some() { 8 } else { 0 },
        );
    }
    out + "\n"
}

/// `show sess ID` / `show sess all`: HAProxy's detailed block, as far as
/// ringlb knows the answers.
pub fn detail(config: &Config, s: &SessionInfo) -> String {
    let n = names(config, s);
    let mode = |m: Mode| if m == Mode::Http { "http" } else { "tcp" };
    let fe = &config.frontends[s.frontend];
    let mut out = format!(
        "0x{:x}: [{}] id={} proto={}",
        s.id,
        accept_date(s.accepted),
        s.id >> crate::state::sessions::SHARD_BITS,
        proto(s)
    );
    match s.client {
        Some(a) => out += &format!(" source={}\n", addr(a)),
        None => out += "\n",
    }
    out += "  flags=0x0, conn_retries=0, conn_exp=<NEVER> conn_et=0x000 srv_conn=(nil), \
            pend_pos=(nil) waiting=0 epoch=0\n";
    out += &format!(
        "  frontend={} (id={} mode={}), listener=? (id=1)",
        n.fe,
        frontend_iid(s.frontend),
        mode(fe.mode)
    );
    match s.local {
        Some(a) => out += &format!(" addr={}\n", addr(a)),
        None => out += "\n",
    }
    match s.backend {
        Some(b) => {
            out += &format!(
                "  backend={} (id={} mode={})\n",
                n.be,
                backend_iid(config, b),
                mode(config.backends[b].mode)
            );
            out += &format!("  server={} (id={})", n.srv, s.server.map_or(0, |i| i + 1));
            match s.server_addr {
                Some(a) => out += &format!(" addr={}\n", addr(a)),
                None => out += "\n",
            }
        }
        None => out += "  backend=<NONE> (id=-1 mode=-)\n  server=<NONE> (id=-1)\n",
    }
    out += &format!(
        "  task=0x{:x} (state=0x00 nice=0 calls=0 rate=0 exp=<NEVER> tmask=0x{:x} age={})\n",
        s.id,
        1u64 << shard_of(s.id),
        human_time(s.age)
    );
    out
}

/// `[26/Nov/2026:09:12:00.871500]`'s inside: UTC, microseconds.
fn accept_date(t: SystemTime) -> String {
    let (y, mo, d, h, mi, sec, _) = crate::log::civil(t);
    let us = t
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_micros();
    format!(
        "{d:02}/{}/{y:04}:{h:02}:{mi:02}:{sec:02}.{us:06}",
        crate::log::MONTHS[(mo - 1) as usize]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_time_shows_two_units_as_haproxy() {
        let s = Duration::from_secs;
        assert_eq!(human_time(s(0)), "0s");
        assert_eq!(human_time(s(59)), "59s");
        assert_eq!(human_time(s(61)), "1m1s");
        assert_eq!(human_time(s(3600)), "1h");
        assert_eq!(human_time(s(3661)), "1h1m");
        assert_eq!(human_time(s(90061)), "1d1h");
    }

    #[test]
    fn ids_parse_as_strtoul_base_0() {
        assert_eq!(parse_id("0x41"), Some(65));
        assert_eq!(parse_id("65"), Some(65));
        assert_eq!(parse_id("0101"), Some(65));
        assert_eq!(parse_id("0"), None);
        assert_eq!(parse_id("zz"), None);
    }

    #[test]
    fn a_line_starts_as_haproxys() {
        let cfg = crate::config::parse_str(
            "[[listen]]\nname = \"app\"\nbind = [\"127.0.0.1:1\"]\n\
             servers = [{ name = \"a\", address = \"127.0.0.1:2\" }]\n",
            std::path::Path::new("t.toml"),
        )
        .unwrap();
        let s = SessionInfo {
            id: 0x41,
            frontend: 0,
            backend: Some(0),
            server: Some(0),
            server_addr: Some("127.0.0.1:2".parse().unwrap()),
            client: Some("127.0.0.1:5555".parse().unwrap()),
            local: Some("127.0.0.1:1".parse().unwrap()),
            accepted: UNIX_EPOCH + Duration::from_micros(1_500),
            age: Duration::from_secs(61),
            fd: 9,
        };
        let l = list(&cfg, std::slice::from_ref(&s));
        assert!(
            l.starts_with(
                "0x41: proto=tcpv4 src=127.0.0.1:5555 fe=app be=app srv=a ts=00 epoch=0 age=1m1s "
            ),
            "{l}"
        );
        assert!(l.ends_with("scf=[8,0h,fd=9] scb=[8,1h,fd=-1] exp= rc=0 c_exp=\n\n"));
        let d = detail(&cfg, &s);
        assert!(d.starts_with(
            "0x41: [01/Jan/1970:00:00:00.001500] id=1 proto=tcpv4 source=127.0.0.1:5555\n"
        ));
        assert!(d.contains("  frontend=app (id=1 mode=tcp), listener=? (id=1) addr=127.0.0.1:1\n"));
        assert!(d.contains("  backend=app (id=1 mode=tcp)\n  server=a (id=1) addr=127.0.0.1:2\n"));
    }
}
