//! HAProxy's error responses, byte for byte as haproxy 2.6 puts them on the wire
//! (captured from haproxy 2.6.12; the texts are `http_err_msgs` in its
//! `src/http.c`). Two shapes exist there and both are kept:
//! - errors the H1 layer sends while parsing a request (400, 408, 413, 422, 501,
//!   and 500 for an internal error) go out verbatim, mixed-case header names, and
//!   400/408 say `Connection: close`;
//! - errors the stream sends once a request was parsed (403 deny, 502, 503, 504)
//!   go through HTX and come out with lower-case header names and no `Connection`
//!   header; HAProxy closes the connection after them.
//!
//! 414 and 431 do not exist in 2.6 (it answers 400, and so does `head`); their
//! texts are taken from HAProxy's later `http_err_msgs` for `errorfile 414/431`
//! users and future use. Static bytes: nothing is formatted per request.
//!
//! `errorfile CODE FILE` replaces one of them with a file's bytes, checked when
//! the configuration loads as HAProxy checks it (`http_str_to_htx`), and then sent
//! as it is.

use std::time::Instant;

use super::head::{HeadError, HeadParser, Limits, Parsed, ResponseHead};
use super::validate::parse_content_length;

/// Statuses `errorfile` may replace: HAProxy 2.6's `http_err_codes`.
pub const ERRORFILE_CODES: [u16; 19] = [
    200, 400, 401, 403, 404, 405, 407, 408, 410, 413, 421, 422, 425, 429, 500, 501, 502, 503, 504,
];

/// Largest error file: `tune.bufsize`.
pub const MAX_ERRORFILE: usize = 16384;

/// Why an error file was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorFileError {
    /// `errorfile` for a status HAProxy does not let one replace.
    UnknownStatus(u16),
    /// Larger than `tune.bufsize`.
    TooLarge(usize),
    /// No blank line ends the head.
    Incomplete,
    /// Not an HTTP response head.
    Head(HeadError),
    /// An interim (1xx) status line.
    InterimStatus(u16),
    /// `Transfer-Encoding: chunked` ("chunk-encoded payload not supported").
    Chunked,
    /// Bytes after a head that announces no body (204, 304, `Content-Length: 0`).
    UnexpectedPayload,
    /// The payload is not as long as its `Content-Length`.
    LengthMismatch { announced: u64, actual: usize },
}

impl std::fmt::Display for ErrorFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            ErrorFileError::UnknownStatus(s) => write!(f, "status code '{s}' not handled"),
            ErrorFileError::TooLarge(n) => {
                write!(f, "{n} bytes, more than tune.bufsize ({MAX_ERRORFILE})")
            }
            ErrorFileError::Incomplete => write!(f, "no end of headers"),
            ErrorFileError::Head(e) => write!(f, "unable to parse headers ({e:?})"),
            ErrorFileError::InterimStatus(s) => {
                write!(f, "invalid http status code for an error message ({s})")
            }
            ErrorFileError::Chunked => write!(f, "chunk-encoded payload not supported"),
            ErrorFileError::UnexpectedPayload => write!(f, "message payload not expected"),
            ErrorFileError::LengthMismatch { announced, actual } => write!(
                f,
                "payload size does not match the announced content-length ({actual} != {announced})"
            ),
        }
    }
}

/// The error responses of one proxy: HAProxy's, with `errorfile` replacements.
#[derive(Debug, Clone, Default)]
pub struct ErrorPages {
    custom: Vec<(u16, Box<[u8]>)>,
}

impl ErrorPages {
    /// `errorfile status FILE`, the file's bytes in `raw`.
    pub fn set(&mut self, status: u16, raw: Vec<u8>) -> Result<(), ErrorFileError> {
        if !ERRORFILE_CODES.contains(&status) {
            return Err(ErrorFileError::UnknownStatus(status));
        }
        check_errorfile(&raw)?;
        self.custom.retain(|(s, _)| *s != status);
        self.custom.push((status, raw.into_boxed_slice()));
        Ok(())
    }

    /// The bytes to send for `status`.
    pub fn get(&self, status: u16) -> Option<&[u8]> {
        self.custom
            .iter()
            .find(|(s, _)| *s == status)
            .map(|(_, r)| &r[..])
            .or_else(|| error_response(status))
    }
}

fn check_errorfile(raw: &[u8]) -> Result<(), ErrorFileError> {
    if raw.len() > MAX_ERRORFILE {
        return Err(ErrorFileError::TooLarge(raw.len()));
    }
    let mut head = ResponseHead::default();
    let limits = Limits {
        max_head: MAX_ERRORFILE + 1,
        ..Limits::default()
    };
    let n = match HeadParser::new(limits).parse_response(raw, Instant::now(), &mut head) {
        Ok(Parsed::Complete(n)) => n,
        Ok(Parsed::Partial) => return Err(ErrorFileError::Incomplete),
        Err(e) => return Err(ErrorFileError::Head(e)),
    };
    let status = head.status;
    if status < 200 && status != 101 {
        return Err(ErrorFileError::InterimStatus(status));
    }
    let payload = raw.len() - n;
    if status == 204 || status == 304 {
        return if payload > 0 {
            Err(ErrorFileError::UnexpectedPayload)
        } else {
            Ok(())
        };
    }
    let chunked = head
        .headers
        .values(raw, "transfer-encoding")
        .any(|v| super::validate::list_words(v).any(|w| w.eq_ignore_ascii_case(b"chunked")));
    if chunked {
        return Err(ErrorFileError::Chunked);
    }
    if let Some(v) = head.headers.first(raw, "content-length") {
        let announced = parse_content_length(v).ok_or(ErrorFileError::Head(HeadError::Syntax(
            super::head::SyntaxError::HeaderValue,
        )))?;
        if announced == 0 && payload > 0 {
            return Err(ErrorFileError::UnexpectedPayload);
        }
        if announced != payload as u64 {
            return Err(ErrorFileError::LengthMismatch {
                announced,
                actual: payload,
            });
        }
    }
    Ok(())
}

/// The response HAProxy 2.6 sends for `status`, if it has one.
pub fn error_response(status: u16) -> Option<&'static [u8]> {
    let r: &'static str = match status {
        400 => E400,
        403 => E403,
        408 => E408,
        413 => E413,
        414 => E414,
        422 => E422,
        431 => E431,
        500 => E500,
        501 => E501,
        502 => E502,
        503 => E503,
        504 => E504,
        _ => return None,
    };
    Some(r.as_bytes())
}

const E400: &str = "HTTP/1.1 400 Bad request\r\n\
Content-length: 90\r\n\
Cache-Control: no-cache\r\n\
Connection: close\r\n\
Content-Type: text/html\r\n\
\r\n\
<html><body><h1>400 Bad request</h1>\nYour browser sent an invalid request.\n</body></html>\n";

const E403: &str = "HTTP/1.1 403 Forbidden\r\n\
content-length: 93\r\n\
cache-control: no-cache\r\n\
content-type: text/html\r\n\
\r\n\
<html><body><h1>403 Forbidden</h1>\nRequest forbidden by administrative rules.\n</body></html>\n";

const E408: &str = "HTTP/1.1 408 Request Time-out\r\n\
Content-length: 110\r\n\
Cache-Control: no-cache\r\n\
Connection: close\r\n\
Content-Type: text/html\r\n\
\r\n\
<html><body><h1>408 Request Time-out</h1>\nYour browser didn't send a complete request in time.\n</body></html>\n";

const E413: &str = "HTTP/1.1 413 Payload Too Large\r\n\
Content-length: 106\r\n\
Cache-Control: no-cache\r\n\
Content-Type: text/html\r\n\
\r\n\
<html><body><h1>413 Payload Too Large</h1>\nThe request entity exceeds the maximum allowed.\n</body></html>\n";

const E414: &str = "HTTP/1.1 414 URI Too Long\r\n\
Content-length: 110\r\n\
Cache-Control: no-cache\r\n\
Content-Type: text/html\r\n\
\r\n\
<html><body><h1>414 URI Too Long</h1>\nThe URI provided was too long for the server to process.\n</body></html>\n";

const E422: &str = "HTTP/1.1 422 Unprocessable Content\r\n\
Content-length: 116\r\n\
Cache-Control: no-cache\r\n\
Content-Type: text/html\r\n\
\r\n\
<html><body><h1>422 Unprocessable Content</h1>\nThe server cannot process the contained instructions.\n</body></html>\n";

const E431: &str = "HTTP/1.1 431 Request Header Fields Too Large\r\n\
Content-length: 105\r\n\
Cache-Control: no-cache\r\n\
Content-Type: text/html\r\n\
\r\n\
<html><body><h1>431 Request Header Fields Too Large</h1>\nRequest Header Fields Too Large.\n</body></html>\n";

const E500: &str = "HTTP/1.1 500 Internal Server Error\r\n\
Content-length: 97\r\n\
Cache-Control: no-cache\r\n\
Content-Type: text/html\r\n\
\r\n\
<html><body><h1>500 Internal Server Error</h1>\nAn internal server error occurred.\n</body></html>\n";

const E501: &str = "HTTP/1.1 501 Not Implemented\r\n\
Content-length: 136\r\n\
Cache-Control: no-cache\r\n\
Content-Type: text/html\r\n\
\r\n\
<html><body><h1>501 Not Implemented</h1>\n.The server does not support the functionality required to fulfill the request.\n</body></html>\n";

const E502: &str = "HTTP/1.1 502 Bad Gateway\r\n\
content-length: 107\r\n\
cache-control: no-cache\r\n\
content-type: text/html\r\n\
\r\n\
<html><body><h1>502 Bad Gateway</h1>\nThe server returned an invalid or incomplete response.\n</body></html>\n";

const E503: &str = "HTTP/1.1 503 Service Unavailable\r\n\
content-length: 107\r\n\
cache-control: no-cache\r\n\
content-type: text/html\r\n\
\r\n\
<html><body><h1>503 Service Unavailable</h1>\nNo server is available to handle this request.\n</body></html>\n";

const E504: &str = "HTTP/1.1 504 Gateway Time-out\r\n\
content-length: 92\r\n\
cache-control: no-cache\r\n\
content-type: text/html\r\n\
\r\n\
<html><body><h1>504 Gateway Time-out</h1>\nThe server didn't respond in time.\n</body></html>\n";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::head::{HeadParser, Limits, Parsed, ResponseHead};
    use crate::http::validate::parse_content_length;
    use std::time::Instant;

    #[test]
    fn captured_from_haproxy_2_6() {
        assert_eq!(
            error_response(503).unwrap(),
            &b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 107\r\ncache-control: no-cache\r\ncontent-type: text/html\r\n\r\n<html><body><h1>503 Service Unavailable</h1>\nNo server is available to handle this request.\n</body></html>\n"[..]
        );
        assert_eq!(
            error_response(400).unwrap(),
            &b"HTTP/1.1 400 Bad request\r\nContent-length: 90\r\nCache-Control: no-cache\r\nConnection: close\r\nContent-Type: text/html\r\n\r\n<html><body><h1>400 Bad request</h1>\nYour browser sent an invalid request.\n</body></html>\n"[..]
        );
        assert_eq!(error_response(404), None);
    }

    #[test]
    fn errorfiles_replace_defaults_once_checked() {
        let mut pages = ErrorPages::default();
        let maint = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/html\r\nContent-Length: 11\r\n\r\nMaintenance".to_vec();
        assert_eq!(pages.set(503, maint.clone()), Ok(()));
        assert_eq!(pages.get(503), Some(&maint[..]));
        assert_eq!(pages.get(502), error_response(502));
        // A 200 page for 503 is allowed, as in HAProxy (maintenance pages).
        let ok = b"HTTP/1.0 200 OK\r\n\r\nuntil close".to_vec();
        assert_eq!(pages.set(503, ok.clone()), Ok(()));
        assert_eq!(pages.get(503), Some(&ok[..]));

        let refused: [(u16, &[u8], ErrorFileError); 8] = [
            (503, b"<html>not http</html>", ErrorFileError::Incomplete),
            (
                418,
                b"HTTP/1.1 418 x\r\n\r\n",
                ErrorFileError::UnknownStatus(418),
            ),
            (
                503,
                b"HTTP/1.1 100 Continue\r\n\r\n",
                ErrorFileError::InterimStatus(100),
            ),
            (
                503,
                b"HTTP/1.1 503 x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                ErrorFileError::Chunked,
            ),
            (
                503,
                b"HTTP/1.1 503 x\r\nContent-Length: 5\r\n\r\nabc",
                ErrorFileError::LengthMismatch {
                    announced: 5,
                    actual: 3,
                },
            ),
            (
                503,
                b"HTTP/1.1 204 x\r\n\r\nabc",
                ErrorFileError::UnexpectedPayload,
            ),
            (
                503,
                b"HTTP/1.1 503 x\r\nContent-Length: 0\r\n\r\nabc",
                ErrorFileError::UnexpectedPayload,
            ),
            (
                503,
                b"<html>not http</html>\r\n\r\n",
                ErrorFileError::Head(HeadError::Syntax(crate::http::head::SyntaxError::Version)),
            ),
        ];
        for (status, raw, want) in refused {
            assert_eq!(
                pages.set(status, raw.to_vec()),
                Err(want),
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
        assert_eq!(
            pages.set(503, vec![b'x'; MAX_ERRORFILE + 1]),
            Err(ErrorFileError::TooLarge(MAX_ERRORFILE + 1))
        );
        assert_eq!(
            pages.get(503),
            Some(&ok[..]),
            "a refused file changes nothing"
        );
        assert!(ErrorFileError::LengthMismatch {
            announced: 5,
            actual: 3
        }
        .to_string()
        .contains("(3 != 5)"));
    }

    #[test]
    fn every_response_parses_and_its_length_is_right() {
        for status in [400, 403, 408, 413, 414, 422, 431, 500, 501, 502, 503, 504] {
            let raw = error_response(status).unwrap();
            let mut h = ResponseHead::default();
            let parsed = HeadParser::new(Limits::default())
                .parse_response(raw, Instant::now(), &mut h)
                .unwrap();
            let Parsed::Complete(n) = parsed else {
                panic!("{status} incomplete")
            };
            assert_eq!(h.status, status);
            let len = parse_content_length(h.headers.first(raw, "content-length").unwrap());
            assert_eq!(len, Some((raw.len() - n) as u64), "{status}");
            let body = std::str::from_utf8(&raw[n..]).unwrap();
            assert!(
                body.starts_with(&format!("<html><body><h1>{status} ")),
                "{status}"
            );
        }
    }
}
