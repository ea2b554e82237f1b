//! Codec configuration parsing: what players need to know about a track
//! (codec, resolution, profile/level, sample rate, channels).
//!
//! Each submodule parses the decoder configuration record that an encoder sends
//! once per stream (the FLV/RTMP "sequence header"): `avcC` for H.264, `hvcC` for
//! H.265 and the AAC AudioSpecificConfig. They also hold the small framing helpers
//! the muxers need (AVCC length prefixes -> Annex B start codes, ADTS headers).
//!
//! Everything here is pure and bounded: a hostile record yields a [`CodecError`],
//! never a panic, and no count or length read from the input allocates more than the
//! input itself already occupies.

use thiserror::Error;

pub mod aac;
pub mod h264;
pub mod h265;

/// What went wrong while parsing a codec configuration or bitstream.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CodecError {
    /// A byte-aligned structure ended early.
    #[error("{what} truncated: needs {needed} bytes at offset {offset}, {available} available")]
    Truncated {
        what: &'static str,
        offset: usize,
        needed: usize,
        available: usize,
    },
    /// A bit-level syntax element ran past the end of its RBSP.
    #[error("bitstream ended while reading {0}")]
    BitsExhausted(&'static str),
    #[error("{what}: unsupported configuration version {version}")]
    UnsupportedVersion { what: &'static str, version: u8 },
    #[error("{what}: more than {limit} parameter sets")]
    TooManyParameterSets { what: &'static str, limit: usize },
    #[error("NAL unit length size {0} is not 1, 2, 3 or 4")]
    InvalidNalLengthSize(u8),
    #[error("NAL unit of {len} bytes at offset {offset} overruns the {available}-byte buffer")]
    NalOverrun {
        offset: usize,
        len: usize,
        available: usize,
    },
    /// A syntax element holds a value the specification forbids or that we cannot
    /// represent (e.g. a reserved sampling frequency index, a crop larger than the picture).
    #[error("invalid {field}: {value}")]
    InvalidValue { field: &'static str, value: u64 },
    /// Valid input that the requested operation cannot express (e.g. an AAC object
    /// type that has no ADTS profile).
    #[error("{what} not supported: {value}")]
    Unsupported { what: &'static str, value: u64 },
    /// The H.264 SPS was rejected by `h264-reader`.
    #[error("H.264 SPS: {0}")]
    Sps(String),
}

/// Big-endian bit reader over a byte slice. Every read is bounds-checked and
/// returns [`CodecError::BitsExhausted`] naming the syntax element being read.
pub(crate) struct BitReader<'a> {
    data: &'a [u8],
    /// Position in bits from the start of `data`.
    pos: usize,
}

impl<'a> BitReader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        BitReader { data, pos: 0 }
    }

    fn bits_left(&self) -> usize {
        self.data.len().saturating_mul(8).saturating_sub(self.pos)
    }

    pub(crate) fn read_bit(&mut self, field: &'static str) -> Result<bool, CodecError> {
        let byte = *self
            .data
            .get(self.pos / 8)
            .ok_or(CodecError::BitsExhausted(field))?;
        let bit = (byte >> (7 - (self.pos % 8))) & 1;
        self.pos += 1;
        Ok(bit == 1)
    }

    /// Reads `n` bits (at most 32) as an unsigned big-endian number.
    pub(crate) fn read_bits(&mut self, n: u32, field: &'static str) -> Result<u32, CodecError> {
        debug_assert!(n <= 32, "read_bits({n}) for {field}");
        if (n as usize) > self.bits_left() {
            return Err(CodecError::BitsExhausted(field));
        }
        let mut v: u64 = 0;
        for _ in 0..n.min(32) {
            v = (v << 1) | u64::from(self.read_bit(field)?);
        }
        Ok(v as u32)
    }

    pub(crate) fn skip_bits(&mut self, n: usize, field: &'static str) -> Result<(), CodecError> {
        if n > self.bits_left() {
            return Err(CodecError::BitsExhausted(field));
        }
        self.pos += n;
        Ok(())
    }

    /// Unsigned Exp-Golomb code, ue(v) (H.264/H.265 clause 9.2). At most 31 leading
    /// zero bits are accepted, so the value always fits in a `u32`.
    pub(crate) fn read_ue(&mut self, field: &'static str) -> Result<u32, CodecError> {
        let mut zeros = 0u32;
        while !self.read_bit(field)? {
            zeros += 1;
            if zeros > 31 {
                return Err(CodecError::InvalidValue {
                    field,
                    value: u64::from(zeros),
                });
            }
        }
        if zeros == 0 {
            return Ok(0);
        }
        let suffix = self.read_bits(zeros, field)?;
        // zeros <= 31: (2^zeros - 1) + suffix <= 2^32 - 2.
        Ok(((1u64 << zeros) - 1 + u64::from(suffix)) as u32)
    }
}

/// Removes emulation prevention bytes (the `03` in `00 00 03`) from a NAL unit
/// payload, giving its RBSP (H.264 7.4.1 / H.265 7.4.2). At most `max_out` bytes
/// are produced: parameter-set parsers only need the first few dozen bytes.
pub(crate) fn nal_to_rbsp(nal: &[u8], max_out: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len().min(max_out));
    let mut zeros = 0usize;
    for &b in nal {
        if out.len() >= max_out {
            break;
        }
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// Reads a big-endian u16 at `offset`, naming `what` on truncation.
pub(crate) fn be_u16(data: &[u8], offset: usize, what: &'static str) -> Result<u16, CodecError> {
    match data.get(offset..offset.saturating_add(2)) {
        Some(&[a, b]) => Ok(u16::from_be_bytes([a, b])),
        _ => Err(truncated(data, offset, 2, what)),
    }
}

/// Returns `data[offset..offset + len]`, naming `what` on truncation.
pub(crate) fn slice<'a>(
    data: &'a [u8],
    offset: usize,
    len: usize,
    what: &'static str,
) -> Result<&'a [u8], CodecError> {
    offset
        .checked_add(len)
        .and_then(|end| data.get(offset..end))
        .ok_or_else(|| truncated(data, offset, len, what))
}

pub(crate) fn truncated(
    data: &[u8],
    offset: usize,
    needed: usize,
    what: &'static str,
) -> CodecError {
    CodecError::Truncated {
        what,
        offset,
        needed,
        available: data.len().saturating_sub(offset),
    }
}

/// Appends each parameter set with a 4-byte Annex B start code.
pub(crate) fn write_annexb<'a>(sets: impl IntoIterator<Item = &'a [u8]>, out: &mut Vec<u8>) {
    for set in sets {
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(set);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_reader_reads_fields_and_exp_golomb() {
        // 1 | 010 (ue=1) | 011 (ue=2) | 00100 (ue=3) | 1 (ue=0) | pad
        let data = [0b1010_0110, 0b0100_1000];
        let mut r = BitReader::new(&data);
        assert!(r.read_bit("a").unwrap());
        assert_eq!(r.read_ue("b").unwrap(), 1);
        assert_eq!(r.read_ue("c").unwrap(), 2);
        assert_eq!(r.read_ue("d").unwrap(), 3);
        assert_eq!(r.read_ue("e").unwrap(), 0);
        assert_eq!(r.read_bits(3, "f").unwrap(), 0);
        assert_eq!(r.read_bit("g"), Err(CodecError::BitsExhausted("g")));
    }

    #[test]
    fn bit_reader_is_bounded() {
        let mut r = BitReader::new(&[0xff, 0xff, 0xff, 0xff]);
        assert_eq!(r.read_bits(32, "x").unwrap(), u32::MAX);
        assert!(r.read_bits(1, "y").is_err());
        let mut r = BitReader::new(&[0, 0, 0, 0, 0]);
        assert!(r.read_ue("z").is_err());
        let mut r = BitReader::new(&[0, 0]);
        assert_eq!(r.skip_bits(17, "s"), Err(CodecError::BitsExhausted("s")));
        // 31 leading zeros is the largest accepted ue(v).
        let mut r = BitReader::new(&[0, 0, 0, 1, 0xff, 0xff, 0xff, 0xfe]);
        assert_eq!(r.read_ue("max").unwrap(), u32::MAX - 1);
    }

    proptest::proptest! {
        /// Arbitrary records (with a valid version byte, so parsing gets past it):
        /// errors are fine, panics are not. The fuzz target `flv` goes further.
        #[test]
        fn parsers_never_panic(
            tail in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
            nal_length_size in 0u8..6,
        ) {
            let data = [&[1u8][..], &tail].concat();
            let _ = h264::AvcDecoderConfig::parse(&data);
            let _ = h265::HevcDecoderConfig::parse(&data);
            let _ = aac::AudioSpecificConfig::parse(&tail);
            let mut out = Vec::new();
            let _ = h264::avcc_to_annexb(&tail, nal_length_size, &mut out);
        }
    }

    #[test]
    fn emulation_prevention_is_removed() {
        assert_eq!(
            nal_to_rbsp(&[0x42, 0, 0, 3, 1, 0, 0, 3, 0, 3], 100),
            vec![0x42, 0, 0, 1, 0, 0, 0, 3]
        );
        assert_eq!(nal_to_rbsp(&[1, 2, 3, 4], 2), vec![1, 2]);
    }
}
