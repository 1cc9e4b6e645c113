//! The callback token: a shared secret every callback carries as `sink_token=<token>`, in its query
//! string or in its POST body (form or JSON).
//!
//! The pair is cut out of the input before anything decodes it ([`strip_pairs`], [`strip_json`]),
//! whether or not tokens are configured, so it never reaches a column, `extra`, `raw_query`, the
//! write-ahead log, the rejects or a log line. Tokens are compared as SHA-256 digests, in constant
//! time: neither the length nor a common prefix of a guess shows in the answer time.

use std::borrow::Cow;

use ring::digest::{SHA256, digest};

/// The query (or form, or JSON) key that carries the token.
pub const KEY: &str = "sink_token";

/// Tokens shorter than this are refused at start.
pub const MIN_LEN: usize = 16;

/// The accepted tokens (several while one is rotated out), kept only as digests.
#[derive(Clone, Default)]
pub struct Tokens {
    digests: Vec<[u8; 32]>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens({} configured)", self.digests.len())
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    digest(&SHA256, bytes)
        .as_ref()
        .try_into()
        .expect("32-byte digest")
}

/// Whether `a == b`, looking at every byte whatever differs.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// Why a token is not usable, for the start-up error.
pub fn check(token: &str) -> Result<(), String> {
    if token.len() < MIN_LEN {
        return Err(format!(
            "a callback token needs at least {MIN_LEN} characters (e.g. `openssl rand -hex 16`)"
        ));
    }
    if !token
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
    {
        return Err(
            "a callback token may hold only letters, digits and `-._~` (it goes into URLs as is)"
                .into(),
        );
    }
    Ok(())
}

impl Tokens {
    pub fn new<'a>(tokens: impl IntoIterator<Item = &'a str>) -> Self {
        Tokens {
            digests: tokens.into_iter().map(|t| sha256(t.as_bytes())).collect(),
        }
    }

    /// Whether callbacks must carry a token.
    pub fn required(&self) -> bool {
        !self.digests.is_empty()
    }

    /// Whether `candidate` is one of the tokens (every token is compared, in constant time).
    pub fn accepts(&self, candidate: &[u8]) -> bool {
        let d = sha256(candidate);
        self.digests.iter().fold(false, |ok, t| ok | same(t, &d))
    }

    /// Whether the tokens found in a callback let it in: at least one, and every one accepted.
    pub fn admit(&self, found: &[Vec<u8>]) -> bool {
        !found.is_empty() && found.iter().fold(true, |ok, t| ok & self.accepts(t))
    }
}

/// Decodes `%XX` and `+` the way the query decoder does (bad escapes stay as they are).
fn unescape(s: &[u8]) -> Cow<'_, [u8]> {
    if !s.iter().any(|&b| b == b'%' || b == b'+') {
        return Cow::Borrowed(s);
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < s.len() => match (hex(s[i + 1]), hex(s[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    Cow::Owned(out)
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// The raw key of a raw pair.
fn key_of(pair: &[u8]) -> &[u8] {
    memchr::memchr(b'=', pair).map_or(pair, |i| &pair[..i])
}

/// Whether a raw (still percent-encoded) key is [`KEY`].
fn is_key(raw: &[u8]) -> bool {
    if raw.len() < KEY.len() {
        return false;
    }
    raw == KEY.as_bytes()
        || (memchr::memchr2(b'%', b'+', raw).is_some() && &*unescape(raw) == KEY.as_bytes())
}

/// The `&`-separated parts of `input` (as `split` gives them), found with `memchr`.
fn split_pairs(input: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut start = 0;
    let mut ends = memchr::memchr_iter(b'&', input).chain(std::iter::once(input.len()));
    std::iter::from_fn(move || {
        let end = ends.next()?;
        let pair = &input[start..end];
        start = end + 1;
        Some(pair)
    })
}

/// A query string or form body without its `sink_token` pairs (however the key is encoded,
/// wherever and however often it appears), and the values of those pairs, decoded. Borrowed when
/// there is none.
pub fn strip_pairs(input: &[u8]) -> (Cow<'_, [u8]>, Vec<Vec<u8>>) {
    // The usual case, checked without allocating: no token pair at all.
    if !split_pairs(input).any(|pair| is_key(key_of(pair))) {
        return (Cow::Borrowed(input), Vec::new());
    }
    let mut found = Vec::new();
    let mut kept: Vec<&[u8]> = Vec::new();
    for pair in input.split(|&b| b == b'&') {
        let key = key_of(pair);
        if is_key(key) {
            let value = pair.get(key.len() + 1..).unwrap_or_default();
            found.push(unescape(value).into_owned());
        } else {
            kept.push(pair);
        }
    }
    if found.is_empty() {
        return (Cow::Borrowed(input), found);
    }
    (Cow::Owned(kept.join(&b'&')), found)
}

/// A JSON object body without its `sink_token` member, and the member's value. Borrowed when the
/// body has none (or is not a JSON object: the decoder then keeps it as it came).
pub fn strip_json(body: &[u8]) -> (Cow<'_, [u8]>, Vec<Vec<u8>>) {
    // Cheap test first: the key cannot be there without "token" or an escape in the text.
    if memchr::memmem::find(body, b"token").is_none() && memchr::memchr(b'\\', body).is_none() {
        return (Cow::Borrowed(body), Vec::new());
    }
    let Ok(mut map) = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(body)
    else {
        return (Cow::Borrowed(body), Vec::new());
    };
    let Some(value) = map.shift_remove(KEY) else {
        return (Cow::Borrowed(body), Vec::new());
    };
    let found = match value {
        serde_json::Value::String(s) => s.into_bytes(),
        other => other.to_string().into_bytes(),
    };
    let stripped = serde_json::to_vec(&map).expect("a JSON map serializes");
    (Cow::Owned(stripped), vec![found])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_pairs_splits_like_split() {
        for s in ["", "&", "a", "a&b", "&a&&b&", "a=1&sink_token=x&b=%26"] {
            let want: Vec<&[u8]> = s.as_bytes().split(|&b| b == b'&').collect();
            assert_eq!(split_pairs(s.as_bytes()).collect::<Vec<_>>(), want, "{s:?}");
        }
    }

    fn strip(s: &str) -> (String, Vec<String>) {
        let (rest, found) = strip_pairs(s.as_bytes());
        (
            String::from_utf8(rest.into_owned()).unwrap(),
            found
                .into_iter()
                .map(|f| String::from_utf8(f).unwrap())
                .collect(),
        )
    }

    #[test]
    fn the_pair_is_cut_wherever_and_however_it_is_written() {
        let t = "s3cr3t-token-0123456789";
        for (input, rest) in [
            (format!("sink_token={t}&a=1&b=2"), "a=1&b=2"),
            (format!("a=1&sink_token={t}&b=2"), "a=1&b=2"),
            (format!("a=1&b=2&sink_token={t}"), "a=1&b=2"),
            (format!("a=1&sink%5Ftoken={t}&b=2"), "a=1&b=2"),
            (format!("a=1&sink%5ftoken={t}"), "a=1"),
            (format!("a=1&%73ink_%74oken={t}"), "a=1"),
            (format!("sink_token={t}"), ""),
        ] {
            assert_eq!(strip(&input), (rest.to_string(), vec![t.to_string()]));
        }
        // Repeated: every one is cut and every value reported.
        assert_eq!(
            strip("sink_token=a&x=1&sink_token=b"),
            ("x=1".to_string(), vec!["a".to_string(), "b".to_string()])
        );
        // An encoded value is decoded; a key that only resembles it stays.
        assert_eq!(
            strip("sink_token=a%2Db&sink_tokens=1&my_sink_token=2"),
            (
                "sink_tokens=1&my_sink_token=2".to_string(),
                vec!["a-b".to_string()]
            )
        );
        // Nothing to cut: the input itself, and a broken escape elsewhere stays as it is.
        let (rest, found) = strip_pairs(b"a=%zz&b=2");
        assert!(matches!(rest, Cow::Borrowed(_)));
        assert!(found.is_empty());
        assert_eq!(
            strip("a=%zz&sink_token=x%"),
            ("a=%zz".into(), vec!["x%".into()])
        );
    }

    #[test]
    fn a_json_member_is_cut_and_the_rest_kept_in_order() {
        let (rest, found) =
            strip_json(br#"{"adid":"a","sink_token":"tok","created_at":"1700000000"}"#);
        assert_eq!(&*rest, br#"{"adid":"a","created_at":"1700000000"}"#);
        assert_eq!(found, vec![b"tok".to_vec()]);
        let (rest, found) = strip_json(br#"{"sink\u005ftoken":"tok","a":"1"}"#);
        assert_eq!(&*rest, br#"{"a":"1"}"#);
        assert_eq!(found, vec![b"tok".to_vec()]);
        let body = br#"{"a":"1"}"#;
        assert!(matches!(strip_json(body), (Cow::Borrowed(_), f) if f.is_empty()));
        let broken = br#"{"sink_token":"tok""#;
        assert_eq!(&*strip_json(broken).0, broken);
    }

    #[test]
    fn only_whole_configured_tokens_are_accepted() {
        let tokens = Tokens::new(["0123456789abcdef", "fedcba9876543210-new"]);
        assert!(tokens.required());
        assert!(tokens.accepts(b"0123456789abcdef"));
        assert!(tokens.accepts(b"fedcba9876543210-new"));
        assert!(!tokens.accepts(b"0123456789abcde"));
        assert!(!tokens.accepts(b"0123456789abcdef0"));
        assert!(!tokens.accepts(b""));
        assert!(tokens.admit(&[b"0123456789abcdef".to_vec()]));
        assert!(!tokens.admit(&[]));
        assert!(!tokens.admit(&[b"0123456789abcdef".to_vec(), b"wrong".to_vec()]));
        assert!(!Tokens::default().required());
        assert!(!format!("{tokens:?}").contains("0123"));
    }

    #[test]
    fn tokens_must_be_long_and_url_safe() {
        assert!(check("0123456789abcdef").is_ok());
        assert!(check("short").is_err());
        assert!(check("0123456789abcdef&x=1").is_err());
        assert!(check("0123456789abcdef%41").is_err());
    }
}
