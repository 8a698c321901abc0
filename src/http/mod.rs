//! HTTP/1.1, sans-io: bytes in, heads and body boundaries out, `now` passed in.
//! A data shard (or a fuzzer) feeds what it read and acts on what comes back:
//! `head` finds and parses a request or response head (into `model` types),
//! `validate` decides what the head means for framing and keep-alive (and
//! refuses smuggling attempts), `framing` follows the body to its end so
//! pipelined bytes go to the next message, `rewrite` builds the head sent on,
//! `errors` holds HAProxy's error responses (and `errorfile` replacements), and
//! `message` ties head, checks and body into one event stream per direction for
//! the shard. `capture` and `timing` give the log line its captured headers and
//! timers; `hashkey` takes what `balance uri|url_param|hdr` hashes; `locate`
//! finds where a refused head went wrong (for `show errors`).
//! Nothing here opens a socket, blocks, or reads the clock.
//!
//! HAProxy 2.6 is the contract; `tests/http_oracle.rs` sends the same bytes to a
//! real haproxy and checks the statuses agree. Where ringlb deliberately differs:
//! - obs-fold, NUL or other control bytes in a header value, several spaces
//!   between request-line parts, and versions other than HTTP/1.0 and 1.1 are
//!   refused (400 for a request, 502 for a response); haproxy unfolds, lets
//!   them through, or takes `HTTP/d.d` as 1.1. Each is a parser disagreement a
//!   smuggler could use, and httparse refuses them.
//! - CONNECT is answered 501 (no tunnelling on request); haproxy forwards it.
//! - Hop-by-hop headers are removed when forwarding and header names keep their
//!   case (`rewrite`); haproxy lower-cases names and forwards most of them.
//! - A head may be `tune.bufsize - tune.maxrewrite` (15360) bytes; haproxy's own
//!   bound is about 90 bytes lower, spent on its HTX block overhead.

pub mod acl;
pub mod capture;
pub mod errors;
pub mod framing;
pub mod hashkey;
pub mod head;
pub mod locate;
pub mod message;
pub mod model;
pub mod rewrite;
pub mod rules;
pub mod timing;
pub mod validate;

#[cfg(test)]
mod fuzz_tests;
