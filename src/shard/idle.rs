//! Idle server connections of one shard, per backend and server: what an HTTP
//! exchange leaves behind when both sides agreed to keep the connection, and
//! what the next request to that server takes before connecting anew (HAProxy's
//! per-thread idle connection lists, `http-reuse safe`).
//!
//! An idle connection holds no server slot: server `maxconn` counts requests in
//! flight, as in HAProxy. Before a connection is handed out it is probed with a
//! non-blocking read: a server that closed it (EOF), reset it, or sent bytes
//! nobody asked for makes it useless, and it is dropped rather than reused.
//! Never blocks; shard-local.

use std::cell::RefCell;
use std::io;

use crate::sys::socket::Socket;

/// How often a shard drops the idle connections servers have closed
/// (HAProxy's `pool-purge-delay` default).
pub const PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Idle connections kept per server on one shard (HAProxy's `pool-max-conn`
/// is unlimited by default; a bound keeps a burst from pinning fds forever).
pub const MAX_IDLE_PER_SERVER: usize = 64;

/// The idle connections of one shard.
pub struct IdlePool {
    /// `[backend][server]`, most recently used last.
    conns: RefCell<Vec<Vec<Vec<Socket>>>>,
}

impl IdlePool {
    /// An empty pool shaped after the servers of each backend.
    pub fn new(servers_per_backend: impl Iterator<Item = usize>) -> IdlePool {
        IdlePool {
            conns: RefCell::new(
                servers_per_backend
                    .map(|n| (0..n).map(|_| Vec::new()).collect())
                    .collect(),
            ),
        }
    }

    /// The most recently parked connection to this server that is still open.
    pub fn take(&self, backend: usize, server: usize) -> Option<Socket> {
        let mut conns = self.conns.borrow_mut();
        let list = conns.get_mut(backend)?.get_mut(server)?;
        while let Some(sock) = list.pop() {
            if still_open(&sock) {
                return Some(sock);
            }
        }
        None
    }

    /// Parks a connection whose last exchange ended cleanly; beyond the bound,
    /// the oldest one is closed.
    pub fn put(&self, backend: usize, server: usize, sock: Socket) {
        let mut conns = self.conns.borrow_mut();
        let Some(list) = conns.get_mut(backend).and_then(|b| b.get_mut(server)) else {
            return;
        };
        if list.len() >= MAX_IDLE_PER_SERVER {
            list.remove(0);
        }
        list.push(sock);
    }

    /// Drops every idle connection the server has closed (or written to);
    /// returns how many went.
    pub fn purge(&self) -> usize {
        let mut dropped = 0;
        for list in self.conns.borrow_mut().iter_mut().flatten() {
            let before = list.len();
            list.retain(still_open);
            dropped += before - list.len();
        }
        dropped
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

    fn pair(l: &TcpListener) -> (Socket, std::net::TcpStream) {
        let (s, _) = Socket::connect(&l.local_addr().unwrap()).unwrap();
        let (peer, _) = l.accept().unwrap();
        // The connect completed once accept returned.
        (s, peer)
    }

    #[test]
    fn closed_or_chatty_connections_are_not_reused() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let pool = IdlePool::new([2].into_iter());
        let (a, peer_a) = pair(&l);
        let (b, mut peer_b) = pair(&l);
        let (c, _peer_c) = pair(&l);
        pool.put(0, 0, c);
        pool.put(0, 0, b);
        pool.put(0, 0, a);
        assert_eq!(pool.len(0, 0), 3);
        drop(peer_a);
        peer_b.write_all(b"HTTP/1.1 408 x\r\n\r\n").unwrap();
        // On loopback the FIN and the bytes are queued on the receiving socket
        // before write/close return (the softirq runs as the sender's bh ends).
        assert_eq!(pool.purge(), 2, "a closed, b spoke unasked");
        assert_eq!(pool.len(0, 0), 1);
        assert!(pool.take(0, 0).is_some(), "c is still open");
        assert_eq!(pool.len(0, 0), 0);
        assert!(pool.take(0, 0).is_none());
        assert!(pool.take(0, 1).is_none());
        assert!(pool.take(5, 0).is_none());
    }
}
