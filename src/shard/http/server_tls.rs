//! TLS to servers in `mode http` (`server ... ssl`): the handshake, after
//! the PROXY header if any, bounded by `timeout connect`; the HTTP session
//! then reads and writes the TLS session itself (a
//! [`ServerConn::Tls`](crate::shard::server_conn::ServerConn)), pooled and
//! reused like a plain connection.

use std::rc::Rc;
use std::time::Instant;

use crate::log::Termination;
use crate::shard::server_conn::ServerConn;
use crate::sys::socket::Socket;
use crate::tls::ServerTls;

use super::super::ctx::ShardCtx;

/// Runs the TLS handshake with the server on `sock` (connected, PROXY header
/// already sent), sending `sni`. A failed handshake (wrong name, unknown CA,
/// no common version) is a connection error (`SC`), logged as a warning
/// naming the server, as in mode tcp.
pub(super) async fn handshake(
    ctx: &Rc<ShardCtx>,
    backend: usize,
    server: usize,
    tls: &ServerTls,
    sni: Option<rustls::pki_types::ServerName<'static>>,
    sock: Socket,
) -> Result<ServerConn, Termination> {
    let be = &ctx.config.backends[backend];
    let deadline = be
        .timeouts
        .connect
        .and_then(|t| Instant::now().checked_add(t));
    match crate::tls::connect(tls.config.clone(), sni, sock, deadline).await {
        Ok(t) => Ok(ServerConn::Tls(Box::new(t))),
        Err((_, e)) => {
            ctx.logger.event(
                crate::log::level::WARNING,
                format!("{}/{}: {e}", be.name, be.servers[server].name),
            );
            Err(Termination::CONNECT_REFUSED)
        }
    }
}
