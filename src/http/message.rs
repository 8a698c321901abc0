//! One direction of an HTTP/1.1 connection as a stream of events: a head, then
//! its body, then the end of the message, then the next head (pipelining). This
//! is what a shard drives: it keeps the bytes it read in a buffer, calls `next`
//! with the unconsumed part, forwards or answers according to the event, and
//! drops the bytes the event covered. A fuzzer drives it the same way.
//!
//! Owns the order of head → body → end and the `timeout http-request` start.
//! Never reads the clock (`now` comes in), never does I/O.

use std::time::{Duration, Instant};

use super::framing::{BodyDecoder, FramingError, Step};
use super::head::{HeadError, HeadParser, Limits, Method, Parsed, RequestHead, ResponseHead};
use super::validate::{check_request, check_response, BodyKind, Reject, RequestInfo, ResponseInfo};

/// Anything that ends the reading of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpError {
    Head(HeadError),
    Reject(Reject),
    Framing(FramingError),
}

impl HttpError {
    /// The status answered to the client when a request fails this way.
    pub fn request_status(self) -> u16 {
        match self {
            HttpError::Head(e) => e.status(),
            HttpError::Reject(r) => r.request_status(),
            HttpError::Framing(_) => 400,
        }
    }

    /// The status answered to the client when the server's response fails this
    /// way: always 502, counted against the server.
    pub fn response_status(self) -> u16 {
        502
    }
}

impl From<HeadError> for HttpError {
    fn from(e: HeadError) -> Self {
        HttpError::Head(e)
    }
}

impl From<Reject> for HttpError {
    fn from(e: Reject) -> Self {
        HttpError::Reject(e)
    }
}

impl From<FramingError> for HttpError {
    fn from(e: FramingError) -> Self {
        HttpError::Framing(e)
    }
}

/// What the bytes at the start of the input are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A complete head of `len` bytes; `head()` and `info()` describe it, with
    /// spans into the input given to this call (use them before dropping it).
    Head { len: usize },
    /// `len` bytes of payload.
    Data { len: usize },
    /// `len` bytes of chunk framing (size line, CRLF after data).
    Framing { len: usize },
    /// The message ends after `len` more bytes (0 when the last data already
    /// ended it); the next bytes start a new message.
    End { len: usize },
    /// Nothing to do until more bytes arrive.
    NeedMore,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Head,
    Body,
}

fn body_event(step: Step) -> Event {
    match step {
        Step::Data(len) => Event::Data { len },
        Step::Framing(len) => Event::Framing { len },
        Step::End(len) => Event::End { len },
        Step::NeedMore => Event::NeedMore,
    }
}

/// The client-to-proxy direction.
#[derive(Debug, Clone)]
pub struct RequestReader {
    parser: HeadParser,
    head: RequestHead,
    info: Option<RequestInfo>,
    body: BodyDecoder,
    phase: Phase,
}

impl RequestReader {
    pub fn new(limits: Limits) -> RequestReader {
        RequestReader {
            parser: HeadParser::new(limits),
            head: RequestHead::default(),
            info: None,
            body: BodyDecoder::new(BodyKind::None, limits.max_head),
            phase: Phase::Head,
        }
    }

    /// The last request head (valid after `Event::Head`).
    pub fn head(&self) -> &RequestHead {
        &self.head
    }

    /// What the last request head means (after `Event::Head`).
    pub fn info(&self) -> Option<&RequestInfo> {
        self.info.as_ref()
    }

    /// The body in progress, for `data_ahead`/`skip` when the shard splices.
    pub fn body(&mut self) -> &mut BodyDecoder {
        &mut self.body
    }

    /// The server accepted an upgrade (`101`): every byte from now on is tunnel
    /// data, until EOF.
    pub fn into_tunnel(&mut self) {
        self.body = BodyDecoder::new(BodyKind::Tunnel, self.parser.limits().max_head);
        self.phase = Phase::Body;
    }

    /// `timeout http-request`: true once a head has been arriving for longer
    /// than `timeout` (from its first byte) without completing.
    pub fn head_expired(&self, now: Instant, timeout: Duration) -> bool {
        self.phase == Phase::Head
            && self
                .parser
                .started()
                .is_some_and(|t| now.saturating_duration_since(t) >= timeout)
    }

    /// Classifies the bytes at the start of `input` (the unconsumed bytes).
    pub fn next(&mut self, input: &[u8], now: Instant) -> Result<Event, HttpError> {
        match self.phase {
            Phase::Head => match self.parser.parse_request(input, now, &mut self.head)? {
                Parsed::Partial => Ok(Event::NeedMore),
                Parsed::Complete(len) => {
                    let info = check_request(&self.head, input)?;
                    self.info = Some(info);
                    self.body = BodyDecoder::new(info.body, self.parser.limits().max_head);
                    self.phase = Phase::Body;
                    Ok(Event::Head { len })
                }
            },
            Phase::Body => {
                let ev = body_event(self.body.next(input)?);
                if matches!(ev, Event::End { .. }) {
                    self.phase = Phase::Head;
                }
                Ok(ev)
            }
        }
    }

    /// The client closed: fine between requests, a truncation inside one.
    pub fn on_eof(&mut self, unconsumed: usize) -> Result<(), HttpError> {
        match self.phase {
            Phase::Head if unconsumed == 0 => Ok(()),
            Phase::Head => Err(FramingError::Truncated.into()),
            Phase::Body => Ok(self.body.on_eof()?),
        }
    }
}

/// The server-to-proxy direction.
#[derive(Debug, Clone)]
pub struct ResponseReader {
    parser: HeadParser,
    head: ResponseHead,
    info: Option<ResponseInfo>,
    body: BodyDecoder,
    phase: Phase,
    method: Method,
}

impl ResponseReader {
    pub fn new(limits: Limits) -> ResponseReader {
        ResponseReader {
            parser: HeadParser::new(limits),
            head: ResponseHead::default(),
            info: None,
            body: BodyDecoder::new(BodyKind::None, limits.max_head),
            phase: Phase::Head,
            method: Method::Get,
        }
    }

    /// The method of the request the next response answers (HEAD and CONNECT
    /// change its framing). Set when the request is sent.
    pub fn expect(&mut self, method: Method) {
        self.method = method;
    }

    pub fn head(&self) -> &ResponseHead {
        &self.head
    }

    pub fn info(&self) -> Option<&ResponseInfo> {
        self.info.as_ref()
    }

    pub fn body(&mut self) -> &mut BodyDecoder {
        &mut self.body
    }

    /// Classifies the bytes at the start of `input`. An interim response (1xx
    /// other than 101) is a head followed by `End { len: 0 }`; the final response
    /// follows.
    pub fn next(&mut self, input: &[u8], now: Instant) -> Result<Event, HttpError> {
        match self.phase {
            Phase::Head => match self.parser.parse_response(input, now, &mut self.head)? {
                Parsed::Partial => Ok(Event::NeedMore),
                Parsed::Complete(len) => {
                    let info = check_response(&self.head, input, self.method)?;
                    self.info = Some(info);
                    self.body = BodyDecoder::new(info.body, self.parser.limits().max_head);
                    self.phase = Phase::Body;
                    Ok(Event::Head { len })
                }
            },
            Phase::Body => {
                let ev = body_event(self.body.next(input)?);
                if matches!(ev, Event::End { .. }) {
                    self.phase = Phase::Head;
                }
                Ok(ev)
            }
        }
    }

    /// The server closed: the end of a close-delimited body or of a tunnel, a
    /// truncation anywhere else a response was in progress.
    pub fn on_eof(&mut self, unconsumed: usize) -> Result<(), HttpError> {
        match self.phase {
            Phase::Head if unconsumed == 0 => Ok(()),
            Phase::Head => Err(FramingError::Truncated.into()),
            Phase::Body => Ok(self.body.on_eof()?),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drives a reader over `input` the way a shard does; returns the events
    /// with the absolute offset each one ends at.
    fn drive_requests(input: &[u8]) -> Vec<(Event, usize)> {
        let mut r = RequestReader::new(Limits::default());
        let mut at = 0;
        let mut out = Vec::new();
        loop {
            let ev = r.next(&input[at..], Instant::now()).unwrap();
            match ev {
                Event::Head { len }
                | Event::Data { len }
                | Event::Framing { len }
                | Event::End { len } => at += len,
                Event::NeedMore => return out,
            }
            out.push((ev, at));
        }
    }

    #[test]
    fn pipelined_requests_in_order() {
        let input = b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /2 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcPOST /3 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\nGET /4 HTTP/1.1\r\n";
        let evs = drive_requests(input);
        let kinds: Vec<Event> = evs.iter().map(|e| e.0).collect();
        assert_eq!(
            kinds,
            [
                Event::Head { len: 28 },
                Event::End { len: 0 },
                Event::Head { len: 39 },
                Event::Data { len: 3 },
                Event::End { len: 0 },
                Event::Head { len: 48 },
                Event::Framing { len: 3 },
                Event::Data { len: 2 },
                Event::Framing { len: 2 },
                Event::Framing { len: 3 },
                Event::End { len: 2 },
            ]
        );
        assert_eq!(evs.last().unwrap().1, input.len() - 17);
    }

    #[test]
    fn expect_continue_then_interim_and_final_response() {
        let req = b"POST /up HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n";
        let mut r = RequestReader::new(Limits::default());
        let now = Instant::now();
        assert_eq!(r.next(req, now), Ok(Event::Head { len: req.len() }));
        assert!(r.info().unwrap().expect_continue);
        assert_eq!(r.next(b"", now), Ok(Event::NeedMore));
        assert_eq!(r.next(b"data", now), Ok(Event::Data { len: 4 }));
        assert_eq!(r.next(b"", now), Ok(Event::End { len: 0 }));

        let mut s = ResponseReader::new(Limits::default());
        s.expect(Method::Post);
        let resp =
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(s.next(resp, now), Ok(Event::Head { len: 25 }));
        assert!(s.info().unwrap().interim);
        assert_eq!(s.next(&resp[25..], now), Ok(Event::End { len: 0 }));
        assert_eq!(s.next(&resp[25..], now), Ok(Event::Head { len: 43 }));
        assert_eq!(s.head().status, 201);
        assert_eq!(s.next(&resp[68..], now), Ok(Event::End { len: 0 }));
    }

    #[test]
    fn head_response_has_no_body_even_with_length() {
        let mut s = ResponseReader::new(Limits::default());
        s.expect(Method::Head);
        let now = Instant::now();
        let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";
        assert_eq!(s.next(resp, now), Ok(Event::Head { len: 40 }));
        assert_eq!(s.next(&resp[40..], now), Ok(Event::End { len: 0 }));
        s.expect(Method::Get);
        assert_eq!(s.next(&resp[40..], now), Ok(Event::Head { len: 27 }));
        assert_eq!(s.next(b"", now), Ok(Event::End { len: 0 }));
        assert_eq!(s.on_eof(0), Ok(()));
    }

    #[test]
    fn close_delimited_response_ends_at_eof() {
        let mut s = ResponseReader::new(Limits::default());
        let now = Instant::now();
        let resp = b"HTTP/1.0 200 OK\r\n\r\nall of it";
        assert_eq!(s.next(resp, now), Ok(Event::Head { len: 19 }));
        assert_eq!(s.next(&resp[19..], now), Ok(Event::Data { len: 9 }));
        assert_eq!(s.on_eof(0), Ok(()));
        let mut s = ResponseReader::new(Limits::default());
        s.next(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", now)
            .unwrap();
        assert_eq!(
            s.on_eof(0),
            Err(HttpError::Framing(FramingError::Truncated))
        );
    }

    #[test]
    fn errors_and_statuses() {
        let now = Instant::now();
        let mut r = RequestReader::new(Limits::default());
        let e = r
            .next(
                b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                now,
            )
            .unwrap_err();
        assert_eq!(e, HttpError::Reject(Reject::ContentLength));
        assert_eq!(e.request_status(), 400);
        let mut r = RequestReader::new(Limits::default());
        let e = r.next(b"CONNECT h:1 HTTP/1.1\r\n\r\n", now).unwrap_err();
        assert_eq!(e.request_status(), 501);
        let mut r = RequestReader::new(Limits::default());
        r.next(
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            now,
        )
        .unwrap();
        let e = r.next(b"zz\r\n", now).unwrap_err();
        assert_eq!(e, HttpError::Framing(FramingError::ChunkSize));
        assert_eq!(e.request_status(), 400);
        assert_eq!(e.response_status(), 502);
    }

    #[test]
    fn upgrade_turns_both_directions_into_a_tunnel() {
        let now = Instant::now();
        let req = b"GET /chat HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
        let mut r = RequestReader::new(Limits::default());
        assert_eq!(r.next(req, now), Ok(Event::Head { len: req.len() }));
        assert!(r.info().unwrap().upgrade);
        assert_eq!(r.next(b"", now), Ok(Event::End { len: 0 }));
        let mut s = ResponseReader::new(Limits::default());
        let resp = b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n\x81\x02hi";
        let head = resp.len() - 4;
        assert_eq!(s.next(resp, now), Ok(Event::Head { len: head }));
        assert_eq!(s.info().unwrap().body, BodyKind::Tunnel);
        assert_eq!(s.next(&resp[head..], now), Ok(Event::Data { len: 4 }));
        r.into_tunnel();
        // Not a request head any more: frames pass as data.
        assert_eq!(r.next(b"\x81\x85GET /", now), Ok(Event::Data { len: 7 }));
        assert_eq!(r.body().data_ahead(), u64::MAX);
        assert_eq!(r.on_eof(0), Ok(()));
        assert_eq!(s.on_eof(0), Ok(()));
    }

    #[test]
    fn http_request_timeout_runs_from_the_first_byte() {
        let t0 = Instant::now();
        let mut r = RequestReader::new(Limits::default());
        let timeout = Duration::from_secs(5);
        assert!(!r.head_expired(t0 + Duration::from_secs(60), timeout));
        assert_eq!(r.next(b"GET / HT", t0), Ok(Event::NeedMore));
        assert_eq!(
            r.next(b"GET / HTTP/1.1\r\n", t0 + Duration::from_secs(4)),
            Ok(Event::NeedMore)
        );
        assert!(!r.head_expired(t0 + Duration::from_millis(4999), timeout));
        assert!(r.head_expired(t0 + Duration::from_secs(5), timeout));
        assert_eq!(
            r.on_eof(16),
            Err(HttpError::Framing(FramingError::Truncated))
        );
    }
}
