//! Fetches on a TCP client's first bytes, before anything is forwarded
//! (`req.len`, `req.payload`, `req.ssl_hello_type`, `req.ssl_sni`): pure
//! parsers of a byte slice, as HAProxy 2.6's `src/payload.c` reads its
//! request buffer. No I/O: the shard peeks the bytes and says whether more
//! may come ([`Inspect::last`]).
//!
//! A parser that needs more bytes than there are answers [`Peek::Short`]:
//! HAProxy's `SMP_F_MAY_CHANGE`, which makes a `tcp-request content` rule
//! wait for more data until `inspect-delay` expires.

use std::cell::Cell;

/// The client's bytes as the shard peeked them.
#[derive(Debug, Default)]
pub struct Inspect {
    pub data: Vec<u8>,
    /// The most bytes that could ever be there (`tune.bufsize`): a payload
    /// asked beyond it never matches.
    pub max: usize,
    /// No more bytes will be considered (the delay expired, the client shut
    /// its side, the buffer is full): a fetch short of data fails for good.
    pub last: bool,
    /// Set by a fetch that found too few bytes, or whose value may still
    /// change (`req.len`), when `last` is not set.
    pub short: Cell<bool>,
}

impl Inspect {
    /// A fetch's value may change with more bytes (`SMP_F_MAY_CHANGE`).
    pub fn may_change(&self) {
        if !self.last {
            self.short.set(true);
        }
    }
}

/// What a parser found in the bytes so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peek<T> {
    Found(T),
    /// More bytes could make it found.
    Short,
    /// Not there, and more bytes won't change that.
    No,
}

/// `req.payload(off,len)`: `len` bytes at `off` (`len` 0: to the end).
pub fn payload(d: &[u8], off: usize, len: usize, max: usize) -> Peek<&[u8]> {
    if len > max || off.saturating_add(len) > max {
        return Peek::No;
    }
    if off + len > d.len() {
        return Peek::Short;
    }
    Peek::Found(if len == 0 {
        &d[off..]
    } else {
        &d[off..off + len]
    })
}

/// `req.ssl_hello_type`: the handshake type of a complete TLS handshake
/// message (1 for a ClientHello).
pub fn hello_type(d: &[u8]) -> Peek<i64> {
    let Some(&first) = d.first() else {
        return Peek::Short;
    };
    if !((0x14..=0x17).contains(&first) || first == 0xff) {
        return Peek::No;
    }
    if d.len() < 9 {
        return Peek::Short;
    }
    if d[1] < 3 {
        return Peek::No;
    }
    if ((d[3] as usize) << 8) + (d[4] as usize) < 4 {
        return Peek::No;
    }
    let hs_len = ((d[6] as usize) << 16) + ((d[7] as usize) << 8) + d[8] as usize;
    if d.len() < 9 + hs_len {
        return Peek::Short;
    }
    Peek::Found(d[5] as i64)
}

/// `req.ssl_sni`: the host name in the server_name extension of a complete
/// TLS ClientHello (one record, TLS 1.0 or later).
pub fn hello_sni(d: &[u8]) -> Peek<&[u8]> {
    let be16 = |b: &[u8], i: usize| ((b[i] as usize) << 8) + b[i + 1] as usize;
    // The smallest ClientHello with an extension.
    const MIN_HELLO: usize = 2 + 32 + 1 + 2 + 2 + 1 + 1 + 2 + 2;
    if d.is_empty() {
        return Peek::Short;
    }
    if d[0] != 0x16 {
        return Peek::No;
    }
    if d.len() < 3 {
        return Peek::Short;
    }
    if d[1] < 3 {
        return Peek::No;
    }
    if d.len() < 5 {
        return Peek::Short;
    }
    if be16(d, 3) < 4 + MIN_HELLO {
        return Peek::No;
    }
    let d = &d[5..];
    if d.is_empty() {
        return Peek::Short;
    }
    if d[0] != 0x01 {
        return Peek::No;
    }
    if d.len() < 4 {
        return Peek::Short;
    }
    let hs_len = ((d[1] as usize) << 16) + be16(d, 2);
    if hs_len < MIN_HELLO {
        return Peek::No;
    }
    // The whole ClientHello, so no read below is past the bytes there are.
    if d.len() < 4 + hs_len {
        return Peek::Short;
    }
    let mut h = &d[4..4 + hs_len];
    if h[0] < 3 || h[1] < 1 {
        return Peek::No;
    }
    let sid = h[34] as usize;
    if sid > 32 || sid > h.len() - 35 {
        return Peek::No;
    }
    h = &h[35 + sid..];
    if h.len() < 4 {
        return Peek::No;
    }
    let ciphers = be16(h, 0);
    if ciphers < 2 || ciphers + 2 > h.len() {
        return Peek::No;
    }
    h = &h[2 + ciphers..];
    if h.len() < 2 || h[0] < 1 || h[0] as usize + 1 > h.len() {
        return Peek::No;
    }
    h = &h[1 + h[0] as usize..];
    if h.len() < 2 || be16(h, 0) > h.len() - 2 {
        return Peek::No;
    }
    let mut exts = &h[2..2 + be16(h, 0)];
    while exts.len() >= 4 {
        let (ty, len) = (be16(exts, 0), be16(exts, 2));
        if len > exts.len() - 4 {
            return Peek::No;
        }
        if ty == 0 {
            // server_name: list length, then type, length, name.
            if len < 2 || exts.len() < 9 {
                return Peek::No;
            }
            let list = be16(exts, 4);
            if list < 4 || list > exts.len() - 6 {
                return Peek::No;
            }
            let name_len = be16(exts, 7);
            if name_len + 3 > list {
                return Peek::No;
            }
            if exts[6] == 0 {
                return Peek::Found(&exts[9..9 + name_len]);
            }
        }
        exts = &exts[4 + len..];
    }
    Peek::No
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A TLS 1.2 ClientHello record with these extensions (type, body).
    fn hello(exts: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut body = vec![3, 3];
        body.extend([7u8; 32]);
        body.push(0); // session id
        body.extend([0, 2, 0x13, 0x01]); // one cipher suite
        body.extend([1, 0]); // null compression
        let mut e = Vec::new();
        for (ty, data) in exts {
            e.extend(ty.to_be_bytes());
            e.extend((data.len() as u16).to_be_bytes());
            e.extend(data);
        }
        body.extend((e.len() as u16).to_be_bytes());
        body.extend(e);
        let mut hs = vec![1];
        hs.extend(&(body.len() as u32).to_be_bytes()[1..]);
        hs.extend(body);
        let mut rec = vec![0x16, 3, 1];
        rec.extend((hs.len() as u16).to_be_bytes());
        rec.extend(hs);
        rec
    }

    fn sni(name: &[u8]) -> (u16, Vec<u8>) {
        let mut v = ((name.len() + 3) as u16).to_be_bytes().to_vec();
        v.push(0);
        v.extend((name.len() as u16).to_be_bytes());
        v.extend(name);
        (0, v)
    }

    #[test]
    fn sni_of_a_complete_hello() {
        let h = hello(&[sni(b"b.test")]);
        assert_eq!(hello_sni(&h), Peek::Found(&b"b.test"[..]));
        assert_eq!(hello_type(&h), Peek::Found(1));
    }

    #[test]
    fn sni_after_another_extension() {
        let alpn = (16u16, vec![0, 3, 2, b'h', b'2']);
        let h = hello(&[alpn, sni(b"x.wild.test")]);
        assert_eq!(hello_sni(&h), Peek::Found(&b"x.wild.test"[..]));
    }

    #[test]
    fn no_sni_extension_is_no_for_good() {
        let h = hello(&[(16, vec![0, 3, 2, b'h', b'2'])]);
        assert_eq!(hello_sni(&h), Peek::No);
        assert_eq!(hello_type(&h), Peek::Found(1));
    }

    #[test]
    fn every_truncation_is_short() {
        let h = hello(&[sni(b"a.test")]);
        for n in 0..h.len() {
            assert_eq!(hello_sni(&h[..n]), Peek::Short, "{n} bytes");
            assert_eq!(hello_type(&h[..n]), Peek::Short, "{n} bytes");
        }
    }

    #[test]
    fn garbage_is_not_a_hello() {
        assert_eq!(hello_sni(b"GET / HTTP/1.1\r\n\r\n"), Peek::No);
        assert_eq!(hello_type(b"GET / HTTP/1.1\r\n\r\n"), Peek::No);
        // A handshake record whose lengths lie: the extension runs past
        // the list, the name past its extension.
        let mut h = hello(&[sni(b"a.test")]);
        let n = h.len();
        h[n - 11] = 0xff; // server_name list length
        assert_eq!(hello_sni(&h), Peek::No);
        let mut h = hello(&[sni(b"a.test")]);
        h[n - 13] = 0x40; // extension length
        assert_eq!(hello_sni(&h), Peek::No);
        // SSLv2-style and record version 2: not TLS.
        assert_eq!(hello_sni(&[0x16, 2, 0, 0, 60]), Peek::No);
        assert_eq!(hello_type(&[0x80, 0x2e, 1, 3, 1, 0, 0, 0, 0]), Peek::No);
        let mut h = hello(&[sni(b"a.test")]);
        h[5] = 2; // a ServerHello
        assert_eq!(hello_sni(&h), Peek::No);
        assert_eq!(hello_type(&h), Peek::Found(2));
    }

    #[test]
    fn payload_slices_waits_and_gives_up_past_the_buffer() {
        assert_eq!(payload(b"abcdef", 1, 2, 16), Peek::Found(&b"bc"[..]));
        assert_eq!(payload(b"abcdef", 2, 0, 16), Peek::Found(&b"cdef"[..]));
        assert_eq!(payload(b"ab", 1, 2, 16), Peek::Short);
        assert_eq!(payload(b"ab", 10, 10, 16), Peek::No);
    }
}
