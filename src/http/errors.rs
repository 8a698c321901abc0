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
