//! The registry of one shard's live sessions, from the moment a session is
//! accepted to its end, whatever it is doing (queued, connecting, forwarding):
//! each entry holds the session's [`KillSwitch`], so a server marked down with
//! `shutdown-sessions`, or `hard-stop-after`, can end it.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use crate::l4::KillSwitch;

struct Entry {
    backend: Option<usize>,
    server: Cell<Option<usize>>,
    /// Between two requests of a keep-alive connection: nothing in flight, so
    /// a stopping shard may close it at once.
    idle: Cell<bool>,
    kill: Rc<KillSwitch>,
}

/// Slots reused through a free list: registering allocates only when the shard
/// holds more sessions than ever before.
#[derive(Default)]
pub struct LiveSessions {
    entries: RefCell<Vec<Option<Entry>>>,
    free: RefCell<Vec<usize>>,
}

/// A registered session; unregisters on drop.
pub struct LiveKey<'a> {
    reg: &'a LiveSessions,
    key: usize,
}

impl LiveKey<'_> {
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
    pub fn register(&self, backend: Option<usize>, kill: Rc<KillSwitch>) -> LiveKey<'_> {
        let entry = Entry {
            backend,
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

    /// Kills every session whose (backend, server) matches.
    pub fn kill(&self, matches: impl Fn(usize, Option<usize>) -> bool) {
        let kills: Vec<Rc<KillSwitch>> = self
            .entries
            .borrow()
            .iter()
            .flatten()
            .filter(|e| e.backend.is_some_and(|b| matches(b, e.server.get())))
            .map(|e| e.kill.clone())
            .collect();
        // Killing wakes tasks, which may register or drop entries: not while
        // the registry is borrowed.
        for k in kills {
            k.kill();
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

    #[test]
    fn kills_only_matching_sessions_and_reuses_slots() {
        let reg = LiveSessions::default();
        let a = Rc::new(KillSwitch::default());
        let b = Rc::new(KillSwitch::default());
        let c = Rc::new(KillSwitch::default());
        let ka = reg.register(Some(0), a.clone());
        ka.set_server(Some(1));
        let kb = reg.register(Some(0), b.clone());
        kb.set_server(Some(2));
        let kc = reg.register(None, c.clone());
        assert_eq!(reg.len(), 3);
        reg.kill(|be, s| be == 0 && s == Some(1));
        assert!(a.is_killed() && !b.is_killed() && !c.is_killed());
        drop(ka);
        assert_eq!(reg.len(), 2);
        let d = Rc::new(KillSwitch::default());
        let _kd = reg.register(Some(1), d.clone());
        assert_eq!(reg.entries.borrow().len(), 3, "the freed slot is reused");
        reg.kill_all();
        assert!(b.is_killed() && c.is_killed() && d.is_killed());
        drop((kb, kc));
    }
}
