//! What a parsed head means for the bytes after it and for the connection: body
//! framing (`Content-Length`, `Transfer-Encoding`, the status and method rules of
//! RFC 9112 §6.3), persistence (`Connection` tokens, HTTP/1.0 and 1.1 defaults),
//! `Expect: 100-continue` and upgrades — and the refusals that keep request
//! smuggling out, each answered with HAProxy 2.6's status.
//!
//! Called by the shard once per head, after `head` has parsed it. Pure: no I/O, no
//! allocation.
//!
//! `Content-Length` together with `Transfer-Encoding` is accepted, as HAProxy 2.6
//! does (`h1_headers_to_hdr_list`: "T-E + C-L: force close and remove C-L"), rather
//! than refused: RFC 9112 §6.1 says `Transfer-Encoding` overrides the length and
//! lets the recipient process the message this way provided it closes the
//! connection afterwards. The `Content-Length` never reaches the next hop
//! (`strip_content_length`) and the connection is not reused (`keep_alive` is
//! false), so there is no second framing for a peer to disagree on. Checked against
//! haproxy 2.6.12, which forwards such a request.

use super::head::{Headers, Method, RequestHead, ResponseHead, Span, Version};

/// How the body of a message is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// No body: the next message starts right after the head.
    None,
    /// Exactly this many bytes (`Content-Length`).
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// A response whose body ends when the server closes.
    UntilClose,
    /// After `101 Switching Protocols` (or a `2xx` to CONNECT) the connection is a
    /// tunnel: bytes flow both ways until one side closes.
    Tunnel,
}

/// Tokens found in `Connection` headers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionTokens {
    pub close: bool,
    pub keep_alive: bool,
    pub upgrade: bool,
}

impl ConnectionTokens {
    pub fn parse(headers: &Headers, buf: &[u8]) -> ConnectionTokens {
        let mut t = ConnectionTokens::default();
        for v in headers.values(buf, "connection") {
            for word in list_words(v) {
                if word.eq_ignore_ascii_case(b"close") {
                    t.close = true;
                } else if word.eq_ignore_ascii_case(b"keep-alive") {
                    t.keep_alive = true;
                } else if word.eq_ignore_ascii_case(b"upgrade") {
                    t.upgrade = true;
                }
            }
        }
        t
    }
}

/// The words of a comma-separated header value, blanks trimmed, empty ones skipped.
pub fn list_words(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    v.split(|&b| b == b',')
        .map(|w| w.trim_ascii())
        .filter(|w| !w.is_empty())
}

/// Why a head was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    /// A `Content-Length` that is not a list of equal decimal numbers, or two
    /// `Content-Length` headers that differ.
    ContentLength,
    /// `chunked` applied twice, or a request whose last transfer coding is not
    /// `chunked` (the body length would be unknowable).
    TransferEncoding,
    /// A transfer coding other than `chunked` (HAProxy 2.6 answers 422 to a
    /// request, 502 for a response).
    UnknownTransferCoding,
    /// An HTTP/1.0 GET, HEAD or DELETE with a body (HAProxy answers 413).
    Http10BodyNotAllowed,
    /// Two different `Host` headers, or a `Host` that differs from the authority
    /// of an absolute-form target.
    Host,
    /// A WebSocket handshake (`Connection: upgrade`, `Upgrade: websocket`) without
    /// a 24-byte `Sec-WebSocket-Key` (request) or a `Sec-WebSocket-Accept`
    /// (response), refused as HAProxy 2.6 does (`h1_search_websocket_key`).
    WebSocketKey,
    /// CONNECT: ringlb does not tunnel on request (HAProxy 2.6 forwards it; we
    /// answer 501).
    Connect,
}

impl Reject {
    /// The status sent to the client when a request is refused for this reason.
    pub fn request_status(self) -> u16 {
        match self {
            Reject::ContentLength
            | Reject::TransferEncoding
            | Reject::Host
            | Reject::WebSocketKey => 400,
            Reject::UnknownTransferCoding => 422,
            Reject::Http10BodyNotAllowed => 413,
            Reject::Connect => 501,
        }
    }

    /// A refused response is answered `502 Bad Gateway` and counted against the
    /// server.
    pub fn response_status(self) -> u16 {
        502
    }
}

/// The framing of one message, from its `Content-Length` and `Transfer-Encoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Framing {
    length: Option<u64>,
    transfer_encoding: bool,
    chunked: bool,
    other_coding: bool,
}

fn framing(headers: &Headers, buf: &[u8], response: bool) -> Result<Framing, Reject> {
    let mut f = Framing::default();
    for h in &headers.list {
        let name = h.name.get(buf);
        let value = h.value.get(buf);
        if name.eq_ignore_ascii_case(b"content-length") {
            let n = parse_content_length(value).ok_or(Reject::ContentLength)?;
            if f.length.is_some_and(|l| l != n) {
                return Err(Reject::ContentLength);
            }
            f.length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            f.transfer_encoding = true;
            for word in list_words(value) {
                if word.eq_ignore_ascii_case(b"chunked") {
                    if f.chunked {
                        return Err(Reject::TransferEncoding);
                    }
                    f.chunked = true;
                } else {
                    // A coding after `chunked` leaves a request unframed.
                    if f.chunked && !response {
                        return Err(Reject::TransferEncoding);
                    }
                    f.other_coding = true;
                }
            }
        }
    }
    if f.transfer_encoding && !response && !f.chunked {
        return Err(Reject::TransferEncoding);
    }
    if f.other_coding {
        return Err(Reject::UnknownTransferCoding);
    }
    Ok(f)
}

/// HAProxy's `h1_parse_cont_len_header`: one or more decimal numbers separated by
/// commas and blanks, all equal. No sign, no empty list, no overflow.
pub fn parse_content_length(v: &[u8]) -> Option<u64> {
    let mut value = None;
    for word in v.split(|&b| b == b',') {
        let word = word.trim_ascii();
        if word.is_empty() || !word.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let n = word.iter().try_fold(0u64, |acc, &d| {
            acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })?;
        if value.is_some_and(|v| v != n) {
            return None;
        }
        value = Some(n);
    }
    value
}

/// What a request head means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestInfo {
    pub body: BodyKind,
    /// The client may send another request on this connection afterwards.
    pub keep_alive: bool,
    /// `Expect: 100-continue` on an HTTP/1.1 request: the client waits for an
    /// interim `100 Continue` before sending its body.
    pub expect_continue: bool,
    /// `Connection: upgrade` with an `Upgrade` header (WebSocket).
    pub upgrade: bool,
    /// `Content-Length` came with `Transfer-Encoding`; it is not forwarded.
    pub strip_content_length: bool,
    /// The first `Host` value.
    pub host: Option<Span>,
}

/// Checks a request head and says how its body is framed.
pub fn check_request(head: &RequestHead, buf: &[u8]) -> Result<RequestInfo, Reject> {
    if head.method == Method::Connect {
        return Err(Reject::Connect);
    }
    let f = framing(&head.headers, buf, false)?;
    let body = if f.chunked {
        BodyKind::Chunked
    } else {
        match f.length {
            Some(0) | None => BodyKind::None,
            Some(n) => BodyKind::Length(n),
        }
    };
    if head.version == Version::Http10
        && matches!(head.method, Method::Get | Method::Head | Method::Delete)
        && body != BodyKind::None
    {
        return Err(Reject::Http10BodyNotAllowed);
    }

    let mut host: Option<Span> = None;
    for h in &head.headers.list {
        if h.name.get(buf).eq_ignore_ascii_case(b"host") {
            match host {
                Some(first) if !first.get(buf).eq_ignore_ascii_case(h.value.get(buf)) => {
                    return Err(Reject::Host)
                }
                Some(_) => {}
                None => host = Some(h.value),
            }
        }
    }
    if let (Some(authority), Some(host)) = (absolute_authority(head.target.get(buf)), host) {
        if !authority.is_empty() && !authority.eq_ignore_ascii_case(host.get(buf)) {
            return Err(Reject::Host);
        }
    }

    let tokens = ConnectionTokens::parse(&head.headers, buf);
    let keep_alive =
        persistent(head.version, tokens) && !f.transfer_encoding_forces_close(head.version);
    let expect_continue = head.version == Version::Http11
        && head
            .headers
            .values(buf, "expect")
            .any(|v| v.trim_ascii().eq_ignore_ascii_case(b"100-continue"));
    let upgrade = tokens.upgrade && head.headers.first(buf, "upgrade").is_some();
    if tokens.upgrade
        && websocket(&head.headers, buf)
        && !head
            .headers
            .values(buf, "sec-websocket-key")
            .any(|k| k.len() == 24)
    {
        return Err(Reject::WebSocketKey);
    }
    Ok(RequestInfo {
        body,
        keep_alive,
        expect_continue,
        upgrade,
        strip_content_length: f.transfer_encoding && f.length.is_some(),
        host,
    })
}

impl Framing {
    /// HAProxy forces a close after a message with `Transfer-Encoding` that also
    /// had a `Content-Length`, or that came as HTTP/1.0.
    fn transfer_encoding_forces_close(&self, v: Version) -> bool {
        self.transfer_encoding && (self.length.is_some() || v == Version::Http10)
    }
}

/// An `Upgrade` header naming `websocket`.
fn websocket(headers: &Headers, buf: &[u8]) -> bool {
    headers
        .values(buf, "upgrade")
        .any(|v| list_words(v).any(|w| w.eq_ignore_ascii_case(b"websocket")))
}

fn persistent(v: Version, t: ConnectionTokens) -> bool {
    match v {
        Version::Http11 => !t.close,
        Version::Http10 => t.keep_alive && !t.close,
    }
}

/// The authority of an absolute-form target (`http://user@host:port/path`),
/// without user info; `None` for origin-form.
fn absolute_authority(target: &[u8]) -> Option<&[u8]> {
    let sep = target.windows(3).position(|w| w == b"://")?;
    if sep == 0 || !target[..sep].iter().all(u8::is_ascii_alphabetic) {
        return None;
    }
    let rest = &target[sep + 3..];
    let end = rest
        .iter()
        .position(|&b| matches!(b, b'/' | b'?' | b'#'))
        .unwrap_or(rest.len());
    let authority = &rest[..end];
    Some(match authority.iter().rposition(|&b| b == b'@') {
        Some(at) => &authority[at + 1..],
        None => authority,
    })
}

/// What a response head means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseInfo {
    pub body: BodyKind,
    /// The server connection may carry another request afterwards.
    pub keep_alive: bool,
    /// A 1xx other than 101: the final response is still to come.
    pub interim: bool,
    /// `Transfer-Encoding: chunked` was present, even where the response has no
    /// body (HEAD, 204, 304): forwarded as it came.
    pub chunked: bool,
    /// `Connection: upgrade` was present.
    pub upgrade: bool,
    pub strip_content_length: bool,
}

/// Checks a response head, given the method of the request it answers.
pub fn check_response(
    head: &ResponseHead,
    buf: &[u8],
    request: Method,
) -> Result<ResponseInfo, Reject> {
    let f = framing(&head.headers, buf, true)?;
    let tokens = ConnectionTokens::parse(&head.headers, buf);
    let status = head.status;
    let interim = (100..200).contains(&status) && status != 101;
    let body = if status == 101 || (request == Method::Connect && (200..300).contains(&status)) {
        BodyKind::Tunnel
    } else if interim || request == Method::Head || status == 204 || status == 304 {
        BodyKind::None
    } else if f.chunked {
        BodyKind::Chunked
    } else if f.transfer_encoding {
        BodyKind::UntilClose
    } else {
        match f.length {
            Some(0) => BodyKind::None,
            Some(n) => BodyKind::Length(n),
            None => BodyKind::UntilClose,
        }
    };
    if tokens.upgrade
        && websocket(&head.headers, buf)
        && head.headers.first(buf, "sec-websocket-accept").is_none()
    {
        return Err(Reject::WebSocketKey);
    }
    let keep_alive = persistent(head.version, tokens)
        && !f.transfer_encoding_forces_close(head.version)
        && !matches!(body, BodyKind::UntilClose | BodyKind::Tunnel);
    Ok(ResponseInfo {
        body,
        keep_alive,
        interim,
        chunked: f.chunked,
        upgrade: tokens.upgrade,
        strip_content_length: f.transfer_encoding && f.length.is_some(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::head::{HeadParser, Limits, Parsed};
    use std::time::Instant;

    fn request(raw: &[u8]) -> Result<RequestInfo, Reject> {
        let mut h = RequestHead::default();
        let r = HeadParser::new(Limits::default()).parse_request(raw, Instant::now(), &mut h);
        assert!(matches!(r, Ok(Parsed::Complete(_))), "{r:?}");
        check_request(&h, raw)
    }

    fn response(raw: &[u8], method: Method) -> Result<ResponseInfo, Reject> {
        let mut h = ResponseHead::default();
        let r = HeadParser::new(Limits::default()).parse_response(raw, Instant::now(), &mut h);
        assert!(matches!(r, Ok(Parsed::Complete(_))), "{r:?}");
        check_response(&h, raw, method)
    }

    #[test]
    fn content_length_values() {
        assert_eq!(parse_content_length(b"42"), Some(42));
        assert_eq!(parse_content_length(b" 1 , 1"), Some(1));
        assert_eq!(parse_content_length(b"1,2"), None);
        assert_eq!(parse_content_length(b"+1"), None);
        assert_eq!(parse_content_length(b"-1"), None);
        assert_eq!(parse_content_length(b""), None);
        assert_eq!(parse_content_length(b"1,,1"), None);
        assert_eq!(parse_content_length(b"0x10"), None);
        assert_eq!(
            parse_content_length(b"18446744073709551615"),
            Some(u64::MAX)
        );
        assert_eq!(parse_content_length(b"18446744073709551616"), None);
    }

    #[test]
    fn request_framing() {
        let r = request(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n").unwrap();
        assert_eq!((r.body, r.keep_alive), (BodyKind::Length(5), true));
        let r = request(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
        assert_eq!(r.body, BodyKind::None);
        let r = request(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").unwrap();
        assert_eq!((r.body, r.keep_alive), (BodyKind::Chunked, true));
        // Identical duplicates are one length.
        let r =
            request(b"PUT / HTTP/1.1\r\nContent-Length: 3\r\nContent-length: 3\r\n\r\n").unwrap();
        assert_eq!(r.body, BodyKind::Length(3));
    }

    #[test]
    fn smuggling_refused_with_haproxys_status() {
        let cases: [(&[u8], Reject, u16); 9] = [
            (
                b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
                Reject::ContentLength,
                400,
            ),
            (b"POST / HTTP/1.1\r\nContent-Length: +3\r\n\r\n", Reject::ContentLength, 400),
            (b"POST / HTTP/1.1\r\nContent-Length: 3, 4\r\n\r\n", Reject::ContentLength, 400),
            (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", Reject::TransferEncoding, 400),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
                Reject::TransferEncoding,
                400,
            ),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
                Reject::TransferEncoding,
                400,
            ),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                Reject::UnknownTransferCoding,
                422,
            ),
            (b"GET / HTTP/1.0\r\nContent-Length: 3\r\n\r\n", Reject::Http10BodyNotAllowed, 413),
            (b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", Reject::Connect, 501),
        ];
        for (raw, why, status) in cases {
            assert_eq!(request(raw), Err(why), "{}", String::from_utf8_lossy(raw));
            assert_eq!(why.request_status(), status);
        }
        assert_eq!(
            request(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
            Err(Reject::Host)
        );
        assert_eq!(
            request(b"GET http://a/ HTTP/1.1\r\nHost: b\r\n\r\n"),
            Err(Reject::Host)
        );
        let raw = b"GET http://u@A:80/x HTTP/1.1\r\nHost: a:80\r\nHost: a:80\r\n\r\n";
        let ok = request(raw).unwrap();
        assert_eq!(ok.host, Some(Span { start: 36, end: 40 }));
        assert_eq!(ok.host.unwrap().get(raw), b"a:80");
        // An HTTP/1.0 POST may have a body, a GET without one is fine.
        assert!(request(b"POST / HTTP/1.0\r\nContent-Length: 3\r\n\r\n").is_ok());
        assert!(request(b"GET / HTTP/1.0\r\nContent-Length: 0\r\n\r\n").is_ok());
    }

    #[test]
    fn content_length_with_transfer_encoding_is_chunked_and_closes() {
        let r =
            request(b"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n")
                .unwrap();
        assert_eq!(r.body, BodyKind::Chunked);
        assert!(r.strip_content_length);
        assert!(!r.keep_alive);
        let r = response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
            Method::Get,
        )
        .unwrap();
        assert_eq!(
            (r.body, r.strip_content_length, r.keep_alive),
            (BodyKind::Chunked, true, false)
        );
    }

    #[test]
    fn keep_alive_defaults_and_tokens() {
        let ka = |raw: &[u8]| request(raw).unwrap().keep_alive;
        assert!(ka(b"GET / HTTP/1.1\r\n\r\n"));
        assert!(!ka(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n"));
        assert!(!ka(b"GET / HTTP/1.1\r\nConnection: foo, Close\r\n\r\n"));
        assert!(!ka(b"GET / HTTP/1.0\r\n\r\n"));
        assert!(ka(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
        assert!(!ka(
            b"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"
        ));
        assert!(!ka(
            b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n"
        ));
    }

    #[test]
    fn expect_and_upgrade() {
        let r = request(b"POST / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 9\r\n\r\n")
            .unwrap();
        assert!(r.expect_continue);
        let r = request(b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 9\r\n\r\n")
            .unwrap();
        assert!(!r.expect_continue);
        let r = request(b"GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n").unwrap();
        assert!(r.upgrade);
        assert_eq!(
            request(b"GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"),
            Err(Reject::WebSocketKey)
        );
        assert_eq!(
            request(b"GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: short\r\n\r\n"),
            Err(Reject::WebSocketKey)
        );
        assert_eq!(Reject::WebSocketKey.request_status(), 400);
        let r =
            request(b"GET /h2 HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n").unwrap();
        assert!(r.upgrade);
        assert_eq!(
            response(b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n", Method::Get),
            Err(Reject::WebSocketKey)
        );
        let r = request(b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n").unwrap();
        assert!(!r.upgrade);
    }

    #[test]
    fn response_bodies() {
        let body = |raw: &[u8], m| response(raw, m).unwrap().body;
        assert_eq!(
            body(
                b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n",
                Method::Head
            ),
            BodyKind::None
        );
        assert_eq!(
            body(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n", Method::Get),
            BodyKind::Length(7)
        );
        assert_eq!(
            body(
                b"HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n",
                Method::Get
            ),
            BodyKind::None
        );
        assert_eq!(
            body(
                b"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n",
                Method::Get
            ),
            BodyKind::None
        );
        assert_eq!(
            body(b"HTTP/1.1 200 OK\r\n\r\n", Method::Get),
            BodyKind::UntilClose
        );
        assert_eq!(
            body(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", Method::Get),
            BodyKind::None
        );
        assert_eq!(
            body(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
                Method::Get
            ),
            BodyKind::Tunnel
        );
        let r = response(b"HTTP/1.1 100 Continue\r\n\r\n", Method::Post).unwrap();
        assert_eq!((r.body, r.interim), (BodyKind::None, true));
        let r = response(b"HTTP/1.1 200 OK\r\n\r\n", Method::Get).unwrap();
        assert!(!r.keep_alive);
        let r = response(b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", Method::Get).unwrap();
        assert!(!r.keep_alive);
        let r = response(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n", Method::Get).unwrap();
        assert!(r.keep_alive);
        assert_eq!(
            response(
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                Method::Get
            ),
            Err(Reject::ContentLength)
        );
        assert_eq!(
            response(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
                Method::Get
            ),
            Err(Reject::UnknownTransferCoding)
        );
        assert_eq!(Reject::UnknownTransferCoding.response_status(), 502);
    }
}
