//! The event loop the load generators share: one thread, one mio `Poll`, run
//! until a deadline. Every readiness event goes to the caller; the progress line
//! is refreshed twice a second. One thread for all connections keeps the load
//! side cheap, so the proxy under test, not the generator, sets the pace.

use std::io;
use std::time::{Duration, Instant};

use mio::event::Event;
use mio::{Events, Poll, Registry};

pub struct EventLoop {
    pub poll: Poll,
    events: Events,
}

impl EventLoop {
    pub fn new() -> Result<EventLoop, String> {
        Ok(EventLoop {
            poll: Poll::new().map_err(|e| format!("cannot create a poller: {e}"))?,
            events: Events::with_capacity(1024),
        })
    }

    /// Calls `on_event` for every event until `deadline` (or until `done`
    /// says there is nothing left to wait for), and `tick` with the seconds
    /// elapsed about every 500 ms.
    pub fn run(
        &mut self,
        deadline: Instant,
        mut done: impl FnMut() -> bool,
        mut tick: impl FnMut(f64),
        mut on_event: impl FnMut(&Registry, &Event),
    ) -> Result<(), String> {
        let t0 = Instant::now();
        let mut next_tick = t0 + Duration::from_millis(500);
        loop {
            let now = Instant::now();
            if now >= deadline || done() {
                return Ok(());
            }
            if now >= next_tick {
                tick(now.duration_since(t0).as_secs_f64());
                next_tick = now + Duration::from_millis(500);
            }
            let wait = deadline.min(next_tick).saturating_duration_since(now);
            match self.poll.poll(&mut self.events, Some(wait)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("poll: {e}")),
            }
            let registry = self.poll.registry();
            for ev in self.events.iter() {
                on_event(registry, ev);
            }
        }
    }
}
