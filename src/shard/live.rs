//! The registry of one shard's live sessions, from the moment a session is
//! accepted to its end, whatever it is doing (queued, connecting, forwarding):
//! each entry holds the session's [`KillSwitch`], so a server marked down with
//! `shutdown-sessions`, `hard-stop-after` or an operator (`shutdown session`)
//! can end it, and what `show sess` shows (id, frontend, backend, server,
//! client, age). Registering is a slot write in a reused slab; the client's
//! address is asked of the kernel only when someone looks (`describe`).

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::time::{Instant, SystemTime};

use crate::l4::KillSwitch;
use crate::state::sessions::session_id;
use crate::state::SessionInfo;

/// Where a session comes from, fixed at its start.
#[derive(Debug, Clone, Copy)]
pub struct Origin {
    pub frontend: usize,
    /// The client when already known (a PROXY header, or read for the log);
    /// else the client socket is asked on `describe`.
    pub client: Option<SocketAddr>,
    /// The client socket, open for as long as the session is registered.
    pub fd: RawFd,
    pub started: Instant,
    pub accepted: SystemTime,
}

struct Entry {
    id: u64,
    origin: Origin,
    backend: Cell<Option<usize>>,
    server: Cell<Option<usize>>,
    /// Between two requests of a keep-alive connection: nothing in flight, so
    /// a stopping shard may close it at once.
    idle: Cell<bool>,
    kill: Rc<KillSwitch>,
}

/// Slots reused through a free list: registering allocates only when the shard
/// holds more sessions than ever before.
pub struct LiveSessions {
    shard: usize,
    /// Sessions registered so far: the next id's sequence number.
    seq: Cell<u64>,
    entries: RefCell<Vec<Option<Entry>>>,
    free: RefCell<Vec<usize>>,
}

/// A registered session; unregisters on drop.
pub struct LiveKey<'a> {
    reg: &'a LiveSessions,
    key: usize,
}

impl LiveKey<'_> {
    /// Records the backend an HTTP request was routed to (its session's
    /// backend from then on, for `show sess` and for killing).
    pub fn set_backend(&self, backend: Option<usize>) {
        if let Some(Some(e)) = self.reg.entries.borrow().get(self.key) {
            e.backend.set(backend);
        }
    }

    /// Records the server the session now uses (killed with that server).
    pub fn set_server(&self, server: Option<usize>) {
        if let Some(Some(e)) = self.reg.entries.borrow().get(self.key) {
            e.server.set(server);
        }
    }
}

impl LiveKey<'_> {
    /// Marks the session idle (waiting for its next request) or busy.
    pub fn set_idle(&self, idle: bool) {
        if let Some(Some(e)) = self.reg.entries.borrow().get(self.key) {
            e.idle.set(idle);
        }
    }
}

impl Drop for LiveKey<'_> {
    fn drop(&mut self) {
        self.reg.entries.borrow_mut()[self.key] = None;
        self.reg.free.borrow_mut().push(self.key);
    }
}

impl LiveSessions {
    pub fn new(shard: usize) -> LiveSessions {
        LiveSessions {
            shard,
            seq: Cell::new(0),
            entries: RefCell::new(Vec::new()),
            free: RefCell::new(Vec::new()),
        }
    }

    pub fn register(
        &self,
        origin: Origin,
        backend: Option<usize>,
        kill: Rc<KillSwitch>,
    ) -> LiveKey<'_> {
        let seq = self.seq.get() + 1;
        self.seq.set(seq);
        let entry = Entry {
            id: session_id(self.shard, seq),
            origin,
            backend: Cell::new(backend),
            server: Cell::new(None),
            idle: Cell::new(false),
            kill,
        };
        let mut entries = self.entries.borrow_mut();
        let key = match self.free.borrow_mut().pop() {
            Some(i) => {
                entries[i] = Some(entry);
                i
            }
            None => {
                entries.push(Some(entry));
                entries.len() - 1
            }
        };
        LiveKey { reg: self, key }
    }

    /// Kills every session whose (backend, server) matches; `operator`: on
    /// an operator's command (`shutdown sessions server`), not because the
    /// server went down.
    pub fn kill(&self, operator: bool, matches: impl Fn(usize, Option<usize>) -> bool) {
        let kills: Vec<Rc<KillSwitch>> = self
            .entries
            .borrow()
            .iter()
            .flatten()
            .filter(|e| e.backend.get().is_some_and(|b| matches(b, e.server.get())))
            .map(|e| e.kill.clone())
            .collect();
        // Killing wakes tasks, which may register or drop entries: not while
        // the registry is borrowed.
        for k in kills {
            if operator {
                k.kill_by_operator();
            } else {
                k.kill();
            }
        }
    }

    /// Kills every session, with or without a backend.
    pub fn kill_all(&self) {
        let kills: Vec<Rc<KillSwitch>> = self
            .entries
            .borrow()
            .iter()
            .flatten()
            .map(|e| e.kill.clone())
            .collect();
        for k in kills {
            k.kill();
        }
    }

    /// Kills every idle session (HTTP keep-alive connections between
    /// requests), as a stopping HAProxy closes them.
    pub fn kill_idle(&self) {
        let kills: Vec<Rc<KillSwitch>> = self
            .entries
            .borrow()
            .iter()
            .flatten()
            .filter(|e| e.idle.get())
            .map(|e| e.kill.clone())
            .collect();
        for k in kills {
            k.kill();
        }
    }

    /// Kills session `id`; false when this shard has no such session.
    pub fn kill_one(&self, id: u64) -> bool {
        let kill = self
            .entries
            .borrow()
            .iter()
            .flatten()
            .find(|e| e.id == id)
            .map(|e| e.kill.clone());
        match kill {
            Some(k) => {
                k.kill_by_operator();
                true
            }
            None => false,
        }
    }

    /// Every live session, oldest first, as `show sess` shows them;
    /// `server_addr` gives a server's current address.
    pub fn describe(&self, server_addr: impl Fn(usize, usize) -> SocketAddr) -> Vec<SessionInfo> {
        use crate::sys::socket::{local_addr_of, peer_addr_of};
        let now = Instant::now();
        let mut out: Vec<SessionInfo> = self
            .entries
            .borrow()
            .iter()
            .flatten()
            .map(|e| {
                let o = &e.origin;
                let (backend, server) = (e.backend.get(), e.server.get());
                SessionInfo {
                    id: e.id,
                    frontend: o.frontend,
                    backend,
                    server,
                    server_addr: backend.zip(server).map(|(b, s)| server_addr(b, s)),
                    client: o.client.or_else(|| peer_addr_of(o.fd).ok()),
                    local: local_addr_of(o.fd).ok(),
                    accepted: o.accepted,
                    age: now.saturating_duration_since(o.started),
                    fd: o.fd,
                }
            })
            .collect();
        out.sort_by_key(|s| s.id);
        out
    }

    pub fn len(&self) -> usize {
        self.entries.borrow().iter().flatten().count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Origin {
        Origin {
            frontend: 0,
            client: Some("127.0.0.1:5000".parse().unwrap()),
            fd: -1,
            started: Instant::now(),
            accepted: SystemTime::now(),
        }
    }

    #[test]
    fn sessions_are_described_and_killed_one_by_id() {
        let reg = LiveSessions::new(2);
        let (a, b) = (
            Rc::new(KillSwitch::default()),
            Rc::new(KillSwitch::default()),
        );
        let ka = reg.register(origin(), Some(0), a.clone());
        let kb = reg.register(origin(), Some(0), b.clone());
        kb.set_backend(Some(1));
        kb.set_server(Some(4));
        let addr: SocketAddr = "10.0.0.1:80".parse().unwrap();
        let d = reg.describe(|_, _| addr);
        assert_eq!(d.len(), 2);
        assert_eq!(crate::state::sessions::shard_of(d[0].id), 2);
        assert!(d[0].id < d[1].id, "oldest first");
        assert_eq!(
            (d[0].backend, d[0].server, d[0].server_addr),
            (Some(0), None, None)
        );
        assert_eq!(
            (d[1].backend, d[1].server, d[1].server_addr),
            (Some(1), Some(4), Some(addr))
        );
        assert_eq!(d[1].client, origin().client);
        assert!(!reg.kill_one(d[1].id + 64), "no such session");
        assert!(reg.kill_one(d[1].id));
        assert!(b.is_killed() && b.by_operator() && !a.is_killed());
        drop((ka, kb));
        assert!(reg.describe(|_, _| addr).is_empty());
    }

    #[test]
    fn kills_only_matching_sessions_and_reuses_slots() {
        let reg = LiveSessions::new(3);
        let a = Rc::new(KillSwitch::default());
        let b = Rc::new(KillSwitch::default());
        let c = Rc::new(KillSwitch::default());
        let ka = reg.register(origin(), Some(0), a.clone());
        ka.set_server(Some(1));
        let kb = reg.register(origin(), Some(0), b.clone());
        kb.set_server(Some(2));
        let kc = reg.register(origin(), None, c.clone());
        assert_eq!(reg.len(), 3);
        reg.kill(false, |be, s| be == 0 && s == Some(1));
        assert!(a.is_killed() && !b.is_killed() && !c.is_killed());
        drop(ka);
        assert_eq!(reg.len(), 2);
        let d = Rc::new(KillSwitch::default());
        let _kd = reg.register(origin(), Some(1), d.clone());
        assert_eq!(reg.entries.borrow().len(), 3, "the freed slot is reused");
        reg.kill_all();
        assert!(b.is_killed() && c.is_killed() && d.is_killed());
        drop((kb, kc));
    }
}
