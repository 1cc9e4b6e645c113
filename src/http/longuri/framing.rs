//! Where a request ends: the request line around its target (which `rewrite` scans), the header
//! section, then `Content-Length` bytes of body.
//!
//! The scanner follows httparse's grammar or a stricter one: anything it does not recognise, and
//! anything that makes the end of the request uncertain or the connection stop being HTTP/1.x
//! (`Transfer-Encoding`, `Upgrade`, `Connection: upgrade`, `CONNECT`, a repeated or malformed
//! `Content-Length`), is refused, and the connection passes through from there on.

/// Where the scanner is in the inbound byte stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum State {
    /// Before a request line; empty lines are skipped (as httparse does).
    Start,
    Method,
    /// The first byte of the target: `/` (origin form) or pass-through.
    TargetStart,
    /// The target up to its `?` (scanned by `rewrite`).
    Path,
    /// From the `?` on: held until the target ends (scanned by `rewrite`).
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

/// What a byte of the head means to the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Step {
    Next,
    /// The `/` starting an origin-form target: the state is now [`State::Path`].
    Target,
    /// The request line has ended; the header section follows.
    LineEnd,
    /// Not recognised: the state is now [`State::PassThrough`].
    Refuse,
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

pub(super) const HTTP_1: &[u8] = b"HTTP/1.";
const UPGRADE: &[u8] = b"upgrade";

/// httparse's `token` (methods and header names).
static TOKEN: [bool; 256] = class!(
    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9'
    | b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+'
    | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~'
);

fn is_token(b: u8) -> bool {
    TOKEN[b as usize]
}

/// The framing state of one connection: the request line outside the target, the header
/// section, the body.
pub(super) struct Framer {
    pub(super) state: State,
    method: [u8; 8],
    method_len: usize,
    /// The minor version digit of the current request line.
    pub(super) minor: u8,
    name: [u8; 20],
    name_len: usize,
    framing: Framing,
    value: [u8; 24],
    value_len: usize,
    /// Bytes of `upgrade` matched in a `Connection` value.
    upgrade_at: usize,
    content_length: Option<u64>,
    /// Requests whose end was found (tests compare it with a reference parser).
    #[cfg(test)]
    pub(super) completed: u64,
}

impl Framer {
    pub(super) fn new() -> Self {
        Framer {
            state: State::Start,
            method: [0; 8],
            method_len: 0,
            minor: 0,
            name: [0; 20],
            name_len: 0,
            framing: Framing::Other,
            value: [0; 24],
            value_len: 0,
            upgrade_at: 0,
            content_length: None,
            #[cfg(test)]
            completed: 0,
        }
    }

    fn refuse(&mut self) -> Step {
        self.state = State::PassThrough;
        Step::Refuse
    }

    /// The target has ended (at its space): the version follows.
    pub(super) fn target_end(&mut self) {
        self.state = State::Version { at: 0 };
    }

    /// Passes up to `available` bytes of the body; returns how many.
    pub(super) fn body(&mut self, remaining: u64, available: usize) -> usize {
        let take = remaining.min(available as u64);
        self.state = match remaining - take {
            0 => self.request_end(),
            left => State::Body { remaining: left },
        };
        take as usize
    }

    /// Inside the value of a header that does not frame the request: the caller may skip to
    /// the end of the line and call [`Framer::end_of_header`].
    pub(super) fn skips_value(&self) -> bool {
        self.state == (State::Value { cr: false }) && self.framing == Framing::Other
    }

    /// One byte of the request line outside the target, or of the header section.
    pub(super) fn head_byte(&mut self, b: u8) -> Step {
        match self.state {
            State::Start => match b {
                b'\r' | b'\n' => {}
                b if is_token(b) => {
                    self.method[0] = b;
                    self.method_len = 1;
                    self.state = State::Method;
                }
                _ => return self.refuse(),
            },
            State::Method => match b {
                b' ' if &self.method[..self.method_len] == b"CONNECT" => return self.refuse(),
                b' ' => self.state = State::TargetStart,
                b if is_token(b) && self.method_len < self.method.len() => {
                    self.method[self.method_len] = b;
                    self.method_len += 1;
                }
                _ => return self.refuse(),
            },
            State::TargetStart => match b {
                b'/' => {
                    self.state = State::Path;
                    return Step::Target;
                }
                _ => return self.refuse(),
            },
            State::Version { at } => {
                if (at as usize) < HTTP_1.len() {
                    if b != HTTP_1[at as usize] {
                        return self.refuse();
                    }
                    self.state = State::Version { at: at + 1 };
                } else if b == b'0' || b == b'1' {
                    self.minor = b - b'0';
                    self.state = State::VersionEnd { cr: false };
                } else {
                    return self.refuse();
                }
            }
            State::VersionEnd { cr } => match b {
                b'\r' if !cr => self.state = State::VersionEnd { cr: true },
                b'\n' => {
                    self.content_length = None;
                    self.state = State::LineStart;
                    return Step::LineEnd;
                }
                _ => return self.refuse(),
            },
            State::LineStart => match b {
                b'\r' => self.state = State::EndCr,
                b'\n' => self.end_of_head(),
                b if is_token(b) => {
                    self.name[0] = b.to_ascii_lowercase();
                    self.name_len = 1;
                    self.state = State::Name;
                }
                _ => return self.refuse(),
            },
            State::EndCr => match b {
                b'\n' => self.end_of_head(),
                _ => return self.refuse(),
            },
            State::Name => match b {
                b':' => {
                    self.framing = self.name_framing();
                    if self.framing == Framing::TransferEncoding || self.framing == Framing::Upgrade
                    {
                        return self.refuse();
                    }
                    self.value_len = 0;
                    self.upgrade_at = 0;
                    self.state = State::Value { cr: false };
                }
                b if is_token(b) => {
                    if self.name_len < self.name.len() {
                        self.name[self.name_len] = b.to_ascii_lowercase();
                    }
                    self.name_len += 1;
                }
                _ => return self.refuse(),
            },
            State::Value { cr: true } => match b {
                b'\n' => return self.end_of_header(),
                _ => return self.refuse(),
            },
            State::Value { cr: false } => match b {
                b'\r' => self.state = State::Value { cr: true },
                b'\n' => return self.end_of_header(),
                b => return self.value_byte(b),
            },
            State::Path | State::Query | State::Body { .. } | State::PassThrough => {
                unreachable!("not head bytes: scanned by the caller")
            }
        }
        Step::Next
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

    fn value_byte(&mut self, b: u8) -> Step {
        match self.framing {
            Framing::ContentLength => {
                if self.value_len == self.value.len() {
                    return self.refuse();
                }
                self.value[self.value_len] = b;
                self.value_len += 1;
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
        Step::Next
    }

    /// The line end of a header line.
    pub(super) fn end_of_header(&mut self) -> Step {
        self.state = State::LineStart;
        match self.framing {
            Framing::ContentLength => {
                let v = self.value[..self.value_len].trim_ascii();
                let len = (!v.is_empty() && v.iter().all(u8::is_ascii_digit))
                    .then(|| std::str::from_utf8(v).ok()?.parse::<u64>().ok())
                    .flatten();
                match (len, self.content_length) {
                    (Some(len), None) => self.content_length = Some(len),
                    _ => return self.refuse(),
                }
            }
            Framing::Connection if self.upgrade_at == UPGRADE.len() => return self.refuse(),
            _ => {}
        }
        Step::Next
    }

    fn end_of_head(&mut self) {
        self.state = match self.content_length.take() {
            Some(len) if len > 0 => State::Body { remaining: len },
            _ => self.request_end(),
        };
    }

    /// The current request has ended: the next request line follows.
    fn request_end(&mut self) -> State {
        #[cfg(test)]
        {
            self.completed += 1;
        }
        State::Start
    }
}
