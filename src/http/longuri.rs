//! Request targets longer than actix-http can parse.
//!
//! actix-http parses the request target into `http::Uri`, which refuses more than 65,534 bytes:
//! a GET callback with a longer query string would get a 400 before any handler runs, and Adjust
//! drops a callback answered with a 4xx for good. The request head itself may be up to 128 KiB
//! (actix-http's `MAX_BUFFER_SIZE`; 431 beyond).
//!
//! [`LongUri`] wraps the TCP stream of the callback listener and watches the inbound bytes at
//! HTTP/1.x request boundaries. A request line whose origin-form target is longer than
//! [`REWRITE_ABOVE`] bytes, `METHOD /path?QUERY HTTP/1.x`, reaches actix as
//! `METHOD /path HTTP/1.x` followed by a header `<query_header()>: QUERY`, and the handler takes
//! the query from that header. The header name carries a random per-process suffix, so no client
//! can send it. The rewritten head is 35 bytes longer than the original (header name, `: `, line
//! end, minus the `?`), so actix accepts original heads of up to 131,037 bytes. Everything else
//! passes unchanged, byte for byte:
//!
//! - Shorter targets are not copied: the bytes are scanned where actix reads them (only a query
//!   split across two reads is held until the target ends, to know its length).
//! - The header section is scanned, not held, to find the end of the request: `Content-Length`
//!   bytes of body are passed on, then the next request line is watched (keep-alive, pipelining).
//! - `Transfer-Encoding`, `Upgrade`, `Connection: upgrade`, `CONNECT`, anything this scanner does
//!   not recognise (stricter than httparse), or a request line held past [`HOLD_LIMIT`]: the
//!   connection passes through untouched for the rest of its life, and actix handles it as it
//!   would without the wrapper (400 for a target it cannot parse, 431 for a head too large).
//!
//! Writes pass straight through.

use std::io;
use std::pin::Pin;
use std::sync::LazyLock;
use std::task::{Context, Poll, ready};

use actix_web::http::header::HeaderName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Targets longer than this are rewritten (`http::Uri` takes at most 65,534 bytes).
pub const REWRITE_ABOVE: usize = 65_000;

/// A request line held longer than this (from its `?` on) is released unchanged and the
/// connection passes through; actix answers 431 for a head beyond 128 KiB anyway.
pub const HOLD_LIMIT: usize = 256 << 10;

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
}

impl<IO> LongUri<IO> {
    pub fn new(io: IO) -> Self {
        Self::with_header(io, query_header().as_str().as_bytes())
    }

    fn with_header(io: IO, header: &'static [u8]) -> Self {
        LongUri {
            io,
            rw: Rewriter::new(header),
            out: Vec::new(),
            out_pos: 0,
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
            if this.rw.passes_through() {
                return Pin::new(&mut this.io).poll_read(cx, buf);
            }
            let before = buf.filled().len();
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

impl<IO: AsyncWrite + Unpin> AsyncWrite for LongUri<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
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

/// Where the scanner is in the inbound byte stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Before a request line; empty lines are skipped (as httparse does).
    Start,
    Method,
    /// The first byte of the target: `/` (origin form) or pass-through.
    TargetStart,
    Path,
    /// From the `?` on: held until the target ends.
    Query,
    /// After the target: `HTTP/1.` matched up to `at`, then the minor digit.
    Version {
        at: u8,
    },
    /// After the minor digit: `\r\n` or `\n`.
    VersionEnd {
        cr: bool,
    },
    /// The start of a header line, or of the empty line ending the head.
    LineStart,
    Name,
    Value {
        cr: bool,
    },
    /// `\r` of the empty line seen.
    EndCr,
    Body {
        remaining: u64,
    },
    /// Everything passes unchanged for the rest of the connection.
    PassThrough,
}

/// Headers that decide where the request ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    Other,
    ContentLength,
    TransferEncoding,
    Upgrade,
    Connection,
}

const HTTP_1: &[u8] = b"HTTP/1.";
const UPGRADE: &[u8] = b"upgrade";

/// The rewriting state machine, without I/O.
struct Rewriter {
    state: State,
    header: &'static [u8],
    /// Held bytes of earlier reads: from the `?` of the current target on.
    hold: Vec<u8>,
    holding: bool,
    method: [u8; 8],
    method_len: usize,
    target_len: usize,
    /// Query bytes before a `#` (the fragment is not part of the query).
    query_len: usize,
    fragment: bool,
    rewrite: bool,
    minor: u8,
    name: [u8; 20],
    name_len: usize,
    framing: Framing,
    value: [u8; 24],
    value_len: usize,
    /// Bytes of `upgrade` matched in a `Connection` value.
    upgrade_at: usize,
    content_length: Option<u64>,
}

/// Collects the output of one read: in place while it equals the input, in `out` from the first
/// difference on.
struct Emit<'a> {
    input: &'a [u8],
    verbatim: usize,
    diverged: bool,
    out: &'a mut Vec<u8>,
}

impl Emit<'_> {
    /// `input[from..to]` goes out unchanged (calls come in input order).
    fn pass(&mut self, from: usize, to: usize) {
        if from == to {
            return;
        }
        if !self.diverged && from == self.verbatim {
            self.verbatim = to;
        } else {
            self.diverged = true;
            self.out.extend_from_slice(&self.input[from..to]);
        }
    }

    fn inject(&mut self, bytes: &[u8]) {
        if !bytes.is_empty() {
            self.diverged = true;
            self.out.extend_from_slice(bytes);
        }
    }
}

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

/// httparse's `token` (methods and header names).
static TOKEN: [bool; 256] = class!(
    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9'
    | b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+'
    | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~'
);

/// Path bytes `http::Uri` accepts (`#` excluded: a fragment before the query passes through).
static PATH: [bool; 256] = class!(
    0x21 | 0x24..=0x3B | 0x3D | 0x40..=0x5F | 0x61..=0x7A | 0x7C | 0x7E | b'"' | b'{' | b'}'
);

/// Query bytes `http::Uri` accepts (`#` starts the fragment).
static QUERY: [bool; 256] = class!(0x21 | 0x24..=0x3B | 0x3D | 0x3F..=0x7E);

/// Fragment bytes httparse accepts (`http::Uri` drops the fragment unchecked).
static FRAGMENT: [bool; 256] = class!(0x21..=0x7E | 0x80..=0xFF);

fn is_token(b: u8) -> bool {
    TOKEN[b as usize]
}

/// How many leading bytes of `bytes` are in `class`.
fn span(bytes: &[u8], class: &[bool; 256]) -> usize {
    bytes
        .iter()
        .position(|&b| !class[b as usize])
        .unwrap_or(bytes.len())
}

impl Rewriter {
    fn new(header: &'static [u8]) -> Self {
        Rewriter {
            state: State::Start,
            header,
            hold: Vec::new(),
            holding: false,
            method: [0; 8],
            method_len: 0,
            target_len: 0,
            query_len: 0,
            fragment: false,
            rewrite: false,
            minor: 0,
            name: [0; 20],
            name_len: 0,
            framing: Framing::Other,
            value: [0; 24],
            value_len: 0,
            upgrade_at: 0,
            content_length: None,
        }
    }

    fn passes_through(&self) -> bool {
        self.state == State::PassThrough
    }

    /// End of the inbound stream: held bytes go out unchanged.
    fn eof(&mut self, out: &mut Vec<u8>) {
        if self.holding {
            out.extend_from_slice(&self.hold);
            self.drop_hold();
        }
        self.state = State::PassThrough;
    }

    fn drop_hold(&mut self) {
        self.holding = false;
        self.hold.clear();
        if self.hold.capacity() > KEEP_CAPACITY {
            self.hold = Vec::new();
        }
    }

    /// Held bytes go out unchanged. Bytes held from this read (`hs..`) stay in the pending run:
    /// when earlier reads held some, nothing of this read has gone out yet, so they follow.
    fn release(&mut self, e: &mut Emit<'_>) {
        if self.holding {
            e.inject(&self.hold);
            self.drop_hold();
        }
    }

    fn pass_through(&mut self, e: &mut Emit<'_>) {
        self.release(e);
        self.state = State::PassThrough;
    }

    /// Processes one read. Returns how many leading bytes of `input` go out unchanged where they
    /// are; the rest of the output for this read is appended to `out`.
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> usize {
        let mut e = Emit {
            input,
            verbatim: 0,
            diverged: false,
            out,
        };
        let n = input.len();
        // input[run..i] passes unchanged, except input[hs..i] while holding.
        let mut run = 0;
        let mut hs = 0;
        let mut i = 0;
        while i < n {
            match self.state {
                State::PassThrough => i = n,
                State::Body { remaining } => {
                    let take = remaining.min((n - i) as u64);
                    i += take as usize;
                    self.state = match remaining - take {
                        0 => State::Start,
                        left => State::Body { remaining: left },
                    };
                }
                State::Query => {
                    // The hot loop of a long target.
                    loop {
                        let len = if self.fragment {
                            span(&input[i..], &FRAGMENT)
                        } else {
                            let len = span(&input[i..], &QUERY);
                            self.query_len += len;
                            len
                        };
                        i += len;
                        self.target_len += len;
                        if i < n && input[i] == b'#' && !self.fragment {
                            self.fragment = true;
                            i += 1;
                            self.target_len += 1;
                        } else {
                            break;
                        }
                    }
                    if self.hold.len() + (i - hs) > HOLD_LIMIT {
                        self.pass_through(&mut e);
                    } else if i < n {
                        if input[i] == b' ' {
                            i += 1;
                            self.rewrite = self.target_len > REWRITE_ABOVE;
                            if !self.rewrite {
                                self.release(&mut e);
                            }
                            self.state = State::Version { at: 0 };
                        } else {
                            self.pass_through(&mut e);
                        }
                    }
                }
                State::Path => {
                    let len = span(&input[i..], &PATH);
                    i += len;
                    self.target_len += len;
                    if i < n {
                        i += 1;
                        match input[i - 1] {
                            b'?' => {
                                self.target_len += 1;
                                self.query_len = 0;
                                self.fragment = false;
                                self.holding = true;
                                hs = i - 1;
                                self.state = State::Query;
                            }
                            b' ' => {
                                self.rewrite = false;
                                self.state = State::Version { at: 0 };
                            }
                            _ => self.pass_through(&mut e),
                        }
                    }
                }
                State::Value { cr: false } if self.framing == Framing::Other => {
                    // A header that does not frame the request: on to the end of the line.
                    match memchr::memchr(b'\n', &input[i..]) {
                        Some(at) => {
                            i += at + 1;
                            self.end_of_header(&mut e);
                        }
                        None => i = n,
                    }
                }
                state => {
                    let b = input[i];
                    i += 1;
                    match state {
                        State::Start => match b {
                            b'\r' | b'\n' => {}
                            b if is_token(b) => {
                                self.method[0] = b;
                                self.method_len = 1;
                                self.state = State::Method;
                            }
                            _ => self.pass_through(&mut e),
                        },
                        State::Method => match b {
                            b' ' if &self.method[..self.method_len] == b"CONNECT" => {
                                self.pass_through(&mut e)
                            }
                            b' ' => self.state = State::TargetStart,
                            b if is_token(b) && self.method_len < self.method.len() => {
                                self.method[self.method_len] = b;
                                self.method_len += 1;
                            }
                            _ => self.pass_through(&mut e),
                        },
                        State::TargetStart => match b {
                            b'/' => {
                                self.target_len = 1;
                                self.state = State::Path;
                            }
                            _ => self.pass_through(&mut e),
                        },
                        State::Version { at } => {
                            if (at as usize) < HTTP_1.len() {
                                if b == HTTP_1[at as usize] {
                                    self.state = State::Version { at: at + 1 };
                                } else {
                                    self.pass_through(&mut e);
                                }
                            } else if b == b'0' || b == b'1' {
                                self.minor = b - b'0';
                                self.state = State::VersionEnd { cr: false };
                            } else {
                                self.pass_through(&mut e);
                            }
                        }
                        State::VersionEnd { cr } => match b {
                            b'\r' if !cr => self.state = State::VersionEnd { cr: true },
                            b'\n' => {
                                if self.rewrite {
                                    e.pass(run, hs);
                                    self.hold.extend_from_slice(&input[hs..i]);
                                    self.emit_rewritten(&mut e);
                                    self.drop_hold();
                                    run = i;
                                }
                                self.content_length = None;
                                self.state = State::LineStart;
                            }
                            _ => self.pass_through(&mut e),
                        },
                        State::LineStart => match b {
                            b'\r' => self.state = State::EndCr,
                            b'\n' => self.end_of_head(),
                            b if is_token(b) => {
                                self.name[0] = b.to_ascii_lowercase();
                                self.name_len = 1;
                                self.state = State::Name;
                            }
                            _ => self.pass_through(&mut e),
                        },
                        State::EndCr => match b {
                            b'\n' => self.end_of_head(),
                            _ => self.pass_through(&mut e),
                        },
                        State::Name => match b {
                            b':' => {
                                self.framing = self.name_framing();
                                if self.framing == Framing::TransferEncoding
                                    || self.framing == Framing::Upgrade
                                {
                                    self.pass_through(&mut e);
                                } else {
                                    self.value_len = 0;
                                    self.upgrade_at = 0;
                                    self.state = State::Value { cr: false };
                                }
                            }
                            b if is_token(b) => {
                                if self.name_len < self.name.len() {
                                    self.name[self.name_len] = b.to_ascii_lowercase();
                                }
                                self.name_len += 1;
                            }
                            _ => self.pass_through(&mut e),
                        },
                        State::Value { cr: true } => match b {
                            b'\n' => self.end_of_header(&mut e),
                            _ => self.pass_through(&mut e),
                        },
                        State::Value { cr: false } => match b {
                            b'\r' => self.state = State::Value { cr: true },
                            b'\n' => self.end_of_header(&mut e),
                            b => self.value_byte(b, &mut e),
                        },
                        State::Path | State::Query | State::Body { .. } | State::PassThrough => {
                            unreachable!("handled above")
                        }
                    }
                }
            }
        }
        if self.holding {
            e.pass(run, hs);
            self.hold.extend_from_slice(&input[hs..n]);
        } else {
            e.pass(run, n);
        }
        e.verbatim
    }

    /// `METHOD /path` has gone out; the rest of the request line and the query header follow.
    fn emit_rewritten(&self, e: &mut Emit<'_>) {
        e.inject(b" ");
        e.inject(HTTP_1);
        e.inject(&[b'0' + self.minor]);
        e.inject(b"\r\n");
        e.inject(self.header);
        e.inject(b": ");
        // hold = "?" QUERY ["#" FRAGMENT] " HTTP/1.x" EOL
        e.inject(&self.hold[1..1 + self.query_len]);
        e.inject(b"\r\n");
    }

    fn name_framing(&self) -> Framing {
        if self.name_len > self.name.len() {
            return Framing::Other;
        }
        match &self.name[..self.name_len] {
            b"content-length" => Framing::ContentLength,
            b"transfer-encoding" => Framing::TransferEncoding,
            b"upgrade" => Framing::Upgrade,
            b"connection" => Framing::Connection,
            _ => Framing::Other,
        }
    }

    fn value_byte(&mut self, b: u8, e: &mut Emit<'_>) {
        match self.framing {
            Framing::ContentLength => {
                if self.value_len < self.value.len() {
                    self.value[self.value_len] = b;
                    self.value_len += 1;
                } else {
                    self.pass_through(e);
                }
            }
            Framing::Connection => {
                // "upgrade" has no repeated letter: a mismatch restarts the match.
                let b = b.to_ascii_lowercase();
                if self.upgrade_at < UPGRADE.len() {
                    self.upgrade_at = if b == UPGRADE[self.upgrade_at] {
                        self.upgrade_at + 1
                    } else {
                        usize::from(b == UPGRADE[0])
                    };
                }
            }
            _ => {}
        }
    }

    fn end_of_header(&mut self, e: &mut Emit<'_>) {
        self.state = State::LineStart;
        match self.framing {
            Framing::ContentLength => {
                let v = self.value[..self.value_len].trim_ascii();
                let len = (!v.is_empty() && v.iter().all(u8::is_ascii_digit))
                    .then(|| std::str::from_utf8(v).ok()?.parse::<u64>().ok())
                    .flatten();
                match (len, self.content_length) {
                    (Some(len), None) => self.content_length = Some(len),
                    _ => self.pass_through(e),
                }
            }
            Framing::Connection if self.upgrade_at == UPGRADE.len() => self.pass_through(e),
            _ => {}
        }
    }

    fn end_of_head(&mut self) {
        self.state = match self.content_length.take() {
            Some(len) if len > 0 => State::Body { remaining: len },
            _ => State::Start,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &[u8] = b"x-q-test";

    /// The output for `chunks` read one after the other.
    fn run(chunks: &[&[u8]]) -> (Vec<u8>, Rewriter) {
        let mut rw = Rewriter::new(H);
        let mut output = Vec::new();
        for chunk in chunks {
            let mut out = Vec::new();
            let k = rw.feed(chunk, &mut out);
            output.extend_from_slice(&chunk[..k]);
            output.extend_from_slice(&out);
        }
        (output, rw)
    }

    fn long_get(query_len: usize, tail: &str) -> (Vec<u8>, Vec<u8>) {
        let query = format!("a=1&deeplink={}", "x".repeat(query_len - 13));
        assert_eq!(query.len(), query_len);
        let original = format!("GET /adjust?{query} HTTP/1.1\r\nHost: x\r\n\r\n{tail}");
        let rewritten =
            format!("GET /adjust HTTP/1.1\r\nx-q-test: {query}\r\nHost: x\r\n\r\n{tail}");
        (original.into_bytes(), rewritten.into_bytes())
    }

    #[test]
    fn short_targets_pass_in_place() {
        let req = b"GET /adjust?activity_kind=install&adid=aa HTTP/1.1\r\nHost: x\r\n\r\n\
            POST /adjust/event?x=1 HTTP/1.1\r\nContent-Length: 5\r\nContent-Type: a/b\r\n\r\nhello\
            GET /adjust HTTP/1.0\n\n";
        let mut rw = Rewriter::new(H);
        let mut out = Vec::new();
        assert_eq!(rw.feed(req, &mut out), req.len());
        assert!(out.is_empty());
        assert_eq!(rw.state, State::Start);
        assert_eq!(rw.hold.capacity(), 0, "nothing held, nothing allocated");
    }

    #[test]
    fn a_target_at_the_limit_is_untouched() {
        let q = "x".repeat(REWRITE_ABOVE - "/adjust?".len());
        let req = format!("GET /adjust?{q} HTTP/1.1\r\n\r\n");
        assert_eq!(run(&[req.as_bytes()]).0, req.as_bytes());
    }

    #[test]
    fn a_long_target_is_rewritten() {
        let (original, rewritten) = long_get(100_000, "");
        let (output, rw) = run(&[&original]);
        assert_eq!(output, rewritten);
        assert_eq!(rw.state, State::Start);
        assert!(!rw.holding);
    }

    #[test]
    fn the_fragment_is_not_part_of_the_query() {
        let q = "y".repeat(70_000);
        let req = format!("GET /adjust?a={q}#frag HTTP/1.0\n\n");
        let want = format!("GET /adjust HTTP/1.0\r\nx-q-test: a={q}\r\n\n");
        assert_eq!(run(&[req.as_bytes()]).0, want.as_bytes());
    }

    #[test]
    fn pipelined_requests_in_one_read() {
        let (first, first_rewritten) = long_get(100_000, "");
        let post = b"POST /adjust?b=2 HTTP/1.1\r\nHost: x\r\nContent-Length: 19\r\n\r\nGET /x?y HTTP/1.1\r\n";
        let (third, third_rewritten) = long_get(70_000, "");
        let last = b"GET /adjust?c=3 HTTP/1.1\r\nHost: x\r\n\r\n";
        let input = [&first[..], post, &third, last].concat();
        let want = [&first_rewritten[..], post, &third_rewritten, last].concat();
        let (output, rw) = run(&[&input]);
        assert_eq!(output, want);
        assert_eq!(rw.state, State::Start);
    }

    #[test]
    fn a_head_split_into_tiny_reads() {
        let post = b"POST /adjust?b=2 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc";
        let (long, long_rewritten) = long_get(66_000, "");
        let short = b"GET /adjust?c=3 HTTP/1.1\r\nHost: x\r\n\r\n";
        let input = [&post[..], &long, short].concat();
        let want = [&post[..], &long_rewritten, short].concat();
        for size in [1, 2, 3, 7, 1000, 65_536] {
            let chunks: Vec<&[u8]> = input.chunks(size).collect();
            let (output, rw) = run(&chunks);
            assert!(output == want, "reads of {size} bytes");
            assert_eq!(rw.state, State::Start);
        }
    }

    #[test]
    fn irregular_reads_of_a_mixed_stream() {
        let (long, long_rewritten) = long_get(80_000, "");
        let frag = format!("GET /adjust?a={}#f HTTP/1.0\n\n", "z".repeat(70_000));
        let frag_rewritten = format!(
            "GET /adjust HTTP/1.0\r\nx-q-test: a={}\r\n\n",
            "z".repeat(70_000)
        );
        let post = b"\r\nPOST /adjust?b=2 HTTP/1.1\r\ncontent-length:  4 \r\nX-Long: abcdefghijklmnopqrstuvwxyz0123456789\r\n\r\nGET ";
        let short = b"GET /adjust/install?c=3 HTTP/1.1\r\nConnection: keep-alive\r\n\r\n";
        let input = [&long[..], post, frag.as_bytes(), short, &long, short].concat();
        let want = [
            &long_rewritten[..],
            post,
            frag_rewritten.as_bytes(),
            short,
            &long_rewritten,
            short,
        ]
        .concat();
        let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
        for _ in 0..50 {
            let mut chunks = Vec::new();
            let mut rest = &input[..];
            while !rest.is_empty() {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let size = match seed % 4 {
                    0 => 1 + (seed >> 8) as usize % 4,
                    1 => 1 + (seed >> 8) as usize % 100,
                    _ => 1 + (seed >> 8) as usize % 40_000,
                };
                let (chunk, tail) = rest.split_at(size.min(rest.len()));
                chunks.push(chunk);
                rest = tail;
            }
            let (output, rw) = run(&chunks);
            assert!(
                output == want,
                "reads of {:?}",
                chunks.iter().map(|c| c.len()).collect::<Vec<_>>()
            );
            assert_eq!(rw.state, State::Start);
            assert!(!rw.holding);
        }
    }

    #[test]
    fn a_short_query_split_across_reads_comes_out_whole() {
        let req = b"GET /adjust?activity_kind=install&adid=aa HTTP/1.1\r\nHost: x\r\n\r\n";
        for at in 1..req.len() {
            let (output, rw) = run(&[&req[..at], &req[at..]]);
            assert_eq!(output, req, "split at {at}");
            assert_eq!(rw.state, State::Start);
        }
    }

    #[test]
    fn chunked_passes_through() {
        let req =
            b"POST /adjust HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
        let (later, _) = long_get(100_000, "");
        let input = [&req[..], &later].concat();
        let (output, rw) = run(&[&input]);
        assert_eq!(output, input, "nothing rewritten after a chunked request");
        assert_eq!(rw.state, State::PassThrough);
    }

    #[test]
    fn a_long_chunked_request_is_rewritten_then_passes_through() {
        let (original, rewritten) = long_get(70_000, "");
        let te = b"Transfer-Encoding: chunked\r\n";
        let at = original.len() - 2;
        let input = [&original[..at], te, b"\r\n0\r\n\r\n"].concat();
        let at = rewritten.len() - 2;
        let want = [&rewritten[..at], te, b"\r\n0\r\n\r\n"].concat();
        let (output, rw) = run(&[&input]);
        assert_eq!(output, want);
        assert_eq!(rw.state, State::PassThrough);
    }

    #[test]
    fn upgrade_and_connect_pass_through() {
        for req in [
            &b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"[..],
            b"GET /ws HTTP/1.1\r\nConnection: keep-alive, UPGRADE\r\n\r\n",
            b"CONNECT example.com:443 HTTP/1.1\r\n\r\n",
            b"OPTIONS * HTTP/1.1\r\n\r\n",
            b"GET http://example.com/adjust?x=1 HTTP/1.1\r\n\r\n",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        ] {
            let (output, rw) = run(&[req]);
            assert_eq!(output, req);
            assert_eq!(
                rw.state,
                State::PassThrough,
                "{}",
                String::from_utf8_lossy(req)
            );
        }
        let (output, rw) = run(&[b"GET / HTTP/1.1\r\nConnection: keep-alive\r\n\r\n"]);
        assert_eq!(output, b"GET / HTTP/1.1\r\nConnection: keep-alive\r\n\r\n");
        assert_eq!(rw.state, State::Start);
    }

    #[test]
    fn unexpected_heads_pass_through_unchanged() {
        let (long, _) = long_get(70_000, "");
        for head in [
            &b"GET /adjust HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n"[..],
            b"GET /adjust HTTP/1.1\r\nContent-Length: +1\r\n\r\n",
            b"GET /adjust HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            b"GET /adjust HTTP/1.1\r\n folded\r\n\r\n",
            b"GET /adjust HTTP/1.1\r\nName : v\r\n\r\n",
            b"GET /adjust HTTP/1.1\rX\n\r\n",
            b"GET  /adjust HTTP/1.1\r\n\r\n",
            b"GET /adj<ust HTTP/1.1\r\n\r\n",
            b"GET /adjust?a=<b> HTTP/1.1\r\n\r\n",
            b"GET /adjust HTTP/1.2\r\n\r\n",
            b"\x16\x03\x01\x02\x00",
        ] {
            let input = [head, &long].concat();
            let (output, rw) = run(&[&input]);
            assert_eq!(output, input, "{}", String::from_utf8_lossy(head));
            assert_eq!(
                rw.state,
                State::PassThrough,
                "{}",
                String::from_utf8_lossy(head)
            );
        }
    }

    #[test]
    fn a_long_target_with_a_bad_version_goes_out_unchanged() {
        let q = "x".repeat(70_000);
        let req = format!("GET /adjust?{q} HTTP/2.0\r\n\r\n");
        for size in [100, 70_000, 200_000] {
            let chunks: Vec<&[u8]> = req.as_bytes().chunks(size).collect();
            let (output, rw) = run(&chunks);
            assert!(output == req.as_bytes(), "reads of {size} bytes");
            assert_eq!(rw.state, State::PassThrough);
        }
    }

    #[test]
    fn an_oversized_request_line_passes_through() {
        let q = "x".repeat(HOLD_LIMIT + 10);
        let req = format!("GET /adjust?{q} HTTP/1.1\r\nHost: x\r\n\r\n");
        for size in [1000, 65_536, 1 << 20] {
            let chunks: Vec<&[u8]> = req.as_bytes().chunks(size).collect();
            let (output, rw) = run(&chunks);
            assert!(output == req.as_bytes(), "reads of {size} bytes");
            assert_eq!(rw.state, State::PassThrough);
            assert!(!rw.holding && rw.hold.is_empty());
        }
    }

    #[test]
    fn end_of_stream_releases_a_held_target() {
        let mut rw = Rewriter::new(H);
        let mut out = Vec::new();
        let partial = format!("GET /adjust?{}", "x".repeat(70_000));
        let k = rw.feed(partial.as_bytes(), &mut out);
        assert_eq!(k, "GET /adjust".len());
        assert!(out.is_empty());
        rw.eof(&mut out);
        assert_eq!(out, &partial.as_bytes()[k..]);
        assert_eq!(rw.state, State::PassThrough);
    }

    /// Yields the given reads one by one, then end of stream.
    struct Reads(std::collections::VecDeque<Vec<u8>>);

    impl AsyncRead for Reads {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let this = self.get_mut();
            if let Some(mut next) = this.0.pop_front() {
                let n = next.len().min(buf.remaining());
                buf.put_slice(&next[..n]);
                if n < next.len() {
                    this.0.push_front(next.split_off(n));
                }
            }
            Poll::Ready(Ok(()))
        }
    }

    /// Reads `io` to its end through a read buffer of `cap` bytes.
    async fn read_all(io: &mut LongUri<Reads>, cap: usize) -> Vec<u8> {
        let mut all = Vec::new();
        let mut scratch = vec![0; cap];
        loop {
            let mut buf = ReadBuf::new(&mut scratch);
            std::future::poll_fn(|cx| Pin::new(&mut *io).poll_read(cx, &mut buf))
                .await
                .unwrap();
            if buf.filled().is_empty() {
                return all;
            }
            all.extend_from_slice(buf.filled());
        }
    }

    #[tokio::test]
    async fn the_stream_delivers_rewritten_bytes_through_small_buffers() {
        let (long, long_rewritten) = long_get(100_000, "");
        let short = b"GET /adjust?c=3 HTTP/1.1\r\nContent-Length: 2\r\n\r\nok".to_vec();
        let input = [&short[..], &long, &short].concat();
        let want = [&short[..], &long_rewritten, &short].concat();
        for (read, cap) in [(1 << 20, 1 << 20), (10_000, 8192), (7, 1000), (65_536, 3)] {
            let reads = input.chunks(read).map(<[u8]>::to_vec).collect();
            let mut io = LongUri::with_header(Reads(reads), H);
            let got = read_all(&mut io, cap).await;
            assert!(got == want, "reads of {read}, buffer of {cap}");
        }
        // A stream ending inside a held target hands over what it held.
        let partial = format!("GET /adjust?{}", "x".repeat(70_000)).into_bytes();
        let mut io = LongUri::with_header(Reads([partial.clone()].into()), H);
        assert_eq!(read_all(&mut io, 8192).await, partial);
    }
}
