//! AMF0 (Action Message Format 0) values <-> bytes.
//!
//! This module owns the AMF0 wire format as RTMP uses it: decoding one value, or the
//! sequence of values that makes up a command or data message body, from a byte slice
//! under explicit [`Amf0Limits`], and encoding values back. It never does IO, never
//! resolves references (a [`Amf0Value::Reference`] is returned as its index) and never
//! panics on input: every malformed byte sequence is an [`Amf0Error`].
//!
//! AMF0 is hand-written rather than taken from a crate because no maintained sans-IO
//! AMF0 crate fits: the RTMP crates that implement it bundle it with their own IO and
//! session types, and we need depth and entry limits on hostile input and zero extra
//! dependencies. The format is small (17 markers in Adobe's "AMF0 File Format
//! Specification", 2006, sections 2.2 to 2.18 and 3.1).
//!
//! ## Decoding, marker by marker
//! | marker | spec type            | decoded as                                          |
//! |--------|----------------------|-----------------------------------------------------|
//! | 0x00   | number               | [`Amf0Value::Number`]                               |
//! | 0x01   | boolean              | [`Amf0Value::Boolean`] (any non-zero byte is true)  |
//! | 0x02   | string (u16 length)  | [`Amf0Value::String`]                               |
//! | 0x03   | object               | [`Amf0Value::Object`]                               |
//! | 0x04   | movieclip (reserved) | [`Amf0Error::UnsupportedMarker`]                    |
//! | 0x05   | null                 | [`Amf0Value::Null`]                                 |
//! | 0x06   | undefined            | [`Amf0Value::Undefined`]                            |
//! | 0x07   | reference (u16)      | [`Amf0Value::Reference`], not resolved              |
//! | 0x08   | ECMA array           | [`Amf0Value::EcmaArray`]                            |
//! | 0x09   | object end           | [`Amf0Error::UnexpectedObjectEnd`] (as a value)     |
//! | 0x0A   | strict array         | [`Amf0Value::StrictArray`]                          |
//! | 0x0B   | date                 | [`Amf0Value::Date`]                                 |
//! | 0x0C   | long string (u32)    | [`Amf0Value::String`]                               |
//! | 0x0D   | unsupported          | [`Amf0Value::Undefined`]                            |
//! | 0x0E   | recordset (reserved) | [`Amf0Error::UnsupportedMarker`]                    |
//! | 0x0F   | XML document (u32)   | [`Amf0Value::String`] (the XML text)                |
//! | 0x10   | typed object         | [`Amf0Value::Object`] (the class name is dropped)   |
//! | 0x11   | switch to AMF3       | [`Amf0Error::Amf3NotSupported`]                     |
//! | other  |                      | [`Amf0Error::UnknownMarker`]                        |
//!
//! ## Where we are more lenient than the spec, and why
//! * **Strings are decoded lossily.** The spec says UTF-8, but RTMP peers in the wild
//!   may put Latin-1 text (titles, encoder names) into metadata. Rejecting would
//!   drop a whole `connect` or `onMetaData` over a cosmetic field, so invalid sequences
//!   become U+FFFD instead ([`String::from_utf8_lossy`]). [`Amf0Error::InvalidUtf8`] is
//!   therefore never produced; it stays for API stability.
//! * **An ECMA array may end at end of input without its end marker.** When input runs
//!   out exactly where the next key would start, the array ends there. Nothing is lost
//!   by accepting that, while rejecting it would drop a whole metadata message over
//!   three missing bytes. (ffmpeg writes the marker; this is tolerance for writers that
//!   do not, not a quirk seen in a capture yet.) It applies only to ECMA arrays: an
//!   object missing its end marker is [`Amf0Error::Truncated`].
//! * **The ECMA array count is a hint and is ignored.** It is redundant with the end
//!   marker, nothing guarantees that the two agree, and trusting it for allocation would
//!   let 4 bytes reserve gigabytes. Pairs are read until the end marker.
//! * **An empty key ends an object only when `0x09` follows it.** Otherwise the pair is
//!   an ordinary pair with key `""`, so objects with empty keys round trip.
//!
//! ## Limits
//! Nesting of objects, ECMA arrays, strict arrays and typed objects is capped by
//! [`Amf0Limits::max_depth`] and the entries of one container by
//! [`Amf0Limits::max_entries`]. A strict array's count is checked against both the entry
//! limit and the bytes left before anything is allocated, and string lengths are checked
//! against the input before anything is copied, so memory use is proportional to the
//! input actually present, never to a length field. The decoder recurses once per
//! nesting level, so `max_depth` also bounds its stack use: keep it small (the default
//! is 32).
//!
//! ## Encoding
//! Encoding is canonical and infallible: a string uses marker 0x02 when it fits in 65535
//! bytes and 0x0C otherwise; objects and ECMA arrays end with `00 00 09`; an ECMA array's
//! count is its number of pairs. What AMF0 cannot represent is cut rather than
//! mis-encoded: an object key longer than 65535 bytes is truncated at a character
//! boundary, and a string or array longer than `u32::MAX` (never seen in practice) is
//! truncated to that length. For every value that needs no such cut,
//! `decode(encode(v)) == v`.

use thiserror::Error;

/// The type markers of AMF0 (spec section 2.1) and the AMF3 switch (section 3.1).
mod marker {
    pub const NUMBER: u8 = 0x00;
    pub const BOOLEAN: u8 = 0x01;
    pub const STRING: u8 = 0x02;
    pub const OBJECT: u8 = 0x03;
    pub const MOVIECLIP: u8 = 0x04;
    pub const NULL: u8 = 0x05;
    pub const UNDEFINED: u8 = 0x06;
    pub const REFERENCE: u8 = 0x07;
    pub const ECMA_ARRAY: u8 = 0x08;
    pub const OBJECT_END: u8 = 0x09;
    pub const STRICT_ARRAY: u8 = 0x0A;
    pub const DATE: u8 = 0x0B;
    pub const LONG_STRING: u8 = 0x0C;
    pub const UNSUPPORTED: u8 = 0x0D;
    pub const RECORDSET: u8 = 0x0E;
    pub const XML_DOCUMENT: u8 = 0x0F;
    pub const TYPED_OBJECT: u8 = 0x10;
    pub const AVMPLUS: u8 = 0x11;
}

/// Limits applied while decoding hostile input.
#[derive(Debug, Clone, Copy)]
pub struct Amf0Limits {
    /// Maximum nesting of objects / arrays.
    pub max_depth: usize,
    /// Maximum number of entries in one object / array.
    pub max_entries: usize,
}

impl Default for Amf0Limits {
    /// `max_depth` 32: real commands and metadata nest two or three levels (a command
    /// object, `onMetaData` with a keyframe index of two arrays); 32 leaves headroom while
    /// keeping the decoder's recursion (one call per level) shallow.
    /// `max_entries` 4096: live encoders send tens of metadata entries; a recorded file's
    /// keyframe index has one entry per keyframe, and 4096 covers an hour or more of it.
    fn default() -> Self {
        Amf0Limits {
            max_depth: 32,
            max_entries: 4096,
        }
    }
}

/// One AMF0 value. Objects keep their key order (players and encoders care).
#[derive(Debug, Clone, PartialEq)]
pub enum Amf0Value {
    Number(f64),
    Boolean(bool),
    /// String (marker 0x02) or long string (0x0C); encoding picks the marker by length.
    String(String),
    Object(Vec<(String, Amf0Value)>),
    Null,
    Undefined,
    /// Reference to an earlier complex value by index (not resolved).
    Reference(u16),
    EcmaArray(Vec<(String, Amf0Value)>),
    StrictArray(Vec<Amf0Value>),
    /// Milliseconds since the Unix epoch and the (unused) time-zone field.
    Date {
        millis: f64,
        tz: i16,
    },
}

#[derive(Debug, Error, PartialEq)]
pub enum Amf0Error {
    #[error("AMF0 input truncated at offset {0}")]
    Truncated(usize),
    #[error("unknown AMF0 type marker 0x{marker:02x} at offset {offset}")]
    UnknownMarker { marker: u8, offset: usize },
    #[error("AMF0 nesting deeper than {0}")]
    TooDeep(usize),
    #[error("AMF0 object or array with more than {0} entries")]
    TooManyEntries(usize),
    /// Never produced: strings are decoded lossily (see the module docs). Kept so that
    /// code matching on it keeps compiling.
    #[error("AMF0 string at offset {0} is not valid UTF-8")]
    InvalidUtf8(usize),
    /// A marker the spec reserves and no RTMP peer sends (movieclip 0x04, recordset 0x0E).
    #[error("unsupported AMF0 type marker 0x{marker:02x} at offset {offset}")]
    UnsupportedMarker { marker: u8, offset: usize },
    /// The object-end marker 0x09 where a value was expected.
    #[error("AMF0 object-end marker at offset {0} where a value was expected")]
    UnexpectedObjectEnd(usize),
    /// The switch-to-AMF3 marker 0x11: the value that follows is AMF3, which we do not
    /// decode.
    #[error("AMF3 value at offset {0} (switch marker 0x11) is not supported")]
    Amf3NotSupported(usize),
}

impl Amf0Value {
    /// Builds an [`Amf0Value::Object`] from key/value pairs, keeping their order.
    pub fn object<K: Into<String>>(pairs: impl IntoIterator<Item = (K, Amf0Value)>) -> Self {
        Amf0Value::Object(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// Builds an [`Amf0Value::EcmaArray`] from key/value pairs, keeping their order.
    pub fn ecma_array<K: Into<String>>(pairs: impl IntoIterator<Item = (K, Amf0Value)>) -> Self {
        Amf0Value::EcmaArray(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// Looks a key up in an Object or EcmaArray.
    pub fn get(&self, key: &str) -> Option<&Amf0Value> {
        match self {
            Amf0Value::Object(p) | Amf0Value::EcmaArray(p) => {
                p.iter().find(|(k, _)| k == key).map(|(_, v)| v)
            }
            _ => None,
        }
    }

    /// The pairs of an Object or EcmaArray, in wire order.
    pub fn as_pairs(&self) -> Option<&[(String, Amf0Value)]> {
        match self {
            Amf0Value::Object(p) | Amf0Value::EcmaArray(p) => Some(p),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Amf0Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Amf0Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Amf0Value::Boolean(b) => Some(*b),
            _ => None,
        }
    }
}

impl From<f64> for Amf0Value {
    fn from(n: f64) -> Self {
        Amf0Value::Number(n)
    }
}

impl From<bool> for Amf0Value {
    fn from(b: bool) -> Self {
        Amf0Value::Boolean(b)
    }
}

impl From<&str> for Amf0Value {
    fn from(s: &str) -> Self {
        Amf0Value::String(s.to_owned())
    }
}

impl From<String> for Amf0Value {
    fn from(s: String) -> Self {
        Amf0Value::String(s)
    }
}

/// Decodes one value from the start of `buf`; returns it and the bytes consumed.
pub fn decode(buf: &[u8], limits: &Amf0Limits) -> Result<(Amf0Value, usize), Amf0Error> {
    let mut reader = Reader {
        buf,
        pos: 0,
        limits,
    };
    let value = reader.value(0)?;
    Ok((value, reader.pos))
}

/// Decodes values until `buf` is exhausted. Empty input gives an empty list.
pub fn decode_all(buf: &[u8], limits: &Amf0Limits) -> Result<Vec<Amf0Value>, Amf0Error> {
    let mut reader = Reader {
        buf,
        pos: 0,
        limits,
    };
    let mut values = Vec::new();
    while reader.remaining() > 0 {
        values.push(reader.value(0)?);
    }
    Ok(values)
}

/// Appends the encoding of `value` to `out`.
pub fn encode(value: &Amf0Value, out: &mut Vec<u8>) {
    match value {
        Amf0Value::Number(n) => {
            out.push(marker::NUMBER);
            out.extend_from_slice(&n.to_be_bytes());
        }
        Amf0Value::Boolean(b) => out.extend_from_slice(&[marker::BOOLEAN, u8::from(*b)]),
        Amf0Value::String(s) => match u16::try_from(s.len()) {
            Ok(len) => {
                out.push(marker::STRING);
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(s.as_bytes());
            }
            Err(_) => {
                let s = truncate_at_char_boundary(s, u32::MAX as usize);
                out.push(marker::LONG_STRING);
                out.extend_from_slice(&len_u32(s.len()).to_be_bytes());
                out.extend_from_slice(s.as_bytes());
            }
        },
        Amf0Value::Object(pairs) => {
            out.push(marker::OBJECT);
            encode_pairs(pairs, out);
        }
        Amf0Value::Null => out.push(marker::NULL),
        Amf0Value::Undefined => out.push(marker::UNDEFINED),
        Amf0Value::Reference(index) => {
            out.push(marker::REFERENCE);
            out.extend_from_slice(&index.to_be_bytes());
        }
        Amf0Value::EcmaArray(pairs) => {
            let pairs = &pairs[..pairs.len().min(u32::MAX as usize)];
            out.push(marker::ECMA_ARRAY);
            out.extend_from_slice(&len_u32(pairs.len()).to_be_bytes());
            encode_pairs(pairs, out);
        }
        Amf0Value::StrictArray(items) => {
            let items = &items[..items.len().min(u32::MAX as usize)];
            out.push(marker::STRICT_ARRAY);
            out.extend_from_slice(&len_u32(items.len()).to_be_bytes());
            for item in items {
                encode(item, out);
            }
        }
        Amf0Value::Date { millis, tz } => {
            out.push(marker::DATE);
            out.extend_from_slice(&millis.to_be_bytes());
            out.extend_from_slice(&tz.to_be_bytes());
        }
    }
}

/// Appends the encodings of `values`, one after another (a command or data message body).
pub fn encode_all(values: &[Amf0Value], out: &mut Vec<u8>) {
    for value in values {
        encode(value, out);
    }
}

/// Encodes `value` into a new buffer.
pub fn encode_to_vec(value: &Amf0Value) -> Vec<u8> {
    let mut out = Vec::new();
    encode(value, &mut out);
    out
}

/// Writes object / ECMA array pairs and the `00 00 09` end marker.
fn encode_pairs(pairs: &[(String, Amf0Value)], out: &mut Vec<u8>) {
    for (key, value) in pairs {
        // Keys have a u16 length and no long form: cut what does not fit.
        let key = truncate_at_char_boundary(key, u16::MAX as usize);
        let len = u16::try_from(key.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(key.as_bytes());
        encode(value, out);
    }
    out.extend_from_slice(&[0, 0, marker::OBJECT_END]);
}

/// `len` as a u32 length field; callers have already cut `len` to `u32::MAX`.
fn len_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn truncate_at_char_boundary(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or("")
}

/// A cursor over the input. Invariant: `pos <= buf.len()`.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    limits: &'a Amf0Limits,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// Takes the next `n` bytes, or fails without consuming anything.
    fn take(&mut self, n: usize) -> Result<&'a [u8], Amf0Error> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or(Amf0Error::Truncated(self.pos))?;
        let bytes = self
            .buf
            .get(self.pos..end)
            .ok_or(Amf0Error::Truncated(self.pos))?;
        self.pos = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Amf0Error> {
        let at = self.pos;
        self.take(N)?
            .try_into()
            .map_err(|_| Amf0Error::Truncated(at))
    }

    fn u8(&mut self) -> Result<u8, Amf0Error> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, Amf0Error> {
        self.array().map(u16::from_be_bytes)
    }

    fn u32_len(&mut self) -> Result<usize, Amf0Error> {
        let n = self.array().map(u32::from_be_bytes)?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    fn f64(&mut self) -> Result<f64, Amf0Error> {
        self.array().map(f64::from_be_bytes)
    }

    /// `len` bytes of text, invalid UTF-8 replaced (see the module docs). `take` checks
    /// the length against the input before anything is copied.
    fn text(&mut self, len: usize) -> Result<String, Amf0Error> {
        Ok(String::from_utf8_lossy(self.take(len)?).into_owned())
    }

    /// The nesting level of a container opened inside `depth` enclosing ones, or
    /// `TooDeep` when that exceeds the limit.
    fn enter(&self, depth: usize) -> Result<usize, Amf0Error> {
        let inner = depth.saturating_add(1);
        if inner > self.limits.max_depth {
            return Err(Amf0Error::TooDeep(self.limits.max_depth));
        }
        Ok(inner)
    }

    /// Decodes one value; `depth` is the number of containers around it.
    fn value(&mut self, depth: usize) -> Result<Amf0Value, Amf0Error> {
        let offset = self.pos;
        let value = match self.u8()? {
            marker::NUMBER => Amf0Value::Number(self.f64()?),
            marker::BOOLEAN => Amf0Value::Boolean(self.u8()? != 0),
            marker::STRING => {
                let len = usize::from(self.u16()?);
                Amf0Value::String(self.text(len)?)
            }
            marker::OBJECT => {
                let inner = self.enter(depth)?;
                Amf0Value::Object(self.pairs(inner, false)?)
            }
            marker::NULL => Amf0Value::Null,
            marker::UNDEFINED | marker::UNSUPPORTED => Amf0Value::Undefined,
            marker::REFERENCE => Amf0Value::Reference(self.u16()?),
            marker::ECMA_ARRAY => {
                let inner = self.enter(depth)?;
                // The count is a hint only (see the module docs).
                self.take(4)?;
                Amf0Value::EcmaArray(self.pairs(inner, true)?)
            }
            marker::OBJECT_END => return Err(Amf0Error::UnexpectedObjectEnd(offset)),
            marker::STRICT_ARRAY => {
                let inner = self.enter(depth)?;
                let count = self.u32_len()?;
                if count > self.limits.max_entries {
                    return Err(Amf0Error::TooManyEntries(self.limits.max_entries));
                }
                // Every value takes at least its one marker byte.
                if count > self.remaining() {
                    return Err(Amf0Error::Truncated(self.pos));
                }
                let mut items = Vec::with_capacity(count);
                for _ in 0..count {
                    items.push(self.value(inner)?);
                }
                Amf0Value::StrictArray(items)
            }
            marker::DATE => {
                let millis = self.f64()?;
                let tz = self.array().map(i16::from_be_bytes)?;
                Amf0Value::Date { millis, tz }
            }
            marker::LONG_STRING | marker::XML_DOCUMENT => {
                let len = self.u32_len()?;
                Amf0Value::String(self.text(len)?)
            }
            marker::TYPED_OBJECT => {
                let inner = self.enter(depth)?;
                let class_len = usize::from(self.u16()?);
                self.take(class_len)?;
                Amf0Value::Object(self.pairs(inner, false)?)
            }
            reserved @ (marker::MOVIECLIP | marker::RECORDSET) => {
                return Err(Amf0Error::UnsupportedMarker {
                    marker: reserved,
                    offset,
                })
            }
            marker::AVMPLUS => return Err(Amf0Error::Amf3NotSupported(offset)),
            unknown => {
                return Err(Amf0Error::UnknownMarker {
                    marker: unknown,
                    offset,
                })
            }
        };
        Ok(value)
    }

    /// Reads key/value pairs up to and including the end marker (`00 00 09`). `depth` is
    /// the nesting level of the container that holds them. With `eof_ends`, input that
    /// runs out where a key would start also ends the container (ECMA arrays only).
    fn pairs(
        &mut self,
        depth: usize,
        eof_ends: bool,
    ) -> Result<Vec<(String, Amf0Value)>, Amf0Error> {
        let mut pairs = Vec::new();
        loop {
            if eof_ends && self.remaining() == 0 {
                return Ok(pairs);
            }
            let key_len = usize::from(self.u16()?);
            if key_len == 0 && self.buf.get(self.pos) == Some(&marker::OBJECT_END) {
                self.pos += 1;
                return Ok(pairs);
            }
            if pairs.len() >= self.limits.max_entries {
                return Err(Amf0Error::TooManyEntries(self.limits.max_entries));
            }
            let key = self.text(key_len)?;
            let value = self.value(depth)?;
            pairs.push((key, value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn limits() -> Amf0Limits {
        Amf0Limits::default()
    }

    /// Appends an AMF0 UTF-8 (u16 length + bytes) as used for keys.
    fn key(out: &mut Vec<u8>, k: &str) {
        out.extend_from_slice(&(k.len() as u16).to_be_bytes());
        out.extend_from_slice(k.as_bytes());
    }

    /// Appends a 0x02 string value.
    fn string(out: &mut Vec<u8>, s: &str) {
        out.push(0x02);
        key(out, s);
    }

    /// Appends a 0x00 number value from its IEEE-754 big-endian bits.
    fn number(out: &mut Vec<u8>, bits: u64) {
        out.push(0x00);
        out.extend_from_slice(&bits.to_be_bytes());
    }

    /// Decodes the hex of a captured payload.
    fn from_hex(hex: &str) -> Vec<u8> {
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    }

    /// The AMF0 body of the `connect` command (message type 20) that ffmpeg 5.1.9
    /// (Debian 12, Lavf59.27.100) sent when publishing with
    /// `ffmpeg -f lavfi -i testsrc=size=1280x720:rate=30 -f lavfi -i sine=sample_rate=44100
    /// -t 1 -c:v libx264 -c:a aac -ac 2 -f flv rtmp://127.0.0.1:1935/live/test`,
    /// captured by a throwaway listener that reassembled the chunks.
    const FFMPEG_CONNECT_CAPTURE: &str = concat!(
        "020007636f6e6e656374003ff00000000000000300036170700200046c697665",
        "00047479706502000a6e6f6e707269766174650008666c617368566572020024",
        "464d4c452f332e302028636f6d70617469626c653b204c61766635392e32372e",
        "313030290005746355726c02001a72746d703a2f2f3132372e302e302e313a31",
        "3933352f6c697665000009",
    );

    /// [`FFMPEG_CONNECT_CAPTURE`] rebuilt by hand from the AMF0 spec, field by field: the
    /// command name, transaction id 1, and a command object with app, type (ffmpeg
    /// sends it only when publishing), flashVer and tcUrl, in that order.
    fn ffmpeg_connect_bytes() -> Vec<u8> {
        let mut b = Vec::new();
        // 02 0007 "connect"
        string(&mut b, "connect");
        // 00 3FF0000000000000 = 1.0 (transaction id)
        number(&mut b, 0x3FF0_0000_0000_0000);
        // 03: command object
        b.push(0x03);
        // 0003 "app" 02 0004 "live"
        key(&mut b, "app");
        string(&mut b, "live");
        // 0004 "type" 02 000A "nonprivate"
        key(&mut b, "type");
        string(&mut b, "nonprivate");
        // 0008 "flashVer" 02 0024 "FMLE/3.0 (compatible; Lavf59.27.100)"
        key(&mut b, "flashVer");
        string(&mut b, "FMLE/3.0 (compatible; Lavf59.27.100)");
        // 0005 "tcUrl" 02 001A "rtmp://127.0.0.1:1935/live"
        key(&mut b, "tcUrl");
        string(&mut b, "rtmp://127.0.0.1:1935/live");
        // 00 00 09: object end
        b.extend_from_slice(&[0x00, 0x00, 0x09]);
        b
    }

    fn ffmpeg_connect_values() -> Vec<Amf0Value> {
        vec![
            "connect".into(),
            1.0.into(),
            Amf0Value::object([
                ("app", "live".into()),
                ("type", "nonprivate".into()),
                ("flashVer", "FMLE/3.0 (compatible; Lavf59.27.100)".into()),
                ("tcUrl", "rtmp://127.0.0.1:1935/live".into()),
            ]),
        ]
    }

    /// Offset of the command object in [`ffmpeg_connect_bytes`]: after the 10-byte
    /// "connect" string and the 9-byte number.
    const CONNECT_OBJECT_AT: usize = 10 + 9;

    /// The AMF0 body of the `@setDataFrame` data message (type 18) that the same ffmpeg
    /// run sent after `publish`: 1280x720 30 fps H.264 and 44.1 kHz stereo AAC.
    const FFMPEG_METADATA_CAPTURE: &str = concat!(
        "02000d40736574446174614672616d6502000a6f6e4d65746144617461080000",
        "000d00086475726174696f6e003ff00000000000000005776964746800409400",
        "00000000000006686569676874004086800000000000000d766964656f646174",
        "617261746500000000000000000000096672616d657261746500403e00000000",
        "0000000c766964656f636f646563696400401c000000000000000d617564696f",
        "646174617261746500405f400000000000000f617564696f73616d706c657261",
        "74650040e5888000000000000f617564696f73616d706c6573697a6500403000",
        "0000000000000673746572656f0101000c617564696f636f6465636964004024",
        "0000000000000007656e636f64657202000d4c61766635392e32372e31303000",
        "0866696c6573697a65000000000000000000000009",
    );

    /// [`FFMPEG_METADATA_CAPTURE`] rebuilt by hand from the AMF0 spec: "@setDataFrame",
    /// "onMetaData", and an ECMA array with the fields ffmpeg's FLV muxer writes, in its
    /// order. Numbers are given as their IEEE-754 bits.
    fn ffmpeg_metadata_bytes() -> Vec<u8> {
        let mut b = Vec::new();
        // 02 000D "@setDataFrame", 02 000A "onMetaData"
        string(&mut b, "@setDataFrame");
        string(&mut b, "onMetaData");
        // 08, count hint 0000000D = 13 pairs
        b.extend_from_slice(&[0x08, 0x00, 0x00, 0x00, 0x0D]);
        key(&mut b, "duration");
        number(&mut b, 0x3FF0_0000_0000_0000); // 1.0 (from -t 1)
        key(&mut b, "width");
        number(&mut b, 0x4094_0000_0000_0000); // 1280.0
        key(&mut b, "height");
        number(&mut b, 0x4086_8000_0000_0000); // 720.0
        key(&mut b, "videodatarate");
        number(&mut b, 0); // 0.0 (no bit rate set)
        key(&mut b, "framerate");
        number(&mut b, 0x403E_0000_0000_0000); // 30.0
        key(&mut b, "videocodecid");
        number(&mut b, 0x401C_0000_0000_0000); // 7.0 (AVC)
        key(&mut b, "audiodatarate");
        number(&mut b, 0x405F_4000_0000_0000); // 125.0 (128000 / 1024)
        key(&mut b, "audiosamplerate");
        number(&mut b, 0x40E5_8880_0000_0000); // 44100.0
        key(&mut b, "audiosamplesize");
        number(&mut b, 0x4030_0000_0000_0000); // 16.0
        key(&mut b, "stereo");
        b.extend_from_slice(&[0x01, 0x01]); // true
        key(&mut b, "audiocodecid");
        number(&mut b, 0x4024_0000_0000_0000); // 10.0 (AAC)
        key(&mut b, "encoder");
        string(&mut b, "Lavf59.27.100");
        key(&mut b, "filesize");
        number(&mut b, 0); // 0.0
        b.extend_from_slice(&[0x00, 0x00, 0x09]);
        b
    }

    fn ffmpeg_metadata_pairs() -> Vec<(String, Amf0Value)> {
        let pairs: [(&str, Amf0Value); 13] = [
            ("duration", 1.0.into()),
            ("width", 1280.0.into()),
            ("height", 720.0.into()),
            ("videodatarate", 0.0.into()),
            ("framerate", 30.0.into()),
            ("videocodecid", 7.0.into()),
            ("audiodatarate", 125.0.into()),
            ("audiosamplerate", 44100.0.into()),
            ("audiosamplesize", 16.0.into()),
            ("stereo", true.into()),
            ("audiocodecid", 10.0.into()),
            ("encoder", "Lavf59.27.100".into()),
            ("filesize", 0.0.into()),
        ];
        pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }

    fn ffmpeg_metadata_values() -> Vec<Amf0Value> {
        vec![
            "@setDataFrame".into(),
            "onMetaData".into(),
            Amf0Value::EcmaArray(ffmpeg_metadata_pairs()),
        ]
    }

    /// Offset of the ECMA array in [`ffmpeg_metadata_bytes`].
    const METADATA_ARRAY_AT: usize = 16 + 13;

    #[test]
    fn hand_built_fixtures_match_the_captures() {
        assert_eq!(ffmpeg_connect_bytes(), from_hex(FFMPEG_CONNECT_CAPTURE));
        assert_eq!(ffmpeg_metadata_bytes(), from_hex(FFMPEG_METADATA_CAPTURE));
    }

    #[test]
    fn ffmpeg_connect_decodes_and_reencodes_byte_for_byte() {
        let bytes = ffmpeg_connect_bytes();
        let values = decode_all(&bytes, &limits()).unwrap();
        assert_eq!(values, ffmpeg_connect_values());
        let object = &values[2];
        assert_eq!(object.get("app").and_then(Amf0Value::as_str), Some("live"));
        assert_eq!(
            object.get("tcUrl").and_then(Amf0Value::as_str),
            Some("rtmp://127.0.0.1:1935/live")
        );
        assert_eq!(values[1].as_f64(), Some(1.0));

        let mut out = Vec::new();
        encode_all(&values, &mut out);
        assert_eq!(out, bytes);
    }

    #[test]
    fn ffmpeg_metadata_decodes_and_reencodes_byte_for_byte() {
        let bytes = ffmpeg_metadata_bytes();
        let values = decode_all(&bytes, &limits()).unwrap();
        assert_eq!(values, ffmpeg_metadata_values());
        assert_eq!(
            values[2].get("audiosamplerate").and_then(Amf0Value::as_f64),
            Some(44100.0)
        );
        assert_eq!(
            values[2].get("stereo").and_then(Amf0Value::as_bool),
            Some(true)
        );
        assert_eq!(values[2].as_pairs().map(<[_]>::len), Some(13));

        let mut out = Vec::new();
        encode_all(&values, &mut out);
        assert_eq!(out, bytes);
    }

    #[test]
    fn every_truncation_of_the_connect_object_is_an_error() {
        let bytes = ffmpeg_connect_bytes();
        let object = &bytes[CONNECT_OBJECT_AT..];
        assert!(decode(object, &limits()).is_ok());
        for len in 0..object.len() {
            assert!(
                decode(&object[..len], &limits()).is_err(),
                "prefix of {len} bytes"
            );
        }
    }

    #[test]
    fn truncated_connect_decodes_only_at_value_boundaries() {
        let bytes = ffmpeg_connect_bytes();
        // Complete value sequences: nothing, "connect", "connect" 1.0.
        let boundaries = [0, 10, CONNECT_OBJECT_AT];
        for len in 0..bytes.len() {
            let result = decode_all(&bytes[..len], &limits());
            if let Some(n) = boundaries.iter().position(|&b| b == len) {
                assert_eq!(
                    result.unwrap(),
                    ffmpeg_connect_values()[..n],
                    "prefix of {len}"
                );
            } else {
                assert!(result.is_err(), "prefix of {len} bytes decoded");
            }
        }
    }

    #[test]
    fn truncated_metadata_decodes_only_at_value_or_ecma_pair_boundaries() {
        let bytes = ffmpeg_metadata_bytes();
        let values = ffmpeg_metadata_values();
        let pairs = ffmpeg_metadata_pairs();
        // (prefix length, what it decodes to). Complete value sequences before the array:
        let mut accepted = vec![
            (0, Vec::new()),
            (16, values[..1].to_vec()),
            (METADATA_ARRAY_AT, values[..2].to_vec()),
        ];
        // Inside the array, EOF may stand in for the end marker: right after the count
        // and after each complete pair.
        let mut at = METADATA_ARRAY_AT + 5;
        for n in 0..=pairs.len() {
            let mut partial = values[..2].to_vec();
            partial.push(Amf0Value::EcmaArray(pairs[..n].to_vec()));
            accepted.push((at, partial));
            if let Some((k, v)) = pairs.get(n) {
                at += 2 + k.len() + encode_to_vec(v).len();
            }
        }
        assert_eq!(at + 3, bytes.len());

        for len in 0..bytes.len() {
            let result = decode_all(&bytes[..len], &limits());
            match accepted.iter().find(|(l, _)| *l == len) {
                Some((_, expected)) => assert_eq!(&result.unwrap(), expected, "prefix of {len}"),
                None => assert!(result.is_err(), "prefix of {len} bytes decoded"),
            }
        }
    }

    fn round_trip(value: Amf0Value, expected: &[u8]) {
        let bytes = encode_to_vec(&value);
        assert_eq!(bytes, expected, "encoding of {value:?}");
        assert_eq!(decode(&bytes, &limits()), Ok((value, bytes.len())));
    }

    #[test]
    fn every_type_round_trips_with_exact_bytes() {
        round_trip(
            Amf0Value::Number(-2.5),
            &[0x00, 0xC0, 0x04, 0, 0, 0, 0, 0, 0],
        );
        round_trip(Amf0Value::Boolean(false), &[0x01, 0x00]);
        round_trip(Amf0Value::Boolean(true), &[0x01, 0x01]);
        round_trip("".into(), &[0x02, 0x00, 0x00]);
        round_trip("hé".into(), &[0x02, 0x00, 0x03, b'h', 0xC3, 0xA9]);
        round_trip(Amf0Value::object::<&str>([]), &[0x03, 0x00, 0x00, 0x09]);
        round_trip(
            Amf0Value::object([("a", Amf0Value::Null)]),
            &[0x03, 0x00, 0x01, b'a', 0x05, 0x00, 0x00, 0x09],
        );
        round_trip(Amf0Value::Null, &[0x05]);
        round_trip(Amf0Value::Undefined, &[0x06]);
        round_trip(Amf0Value::Reference(0x0102), &[0x07, 0x01, 0x02]);
        round_trip(
            Amf0Value::ecma_array([("k", true.into()), ("", Amf0Value::Undefined)]),
            &[
                0x08, 0, 0, 0, 2, // marker, count = number of pairs
                0x00, 0x01, b'k', 0x01, 0x01, // "k": true
                0x00, 0x00, 0x06, // "": undefined (an empty key, not the end)
                0x00, 0x00, 0x09,
            ],
        );
        round_trip(
            Amf0Value::StrictArray(vec![1.0.into(), Amf0Value::Null]),
            &[0x0A, 0, 0, 0, 2, 0x00, 0x3F, 0xF0, 0, 0, 0, 0, 0, 0, 0x05],
        );
        round_trip(Amf0Value::StrictArray(vec![]), &[0x0A, 0, 0, 0, 0]);
        round_trip(
            Amf0Value::Date {
                millis: 1.0,
                tz: -60,
            },
            &[0x0B, 0x3F, 0xF0, 0, 0, 0, 0, 0, 0, 0xFF, 0xC4],
        );
    }

    #[test]
    fn string_marker_is_chosen_by_length() {
        let short = "x".repeat(65535);
        let bytes = encode_to_vec(&short.clone().into());
        assert_eq!(&bytes[..3], &[0x02, 0xFF, 0xFF]);
        assert_eq!(decode(&bytes, &limits()), Ok((short.into(), 3 + 65535)));

        let long = "x".repeat(65536);
        let bytes = encode_to_vec(&long.clone().into());
        assert_eq!(&bytes[..5], &[0x0C, 0x00, 0x01, 0x00, 0x00]);
        assert_eq!(decode(&bytes, &limits()), Ok((long.into(), 5 + 65536)));
    }

    #[test]
    fn overlong_keys_are_cut_at_a_char_boundary() {
        // 65534 ASCII bytes then a 2-byte char: 65536 bytes, the char cannot fit.
        let key = format!("{}é", "k".repeat(65534));
        let bytes = encode_to_vec(&Amf0Value::object([(key, Amf0Value::Null)]));
        let (value, _) = decode(&bytes, &limits()).unwrap();
        assert_eq!(
            value,
            Amf0Value::object([("k".repeat(65534), Amf0Value::Null)])
        );
    }

    #[test]
    fn decode_only_markers() {
        // 0x0D unsupported -> Undefined.
        assert_eq!(decode(&[0x0D], &limits()), Ok((Amf0Value::Undefined, 1)));
        // 0x0F XML document: u32 length + text -> String.
        assert_eq!(
            decode(&[0x0F, 0, 0, 0, 3, b'<', b'a', b'>'], &limits()),
            Ok(("<a>".into(), 8))
        );
        // 0x0C long string holding a short string still decodes.
        assert_eq!(
            decode(&[0x0C, 0, 0, 0, 1, b'z'], &limits()),
            Ok(("z".into(), 6))
        );
        // 0x10 typed object: class name "C", then pairs -> Object.
        let typed = [
            0x10, 0x00, 0x01, b'C', 0x00, 0x01, b'n', 0x05, 0x00, 0x00, 0x09,
        ];
        assert_eq!(
            decode(&typed, &limits()),
            Ok((Amf0Value::object([("n", Amf0Value::Null)]), typed.len()))
        );
        // Booleans: any non-zero byte is true.
        assert_eq!(decode(&[0x01, 0x7F], &limits()), Ok((true.into(), 2)));
    }

    #[test]
    fn rejected_markers() {
        let cases = [
            (
                0x04,
                Amf0Error::UnsupportedMarker {
                    marker: 0x04,
                    offset: 0,
                },
            ),
            (
                0x0E,
                Amf0Error::UnsupportedMarker {
                    marker: 0x0E,
                    offset: 0,
                },
            ),
            (0x09, Amf0Error::UnexpectedObjectEnd(0)),
            (0x11, Amf0Error::Amf3NotSupported(0)),
            (
                0x12,
                Amf0Error::UnknownMarker {
                    marker: 0x12,
                    offset: 0,
                },
            ),
            (
                0xFF,
                Amf0Error::UnknownMarker {
                    marker: 0xFF,
                    offset: 0,
                },
            ),
        ];
        for (m, err) in cases {
            assert_eq!(decode(&[m, 0, 0, 0, 0], &limits()), Err(err));
        }
        // Offsets are absolute: the bad marker here is the value of key "a" at offset 4.
        assert_eq!(
            decode(&[0x03, 0x00, 0x01, b'a', 0x11], &limits()),
            Err(Amf0Error::Amf3NotSupported(4))
        );
        assert_eq!(decode(&[], &limits()), Err(Amf0Error::Truncated(0)));
        assert_eq!(decode_all(&[], &limits()), Ok(vec![]));
    }

    #[test]
    fn invalid_utf8_is_replaced_not_rejected() {
        // "café" in Latin-1: 0xE9 alone is not UTF-8.
        let bytes = [0x02, 0x00, 0x04, b'c', b'a', b'f', 0xE9];
        assert_eq!(decode(&bytes, &limits()), Ok(("caf\u{FFFD}".into(), 7)));
        let key = [0x03, 0x00, 0x01, 0xFF, 0x05, 0x00, 0x00, 0x09];
        assert_eq!(
            decode(&key, &limits()),
            Ok((Amf0Value::object([("\u{FFFD}", Amf0Value::Null)]), 8))
        );
    }

    #[test]
    fn ecma_array_count_is_only_a_hint() {
        for count in [0u32, 1, 1000, u32::MAX] {
            let mut bytes = vec![0x08];
            bytes.extend_from_slice(&count.to_be_bytes());
            bytes.extend_from_slice(&[0x00, 0x01, b'a', 0x05, 0x00, 0x01, b'b', 0x06]);
            bytes.extend_from_slice(&[0x00, 0x00, 0x09]);
            let expected =
                Amf0Value::ecma_array([("a", Amf0Value::Null), ("b", Amf0Value::Undefined)]);
            assert_eq!(
                decode(&bytes, &limits()),
                Ok((expected, bytes.len())),
                "count {count}"
            );
        }
    }

    #[test]
    fn only_ecma_arrays_may_end_at_eof() {
        let ecma = [0x08, 0, 0, 0, 1, 0x00, 0x01, b'a', 0x05];
        assert_eq!(
            decode(&ecma, &limits()),
            Ok((Amf0Value::ecma_array([("a", Amf0Value::Null)]), ecma.len()))
        );
        // Half an end marker is still truncation.
        assert_eq!(
            decode(&[0x08, 0, 0, 0, 0, 0x00], &limits()),
            Err(Amf0Error::Truncated(5))
        );
        assert_eq!(
            decode(&[0x08, 0, 0, 0, 0, 0x00, 0x00], &limits()),
            Err(Amf0Error::Truncated(7))
        );
        // Objects and typed objects need their end marker.
        assert_eq!(
            decode(&[0x03, 0x00, 0x01, b'a', 0x05], &limits()),
            Err(Amf0Error::Truncated(5))
        );
        assert_eq!(
            decode(&[0x10, 0x00, 0x00], &limits()),
            Err(Amf0Error::Truncated(3))
        );
        // Before other input, a missing end marker is not recognised: the next value's
        // bytes are read as a key.
        let values = decode_all(&[0x08, 0, 0, 0, 0, 0x05], &limits());
        assert_eq!(values, Err(Amf0Error::Truncated(5)));
    }

    /// `levels` nested containers, each made by `open` around the next, with a Null inside.
    fn nested(levels: usize, open: &[u8], close: &[u8]) -> Vec<u8> {
        let mut bytes = open.repeat(levels);
        bytes.push(0x05);
        bytes.extend_from_slice(&close.repeat(levels));
        bytes
    }

    #[test]
    fn depth_is_limited() {
        let small = Amf0Limits {
            max_depth: 3,
            ..limits()
        };
        let kinds: [(&[u8], &[u8]); 4] = [
            (&[0x03, 0x00, 0x01, b'a'], &[0x00, 0x00, 0x09]),
            (&[0x08, 0, 0, 0, 1, 0x00, 0x01, b'a'], &[0x00, 0x00, 0x09]),
            (&[0x0A, 0, 0, 0, 1], &[]),
            (&[0x10, 0x00, 0x00, 0x00, 0x01, b'a'], &[0x00, 0x00, 0x09]),
        ];
        for (open, close) in kinds {
            let ok = nested(3, open, close);
            assert_eq!(decode(&ok, &small).map(|(_, n)| n), Ok(ok.len()));
            let deep = nested(4, open, close);
            assert_eq!(decode(&deep, &small), Err(Amf0Error::TooDeep(3)));
        }
        let none = Amf0Limits {
            max_depth: 0,
            ..limits()
        };
        assert_eq!(decode(&[0x05], &none), Ok((Amf0Value::Null, 1)));
        assert_eq!(
            decode(&[0x0A, 0, 0, 0, 0], &none),
            Err(Amf0Error::TooDeep(0))
        );
    }

    #[test]
    fn depth_bombs_are_rejected() {
        // 100000 object markers: each 0x03 0x03 pair reads as a 771-byte key, then the
        // next 0x03 opens another object, so this nests about 129 deep.
        assert_eq!(
            decode(&[0x03; 100_000], &limits()),
            Err(Amf0Error::TooDeep(32))
        );
        // 100000 well-formed nested objects {"a": {"a": ...}}.
        let objects = nested(100_000, &[0x03, 0x00, 0x01, b'a'], &[0x00, 0x00, 0x09]);
        assert_eq!(decode(&objects, &limits()), Err(Amf0Error::TooDeep(32)));
        // 100000 nested one-element strict arrays.
        let arrays = nested(100_000, &[0x0A, 0, 0, 0, 1], &[]);
        assert_eq!(decode(&arrays, &limits()), Err(Amf0Error::TooDeep(32)));
    }

    #[test]
    fn entries_are_limited() {
        let small = Amf0Limits {
            max_entries: 2,
            ..limits()
        };
        let two = Amf0Value::object([("a", Amf0Value::Null), ("b", Amf0Value::Null)]);
        assert!(decode(&encode_to_vec(&two), &small).is_ok());
        let three =
            Amf0Value::ecma_array([("a", 1.0.into()), ("b", 2.0.into()), ("c", 3.0.into())]);
        assert_eq!(
            decode(&encode_to_vec(&three), &small),
            Err(Amf0Error::TooManyEntries(2))
        );
        let array = Amf0Value::StrictArray(vec![Amf0Value::Null; 3]);
        assert_eq!(
            decode(&encode_to_vec(&array), &small),
            Err(Amf0Error::TooManyEntries(2))
        );
    }

    #[test]
    fn huge_strict_array_count_fails_before_allocating() {
        let bytes = [0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0x05, 0x05];
        assert_eq!(
            decode(&bytes, &limits()),
            Err(Amf0Error::TooManyEntries(4096))
        );
        // With the entry limit out of the way, the remaining-bytes check still holds.
        let unlimited = Amf0Limits {
            max_entries: usize::MAX,
            ..limits()
        };
        assert_eq!(decode(&bytes, &unlimited), Err(Amf0Error::Truncated(5)));
        // A huge long-string length is checked against the input too.
        let long = [0x0C, 0xFF, 0xFF, 0xFF, 0xFF, b'a'];
        assert_eq!(decode(&long, &unlimited), Err(Amf0Error::Truncated(5)));
    }

    #[test]
    fn helpers() {
        assert_eq!(Amf0Value::from(true).as_bool(), Some(true));
        assert_eq!(Amf0Value::Null.as_bool(), None);
        assert_eq!(Amf0Value::from(String::from("s")).as_str(), Some("s"));
        let obj = Amf0Value::object([("x", 1.0.into())]);
        assert_eq!(obj.get("x"), Some(&Amf0Value::Number(1.0)));
        assert_eq!(obj.get("y"), None);
        assert_eq!(Amf0Value::Null.as_pairs(), None);
    }

    fn finite_f64() -> impl Strategy<Value = f64> {
        any::<f64>().prop_filter("finite", |n| n.is_finite())
    }

    fn arb_value() -> impl Strategy<Value = Amf0Value> {
        let leaf = prop_oneof![
            finite_f64().prop_map(Amf0Value::Number),
            any::<bool>().prop_map(Amf0Value::Boolean),
            any::<String>().prop_map(Amf0Value::String),
            Just(Amf0Value::Null),
            Just(Amf0Value::Undefined),
            any::<u16>().prop_map(Amf0Value::Reference),
            (finite_f64(), any::<i16>()).prop_map(|(millis, tz)| Amf0Value::Date { millis, tz }),
        ];
        leaf.prop_recursive(6, 128, 8, |inner| {
            let pairs = prop::collection::vec((any::<String>(), inner.clone()), 0..8);
            prop_oneof![
                pairs.clone().prop_map(Amf0Value::Object),
                pairs.prop_map(Amf0Value::EcmaArray),
                prop::collection::vec(inner, 0..8).prop_map(Amf0Value::StrictArray),
            ]
        })
    }

    fn check_reencoding_is_stable(bytes: &[u8]) -> Result<(), TestCaseError> {
        let _ = decode_all(bytes, &limits());
        if let Ok((first, _)) = decode(bytes, &limits()) {
            let once = encode_to_vec(&first);
            let (second, used) = decode(&once, &limits()).unwrap();
            prop_assert_eq!(used, once.len());
            prop_assert_eq!(encode_to_vec(&second), once);
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn decode_inverts_encode(value in arb_value()) {
            let bytes = encode_to_vec(&value);
            prop_assert_eq!(decode(&bytes, &limits()), Ok((value, bytes.len())));
        }

        /// What the fuzz target checks, on a smaller budget: arbitrary bytes never panic,
        /// and whatever decodes re-encodes to bytes that decode to the same encoding.
        #[test]
        fn arbitrary_bytes_are_stable(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            check_reencoding_is_stable(&bytes)?;
        }

        /// The same on valid encodings with one byte overwritten and the tail cut, which
        /// reach far deeper into the decoder than random bytes do.
        #[test]
        fn damaged_encodings_are_stable(
            value in arb_value(),
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut bytes = encode_to_vec(&value);
            let i = at.index(bytes.len());
            bytes[i] = byte;
            bytes.truncate(cut.index(bytes.len() + 1));
            check_reencoding_is_stable(&bytes)?;
        }
    }
}
