//! The reference the property test holds the wrapper to: request boundaries in a byte stream as
//! httparse (actix-http's parser) reads the heads, with the body length of each request worked
//! out from its parsed headers per RFC 9112 §6: `Transfer-Encoding` with `chunked` last → a
//! chunked body (chunk extensions and trailer section included), else `Content-Length` (digits
//! only; repeated fields must agree), else no body.
//!
//! It also says which requests the wrapper must refuse (let pass through) before their head
//! ends, as the wrapper's docs promise: `Transfer-Encoding`, `Upgrade`, `Connection: upgrade`,
//! `CONNECT`, and a `Content-Length` that is repeated or not a plain number (actix-http answers
//! 400 to both).

use httparse::{EMPTY_HEADER, Status};

/// actix-http's limit on header fields.
const MAX_HEADERS: usize = 96;

/// One request whose head httparse parsed.
#[derive(Debug)]
pub(super) struct Req {
    /// Where it starts: the end of the previous request (empty lines before it included).
    pub start: usize,
    /// The request line, after the empty lines: `line_start..line_end` (line end included).
    pub line_start: usize,
    pub line_end: usize,
    pub head_end: usize,
    /// Where the body ends; `None` when it does not within the input, or cannot be framed.
    pub end: Option<usize>,
    /// The `Content-Length` body size (`None`: chunked, or no valid length).
    pub body_len: Option<u64>,
    pub method: String,
    pub target: Vec<u8>,
    pub minor: u8,
    pub headers: Vec<(String, Vec<u8>)>,
    /// Why the wrapper must pass the connection through by `head_end`.
    pub refuse: Option<&'static str>,
}

/// Why the reference stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stop {
    /// The input ends where a request ends.
    End,
    /// The input ends inside a head or a body.
    Partial,
    /// httparse refuses the next head (actix-http answers 400 and closes the connection).
    HeadError,
    /// The last request's body cannot be framed.
    BadFraming,
}

#[derive(Debug)]
pub(super) struct Reference {
    pub reqs: Vec<Req>,
    pub stop: Stop,
}

impl Reference {
    /// The requests that end within the input (all of them but perhaps the last).
    pub fn complete(&self) -> usize {
        self.reqs.iter().take_while(|r| r.end.is_some()).count()
    }

    /// Where request `j` starts (the input's end when there is no such request).
    pub fn start(&self, j: usize, input_len: usize) -> usize {
        match j {
            0 => 0,
            j => self.reqs[j - 1].end.unwrap_or(input_len),
        }
    }
}

/// Empty lines as httparse skips them before a request line: `\r\n` or `\n`.
pub(super) fn empty_lines(bytes: &[u8]) -> usize {
    let mut i = 0;
    loop {
        match bytes[i..] {
            [b'\r', b'\n', ..] => i += 2,
            [b'\n', ..] => i += 1,
            _ => return i,
        }
    }
}

pub(super) fn frame(input: &[u8]) -> Reference {
    let mut reqs = Vec::new();
    let mut pos = 0;
    let stop = loop {
        if pos == input.len() {
            break Stop::End;
        }
        let mut headers = [EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Request::new(&mut headers);
        let head_len = match parsed.parse(&input[pos..]) {
            Ok(Status::Complete(n)) => n,
            Ok(Status::Partial) => break Stop::Partial,
            Err(_) => break Stop::HeadError,
        };
        let method = parsed.method.expect("parsed").to_string();
        let target = parsed.path.expect("parsed").as_bytes().to_vec();
        let minor = parsed.version.expect("parsed");
        let headers: Vec<(String, Vec<u8>)> = parsed
            .headers
            .iter()
            .map(|h| (h.name.to_string(), h.value.to_vec()))
            .collect();
        let line_start = pos + empty_lines(&input[pos..]);
        let eol = line_start + method.len() + 1 + target.len() + 1 + "HTTP/1.1".len();
        let line_end = eol + if input[eol] == b'\r' { 2 } else { 1 };
        let head_end = pos + head_len;
        let (body, refuse) = body(&method, minor, &headers, &input[head_end..]);
        let (end, body_len) = match body {
            Body::Length(n) => {
                let end = (head_end as u64).saturating_add(n);
                ((end <= input.len() as u64).then_some(end as usize), Some(n))
            }
            Body::Chunked(Some(n)) => (Some(head_end + n), None),
            Body::Chunked(None) | Body::Invalid => (None, None),
        };
        reqs.push(Req {
            start: pos,
            line_start,
            line_end,
            head_end,
            end,
            body_len,
            method,
            target,
            minor,
            headers,
            refuse,
        });
        match (end, body) {
            (Some(end), _) => pos = end,
            (None, Body::Invalid) => break Stop::BadFraming,
            (None, _) => break Stop::Partial,
        }
    };
    Reference { reqs, stop }
}

#[derive(Clone, Copy, Debug)]
enum Body {
    Length(u64),
    /// Chunked: its size, if it ends within the input.
    Chunked(Option<usize>),
    Invalid,
}

fn has_token(value: &[u8], token: &str) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

/// The body framing of a request with these headers, and why the wrapper must refuse it.
fn body(
    method: &str,
    minor: u8,
    headers: &[(String, Vec<u8>)],
    rest: &[u8],
) -> (Body, Option<&'static str>) {
    let named = |name: &'static str| {
        headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| &v[..])
    };
    let te: Vec<&[u8]> = named("transfer-encoding").collect();
    let cl: Vec<&[u8]> = named("content-length").collect();
    let mut refuse = None;
    if method == "CONNECT" {
        refuse = Some("CONNECT");
    } else if named("upgrade").next().is_some() {
        refuse = Some("Upgrade");
    } else if named("connection").any(|v| has_token(v, "upgrade")) {
        refuse = Some("Connection: upgrade");
    }
    if !te.is_empty() {
        let refuse = Some("Transfer-Encoding");
        // RFC 9112 §6.1: chunked must be the final coding of a request; HTTP/1.0 framing with
        // Transfer-Encoding is faulty; with Content-Length too, a server may reject it (§6.3).
        let last = te.last().and_then(|v| v.split(|&b| b == b',').next_back());
        let chunked = last.is_some_and(|c| c.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        if !chunked || minor == 0 || !cl.is_empty() {
            return (Body::Invalid, refuse);
        }
        return match chunked_len(rest) {
            Ok(len) => (Body::Chunked(len), refuse),
            Err(()) => (Body::Invalid, refuse),
        };
    }
    if cl.is_empty() {
        return (Body::Length(0), refuse);
    }
    if cl.len() > 1 {
        refuse = Some("repeated Content-Length");
    }
    let lengths: Vec<Option<u64>> = cl
        .iter()
        .map(|v| {
            let digits = !v.is_empty() && v.iter().all(u8::is_ascii_digit);
            digits.then(|| std::str::from_utf8(v).ok()?.parse().ok())?
        })
        .collect();
    match lengths[..] {
        [Some(n), ref more @ ..] if more.iter().all(|m| *m == Some(n)) => (Body::Length(n), refuse),
        _ => (Body::Invalid, Some("malformed Content-Length")),
    }
}

/// The length of a chunked body at the start of `rest`: `Ok(None)` if it does not end within
/// `rest`, `Err` if it is malformed.
fn chunked_len(rest: &[u8]) -> Result<Option<usize>, ()> {
    let mut at = 0;
    loop {
        let (line, size) = match httparse::parse_chunk_size(&rest[at..]) {
            Ok(Status::Complete(c)) => c,
            Ok(Status::Partial) => return Ok(None),
            Err(_) => return Err(()),
        };
        at += line;
        if size == 0 {
            // The trailer section: header lines up to an empty line.
            let mut trailers = [EMPTY_HEADER; MAX_HEADERS];
            return match httparse::parse_headers(&rest[at..], &mut trailers) {
                Ok(Status::Complete((n, _))) => Ok(Some(at + n)),
                Ok(Status::Partial) => Ok(None),
                Err(_) => Err(()),
            };
        }
        let Some(data_end) = usize::try_from(size).ok().and_then(|s| s.checked_add(at)) else {
            return Err(());
        };
        match rest.get(data_end..data_end.saturating_add(2)) {
            Some(b"\r\n") => at = data_end + 2,
            Some(_) => return Err(()),
            None => return Ok(None),
        }
    }
}
