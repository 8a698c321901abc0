//! Balancing algorithms over one backend's servers as a shard sees them. Pure
//! logic: no I/O, no atomics; the caller passes each server's current state.
//!
//! Every algorithm is deterministic given the same inputs, so hash-based choices
//! (`source`) agree across shards without talking to each other.

use std::net::IpAddr;

use crate::config::model::{Balance, HashType};

/// What the balancer needs to know about one server right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// Index of the server in its backend.
    pub index: usize,
    /// Effective weight (> 0; servers with weight 0 are never candidates).
    pub weight: u32,
    /// Sessions currently on the server, across all shards.
    pub active: u32,
    /// The server is at its `maxconn`.
    pub full: bool,
}

/// Per-shard, per-backend balancing state.
#[derive(Debug, Clone)]
pub struct Balancer {
    algo: Balance,
    hash_type: HashType,
    /// Smooth weighted round robin's current weights, by server index.
    current: Vec<i64>,
    /// Rotation point for tie-breaking in leastconn.
    next_tie: usize,
    rng: u64,
}

/// The outcome of a pick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// Use this server (it has a free slot, or no maxconn).
    Server(usize),
    /// The hash chose this server but it is full: queue for it.
    QueueFor(usize),
    /// Every candidate is full: queue on the backend.
    QueueAny,
    /// No usable server.
    NoServer,
}

impl Balancer {
    pub fn new(algo: Balance, hash_type: HashType, servers: usize, seed: u64) -> Balancer {
        Balancer {
            algo,
            hash_type,
            current: vec![0; servers],
            next_tie: 0,
            rng: seed | 1,
        }
    }

    /// Chooses among `cands` (usable servers in index order). `key` is the hashed
    /// input for hash-based algorithms (the client address for `source`; a URI,
    /// URL parameter or header value at L7); the others ignore it. A hash-based
    /// backend given [`HashKey::None`] (no such parameter or header) falls back
    /// to round robin, as HAProxy does.
    pub fn pick(&mut self, cands: &[Candidate], key: HashKey<'_>) -> Pick {
        if cands.is_empty() {
            return Pick::NoServer;
        }
        match (self.algo, key.hash()) {
            (Balance::Source | Balance::Uri | Balance::UrlParam | Balance::Hdr, Some(h)) => {
                let c = self.hashed(cands, h);
                if c.full {
                    Pick::QueueFor(c.index)
                } else {
                    Pick::Server(c.index)
                }
            }
            _ => {
                if cands.iter().all(|c| c.full) {
                    return Pick::QueueAny;
                }
                Pick::Server(self.pick_open(cands))
            }
        }
    }

    /// Chooses among the candidates that have a free slot (at least one has).
    fn pick_open(&mut self, cands: &[Candidate]) -> usize {
        let open = || cands.iter().filter(|c| !c.full);
        match self.algo {
            Balance::RoundRobin | Balance::StaticRr => self.smooth_rr(open()),
            Balance::LeastConn => {
                let n = open().count();
                let start = self.next_tie % n;
                self.next_tie = self.next_tie.wrapping_add(1);
                least_conn(open().skip(start).chain(open().take(start)))
            }
            Balance::First => open().next().expect("one is open").index,
            Balance::Random => {
                let total: u64 = open().map(|c| c.weight as u64).sum();
                let mut r = self.next_random() % total;
                let mut last = 0;
                for c in open() {
                    if r < c.weight as u64 {
                        return c.index;
                    }
                    r -= c.weight as u64;
                    last = c.index;
                }
                last
            }
            // A hash-based backend without a key: round robin.
            Balance::Source | Balance::Uri | Balance::UrlParam | Balance::Hdr => {
                self.smooth_rr(open())
            }
        }
    }

    /// nginx's smooth weighted round robin: every pick adds each weight to its
    /// server's current value, takes the largest and subtracts the total from it.
    /// Over any window of `sum(weights)` picks each server gets exactly its share,
    /// interleaved rather than in bursts.
    fn smooth_rr<'a>(&mut self, open: impl Iterator<Item = &'a Candidate>) -> usize {
        let mut total = 0i64;
        let mut best: Option<usize> = None;
        for c in open {
            if c.index >= self.current.len() {
                self.current.resize(c.index + 1, 0);
            }
            self.current[c.index] += c.weight as i64;
            total += c.weight as i64;
            if best.is_none_or(|b| self.current[c.index] > self.current[b]) {
                best = Some(c.index);
            }
        }
        let b = best.expect("open is not empty");
        self.current[b] -= total;
        b
    }

    fn hashed<'a>(&self, cands: &'a [Candidate], h: u64) -> &'a Candidate {
        match self.hash_type {
            HashType::MapBased => {
                let total: u64 = cands.iter().map(|c| c.weight as u64).sum();
                let mut r = h % total;
                for c in cands {
                    if r < c.weight as u64 {
                        return c;
                    }
                    r -= c.weight as u64;
                }
                &cands[cands.len() - 1]
            }
            // Weighted rendezvous hashing: a server going down moves only its own
            // clients, which is what `consistent` promises.
            HashType::Consistent => cands
                .iter()
                .max_by(|a, b| {
                    let sa = rendezvous_score(h, a);
                    let sb = rendezvous_score(h, b);
                    sa.partial_cmp(&sb).unwrap_or(std::cmp::Ordering::Equal)
                })
                .expect("cands is not empty"),
        }
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64*: fast and good enough to spread load.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// Fewest active sessions per unit of weight; the first of equals wins, and the
/// caller rotates the starting point so ties take turns.
fn least_conn<'a>(mut open: impl Iterator<Item = &'a Candidate>) -> usize {
    let mut best = open.next().expect("one is open");
    for c in open {
        // c.active / c.weight < best.active / best.weight, without division.
        if (c.active as u64) * (best.weight as u64) < (best.active as u64) * (c.weight as u64) {
            best = c;
        }
    }
    best.index
}

fn rendezvous_score(h: u64, c: &Candidate) -> f64 {
    let x = mix64(h ^ (c.index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    // Uniform in (0, 1]; score = -w / ln(u) is the weighted HRW form.
    let u = ((x >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
    -(c.weight as f64) / u.ln()
}

fn mix64(mut x: u64) -> u64 {
    // splitmix64's finaliser.
    x ^= x >> 30;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// What a hash-based algorithm hashes: the client address at L4 (and for
/// `source`), a URI, URL parameter or header value at L7. Borrowed, so choosing
/// a server allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashKey<'a> {
    /// Nothing to hash (no address known, parameter or header absent).
    None,
    Addr(IpAddr),
    Bytes(&'a [u8]),
}

impl HashKey<'_> {
    /// The same value on every shard and every run for the same key.
    pub fn hash(&self) -> Option<u64> {
        match self {
            HashKey::None => None,
            HashKey::Addr(ip) => Some(hash_ip(*ip)),
            HashKey::Bytes(b) => Some(hash_bytes(b)),
        }
    }
}

/// FNV-1a over the bytes, then mixed: stable, cheap, no allocation.
pub fn hash_bytes(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &x in b {
        h ^= x as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix64(h)
}

/// Hash of a client address; the same on every shard and every run.
pub fn hash_ip(ip: IpAddr) -> u64 {
    let v = match ip {
        IpAddr::V4(a) => u32::from(a) as u64,
        IpAddr::V6(a) => {
            let b = u128::from(a);
            (b as u64) ^ ((b >> 64) as u64)
        }
    };
    mix64(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cands(weights: &[u32]) -> Vec<Candidate> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &w)| Candidate {
                index: i,
                weight: w,
                active: 0,
                full: false,
            })
            .collect()
    }

    fn addr(n: u32) -> IpAddr {
        IpAddr::V4(std::net::Ipv4Addr::from(0x7f00_0000 + n))
    }

    fn ip(n: u32) -> HashKey<'static> {
        HashKey::Addr(addr(n))
    }

    #[test]
    fn roundrobin_weights_are_exact_over_a_cycle_and_interleaved() {
        let mut b = Balancer::new(Balance::RoundRobin, HashType::MapBased, 3, 1);
        let c = cands(&[1, 2, 3]);
        let mut counts = [0; 3];
        let mut seq = Vec::new();
        for _ in 0..600 {
            let Pick::Server(i) = b.pick(&c, ip(1)) else {
                panic!()
            };
            counts[i] += 1;
            seq.push(i);
        }
        assert_eq!(counts, [100, 200, 300]);
        assert_eq!(&seq[..6], &[2, 1, 0, 2, 1, 2]);
    }

    #[test]
    fn leastconn_prefers_the_idle_server() {
        let mut b = Balancer::new(Balance::LeastConn, HashType::MapBased, 3, 1);
        let mut c = cands(&[1, 1, 1]);
        c[0].active = 5;
        c[1].active = 0;
        c[2].active = 3;
        for _ in 0..10 {
            assert_eq!(b.pick(&c, ip(1)), Pick::Server(1));
        }
    }

    #[test]
    fn first_fills_in_order_and_skips_full_servers() {
        let mut b = Balancer::new(Balance::First, HashType::MapBased, 3, 1);
        let mut c = cands(&[1, 1, 1]);
        assert_eq!(b.pick(&c, ip(1)), Pick::Server(0));
        c[0].full = true;
        assert_eq!(b.pick(&c, ip(1)), Pick::Server(1));
        c[1].full = true;
        c[2].full = true;
        assert_eq!(b.pick(&c, ip(1)), Pick::QueueAny);
    }

    #[test]
    fn source_is_stable_across_balancers_and_spreads_clients() {
        let c = cands(&[1, 1, 1]);
        let mut seen = [0; 3];
        for n in 0..300 {
            let mut a = Balancer::new(Balance::Source, HashType::MapBased, 3, 7);
            let mut b = Balancer::new(Balance::Source, HashType::MapBased, 3, 99);
            let pa = a.pick(&c, ip(n));
            assert_eq!(pa, b.pick(&c, ip(n)));
            assert_eq!(pa, a.pick(&c, ip(n)));
            let Pick::Server(i) = pa else { panic!() };
            seen[i] += 1;
        }
        assert!(seen.iter().all(|&s| s > 50), "{seen:?}");
    }

    #[test]
    fn consistent_hash_moves_only_the_lost_servers_clients() {
        let all = cands(&[1, 1, 1, 1]);
        let without_2: Vec<Candidate> = all.iter().copied().filter(|c| c.index != 2).collect();
        let b = Balancer::new(Balance::Source, HashType::Consistent, 4, 1);
        for n in 0..500 {
            let h = hash_ip(addr(n));
            let before = b.hashed(&all, h).index;
            let after = b.hashed(&without_2, h).index;
            if before != 2 {
                assert_eq!(before, after);
            }
        }
    }

    #[test]
    fn source_on_a_full_server_queues_for_it() {
        let mut b = Balancer::new(Balance::Source, HashType::MapBased, 1, 1);
        let mut c = cands(&[1]);
        c[0].full = true;
        assert_eq!(b.pick(&c, ip(3)), Pick::QueueFor(0));
    }

    #[test]
    fn random_respects_weights_roughly_and_no_candidates_is_no_server() {
        let mut b = Balancer::new(Balance::Random, HashType::MapBased, 2, 42);
        let c = cands(&[1, 3]);
        let mut counts = [0; 2];
        for _ in 0..4000 {
            let Pick::Server(i) = b.pick(&c, ip(1)) else {
                panic!()
            };
            counts[i] += 1;
        }
        assert!((800..1200).contains(&counts[0]), "{counts:?}");
        assert_eq!(b.pick(&[], ip(1)), Pick::NoServer);
    }

    #[test]
    fn byte_keys_hash_stably_and_spread() {
        let c = cands(&[1, 1, 1]);
        let mut a = Balancer::new(Balance::Uri, HashType::MapBased, 3, 1);
        let mut b = Balancer::new(Balance::Uri, HashType::MapBased, 3, 99);
        let mut seen = [0; 3];
        for n in 0..300 {
            let uri = format!("/item/{n}");
            let key = HashKey::Bytes(uri.as_bytes());
            let pa = a.pick(&c, key);
            assert_eq!(pa, b.pick(&c, key), "same URI, same server on every shard");
            let Pick::Server(i) = pa else { panic!() };
            seen[i] += 1;
        }
        assert!(seen.iter().all(|&n| n > 50), "{seen:?}");
        assert_ne!(hash_bytes(b"/a"), hash_bytes(b"/b"));
    }

    #[test]
    fn a_hash_backend_without_a_key_falls_back_to_round_robin() {
        let mut b = Balancer::new(Balance::UrlParam, HashType::MapBased, 2, 1);
        let c = cands(&[1, 1]);
        let picks: Vec<Pick> = (0..4).map(|_| b.pick(&c, HashKey::None)).collect();
        assert_eq!(
            picks,
            [
                Pick::Server(0),
                Pick::Server(1),
                Pick::Server(0),
                Pick::Server(1)
            ]
        );
    }
}
