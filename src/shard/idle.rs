//! Idle server connections of one shard, per backend and server: what an HTTP
//! exchange leaves behind when both sides agreed to keep the connection, and
//! what the next request to that server takes before connecting anew (HAProxy's
//! per-thread idle connection lists, `http-reuse safe`).
//!
//! An idle connection holds no server slot: server `maxconn` counts requests in
//! flight, as in HAProxy. Before a connection is handed out it is probed with a
//! non-blocking read: a server that closed it (EOF), reset it, or sent bytes
//! nobody asked for makes it useless, and it is dropped rather than reused.
//! `pool-max-conn` bounds what is kept (shared out across shards) and every
//! `pool-purge-delay` half of a server's idle connections are closed, as
//! HAProxy does. Never blocks; shard-local.

use std::cell::RefCell;
use std::io;
use std::time::{Duration, Instant};

use super::server_conn::ServerConn;
use crate::config::model::{Config, PoolMax};
use crate::sys::socket::Socket;

/// Idle connections a shard keeps per server when `pool-max-conn` is not set.
/// Unbounded, a client that closes after each request (each one's first
/// request gets a server connection of its own under `http-reuse safe`) would
/// park a connection per client until the server ran out of room; HAProxy
/// bounds idle connections by a share of its fd limit instead.
pub const DEFAULT_MAX_IDLE: usize = 64;

/// How long a shard's purge task sleeps at most between looks at its pools.
pub const PURGE_TICK_MAX: Duration = Duration::from_secs(5);

/// Per server: `pool-max-conn` shared out across shards, and the purge
/// period with when it last ran.
struct Limits {
    max: usize,
    purge_every: Duration,
    last_purge: Instant,
}

/// An idle connection and its tag.
type Tagged = (u64, ServerConn);

/// The idle connections of one shard.
pub struct IdlePool {
    /// `[backend][server]`, most recently used last, each with its tag: what
    /// the connection was made for besides its server (a hash of the SNI of
    /// `sni EXPR`; 0 for none), so a request only reuses one made alike.
    conns: RefCell<Vec<Vec<Vec<Tagged>>>>,
    limits: RefCell<Vec<Vec<Limits>>>,
}

impl IdlePool {
    /// An empty pool shaped after the servers of each backend: a server's
    /// `pool-max-conn` is divided among `shards` (rounded up); not set,
    /// [`DEFAULT_MAX_IDLE`] per shard; `-1`, no bound.
    pub fn new(config: &Config, shards: usize) -> IdlePool {
        let now = Instant::now();
        IdlePool {
            conns: RefCell::new(
                config
                    .backends
                    .iter()
                    .map(|b| b.servers.iter().map(|_| Vec::new()).collect())
                    .collect(),
            ),
            limits: RefCell::new(
                config
                    .backends
                    .iter()
                    .map(|b| {
                        b.servers
                            .iter()
                            .map(|s| Limits {
                                max: match s.pool_max_conn {
                                    None => DEFAULT_MAX_IDLE,
                                    Some(PoolMax::Unlimited) => usize::MAX,
                                    Some(PoolMax::Max(m)) => (m as usize).div_ceil(shards.max(1)),
                                },
                                purge_every: s.pool_purge_delay,
                                last_purge: now,
                            })
                            .collect()
                    })
                    .collect(),
            ),
        }
    }

    /// The most recently parked connection to this server, made with `tag`,
    /// that is still open (closed ones met on the way are dropped).
    pub fn take(&self, backend: usize, server: usize, tag: u64) -> Option<ServerConn> {
        let mut conns = self.conns.borrow_mut();
        let list = conns.get_mut(backend)?.get_mut(server)?;
        while let Some(i) = list.iter().rposition(|(t, _)| *t == tag) {
            let (_, conn) = list.remove(i);
            if conn.still_open() {
                return Some(conn);
            }
        }
        None
    }

    /// Parks a connection whose last exchange ended cleanly; beyond the
    /// server's share of `pool-max-conn`, the oldest one is closed (with
    /// `pool-max-conn 0` nothing is kept).
    pub fn put(&self, backend: usize, server: usize, tag: u64, conn: impl Into<ServerConn>) {
        let conn = conn.into();
        let max = self
            .limits
            .borrow()
            .get(backend)
            .and_then(|b| b.get(server))
            .map_or(0, |l| l.max);
        let mut conns = self.conns.borrow_mut();
        let Some(list) = conns.get_mut(backend).and_then(|b| b.get_mut(server)) else {
            return;
        };
        if max == 0 {
            return;
        }
        if list.len() >= max {
            list.remove(0);
        }
        list.push((tag, conn));
    }

    /// Drops every idle connection the servers have closed (or written to),
    /// and for each server whose `pool-purge-delay` has passed, closes half
    /// of the rest (rounded up, the oldest first: a pool nobody uses empties
    /// in a few periods, one in use keeps what it needs). Returns how many
    /// went, and how long until the next server is due.
    pub fn purge(&self, now: Instant) -> (usize, Duration) {
        let mut dropped = 0;
        let mut next = PURGE_TICK_MAX;
        let mut limits = self.limits.borrow_mut();
        let mut conns = self.conns.borrow_mut();
        for (lb, cb) in limits.iter_mut().zip(conns.iter_mut()) {
            for (l, list) in lb.iter_mut().zip(cb.iter_mut()) {
                let before = list.len();
                list.retain(|(_, c)| c.still_open());
                if !l.purge_every.is_zero() {
                    let due = l.last_purge + l.purge_every;
                    if now >= due {
                        let half = list.len().div_ceil(2);
                        list.drain(..half);
                        l.last_purge = now;
                        next = next.min(l.purge_every);
                    } else {
                        next = next.min(due - now);
                    }
                }
                dropped += before - list.len();
            }
        }
        (dropped, next)
    }

    /// Idle connections held for this server.
    pub fn len(&self, backend: usize, server: usize) -> usize {
        self.conns
            .borrow()
            .get(backend)
            .and_then(|b| b.get(server))
            .map_or(0, Vec::len)
    }

    /// Closes every idle connection to a server (it went down, or the shard
    /// stops).
    pub fn clear_server(&self, backend: usize, server: usize) {
        if let Some(list) = self
            .conns
            .borrow_mut()
            .get_mut(backend)
            .and_then(|b| b.get_mut(server))
        {
            list.clear();
        }
    }
}

/// An idle connection is usable only if reading it would block: EOF, an error
/// or unsolicited bytes all mean the server is done with it.
pub fn still_open(sock: &Socket) -> bool {
    let mut probe = [0u8; 1];
    matches!(sock.recv(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpListener;
    use std::os::fd::AsRawFd;

    fn pair(l: &TcpListener) -> (Socket, std::net::TcpStream) {
        let (s, _) = Socket::connect(&l.local_addr().unwrap()).unwrap();
        let (peer, _) = l.accept().unwrap();
        // The connect completed once accept returned.
        (s, peer)
    }

    /// One backend of two servers; `extra` goes on the first server.
    fn config(extra: &str) -> Config {
        let text = format!(
            "[[backend]]\nname = \"b\"\nmode = \"http\"\nservers = [\
             {{ name = \"s1\", address = \"127.0.0.1:1\"{extra} }}, \
             {{ name = \"s2\", address = \"127.0.0.1:2\" }}]\n"
        );
        crate::config::parse_str(&text, std::path::Path::new("t.toml")).unwrap()
    }

    #[test]
    fn closed_or_chatty_connections_are_not_reused() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let pool = IdlePool::new(&config(", pool-purge-delay = \"0s\""), 1);
        let (a, peer_a) = pair(&l);
        let (b, mut peer_b) = pair(&l);
        let (c, _peer_c) = pair(&l);
        pool.put(0, 0, 0, c);
        pool.put(0, 0, 0, b);
        pool.put(0, 0, 0, a);
        assert_eq!(pool.len(0, 0), 3);
        drop(peer_a);
        peer_b.write_all(b"HTTP/1.1 408 x\r\n\r\n").unwrap();
        // On loopback the FIN and the bytes are queued on the receiving socket
        // before write/close return (the softirq runs as the sender's bh ends).
        assert_eq!(pool.purge(Instant::now()).0, 2, "a closed, b spoke unasked");
        assert_eq!(pool.len(0, 0), 1);
        assert!(pool.take(0, 0, 0).is_some(), "c is still open");
        assert_eq!(pool.len(0, 0), 0);
        assert!(pool.take(0, 0, 0).is_none());
        assert!(pool.take(0, 1, 0).is_none());
        assert!(pool.take(5, 0, 0).is_none());
    }

    /// A connection made for one SNI is never handed to a request for
    /// another; the most recent one of the right tag is.
    #[test]
    fn connections_are_taken_by_their_tag() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let pool = IdlePool::new(&config(""), 1);
        let (a, _pa) = pair(&l);
        let (b, _pb) = pair(&l);
        let (c, _pc) = pair(&l);
        let (fa, fc) = (a.as_raw_fd(), c.as_raw_fd());
        pool.put(0, 0, 7, a);
        pool.put(0, 0, 9, b);
        pool.put(0, 0, 7, c);
        assert_eq!(pool.take(0, 0, 7).map(|s| s.socket().as_raw_fd()), Some(fc));
        assert_eq!(pool.take(0, 0, 7).map(|s| s.socket().as_raw_fd()), Some(fa));
        assert!(pool.take(0, 0, 7).is_none());
        assert!(pool.take(0, 0, 0).is_none());
        assert!(pool.take(0, 0, 9).is_some());
    }

    #[test]
    fn pool_max_conn_is_shared_out_across_shards() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        // 5 across 2 shards: 3 here (rounded up); the oldest goes first.
        let pool = IdlePool::new(&config(", pool-max-conn = 5"), 2);
        let mut peers = Vec::new();
        for _ in 0..4 {
            let (s, p) = pair(&l);
            peers.push(p);
            pool.put(0, 0, 0, s);
        }
        assert_eq!(pool.len(0, 0), 3);
        // Not set: DEFAULT_MAX_IDLE per shard (the oldest goes first).
        for _ in 0..DEFAULT_MAX_IDLE + 3 {
            let (s, p) = pair(&l);
            peers.push(p);
            pool.put(0, 1, 0, s);
        }
        assert_eq!(pool.len(0, 1), DEFAULT_MAX_IDLE);
        // -1: no bound.
        let unbounded = IdlePool::new(&config(", pool-max-conn = -1"), 2);
        for _ in 0..DEFAULT_MAX_IDLE + 3 {
            let (s, p) = pair(&l);
            peers.push(p);
            unbounded.put(0, 0, 0, s);
        }
        assert_eq!(unbounded.len(0, 0), DEFAULT_MAX_IDLE + 3);
        let none = IdlePool::new(&config(", pool-max-conn = 0"), 1);
        let (s, _p) = pair(&l);
        none.put(0, 0, 0, s);
        assert_eq!(none.len(0, 0), 0, "pool-max-conn 0 keeps nothing");
    }

    #[test]
    fn each_purge_delay_closes_half_of_the_idle_connections() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let pool = IdlePool::new(&config(", pool-purge-delay = \"1s\""), 1);
        let t0 = Instant::now();
        let mut peers = Vec::new();
        for _ in 0..5 {
            let (s, p) = pair(&l);
            peers.push(p);
            pool.put(0, 0, 0, s);
        }
        // Not due yet: nothing closed; the next look is when it is due.
        let (gone, next) = pool.purge(t0);
        assert_eq!(gone, 0);
        assert!(next <= Duration::from_secs(1), "{next:?}");
        // Due: 5 -> 2 -> 1 -> 0, one period each.
        let mut t = t0;
        for want in [2, 1, 0] {
            t += Duration::from_millis(1001);
            pool.purge(t);
            assert_eq!(pool.len(0, 0), want);
        }
    }
}
