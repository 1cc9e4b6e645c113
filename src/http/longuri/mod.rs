//! Request targets moved out of actix's way.
//!
//! actix-http parses the request target into `http::Uri`, which checks a query byte by byte
//! (about a tenth of a worker's CPU for a 4.5 KB callback) and refuses more than 65,534 bytes: a
//! GET callback with a longer query string would get a 400 before any handler runs, and Adjust
//! drops a callback answered with a 4xx for good. The request head itself may be up to 128 KiB
//! (actix-http's `MAX_BUFFER_SIZE`; 431 beyond).
//!
//! [`LongUri`] wraps the TCP stream of the callback listener and watches the inbound bytes at
//! HTTP/1.x request boundaries. A request line whose origin-form target has a query,
//! `METHOD /path?QUERY HTTP/1.x`, reaches actix as `METHOD /path HTTP/1.x` followed by a header
//! `<query_header()>: QUERY`, and the handler takes the query from that header (every target
//! with a query is moved: [`REWRITE_ABOVE`] is 0). The scanner checks the query against the
//! bytes `http::Uri` accepts, eight at a time; a target with any other byte passes unchanged, and
//! actix refuses it as before. The header name carries a random per-process suffix, so no client
//! can send it. The rewritten head is 35 bytes longer than the original (header name, `: `, line
//! end, minus the `?`), so actix accepts original heads of up to 131,037 bytes. Everything else
//! passes unchanged, byte for byte:
//!
//! - Targets without a query (or not longer than the threshold, which tests set higher) are not
//!   copied: the bytes are scanned where actix reads them (only a query split across two reads
//!   is held until the target ends, to know its length).
//! - The header section is scanned, not held, to find the end of the request: `Content-Length`
//!   bytes of body are passed on, then the next request line is watched (keep-alive, pipelining).
//! - `Transfer-Encoding`, `Upgrade`, `Connection: upgrade`, `CONNECT`, a repeated or malformed
//!   `Content-Length`, anything this scanner does not recognise (its request line and header
//!   names are stricter than httparse), or a request line held past [`HOLD_LIMIT`]: the
//!   connection passes through untouched for the rest of its life, and actix handles it as it
//!   would without the wrapper (400 for a target it cannot parse, 431 for a head too large).
//! - Header values the scanner does not need are skipped to their line end, and a lone `\r`
//!   before a request line is skipped like an empty line: a head httparse refuses for such bytes
//!   (a control byte in a value, a `\r` without `\n`) can be framed here. actix answers it 400
//!   and closes the connection, so nothing after it is read, and the head stays refused.
//!
//! Writes pass straight through.
//!
//! # Layout
//! - this file: the stream adapter ([`LongUri`]) and the limits;
//! - `framing`: where each request ends (request line, header section, `Content-Length` body),
//!   and what makes the scanner let the connection pass through;
//! - `rewrite`: the request target (scanned, held while it may be long) and the rewrite, driving
//!   `framing` over each read;
//! - `tests` (examples) and `fuzz` (a differential property test against request boundaries as
//!   httparse and RFC 9112 find them).

use std::io;
use std::pin::Pin;
use std::sync::LazyLock;
use std::task::{Context, Poll, ready};

use actix_web::http::header::HeaderName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::held::Undecided;
use rewrite::Rewriter;

/// A byte class (a pattern) as a lookup table.
macro_rules! class {
    ($pattern:pat) => {{
        let mut table = [false; 256];
        let mut b = 0;
        while b < 256 {
            table[b] = matches!(b as u8, $pattern);
            b += 1;
        }
        table
    }};
}

mod framing;
mod rewrite;

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;

/// Targets with a query longer than this are rewritten: all of them. Moving a query costs a
/// copy of the request head; checking it in `http::Uri` costs more from a few hundred bytes on,
/// and callbacks are 0.5–5 KB. With only targets over 65,000 bytes moved, `http::Uri` took 9.5 %
/// of the workers' CPU on 4.5 KB callbacks (`perf`, `wal` sink, 64 connections); with all moved,
/// 0.1 %, the wrapper 1.2 % more, and the workers' CPU per callback went from 43.6 to 39.3 µs.
/// Any threshold up to 65,534 keeps long targets working.
pub const REWRITE_ABOVE: usize = 0;

/// A request line held longer than this (from its `?` on) is released unchanged and the
/// connection passes through; actix answers 431 for a head beyond 128 KiB anyway. (A head up to
/// this long is still read whole, so that its client reads the 431 rather than a reset.)
pub const HOLD_LIMIT: usize = 256 << 10;

/// At most this much is counted as held ([`Undecided`]) while a connection passes through: a head
/// actix is still reading (128 KiB at most) and what was held when the scanner gave up.
const PASS_THROUGH_HELD: usize = HOLD_LIMIT + (128 << 10);

/// Buffers kept between requests are given back above this capacity.
const KEEP_CAPACITY: usize = 16 << 10;

static QUERY_HEADER: LazyLock<HeaderName> = LazyLock::new(|| {
    let name = format!("x-adjust-sink-q-{:016x}", rand::random::<u64>());
    HeaderName::from_bytes(name.as_bytes()).expect("a valid header name")
});

/// The header carrying the query string of a rewritten request line (random per process).
pub fn query_header() -> &'static HeaderName {
    &QUERY_HEADER
}

/// A connection whose long request targets are rewritten (see the module docs).
pub struct LongUri<IO> {
    io: IO,
    rw: Rewriter,
    /// Output not yet delivered (held or injected bytes); delivered before anything is read.
    out: Vec<u8>,
    out_pos: usize,
    /// Bytes taken in of a request head that has not ended yet (see [`Undecided`]).
    undecided: usize,
}

impl<IO> LongUri<IO> {
    pub fn new(io: IO) -> Self {
        Self::with_header(io, query_header().as_str().as_bytes(), REWRITE_ABOVE)
    }

    fn with_header(io: IO, header: &'static [u8], rewrite_above: usize) -> Self {
        LongUri {
            io,
            rw: Rewriter::new(header, rewrite_above),
            out: Vec::new(),
            out_pos: 0,
            undecided: 0,
        }
    }

    /// Copies pending output into `buf`.
    fn deliver(&mut self, buf: &mut ReadBuf<'_>) {
        let n = buf.remaining().min(self.out.len() - self.out_pos);
        buf.put_slice(&self.out[self.out_pos..self.out_pos + n]);
        self.out_pos += n;
        if self.out_pos == self.out.len() {
            self.out_pos = 0;
            self.out.clear();
            if self.out.capacity() > KEEP_CAPACITY {
                self.out = Vec::new();
            }
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for LongUri<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            if this.out_pos < this.out.len() {
                this.deliver(buf);
                return Poll::Ready(Ok(()));
            }
            let before = buf.filled().len();
            if this.rw.passes_through() {
                ready!(Pin::new(&mut this.io).poll_read(cx, buf))?;
                this.undecided =
                    (this.undecided + buf.filled().len() - before).min(PASS_THROUGH_HELD);
                return Poll::Ready(Ok(()));
            }
            ready!(Pin::new(&mut this.io).poll_read(cx, buf))?;
            let after = buf.filled().len();
            if after == before {
                // End of stream: whatever is held goes to actix as it came.
                this.rw.eof(&mut this.out);
                if this.out.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                continue;
            }
            let verbatim = this.rw.feed(&buf.filled()[before..after], &mut this.out);
            this.undecided = if this.rw.passes_through() {
                (this.undecided + after - before).min(PASS_THROUGH_HELD)
            } else if this.rw.in_head() {
                this.undecided + after - before
            } else {
                0
            };
            buf.set_filled(before + verbatim);
            if this.out_pos < this.out.len() {
                this.deliver(buf);
            }
            if buf.filled().len() > before {
                return Poll::Ready(Ok(()));
            }
            // Everything read is held (a long target arriving): read on.
        }
    }
}

/// The bytes of a head still arriving, as far as the scanner follows the connection, plus the
/// room of its own buffers. Once it passes through, the scanner no longer sees where requests
/// end: everything read since the last answer counts, up to [`PASS_THROUGH_HELD`].
impl<IO> Undecided for LongUri<IO> {
    fn undecided(&self) -> usize {
        if self.undecided == 0 {
            return 0;
        }
        self.undecided + self.rw.spare() + self.out.capacity() - self.out.len()
    }
}

impl<IO> LongUri<IO> {
    /// An answer went out: in pass-through, the request read so far has been decided.
    fn answered(&mut self, written: &Poll<io::Result<usize>>) {
        if matches!(written, Poll::Ready(Ok(n)) if *n > 0) && self.rw.passes_through() {
            self.undecided = 0;
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for LongUri<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.io).poll_write(cx, buf);
        this.answered(&written);
        written
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.answered(&written);
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
