//! The inputs of the property test: random HTTP/1.1 pipelines, flaws and garbage mixed in,
//! cut short at random, and the random read sizes they arrive in.

use proptest::collection::vec;
use proptest::option::weighted;
use proptest::prelude::*;
use proptest::sample::select;

use super::super::tests::LONG;
use super::super::{HOLD_LIMIT, REWRITE_ABOVE};

const CLEAN_METHODS: &[&str] = &[
    "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "PROPFIND", "get",
];
const CLEAN_VERSIONS: &[&str] = &["HTTP/1.1", "HTTP/1.0"];
/// Query bytes of generated long targets.
const QUERY_BYTES: &[u8] =
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789=&%-._~+";

#[derive(Clone, Copy, Debug)]
enum Eol {
    CrLf,
    Lf,
}

impl Eol {
    fn bytes(self) -> &'static [u8] {
        match self {
            Eol::CrLf => b"\r\n",
            Eol::Lf => b"\n",
        }
    }
}

/// `len` bytes of `QUERY_BYTES` made from a seed (cheap to build and to shrink).
#[derive(Clone, Debug)]
struct Filler {
    len: usize,
    seed: u64,
}

impl Filler {
    fn write(&self, out: &mut Vec<u8>) {
        let mut x = self.seed | 1;
        let block: Vec<u8> = (0..61)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                QUERY_BYTES[(x % QUERY_BYTES.len() as u64) as usize]
            })
            .collect();
        let end = out.len() + self.len;
        while out.len() < end {
            let n = (end - out.len()).min(block.len());
            out.extend_from_slice(&block[..n]);
        }
    }
}

#[derive(Clone, Debug)]
enum Query {
    None,
    Short(String),
    /// Filled up to a target of this many bytes in all.
    Long(usize, u64),
}

#[derive(Clone, Debug)]
enum Target {
    Origin {
        path: String,
        query: Query,
        fragment: Option<String>,
        /// A byte the wrapper does not take, at a position (modulo the length, after the `/`).
        bad: Option<(usize, u8)>,
    },
    Other(&'static str),
}

impl Target {
    /// Writes the target; whether it is flawless.
    fn write(&self, out: &mut Vec<u8>) -> bool {
        let (path, query, fragment, bad) = match self {
            Target::Origin {
                path,
                query,
                fragment,
                bad,
            } => (path, query, fragment, bad),
            Target::Other(t) => {
                out.extend_from_slice(t.as_bytes());
                return false;
            }
        };
        let start = out.len();
        out.extend_from_slice(path.as_bytes());
        let fragment_len = fragment.as_ref().map_or(0, |f| f.len() + 1);
        let q = out.len();
        match query {
            Query::None => {}
            Query::Short(s) => {
                out.push(b'?');
                out.extend_from_slice(s.as_bytes());
            }
            Query::Long(len, seed) => {
                out.push(b'?');
                let len = len.saturating_sub(out.len() - start + fragment_len);
                Filler { len, seed: *seed }.write(out);
            }
        }
        if let Some(f) = fragment {
            out.push(b'#');
            out.extend_from_slice(f.as_bytes());
        }
        if let Some((at, b)) = bad {
            match out.len() - start - 1 {
                0 => out.push(*b),
                len => out[start + 1 + at % len] = *b,
            }
        }
        // A `#` before any `?` is refused (documented); the wrapper holds at most HOLD_LIMIT.
        match query {
            Query::None => bad.is_none() && fragment.is_none(),
            _ => bad.is_none() && out.len() - q <= HOLD_LIMIT,
        }
    }
}

/// What the body of a request holds.
#[derive(Clone, Debug)]
enum Payload {
    Bytes(Vec<u8>),
    /// A request, as if pipelined: a wrapper that misses the body would see it.
    Request,
    /// A request with a long target.
    LongRequest(Filler),
}

impl Payload {
    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Payload::Bytes(b) => out.extend_from_slice(b),
            Payload::Request => {
                out.extend_from_slice(b"GET /adjust?inner=1 HTTP/1.1\r\nHost: x\r\n\r\n")
            }
            Payload::LongRequest(f) => {
                out.extend_from_slice(b"GET /adjust?");
                f.write(out);
                out.extend_from_slice(b" HTTP/1.1\r\n\r\n");
            }
        }
    }
}

#[derive(Clone, Debug)]
enum Body {
    None {
        content_length_zero: bool,
    },
    Length(Payload),
    Chunked {
        coding: &'static str,
        chunks: Vec<(Payload, &'static str)>,
        last_ext: &'static str,
        trailers: Vec<(String, String)>,
        upper: bool,
    },
}

/// At most one per request; each makes it one the wrapper may refuse.
#[derive(Clone, Debug)]
enum Flaw {
    RepeatedLength,
    ConflictingLength,
    TransferEncoding(&'static str),
    Upgrade,
    ConnectionUpgrade(&'static str),
    ObsFold(&'static str),
    SpaceBeforeColon,
    ControlByte(u8),
    BareCr,
    EmptyName,
    PaddedLength,
    LengthValue(&'static str),
    LengthOff(i8),
}

#[derive(Clone, Debug)]
struct Request {
    empty_lines: Vec<Eol>,
    method: &'static str,
    target: Target,
    version: &'static str,
    /// Line ends, used in turn.
    eols: Vec<Eol>,
    headers: Vec<(String, String)>,
    /// Where the framing headers go among the others.
    framing_at: usize,
    body: Body,
    flaw: Option<Flaw>,
}

fn header_line(name: &str, value: &str) -> Vec<u8> {
    format!("{name}: {value}").into_bytes()
}

impl Request {
    /// Writes the request; whether it is flawless (the wrapper must frame it).
    fn write(&self, out: &mut Vec<u8>) -> bool {
        let mut clean = self.flaw.is_none();
        let mut eols = self.eols.iter().cycle();
        let mut eol = || eols.next().expect("line ends").bytes();
        for e in &self.empty_lines {
            out.extend_from_slice(e.bytes());
        }
        out.extend_from_slice(self.method.as_bytes());
        out.push(b' ');
        clean &= self.target.write(out);
        out.push(b' ');
        out.extend_from_slice(self.version.as_bytes());
        out.extend_from_slice(eol());
        clean &= CLEAN_METHODS.contains(&self.method) && CLEAN_VERSIONS.contains(&self.version);

        let mut body = Vec::new();
        let mut framing: Vec<Vec<u8>> = Vec::new();
        let mut length = None;
        match &self.body {
            Body::None {
                content_length_zero,
            } => length = content_length_zero.then_some(0),
            Body::Length(p) => {
                p.write(&mut body);
                length = Some(body.len());
            }
            Body::Chunked {
                coding,
                chunks,
                last_ext,
                trailers,
                upper,
            } => {
                clean = false;
                framing.push(header_line("Transfer-Encoding", coding));
                for (p, ext) in chunks {
                    let mut data = Vec::new();
                    p.write(&mut data);
                    let size = match upper {
                        true => format!("{:X}", data.len()),
                        false => format!("0{:x}", data.len()),
                    };
                    body.extend_from_slice(format!("{size}{ext}\r\n").as_bytes());
                    body.extend_from_slice(&data);
                    body.extend_from_slice(b"\r\n");
                }
                body.extend_from_slice(format!("0{last_ext}\r\n").as_bytes());
                for (n, v) in trailers {
                    body.extend_from_slice(&header_line(n, v));
                    body.extend_from_slice(b"\r\n");
                }
                body.extend_from_slice(b"\r\n");
            }
        }
        let length_value = length.map(|n| n.to_string());
        let mut length_line = |value: &str| framing.push(header_line("Content-Length", value));
        match (&self.flaw, &length_value) {
            (Some(Flaw::PaddedLength), Some(v)) => length_line(&format!("{:>30}", v)),
            (Some(Flaw::LengthValue(raw)), Some(_)) => length_line(raw),
            (Some(Flaw::LengthOff(d)), Some(v)) => {
                length_line(&(v.parse::<i64>().unwrap() + *d as i64).max(0).to_string())
            }
            (_, Some(v)) => length_line(v),
            (_, None) => {}
        }
        let mut lines: Vec<Vec<u8>> = Vec::new();
        for (name, value) in &self.headers {
            let lower = name.to_ascii_lowercase();
            let framing = ["content-length", "transfer-encoding", "upgrade"].contains(&&lower[..]);
            let upgrade = lower == "connection" && value.to_ascii_lowercase().contains("upgrade");
            clean &= !framing && !upgrade;
            lines.push(header_line(name, value));
        }
        let at = self.framing_at % (lines.len() + 1);
        lines.splice(at..at, framing);
        let v = length_value.as_deref().unwrap_or("0");
        let flawed: Vec<u8> = match &self.flaw {
            None | Some(Flaw::PaddedLength | Flaw::LengthValue(_) | Flaw::LengthOff(_)) => vec![],
            Some(Flaw::RepeatedLength) => header_line("content-length", v),
            Some(Flaw::ConflictingLength) => header_line("Content-Length", &format!("1{v}")),
            Some(Flaw::TransferEncoding(te)) => header_line("Transfer-Encoding", te),
            Some(Flaw::Upgrade) => header_line("Upgrade", "websocket"),
            Some(Flaw::ConnectionUpgrade(c)) => header_line("Connection", c),
            Some(Flaw::ObsFold(fold)) => fold.as_bytes().to_vec(),
            Some(Flaw::SpaceBeforeColon) => b"X-Space : v".to_vec(),
            Some(Flaw::ControlByte(b)) => [&b"X-Ctl: a"[..], &[*b], b"b"].concat(),
            Some(Flaw::BareCr) => b"X-Cr: a\rX-After: b".to_vec(),
            Some(Flaw::EmptyName) => b": v".to_vec(),
        };
        if !flawed.is_empty() {
            let at = self.framing_at % (lines.len() + 1);
            lines.insert(at, flawed);
        }
        for line in lines {
            out.extend_from_slice(&line);
            out.extend_from_slice(eol());
        }
        out.extend_from_slice(eol());
        out.extend_from_slice(&body);
        clean
    }
}

#[derive(Clone, Debug)]
enum Piece {
    Request(Box<Request>),
    Garbage(Vec<u8>),
}

#[derive(Clone, Debug)]
pub(super) struct Case {
    pieces: Vec<Piece>,
    /// The input ends here (modulo its length), if set.
    cut: Option<usize>,
    /// Read sizes: one read, or random ones from this seed.
    one_read: bool,
    read_seed: u64,
    /// The read buffer of the stream adapter.
    pub buffer: usize,
    /// Targets (with a query) longer than this are moved: the callback listener's
    /// [`REWRITE_ABOVE`] (every one), or [`LONG`] (both regimes in one input).
    pub rewrite_above: usize,
}

fn eol() -> impl Strategy<Value = Eol> {
    prop_oneof![3 => Just(Eol::CrLf), 1 => Just(Eol::Lf)]
}

fn long_len() -> impl Strategy<Value = usize> {
    prop_oneof![
        LONG - 3..=LONG + 3,
        65_530usize..=65_540,
        60_000usize..=131_100,
    ]
}

fn target() -> impl Strategy<Value = Target> {
    let path = "/[a-z0-9_/.-]{0,16}";
    let query = prop_oneof![
        4 => Just(Query::None),
        8 => "[a-zA-Z0-9=&%_.~+-]{0,40}".prop_map(Query::Short),
        3 => (long_len(), any::<u64>()).prop_map(|(len, seed)| Query::Long(len, seed)),
    ];
    let bad = weighted(
        0.04,
        (any::<usize>(), select(&b"<>\" \\\x7f\x80\x00\r\n#?"[..])),
    );
    prop_oneof![
        40 => (path, query, weighted(0.1, "[a-z0-9]{0,8}"), bad).prop_map(
            |(path, query, fragment, bad)| Target::Origin { path, query, fragment, bad }
        ),
        // From the `?` on, around the most the wrapper holds.
        1 => (-3i64..=3, any::<u64>()).prop_map(|(d, seed)| Target::Origin {
            path: "/".into(),
            query: Query::Long((HOLD_LIMIT as i64 + 1 + d) as usize, seed),
            fragment: None,
            bad: None,
        }),
        2 => select(vec![
            "*",
            "http://example.com/adjust?a=1",
            "example.com:443",
            "/a b",
            "/a#f?x",
            "",
            "/\u{e9}",
        ])
        .prop_map(Target::Other),
    ]
}

fn payload() -> impl Strategy<Value = Payload> {
    prop_oneof![
        8 => vec(any::<u8>(), 0..40).prop_map(Payload::Bytes),
        2 => Just(Payload::Request),
        1 => (long_len(), any::<u64>()).prop_map(|(len, seed)| Payload::LongRequest(Filler { len, seed })),
    ]
}

fn body() -> impl Strategy<Value = Body> {
    let ext = select(vec![
        "",
        ";a=b",
        ";x",
        " ;y=\"z\"",
        ";name=val;other",
        ";\tq",
    ]);
    let trailer = ("[A-Za-z-]{1,12}", "[ -~]{0,20}");
    prop_oneof![
        6 => any::<bool>().prop_map(|content_length_zero| Body::None { content_length_zero }),
        5 => payload().prop_map(Body::Length),
        2 => (
            select(vec!["chunked", "Chunked", "gzip, chunked", "gzip", "chunked, gzip"]),
            vec((payload(), ext.clone()), 0..4),
            ext,
            vec(trailer, 0..3),
            any::<bool>(),
        )
            .prop_map(|(coding, chunks, last_ext, trailers, upper)| Body::Chunked {
                coding,
                chunks,
                last_ext,
                trailers,
                upper,
            }),
    ]
}

fn flaw() -> impl Strategy<Value = Flaw> {
    prop_oneof![
        Just(Flaw::RepeatedLength),
        Just(Flaw::ConflictingLength),
        select(vec!["chunked", "gzip", "identity"]).prop_map(Flaw::TransferEncoding),
        Just(Flaw::Upgrade),
        select(vec!["Upgrade", "keep-alive, UPGRADE", "xupgradex"])
            .prop_map(Flaw::ConnectionUpgrade),
        select(vec![" folded", "\tfolded", " "]).prop_map(Flaw::ObsFold),
        Just(Flaw::SpaceBeforeColon),
        select(vec![0u8, 1, 0x7f, 0x0c, 0x0b]).prop_map(Flaw::ControlByte),
        Just(Flaw::BareCr),
        Just(Flaw::EmptyName),
        Just(Flaw::PaddedLength),
        select(vec![
            "+1",
            "",
            "1a",
            "0x1",
            "99999999999999999999999",
            "1, 1",
            "-1",
            " "
        ])
        .prop_map(Flaw::LengthValue),
        prop_oneof![-3i8..=-1, 1i8..=3].prop_map(Flaw::LengthOff),
    ]
}

fn request() -> impl Strategy<Value = Request> {
    let method = prop_oneof![
        30 => select(CLEAN_METHODS),
        1 => select(vec!["CONNECT", "MKCALENDAR", "G@T", ""]),
    ];
    let version = prop_oneof![
        30 => select(CLEAN_VERSIONS),
        1 => select(vec!["HTTP/2.0", "HTTP/1.2", "http/1.1", "HTTP/1.1 ", "HTTP/1"]),
    ];
    let name = prop_oneof![
        select(vec![
            "Host",
            "User-Agent",
            "Accept",
            "Content-Type",
            "X-Forwarded-For",
            "x-a"
        ])
        .prop_map(String::from),
        "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,24}",
    ];
    let value = prop_oneof![
        "[\\t -~]{0,40}",
        select(vec!["keep-alive", "close", "Keep-Alive"]).prop_map(String::from),
    ];
    (
        vec(eol(), 0..2),
        method,
        target(),
        version,
        vec(eol(), 1..6),
        vec((name, value), 0..6),
        any::<usize>(),
        body(),
        weighted(0.15, flaw()),
    )
        .prop_map(
            |(empty_lines, method, target, version, eols, headers, framing_at, body, flaw)| {
                Request {
                    empty_lines,
                    method,
                    target,
                    version,
                    eols,
                    headers,
                    framing_at,
                    body,
                    flaw,
                }
            },
        )
}

pub(super) fn case() -> impl Strategy<Value = Case> {
    let garbage = prop_oneof![
        vec(any::<u8>(), 1..48),
        Just(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03".to_vec()),
        Just(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec()),
        Just(b"\r".to_vec()),
    ];
    let piece = prop_oneof![
        30 => request().prop_map(|r| Piece::Request(Box::new(r))),
        1 => garbage.prop_map(Piece::Garbage),
    ];
    (
        vec(piece, 1..6),
        weighted(0.15, any::<usize>()),
        prop::bool::weighted(0.15),
        any::<u64>(),
        prop_oneof![1usize..16, 16usize..5000, Just(65_536), Just(1 << 20)],
        prop_oneof![Just(REWRITE_ABOVE), Just(LONG)],
    )
        .prop_map(
            |(pieces, cut, one_read, read_seed, buffer, rewrite_above)| Case {
                pieces,
                cut,
                one_read,
                read_seed,
                buffer,
                rewrite_above,
            },
        )
}

/// The input bytes, and the end of each leading flawless request.
pub(super) fn input(case: &Case) -> (Vec<u8>, Vec<usize>) {
    let mut bytes = Vec::new();
    let mut clean_ends = Vec::new();
    let mut clean = true;
    for piece in &case.pieces {
        match piece {
            Piece::Request(r) => clean &= r.write(&mut bytes),
            Piece::Garbage(g) => {
                bytes.extend_from_slice(g);
                clean = false;
            }
        }
        if clean {
            clean_ends.push(bytes.len());
        }
    }
    if let Some(cut) = case.cut {
        bytes.truncate(cut % (bytes.len() + 1));
        clean_ends.retain(|&end| end <= bytes.len());
    }
    (bytes, clean_ends)
}

/// Random read sizes: a few bytes, a few hundred, or up to 50,000.
pub(super) fn reads(len: usize, case: &Case) -> Vec<usize> {
    if case.one_read {
        return vec![len];
    }
    let mut x = case.read_seed | 1;
    let mut at = 0;
    let mut cuts = Vec::new();
    while at < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let size = match x % 10 {
            0..=3 => 1 + (x >> 8) as usize % 4,
            4..=6 => 1 + (x >> 8) as usize % 200,
            _ => 1 + (x >> 8) as usize % 50_000,
        };
        at = (at + size).min(len);
        cuts.push(at);
    }
    cuts
}
