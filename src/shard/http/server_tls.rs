//! TLS to servers in `mode http` (`server ... ssl`): the HTTP session, written
//! against plain sockets, gets one end of a local socket pair; a task of its
//! own moves bytes between the other end and a [`TlsTransport`] to the server
//! (the L4 pump, encrypting up and decrypting down), as the client side does
//! for `bind ... ssl`.
//!
//! The bridge task lives as long as the session's end of the pair: a
//! connection parked in the idle pool keeps its bridge (and its TLS session)
//! alive, so keep-alive reuse works unchanged, and the pool's `still_open`
//! probe sees the server's close as EOF on the pair. When the pair's end is
//! closed (the exchange ended, the pool purged it), the bridge sends
//! `close_notify` and FIN to the server and ends once the server closes too,
//! bounded by `timeout server-fin` (else `timeout server`). Costs one local
//! copy each way, as on the client side.

use std::rc::Rc;
use std::time::Instant;

use crate::l4::{KillSwitch, Pump, PumpLimits};
use crate::log::Termination;
use crate::sys::socket::Socket;
use crate::tls::ServerTls;

use super::super::ctx::ShardCtx;

/// Runs the TLS handshake with the server on `sock` (connected, PROXY header
/// already sent), bounded by `timeout connect`, and returns the socket the
/// HTTP session speaks plain HTTP on. A failed handshake (wrong name, unknown
/// CA, no common version) is a connection error (`SC`), logged as a warning
/// naming the server, as in mode tcp.
pub(super) async fn bridge(
    ctx: &Rc<ShardCtx>,
    backend: usize,
    server: usize,
    tls: &ServerTls,
    sni: Option<rustls::pki_types::ServerName<'static>>,
    sock: Socket,
) -> Result<Socket, Termination> {
    let be = &ctx.config.backends[backend];
    let deadline = be
        .timeouts
        .connect
        .and_then(|t| Instant::now().checked_add(t));
    let t = match crate::tls::connect(tls.config.clone(), sni, sock, deadline).await {
        Ok(t) => t,
        Err((_, e)) => {
            ctx.logger.event(
                crate::log::level::WARNING,
                format!("{}/{}: {e}", be.name, be.servers[server].name),
            );
            return Err(Termination::CONNECT_REFUSED);
        }
    };
    let (outer, inner) = match Socket::pair() {
        Ok(p) => p,
        Err(e) => {
            ctx.logger.event(
                crate::log::level::ALERT,
                format!("cannot create a socket pair for TLS to a server: {e}"),
            );
            return Err(Termination::LOCAL_RESOURCE);
        }
    };
    // Only the close is bounded here: while open, the HTTP session's own
    // timeouts (or the idle pool's purge) decide when the connection ends.
    let limits = PumpLimits {
        server_fin: be.timeouts.server_fin.or(be.timeouts.server),
        ..Default::default()
    };
    let ctx = ctx.clone();
    crate::ring::spawn(async move {
        let kill = Rc::new(KillSwitch::default());
        Pump::run(&outer, &t, &ctx.pools, limits, kill).await;
    });
    Ok(inner)
}
