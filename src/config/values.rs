//! Parsers for the small value languages of the config: durations with units,
//! `HOST:PORT` addresses, syslog facilities and levels, and the escapes of
//! tcp-check `send` strings and hex `binary` payloads. Pure functions returning
//! `Result<_, String>`; the caller adds the position.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use super::schema::RawDuration;

/// The longest duration HAProxy's timers take: 2^31-1 ms (~24.8 days). Longer
/// values are refused at load, as HAProxy does, so no deadline computed from a
/// configured duration can overflow at run time.
pub const MAX_DURATION_MS: u64 = i32::MAX as u64;

/// `"250ms"`, `"5s"`, `"2m"`, `"1h"`, `"1d"`, `"100us"`, or an integer in ms; at
/// most [`MAX_DURATION_MS`].
pub fn duration(v: &RawDuration) -> Result<Duration, String> {
    let overflow = |what: &str| {
        format!("timer overflow in {what} (maximum value is {MAX_DURATION_MS} ms or ~24.8 days)")
    };
    let d = match v {
        RawDuration::Millis(ms) if *ms >= 0 => Duration::from_millis(*ms as u64),
        RawDuration::Millis(ms) => {
            return Err(format!("invalid duration {ms}: must not be negative"))
        }
        RawDuration::Text(s) => {
            let t = s.trim();
            let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
            let (num, unit) = t.split_at(split);
            let shown = excerpt(s);
            if num.is_empty() {
                return Err(format!(
                    "invalid duration \"{shown}\": expected a number with a unit (us, ms, s, m, h, d)"
                ));
            }
            let n: u64 = num.parse().map_err(|_| overflow(&format!("\"{shown}\"")))?;
            let micros_per_unit: u64 = match unit {
                "" | "ms" => 1_000,
                "us" => 1,
                "s" => 1_000_000,
                "m" => 60_000_000,
                "h" => 3_600_000_000,
                "d" => 86_400_000_000,
                _ => {
                    return Err(format!(
                        "invalid duration \"{shown}\": unknown unit \"{}\" (us, ms, s, m, h, d)",
                        excerpt(unit)
                    ))
                }
            };
            let micros = n
                .checked_mul(micros_per_unit)
                .ok_or_else(|| overflow(&format!("\"{shown}\"")))?;
            Duration::from_micros(micros)
        }
    };
    if d.as_millis() > MAX_DURATION_MS as u128 {
        let what = match v {
            RawDuration::Millis(ms) => ms.to_string(),
            RawDuration::Text(s) => format!("\"{}\"", excerpt(s)),
        };
        return Err(overflow(&what));
    }
    Ok(d)
}

/// At most 40 characters of a user's value, for messages: a 1 MB bad value must
/// not come back whole in an error.
pub fn excerpt(s: &str) -> String {
    const MAX: usize = 40;
    if s.chars().count() <= MAX {
        return s.to_string();
    }
    let head: String = s.chars().take(MAX).collect();
    format!("{head}... ({} bytes)", s.len())
}

/// `"HOST:PORT"`, `"*:PORT"`, `"[::1]:PORT"`, `"localhost:PORT"`; port 1-65535.
pub fn address(s: &str) -> Result<SocketAddr, String> {
    let bad = || format!("invalid address \"{s}\"");
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let end = rest.find(']').ok_or_else(bad)?;
        let port = rest[end + 1..].strip_prefix(':').ok_or_else(bad)?;
        (&rest[..end], port)
    } else {
        s.rsplit_once(':').ok_or_else(bad)?
    };
    let port: u32 = port.parse().map_err(|_| bad())?;
    if port == 0 || port > 65535 {
        return Err(bad());
    }
    let port = port as u16;
    if host == "*" || host.is_empty() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port));
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    if host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    {
        if let Some(a) = (host, port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut i| i.next())
        {
            return Ok(a);
        }
        return Err(format!(
            "invalid address \"{s}\": cannot resolve \"{host}\""
        ));
    }
    Err(bad())
}

pub fn facility(name: &str) -> Result<u8, String> {
    const NAMES: [&str; 24] = [
        "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "auth2",
        "ftp", "ntp", "audit", "alert", "cron2", "local0", "local1", "local2", "local3", "local4",
        "local5", "local6", "local7",
    ];
    NAMES
        .iter()
        .position(|n| *n == name)
        .map(|i| i as u8)
        .ok_or_else(|| format!("unknown syslog facility \"{name}\""))
}

pub fn level(name: &str) -> Result<u8, String> {
    const NAMES: [&str; 8] = [
        "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
    ];
    NAMES
        .iter()
        .position(|n| *n == name)
        .map(|i| i as u8)
        .ok_or_else(|| {
            format!("unknown log level \"{name}\" (emerg alert crit err warning notice info debug)")
        })
}

/// Decodes `\r`, `\n`, `\t`, `\\`, `\"` and `\xHH` as HAProxy's tcp-check does.
pub fn unescape(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let c = *b.get(i + 1).ok_or("trailing backslash")?;
        match c {
            b'r' => out.push(b'\r'),
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'\\' => out.push(b'\\'),
            b'"' => out.push(b'"'),
            b'x' => {
                let h = s.get(i + 2..i + 4).ok_or("truncated \\x escape")?;
                out.push(u8::from_str_radix(h, 16).map_err(|_| format!("invalid escape \\x{h}"))?);
                i += 2;
            }
            other => return Err(format!("unknown escape \\{}", other as char)),
        }
        i += 2;
    }
    Ok(out)
}

pub fn hex(s: &str) -> Result<Vec<u8>, String> {
    let t: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    if !t.len().is_multiple_of(2) {
        return Err(format!("invalid hex \"{s}\": odd number of digits"));
    }
    (0..t.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&t[i..i + 2], 16).map_err(|_| format!("invalid hex \"{s}\"")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_bounded_like_haproxys_timers() {
        let t = |s: &str| duration(&RawDuration::Text(s.into()));
        assert_eq!(
            t("2147483647").unwrap(),
            Duration::from_millis(2_147_483_647)
        );
        assert_eq!(t("24d").unwrap(), Duration::from_secs(24 * 86400));
        for bad in [
            "2147483648",
            "25d",
            "307445734561825861m",
            "4611686018427387904m",
            "99999999999999999999999s",
        ] {
            let e = t(bad).unwrap_err();
            assert!(e.contains("timer overflow"), "{bad}: {e}");
        }
        let e = duration(&RawDuration::Millis(i64::MAX)).unwrap_err();
        assert!(e.contains("timer overflow"), "{e}");
        let long = format!("5{}", "x".repeat(1_000_000));
        let e = t(&long).unwrap_err();
        assert!(
            e.len() < 200,
            "a huge value is not echoed whole: {} bytes",
            e.len()
        );
    }

    #[test]
    fn durations_take_units_or_milliseconds() {
        assert_eq!(
            duration(&RawDuration::Text("250ms".into())),
            Ok(Duration::from_millis(250))
        );
        assert_eq!(
            duration(&RawDuration::Text("5s".into())),
            Ok(Duration::from_secs(5))
        );
        assert_eq!(
            duration(&RawDuration::Text("2m".into())),
            Ok(Duration::from_secs(120))
        );
        assert_eq!(
            duration(&RawDuration::Text("1h".into())),
            Ok(Duration::from_secs(3600))
        );
        assert_eq!(
            duration(&RawDuration::Millis(5000)),
            Ok(Duration::from_secs(5))
        );
        assert!(duration(&RawDuration::Text("5 parsecs".into()))
            .unwrap_err()
            .contains("unknown unit"));
        assert!(duration(&RawDuration::Text("fast".into())).is_err());
    }

    #[test]
    fn addresses() {
        assert_eq!(address("*:9001").unwrap(), "0.0.0.0:9001".parse().unwrap());
        assert_eq!(address("[::1]:80").unwrap(), "[::1]:80".parse().unwrap());
        assert_eq!(
            address("127.0.0.1:8080").unwrap(),
            "127.0.0.1:8080".parse().unwrap()
        );
        assert_eq!(address("localhost:80").unwrap().port(), 80);
        assert_eq!(
            address("10.0.0.1:99999").unwrap_err(),
            "invalid address \"10.0.0.1:99999\""
        );
        assert!(address("10.0.0.1").is_err());
        assert!(address("*:0").is_err());
    }

    #[test]
    fn escapes_and_hex() {
        assert_eq!(
            unescape("info replication\\r\\n").unwrap(),
            b"info replication\r\n"
        );
        assert_eq!(unescape("a\\x41").unwrap(), b"aA");
        assert_eq!(hex("0a0B ff").unwrap(), vec![0x0a, 0x0b, 0xff]);
        assert!(hex("abc").is_err());
    }

    #[test]
    fn facilities_and_levels() {
        assert_eq!(facility("local0"), Ok(16));
        assert_eq!(level("info"), Ok(6));
        assert!(level("loud").is_err());
    }
}
