//! Formatting of log lines: HAProxy's `tcplog` session line and the syslog
//! headers (RFC3164 for the network, the syslog daemon's file shape for files and
//! terminals, so `halog` reads either). Times are UTC. Pure functions, no I/O.

use std::fmt::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use super::record::SessionRecord;

const MONTHS: [&str; 12] = [
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

/// HAProxy's `option tcplog` line:
/// `%ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq`.
pub fn tcplog(r: &SessionRecord, names: &Names) -> String {
    let (y, mo, d, h, mi, s, ms) = civil(r.accept_time);
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
        None => (fe, "<NOSRV>"),
    };
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
}
