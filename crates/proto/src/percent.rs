//! Percent-decoding (`%XX`, RFC 3986 section 2.1): the one decoder under every place
//! ferrocast reads an escaped URL part.
//!
//! It only turns escapes into bytes; what a malformed escape or non-UTF-8 result
//! means is the caller's policy, because the callers disagree on purpose: the HTTP
//! server refuses a URL path with a bad escape (400, the path names a file), while the
//! RTSP proxy keeps a password's stray `%` as written (the `url` crate hands userinfo
//! over still encoded, and a camera password may well contain `%`).

/// A `%` not followed by two hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadEscape {
    /// Byte offset of the `%` in the input.
    pub offset: usize,
}

/// Decodes `%XX` escapes in `input`, byte by byte. Each item is a decoded byte, or
/// `Err` for a `%` that does not start a valid escape; the bytes after such a `%` are
/// then yielded as they are (so `.map(|b| b.unwrap_or(b'%'))` keeps bad escapes as
/// written, and collecting into `Result<Vec<u8>, _>` refuses them). Hex digits may
/// be either case; nothing else (no sign, no space) is a hex digit.
pub fn percent_decode(input: &[u8]) -> PercentDecode<'_> {
    PercentDecode { input, pos: 0 }
}

/// The iterator of [`percent_decode`].
#[derive(Debug, Clone)]
pub struct PercentDecode<'a> {
    input: &'a [u8],
    pos: usize,
}

impl Iterator for PercentDecode<'_> {
    type Item = Result<u8, BadEscape>;

    fn next(&mut self) -> Option<Self::Item> {
        let at = self.pos;
        let b = *self.input.get(at)?;
        if b != b'%' {
            self.pos += 1;
            return Some(Ok(b));
        }
        let hex = |i: usize| self.input.get(i).and_then(|&c| (c as char).to_digit(16));
        match (hex(at + 1), hex(at + 2)) {
            (Some(hi), Some(lo)) => {
                self.pos += 3;
                Some(Ok((hi * 16 + lo) as u8))
            }
            _ => {
                self.pos += 1;
                Some(Err(BadEscape { offset: at }))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.input.len() - self.pos;
        (left.div_ceil(3), Some(left))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strict(s: &str) -> Result<Vec<u8>, BadEscape> {
        percent_decode(s.as_bytes()).collect()
    }

    fn lenient(s: &str) -> Vec<u8> {
        percent_decode(s.as_bytes())
            .map(|b| b.unwrap_or(b'%'))
            .collect()
    }

    #[test]
    fn decodes_escapes_in_either_case() {
        assert_eq!(strict("a%20b%2f%2F").unwrap(), b"a b//");
        assert_eq!(strict("%C3%A9t%c3%a9").unwrap(), "été".as_bytes());
        assert_eq!(strict("%00%ff").unwrap(), [0, 0xff]);
        assert_eq!(strict("").unwrap(), b"");
        assert_eq!(strict("plain").unwrap(), b"plain");
    }

    #[test]
    fn bad_escapes_are_reported_where_they_are() {
        for (input, offset) in [
            ("%", 0),
            ("a%4", 1),
            ("%zz", 0),
            ("ab%g1", 2),
            ("%+1", 0),
            ("% 1", 0),
            ("%-1", 0),
            ("%é", 0),
        ] {
            assert_eq!(strict(input), Err(BadEscape { offset }), "{input}");
        }
    }

    #[test]
    fn lenient_keeps_bad_escapes_as_written() {
        assert_eq!(lenient("a%20b%2f%zz%4"), b"a b/%zz%4");
        assert_eq!(lenient("100%"), b"100%");
        assert_eq!(lenient("%%41"), b"%A");
    }

    #[test]
    fn size_hint_bounds_the_output() {
        for s in ["", "abc", "%41%42", "%4", "a%zz"] {
            let it = percent_decode(s.as_bytes());
            let (lo, hi) = it.size_hint();
            let n = it.count();
            assert!(lo <= n && n <= hi.unwrap(), "{s}");
        }
    }
}
