//! The request target: scanned where actix reads it, held from its `?` on until the request line
//! ends, and, when it is longer than the threshold ([`REWRITE_ABOVE`] for the callback listener:
//! every target with a query), moved into the query header:
//! `METHOD /path?QUERY HTTP/1.x` becomes `METHOD /path HTTP/1.x` + `<header>: QUERY`.
//!
//! [`Rewriter::feed`] drives the whole scan over one read: the target here, the rest of the
//! request through [`Framer`].

#[cfg(doc)]
use super::REWRITE_ABOVE;
use super::framing::{Framer, HTTP_1, State, Step};
use super::{HOLD_LIMIT, KEEP_CAPACITY};

/// Path bytes `http::Uri` accepts (`#` excluded: a fragment before the query passes through).
static PATH: [bool; 256] = class!(
    0x21 | 0x24..=0x3B | 0x3D | 0x40..=0x5F | 0x61..=0x7A | 0x7C | 0x7E | b'"' | b'{' | b'}'
);

/// Query bytes `http::Uri` accepts (`#` starts the fragment).
static QUERY: [bool; 256] = class!(0x21 | 0x24..=0x3B | 0x3D | 0x3F..=0x7E);

/// Fragment bytes moved past (`http::Uri` drops the fragment unchecked): ASCII only. httparse
/// takes bytes above 0x7E in a target only as valid UTF-8, which a byte class cannot tell; a
/// fragment with one passes through, and actix handles it as it would without the wrapper.
static FRAGMENT: [bool; 256] = class!(0x21..=0x7E);

/// [`span`] of [`QUERY`], eight bytes at a time while every byte of a word is in the class
/// (a query is long and nearly always made of such bytes).
fn span_query(bytes: &[u8]) -> usize {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let zero = |x: u64| x.wrapping_sub(LO) & !x & HI != 0;
    let mut at = 0;
    while let Some(eight) = bytes.get(at..at + 8) {
        let x = u64::from_le_bytes(eight.try_into().expect("8 bytes"));
        // A byte below 0x21, above 0x7E, or one of `"` `#` `<` `>`.
        let below = x.wrapping_sub(LO * 0x21) & !x & HI != 0;
        // Adding 1 to each byte sets its high bit exactly when it was 0x7F or more.
        let above = (x.wrapping_add(LO) | x) & HI != 0;
        if below
            || above
            || zero(x ^ (LO * 0x22))
            || zero(x ^ (LO * 0x23))
            || zero(x ^ (LO * 0x3C))
            || zero(x ^ (LO * 0x3E))
        {
            break;
        }
        at += 8;
    }
    at + span(&bytes[at..], &QUERY)
}

/// How many leading bytes of `bytes` are in `class`.
fn span(bytes: &[u8], class: &[bool; 256]) -> usize {
    bytes
        .iter()
        .position(|&b| !class[b as usize])
        .unwrap_or(bytes.len())
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

/// The rewriting state machine, without I/O.
pub(super) struct Rewriter {
    framer: Framer,
    header: &'static [u8],
    /// Targets (with a query) longer than this are rewritten.
    rewrite_above: usize,
    /// Held bytes of earlier reads: from the `?` of the current target on.
    hold: Vec<u8>,
    holding: bool,
    target_len: usize,
    /// Query bytes before a `#` (the fragment is not part of the query).
    query_len: usize,
    fragment: bool,
    rewrite: bool,
}

impl Rewriter {
    pub(super) fn new(header: &'static [u8], rewrite_above: usize) -> Self {
        Rewriter {
            framer: Framer::new(),
            header,
            rewrite_above,
            hold: Vec::new(),
            holding: false,
            target_len: 0,
            query_len: 0,
            fragment: false,
            rewrite: false,
        }
    }

    pub(super) fn passes_through(&self) -> bool {
        self.framer.state == State::PassThrough
    }

    /// Whether a request head has begun and not ended (its bytes are still arriving).
    pub(super) fn in_head(&self) -> bool {
        !matches!(
            self.framer.state,
            State::Start | State::Body { .. } | State::PassThrough
        )
    }

    /// Room in the hold buffer beyond what it holds.
    pub(super) fn spare(&self) -> usize {
        self.hold.capacity() - self.hold.len()
    }

    /// Where the scanner is (for tests).
    #[cfg(test)]
    pub(super) fn state(&self) -> State {
        self.framer.state
    }

    /// Requests whose end was found so far (for tests).
    #[cfg(test)]
    pub(super) fn completed(&self) -> u64 {
        self.framer.completed
    }

    /// Whether bytes are held, and how many the buffer has (for tests).
    #[cfg(test)]
    pub(super) fn held(&self) -> (bool, usize, usize) {
        (self.holding, self.hold.len(), self.hold.capacity())
    }

    /// End of the inbound stream: held bytes go out unchanged.
    pub(super) fn eof(&mut self, out: &mut Vec<u8>) {
        if self.holding {
            out.extend_from_slice(&self.hold);
            self.drop_hold();
        }
        self.framer.state = State::PassThrough;
    }

    /// Appends to the held bytes, growing the buffer by powers of two up to [`HOLD_LIMIT`] and
    /// exactly beyond (the version after the target), so that it never takes twice the limit.
    fn keep(&mut self, bytes: &[u8]) {
        let need = self.hold.len() + bytes.len();
        if need > self.hold.capacity() {
            let capacity = need.next_power_of_two().min(HOLD_LIMIT).max(need);
            self.hold.reserve_exact(capacity - self.hold.len());
        }
        self.hold.extend_from_slice(bytes);
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
        self.framer.state = State::PassThrough;
    }

    /// Processes one read. Returns how many leading bytes of `input` go out unchanged where they
    /// are; the rest of the output for this read is appended to `out`.
    pub(super) fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> usize {
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
            match self.framer.state {
                State::PassThrough => i = n,
                State::Body { remaining } => i += self.framer.body(remaining, n - i),
                State::Query => {
                    i = self.scan_query(input, i);
                    if self.hold.len() + (i - hs) > HOLD_LIMIT {
                        self.pass_through(&mut e);
                    } else if i < n {
                        if input[i] == b' ' {
                            i += 1;
                            self.rewrite = self.target_len > self.rewrite_above;
                            if !self.rewrite {
                                self.release(&mut e);
                            }
                            self.framer.target_end();
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
                                self.framer.state = State::Query;
                            }
                            b' ' => {
                                self.rewrite = false;
                                self.framer.target_end();
                            }
                            _ => self.pass_through(&mut e),
                        }
                    }
                }
                _ if self.framer.skips_value() => {
                    // A header that does not frame the request: on to the end of the line.
                    match memchr::memchr(b'\n', &input[i..]) {
                        Some(at) => {
                            i += at + 1;
                            if self.framer.end_of_header() == Step::Refuse {
                                self.pass_through(&mut e);
                            }
                        }
                        None => i = n,
                    }
                }
                _ => {
                    let b = input[i];
                    i += 1;
                    match self.framer.head_byte(b) {
                        Step::Next => {}
                        Step::Target => self.target_len = 1,
                        Step::LineEnd => {
                            if self.rewrite {
                                e.pass(run, hs);
                                self.keep(&input[hs..i]);
                                self.emit_rewritten(&mut e);
                                self.drop_hold();
                                run = i;
                            }
                        }
                        Step::Refuse => self.pass_through(&mut e),
                    }
                }
            }
        }
        if self.holding {
            e.pass(run, hs);
            self.keep(&input[hs..n]);
        } else {
            e.pass(run, n);
        }
        e.verbatim
    }

    /// The hot loop of a target: query (and fragment) bytes from `i` on. Returns where
    /// they end.
    fn scan_query(&mut self, input: &[u8], mut i: usize) -> usize {
        loop {
            let len = if self.fragment {
                span(&input[i..], &FRAGMENT)
            } else {
                let len = span_query(&input[i..]);
                self.query_len += len;
                len
            };
            i += len;
            self.target_len += len;
            if i < input.len() && input[i] == b'#' && !self.fragment {
                self.fragment = true;
                i += 1;
                self.target_len += 1;
            } else {
                return i;
            }
        }
    }

    /// `METHOD /path` has gone out; the rest of the request line and the query header follow.
    fn emit_rewritten(&self, e: &mut Emit<'_>) {
        e.inject(b" ");
        e.inject(HTTP_1);
        e.inject(&[b'0' + self.framer.minor]);
        e.inject(b"\r\n");
        e.inject(self.header);
        e.inject(b": ");
        // hold = "?" QUERY ["#" FRAGMENT] " HTTP/1.x" EOL
        e.inject(&self.hold[1..1 + self.query_len]);
        e.inject(b"\r\n");
    }
}

#[cfg(test)]
mod span_tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn span_query_agrees_with_the_class_table() {
        // Every byte value at every position of a run of query bytes.
        for len in [0usize, 1, 7, 8, 9, 16, 23, 40] {
            for pos in 0..len {
                for b in 0..=255u8 {
                    let mut s = vec![b'a'; len];
                    s[pos] = b;
                    assert_eq!(span_query(&s), span(&s, &QUERY), "{s:?}");
                }
            }
        }
        // Random texts that mostly stay in the class.
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..20_000 {
            let len = rng.random_range(0..64);
            let s: Vec<u8> = (0..len)
                .map(|_| {
                    if rng.random_bool(0.97) {
                        rng.random_range(0x21..=0x7E)
                    } else {
                        rng.random()
                    }
                })
                .collect();
            assert_eq!(span_query(&s), span(&s, &QUERY), "{s:?}");
        }
    }
}
