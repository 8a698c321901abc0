//! Pattern sets an ACL matches a sample against, built once at load: exact
//! strings in a hash set, prefixes and suffixes in byte tries (so `-f` files of
//! thousands of patterns cost one walk of the sample), substrings, regexes,
//! slash- and dot-delimited words, integer ranges and address blocks.
//! Matching allocates nothing.

use std::collections::HashSet;
use std::net::IpAddr;

use crate::http::rewrite::Network;

/// `-m` methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Found,
    Bool,
    Str,
    Beg,
    End,
    Sub,
    Reg,
    Dir,
    Dom,
    Len,
    Int,
    Ip,
}

impl Method {
    pub fn from_name(s: &str) -> Option<Method> {
        Some(match s {
            "found" => Method::Found,
            "bool" => Method::Bool,
            "str" => Method::Str,
            "beg" => Method::Beg,
            "end" => Method::End,
            "sub" => Method::Sub,
            "reg" => Method::Reg,
            "dir" => Method::Dir,
            "dom" => Method::Dom,
            "len" => Method::Len,
            "int" => Method::Int,
            "ip" => Method::Ip,
            _ => return None,
        })
    }
}

/// An inclusive integer range (`eq`, `ge`, `gt`, `le`, `lt`, `N`, `N:M`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntRange {
    pub min: i64,
    pub max: i64,
}

impl IntRange {
    pub fn contains(&self, v: i64) -> bool {
        self.min <= v && v <= self.max
    }
}

/// Address blocks grouped by prefix length, each group a hash set of masked
/// addresses: a lookup costs one hash probe per distinct prefix length, so a
/// `-f` file of thousands of networks stays fast.
#[derive(Debug, Clone, Default)]
pub struct IpSet {
    v4: Vec<(u8, HashSet<u32>)>,
    v6: Vec<(u8, HashSet<u128>)>,
}

fn mask4(a: u32, p: u8) -> u32 {
    a & u32::MAX.checked_shl(32 - u32::from(p.min(32))).unwrap_or(0)
}

fn mask6(a: u128, p: u8) -> u128 {
    a & u128::MAX
        .checked_shl(128 - u32::from(p.min(128)))
        .unwrap_or(0)
}

impl IpSet {
    pub fn insert(&mut self, n: Network) {
        match n.addr {
            IpAddr::V4(a) => {
                let m = mask4(u32::from(a), n.prefix);
                match self.v4.iter_mut().find(|g| g.0 == n.prefix) {
                    Some(g) => {
                        g.1.insert(m);
                    }
                    None => self.v4.push((n.prefix, HashSet::from([m]))),
                }
            }
            IpAddr::V6(a) => {
                let m = mask6(u128::from(a), n.prefix);
                match self.v6.iter_mut().find(|g| g.0 == n.prefix) {
                    Some(g) => {
                        g.1.insert(m);
                    }
                    None => self.v6.push((n.prefix, HashSet::from([m]))),
                }
            }
        }
    }

    /// Whether `ip` (an IPv4-mapped IPv6 address counts as IPv4) is in a block.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match ip {
            IpAddr::V4(a) => {
                let a = u32::from(a);
                self.v4.iter().any(|(p, set)| set.contains(&mask4(a, *p)))
            }
            IpAddr::V6(a) => {
                let a = u128::from(a);
                self.v6.iter().any(|(p, set)| set.contains(&mask6(a, *p)))
            }
        }
    }
}

/// A byte trie; `fold` lower-cases the walked bytes.
#[derive(Debug, Clone, Default)]
pub struct Trie {
    nodes: Vec<Node>,
}

#[derive(Debug, Clone, Default)]
struct Node {
    /// Sorted by byte.
    children: Vec<(u8, u32)>,
    terminal: bool,
}

impl Trie {
    pub fn new() -> Trie {
        Trie {
            nodes: vec![Node::default()],
        }
    }

    pub fn insert(&mut self, key: impl Iterator<Item = u8>) {
        let mut at = 0usize;
        for b in key {
            let n = &self.nodes[at];
            at = match n.children.binary_search_by_key(&b, |c| c.0) {
                Ok(i) => n.children[i].1 as usize,
                Err(i) => {
                    let id = self.nodes.len();
                    self.nodes.push(Node::default());
                    self.nodes[at].children.insert(i, (b, id as u32));
                    id
                }
            };
        }
        self.nodes[at].terminal = true;
    }

    /// Whether some inserted key is a prefix of `walk`.
    pub fn prefix_of(&self, walk: impl Iterator<Item = u8>) -> bool {
        let mut at = 0usize;
        if self.nodes[0].terminal {
            return true;
        }
        for b in walk {
            let n = &self.nodes[at];
            match n.children.binary_search_by_key(&b, |c| c.0) {
                Ok(i) => at = n.children[i].1 as usize,
                Err(_) => return false,
            }
            if self.nodes[at].terminal {
                return true;
            }
        }
        false
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.len() <= 1 && !self.nodes[0].terminal
    }
}

/// Exact strings; with `-i` stored lower-cased and looked up through a stack
/// buffer.
#[derive(Debug, Clone, Default)]
pub struct StrSet {
    set: HashSet<Box<[u8]>>,
    max_len: usize,
}

const FOLD_BUF: usize = 512;

impl StrSet {
    pub fn insert(&mut self, p: &[u8], fold: bool) {
        self.max_len = self.max_len.max(p.len());
        let p: Box<[u8]> = if fold {
            p.to_ascii_lowercase().into()
        } else {
            p.into()
        };
        self.set.insert(p);
    }

    pub fn contains(&self, s: &[u8], fold: bool) -> bool {
        if s.len() > self.max_len {
            return false;
        }
        if !fold {
            return self.set.contains(s);
        }
        if s.len() <= FOLD_BUF {
            let mut buf = [0u8; FOLD_BUF];
            for (d, c) in buf.iter_mut().zip(s) {
                *d = c.to_ascii_lowercase();
            }
            return self.set.contains(&buf[..s.len()]);
        }
        self.set.iter().any(|p| p.eq_ignore_ascii_case(s))
    }
}

/// The patterns of one ACL line, ready to match.
#[derive(Debug, Clone)]
pub enum Patterns {
    /// `-m found`: any sample.
    Found,
    /// `-m bool`: a true boolean or a non-zero integer.
    Bool,
    Str(StrSet),
    Beg(Trie),
    /// Suffixes, stored reversed.
    End(Trie),
    Sub(Vec<Box<[u8]>>),
    Reg(Vec<regex::bytes::Regex>),
    Dir(Vec<Box<[u8]>>),
    Dom(Vec<Box<[u8]>>),
    Len(Vec<IntRange>),
    Int(Vec<IntRange>),
    Ip(IpSet),
}

/// A sample as fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sample<'a> {
    Str(&'a [u8]),
    Int(i64),
    Ip(IpAddr),
    Bool(bool),
}

impl Sample<'_> {
    /// HAProxy's str→int cast: optional sign and leading digits.
    pub fn as_int(&self) -> Option<i64> {
        match *self {
            Sample::Int(i) => Some(i),
            Sample::Bool(b) => Some(b as i64),
            Sample::Str(s) => parse_int_prefix(s),
            Sample::Ip(_) => None,
        }
    }
}

pub fn parse_int_prefix(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let n = digits.iter().take_while(|b| b.is_ascii_digit()).count();
    if n == 0 {
        return None;
    }
    let mut v: i64 = 0;
    for &d in &digits[..n] {
        v = v.saturating_mul(10).saturating_add((d - b'0') as i64);
    }
    Some(if neg { -v } else { v })
}

fn has_sub(hay: &[u8], needle: &[u8], fold: bool) -> bool {
    if needle.is_empty() {
        return true;
    }
    if needle.len() > hay.len() {
        return false;
    }
    hay.windows(needle.len()).any(|w| {
        if fold {
            w.eq_ignore_ascii_case(needle)
        } else {
            w == needle
        }
    })
}

/// HAProxy's `match_word`: `pattern` (without its own leading and trailing
/// delimiters) found in `hay` bounded by one of `delims` or the ends. `dir`
/// uses `/?`, `dom` uses `/?.:` (so `hdr_dom(host)` sees `com` in
/// `example.com:8080`).
fn match_word(hay: &[u8], pattern: &[u8], delims: &[u8], fold: bool) -> bool {
    let is_delim = |b: &u8| delims.contains(b);
    let mut p = pattern;
    while p.first().is_some_and(is_delim) {
        p = &p[1..];
    }
    while p.last().is_some_and(is_delim) {
        p = &p[..p.len() - 1];
    }
    if p.is_empty() {
        return false;
    }
    if p.len() > hay.len() {
        return false;
    }
    for i in 0..=hay.len() - p.len() {
        let w = &hay[i..i + p.len()];
        let eq = if fold {
            w.eq_ignore_ascii_case(p)
        } else {
            w == p
        };
        if eq
            && (i == 0 || is_delim(&hay[i - 1]))
            && (i + p.len() == hay.len() || is_delim(&hay[i + p.len()]))
        {
            return true;
        }
    }
    false
}

fn fold_iter(s: &[u8], fold: bool) -> impl Iterator<Item = u8> + '_ {
    s.iter()
        .map(move |&b| if fold { b.to_ascii_lowercase() } else { b })
}

fn fold_rev(s: &[u8], fold: bool) -> impl Iterator<Item = u8> + '_ {
    s.iter()
        .rev()
        .map(move |&b| if fold { b.to_ascii_lowercase() } else { b })
}

impl Patterns {
    pub fn empty(m: Method) -> Patterns {
        match m {
            Method::Found => Patterns::Found,
            Method::Bool => Patterns::Bool,
            Method::Str => Patterns::Str(StrSet::default()),
            Method::Beg => Patterns::Beg(Trie::new()),
            Method::End => Patterns::End(Trie::new()),
            Method::Sub => Patterns::Sub(Vec::new()),
            Method::Reg => Patterns::Reg(Vec::new()),
            Method::Dir => Patterns::Dir(Vec::new()),
            Method::Dom => Patterns::Dom(Vec::new()),
            Method::Len => Patterns::Len(Vec::new()),
            Method::Int => Patterns::Int(Vec::new()),
            Method::Ip => Patterns::Ip(IpSet::default()),
        }
    }

    /// Adds one pattern word; `Err` is the message for a bad one.
    pub fn add(&mut self, p: &str, fold: bool, op: Option<&str>) -> Result<(), String> {
        let b = p.as_bytes();
        match self {
            Patterns::Found | Patterns::Bool => {
                return Err(format!(
                    "pattern \"{p}\" given to a match that takes none (-m found, -m bool)"
                ))
            }
            Patterns::Str(s) => s.insert(b, fold),
            Patterns::Beg(t) => t.insert(fold_iter(b, fold)),
            Patterns::End(t) => t.insert(fold_rev(b, fold)),
            Patterns::Sub(v) | Patterns::Dir(v) | Patterns::Dom(v) => v.push(b.into()),
            Patterns::Reg(v) => {
                let src = if fold {
                    format!("(?i){p}")
                } else {
                    p.to_string()
                };
                let re = regex::bytes::Regex::new(&src)
                    .map_err(|e| format!("invalid regex \"{p}\": {e}"))?;
                v.push(re);
            }
            Patterns::Len(v) | Patterns::Int(v) => v.push(int_range(p, op)?),
            Patterns::Ip(v) => v.insert(network(p)?),
        }
        Ok(())
    }

    /// Whether the methods takes no pattern.
    pub fn takes_none(&self) -> bool {
        matches!(self, Patterns::Found | Patterns::Bool)
    }

    pub fn matches(&self, s: Sample, fold: bool) -> bool {
        match (self, s) {
            (Patterns::Found, _) => true,
            (Patterns::Bool, s) => match s {
                Sample::Bool(b) => b,
                Sample::Int(i) => i != 0,
                Sample::Str(_) | Sample::Ip(_) => s.as_int().is_some_and(|i| i != 0),
            },
            (Patterns::Int(v), s) => s.as_int().is_some_and(|i| v.iter().any(|r| r.contains(i))),
            (Patterns::Len(v), Sample::Str(s)) => v.iter().any(|r| r.contains(s.len() as i64)),
            (Patterns::Ip(v), Sample::Ip(ip)) => v.contains(ip),
            (Patterns::Ip(v), Sample::Str(s)) => std::str::from_utf8(s)
                .ok()
                .and_then(|s| s.trim().parse::<IpAddr>().ok())
                .is_some_and(|ip| v.contains(ip)),
            (_, Sample::Str(s)) => self.matches_str(s, fold),
            (_, Sample::Int(i)) => {
                // An integer matched as a string: its decimal text.
                let mut buf = [0u8; 24];
                let t = int_text(i, &mut buf);
                self.matches_str(t, fold)
            }
            _ => false,
        }
    }

    fn matches_str(&self, s: &[u8], fold: bool) -> bool {
        match self {
            Patterns::Str(set) => set.contains(s, fold),
            Patterns::Beg(t) => t.prefix_of(fold_iter(s, fold)),
            Patterns::End(t) => t.prefix_of(fold_rev(s, fold)),
            Patterns::Sub(v) => v.iter().any(|p| has_sub(s, p, fold)),
            Patterns::Reg(v) => v.iter().any(|r| r.is_match(s)),
            Patterns::Dir(v) => v.iter().any(|p| match_word(s, p, b"/?", fold)),
            Patterns::Dom(v) => v.iter().any(|p| match_word(s, p, b"/?.:", fold)),
            Patterns::Len(v) => v.iter().any(|r| r.contains(s.len() as i64)),
            _ => false,
        }
    }
}

/// Decimal text of `i` in `buf`.
pub fn int_text(i: i64, buf: &mut [u8; 24]) -> &[u8] {
    let mut n = i.unsigned_abs();
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if i < 0 {
        at -= 1;
        buf[at] = b'-';
    }
    &buf[at..]
}

fn int(p: &str) -> Result<i64, String> {
    p.parse::<i64>()
        .map_err(|_| format!("\"{p}\" is not an integer"))
}

/// `N`, `N:M`, `N:`, `:M`, or `N` after an operator.
pub fn int_range(p: &str, op: Option<&str>) -> Result<IntRange, String> {
    if let Some(op) = op {
        let v = int(p)?;
        return Ok(match op {
            "eq" => IntRange { min: v, max: v },
            "ge" => IntRange {
                min: v,
                max: i64::MAX,
            },
            "gt" => IntRange {
                min: v.saturating_add(1),
                max: i64::MAX,
            },
            "le" => IntRange {
                min: i64::MIN,
                max: v,
            },
            "lt" => IntRange {
                min: i64::MIN,
                max: v.saturating_sub(1),
            },
            other => return Err(format!("unknown operator \"{other}\"")),
        });
    }
    match p.split_once(':') {
        None => int(p).map(|v| IntRange { min: v, max: v }),
        Some((a, b)) => Ok(IntRange {
            min: if a.is_empty() { i64::MIN } else { int(a)? },
            max: if b.is_empty() { i64::MAX } else { int(b)? },
        }),
    }
}

/// `ADDR`, `ADDR/PREFIX` or `ADDR/MASK` (IPv4 dotted mask).
pub fn network(p: &str) -> Result<Network, String> {
    let bad = || format!("\"{p}\" is not an IP address or network");
    let (a, pre) = match p.split_once('/') {
        Some((a, m)) => (a, Some(m)),
        None => (p, None),
    };
    let addr: IpAddr = a.parse().map_err(|_| bad())?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match pre {
        None => max,
        Some(m) => match m.parse::<u8>() {
            Ok(n) if n <= max => n,
            Ok(_) => return Err(bad()),
            Err(_) => {
                let mask: std::net::Ipv4Addr = m.parse().map_err(|_| bad())?;
                let bits = u32::from(mask);
                if !addr.is_ipv4() || bits.leading_ones() + bits.trailing_zeros() != 32 {
                    return Err(bad());
                }
                bits.leading_ones() as u8
            }
        },
    };
    Ok(Network { addr, prefix })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trie_prefix_and_suffix() {
        let mut t = Trie::new();
        t.insert(fold_iter(b"/api/", false));
        t.insert(fold_iter(b"/static", false));
        assert!(t.prefix_of(fold_iter(b"/api/x", false)));
        assert!(t.prefix_of(fold_iter(b"/static", false)));
        assert!(!t.prefix_of(fold_iter(b"/ap", false)));
        assert!(!t.prefix_of(fold_iter(b"/", false)));
    }

    #[test]
    fn words() {
        assert!(match_word(b"/a/img/b.png", b"img", b"/?", false));
        assert!(match_word(b"/a/img/b.png", b"/img/", b"/?", false));
        assert!(!match_word(b"/a/images/b", b"img", b"/?", false));
        assert!(match_word(b"/a/img?x", b"img", b"/?", false));
        assert!(match_word(b"www.example.com", b"example", b"/?.:", false));
        assert!(match_word(
            b"www.EXAMPLE.com",
            b"example.com",
            b"/?.:",
            true
        ));
        assert!(match_word(b"www.example.com:8080", b"com", b"/?.:", false));
        assert!(!match_word(b"www.example.com", b"exam", b"/?.:", false));
    }

    #[test]
    fn ranges_and_networks() {
        assert_eq!(int_range("3:5", None).unwrap(), IntRange { min: 3, max: 5 });
        assert!(int_range("gt", Some("zz")).is_err());
        assert!(int_range("10", Some("lt")).unwrap().contains(9));
        assert!(!int_range("10", Some("lt")).unwrap().contains(10));
        assert!(network("10.0.0.0/255.0.0.0")
            .unwrap()
            .contains("10.2.3.4".parse().unwrap()));
        assert!(network("10.0.0.0/33").is_err());
        assert!(network("::1").unwrap().contains("::1".parse().unwrap()));
        let mut buf = [0; 24];
        assert_eq!(int_text(-120, &mut buf), b"-120");
    }
}

#[cfg(test)]
mod ipset_tests {
    use super::*;

    #[test]
    fn ten_thousand_networks() {
        let mut set = IpSet::default();
        for i in 0..10_000u32 {
            let a = std::net::Ipv4Addr::from(0x0a00_0000 | (i << 8));
            set.insert(Network {
                addr: IpAddr::V4(a),
                prefix: 24,
            });
        }
        set.insert(network("2001:db8::/32").unwrap());
        set.insert(network("192.168.1.7").unwrap());
        assert!(set.contains("10.0.39.15".parse().unwrap()));
        assert!(!set.contains("10.200.0.1".parse().unwrap()));
        assert!(set.contains("192.168.1.7".parse().unwrap()));
        assert!(set.contains("::ffff:192.168.1.7".parse().unwrap()));
        assert!(!set.contains("192.168.1.8".parse().unwrap()));
        assert!(set.contains("2001:db8:1::1".parse().unwrap()));
        assert!(!set.contains("2001:db9::1".parse().unwrap()));
        let start = std::time::Instant::now();
        for i in 0..100_000u32 {
            set.contains(IpAddr::V4(std::net::Ipv4Addr::from(0x0b00_0000 | i)));
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
    }
}
