//! The PROXY protocol (HAProxy's, versions 1 and 2), sans-io: parse the header a
//! load balancer in front of us sends (`bind … accept-proxy`) and write the one
//! we send to servers (`server … send-proxy` / `send-proxy-v2`). Bytes in,
//! addresses out; the caller reads from and writes to sockets.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The v2 signature, 12 bytes.
const V2_SIG: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// Longest v1 line, CRLF included (the specification's bound).
const V1_MAX: usize = 107;
/// Longest v2 header we accept (16-byte fixed part + addresses + TLVs).
const V2_MAX: usize = 16 + 1024;

/// What a header said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addresses {
    /// The connection's real endpoints: (client, the address it connected to).
    Proxied { src: SocketAddr, dst: SocketAddr },
    /// `LOCAL` (v2) or `UNKNOWN` (v1): a health check or the like; keep the
    /// socket's own addresses.
    Local,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyError {
    /// Neither signature: not a PROXY header at all.
    NotProxy,
    /// A header that breaks the specification (with why).
    Invalid(&'static str),
}

/// Parses a header at the start of `buf`. `Ok(None)`: not enough bytes yet;
/// `Ok(Some((addresses, n)))`: the header is the first `n` bytes.
pub fn parse(buf: &[u8]) -> Result<Option<(Addresses, usize)>, ProxyError> {
    if buf.is_empty() {
        return Ok(None);
    }
    let n = buf.len().min(V2_SIG.len());
    if buf[..n] == V2_SIG[..n] {
        return if buf.len() < 16 {
            Ok(None)
        } else {
            parse_v2(buf)
        };
    }
    let n = buf.len().min(6);
    if buf[..n] == b"PROXY "[..n] {
        return if buf.len() < 6 {
            Ok(None)
        } else {
            parse_v1(buf)
        };
    }
    Err(ProxyError::NotProxy)
}

fn parse_v1(buf: &[u8]) -> Result<Option<(Addresses, usize)>, ProxyError> {
    let Some(end) = buf.windows(2).position(|w| w == b"\r\n") else {
        return if buf.len() >= V1_MAX {
            Err(ProxyError::Invalid("v1 header longer than 107 bytes"))
        } else {
            Ok(None)
        };
    };
    if end + 2 > V1_MAX {
        return Err(ProxyError::Invalid("v1 header longer than 107 bytes"));
    }
    let line =
        std::str::from_utf8(&buf[..end]).map_err(|_| ProxyError::Invalid("v1 header not ASCII"))?;
    let f: Vec<&str> = line.split(' ').collect();
    let addrs = match f.as_slice() {
        ["PROXY", "UNKNOWN", ..] => Addresses::Local,
        ["PROXY", proto @ ("TCP4" | "TCP6"), src, dst, sport, dport] => {
            let ip = |s: &str| -> Result<IpAddr, ProxyError> {
                let ip: IpAddr = s
                    .parse()
                    .map_err(|_| ProxyError::Invalid("v1 bad address"))?;
                match (*proto, ip) {
                    ("TCP4", IpAddr::V4(_)) | ("TCP6", IpAddr::V6(_)) => Ok(ip),
                    _ => Err(ProxyError::Invalid("v1 address family mismatch")),
                }
            };
            let port = |s: &str| -> Result<u16, ProxyError> {
                if s.len() > 1 && s.starts_with('0') {
                    return Err(ProxyError::Invalid("v1 port with a leading zero"));
                }
                s.parse().map_err(|_| ProxyError::Invalid("v1 bad port"))
            };
            Addresses::Proxied {
                src: SocketAddr::new(ip(src)?, port(sport)?),
                dst: SocketAddr::new(ip(dst)?, port(dport)?),
            }
        }
        _ => return Err(ProxyError::Invalid("v1 header malformed")),
    };
    Ok(Some((addrs, end + 2)))
}

fn parse_v2(buf: &[u8]) -> Result<Option<(Addresses, usize)>, ProxyError> {
    let ver_cmd = buf[12];
    if ver_cmd >> 4 != 2 {
        return Err(ProxyError::Invalid("v2 version is not 2"));
    }
    let len = u16::from_be_bytes([buf[14], buf[15]]) as usize;
    if 16 + len > V2_MAX {
        return Err(ProxyError::Invalid("v2 header too long"));
    }
    if buf.len() < 16 + len {
        return Ok(None);
    }
    let body = &buf[16..16 + len];
    let total = 16 + len;
    match ver_cmd & 0x0f {
        // LOCAL: the proxy speaking for itself; addresses (if any) ignored.
        0 => return Ok(Some((Addresses::Local, total))),
        1 => {}
        _ => return Err(ProxyError::Invalid("v2 unknown command")),
    }
    let fam = buf[13];
    let addrs = match fam {
        // TCP over IPv4 / IPv6 (UDP is refused: we proxy TCP).
        0x11 => {
            if body.len() < 12 {
                return Err(ProxyError::Invalid("v2 IPv4 addresses truncated"));
            }
            let a = |o: usize| Ipv4Addr::new(body[o], body[o + 1], body[o + 2], body[o + 3]);
            let p = |o: usize| u16::from_be_bytes([body[o], body[o + 1]]);
            Addresses::Proxied {
                src: SocketAddr::new(IpAddr::V4(a(0)), p(8)),
                dst: SocketAddr::new(IpAddr::V4(a(4)), p(10)),
            }
        }
        0x21 => {
            if body.len() < 36 {
                return Err(ProxyError::Invalid("v2 IPv6 addresses truncated"));
            }
            let a = |o: usize| {
                let mut b = [0u8; 16];
                b.copy_from_slice(&body[o..o + 16]);
                Ipv6Addr::from(b)
            };
            let p = |o: usize| u16::from_be_bytes([body[o], body[o + 1]]);
            Addresses::Proxied {
                src: SocketAddr::new(IpAddr::V6(a(0)), p(32)),
                dst: SocketAddr::new(IpAddr::V6(a(16)), p(34)),
            }
        }
        // AF_UNSPEC: no address information.
        0x00 => Addresses::Local,
        _ => return Err(ProxyError::Invalid("v2 unsupported address family")),
    };
    Ok(Some((addrs, total)))
}

/// The v1 line for (src, dst): `PROXY TCP4 s d sp dp\r\n` (UNKNOWN for mixed families).
pub fn v1(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    match (src, dst) {
        (SocketAddr::V4(s), SocketAddr::V4(d)) => format!(
            "PROXY TCP4 {} {} {} {}\r\n",
            s.ip(),
            d.ip(),
            s.port(),
            d.port()
        ),
        (SocketAddr::V6(s), SocketAddr::V6(d)) => format!(
            "PROXY TCP6 {} {} {} {}\r\n",
            s.ip(),
            d.ip(),
            s.port(),
            d.port()
        ),
        _ => "PROXY UNKNOWN\r\n".to_string(),
    }
    .into_bytes()
}

/// The v2 header (PROXY command, TCP) for (src, dst).
pub fn v2(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let mut out = V2_SIG.to_vec();
    out.push(0x21);
    match (src, dst) {
        (SocketAddr::V4(s), SocketAddr::V4(d)) => {
            out.push(0x11);
            out.extend_from_slice(&12u16.to_be_bytes());
            out.extend_from_slice(&s.ip().octets());
            out.extend_from_slice(&d.ip().octets());
            out.extend_from_slice(&s.port().to_be_bytes());
            out.extend_from_slice(&d.port().to_be_bytes());
        }
        (SocketAddr::V6(s), SocketAddr::V6(d)) => {
            out.push(0x21);
            out.extend_from_slice(&36u16.to_be_bytes());
            out.extend_from_slice(&s.ip().octets());
            out.extend_from_slice(&d.ip().octets());
            out.extend_from_slice(&s.port().to_be_bytes());
            out.extend_from_slice(&d.port().to_be_bytes());
        }
        _ => {
            out.push(0x00);
            out.extend_from_slice(&0u16.to_be_bytes());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn v1_and_v2_round_trip_at_every_split() {
        for (src, dst) in [
            (sa("192.0.2.1:56324"), sa("198.51.100.7:443")),
            (sa("[2001:db8::1]:1000"), sa("[2001:db8::2]:80")),
        ] {
            for hdr in [v1(src, dst), v2(src, dst)] {
                let mut bytes = hdr.clone();
                bytes.extend_from_slice(b"GET / HTTP/1.1\r\n");
                for cut in 0..hdr.len() {
                    assert_eq!(parse(&bytes[..cut]), Ok(None), "cut {cut}");
                }
                assert_eq!(
                    parse(&bytes),
                    Ok(Some((Addresses::Proxied { src, dst }, hdr.len())))
                );
            }
        }
    }

    #[test]
    fn local_unknown_and_garbage() {
        assert_eq!(
            parse(b"PROXY UNKNOWN\r\nrest"),
            Ok(Some((Addresses::Local, 15)))
        );
        let mut local = V2_SIG.to_vec();
        local.extend_from_slice(&[0x20, 0x00, 0, 0]);
        assert_eq!(parse(&local), Ok(Some((Addresses::Local, 16))));
        assert_eq!(parse(b"GET / HTTP/1.1\r\n"), Err(ProxyError::NotProxy));
        assert_eq!(parse(b"*2\r\n$4\r\nPING"), Err(ProxyError::NotProxy));
        for bad in [
            &b"PROXY TCP4 1.2.3.4 5.6.7.8 80\r\n"[..],
            b"PROXY TCP4 ::1 5.6.7.8 80 81\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 080 81\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 99999 81\r\n",
            b"PROXY TCP9 1.2.3.4 5.6.7.8 80 81\r\n",
        ] {
            assert!(matches!(parse(bad), Err(ProxyError::Invalid(_))), "{bad:?}");
        }
        let long = [b"PROXY ".as_slice(), &[b'x'; 120]].concat();
        assert!(matches!(parse(&long), Err(ProxyError::Invalid(_))));
        let mut v3 = V2_SIG.to_vec();
        v3.extend_from_slice(&[0x31, 0x11, 0, 12]);
        assert!(matches!(parse(&v3), Err(ProxyError::Invalid(_))));
        let mut short = V2_SIG.to_vec();
        short.extend_from_slice(&[0x21, 0x11, 0, 4, 1, 2, 3, 4]);
        assert!(matches!(parse(&short), Err(ProxyError::Invalid(_))));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            let mut b = V2_SIG.to_vec();
            let len = (x % 64) as usize;
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                b.push(x as u8);
            }
            let _ = parse(&b);
            let _ = parse(&b[12..]);
            let mut v1l = b"PROXY TCP4 ".to_vec();
            v1l.extend_from_slice(&b[12..]);
            let _ = parse(&v1l);
        }
    }
}
