//! The body phases of one HTTP exchange: the request body up to the server,
//! the interim `100 Continue` before it, the response body down to the client,
//! and the tunnel after `101 Switching Protocols`. Bytes the framing decoder
//! has seen go by copy, in one send per read; a run of raw payload longer than
//! `SPLICE_MIN` (what is left of a `Content-Length` body, of one chunk, or of a
//! close-delimited response) moves socket to socket through a pipe.

use std::time::{Duration, Instant};

use super::io::{fill, readable_either, send_all, splice_exact, First, Inbuf, Read, Sent, Spliced};
use super::{deadline, Conn, SPLICE_MIN};
use crate::config::model::Backend;
use crate::http::head::Version;
use crate::http::message::{Event, RequestReader, ResponseReader};
use crate::http::rewrite::write_response;
use crate::l4::{Pools, Pump, PumpEnd, PumpLimits, Transport};
use crate::log::{SessionRecord, Termination};

const CLIENT_DATA_TIMEOUT: Termination = Termination(*b"cD");

/// Which reader a body loop follows.
pub(super) enum Dir<'r> {
    Up(&'r mut RequestReader),
    Down(&'r mut ResponseReader),
}

impl Dir<'_> {
    fn next(&mut self, input: &[u8]) -> Result<Event, ()> {
        let now = Instant::now();
        match self {
            Dir::Up(r) => r.next(input, now).map_err(drop),
            Dir::Down(r) => r.next(input, now).map_err(drop),
        }
    }
    fn data_ahead(&mut self) -> u64 {
        match self {
            Dir::Up(r) => r.body().data_ahead(),
            Dir::Down(r) => r.body().data_ahead(),
        }
    }
    fn skip(&mut self, n: u64) {
        match self {
            Dir::Up(r) => r.body().skip(n),
            Dir::Down(r) => r.body().skip(n),
        }
    }
    fn on_eof(&mut self) -> bool {
        match self {
            Dir::Up(r) => r.on_eof(0).is_ok(),
            Dir::Down(r) => r.on_eof(0).is_ok(),
        }
    }
}

impl Conn<'_> {
    /// Forwards the request body to the server, up to its end.
    pub(super) async fn forward_body_up(
        &mut self,
        reader: &mut RequestReader,
        server: &dyn Transport,
        client_t: Option<Duration>,
        server_t: Option<Duration>,
        rec: &mut SessionRecord,
    ) -> Result<(), Termination> {
        let r = self
            .forward_body(
                Dir::Up(reader),
                server,
                client_t,
                server_t,
                &mut rec.bytes_up,
                false,
            )
            .await;
        r.map_err(|e| match e {
            BodyEnd::Framing => Termination::PROXY_REQUEST,
            BodyEnd::SrcAbort => Termination::CLIENT_ABORT,
            BodyEnd::SrcTimeout => CLIENT_DATA_TIMEOUT,
            BodyEnd::DstAbort => Termination::SERVER_ABORT,
            BodyEnd::DstTimeout => Termination::SERVER_TIMEOUT,
        })
    }

    /// Forwards the response body to the client, up to its end (for a
    /// close-delimited body, the server's close).
    pub(super) async fn forward_body_down(
        &mut self,
        resp: &mut ResponseReader,
        server: &dyn Transport,
        client_t: Option<Duration>,
        server_t: Option<Duration>,
        rec: &mut SessionRecord,
    ) -> Result<(), Termination> {
        let r = self
            .forward_body(
                Dir::Down(resp),
                server,
                server_t,
                client_t,
                &mut rec.bytes_down,
                true,
            )
            .await;
        r.map_err(|e| match e {
            BodyEnd::Framing => Termination::SERVER_ABORT,
            BodyEnd::SrcAbort => Termination::SERVER_ABORT,
            BodyEnd::SrcTimeout => Termination::SERVER_TIMEOUT,
            BodyEnd::DstAbort => Termination::CLIENT_ABORT,
            BodyEnd::DstTimeout => CLIENT_DATA_TIMEOUT,
        })
    }

    /// One body loop over this connection's buffers; `server` is the source
    /// going down, the destination up.
    async fn forward_body(
        &mut self,
        dir: Dir<'_>,
        server: &dyn Transport,
        src_t: Option<Duration>,
        dst_t: Option<Duration>,
        counted: &mut u64,
        head_pending: bool,
    ) -> Result<(), BodyEnd> {
        let up = matches!(dir, Dir::Up(_));
        let (src, dst, inbuf): (&dyn Transport, &dyn Transport, _) = if up {
            (self.client, server, &mut self.cin)
        } else {
            (server, self.client, &mut self.sin)
        };
        let io = BodyIo {
            pools: &self.ctx.pools,
            splice: self.ctx.config.global.tune.splice,
            spliced: &self.ctx.poll_bytes,
        };
        pump_body(
            dir,
            inbuf,
            &mut self.out,
            src,
            dst,
            (src_t, dst_t),
            counted,
            head_pending,
            io,
        )
        .await
    }

    /// After a request with `Expect: 100-continue`: waits for the server's
    /// first head. `Ok(None)`: an interim response, forwarded; send the body.
    /// `Ok(Some(len))`: the final response head (`len` bytes at the start of
    /// the server buffer, already parsed); the body is never sent.
    pub(super) async fn read_interim(
        &mut self,
        resp: &mut ResponseReader,
        server: &dyn Transport,
        server_t: Option<Duration>,
        version: Version,
    ) -> Result<Option<usize>, (u16, Termination)> {
        loop {
            match resp.next(self.sin.data(), Instant::now()) {
                Ok(Event::Head { len }) => {
                    let info = *resp.info().expect("info after head");
                    if !info.interim {
                        return Ok(Some(len));
                    }
                    write_response(
                        resp.head(),
                        &info,
                        self.sin.data(),
                        version,
                        true,
                        &mut self.out,
                    );
                    self.sin.consume(len);
                    let _ = resp.next(self.sin.data(), Instant::now());
                    let d = deadline(self.ctx.config.frontends[self.frontend].timeouts.client);
                    return match send_all(self.client, &self.out, d).await {
                        Sent::Done => Ok(None),
                        Sent::Timeout => Err((0, CLIENT_DATA_TIMEOUT)),
                        Sent::Failed => Err((0, Termination::CLIENT_ABORT)),
                    };
                }
                Ok(Event::NeedMore) => {}
                Ok(_) | Err(_) => return Err((502, Termination::PROXY_HEADERS)),
            }
            // A client that stops waiting (curl gives up after a second) and
            // sends its body, to a server that waits for it without answering
            // `100` first, must not deadlock: the body goes on as it comes.
            if self.sin.is_empty() && !self.cin.is_empty() {
                // Body bytes came with the head: the client is not waiting.
                return Ok(None);
            }
            if self.sin.is_empty() {
                match readable_either(server, self.client, deadline(server_t)).await {
                    First::A => {}
                    First::B => return Ok(None),
                    First::Timeout => return Err((504, Termination::SERVER_HEADERS_TIMEOUT)),
                }
            }
            match fill(server, &mut self.sin, deadline(server_t)).await {
                Read::Data => {}
                Read::Timeout => return Err((504, Termination::SERVER_HEADERS_TIMEOUT)),
                _ => return Err((502, Termination::SERVER_HEADERS_ABORT)),
            }
        }
    }

    /// After `101 Switching Protocols`: what each side already sent goes
    /// across, then both directions are pumped as in TCP mode.
    pub(super) async fn tunnel(
        &mut self,
        server: &dyn Transport,
        be: &Backend,
        rec: &mut SessionRecord,
    ) -> Termination {
        let fe = &self.ctx.config.frontends[self.frontend];
        if !self.cin.is_empty() {
            if !matches!(
                send_all(server, self.cin.data(), deadline(be.timeouts.server)).await,
                Sent::Done
            ) {
                return Termination::SERVER_ABORT;
            }
            rec.bytes_up += self.cin.data().len() as u64;
            self.cin.clear();
        }
        if !self.sin.is_empty() {
            if !matches!(
                send_all(self.client, self.sin.data(), deadline(fe.timeouts.client)).await,
                Sent::Done
            ) {
                return Termination::CLIENT_ABORT;
            }
            rec.bytes_down += self.sin.data().len() as u64;
            self.sin.clear();
        }
        let limits = PumpLimits {
            client: fe.timeouts.client,
            server: be.timeouts.server,
            client_fin: fe.timeouts.client_fin,
            server_fin: be.timeouts.server_fin,
            tunnel: be.timeouts.tunnel.or(fe.timeouts.tunnel),
            splice: self.ctx.config.global.tune.splice,
        };
        let res = Pump::run(
            self.client,
            server,
            &self.ctx.pools,
            limits,
            self.kill.clone(),
        )
        .await;
        rec.bytes_up += res.up;
        rec.bytes_down += res.down;
        match res.end {
            PumpEnd::Closed => Termination::NORMAL,
            PumpEnd::ClientTimeout => Termination::CLIENT_TIMEOUT,
            PumpEnd::ServerTimeout => Termination::SERVER_TIMEOUT,
            PumpEnd::ClientAborted => Termination::CLIENT_ABORT,
            PumpEnd::ServerAborted => Termination::SERVER_ABORT,
            PumpEnd::Local => {
                self.ctx.shared.local_exhaustion();
                Termination::LOCAL_DATA
            }
            PumpEnd::Killed if self.ctx.killed.get() || self.kill.by_operator() => {
                Termination::HARD_STOP_KILL
            }
            PumpEnd::Killed => Termination::SERVER_DOWN_KILL,
        }
    }
}

/// Why a body loop stopped early.
pub(super) enum BodyEnd {
    /// The body's framing was broken.
    Framing,
    SrcAbort,
    SrcTimeout,
    DstAbort,
    DstTimeout,
}

/// What a body loop borrows from the shard.
#[derive(Clone, Copy)]
pub(super) struct BodyIo<'a> {
    pub pools: &'a Pools,
    pub splice: bool,
    /// The shard's count of bytes moved by splice (`show activity`).
    pub spliced: &'a std::cell::Cell<u64>,
}

/// Moves one message body from `src` to `dst` until its end, `inbuf` holding
/// what was read and not yet forwarded. With `head_pending`, the head in
/// `out` goes out with the first body bytes, in one send (a small response
/// costs one syscall). `timeouts` are (source, destination) inactivity limits.
#[allow(clippy::too_many_arguments)]
pub(super) async fn pump_body(
    mut dir: Dir<'_>,
    inbuf: &mut Inbuf,
    out: &mut Vec<u8>,
    src: &dyn Transport,
    dst: &dyn Transport,
    timeouts: (Option<Duration>, Option<Duration>),
    counted: &mut u64,
    mut head_pending: bool,
    io: BodyIo<'_>,
) -> Result<(), BodyEnd> {
    let (src_t, dst_t) = timeouts;
    // TLS has no splice (no kTLS here): its bodies are copied.
    let splice = io.splice && src.can_splice() && dst.can_splice();
    loop {
        let ahead = dir.data_ahead();
        if splice && !head_pending && inbuf.is_empty() && ahead >= SPLICE_MIN {
            let mut moved = 0;
            let r = splice_exact(
                src,
                dst,
                ahead,
                io.pools,
                || deadline(src_t),
                || deadline(dst_t),
                &mut moved,
            )
            .await;
            *counted += moved;
            io.spliced.set(io.spliced.get() + moved);
            if ahead != u64::MAX {
                dir.skip(moved);
            }
            match r {
                Spliced::Done => continue,
                Spliced::NoPipe => {}
                Spliced::SrcEof if dir.on_eof() => return Ok(()),
                Spliced::SrcEof | Spliced::SrcFailed => return Err(BodyEnd::SrcAbort),
                Spliced::SrcTimeout => return Err(BodyEnd::SrcTimeout),
                Spliced::DstTimeout => return Err(BodyEnd::DstTimeout),
                Spliced::DstFailed => return Err(BodyEnd::DstAbort),
            }
        }
        // Everything the decoder can classify now goes in one send.
        let mut n = 0;
        let mut ended = false;
        loop {
            match dir.next(&inbuf.data()[n..]) {
                Ok(Event::Data { len }) | Ok(Event::Framing { len }) => n += len,
                Ok(Event::End { len }) => {
                    n += len;
                    ended = true;
                    break;
                }
                Ok(Event::NeedMore) => break,
                // A head where a body was expected cannot happen.
                Ok(Event::Head { .. }) | Err(()) => return Err(BodyEnd::Framing),
            }
        }
        if head_pending || n > 0 {
            let bytes = if head_pending {
                out.extend_from_slice(&inbuf.data()[..n]);
                &out[..]
            } else {
                &inbuf.data()[..n]
            };
            let len = bytes.len() as u64;
            match send_all(dst, bytes, deadline(dst_t)).await {
                Sent::Done => {}
                Sent::Timeout => return Err(BodyEnd::DstTimeout),
                Sent::Failed => return Err(BodyEnd::DstAbort),
            }
            head_pending = false;
            inbuf.consume(n);
            *counted += len;
        }
        if ended {
            return Ok(());
        }
        if splice && inbuf.is_empty() && dir.data_ahead() >= SPLICE_MIN {
            continue;
        }
        match fill(src, inbuf, deadline(src_t)).await {
            Read::Data => {}
            Read::Eof if dir.on_eof() => return Ok(()),
            Read::Eof | Read::Failed => return Err(BodyEnd::SrcAbort),
            Read::Timeout => return Err(BodyEnd::SrcTimeout),
            Read::Full => return Err(BodyEnd::Framing),
        }
    }
}
