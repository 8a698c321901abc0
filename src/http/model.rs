//! What a parsed head is: spans into the parse buffer, the method and version,
//! the header list, and the request and response heads built from them. Plain
//! data shared by every part of `http`; parsing is in `head`.

/// A byte range in the buffer the head was parsed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub(crate) fn of(buf: &[u8], part: &[u8]) -> Span {
        let start = (part.as_ptr() as usize).wrapping_sub(buf.as_ptr() as usize);
        if start > buf.len() || part.len() > buf.len() - start {
            return Span::default();
        }
        Span {
            start: start as u32,
            end: (start + part.len()) as u32,
        }
    }

    /// The bytes this span covers in `buf` (empty if `buf` is not the parsed one).
    pub fn get<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        buf.get(self.start as usize..self.end as usize)
            .unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        (self.end - self.start) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }
}

/// One header line: its name and its value (without surrounding blanks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderSpan {
    pub name: Span,
    pub value: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

impl Version {
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

/// Methods the proxy treats specially; every other token is `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Options,
    Trace,
    Connect,
    Other,
}

impl Method {
    pub fn from_bytes(m: &[u8]) -> Method {
        match m {
            b"GET" => Method::Get,
            b"HEAD" => Method::Head,
            b"POST" => Method::Post,
            b"PUT" => Method::Put,
            b"DELETE" => Method::Delete,
            b"OPTIONS" => Method::Options,
            b"TRACE" => Method::Trace,
            b"CONNECT" => Method::Connect,
            _ => Method::Other,
        }
    }

    /// RFC 9110 §9.2.2: a request with this method may be sent twice (retries on a
    /// reused server connection are limited to these).
    pub fn is_idempotent(self) -> bool {
        !matches!(self, Method::Post | Method::Connect | Method::Other)
    }
}

/// Headers of one parsed head, as spans into the parse buffer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    pub list: Vec<HeaderSpan>,
}

impl Headers {
    /// Values of every header line named `name` (ASCII case-insensitive).
    pub fn values<'a>(
        &'a self,
        buf: &'a [u8],
        name: &'a str,
    ) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.list
            .iter()
            .filter(move |h| h.name.get(buf).eq_ignore_ascii_case(name.as_bytes()))
            .map(move |h| h.value.get(buf))
    }

    /// The first value of `name`, if any.
    pub fn first<'a>(&'a self, buf: &'a [u8], name: &'a str) -> Option<&'a [u8]> {
        self.values(buf, name).next()
    }
}

/// A complete request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    pub method: Method,
    pub method_span: Span,
    pub target: Span,
    pub version: Version,
    pub headers: Headers,
    /// Bytes of the head, blank line included: the body (or next request) starts
    /// here.
    pub len: usize,
}

impl Default for RequestHead {
    fn default() -> Self {
        RequestHead {
            method: Method::Get,
            method_span: Span::default(),
            target: Span::default(),
            version: Version::Http11,
            headers: Headers::default(),
            len: 0,
        }
    }
}

impl RequestHead {
    /// "METHOD URI VERSION" for the log (`%r`), single spaces as HAProxy
    /// rebuilds it; one allocation, made when the log record is.
    pub fn request_line(&self, buf: &[u8]) -> Box<[u8]> {
        [
            self.method_span.get(buf),
            b" ",
            self.target.get(buf),
            b" ",
            self.version.as_str().as_bytes(),
        ]
        .concat()
        .into_boxed_slice()
    }
}

/// A complete response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: u16,
    pub reason: Span,
    pub version: Version,
    pub headers: Headers,
    pub len: usize,
}

impl Default for ResponseHead {
    fn default() -> Self {
        ResponseHead {
            status: 0,
            reason: Span::default(),
            version: Version::Http11,
            headers: Headers::default(),
            len: 0,
        }
    }
}
