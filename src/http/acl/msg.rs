//! The message rules read and edit: a copy of a parsed request or response head
//! in one reusable byte buffer, with the request line (or status line) and the
//! header list as ranges into it. Edits append bytes and move ranges, so a
//! shard that keeps one `Message` per connection allocates nothing per request
//! once warm. `rebuild_request`/`rebuild_response` turn an edited message back
//! into a head the `rewrite` module writes on.

use crate::http::head::{HeaderSpan, Headers, RequestHead, ResponseHead, Span, Version};

/// A byte range in [`Message`]'s buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct R32 {
    start: u32,
    end: u32,
}

#[derive(Debug, Clone, Default)]
pub struct Message {
    bytes: Vec<u8>,
    method: R32,
    /// The method as received: HAProxy 2.6's `method` fetch keeps reading it
    /// after `set-method`.
    received_method: R32,
    /// The target as received (`capture.req.uri`).
    received_target: R32,
    target: R32,
    reason: R32,
    status: u16,
    version: Option<Version>,
    headers: Vec<(R32, R32)>,
    edited: bool,
    response: bool,
}

impl Message {
    pub fn new() -> Message {
        Message::default()
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.headers.clear();
        self.method = R32::default();
        self.target = R32::default();
        self.reason = R32::default();
        self.status = 0;
        self.edited = false;
    }

    fn push(&mut self, b: &[u8]) -> R32 {
        let start = self.bytes.len() as u32;
        self.bytes.extend_from_slice(b);
        R32 {
            start,
            end: self.bytes.len() as u32,
        }
    }

    fn get(&self, r: R32) -> &[u8] {
        self.bytes
            .get(r.start as usize..r.end as usize)
            .unwrap_or_default()
    }

    fn load_headers(&mut self, h: &Headers, buf: &[u8]) {
        for hs in &h.list {
            let n = self.push(hs.name.get(buf));
            let v = self.push(hs.value.get(buf));
            self.headers.push((n, v));
        }
    }

    /// Loads a request head parsed from `buf`.
    pub fn load_request(&mut self, head: &RequestHead, buf: &[u8]) {
        self.clear();
        self.response = false;
        self.method = self.push(head.method_span.get(buf));
        self.received_method = self.method;
        self.target = self.push(head.target.get(buf));
        self.received_target = self.target;
        self.version = Some(head.version);
        self.load_headers(&head.headers, buf);
    }

    /// Loads a response head parsed from `buf`.
    pub fn load_response(&mut self, head: &ResponseHead, buf: &[u8]) {
        self.clear();
        self.response = true;
        self.status = head.status;
        self.reason = self.push(head.reason.get(buf));
        self.version = Some(head.version);
        self.load_headers(&head.headers, buf);
    }

    /// Parses `raw` as a request head (tests and tools).
    pub fn parse_request(raw: &[u8]) -> Option<Message> {
        let mut h = RequestHead::default();
        let mut p = crate::http::head::HeadParser::new(crate::http::head::Limits::default());
        match p.parse_request(raw, std::time::Instant::now(), &mut h) {
            Ok(crate::http::head::Parsed::Complete(_)) => {
                let mut m = Message::new();
                m.load_request(&h, raw);
                Some(m)
            }
            _ => None,
        }
    }

    /// Parses `raw` as a response head (tests and tools).
    pub fn parse_response(raw: &[u8]) -> Option<Message> {
        let mut h = ResponseHead::default();
        let mut p = crate::http::head::HeadParser::new(crate::http::head::Limits::default());
        match p.parse_response(raw, std::time::Instant::now(), &mut h) {
            Ok(crate::http::head::Parsed::Complete(_)) => {
                let mut m = Message::new();
                m.load_response(&h, raw);
                Some(m)
            }
            _ => None,
        }
    }

    /// Whether a rule changed anything since the load.
    pub fn edited(&self) -> bool {
        self.edited
    }

    pub fn method(&self) -> &[u8] {
        self.get(self.method)
    }

    /// The target as received, before any rewrite.
    pub fn received_target(&self) -> &[u8] {
        self.get(self.received_target)
    }

    /// The method as received, before any `set-method`.
    pub fn received_method(&self) -> &[u8] {
        self.get(self.received_method)
    }

    pub fn target(&self) -> &[u8] {
        self.get(self.target)
    }

    pub fn version(&self) -> Version {
        self.version.unwrap_or(Version::Http11)
    }

    pub fn status(&self) -> u16 {
        self.status
    }

    pub fn reason(&self) -> &[u8] {
        self.get(self.reason)
    }

    /// The path of the target (HAProxy's `path`): without the query string, and
    /// without the scheme and authority of an absolute URI.
    pub fn path(&self) -> &[u8] {
        let p = path_and_query(self.target());
        match p.iter().position(|&b| b == b'?') {
            Some(q) => &p[..q],
            None => p,
        }
    }

    /// The path with its query string (what `redirect prefix` appends).
    pub fn path_query(&self) -> &[u8] {
        path_and_query(self.target())
    }

    /// The query string after `?`, if there is a `?`.
    pub fn query(&self) -> Option<&[u8]> {
        let t = self.target();
        t.iter().position(|&b| b == b'?').map(|q| &t[q + 1..])
    }

    /// Every header line, in order.
    pub fn headers(&self) -> impl Iterator<Item = (&[u8], &[u8])> + Clone {
        self.headers
            .iter()
            .map(|&(n, v)| (self.get(n), self.get(v)))
    }

    /// Full values of the lines named `name` (ASCII case-insensitive).
    pub fn lines<'a>(&'a self, name: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + Clone + 'a {
        self.headers()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Comma-separated values of the lines named `name`, trimmed, as HAProxy's
    /// `hdr()` sees them.
    pub fn values<'a>(&'a self, name: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + Clone + 'a {
        self.lines(name)
            .flat_map(|v| v.split(|&b| b == b',').map(trim))
    }

    pub fn add_header(&mut self, name: &[u8], value: &[u8]) {
        let n = self.push(name);
        let v = self.push(value);
        self.headers.push((n, v));
        self.edited = true;
    }

    pub fn del_header(&mut self, name: &[u8]) {
        let bytes = &self.bytes;
        let before = self.headers.len();
        self.headers.retain(|&(n, _)| {
            !bytes
                .get(n.start as usize..n.end as usize)
                .unwrap_or_default()
                .eq_ignore_ascii_case(name)
        });
        self.edited |= before != self.headers.len();
    }

    pub fn set_header(&mut self, name: &[u8], value: &[u8]) {
        self.del_header(name);
        self.add_header(name, value);
    }

    /// Replaces the value of header line `index` (in `headers()` order).
    pub fn set_line_value(&mut self, index: usize, value: &[u8]) {
        let v = self.push(value);
        if let Some(h) = self.headers.get_mut(index) {
            h.1 = v;
            self.edited = true;
        }
    }

    /// Number of header lines.
    pub fn header_count(&self) -> usize {
        self.headers.len()
    }

    /// Name and value of header line `index`.
    pub fn line(&self, index: usize) -> Option<(&[u8], &[u8])> {
        self.headers
            .get(index)
            .map(|&(n, v)| (self.get(n), self.get(v)))
    }

    pub fn set_method(&mut self, m: &[u8]) {
        self.method = self.push(m);
        self.edited = true;
    }

    pub fn set_target(&mut self, t: &[u8]) {
        self.target = self.push(t);
        self.edited = true;
    }

    /// Replaces the path, keeping the query string (and an absolute URI's
    /// scheme and authority).
    pub fn set_path(&mut self, path: &[u8]) {
        let t = self.target();
        let tlen = t.len();
        let pq = path_and_query(t);
        let pre = t.len() - pq.len();
        let q = pq.iter().position(|&b| b == b'?').map(|q| pre + q);
        let start = self.bytes.len();
        self.bytes
            .extend_from_within(self.target.start as usize..self.target.start as usize + pre);
        self.bytes.extend_from_slice(path);
        if let Some(q) = q {
            let s = self.target.start as usize;
            self.bytes.extend_from_within(s + q..s + tlen);
        }
        self.target = R32 {
            start: start as u32,
            end: self.bytes.len() as u32,
        };
        self.edited = true;
    }

    /// Replaces the query string (`None`: removes it with its `?`).
    pub fn set_query(&mut self, query: Option<&[u8]>) {
        let t = self.target();
        let keep = t.iter().position(|&b| b == b'?').unwrap_or(t.len());
        let s = self.target.start as usize;
        let start = self.bytes.len();
        self.bytes.extend_from_within(s..s + keep);
        if let Some(q) = query {
            self.bytes.push(b'?');
            self.bytes.extend_from_slice(q);
        }
        self.target = R32 {
            start: start as u32,
            end: self.bytes.len() as u32,
        };
        self.edited = true;
    }

    pub fn set_status(&mut self, status: u16, reason: &[u8]) {
        self.status = status;
        self.reason = self.push(reason);
        self.edited = true;
    }

    /// Writes the (edited) request head into `out` and points `head` at it,
    /// ready for `rewrite::write_request(head, .., out, ..)`.
    pub fn rebuild_request(&self, out: &mut Vec<u8>, head: &mut RequestHead) {
        out.clear();
        let span = |out: &Vec<u8>, from: usize| Span {
            start: from as u32,
            end: out.len() as u32,
        };
        let s = out.len();
        out.extend_from_slice(self.method());
        head.method_span = span(out, s);
        head.method = crate::http::head::Method::from_bytes(self.method());
        out.push(b' ');
        let s = out.len();
        out.extend_from_slice(self.target());
        head.target = span(out, s);
        out.push(b' ');
        out.extend_from_slice(self.version().as_str().as_bytes());
        head.version = self.version();
        out.extend_from_slice(b"\r\n");
        self.rebuild_headers(out, &mut head.headers);
        head.len = out.len();
    }

    /// Writes the (edited) response head into `out` and points `head` at it.
    pub fn rebuild_response(&self, out: &mut Vec<u8>, head: &mut ResponseHead) {
        out.clear();
        out.extend_from_slice(self.version().as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.status.to_string().as_bytes());
        head.status = self.status;
        head.version = self.version();
        out.push(b' ');
        let s = out.len();
        out.extend_from_slice(self.reason());
        head.reason = Span {
            start: s as u32,
            end: out.len() as u32,
        };
        out.extend_from_slice(b"\r\n");
        self.rebuild_headers(out, &mut head.headers);
        head.len = out.len();
    }

    fn rebuild_headers(&self, out: &mut Vec<u8>, headers: &mut Headers) {
        headers.list.clear();
        for (n, v) in self.headers() {
            let ns = out.len();
            out.extend_from_slice(n);
            let ne = out.len();
            out.extend_from_slice(b": ");
            let vs = out.len();
            out.extend_from_slice(v);
            let ve = out.len();
            out.extend_from_slice(b"\r\n");
            headers.list.push(HeaderSpan {
                name: Span {
                    start: ns as u32,
                    end: ne as u32,
                },
                value: Span {
                    start: vs as u32,
                    end: ve as u32,
                },
            });
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// Trims blanks around a header value element.
pub fn trim(v: &[u8]) -> &[u8] {
    let s = v
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(v.len());
    let e = v
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(s, |e| e + 1);
    &v[s..e.max(s)]
}

/// The path and query of a target: itself in origin form, what follows the
/// authority of an absolute URI (empty if nothing does).
pub fn path_and_query(target: &[u8]) -> &[u8] {
    if target.first() == Some(&b'/') {
        return target;
    }
    if target == b"*" {
        // HAProxy: `*` has no path.
        return b"";
    }
    match target.windows(3).position(|w| w == b"://") {
        Some(sep) => {
            let rest = &target[sep + 3..];
            match rest.iter().position(|&b| b == b'/' || b == b'?') {
                Some(p) => &rest[p..],
                None => b"",
            }
        }
        None => target,
    }
}
