//! AMF0 (Action Message Format 0) values <-> bytes.
//! INTERFACE STUB: the implementation is being written; signatures are fixed.

use thiserror::Error;

/// Limits applied while decoding hostile input.
#[derive(Debug, Clone, Copy)]
pub struct Amf0Limits {
    /// Maximum nesting of objects / arrays.
    pub max_depth: usize,
    /// Maximum number of entries in one object / array.
    pub max_entries: usize,
}

impl Default for Amf0Limits {
    fn default() -> Self {
        Amf0Limits { max_depth: 32, max_entries: 4096 }
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
    Date { millis: f64, tz: i16 },
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
    #[error("AMF0 string at offset {0} is not valid UTF-8")]
    InvalidUtf8(usize),
}

impl Amf0Value {
    /// Looks a key up in an Object or EcmaArray.
    pub fn get(&self, key: &str) -> Option<&Amf0Value> {
        match self {
            Amf0Value::Object(p) | Amf0Value::EcmaArray(p) => {
                p.iter().find(|(k, _)| k == key).map(|(_, v)| v)
            }
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
}

/// Decodes one value from the start of `buf`; returns it and the bytes consumed.
pub fn decode(_buf: &[u8], _limits: &Amf0Limits) -> Result<(Amf0Value, usize), Amf0Error> {
    Err(Amf0Error::Truncated(0))
}

/// Decodes values until `buf` is exhausted.
pub fn decode_all(_buf: &[u8], _limits: &Amf0Limits) -> Result<Vec<Amf0Value>, Amf0Error> {
    Err(Amf0Error::Truncated(0))
}

/// Appends the encoding of `value` to `out`.
pub fn encode(_value: &Amf0Value, _out: &mut Vec<u8>) {}
