//! Examples: what the wrapper does to given byte streams, read in given pieces.

use super::framing::State;
use super::*;

const H: &[u8] = b"x-q-test";

/// The threshold of the examples below: only targets longer than this are moved, so that both
/// regimes (passed in place, moved) show. The callback listener moves every query
/// ([`REWRITE_ABOVE`]); see [`every_query_is_moved_on_the_callback_listener`].
pub(super) const LONG: usize = 65_000;

/// The output for `chunks` read one after the other.
fn run(chunks: &[&[u8]]) -> (Vec<u8>, Rewriter) {
    let mut rw = Rewriter::new(H, LONG);
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
    let rewritten = format!("GET /adjust HTTP/1.1\r\nx-q-test: {query}\r\nHost: x\r\n\r\n{tail}");
    (original.into_bytes(), rewritten.into_bytes())
}

#[test]
fn short_targets_pass_in_place() {
    let req = b"GET /adjust?activity_kind=install&adid=aa HTTP/1.1\r\nHost: x\r\n\r\n\
        POST /adjust/event?x=1 HTTP/1.1\r\nContent-Length: 5\r\nContent-Type: a/b\r\n\r\nhello\
        GET /adjust HTTP/1.0\n\n";
    let mut rw = Rewriter::new(H, LONG);
    let mut out = Vec::new();
    assert_eq!(rw.feed(req, &mut out), req.len());
    assert!(out.is_empty());
    assert_eq!(rw.state(), State::Start);
    assert_eq!(rw.held().2, 0, "nothing held, nothing allocated");
}

#[test]
fn a_target_at_the_limit_is_untouched() {
    let q = "x".repeat(LONG - "/adjust?".len());
    let req = format!("GET /adjust?{q} HTTP/1.1\r\n\r\n");
    assert_eq!(run(&[req.as_bytes()]).0, req.as_bytes());
}

#[test]
fn every_query_is_moved_on_the_callback_listener() {
    let input: &[u8] = b"GET /adjust?activity_kind=install&adid=aa HTTP/1.1\r\nHost: x\r\n\r\n\
        POST /adjust/event?x=1 HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello\
        GET /adjust HTTP/1.0\n\n\
        GET /adjust?a=1#frag HTTP/1.1\r\n\r\n\
        GET /adjust? HTTP/1.1\r\n\r\n";
    let want: &[u8] =
        b"GET /adjust HTTP/1.1\r\nx-q-test: activity_kind=install&adid=aa\r\nHost: x\r\n\r\n\
        POST /adjust/event HTTP/1.1\r\nx-q-test: x=1\r\nContent-Length: 5\r\n\r\nhello\
        GET /adjust HTTP/1.0\n\n\
        GET /adjust HTTP/1.1\r\nx-q-test: a=1\r\n\r\n\
        GET /adjust HTTP/1.1\r\nx-q-test: \r\n\r\n";
    for size in [1, 5, 64, input.len()] {
        let mut rw = Rewriter::new(H, REWRITE_ABOVE);
        let mut output = Vec::new();
        for chunk in input.chunks(size) {
            let mut out = Vec::new();
            let k = rw.feed(chunk, &mut out);
            output.extend_from_slice(&chunk[..k]);
            output.extend_from_slice(&out);
        }
        assert!(output == want, "reads of {size} bytes");
        assert_eq!(rw.state(), State::Start);
        assert_eq!(rw.completed(), 5);
    }
    // A query with a byte `http::Uri` refuses is not moved: actix refuses it as before. So is a
    // fragment with a byte outside ASCII (httparse takes only valid UTF-8 there; dropped, an
    // invalid one would make a refused head acceptable).
    for bad in [
        &b"GET /adjust?a=1#\x80 HTTP/1.1\r\n\r\n"[..],
        &b"GET /adjust?a=<b> HTTP/1.1\r\n\r\n"[..],
        b"GET /adjust?a=\"b\" HTTP/1.1\r\n\r\n",
    ] {
        let mut rw = Rewriter::new(H, REWRITE_ABOVE);
        let mut out = Vec::new();
        let k = rw.feed(bad, &mut out);
        assert_eq!([&bad[..k], &out].concat(), bad);
        assert!(rw.passes_through());
    }
}

#[test]
fn a_long_target_is_rewritten() {
    let (original, rewritten) = long_get(100_000, "");
    let (output, rw) = run(&[&original]);
    assert_eq!(output, rewritten);
    assert_eq!(rw.state(), State::Start);
    assert!(!rw.held().0);
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
    let post =
        b"POST /adjust?b=2 HTTP/1.1\r\nHost: x\r\nContent-Length: 19\r\n\r\nGET /x?y HTTP/1.1\r\n";
    let (third, third_rewritten) = long_get(70_000, "");
    let last = b"GET /adjust?c=3 HTTP/1.1\r\nHost: x\r\n\r\n";
    let input = [&first[..], post, &third, last].concat();
    let want = [&first_rewritten[..], post, &third_rewritten, last].concat();
    let (output, rw) = run(&[&input]);
    assert_eq!(output, want);
    assert_eq!(rw.state(), State::Start);
    assert_eq!(rw.completed(), 4, "four request ends found");
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
        assert_eq!(rw.state(), State::Start);
        assert_eq!(rw.completed(), 3);
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
        assert_eq!(rw.state(), State::Start);
        assert!(!rw.held().0);
    }
}

#[test]
fn a_short_query_split_across_reads_comes_out_whole() {
    let req = b"GET /adjust?activity_kind=install&adid=aa HTTP/1.1\r\nHost: x\r\n\r\n";
    for at in 1..req.len() {
        let (output, rw) = run(&[&req[..at], &req[at..]]);
        assert_eq!(output, req, "split at {at}");
        assert_eq!(rw.state(), State::Start);
    }
}

#[test]
fn chunked_passes_through() {
    let req = b"POST /adjust HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    let (later, _) = long_get(100_000, "");
    let input = [&req[..], &later].concat();
    let (output, rw) = run(&[&input]);
    assert_eq!(output, input, "nothing rewritten after a chunked request");
    assert_eq!(rw.state(), State::PassThrough);
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
    assert_eq!(rw.state(), State::PassThrough);
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
            rw.state(),
            State::PassThrough,
            "{}",
            String::from_utf8_lossy(req)
        );
    }
    let (output, rw) = run(&[b"GET / HTTP/1.1\r\nConnection: keep-alive\r\n\r\n"]);
    assert_eq!(output, b"GET / HTTP/1.1\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(rw.state(), State::Start);
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
            rw.state(),
            State::PassThrough,
            "{}",
            String::from_utf8_lossy(head)
        );
    }
}

/// Where the scanner is laxer than httparse (bytes it skips), the head is framed; httparse
/// still refuses it after the wrapper, so actix answers 400 and closes the connection.
#[test]
fn heads_httparse_refuses_for_skipped_bytes_are_framed() {
    let (long, long_rewritten) = long_get(70_000, "");
    for head in [
        &b"GET /adjust HTTP/1.1\r\nX: a\x01b\r\n\r\n"[..],
        b"GET /adjust HTTP/1.1\r\nX: a\rb\r\n\r\n",
        b"\rGET /adjust HTTP/1.1\r\n\r\n",
    ] {
        let refused = |bytes: &[u8]| {
            let mut headers = [httparse::EMPTY_HEADER; 4];
            httparse::Request::new(&mut headers).parse(bytes).is_err()
        };
        let input = [head, &long].concat();
        let (output, rw) = run(&[&input]);
        assert_eq!(output, [head, &long_rewritten].concat());
        assert_eq!((rw.state(), rw.completed()), (State::Start, 2));
        assert!(refused(head) && refused(&output));
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
        assert_eq!(rw.state(), State::PassThrough);
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
        assert_eq!(rw.state(), State::PassThrough);
        let (holding, held, _) = rw.held();
        assert!(!holding && held == 0);
    }
}

#[test]
fn end_of_stream_releases_a_held_target() {
    let mut rw = Rewriter::new(H, LONG);
    let mut out = Vec::new();
    let partial = format!("GET /adjust?{}", "x".repeat(70_000));
    let k = rw.feed(partial.as_bytes(), &mut out);
    assert_eq!(k, "GET /adjust".len());
    assert!(out.is_empty());
    rw.eof(&mut out);
    assert_eq!(out, &partial.as_bytes()[k..]);
    assert_eq!(rw.state(), State::PassThrough);
}

/// Yields the given reads one by one (each in as many pieces as the read buffer needs), then
/// end of stream.
pub(super) struct Reads {
    reads: std::collections::VecDeque<Vec<u8>>,
    /// Bytes of the first read already yielded.
    at: usize,
}

impl Reads {
    pub(super) fn new(reads: impl IntoIterator<Item = Vec<u8>>) -> Self {
        Reads {
            reads: reads.into_iter().collect(),
            at: 0,
        }
    }
}

impl AsyncRead for Reads {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(next) = this.reads.front() {
            let n = (next.len() - this.at).min(buf.remaining());
            buf.put_slice(&next[this.at..this.at + n]);
            this.at += n;
            if this.at == next.len() {
                this.reads.pop_front();
                this.at = 0;
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
        let reads = input.chunks(read).map(<[u8]>::to_vec);
        let mut io = LongUri::with_header(Reads::new(reads), H, LONG);
        let got = read_all(&mut io, cap).await;
        assert!(got == want, "reads of {read}, buffer of {cap}");
    }
    // A stream ending inside a held target hands over what it held.
    let partial = format!("GET /adjust?{}", "x".repeat(70_000)).into_bytes();
    let mut io = LongUri::with_header(Reads::new([partial.clone()]), H, LONG);
    assert_eq!(read_all(&mut io, 8192).await, partial);
}

/// Yields what was pushed, then `Pending` (a client that went quiet); takes every write.
#[derive(Default)]
struct Quiet(std::collections::VecDeque<Vec<u8>>);

impl AsyncRead for Quiet {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let Some(next) = this.0.front_mut() else {
            return Poll::Pending;
        };
        let n = next.len().min(buf.remaining());
        buf.put_slice(&next[..n]);
        next.drain(..n);
        if next.is_empty() {
            this.0.pop_front();
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Quiet {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(b.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Pushes `bytes` in pieces of `piece` and reads until the client is quiet.
fn push(io: &mut LongUri<Quiet>, bytes: &[u8], piece: usize) {
    io.io.0.extend(bytes.chunks(piece).map(<[u8]>::to_vec));
    let waker = std::task::Waker::noop();
    let mut cx = Context::from_waker(waker);
    let mut scratch = vec![0; 16 << 10];
    loop {
        let mut buf = ReadBuf::new(&mut scratch);
        match Pin::new(&mut *io).poll_read(&mut cx, &mut buf) {
            Poll::Ready(Ok(())) if !buf.filled().is_empty() => {}
            _ => return,
        }
    }
}

#[test]
fn an_unfinished_head_is_reported_until_it_ends() {
    let mut io = LongUri::with_header(Quiet::default(), H, LONG);
    assert_eq!(io.undecided(), 0);
    // A head that arrives in one read is never held.
    push(
        &mut io,
        b"GET /adjust?a=1 HTTP/1.1\r\nHost: x\r\n\r\n",
        1 << 20,
    );
    assert_eq!(io.undecided(), 0);
    // One split across reads is, until its end.
    push(&mut io, b"GET /adjust?a=1 HTTP/1.1\r\nHo", 1 << 20);
    assert_eq!(io.undecided(), 28);
    push(&mut io, b"st: x\r\n\r\n", 1 << 20);
    assert_eq!(io.undecided(), 0);
    // A long target, held by the wrapper: its bytes and the room of the buffer holding them.
    let target = format!("GET /adjust?q={}", "x".repeat(100_000));
    push(&mut io, target.as_bytes(), 10_000);
    let (holding, len, capacity) = io.rw.held();
    assert!(holding);
    assert_eq!(io.undecided(), target.len() + capacity - len);
    // A body is not a head: an allowed client's body is read by its handler, under its limit.
    push(
        &mut io,
        b" HTTP/1.1\r\nContent-Length: 100000\r\n\r\nactivity_kind=install",
        1 << 20,
    );
    assert_eq!(io.undecided(), 0);
    assert!(matches!(io.rw.state(), State::Body { .. }));
}

#[test]
fn a_connection_passing_through_counts_what_it_read_until_an_answer() {
    let mut io = LongUri::with_header(Quiet::default(), H, LONG);
    push(
        &mut io,
        b"POST /adjust HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
        1 << 20,
    );
    assert!(io.rw.passes_through());
    let read = io.undecided();
    assert!(read >= 60, "{read}");
    push(&mut io, &[b'a'; 1 << 20], 8192);
    assert_eq!(io.undecided(), PASS_THROUGH_HELD + io.out.capacity());
    let waker = std::task::Waker::noop();
    let mut cx = Context::from_waker(waker);
    let written = Pin::new(&mut io).poll_write(&mut cx, b"HTTP/1.1 403 Forbidden\r\n");
    assert!(matches!(written, Poll::Ready(Ok(24))));
    assert_eq!(io.undecided(), 0);
}
