//! HTTP/1.1, sans-io: bytes in, heads and body boundaries out, `now` passed in.
//! A data shard (or a fuzzer) feeds what it read and acts on what comes back:
//! `head` finds and parses a request or response head, `validate` decides what the
//! head means for framing and keep-alive (and refuses smuggling attempts), `framing`
//! follows the body to its end so pipelined bytes go to the next message, `rewrite`
//! builds the head sent on, `errors` holds HAProxy's error responses, and `message`
//! ties head, checks and body into one event stream per direction for the shard.
//! Nothing here opens a socket, blocks, or reads the clock.

pub mod errors;
pub mod framing;
pub mod head;
pub mod message;
pub mod rewrite;
pub mod validate;

#[cfg(test)]
mod fuzz_tests;
