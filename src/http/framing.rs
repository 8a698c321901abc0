//! Follows a message body to its end, in either direction: a known length,
//! `chunked` (sizes, extensions, the CRLF after each chunk's data, trailers, the
//! final blank line), a response delimited by the server's close, or a tunnel.
//! Bytes after the end belong to the next message (pipelining).
//!
//! The decoder only measures: the shard forwards body bytes unchanged (chunk
//! framing included) and keeps whatever was not consumed for the next call. When
//! `data_ahead` says the next N bytes are raw payload (a `Content-Length` body or
//! one chunk's data), the shard may move them without showing them here — spliced
//! — and report them with `skip`. A framing line or trailer block is consumed only
//! once it has arrived whole, so the caller keeps at most one line (bounded by
//! `max_line`) between reads.
//!
//! Never allocates, never does I/O.

use super::head::find_blank_line;
use super::validate::BodyKind;

/// Largest chunk size accepted, as HAProxy (`h1_parse_chunk_size` refuses sizes
/// of 2^56 and more).
const MAX_CHUNK: u64 = (1 << 56) - 1;

/// Trailer header slots checked by `httparse`.
const TRAILER_SLOTS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Length { remaining: u64 },
    ChunkSize,
    ChunkData { remaining: u64 },
    ChunkDataEnd,
    Trailers,
    UntilClose,
    Done,
}

/// What the next bytes of the input are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// This many bytes of payload.
    Data(usize),
    /// This many bytes of chunk framing: a size line or the CRLF after data.
    Framing(usize),
    /// The message ends after this many more bytes (0 for a length-delimited
    /// body; the last-chunk's trailers and blank line for a chunked one).
    End(usize),
    /// A framing line is incomplete: call again with more bytes.
    NeedMore,
}

/// Why a body could not be followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FramingError {
    /// A chunk-size line that is not hex digits, optional blanks and an extension.
    ChunkSize,
    /// A chunk size of 2^56 or more.
    ChunkTooLarge,
    /// The chunk's data is not followed by CRLF.
    ChunkEnd,
    /// A chunk-size line or the trailer block longer than the limit.
    LineTooLong,
    /// A malformed trailer field.
    Trailer,
    /// The peer closed before the end of the body.
    Truncated,
}

/// Bytes consumed by `feed`, and whether the message ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub consumed: usize,
    pub done: bool,
}

/// The body decoder of one message.
#[derive(Debug, Clone)]
pub struct BodyDecoder {
    state: State,
    /// Longest chunk-size line or trailer block accepted (the head limit).
    max_line: usize,
}

impl BodyDecoder {
    /// A decoder for a body framed as `kind`; a tunnel is followed like a
    /// close-delimited body.
    pub fn new(kind: BodyKind, max_line: usize) -> BodyDecoder {
        let state = match kind {
            BodyKind::None | BodyKind::Length(0) => State::Done,
            BodyKind::Length(n) => State::Length { remaining: n },
            BodyKind::Chunked => State::ChunkSize,
            BodyKind::UntilClose | BodyKind::Tunnel => State::UntilClose,
        };
        BodyDecoder { state, max_line }
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Payload bytes that come next and need no parsing: what is left of a
    /// `Content-Length` body or of the current chunk, `u64::MAX` until close, 0
    /// when framing comes next.
    pub fn data_ahead(&self) -> u64 {
        match self.state {
            State::Length { remaining } | State::ChunkData { remaining } => remaining,
            State::UntilClose => u64::MAX,
            _ => 0,
        }
    }

    /// The caller moved `n` payload bytes itself (`n <= data_ahead()`).
    pub fn skip(&mut self, n: u64) {
        debug_assert!(n <= self.data_ahead());
        match &mut self.state {
            State::Length { remaining } => {
                *remaining = remaining.saturating_sub(n);
                if *remaining == 0 {
                    self.state = State::Done;
                }
            }
            State::ChunkData { remaining } => {
                *remaining = remaining.saturating_sub(n);
                if *remaining == 0 {
                    self.state = State::ChunkDataEnd;
                }
            }
            _ => {}
        }
    }

    /// The peer closed its side: fine only where the body ends with the close.
    pub fn on_eof(&mut self) -> Result<(), FramingError> {
        match self.state {
            State::UntilClose | State::Done => {
                self.state = State::Done;
                Ok(())
            }
            _ => Err(FramingError::Truncated),
        }
    }

    /// Classifies the bytes at the start of `input` and consumes them.
    pub fn next(&mut self, input: &[u8]) -> Result<Step, FramingError> {
        match self.state {
            State::Done => Ok(Step::End(0)),
            State::Length { remaining } | State::ChunkData { remaining } => {
                if input.is_empty() {
                    return Ok(Step::NeedMore);
                }
                let n = remaining.min(input.len() as u64);
                self.skip(n);
                Ok(Step::Data(n as usize))
            }
            State::UntilClose => Ok(if input.is_empty() {
                Step::NeedMore
            } else {
                Step::Data(input.len())
            }),
            State::ChunkSize => {
                let window = &input[..input.len().min(self.max_line)];
                let Some(lf) = window.iter().position(|&b| b == b'\n') else {
                    return if input.len() >= self.max_line {
                        Err(FramingError::LineTooLong)
                    } else {
                        Ok(Step::NeedMore)
                    };
                };
                let size = parse_chunk_size(&input[..lf])?;
                self.state = if size == 0 {
                    State::Trailers
                } else {
                    State::ChunkData { remaining: size }
                };
                Ok(Step::Framing(lf + 1))
            }
            State::ChunkDataEnd => match input {
                [b'\n', ..] => {
                    self.state = State::ChunkSize;
                    Ok(Step::Framing(1))
                }
                [b'\r', b'\n', ..] => {
                    self.state = State::ChunkSize;
                    Ok(Step::Framing(2))
                }
                [] | [b'\r'] => Ok(Step::NeedMore),
                _ => Err(FramingError::ChunkEnd),
            },
            State::Trailers => {
                let end = match input {
                    [b'\n', ..] => Some(1),
                    [b'\r', b'\n', ..] => Some(2),
                    [] | [b'\r'] => None,
                    [b'\r', ..] => return Err(FramingError::Trailer),
                    _ => find_blank_line(input, 0),
                };
                let Some(end) = end.filter(|&e| e <= self.max_line) else {
                    return if input.len() >= self.max_line {
                        Err(FramingError::LineTooLong)
                    } else {
                        Ok(Step::NeedMore)
                    };
                };
                if end > 2 {
                    let mut slots = [httparse::EMPTY_HEADER; TRAILER_SLOTS];
                    match httparse::parse_headers(&input[..end], &mut slots) {
                        Ok(httparse::Status::Complete((n, _))) if n == end => {}
                        _ => return Err(FramingError::Trailer),
                    }
                }
                self.state = State::Done;
                Ok(Step::End(end))
            }
        }
    }

    /// Consumes everything in `input` that belongs to this message: as many steps
    /// as the bytes allow.
    pub fn feed(&mut self, input: &[u8]) -> Result<Progress, FramingError> {
        let mut consumed = 0;
        loop {
            match self.next(&input[consumed..])? {
                Step::Data(n) | Step::Framing(n) => consumed += n,
                Step::End(n) => {
                    return Ok(Progress {
                        consumed: consumed + n,
                        done: true,
                    })
                }
                Step::NeedMore => {
                    return Ok(Progress {
                        consumed,
                        done: false,
                    })
                }
            }
        }
    }
}

/// `1*HEXDIG *BWS [ ";" extension ] [CR]` (the LF already cut off). Extensions are
/// skipped to the end of the line, as HAProxy does; a CR elsewhere is refused.
fn parse_chunk_size(line: &[u8]) -> Result<u64, FramingError> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return Err(FramingError::ChunkSize);
    }
    let mut size: u64 = 0;
    for &d in &line[..digits] {
        let v = (d as char).to_digit(16).unwrap_or(0);
        size = (size << 4) | u64::from(v);
        if size > MAX_CHUNK {
            return Err(FramingError::ChunkTooLarge);
        }
    }
    let rest = &line[digits..];
    let rest = &rest[rest
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count()..];
    match rest.first() {
        None => Ok(size),
        Some(b';') if !rest.contains(&b'\r') => Ok(size),
        _ => Err(FramingError::ChunkSize),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(kind: BodyKind, input: &[u8]) -> Result<Progress, FramingError> {
        BodyDecoder::new(kind, 1024).feed(input)
    }

    #[test]
    fn content_length_stops_at_the_next_message() {
        let input = b"helloGET / HTTP/1.1\r\n\r\n";
        assert_eq!(
            run(BodyKind::Length(5), input),
            Ok(Progress {
                consumed: 5,
                done: true
            })
        );
        let mut d = BodyDecoder::new(BodyKind::Length(5), 1024);
        assert_eq!(
            d.feed(b"hel"),
            Ok(Progress {
                consumed: 3,
                done: false
            })
        );
        assert_eq!(d.data_ahead(), 2);
        assert_eq!(
            d.feed(b"lo!"),
            Ok(Progress {
                consumed: 2,
                done: true
            })
        );
        assert_eq!(
            run(BodyKind::None, b"x"),
            Ok(Progress {
                consumed: 0,
                done: true
            })
        );
    }

    #[test]
    fn chunked_with_extensions_and_trailers() {
        let body =
            b"5;name=\"v\"\r\nhello\r\nA \r\n0123456789\r\n0\r\nX-Sum: 1\r\nY: 2\r\n\r\nNEXT";
        let n = body.len() - 4;
        assert_eq!(
            run(BodyKind::Chunked, body),
            Ok(Progress {
                consumed: n,
                done: true
            })
        );
        let mut d = BodyDecoder::new(BodyKind::Chunked, 1024);
        let mut at = 0;
        let mut seen = Vec::new();
        loop {
            let s = d.next(&body[at..]).unwrap();
            seen.push(s);
            match s {
                Step::Data(k) | Step::Framing(k) => at += k,
                Step::End(k) => {
                    at += k;
                    break;
                }
                Step::NeedMore => break,
            }
        }
        assert_eq!(
            seen,
            [
                Step::Framing(12),
                Step::Data(5),
                Step::Framing(2),
                Step::Framing(4),
                Step::Data(10),
                Step::Framing(2),
                Step::Framing(3),
                Step::End(18),
            ]
        );
        assert_eq!(at, n);
        // Without trailers, bare LF endings.
        assert_eq!(
            run(BodyKind::Chunked, b"1\nx\n0\n\n"),
            Ok(Progress {
                consumed: 7,
                done: true
            })
        );
    }

    #[test]
    fn chunked_waits_for_whole_lines() {
        let body = b"10\r\n0123456789abcdef\r\n0\r\n\r\n";
        for cut in 0..body.len() {
            let mut d = BodyDecoder::new(BodyKind::Chunked, 1024);
            let first = d.feed(&body[..cut]).unwrap();
            assert!(!first.done, "cut {cut}");
            let rest = d.feed(&body[first.consumed..]).unwrap();
            assert_eq!(first.consumed + rest.consumed, body.len(), "cut {cut}");
            assert!(rest.done);
        }
    }

    #[test]
    fn data_ahead_lets_the_shard_splice_chunk_data() {
        let mut d = BodyDecoder::new(BodyKind::Chunked, 1024);
        assert_eq!(d.next(b"400\r\n"), Ok(Step::Framing(5)));
        assert_eq!(d.data_ahead(), 1024);
        d.skip(1000);
        assert_eq!(d.data_ahead(), 24);
        d.skip(24);
        assert_eq!(d.data_ahead(), 0);
        assert_eq!(
            d.feed(b"\r\n0\r\n\r\n"),
            Ok(Progress {
                consumed: 7,
                done: true
            })
        );
    }

    #[test]
    fn chunked_errors() {
        let cases: [(&[u8], FramingError); 8] = [
            (b"x\r\n", FramingError::ChunkSize),
            (b"\r\n", FramingError::ChunkSize),
            (b"-1\r\n", FramingError::ChunkSize),
            (b"1 x\r\n", FramingError::ChunkSize),
            (b"1;a\rb\r\n", FramingError::ChunkSize),
            (b"100000000000000\r\n", FramingError::ChunkTooLarge),
            (b"1\r\nxy\r\n", FramingError::ChunkEnd),
            (b"0\r\nbad trailer\r\n\r\n", FramingError::Trailer),
        ];
        for (input, want) in cases {
            assert_eq!(
                run(BodyKind::Chunked, input),
                Err(want),
                "{}",
                String::from_utf8_lossy(input)
            );
        }
        assert_eq!(
            run(BodyKind::Chunked, &[b'1'; 1024]),
            Err(FramingError::LineTooLong)
        );
        assert_eq!(
            run(BodyKind::Chunked, b"FFFFFFFFFFFFFF\r\n"),
            Ok(Progress {
                consumed: 16,
                done: false
            })
        );
    }

    #[test]
    fn close_delimited_and_eof() {
        let mut d = BodyDecoder::new(BodyKind::UntilClose, 1024);
        assert_eq!(
            d.feed(b"abc"),
            Ok(Progress {
                consumed: 3,
                done: false
            })
        );
        assert_eq!(d.data_ahead(), u64::MAX);
        assert_eq!(d.on_eof(), Ok(()));
        assert!(d.is_done());
        let mut d = BodyDecoder::new(BodyKind::Length(4), 1024);
        d.feed(b"ab").unwrap();
        assert_eq!(d.on_eof(), Err(FramingError::Truncated));
        let mut d = BodyDecoder::new(BodyKind::Chunked, 1024);
        assert_eq!(d.on_eof(), Err(FramingError::Truncated));
    }
}
