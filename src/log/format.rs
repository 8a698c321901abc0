//! Formatting of log lines: HAProxy's `tcplog` session line and the syslog
//! headers (RFC3164 for the network, the syslog daemon's file shape for files and
//! terminals, so `halog` reads either). Times are UTC. Pure functions, no I/O.

use std::fmt::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use super::record::{HttpRecord, SessionRecord, PROMEX_APPLET, STATS_APPLET};

pub(crate) const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// UTC calendar fields of a time: (year, month 1-12, day, hour, minute, second, ms).
pub fn civil(t: SystemTime) -> (i64, u32, u32, u32, u32, u32, u32) {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        month,
        day,
        (rem / 3600) as u32,
        ((rem % 3600) / 60) as u32,
        (rem % 60) as u32,
        d.subsec_millis(),
    )
}

/// `Nov 24 19:40:01` (RFC3164 timestamp: day padded with a space).
pub fn syslog_time(t: SystemTime) -> String {
    let (_, mo, d, h, mi, s, _) = civil(t);
    format!("{} {d:>2} {h:02}:{mi:02}:{s:02}", MONTHS[(mo - 1) as usize])
}

/// Names needed to format lines, copied from the configuration.
#[derive(Debug, Clone, Default)]
pub struct Names {
    pub frontends: Vec<String>,
    pub backends: Vec<(String, Vec<String>)>,
}

/// Frontend, backend and server names of a session; a session that never
/// reached a backend logs `frontend/<NOSRV>`, as HAProxy does, and one the
/// stats page (or the Prometheus exporter) answered `frontend/<STATS>`
/// (`frontend/<PROMEX>`).
pub(crate) fn session_names<'a>(
    r: &SessionRecord,
    names: &'a Names,
) -> (&'a str, &'a str, &'a str) {
    let fe = names
        .frontends
        .get(r.frontend)
        .map(String::as_str)
        .unwrap_or("-");
    let (be, srv) = match r.backend.and_then(|b| names.backends.get(b)) {
        Some((bname, servers)) => (
            bname.as_str(),
            r.server
                .and_then(|s| servers.get(s))
                .map(String::as_str)
                .unwrap_or("<NOSRV>"),
        ),
        None => (
            fe,
            match r.server {
                Some(STATS_APPLET) => "<STATS>",
                Some(PROMEX_APPLET) => "<PROMEX>",
                _ => "<NOSRV>",
            },
        ),
    };
    (fe, be, srv)
}

/// HAProxy's `option tcplog` line:
/// `%ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq`.
pub fn tcplog(r: &SessionRecord, names: &Names) -> String {
    let (y, mo, d, h, mi, s, ms) = civil(r.accept_time);
    let (fe, be, srv) = session_names(r, names);
    let mut out = String::with_capacity(160);
    let ip = match r.client {
        std::net::SocketAddr::V4(a) => a.ip().to_string(),
        std::net::SocketAddr::V6(a) => a.ip().to_string(),
    };
    let _ = write!(
        out,
        "{ip}:{} [{d:02}/{}/{y}:{h:02}:{mi:02}:{s:02}.{ms:03}] {fe} {be}/{srv} {}/{}/{} {} {} {}/{}/{}/{}/{}{} {}/{}",
        r.client.port(),
        MONTHS[(mo - 1) as usize],
        r.tw_ms,
        r.tc_ms,
        r.tt_ms,
        r.bytes_down,
        r.termination.as_str(),
        r.actconn,
        r.feconn,
        r.beconn,
        r.srv_conn,
        if r.redispatched { "+" } else { "" },
        r.retries,
        r.srv_queue,
        r.backend_queue,
    );
    out
}

/// Longest request line kept in a log (HAProxy's `tune.http.logurilen`, 1024
/// with the trailing NUL).
const MAX_LOGGED_REQUEST_LINE: usize = 1023;

/// Appends `bytes` with HAProxy's log escaping: control bytes, bytes from 127 up
/// and the bytes in `extra` become `#XX` (upper-case hex).
fn push_escaped(out: &mut String, bytes: &[u8], extra: &[u8]) {
    for &b in bytes {
        if !(32..127).contains(&b) || extra.contains(&b) {
            let _ = write!(out, "#{b:02X}");
        } else {
            out.push(b as char);
        }
    }
}

/// ` {a|b}`: a capture block, when captures are declared.
fn push_captures(out: &mut String, captures: &[Box<[u8]>]) {
    if captures.is_empty() {
        return;
    }
    out.push(' ');
    push_captures_block(out, captures);
}

/// `{a|b}`, escaped as HAProxy's `%hr`/`%hs`.
pub(crate) fn push_captures_block(out: &mut String, captures: &[Box<[u8]>]) {
    out.push('{');
    for (i, c) in captures.iter().enumerate() {
        if i > 0 {
            out.push('|');
        }
        push_escaped(out, c, b"\"#{|}");
    }
    out.push('}');
}

/// HAProxy 2.6's `option httplog` line: `%ci:%cp [%tr] %ft %b/%s
/// %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq %hr %hs
/// %{+Q}r`. Cookies are not captured yet (`- -`, and `--` for the persistence
/// half of `%tsc`); `%hr`/`%hs` vanish with their space when nothing is
/// captured, as in HAProxy.
pub fn httplog(r: &HttpRecord, names: &Names) -> String {
    let s = &r.session;
    let (y, mo, d, h, mi, sec, ms) = civil(r.request_time);
    let (fe, be, srv) = session_names(s, names);
    let ip = match s.client {
        std::net::SocketAddr::V4(a) => a.ip().to_string(),
        std::net::SocketAddr::V6(a) => a.ip().to_string(),
    };
    let mut out = String::with_capacity(200);
    let _ = write!(
        out,
        "{ip}:{} [{d:02}/{}/{y}:{h:02}:{mi:02}:{sec:02}.{ms:03}] {fe} {be}/{srv} {}/{}/{}/{}/{} {} {} - - {}{}{} {}/{}/{}/{}/{}{} {}/{}",
        s.client.port(),
        MONTHS[(mo - 1) as usize],
        r.tr_request_ms,
        s.tw_ms,
        s.tc_ms,
        r.tr_response_ms,
        r.ta_ms,
        r.status,
        s.bytes_down,
        s.termination.as_str(),
        r.persistence[0] as char,
        r.persistence[1] as char,
        s.actconn,
        s.feconn,
        s.beconn,
        s.srv_conn,
        if s.redispatched { "+" } else { "" },
        s.retries,
        s.srv_queue,
        s.backend_queue,
    );
    push_captures(&mut out, &r.request_captures);
    push_captures(&mut out, &r.response_captures);
    out.push_str(" \"");
    push_request_line(&mut out, r.request_line.as_deref());
    out.push('"');
    out
}

/// `%r`: the request line, escaped and cut as HAProxy does, `<BADREQ>` when
/// there was none.
pub(crate) fn push_request_line(out: &mut String, line: Option<&[u8]>) {
    match line {
        Some(line) => {
            let line = &line[..line.len().min(MAX_LOGGED_REQUEST_LINE)];
            push_escaped(out, line, b"\"#");
        }
        None => out.push_str("<BADREQ>"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::record::Termination;
    use std::time::Duration;

    #[test]
    fn civil_dates() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_549_201_123);
        assert_eq!(civil(t), (2026, 11, 24, 19, 40, 1, 123));
        assert_eq!(
            civil(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            (2000, 2, 29, 0, 0, 0, 0)
        );
        assert_eq!(
            syslog_time(UNIX_EPOCH + Duration::from_secs(1_767_229_200)),
            "Jan  1 01:00:00"
        );
    }

    #[test]
    fn tcplog_line_is_haproxys() {
        let names = Names {
            frontends: vec!["tcp-in".into()],
            backends: vec![("default_servers".into(), vec!["def.srv1".into()])],
        };
        let r = SessionRecord {
            frontend: 0,
            backend: Some(0),
            server: Some(0),
            client: "127.0.0.1:52314".parse().unwrap(),
            accept_time: UNIX_EPOCH + Duration::from_millis(1_795_549_201_123),
            tw_ms: 0,
            tc_ms: 1,
            tt_ms: 1503,
            bytes_up: 10,
            bytes_down: 4096,
            termination: Termination::NORMAL,
            retries: 0,
            redispatched: false,
            actconn: 3,
            feconn: 2,
            beconn: 1,
            srv_conn: 1,
            srv_queue: 0,
            backend_queue: 0,
            ssl: None,
        };
        assert_eq!(
            tcplog(&r, &names),
            "127.0.0.1:52314 [24/Nov/2026:19:40:01.123] tcp-in default_servers/def.srv1 0/1/1503 4096 -- 3/2/1/1/0 0/0"
        );
        let r = SessionRecord {
            server: None,
            tc_ms: -1,
            termination: Termination::NO_SERVER,
            ..r
        };
        assert!(tcplog(&r, &names).contains(" default_servers/<NOSRV> 0/-1/1503 4096 SC "));
        let r = SessionRecord {
            retries: 1,
            redispatched: true,
            ..r
        };
        assert!(
            tcplog(&r, &names).ends_with(" 3/2/1/1/+1 0/0"),
            "{}",
            tcplog(&r, &names)
        );
    }

    fn http_record(ms: u64, line: Option<&[u8]>) -> HttpRecord {
        let t = UNIX_EPOCH + Duration::from_millis(ms);
        HttpRecord {
            session: SessionRecord {
                frontend: 0,
                backend: Some(0),
                server: Some(0),
                client: "127.0.0.1:57088".parse().unwrap(),
                accept_time: t,
                tw_ms: 0,
                tc_ms: 0,
                tt_ms: 1,
                bytes_up: 78,
                bytes_down: 452,
                termination: Termination::NORMAL,
                retries: 0,
                redispatched: false,
                actconn: 1,
                feconn: 1,
                beconn: 0,
                srv_conn: 0,
                srv_queue: 0,
                backend_queue: 0,
                ssl: None,
            },
            request_time: t,
            tr_request_ms: 0,
            tr_response_ms: 1,
            ta_ms: 1,
            status: 200,
            request_line: line.map(Box::from),
            request_captures: Vec::new(),
            response_captures: Vec::new(),
            persistence: *b"--",
            log_level: None,
            samples: Vec::new(),
        }
    }

    /// Lines captured from haproxy 2.6.12 (`option httplog`, `log stdout format
    /// raw`) for the same requests.
    #[test]
    fn httplog_lines_are_haproxys() {
        let names = Names {
            frontends: vec!["fe".into()],
            backends: vec![("be".into(), vec!["s1".into()])],
        };
        let r = http_record(1_795_675_441_828, Some(b"GET / HTTP/1.1"));
        assert_eq!(
            httplog(&r, &names),
            r#"127.0.0.1:57088 [26/Nov/2026:06:44:01.828] fe be/s1 0/0/0/1/1 200 452 - - ---- 1/1/0/0/0 0/0 "GET / HTTP/1.1""#
        );

        let mut r = http_record(1_795_675_446_820, None);
        r.session.client = "127.0.0.1:55738".parse().unwrap();
        r.session.backend = None;
        r.session.server = None;
        r.session.tw_ms = -1;
        r.session.tc_ms = -1;
        r.session.bytes_down = 0;
        r.session.termination = Termination::PROXY_REQUEST;
        (r.tr_request_ms, r.tr_response_ms, r.ta_ms, r.status) = (-1, -1, 0, 400);
        assert_eq!(
            httplog(&r, &names),
            r#"127.0.0.1:55738 [26/Nov/2026:06:44:06.820] fe fe/<NOSRV> -1/-1/-1/-1/0 400 0 - - PR-- 1/1/0/0/0 0/0 "<BADREQ>""#
        );

        let names = Names {
            frontends: vec!["fe".into()],
            backends: vec![("slow".into(), vec!["s".into()])],
        };
        let mut r = http_record(1_795_675_669_943, Some(b"GET /slow HTTP/1.1"));
        r.session.client = "127.0.0.1:53942".parse().unwrap();
        r.session.bytes_down = 198;
        r.session.termination = Termination::SERVER_HEADERS_TIMEOUT;
        (r.tr_response_ms, r.ta_ms, r.status) = (-1, 1002, 504);
        assert_eq!(
            httplog(&r, &names),
            r#"127.0.0.1:53942 [26/Nov/2026:06:47:49.943] fe slow/s 0/0/0/-1/1002 504 198 - - sH-- 1/1/0/0/0 0/0 "GET /slow HTTP/1.1""#
        );
    }

    #[test]
    fn httplog_captures_and_escaping() {
        let names = Names {
            frontends: vec!["cap".into()],
            backends: vec![("echo".into(), vec!["e".into()])],
        };
        let mut r = http_record(1_795_675_868_090, Some(b"GET /q?a=1 HTTP/1.1"));
        r.session.client = "127.0.0.1:58706".parse().unwrap();
        r.session.bytes_down = 76;
        (r.tr_response_ms, r.ta_ms) = (0, 0);
        r.request_captures = vec![Box::from(&b"ex|am{ple}"[..]), Box::from(&b"curl/"[..])];
        r.response_captures = vec![Box::from(&b"1"[..])];
        assert_eq!(
            httplog(&r, &names),
            r#"127.0.0.1:58706 [26/Nov/2026:06:51:08.090] cap echo/e 0/0/0/0/0 200 76 - - ---- 1/1/0/0/0 0/0 {ex#7Cam#7Bple#7D|curl/} {1} "GET /q?a=1 HTTP/1.1""#
        );
        r.request_captures = vec![Box::from(&b""[..]), Box::from(&b""[..])];
        r.request_line = Some(Box::from(&b"GET /a\x80b\"# HTTP/1.1"[..]));
        let line = httplog(&r, &names);
        assert!(
            line.ends_with(r#" 0/0 {|} {1} "GET /a#80b#22#23 HTTP/1.1""#),
            "{line}"
        );
        r.request_line = Some(vec![b'a'; 5000].into_boxed_slice());
        let line = httplog(&r, &names);
        assert!(
            line.ends_with(&format!("\"{}\"", "a".repeat(1023))),
            "{line}"
        );
    }
}
