//! The per-server health state machine, as HAProxy runs it: a checked server
//! starts UP and takes traffic; `fall` consecutive failures make it DOWN, `rise`
//! consecutive successes make it UP again. Between checks it waits `inter` while
//! steady, `fastinter` while a transition is under way, `downinter` while DOWN.
//! Pure logic: no I/O, no clock.

use std::time::Duration;

use super::check::CheckResult;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    WentDown,
    WentUp,
}

#[derive(Debug, Clone)]
pub struct Health {
    pub up: bool,
    rise: u32,
    fall: u32,
    inter: Duration,
    fastinter: Duration,
    downinter: Duration,
    /// Consecutive results against the current state (failures while UP,
    /// successes while DOWN).
    streak: u32,
    pub last: Option<CheckResult>,
}

impl Health {
    pub fn new(
        rise: u32,
        fall: u32,
        inter: Duration,
        fastinter: Duration,
        downinter: Duration,
    ) -> Health {
        Health {
            up: true,
            rise: rise.max(1),
            fall: fall.max(1),
            inter,
            fastinter,
            downinter,
            streak: 0,
            last: None,
        }
    }

    /// Records one check result; returns the transition it caused, if any.
    pub fn on_result(&mut self, r: CheckResult) -> Option<Transition> {
        let ok = r.status.is_ok();
        // A socket error is this process failing to check (out of fds or
        // memory): recorded, but it says nothing about the server.
        if r.status == super::check::CheckStatus::SockErr {
            self.last = Some(r);
            return None;
        }
        self.last = Some(r);
        match (self.up, ok) {
            (true, true) | (false, false) => {
                self.streak = 0;
                None
            }
            (true, false) => {
                self.streak += 1;
                if self.streak >= self.fall {
                    self.up = false;
                    self.streak = 0;
                    Some(Transition::WentDown)
                } else {
                    None
                }
            }
            (false, true) => {
                self.streak += 1;
                if self.streak >= self.rise {
                    self.up = true;
                    self.streak = 0;
                    Some(Transition::WentUp)
                } else {
                    None
                }
            }
        }
    }

    /// Delay before the next check.
    pub fn next_delay(&self) -> Duration {
        if self.streak > 0 {
            self.fastinter
        } else if self.up {
            self.inter
        } else {
            self.downinter
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::check::{CheckResult, CheckStatus};

    fn r(ok: bool) -> CheckResult {
        CheckResult {
            status: if ok {
                CheckStatus::L4Ok
            } else {
                CheckStatus::L4Con
            },
            code: None,
            duration: Duration::ZERO,
            info: String::new(),
        }
    }

    fn h() -> Health {
        Health::new(
            2,
            3,
            Duration::from_secs(2),
            Duration::from_millis(500),
            Duration::from_secs(5),
        )
    }

    #[test]
    fn starts_up_and_goes_down_after_fall_consecutive_failures() {
        let mut s = h();
        assert!(s.up);
        assert_eq!(s.on_result(r(false)), None);
        assert_eq!(s.on_result(r(false)), None);
        assert_eq!(
            s.next_delay(),
            Duration::from_millis(500),
            "fastinter while transitioning"
        );
        assert_eq!(s.on_result(r(false)), Some(Transition::WentDown));
        assert!(!s.up);
        assert_eq!(
            s.next_delay(),
            Duration::from_secs(5),
            "downinter while down"
        );
    }

    #[test]
    fn a_local_socket_error_never_marks_the_server_down() {
        let mut s = h();
        let sockerr = CheckResult {
            status: CheckStatus::SockErr,
            ..r(false)
        };
        s.on_result(r(false));
        for _ in 0..10 {
            assert_eq!(s.on_result(sockerr.clone()), None);
        }
        assert!(s.up);
        assert_eq!(s.last.as_ref().unwrap().status, CheckStatus::SockErr);
        s.on_result(r(false));
        assert_eq!(
            s.on_result(r(false)),
            Some(Transition::WentDown),
            "real failures still count, around the socket errors"
        );
    }

    #[test]
    fn a_success_resets_the_failure_streak() {
        let mut s = h();
        s.on_result(r(false));
        s.on_result(r(false));
        assert_eq!(s.on_result(r(true)), None);
        assert_eq!(s.next_delay(), Duration::from_secs(2));
        s.on_result(r(false));
        s.on_result(r(false));
        assert!(s.up, "only 2 consecutive failures since the success");
    }

    #[test]
    fn comes_back_up_after_rise_consecutive_successes() {
        let mut s = h();
        for _ in 0..3 {
            s.on_result(r(false));
        }
        assert_eq!(s.on_result(r(true)), None);
        assert_eq!(
            s.on_result(r(false)),
            None,
            "a failure while down resets the rise streak"
        );
        assert_eq!(s.on_result(r(true)), None);
        assert_eq!(s.on_result(r(true)), Some(Transition::WentUp));
        assert!(s.up);
    }
}
