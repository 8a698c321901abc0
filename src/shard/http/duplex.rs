//! A request with a body, forwarded while its response comes back: both
//! directions run at once, as in HAProxy, so a server that answers (or
//! streams its answer) before it has read the whole body never waits for the
//! proxy to finish sending it, and a server that stops reading (a 413 before
//! the upload ends) still gets its answer to the client.

use std::cell::Cell;
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use super::body::{pump_body, BodyEnd, BodyIo, Dir};
use super::io::{fill, fill_ready, send_all, Inbuf, Read, Sent};
use super::rules::{Facts, ResponseDecision};
use super::{deadline, Conn};
use crate::http::capture::capture_headers;
use crate::http::head::Version;
use crate::http::message::{Event, RequestReader, ResponseReader};
use crate::http::rewrite::{client_keep_alive, write_response};
use crate::http::validate::{RequestInfo, ResponseInfo};
use crate::l4::Transport;
use crate::log::{SessionRecord, Termination};

const CLIENT_DATA_TIMEOUT: Termination = Termination(*b"cD");

/// How a full-duplex exchange ended.
pub(super) enum Duplex {
    /// Both directions reached their end. `server_stopped_reading`: the server
    /// closed its side before the request body was all sent (the connection is
    /// not reused, the client's is closed after the response).
    Done {
        rinfo: ResponseInfo,
        status: u16,
        keep_alive: bool,
        server_stopped_reading: bool,
    },
    /// Ended before the response head reached the client: answer `status`
    /// with an error page when `answer`, log `status` and `term`.
    BeforeHead {
        status: u16,
        term: Termination,
        answer: bool,
    },
    /// Ended after the response head went out with `status`.
    AfterHead { status: u16, term: Termination },
}

/// Reads the final response head into `sin` (its length), forwarding interim
/// responses to the client on the way.
#[allow(clippy::too_many_arguments)]
pub(super) async fn read_final_head(
    resp: &mut ResponseReader,
    sin: &mut Inbuf,
    out: &mut Vec<u8>,
    server: &dyn Transport,
    client: &dyn Transport,
    version: Version,
    (server_t, client_t): (Option<Duration>, Option<Duration>),
    bytes_down: &mut u64,
    sending: &Cell<bool>,
) -> Result<usize, (u16, Termination)> {
    loop {
        match resp.next(sin.data(), Instant::now()) {
            Ok(Event::Head { len }) => {
                let info = *resp.info().expect("info after head");
                if !info.interim {
                    return Ok(len);
                }
                write_response(resp.head(), &info, sin.data(), version, true, out);
                sin.consume(len);
                // An interim response has no body: its `End`.
                let _ = resp.next(sin.data(), Instant::now());
                match send_all(client, out, deadline(client_t)).await {
                    Sent::Done => *bytes_down += out.len() as u64,
                    Sent::Timeout => return Err((0, CLIENT_DATA_TIMEOUT)),
                    Sent::Failed => return Err((0, Termination::CLIENT_ABORT)),
                }
                continue;
            }
            Ok(Event::NeedMore) => {}
            Ok(_) | Err(_) => return Err((502, Termination::PROXY_HEADERS)),
        }
        let read = if sin.is_empty() {
            fill_ready(server, sin, deadline(server_t)).await
        } else {
            fill(server, sin, deadline(server_t)).await
        };
        match read {
            Read::Data => {}
            // While the request body is still going up the server is not
            // idle (it is reading): `timeout server` counts from then on,
            // as HAProxy's does. Its own inactivity while reading is the
            // upload's send deadline.
            Read::Timeout if sending.get() => continue,
            Read::Timeout => return Err((504, Termination::SERVER_HEADERS_TIMEOUT)),
            Read::Eof | Read::Failed | Read::Full => {
                return Err((502, Termination::SERVER_HEADERS_ABORT))
            }
        }
    }
}

/// Why the response side stopped early.
enum DownFail {
    Head(u16, Termination),
    Body(BodyEnd),
}

impl Conn<'_> {
    /// Sends the request body and forwards the response at the same time.
    /// `response_head` is set when the response head is complete.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn duplex(
        &mut self,
        reader: &mut RequestReader,
        resp: &mut ResponseReader,
        server: &dyn Transport,
        info: &RequestInfo,
        version: Version,
        (client_t, server_t): (Option<Duration>, Option<Duration>),
        rec: &mut SessionRecord,
        response_head: &Cell<Option<Instant>>,
        respond: Option<(Facts<'_>, (usize, usize))>,
    ) -> Duplex {
        let io = BodyIo {
            pools: &self.ctx.pools,
            splice: self.ctx.config.global.tune.splice,
            spliced: &self.ctx.poll_bytes,
        };
        let mode = self.mode;
        let stopping = self.ctx.stopping.get();
        let head_sent = Cell::new(0u16);
        let (mut up_bytes, mut down_bytes) = (0u64, 0u64);
        let mut scratch = Vec::new();
        let (cin, sin, out, client) = (&mut self.cin, &mut self.sin, &mut self.out, self.client);
        let rules = &mut self.rules;
        let res_caps = &mut self.res_caps;
        let captures = &self.ctx.config.frontends[self.frontend].response_captures;
        // The request body is still being sent (the response head's wait
        // does not time out meanwhile).
        let sending = Cell::new(true);
        let (up_res, down_res) = {
            let sending = &sending;
            let up = async {
                let r = pump_body(
                    Dir::Up(reader),
                    cin,
                    &mut scratch,
                    client,
                    server,
                    (client_t, server_t),
                    &mut up_bytes,
                    false,
                    io,
                )
                .await;
                sending.set(false);
                r
            };
            let down_bytes = &mut down_bytes;
            let down = async {
                let len = read_final_head(
                    resp,
                    sin,
                    out,
                    server,
                    client,
                    version,
                    (server_t, client_t),
                    down_bytes,
                    sending,
                )
                .await
                .map_err(|(s, t)| DownFail::Head(s, t))?;
                response_head.set(Some(Instant::now()));
                let rinfo = *resp.info().expect("info after head");
                let keep = client_keep_alive(mode, info, &rinfo) && !stopping;
                if !captures.is_empty() {
                    capture_headers(&resp.head().headers, sin.data(), captures, res_caps);
                }
                let mut edited = false;
                if let Some((facts, ids)) = respond {
                    match rules.response(&facts, ids, (resp.head(), sin.data()), out) {
                        ResponseDecision::Deny(s) => {
                            return Err(DownFail::Head(s, Termination::PROXY_HEADERS))
                        }
                        ResponseDecision::Forward(e) => edited = e,
                    }
                }
                let (rh, rb) = if edited {
                    rules.response_head()
                } else {
                    (resp.head(), sin.data())
                };
                let status = rh.status;
                write_response(rh, &rinfo, rb, version, keep, out);
                sin.consume(len);
                head_sent.set(status);
                pump_body(
                    Dir::Down(resp),
                    sin,
                    out,
                    server,
                    client,
                    (server_t, client_t),
                    down_bytes,
                    true,
                    io,
                )
                .await
                .map_err(DownFail::Body)?;
                Ok((rinfo, status, keep))
            };
            let (mut up, mut down) = (pin!(up), pin!(down));
            let (mut up_res, mut down_res) = (None, None);
            poll_fn(|cx| {
                if up_res.is_none() {
                    if let Poll::Ready(r) = up.as_mut().poll(cx) {
                        up_res = Some(r);
                    }
                }
                if down_res.is_none() {
                    if let Poll::Ready(r) = down.as_mut().poll(cx) {
                        down_res = Some(r);
                    }
                }
                // A server that stops reading the body may still answer: only
                // the response side decides then.
                let up_failed = matches!(&up_res, Some(Err(e)) if !matches!(e, BodyEnd::DstAbort));
                let down_failed = matches!(down_res, Some(Err(_)));
                if up_failed || down_failed || (up_res.is_some() && down_res.is_some()) {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            })
            .await;
            (up_res, down_res)
        };
        rec.bytes_up += up_bytes;
        rec.bytes_down += down_bytes;
        let status = head_sent.get();
        if let Some(Err(e)) = &up_res {
            let term = match e {
                BodyEnd::Framing => Termination::PROXY_REQUEST,
                BodyEnd::SrcAbort => Termination::CLIENT_ABORT,
                BodyEnd::SrcTimeout => CLIENT_DATA_TIMEOUT,
                BodyEnd::DstAbort => Termination::SERVER_ABORT,
                BodyEnd::DstTimeout => Termination::SERVER_TIMEOUT,
            };
            if term != Termination::SERVER_ABORT {
                return if status == 0 {
                    let bad = term == Termination::PROXY_REQUEST;
                    Duplex::BeforeHead {
                        status: if bad { 400 } else { 0 },
                        term,
                        answer: bad,
                    }
                } else {
                    Duplex::AfterHead { status, term }
                };
            }
        }
        match down_res {
            Some(Ok((rinfo, status, keep_alive))) => Duplex::Done {
                rinfo,
                status,
                keep_alive,
                server_stopped_reading: matches!(up_res, Some(Err(_))),
            },
            Some(Err(DownFail::Head(status, term))) => Duplex::BeforeHead {
                status,
                term,
                answer: status != 0,
            },
            Some(Err(DownFail::Body(e))) => Duplex::AfterHead {
                status,
                term: match e {
                    BodyEnd::Framing | BodyEnd::SrcAbort => Termination::SERVER_ABORT,
                    BodyEnd::SrcTimeout => Termination::SERVER_TIMEOUT,
                    BodyEnd::DstAbort => Termination::CLIENT_ABORT,
                    BodyEnd::DstTimeout => CLIENT_DATA_TIMEOUT,
                },
            },
            // Not reached: the join returns once the response side is done
            // or the request side failed (handled above).
            None => Duplex::BeforeHead {
                status: 502,
                term: Termination::SERVER_HEADERS_ABORT,
                answer: true,
            },
        }
    }
}
