//! The head a proxy sends on: the request to the server, the response to the
//! client. Owns hop-by-hop header removal, `X-Forwarded-For` (`option forwardfor
//! [except NET] [header NAME] [if-none]`) and the `Connection` header that
//! `option http-keep-alive | http-server-close | httpclose` call for.
//!
//! Writes into a caller-provided `Vec<u8>` that the shard reuses, so a warm
//! connection allocates nothing per message. Pure: no I/O.
//!
//! Where this differs from haproxy 2.6.12 (captured on the wire, see the tests):
//! HAProxy lower-cases every header name and only strips the `close`/`keep-alive`
//! tokens from `Connection`, forwarding `Keep-Alive`, `TE`, `Proxy-Connection`,
//! `Upgrade` and the headers `Connection` names. We keep the sender's case and
//! drop the hop-by-hop headers, as RFC 9110 §7.6.1 requires of a proxy. Like
//! HAProxy (`h1_update_req_conn_value`, `h1_update_res_conn_value`), the
//! `Connection` header we add is `close` only on an HTTP/1.1 message that must
//! close and `keep-alive` only where HTTP/1.0 would otherwise mean close, and the
//! `X-Forwarded-For` line is a new line after the others, even when the client
//! sent one. `tests/http_oracle.rs` compares both heads with haproxy's.

use std::net::IpAddr;

use super::head::{HeaderSpan, RequestHead, ResponseHead, Version};
use super::validate::{list_words, BodyKind, RequestInfo, ResponseInfo};

/// `option http-keep-alive` (HAProxy's default), `http-server-close`, `httpclose`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HttpMode {
    /// Both sides persistent.
    #[default]
    KeepAlive,
    /// The client side persistent, the server connection closed after each
    /// response.
    ServerClose,
    /// Both sides closed after each exchange.
    Close,
}

/// An address block for `except`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Network {
    /// `ADDR` or `ADDR/PREFIX` or `ADDR/MASK` (dotted IPv4 mask).
    pub fn parse(s: &str) -> Option<Network> {
        let (a, p) = s.split_once('/').map_or((s, None), |(a, p)| (a, Some(p)));
        let addr: IpAddr = a.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max => n,
                Ok(_) => return None,
                Err(_) => {
                    let m: std::net::Ipv4Addr = p.parse().ok()?;
                    let bits = u32::from(m);
                    if bits.leading_ones() + bits.trailing_zeros() != 32 {
                        return None;
                    }
                    bits.leading_ones() as u8
                }
            },
        };
        Some(Network { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let p = u32::from(self.prefix.min(32));
                let mask = u32::MAX.checked_shl(32 - p).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let p = u32::from(self.prefix.min(128));
                let mask = u128::MAX.checked_shl(128 - p).unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// `option forwardfor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardFor {
    /// `header NAME`; `X-Forwarded-For` by default.
    pub header: String,
    /// `except NET`: clients in this block get no header.
    pub except: Option<Network>,
    /// `if-none`: only when the request has no such header.
    pub if_none: bool,
}

impl Default for ForwardFor {
    fn default() -> Self {
        ForwardFor {
            header: "X-Forwarded-For".into(),
            except: None,
            if_none: false,
        }
    }
}

/// What the request rewrite needs besides the head.
#[derive(Debug, Clone, Copy)]
pub struct RequestContext<'a> {
    pub mode: HttpMode,
    pub forward_for: Option<&'a ForwardFor>,
    pub client: IpAddr,
}

/// Whether the server connection may be reused after this exchange.
pub fn server_keep_alive(mode: HttpMode, response: &ResponseInfo) -> bool {
    mode == HttpMode::KeepAlive && response.keep_alive
}

/// Whether the client connection stays open after this response.
pub fn client_keep_alive(mode: HttpMode, request: &RequestInfo, response: &ResponseInfo) -> bool {
    mode != HttpMode::Close
        && request.keep_alive
        && !matches!(response.body, BodyKind::UntilClose | BodyKind::Tunnel)
}

/// Names RFC 9110 §7.6.1 makes hop-by-hop, plus the ones we re-emit ourselves.
fn hop_by_hop(name: &[u8]) -> bool {
    [
        &b"connection"[..],
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"transfer-encoding",
        b"upgrade",
    ]
    .iter()
    .any(|h| name.eq_ignore_ascii_case(h))
}

/// Copies the headers that go on: not hop-by-hop, not named by `Connection`,
/// one `Host` and one `Content-Length` (validate merged identical duplicates).
fn copy_headers(
    list: &[HeaderSpan],
    buf: &[u8],
    keep_upgrade: bool,
    strip_content_length: bool,
    out: &mut Vec<u8>,
) {
    let mut host_seen = false;
    let mut length_seen = false;
    // Usually `Connection` names no header (only close, keep-alive, upgrade): then
    // the per-header lookup is skipped.
    let names_headers = list
        .iter()
        .filter(|h| h.name.get(buf).eq_ignore_ascii_case(b"connection"))
        .flat_map(|h| list_words(h.value.get(buf)))
        .any(|w| {
            !(w.eq_ignore_ascii_case(b"close")
                || w.eq_ignore_ascii_case(b"keep-alive")
                || w.eq_ignore_ascii_case(b"upgrade"))
        });
    for h in list {
        let name = h.name.get(buf);
        if name.eq_ignore_ascii_case(b"upgrade") && keep_upgrade {
            // Forwarded with the `Connection: upgrade` written after the headers.
        } else if hop_by_hop(name) {
            continue;
        } else if name.eq_ignore_ascii_case(b"host") {
            if std::mem::replace(&mut host_seen, true) {
                continue;
            }
        } else if name.eq_ignore_ascii_case(b"content-length") {
            if strip_content_length || std::mem::replace(&mut length_seen, true) {
                continue;
            }
        } else if names_headers && named_by_connection(list, buf, name) {
            continue;
        }
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(h.value.get(buf));
        out.extend_from_slice(b"\r\n");
    }
}

fn named_by_connection(list: &[HeaderSpan], buf: &[u8], name: &[u8]) -> bool {
    list.iter()
        .filter(|h| h.name.get(buf).eq_ignore_ascii_case(b"connection"))
        .any(|h| list_words(h.value.get(buf)).any(|w| w.eq_ignore_ascii_case(name)))
}

/// Writes the request head to send to the server into `out` (cleared first).
pub fn write_request(
    head: &RequestHead,
    info: &RequestInfo,
    buf: &[u8],
    ctx: &RequestContext,
    out: &mut Vec<u8>,
) {
    out.clear();
    out.extend_from_slice(head.method_span.get(buf));
    out.push(b' ');
    out.extend_from_slice(head.target.get(buf));
    out.push(b' ');
    out.extend_from_slice(head.version.as_str().as_bytes());
    out.extend_from_slice(b"\r\n");
    copy_headers(
        &head.headers.list,
        buf,
        info.upgrade,
        info.strip_content_length,
        out,
    );
    if info.body == BodyKind::Chunked {
        out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
    }
    if let Some(ff) = ctx.forward_for {
        let excepted = ff.except.is_some_and(|n| n.contains(ctx.client));
        let present = ff.if_none && head.headers.first(buf, &ff.header).is_some();
        if !excepted && !present {
            use std::io::Write;
            let client = match ctx.client {
                IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ctx.client, IpAddr::V4),
                v4 => v4,
            };
            let _ = write!(out, "{}: {client}\r\n", ff.header);
        }
    }
    let connection: &[u8] = if info.upgrade {
        b"Connection: upgrade\r\n"
    } else {
        match (ctx.mode, head.version) {
            (HttpMode::KeepAlive, Version::Http10) => b"Connection: keep-alive\r\n",
            (HttpMode::KeepAlive, Version::Http11) | (_, Version::Http10) => b"",
            (_, Version::Http11) => b"Connection: close\r\n",
        }
    };
    out.extend_from_slice(connection);
    out.extend_from_slice(b"\r\n");
}

/// Writes the response head to send to the client into `out` (cleared first).
/// `client_keep_alive` is what [`client_keep_alive`] decided for this exchange.
pub fn write_response(
    head: &ResponseHead,
    info: &ResponseInfo,
    buf: &[u8],
    request_version: Version,
    client_keep_alive: bool,
    out: &mut Vec<u8>,
) {
    out.clear();
    out.extend_from_slice(head.version.as_str().as_bytes());
    out.push(b' ');
    let status = head.status;
    out.extend_from_slice(&[
        b'0' + (status / 100 % 10) as u8,
        b'0' + (status / 10 % 10) as u8,
        b'0' + (status % 10) as u8,
    ]);
    if !head.reason.is_empty() {
        out.push(b' ');
        out.extend_from_slice(head.reason.get(buf));
    }
    out.extend_from_slice(b"\r\n");
    let tunnel = info.body == BodyKind::Tunnel;
    copy_headers(
        &head.headers.list,
        buf,
        tunnel,
        info.strip_content_length,
        out,
    );
    if info.chunked {
        out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
    }
    let connection: &[u8] = if tunnel && info.upgrade {
        b"Connection: upgrade\r\n"
    } else if tunnel || info.interim {
        b""
    } else {
        // HAProxy's `h1_update_res_conn_value`: say `close` only where the
        // response's version would otherwise mean persistence, `keep-alive` where
        // either side speaks HTTP/1.0.
        match (client_keep_alive, head.version, request_version) {
            (false, Version::Http11, _) => b"Connection: close\r\n",
            (false, Version::Http10, _) => b"",
            (true, Version::Http11, Version::Http11) => b"",
            (true, _, _) => b"Connection: keep-alive\r\n",
        }
    };
    out.extend_from_slice(connection);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::head::{HeadParser, Limits, Method, Parsed};
    use crate::http::validate::{check_request, check_response};
    use std::time::Instant;

    fn rewrite_request(raw: &[u8], mode: HttpMode, ff: Option<&ForwardFor>) -> String {
        let mut h = RequestHead::default();
        let r = HeadParser::new(Limits::default()).parse_request(raw, Instant::now(), &mut h);
        assert!(matches!(r, Ok(Parsed::Complete(_))));
        let info = check_request(&h, raw).unwrap();
        let ctx = RequestContext {
            mode,
            forward_for: ff,
            client: "127.0.0.1".parse().unwrap(),
        };
        let mut out = Vec::new();
        write_request(&h, &info, raw, &ctx, &mut out);
        String::from_utf8(out).unwrap()
    }

    const HOPS: &[u8] = b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, X-Foo\r\nX-Foo: 1\r\nKeep-Alive: 300\r\nTE: trailers\r\nProxy-Connection: keep-alive\r\nX-Forwarded-For: 1.2.3.4\r\nUpgrade: h2c\r\nUser-Agent: t\r\n\r\n";

    #[test]
    fn hop_by_hop_removed_forwardfor_appended() {
        let ff = ForwardFor::default();
        assert_eq!(
            rewrite_request(HOPS, HttpMode::KeepAlive, Some(&ff)),
            "GET /a HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 1.2.3.4\r\nUser-Agent: t\r\nX-Forwarded-For: 127.0.0.1\r\n\r\n"
        );
        let ff = ForwardFor {
            header: "X-Real-IP".into(),
            ..ForwardFor::default()
        };
        assert_eq!(
            rewrite_request(HOPS, HttpMode::ServerClose, Some(&ff)),
            "GET /a HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 1.2.3.4\r\nUser-Agent: t\r\nX-Real-IP: 127.0.0.1\r\nConnection: close\r\n\r\n"
        );
        let ff = ForwardFor {
            except: Some(Network {
                addr: "127.0.0.0".parse().unwrap(),
                prefix: 8,
            }),
            ..ForwardFor::default()
        };
        assert_eq!(
            rewrite_request(HOPS, HttpMode::Close, Some(&ff)),
            "GET /a HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 1.2.3.4\r\nUser-Agent: t\r\nConnection: close\r\n\r\n"
        );
        let ff = ForwardFor {
            if_none: true,
            ..ForwardFor::default()
        };
        assert!(!rewrite_request(HOPS, HttpMode::KeepAlive, Some(&ff)).contains("127.0.0.1"));
    }

    #[test]
    fn http10_and_chunked_and_upgrade() {
        let ff = ForwardFor::default();
        assert_eq!(
            rewrite_request(b"GET /b HTTP/1.0\r\nHost: x\r\n\r\n", HttpMode::KeepAlive, Some(&ff)),
            "GET /b HTTP/1.0\r\nHost: x\r\nX-Forwarded-For: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n"
        );
        assert_eq!(
            rewrite_request(
                b"POST /d HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
                HttpMode::KeepAlive,
                None
            ),
            "POST /d HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        );
        assert_eq!(
            rewrite_request(
                b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
                HttpMode::ServerClose,
                None
            ),
            "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nConnection: upgrade\r\n\r\n"
        );
        assert_eq!(
            rewrite_request(
                b"PUT / HTTP/1.1\r\nHost: x\r\nhost: x\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n",
                HttpMode::KeepAlive,
                None
            ),
            "PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n"
        );
    }

    #[test]
    fn networks() {
        let n = Network {
            addr: "10.1.0.0".parse().unwrap(),
            prefix: 16,
        };
        assert!(n.contains("10.1.255.3".parse().unwrap()));
        assert!(n.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!n.contains("10.2.0.1".parse().unwrap()));
        let all = Network {
            addr: "0.0.0.0".parse().unwrap(),
            prefix: 0,
        };
        assert!(all.contains("192.0.2.1".parse().unwrap()));
        let v6 = Network {
            addr: "2001:db8::".parse().unwrap(),
            prefix: 32,
        };
        assert!(v6.contains("2001:db8:1::1".parse().unwrap()));
        assert!(!v6.contains("2001:db9::1".parse().unwrap()));
    }

    fn rewrite_response(raw: &[u8], req: Version, method: Method, keep: bool) -> String {
        let mut h = ResponseHead::default();
        HeadParser::new(Limits::default())
            .parse_response(raw, Instant::now(), &mut h)
            .unwrap();
        let info = check_response(&h, raw, method).unwrap();
        let mut out = Vec::new();
        write_response(&h, &info, raw, req, keep, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn responses() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\n\r\n";
        assert_eq!(
            rewrite_response(raw, Version::Http11, Method::Get, true),
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Hop: 1\r\n\r\n"
        );
        assert_eq!(
            rewrite_response(raw, Version::Http11, Method::Get, false),
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Hop: 1\r\nConnection: close\r\n\r\n"
        );
        assert_eq!(
            rewrite_response(raw, Version::Http10, Method::Get, true),
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Hop: 1\r\nConnection: keep-alive\r\n\r\n"
        );
        assert_eq!(
            rewrite_response(
                b"HTTP/1.1 100 Continue\r\n\r\n",
                Version::Http11,
                Method::Post,
                false
            ),
            "HTTP/1.1 100 Continue\r\n\r\n"
        );
        assert_eq!(
            rewrite_response(
                b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
                Version::Http11,
                Method::Get,
                false
            ),
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nConnection: upgrade\r\n\r\n"
        );
        assert_eq!(
            rewrite_response(
                b"HTTP/1.1 200\r\nTransfer-Encoding: chunked\r\n\r\n",
                Version::Http11,
                Method::Get,
                true
            ),
            "HTTP/1.1 200\r\nTransfer-Encoding: chunked\r\n\r\n"
        );
    }

    #[test]
    fn bodiless_responses_keep_their_framing_headers() {
        assert_eq!(
            rewrite_response(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                Version::Http11,
                Method::Head,
                true
            ),
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        );
        assert_eq!(
            rewrite_response(
                b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
                Version::Http11,
                Method::Get,
                true
            ),
            "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n"
        );
    }

    #[test]
    fn keep_alive_decisions() {
        let req = RequestInfo {
            body: BodyKind::None,
            keep_alive: true,
            expect_continue: false,
            upgrade: false,
            strip_content_length: false,
            host: None,
        };
        let resp = ResponseInfo {
            body: BodyKind::Length(3),
            keep_alive: true,
            interim: false,
            chunked: false,
            upgrade: false,
            strip_content_length: false,
        };
        assert!(client_keep_alive(HttpMode::KeepAlive, &req, &resp));
        assert!(client_keep_alive(HttpMode::ServerClose, &req, &resp));
        assert!(!client_keep_alive(HttpMode::Close, &req, &resp));
        assert!(server_keep_alive(HttpMode::KeepAlive, &resp));
        assert!(!server_keep_alive(HttpMode::ServerClose, &resp));
        let until_close = ResponseInfo {
            body: BodyKind::UntilClose,
            keep_alive: false,
            ..resp
        };
        assert!(!client_keep_alive(HttpMode::KeepAlive, &req, &until_close));
        let closing = RequestInfo {
            keep_alive: false,
            ..req
        };
        assert!(!client_keep_alive(HttpMode::KeepAlive, &closing, &resp));
    }
}
