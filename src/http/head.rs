//! Request and response heads (start line + header block) parsed from a shard's
//! input buffer with `httparse`, incrementally: the caller feeds the whole buffer
//! again after each read and gets `Partial` until the blank line that ends the head
//! has arrived. A complete head is stored as spans into that buffer, so parsing
//! allocates nothing per header once the header `Vec` is warm.
//!
//! Owns: the head size limit (`tune.bufsize` minus `tune.maxrewrite`), the header
//! count limit (`tune.http.maxhdr`) and syntax errors of the head. Never looks at
//! header meaning (that is `validate`), never touches a socket or a clock beyond the
//! `now` it is given.
//!
//! Limits answer 400 as HAProxy 2.6 does (checked against haproxy 2.6.12: an
//! over-long URI, an over-long header block and 101 header lines all get `400 Bad
//! request`); the error kind still says which limit was hit, for logs and counters.
//! Beyond httparse, a request target may not hold a fragment (`#`), as in HAProxy.

use std::time::Instant;

pub use super::model::{HeaderSpan, Headers, Method, RequestHead, ResponseHead, Span, Version};

/// Limits on a head, HAProxy's names and defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest head (start line + headers + blank line), in bytes: HAProxy's
    /// `tune.bufsize` (16384) minus `tune.maxrewrite` (1024) it keeps free for
    /// rewrites.
    pub max_head: usize,
    /// `tune.http.maxhdr` (101). HAProxy's header list also holds the end-of-headers
    /// marker, so a head may carry `max_headers - 1` header lines (checked against
    /// haproxy 2.6.12: 100 lines pass, 101 get 400).
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits::new(16384, 1024, 101)
    }
}

impl Limits {
    /// From HAProxy's `tune.bufsize`, `tune.maxrewrite` (capped at half the
    /// buffer, as HAProxy does at startup) and `tune.http.maxhdr`.
    pub fn new(bufsize: usize, maxrewrite: usize, maxhdr: usize) -> Limits {
        let maxrewrite = if maxrewrite >= bufsize / 2 {
            bufsize / 2
        } else {
            maxrewrite
        };
        Limits {
            max_head: bufsize - maxrewrite,
            max_headers: maxhdr,
        }
    }
}

/// What was wrong with a head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    /// No end of the request line within `max_head` bytes.
    StartLineTooLong,
    /// No end of the head within `max_head` bytes.
    HeadTooLarge,
    /// More than `max_headers - 1` header lines.
    TooManyHeaders,
    /// Not HTTP/1.0 or HTTP/1.1 syntax: `httparse`'s verdict, or a bad status.
    Syntax(SyntaxError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyntaxError {
    /// A byte not allowed in the method or the request target (httparse does
    /// not say which).
    StartLine,
    /// A request target with a byte outside 33..=126, or a fragment (`#`):
    /// HAProxy 2.6 refuses both.
    Target,
    Version,
    Status,
    /// Invalid header name: a space before the colon, a non-token byte, or an
    /// obs-fold continuation line (RFC 9112 §5.2 lets a proxy reject it; HAProxy
    /// unfolds it instead, we answer 400).
    HeaderName,
    /// Invalid header value: NUL, a lone CR, or another control byte (HAProxy 2.6
    /// lets NUL through; RFC 9110 §5.5 forbids it).
    HeaderValue,
    /// Any other malformed line ending or start line.
    Line,
}

impl HeadError {
    /// The status answered to a client for this error: HAProxy 2.6 answers 400 for
    /// all of them, limits included.
    pub fn status(self) -> u16 {
        400
    }
}

impl From<httparse::Error> for HeadError {
    fn from(e: httparse::Error) -> Self {
        HeadError::Syntax(match e {
            httparse::Error::HeaderName => SyntaxError::HeaderName,
            httparse::Error::HeaderValue => SyntaxError::HeaderValue,
            httparse::Error::Token => SyntaxError::StartLine,
            httparse::Error::Version => SyntaxError::Version,
            httparse::Error::Status => SyntaxError::Status,
            httparse::Error::TooManyHeaders => return HeadError::TooManyHeaders,
            httparse::Error::NewLine => SyntaxError::Line,
        })
    }
}

/// Whether a head is complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// More bytes are needed.
    Partial,
    /// The head is complete and stored; it is this many bytes long.
    Complete(usize),
}

/// Header slots kept on the stack; a larger `max_headers` takes one allocation
/// per complete head.
const STACK_HEADERS: usize = 128;

/// Finds the end of a head across calls, then hands it to `httparse` once.
#[derive(Debug, Clone)]
pub struct HeadParser {
    limits: Limits,
    /// Bytes already searched for the end of the head.
    scanned: usize,
    /// When the first byte of this head was seen (`timeout http-request` runs from
    /// there).
    started: Option<Instant>,
}

impl HeadParser {
    pub fn new(limits: Limits) -> HeadParser {
        HeadParser {
            limits,
            scanned: 0,
            started: None,
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// When the first byte of the head being parsed arrived, if any has.
    pub fn started(&self) -> Option<Instant> {
        self.started
    }

    /// Forget the head in progress; the next call starts a new message.
    pub fn reset(&mut self) {
        self.scanned = 0;
        self.started = None;
    }

    /// Looks for the end of the head in `buf` (the same buffer, grown, on every
    /// call): `Some(len)` once the blank line has arrived.
    fn find_end(&mut self, buf: &[u8], now: Instant) -> Result<Option<usize>, HeadError> {
        if !buf.is_empty() && self.started.is_none() {
            self.started = Some(now);
        }
        if self.scanned > buf.len() {
            // Not the buffer we scanned before: start over.
            self.scanned = 0;
        }
        // Leading blank lines before a request line are skipped (httparse does).
        let body = buf.iter().position(|&b| b != b'\r' && b != b'\n');
        let from = self
            .scanned
            .saturating_sub(2)
            .max(body.unwrap_or(buf.len()));
        let end = find_blank_line(buf, from);
        self.scanned = buf.len();
        let max = self.limits.max_head;
        match end {
            Some(n) if n <= max => Ok(Some(n)),
            None if buf.len() < max => Ok(None),
            _ => {
                let first_line = buf[body.unwrap_or(0)..].iter().position(|&b| b == b'\n');
                match first_line {
                    Some(n) if body.unwrap_or(0) + n < max => Err(HeadError::HeadTooLarge),
                    _ => Err(HeadError::StartLineTooLong),
                }
            }
        }
    }

    /// Parses a request head at the start of `buf` into `out`.
    pub fn parse_request(
        &mut self,
        buf: &[u8],
        now: Instant,
        out: &mut RequestHead,
    ) -> Result<Parsed, HeadError> {
        // A head usually arrives whole: one httparse pass then. Anything else
        // (incomplete, or an error httparse may see before the end) takes the
        // path below, which decides only once the head is complete, so a verdict
        // never depends on how reads split the bytes.
        if self.started.is_none() {
            let window = &buf[..buf.len().min(self.limits.max_head)];
            if let Ok(Some(n)) = self.request_head(window, out) {
                self.reset();
                return Ok(Parsed::Complete(n));
            }
        }
        let Some(end) = self.find_end(buf, now)? else {
            return Ok(Parsed::Partial);
        };
        match self.request_head(&buf[..end], out)? {
            Some(n) => {
                self.reset();
                Ok(Parsed::Complete(n))
            }
            None => Err(HeadError::Syntax(SyntaxError::Line)),
        }
    }

    /// Parses a response head at the start of `buf` into `out`.
    pub fn parse_response(
        &mut self,
        buf: &[u8],
        now: Instant,
        out: &mut ResponseHead,
    ) -> Result<Parsed, HeadError> {
        if self.started.is_none() {
            let window = &buf[..buf.len().min(self.limits.max_head)];
            if let Ok(Some(n)) = self.response_head(window, out) {
                self.reset();
                return Ok(Parsed::Complete(n));
            }
        }
        let Some(end) = self.find_end(buf, now)? else {
            return Ok(Parsed::Partial);
        };
        match self.response_head(&buf[..end], out)? {
            Some(n) => {
                self.reset();
                Ok(Parsed::Complete(n))
            }
            None => Err(HeadError::Syntax(SyntaxError::Line)),
        }
    }

    /// One httparse pass over `head`: the head's length once complete.
    fn request_head(&self, head: &[u8], out: &mut RequestHead) -> Result<Option<usize>, HeadError> {
        let mut stack = [httparse::EMPTY_HEADER; STACK_HEADERS];
        let mut heap;
        let lines = self.limits.max_headers.saturating_sub(1);
        let slots: &mut [httparse::Header] = if lines <= STACK_HEADERS {
            &mut stack[..lines]
        } else {
            heap = vec![httparse::EMPTY_HEADER; lines];
            &mut heap
        };
        let mut req = httparse::Request::new(slots);
        let n = match req.parse(head)? {
            httparse::Status::Complete(n) => n,
            httparse::Status::Partial => return Ok(None),
        };
        let method = req.method.unwrap_or_default().as_bytes();
        let target = req.path.unwrap_or_default().as_bytes();
        if target
            .iter()
            .any(|&b| !(33..=126).contains(&b) || b == b'#')
        {
            return Err(HeadError::Syntax(SyntaxError::Target));
        }
        out.version = version(req.version)?;
        out.method = Method::from_bytes(method);
        out.method_span = Span::of(head, method);
        out.target = Span::of(head, target);
        fill(&mut out.headers, head, req.headers);
        out.len = n;
        Ok(Some(n))
    }

    /// One httparse pass over `head`: the head's length once complete.
    fn response_head(
        &self,
        head: &[u8],
        out: &mut ResponseHead,
    ) -> Result<Option<usize>, HeadError> {
        let mut stack = [httparse::EMPTY_HEADER; STACK_HEADERS];
        let mut heap;
        let lines = self.limits.max_headers.saturating_sub(1);
        let slots: &mut [httparse::Header] = if lines <= STACK_HEADERS {
            &mut stack[..lines]
        } else {
            heap = vec![httparse::EMPTY_HEADER; lines];
            &mut heap
        };
        let mut res = httparse::Response::new(slots);
        let n = match res.parse(head)? {
            httparse::Status::Complete(n) => n,
            httparse::Status::Partial => return Ok(None),
        };
        let status = res.code.unwrap_or_default();
        if !(100..=999).contains(&status) {
            return Err(HeadError::Syntax(SyntaxError::Status));
        }
        out.version = version(res.version)?;
        out.status = status;
        out.reason = match res.reason {
            Some(r) if !r.is_empty() => Span::of(head, r.as_bytes()),
            _ => Span::default(),
        };
        fill(&mut out.headers, head, res.headers);
        out.len = n;
        Ok(Some(n))
    }
}

fn version(v: Option<u8>) -> Result<Version, HeadError> {
    match v {
        Some(0) => Ok(Version::Http10),
        Some(1) => Ok(Version::Http11),
        _ => Err(HeadError::Syntax(SyntaxError::Version)),
    }
}

fn fill(out: &mut Headers, head: &[u8], parsed: &[httparse::Header]) {
    out.list.clear();
    out.list.extend(parsed.iter().map(|h| HeaderSpan {
        name: Span::of(head, h.name.as_bytes()),
        value: Span::of(head, h.value),
    }));
}

/// The end of a header block (just past its blank line) searching from `from`: a
/// block ends with "\n\n" or "\n\r\n" (bare LF is accepted, as HAProxy does).
pub(crate) fn find_blank_line(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(off) = buf
        .get(i..)
        .and_then(|s| s.iter().position(|&b| b == b'\n'))
    {
        let lf = i + off;
        match buf.get(lf + 1) {
            Some(b'\n') => return Some(lf + 2),
            Some(b'\r') if buf.get(lf + 2) == Some(&b'\n') => return Some(lf + 3),
            Some(b'\r') if lf + 2 == buf.len() => return None,
            None => return None,
            _ => i = lf + 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(buf: &[u8]) -> Result<(Parsed, RequestHead), HeadError> {
        let mut p = HeadParser::new(Limits::default());
        let mut h = RequestHead::default();
        let r = p.parse_request(buf, Instant::now(), &mut h)?;
        Ok((r, h))
    }

    #[test]
    fn request_head_spans() {
        let buf = b"GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\nX-Y:  v w \r\n\r\nBODY";
        let (r, h) = req(buf).unwrap();
        assert_eq!(r, Parsed::Complete(buf.len() - 4));
        assert_eq!(h.method, Method::Get);
        assert_eq!(h.target.get(buf), b"/a?b=1");
        assert_eq!(h.version, Version::Http11);
        assert_eq!(h.headers.list.len(), 2);
        assert_eq!(h.headers.first(buf, "host"), Some(&b"example.com"[..]));
        assert_eq!(h.headers.first(buf, "x-y"), Some(&b"v w"[..]));
        assert_eq!(h.len, buf.len() - 4);
        assert_eq!(&*h.request_line(buf), b"GET /a?b=1 HTTP/1.1");
    }

    #[test]
    fn partial_until_blank_line_at_every_split() {
        let buf = b"POST /x HTTP/1.0\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc";
        let head_len = buf.len() - 3;
        let mut p = HeadParser::new(Limits::default());
        let mut h = RequestHead::default();
        let now = Instant::now();
        for cut in 0..head_len {
            assert_eq!(
                p.parse_request(&buf[..cut], now, &mut h),
                Ok(Parsed::Partial),
                "cut {cut}"
            );
        }
        assert_eq!(
            p.parse_request(buf, now, &mut h),
            Ok(Parsed::Complete(head_len))
        );
        assert_eq!(h.method, Method::Post);
        assert_eq!(h.version, Version::Http10);
        assert_eq!(p.started(), None);
    }

    #[test]
    fn a_shorter_buffer_is_scanned_from_the_start() {
        let mut p = HeadParser::new(Limits::default());
        let mut h = RequestHead::default();
        let now = Instant::now();
        let partial = b"GET /long/path/of/a/head/that/never/ends HTTP/1.1\r\nX: y";
        assert_eq!(p.parse_request(partial, now, &mut h), Ok(Parsed::Partial));
        let other = b"GET / HTTP/1.1\r\n\r\n";
        assert_eq!(
            p.parse_request(other, now, &mut h),
            Ok(Parsed::Complete(18))
        );
    }

    #[test]
    fn bare_lf_accepted_like_haproxy() {
        let buf = b"GET / HTTP/1.1\nHost: x\n\n";
        let (r, h) = req(buf).unwrap();
        assert_eq!(r, Parsed::Complete(buf.len()));
        assert_eq!(h.headers.first(buf, "Host"), Some(&b"x"[..]));
    }

    #[test]
    fn leading_blank_lines_skipped() {
        let buf = b"\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n";
        let (r, h) = req(buf).unwrap();
        assert_eq!(r, Parsed::Complete(buf.len()));
        assert_eq!(h.target.get(buf), b"/");
    }

    #[test]
    fn syntax_errors() {
        let cases: [(&[u8], HeadError); 8] = [
            (
                b"GET /a#frag HTTP/1.1\r\n\r\n",
                HeadError::Syntax(SyntaxError::Target),
            ),
            (
                b"GET /a\x80 HTTP/1.1\r\n\r\n",
                HeadError::Syntax(SyntaxError::StartLine),
            ),
            (
                b"GET / HTTP/1.1\r\nX A: a\r\n\r\n",
                HeadError::Syntax(SyntaxError::HeaderName),
            ),
            (
                b"GET / HTTP/1.1\r\nX-A: a\r\n b\r\n\r\n",
                HeadError::Syntax(SyntaxError::HeaderName),
            ),
            (
                b"GET / HTTP/1.1\r\nX-A: a\0b\r\n\r\n",
                HeadError::Syntax(SyntaxError::HeaderValue),
            ),
            (
                b"GET / HTTP/2.0\r\n\r\n",
                HeadError::Syntax(SyntaxError::Version),
            ),
            (
                b"G(T / HTTP/1.1\r\n\r\n",
                HeadError::Syntax(SyntaxError::StartLine),
            ),
            (
                b"GET / HTTP/1.1\r\nX-A: a\rb\r\n\r\n",
                HeadError::Syntax(SyntaxError::HeaderValue),
            ),
        ];
        for (buf, want) in cases {
            assert_eq!(
                req(buf).map(|r| r.0),
                Err(want),
                "{:?}",
                String::from_utf8_lossy(buf)
            );
            assert_eq!(want.status(), 400);
        }
    }

    #[test]
    fn limits() {
        let long_uri = [&b"GET /"[..], &[b'a'; 15400], b" HTTP/1.1\r\n\r\n"].concat();
        assert_eq!(
            req(&long_uri).map(|r| r.0),
            Err(HeadError::StartLineTooLong)
        );
        // Not yet complete but already over the limit: refused without waiting.
        assert_eq!(
            req(&long_uri[..15400]).map(|r| r.0),
            Err(HeadError::StartLineTooLong)
        );
        let big_hdr = [&b"GET / HTTP/1.1\r\nX-A: "[..], &[b'a'; 15400], b"\r\n\r\n"].concat();
        assert_eq!(req(&big_hdr).map(|r| r.0), Err(HeadError::HeadTooLarge));
        let fits = [&b"GET / HTTP/1.1\r\nX-A: "[..], &[b'a'; 15000], b"\r\n\r\n"].concat();
        assert_eq!(req(&fits).unwrap().0, Parsed::Complete(fits.len()));

        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..100 {
            many.extend_from_slice(format!("X-{i}: a\r\n").as_bytes());
        }
        let ok = [&many[..], b"\r\n"].concat();
        assert_eq!(req(&ok).unwrap().1.headers.list.len(), 100);
        many.extend_from_slice(b"X-100: a\r\n");
        many.extend_from_slice(b"Host: x\r\n\r\n");
        assert_eq!(req(&many).map(|r| r.0), Err(HeadError::TooManyHeaders));

        let mut p = HeadParser::new(Limits {
            max_head: 1 << 20,
            max_headers: 200,
        });
        let mut h = RequestHead::default();
        assert!(p.parse_request(&many, Instant::now(), &mut h).is_ok());
        assert_eq!(h.headers.list.len(), 102);
        let mut p = HeadParser::new(Limits {
            max_head: 1 << 20,
            max_headers: 200,
        });
        let mut more = many[..many.len() - 2].to_vec();
        for i in 0..98 {
            more.extend_from_slice(format!("Y-{i}: b\r\n").as_bytes());
        }
        assert_eq!(
            p.parse_request(&[&more[..], b"\r\n"].concat(), Instant::now(), &mut h),
            Err(HeadError::TooManyHeaders)
        );
    }

    #[test]
    fn limits_from_haproxy_tunables() {
        assert_eq!(
            Limits::default(),
            Limits {
                max_head: 15360,
                max_headers: 101
            }
        );
        assert_eq!(Limits::new(65536, 1024, 200).max_head, 64512);
        assert_eq!(Limits::new(1024, 1024, 10).max_head, 512);
    }

    #[test]
    fn response_heads() {
        let buf = b"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n";
        let mut p = HeadParser::new(Limits::default());
        let mut h = ResponseHead::default();
        assert_eq!(
            p.parse_response(buf, Instant::now(), &mut h),
            Ok(Parsed::Complete(buf.len()))
        );
        assert_eq!(h.status, 304);
        assert_eq!(h.reason.get(buf), b"Not Modified");
        assert_eq!(h.headers.first(buf, "etag"), Some(&b"\"x\""[..]));
        let buf = b"HTTP/1.0 200\r\n\r\n";
        assert_eq!(
            p.parse_response(buf, Instant::now(), &mut h),
            Ok(Parsed::Complete(buf.len()))
        );
        assert_eq!(
            (h.status, h.version, h.reason.len()),
            (200, Version::Http10, 0)
        );
        assert_eq!(
            p.parse_response(b"HTTP/1.1 abc OK\r\n\r\n", Instant::now(), &mut h),
            Err(HeadError::Syntax(SyntaxError::Status))
        );
    }
}
