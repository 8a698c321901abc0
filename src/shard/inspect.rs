//! `tcp-request content` on a mode-tcp session: the client's first bytes
//! are peeked (MSG_PEEK: nothing is consumed, the pump forwards them all
//! later), the rules evaluated on them, and evaluated again each time more
//! arrive, until they decide or `tcp-request inspect-delay` expires (then
//! once more, for the last time, as HAProxy's `tcp_inspect_request`).
//! Never reads past `tune.bufsize - tune.maxrewrite` bytes, as HAProxy's
//! channel stops there.

use std::os::fd::AsRawFd;
use std::time::Instant;

use crate::config::model::Tune;
use crate::http::acl::payload::Inspect;
use crate::http::rules::{Conn, SectionRules, Txn};
use crate::l4::KillSwitch;
use crate::ring::{self, events};
use crate::sys::socket::Socket;

/// What the content rules decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    Accept,
    Reject,
    /// The session was killed (hard stop) while waiting.
    Killed,
}

/// Runs `rules.tcp_content` over the client's bytes; `txn.inspect` holds
/// the last bytes peeked, for the `use_backend` evaluated next.
/// `deadline`: the session's start plus `inspect-delay` (`None`: decide on
/// what is there now).
pub(super) async fn content(
    rules: &SectionRules,
    sock: &Socket,
    txn: &mut Txn,
    conn: &Conn<'_>,
    deadline: Option<Instant>,
    tune: &Tune,
    kill: &KillSwitch,
) -> Verdict {
    let room = tune.bufsize.saturating_sub(tune.maxrewrite).max(1);
    let mut buf = vec![0u8; room];
    txn.inspect = Some(Inspect {
        data: Vec::new(),
        max: tune.bufsize,
        // Without a delay the rules decide on what is there at once.
        last: deadline.is_none(),
        ..Inspect::default()
    });
    let mut lowat_raised = false;
    let mut woken = false;
    let verdict = loop {
        let i = txn.inspect.as_mut().expect("set above");
        let before = i.data.len();
        match sock.peek(&mut buf) {
            // The client shut its side: nothing more will come.
            Ok(0) => i.last = true,
            Ok(n) => {
                i.data.clear();
                i.data.extend_from_slice(&buf[..n]);
                // Woken with nothing new: that was the end of the stream
                // (the low-water mark asks for more than we had).
                if n == room || (woken && n == before) {
                    i.last = true;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => i.last = true,
        }
        i.short.set(false);
        match rules.tcp_content(txn, conn) {
            Some(true) => break Verdict::Accept,
            Some(false) => break Verdict::Reject,
            None => {}
        }
        // Undecided: be woken only when more than what we have is there.
        let have = txn.inspect.as_ref().map_or(0, |i| i.data.len());
        lowat_raised |= sock.set_rcvlowat(have + 1).is_ok();
        let more = ring::poll_once(sock.as_raw_fd(), events::IN);
        match kill.guard(ring::with_deadline(deadline, more)).await {
            None => break Verdict::Killed,
            Some(Some(Ok(_))) => woken = true,
            // The delay expired, or the socket failed: a last evaluation.
            Some(None) | Some(Some(Err(_))) => {
                if let Some(i) = txn.inspect.as_mut() {
                    i.last = true;
                }
                woken = false;
            }
        }
    };
    if lowat_raised {
        let _ = sock.set_rcvlowat(1);
    }
    if verdict == Verdict::Reject {
        // Take what the client sent before closing, as HAProxy has it in its
        // buffer: unread bytes would turn our FIN into a reset.
        while matches!(sock.recv(&mut buf), Ok(n) if n > 0) {}
    }
    if let Some(i) = txn.inspect.as_mut() {
        // `use_backend` runs after: HAProxy evaluates it as final.
        i.last = true;
    }
    verdict
}
