//! The last invalid request of each frontend and the last invalid response of
//! each backend, as HAProxy keeps them for `show errors`: written by a data
//! shard only when it refuses a malformed head (a copy of the bytes it had,
//! at most `tune.bufsize`), read by the control shard. A shard never waits
//! here: when another thread holds a slot, this capture is dropped (the
//! event is still counted).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::SystemTime;

use crate::config::model::Config;

/// One captured message.
#[derive(Debug, Clone)]
pub struct ErrorSnapshot {
    pub when: SystemTime,
    /// The process-wide event number (HAProxy's `event #N`).
    pub event: u32,
    /// For a request, the backend it was routed to (if it got that far); for
    /// a response, the frontend its request came in on.
    pub other: Option<usize>,
    pub server: Option<usize>,
    pub client: SocketAddr,
    /// The bytes as received, cut to `size`.
    pub bytes: Vec<u8>,
    /// The buffer size they were read into (`tune.bufsize`).
    pub size: usize,
}

/// What went wrong where, for [`ErrorLog::capture`].
pub struct Capture<'a> {
    /// The frontend of a request, the backend of a response.
    pub proxy: usize,
    pub other: Option<usize>,
    pub server: Option<usize>,
    pub client: SocketAddr,
    pub bytes: &'a [u8],
    pub size: usize,
}

/// Which way the malformed message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Request,
    Response,
}

pub struct ErrorLog {
    /// Events so far (HAProxy's `error_snapshot_id`).
    events: AtomicU32,
    requests: Vec<Mutex<Option<ErrorSnapshot>>>,
    responses: Vec<Mutex<Option<ErrorSnapshot>>>,
}

impl ErrorLog {
    pub fn new(config: &Config) -> ErrorLog {
        ErrorLog {
            events: AtomicU32::new(0),
            requests: config.frontends.iter().map(|_| Mutex::new(None)).collect(),
            responses: config.backends.iter().map(|_| Mutex::new(None)).collect(),
        }
    }

    fn slots(&self, dir: Direction) -> &[Mutex<Option<ErrorSnapshot>>] {
        match dir {
            Direction::Request => &self.requests,
            Direction::Response => &self.responses,
        }
    }

    /// Keeps `c` as its proxy's last error in direction `dir`, replacing the
    /// one before (reusing its buffer).
    pub fn capture(&self, dir: Direction, c: Capture<'_>) {
        let event = self.events.fetch_add(1, Ordering::Relaxed);
        let Some(slot) = self.slots(dir).get(c.proxy) else {
            return;
        };
        let Ok(mut slot) = slot.try_lock() else {
            return;
        };
        let mut bytes = slot.take().map(|s| s.bytes).unwrap_or_default();
        bytes.clear();
        bytes.extend_from_slice(&c.bytes[..c.bytes.len().min(c.size)]);
        *slot = Some(ErrorSnapshot {
            when: SystemTime::now(),
            event,
            other: c.other,
            server: c.server,
            client: c.client,
            bytes,
            size: c.size,
        });
    }

    /// Events captured since the start.
    pub fn events(&self) -> u32 {
        self.events.load(Ordering::Relaxed)
    }

    /// A copy of proxy `proxy`'s last error in direction `dir`.
    pub fn last(&self, dir: Direction, proxy: usize) -> Option<ErrorSnapshot> {
        self.slots(dir)
            .get(proxy)?
            .lock()
            .ok()
            .and_then(|s| s.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_error_per_proxy_and_direction_cut_to_the_buffer() {
        let cfg = crate::config::parse_str(
            "[[listen]]\nname = \"a\"\nbind = [\"127.0.0.1:1\"]\nmode = \"http\"\n\
             servers = [{ name = \"s\", address = \"127.0.0.1:2\" }]\n",
            std::path::Path::new("t.toml"),
        )
        .unwrap();
        let log = ErrorLog::new(&cfg);
        let c = |bytes: &'static [u8]| Capture {
            proxy: 0,
            other: None,
            server: None,
            client: "127.0.0.1:9".parse().unwrap(),
            bytes,
            size: 8,
        };
        log.capture(Direction::Request, c(b"first"));
        log.capture(Direction::Request, c(b"second request"));
        log.capture(Direction::Response, c(b"HTTP/1.1"));
        assert_eq!(log.events(), 3);
        let r = log.last(Direction::Request, 0).unwrap();
        assert_eq!((r.event, &r.bytes[..]), (1, &b"second r"[..]));
        assert_eq!(log.last(Direction::Response, 0).unwrap().event, 2);
        assert!(log.last(Direction::Request, 7).is_none());
    }
}
