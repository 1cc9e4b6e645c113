//! Differential property test: the wrapper against httparse and RFC 9112 framing (`reference`).
//!
//! Inputs are pipelines of HTTP/1.1 requests (CRLF and bare-LF line ends, short targets and
//! targets around 64 KiB and around [`HOLD_LIMIT`], `Content-Length` bodies holding other
//! requests, chunked bodies with extensions and trailers) with flaws mixed in (repeated or
//! malformed `Content-Length`, `Content-Length` with `Transfer-Encoding`, obs-fold lines, upgrades,
//! control bytes, odd methods, targets and versions), garbage, and a cut at a random point,
//! delivered in reads of random sizes. For every input:
//!
//! 1. the wrapper does not panic, and its output is the same whatever the reads (one read,
//!    random reads, and through [`LongUri`] with a random read buffer);
//! 2. every request end the wrapper finds is the reference's (checked at each reference head and
//!    body end: the wrapper is there too, in the same state), or the wrapper has let the
//!    connection pass through; past a head httparse refuses (actix answers 400 and closes the
//!    connection) the wrapper is free, but httparse must still refuse what it makes of that head;
//! 3. requests the wrapper must refuse (`Transfer-Encoding`, upgrades, `CONNECT`, repeated or
//!    malformed `Content-Length`, a target held past [`HOLD_LIMIT`]) are refused before their
//!    head ends;
//! 4. the output is the input with each framed request's long target moved into the header, and
//!    the rest byte for byte (or, for a request cut short or refused after its request line, that
//!    line rewritten); each rewritten request parses with httparse, with the query in the header;
//! 5. flawless requests at the start of a pipeline are framed by both and never refused.

use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use proptest::prelude::*;
use tokio::io::{AsyncRead, ReadBuf};

use super::framing::State;
use super::rewrite::Rewriter;
use super::tests::Reads;
use super::{HOLD_LIMIT, LongUri};
use crate::fuzzing;
use input::{Case, case, input, reads};
use reference::{Reference, Req, Stop};

mod input;
mod reference;

const H: &[u8] = b"x-q-fuzz";

#[test]
fn the_wrapper_frames_like_httparse_or_passes_through() {
    fuzzing::check(
        "longuri::the_wrapper_frames_like_httparse_or_passes_through",
        3000,
        case(),
        |case| check(&case),
    );
}

// ---- Running the wrapper ----

/// The wrapper's state after the read ending at a reference checkpoint.
struct Seen {
    completed: u64,
    state: State,
}

/// Feeds `input` in reads ending at `cuts` (ascending, the last at the end); returns the output
/// and the wrapper's state after each cut in `checkpoints`, and at the end before end of stream.
fn feed(
    input: &[u8],
    cuts: &[usize],
    checkpoints: &[usize],
    rewrite_above: usize,
) -> (Vec<u8>, Vec<Seen>, Seen) {
    let mut rw = Rewriter::new(H, rewrite_above);
    let mut output = Vec::new();
    let mut seen = Vec::new();
    let mut at = 0;
    for &cut in cuts {
        let mut out = Vec::new();
        let chunk = &input[at..cut];
        let verbatim = rw.feed(chunk, &mut out);
        output.extend_from_slice(&chunk[..verbatim]);
        output.extend_from_slice(&out);
        at = cut;
        if checkpoints.binary_search(&cut).is_ok() {
            seen.push(Seen {
                completed: rw.completed(),
                state: rw.state(),
            });
        }
    }
    let last = Seen {
        completed: rw.completed(),
        state: rw.state(),
    };
    let mut out = Vec::new();
    rw.eof(&mut out);
    output.extend_from_slice(&out);
    (output, seen, last)
}

/// Reads everything through [`LongUri`] with a read buffer of `buffer` bytes.
fn read_through_adapter(input: &[u8], cuts: &[usize], case: &Case) -> Vec<u8> {
    let mut reads = Vec::new();
    let mut at = 0;
    for &cut in cuts {
        reads.push(input[at..cut].to_vec());
        at = cut;
    }
    let mut io = LongUri::with_header(Reads::new(reads), H, case.rewrite_above);
    let mut cx = Context::from_waker(Waker::noop());
    let mut scratch = vec![0; case.buffer];
    let mut all = Vec::new();
    loop {
        let mut buf = ReadBuf::new(&mut scratch);
        match Pin::new(&mut io).poll_read(&mut cx, &mut buf) {
            Poll::Ready(Ok(())) if buf.filled().is_empty() => return all,
            Poll::Ready(Ok(())) => all.extend_from_slice(buf.filled()),
            other => panic!("in-memory reads are always ready: {other:?}"),
        }
    }
}

// ---- Expected output ----

/// Origin-form targets longer than `rewrite_above` with a query: `(path, query)`.
fn long_query(target: &[u8], rewrite_above: usize) -> Option<(&[u8], &[u8])> {
    let q = target.iter().position(|&b| b == b'?')?;
    if target.first() != Some(&b'/') || target.len() <= rewrite_above || target[..q].contains(&b'#')
    {
        return None;
    }
    let query = &target[q + 1..];
    let end = query.iter().position(|&b| b == b'#').unwrap_or(query.len());
    Some((&target[..q], &query[..end]))
}

/// An origin-form target the wrapper would hold for longer than [`HOLD_LIMIT`] (from its `?`).
fn held_too_long(target: &[u8]) -> bool {
    let from_query = target
        .iter()
        .position(|&b| b == b'?')
        .map(|q| target.len() - q);
    target.first() == Some(&b'/') && from_query.is_some_and(|n| n > HOLD_LIMIT)
}

/// Whether httparse refuses the head at the start of `bytes`.
fn httparse_refuses(bytes: &[u8]) -> bool {
    let mut headers = [httparse::EMPTY_HEADER; 97];
    httparse::Request::new(&mut headers).parse(bytes).is_err()
}

/// `METHOD path HTTP/1.x\r\n` + `<H>: query\r\n`.
fn rewritten_line(method: &[u8], path: &[u8], minor: u8, query: &[u8]) -> Vec<u8> {
    [
        method,
        b" ",
        path,
        b" HTTP/1.",
        &[b'0' + minor],
        b"\r\n",
        H,
        b": ",
        query,
        b"\r\n",
    ]
    .concat()
}

/// What the wrapper makes of a request it framed: the long target moved into the header (and
/// checked with httparse), or the bytes as they are.
fn expected_request(input: &[u8], r: &Req, rewrite_above: usize) -> Result<Vec<u8>, TestCaseError> {
    let end = r.end.expect("a framed request ends");
    let Some((path, query)) = long_query(&r.target, rewrite_above) else {
        return Ok(input[r.start..end].to_vec());
    };
    let line = rewritten_line(r.method.as_bytes(), path, r.minor, query);
    let out = [
        &input[r.start..r.line_start],
        &line,
        &input[r.line_end..end],
    ]
    .concat();
    // The rewritten head parses, with the query in the header.
    let mut headers = [httparse::EMPTY_HEADER; 97];
    let mut parsed = httparse::Request::new(&mut headers);
    let head_len = parsed.parse(&out);
    let body_start = out.len() - (end - r.head_end);
    prop_assert_eq!(head_len, Ok(httparse::Status::Complete(body_start)));
    prop_assert_eq!(parsed.method, Some(&r.method[..]));
    prop_assert_eq!(parsed.path.map(str::as_bytes), Some(path));
    prop_assert_eq!(parsed.version, Some(r.minor));
    let (first, rest) = parsed.headers.split_first().expect("the query header");
    prop_assert_eq!(first.name.as_bytes(), H);
    prop_assert_eq!(first.value, query);
    let rest: Vec<(String, Vec<u8>)> = rest
        .iter()
        .map(|h| (h.name.to_string(), h.value.to_vec()))
        .collect();
    prop_assert_eq!(&rest, &r.headers);
    Ok(out)
}

/// The tail of the input from a request the wrapper did not frame, with its request line
/// rewritten if the wrapper would have done that before stopping.
fn rewritten_tail(tail: &[u8], rewrite_above: usize) -> Option<Vec<u8>> {
    let line_start = reference::empty_lines(tail);
    let line = &tail[line_start..];
    let sp = line.iter().position(|&b| b == b' ')?;
    let (method, rest) = (&line[..sp], &line[sp + 1..]);
    let sp = rest.iter().position(|&b| b == b' ')?;
    let (target, rest) = (&rest[..sp], &rest[sp + 1..]);
    let (path, query) = long_query(target, rewrite_above)?;
    let (minor, eol) = match rest {
        [
            b'H',
            b'T',
            b'T',
            b'P',
            b'/',
            b'1',
            b'.',
            m @ (b'0' | b'1'),
            b'\r',
            b'\n',
            ..,
        ] => (m, 2),
        [
            b'H',
            b'T',
            b'T',
            b'P',
            b'/',
            b'1',
            b'.',
            m @ (b'0' | b'1'),
            b'\n',
            ..,
        ] => (m, 1),
        _ => return None,
    };
    let line_end = line_start + method.len() + target.len() + 2 + 8 + eol;
    let line = rewritten_line(method, path, *minor - b'0', query);
    Some([&tail[..line_start], &line, &tail[line_end..]].concat())
}

// ---- The property ----

fn check(case: &Case) -> Result<(), TestCaseError> {
    let (input, clean_ends) = input(case);
    let reference = reference::frame(&input);
    let Reference { reqs, stop } = &reference;

    // Reads end at random points and at every reference head and body end.
    let mut checkpoints: Vec<usize> = reqs
        .iter()
        .flat_map(|r| [Some(r.head_end), r.end])
        .flatten()
        .collect();
    checkpoints.dedup();
    let random = reads(input.len(), case);
    let mut cuts: Vec<usize> = random.iter().chain(&checkpoints).copied().collect();
    cuts.sort_unstable();
    cuts.dedup();
    let (output, seen, last) = feed(&input, &cuts, &checkpoints, case.rewrite_above);

    // 1. The same output whatever the reads.
    let (one_read, _, one_last) = feed(&input, &[input.len()], &[], case.rewrite_above);
    prop_assert!(one_read == output, "one read and many reads differ");
    prop_assert_eq!(
        (one_last.completed, one_last.state),
        (last.completed, last.state)
    );
    let adapter = read_through_adapter(&input, &random, case);
    prop_assert!(adapter == output, "the stream adapter's output differs");

    // 2, 3. At each reference checkpoint the wrapper has refused, or agrees.
    let mut seen = seen.iter();
    let mut refused_in = None;
    for (j, r) in reqs.iter().enumerate() {
        for (at, is_end) in [(r.head_end, false), (r.end.unwrap_or(usize::MAX), true)] {
            if is_end && (r.end.is_none() || at == r.head_end) {
                continue;
            }
            let s = seen.next().expect("a state per checkpoint");
            if s.state == State::PassThrough {
                refused_in.get_or_insert(j);
                continue;
            }
            let refuse = r
                .refuse
                .or(held_too_long(&r.target).then_some("held too long"));
            prop_assert!(refuse.is_none(), "request {}: {:?} not refused", j, refuse);
            let body = r.body_len.expect("framed by Content-Length");
            let want = match (is_end, body) {
                (false, 0) | (true, _) => (j as u64 + 1, State::Start),
                (false, n) => (j as u64, State::Body { remaining: n }),
            };
            prop_assert_eq!((s.completed, s.state), want, "request {} at {}", j, at);
        }
    }
    let complete = reference.complete();
    let k = last.completed as usize;
    if *stop != Stop::HeadError {
        // No request ends where httparse sees none.
        prop_assert!(
            k <= complete,
            "{} requests framed, the reference has {}",
            k,
            complete
        );
        if last.state != State::PassThrough {
            prop_assert_eq!(k, complete);
        }
    }

    // 4. The output: framed requests as expected, then the rest as it came (or with its request
    // line rewritten). Past a head httparse refuses, only the requests before it are compared.
    let mut expected = Vec::new();
    for r in &reqs[..k.min(complete)] {
        expected.extend_from_slice(&expected_request(&input, r, case.rewrite_above)?);
    }
    if *stop == Stop::HeadError && k >= complete && output.starts_with(&expected) {
        // Whatever the wrapper did with a head httparse refuses, httparse still refuses it.
        prop_assert!(
            httparse_refuses(&output[expected.len()..]),
            "a refused head made acceptable"
        );
    }
    if k > complete {
        prop_assert!(
            output.starts_with(&expected),
            "output before the refused head"
        );
    } else {
        let tail = &input[reference.start(k, input.len())..];
        let as_is = [&expected[..], tail].concat();
        let rewritten =
            rewritten_tail(tail, case.rewrite_above).map(|t| [&expected[..], &t].concat());
        prop_assert!(
            output == as_is || Some(&output) == rewritten.as_ref(),
            "output differs from the expected after {} framed requests ({:?})",
            k,
            stop
        );
    }

    // 5. Flawless requests at the start are framed by the reference and the wrapper.
    for (j, &end) in clean_ends.iter().enumerate() {
        prop_assert_eq!(reqs.get(j).and_then(|r| r.end), Some(end), "request {}", j);
        prop_assert!(reqs[j].refuse.is_none());
    }
    prop_assert!(
        k >= clean_ends.len(),
        "flawless request refused ({} of {} framed, refused in {:?})",
        k,
        clean_ends.len(),
        refused_in
    );
    Ok(())
}
