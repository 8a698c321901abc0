//! The moments of one HTTP exchange and the log timers HAProxy derives from
//! them (`%TR/%Tw/%Tc/%Tr/%Ta`), so that every caller computes them the same
//! way. The shard records each `Instant` as the phase ends; a phase that never
//! happened stays `None` and its timer (and the ones after it) log `-1`.
//!
//! HAProxy's definitions: `TR` from the first byte of the request to its
//! complete head; `Tw` the time in queues; `Tc` the connection to the server;
//! `Tr` from the connection being ready to the complete response head; `Ta` from
//! the first byte of the request to the end of the response. Pure.

use std::time::Instant;

/// When each phase of one request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeline {
    /// First byte of the request (after any keep-alive idle time).
    pub request_start: Instant,
    /// The request head was complete.
    pub head_received: Option<Instant>,
    /// Left the queues (or never waited: the head time).
    pub dequeued: Option<Instant>,
    /// The server connection was ready (a reused idle connection: at once).
    pub connected: Option<Instant>,
    /// The response head was complete.
    pub response_head: Option<Instant>,
}

/// The timers of a log line, in milliseconds, -1 where the phase never ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogTimes {
    pub tr_request: i64,
    pub tw: i64,
    pub tc: i64,
    pub tr_response: i64,
    pub ta: i64,
}

fn ms(from: Option<Instant>, to: Option<Instant>) -> i64 {
    match (from, to) {
        (Some(a), Some(b)) => b.saturating_duration_since(a).as_millis() as i64,
        _ => -1,
    }
}

impl Timeline {
    pub fn new(request_start: Instant) -> Timeline {
        Timeline {
            request_start,
            head_received: None,
            dequeued: None,
            connected: None,
            response_head: None,
        }
    }

    /// The timers for a request that ended at `end` (last byte sent, or error).
    pub fn log_times(&self, end: Instant) -> LogTimes {
        LogTimes {
            tr_request: ms(Some(self.request_start), self.head_received),
            tw: ms(self.head_received, self.dequeued),
            tc: ms(self.dequeued, self.connected),
            tr_response: ms(self.connected, self.response_head),
            ta: ms(Some(self.request_start), Some(end)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timers_from_phases() {
        let t0 = Instant::now();
        let at = |ms| Some(t0 + Duration::from_millis(ms));
        let t = Timeline {
            request_start: t0,
            head_received: at(3),
            dequeued: at(10),
            connected: at(12),
            response_head: at(40),
        };
        assert_eq!(
            t.log_times(t0 + Duration::from_millis(55)),
            LogTimes {
                tr_request: 3,
                tw: 7,
                tc: 2,
                tr_response: 28,
                ta: 55
            }
        );
    }

    #[test]
    fn phases_that_never_ended_log_minus_one() {
        let t0 = Instant::now();
        // As haproxy 2.6 logged a server timeout (`sH`): "0/0/0/-1/1002".
        let mut t = Timeline::new(t0);
        t.head_received = Some(t0);
        t.dequeued = Some(t0);
        t.connected = Some(t0);
        let l = t.log_times(t0 + Duration::from_millis(1002));
        assert_eq!(
            (l.tr_request, l.tw, l.tc, l.tr_response, l.ta),
            (0, 0, 0, -1, 1002)
        );
        // A bad request: "-1/-1/-1/-1/0".
        let l = Timeline::new(t0).log_times(t0);
        assert_eq!(
            (l.tr_request, l.tw, l.tc, l.tr_response, l.ta),
            (-1, -1, -1, -1, 0)
        );
    }
}
