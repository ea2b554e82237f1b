//! H.264 / AVC: the `avcC` decoder configuration record (ISO/IEC 14496-15 5.3.3.1;
//! 5.2.4.1 in the first edition), carried in the FLV AVC sequence header, and
//! length-prefixed ("AVCC") NAL unit framing.
//!
//! The SPS itself is decoded by the `h264-reader` crate, only to learn the picture
//! size; this module never interprets slice data. The length-prefix helpers are
//! codec-agnostic and serve H.265 (`hvcC` uses the same framing) as well.

use bytes::Bytes;
use h264_reader::nal::sps::SeqParameterSet;
use h264_reader::rbsp::{BitReader, ByteReader};

use super::{be_u16, slice, truncated, write_annexb, CodecError};

/// At most this many SPS or PPS in one record. The record's SPS count is a 5-bit
/// field (<= 31) and H.264 allows 32 SPS ids and 256 PPS ids, but no encoder sends
/// more than a handful; the cap bounds what a hostile publisher can make us hold.
pub const MAX_PARAMETER_SETS: usize = 32;

/// Largest picture dimension we accept from an SPS, in pixels. H.264 level 6.2 allows
/// at most 139264 macroblocks per frame, i.e. 16880 pixels on a side at 8:1 aspect.
const MAX_DIMENSION: u32 = 16_896;

/// NAL unit type of a sequence parameter set.
const NAL_SPS: u8 = 7;

/// Parsed AVCDecoderConfigurationRecord.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvcDecoderConfig {
    /// AVCProfileIndication (profile_idc, e.g. 66 Baseline, 77 Main, 100 High).
    pub profile_indication: u8,
    /// profile_compatibility (the constraint_set flags byte of the SPS).
    pub profile_compatibility: u8,
    /// AVCLevelIndication (level_idc, 10 x level, e.g. 31 for 3.1).
    pub level_indication: u8,
    /// Size in bytes of the length prefix of each NAL unit in the samples (1, 2 or 4).
    pub nal_length_size: u8,
    /// Sequence parameter sets, each a complete NAL unit (with header byte).
    pub sps: Vec<Bytes>,
    /// Picture parameter sets, each a complete NAL unit.
    pub pps: Vec<Bytes>,
    /// Displayed width in pixels (after frame cropping), from the first SPS;
    /// 0 when the record carries no SPS (parameter sets in band).
    pub width: u32,
    /// Displayed height in pixels, as `width`.
    pub height: u32,
}

impl AvcDecoderConfig {
    /// Parses an AVCDecoderConfigurationRecord, e.g. the body of an FLV AVC sequence
    /// header after its 5-byte tag header. The parameter sets are copied out (once per
    /// stream), so the result does not borrow `data`. Trailing bytes (the optional
    /// High-profile chroma/bit-depth extension, or junk) are ignored.
    pub fn parse(data: &[u8]) -> Result<Self, CodecError> {
        const WHAT: &str = "AVCDecoderConfigurationRecord";
        let head = slice(data, 0, 6, WHAT)?;
        if head[0] != 1 {
            return Err(CodecError::UnsupportedVersion {
                what: WHAT,
                version: head[0],
            });
        }
        // lengthSizeMinusOne is 2 bits; a value of 2 (3-byte prefixes) is not allowed
        // by 14496-15, but framing it is harmless, so it is accepted.
        let nal_length_size = (head[4] & 0x03) + 1;
        let num_sps = usize::from(head[5] & 0x1f);
        let mut offset = 6;
        let sps = read_parameter_sets(data, &mut offset, num_sps, "AVC SPS")?;
        let num_pps = usize::from(
            *data
                .get(offset)
                .ok_or_else(|| truncated(data, offset, 1, WHAT))?,
        );
        offset += 1;
        let pps = read_parameter_sets(data, &mut offset, num_pps, "AVC PPS")?;

        let (width, height) = match sps.first() {
            Some(first) => sps_dimensions(first)?,
            None => (0, 0),
        };
        Ok(AvcDecoderConfig {
            profile_indication: head[1],
            profile_compatibility: head[2],
            level_indication: head[3],
            nal_length_size,
            sps,
            pps,
            width,
            height,
        })
    }

    /// The RFC 6381 `codecs` value, `avc1.PPCCLL` (profile, compatibility and level
    /// as uppercase hex), e.g. `avc1.64001F` for High profile level 3.1.
    pub fn codec_string(&self) -> String {
        format!(
            "avc1.{:02X}{:02X}{:02X}",
            self.profile_indication, self.profile_compatibility, self.level_indication
        )
    }

    /// Appends every SPS then every PPS, each behind a 4-byte Annex B start code:
    /// what an MPEG-TS muxer puts in front of each keyframe.
    pub fn write_annexb_parameter_sets(&self, out: &mut Vec<u8>) {
        write_annexb(self.sps.iter().chain(&self.pps).map(|b| &b[..]), out);
    }
}

/// Reads `count` u16-length-prefixed NAL units starting at `*offset`.
pub(crate) fn read_parameter_sets(
    data: &[u8],
    offset: &mut usize,
    count: usize,
    what: &'static str,
) -> Result<Vec<Bytes>, CodecError> {
    if count > MAX_PARAMETER_SETS {
        return Err(CodecError::TooManyParameterSets {
            what,
            limit: MAX_PARAMETER_SETS,
        });
    }
    let mut sets = Vec::with_capacity(count);
    for _ in 0..count {
        let len = usize::from(be_u16(data, *offset, what)?);
        let nal = slice(data, *offset + 2, len, what)?;
        *offset += 2 + len;
        sets.push(Bytes::copy_from_slice(nal));
    }
    Ok(sets)
}

/// Displayed (cropped) picture size from an SPS NAL unit, via `h264-reader`.
fn sps_dimensions(nal: &[u8]) -> Result<(u32, u32), CodecError> {
    let header = *nal
        .first()
        .ok_or(CodecError::Sps("empty SPS NAL unit".into()))?;
    if header & 0x1f != NAL_SPS {
        return Err(CodecError::InvalidValue {
            field: "SPS nal_unit_type",
            value: u64::from(header & 0x1f),
        });
    }
    let sps = SeqParameterSet::from_bits(BitReader::new(ByteReader::skipping_h264_header(nal)))
        .map_err(|e| CodecError::Sps(format!("{e:?}")))?;
    // Checked before asking h264-reader for the size so that its arithmetic cannot
    // overflow on hostile values.
    let max_units = MAX_DIMENSION / 16;
    if sps.pic_width_in_mbs_minus1 >= max_units || sps.pic_height_in_map_units_minus1 >= max_units {
        return Err(CodecError::InvalidValue {
            field: "SPS picture size in macroblocks",
            value: u64::from(
                sps.pic_width_in_mbs_minus1
                    .max(sps.pic_height_in_map_units_minus1),
            ),
        });
    }
    let (width, height) = sps
        .pixel_dimensions()
        .map_err(|e| CodecError::Sps(format!("{e:?}")))?;
    if width == 0 || height == 0 {
        return Err(CodecError::InvalidValue {
            field: "SPS cropped picture size",
            value: u64::from(width.min(height)),
        });
    }
    Ok((width, height))
}

/// Iterator over the NAL units of a length-prefixed ("AVCC") access unit, as
/// carried in FLV / MP4 samples. Zero-length NAL units are skipped. After the first
/// error it yields nothing more.
pub struct AvccNalus<'a> {
    data: &'a [u8],
    offset: usize,
    nal_length_size: u8,
    done: bool,
}

impl<'a> Iterator for AvccNalus<'a> {
    type Item = Result<&'a [u8], CodecError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        loop {
            if self.offset >= self.data.len() {
                self.done = true;
                return None;
            }
            match self.next_nalu() {
                Ok([]) => continue,
                Ok(nal) => return Some(Ok(nal)),
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

impl<'a> AvccNalus<'a> {
    fn next_nalu(&mut self) -> Result<&'a [u8], CodecError> {
        if !(1..=4).contains(&self.nal_length_size) {
            return Err(CodecError::InvalidNalLengthSize(self.nal_length_size));
        }
        let size = usize::from(self.nal_length_size);
        let prefix =
            self.data
                .get(self.offset..self.offset + size)
                .ok_or(CodecError::NalOverrun {
                    offset: self.offset,
                    len: size,
                    available: self.data.len() - self.offset,
                })?;
        let len = prefix
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        let start = self.offset + size;
        let nal = start
            .checked_add(len)
            .and_then(|end| self.data.get(start..end))
            .ok_or(CodecError::NalOverrun {
                offset: self.offset,
                len,
                available: self.data.len() - start,
            })?;
        self.offset = start + len;
        Ok(nal)
    }
}

/// Iterates over the NAL units of a length-prefixed access unit (H.264 or H.265),
/// borrowing from `data`. `nal_length_size` comes from the decoder configuration.
pub fn iter_avcc_nalus(data: &[u8], nal_length_size: u8) -> AvccNalus<'_> {
    AvccNalus {
        data,
        offset: 0,
        nal_length_size,
        done: false,
    }
}

/// Converts a length-prefixed access unit to Annex B, appending each NAL unit to
/// `out` behind a 4-byte start code. On error `out` is left as it was.
///
/// No emulation prevention is needed: NAL units never contain `00 00 01` or
/// `00 00 00 01`, that being the point of emulation prevention bytes.
pub fn avcc_to_annexb(
    data: &[u8],
    nal_length_size: u8,
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    let start_len = out.len();
    out.reserve(data.len() + 16);
    for nal in iter_avcc_nalus(data, nal_length_size) {
        match nal {
            Ok(nal) => {
                out.extend_from_slice(&[0, 0, 0, 1]);
                out.extend_from_slice(nal);
            }
            Err(e) => {
                out.truncate(start_len);
                return Err(e);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AVC sequence header from
    /// `ffmpeg -f lavfi -i testsrc2=size=640x360:rate=25 -f lavfi -i sine -t 1
    ///  -c:v libx264 -c:a aac -f flv x.flv` (ffmpeg 5.1.9, x264 core 164):
    /// the first video tag body without its 5-byte FLV header (`17 00 00 00 00`).
    /// ffprobe: h264 High, level 30, 640x360 (coded as 640x368, cropped).
    const AVCC_640X360: [u8; 47] = [
        0x01, 0x64, 0x00, 0x1e, 0xff, 0xe1, 0x00, 0x1a, 0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9, 0x40,
        0xa0, 0x2f, 0xf9, 0x70, 0x11, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x03, 0x00, 0x32,
        0x0f, 0x16, 0x2d, 0x96, 0x01, 0x00, 0x06, 0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0, 0xfd, 0xf8,
        0xf8, 0x00,
    ];

    /// Same command at `size=1920x1080` (`-t 0.2`): ffprobe h264 High, level 40,
    /// 1920x1080 (coded 1920x1088 with 8 rows cropped at the bottom).
    const AVCC_1920X1080: [u8; 48] = [
        0x01, 0x64, 0x00, 0x28, 0xff, 0xe1, 0x00, 0x1b, 0x67, 0x64, 0x00, 0x28, 0xac, 0xd9, 0x40,
        0x78, 0x02, 0x27, 0xe5, 0xc0, 0x44, 0x00, 0x00, 0x03, 0x00, 0x04, 0x00, 0x00, 0x03, 0x00,
        0xc8, 0x3c, 0x60, 0xc6, 0x58, 0x01, 0x00, 0x06, 0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0, 0xfd,
        0xf8, 0xf8, 0x00,
    ];

    #[test]
    fn parses_ffmpeg_avcc_640x360() {
        let c = AvcDecoderConfig::parse(&AVCC_640X360).unwrap();
        assert_eq!(c.profile_indication, 100);
        assert_eq!(c.profile_compatibility, 0);
        assert_eq!(c.level_indication, 30);
        assert_eq!(c.nal_length_size, 4);
        assert_eq!(c.sps.len(), 1);
        assert_eq!(c.sps[0].len(), 26);
        assert_eq!(c.pps.len(), 1);
        assert_eq!(&c.pps[0][..], &[0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0]);
        assert_eq!((c.width, c.height), (640, 360));
        assert_eq!(c.codec_string(), "avc1.64001E");
    }

    #[test]
    fn parses_ffmpeg_avcc_1080p_with_cropping() {
        let c = AvcDecoderConfig::parse(&AVCC_1920X1080).unwrap();
        assert_eq!((c.width, c.height), (1920, 1080));
        assert_eq!(c.codec_string(), "avc1.640028");
    }

    #[test]
    fn writes_parameter_sets_as_annexb() {
        let c = AvcDecoderConfig::parse(&AVCC_640X360).unwrap();
        let mut out = vec![];
        c.write_annexb_parameter_sets(&mut out);
        assert_eq!(out.len(), 4 + 26 + 4 + 6);
        assert_eq!(&out[..5], &[0, 0, 0, 1, 0x67]);
        assert_eq!(&out[30..35], &[0, 0, 0, 1, 0x68]);
    }

    #[test]
    fn rejects_bad_records() {
        assert!(matches!(
            AvcDecoderConfig::parse(&[]),
            Err(CodecError::Truncated { .. })
        ));
        let mut v = AVCC_640X360;
        v[0] = 0;
        assert_eq!(
            AvcDecoderConfig::parse(&v),
            Err(CodecError::UnsupportedVersion {
                what: "AVCDecoderConfigurationRecord",
                version: 0
            })
        );
        // Every truncation of a valid record is an error, never a panic.
        // (The record proper is 43 bytes; 4 bytes of High-profile extension follow.)
        for n in 0..43 {
            assert!(
                AvcDecoderConfig::parse(&AVCC_640X360[..n]).is_err(),
                "len {n}"
            );
        }
        // Too many PPS.
        let mut v = AVCC_640X360[..34].to_vec();
        v.push(33);
        assert_eq!(
            AvcDecoderConfig::parse(&v),
            Err(CodecError::TooManyParameterSets {
                what: "AVC PPS",
                limit: 32
            })
        );
        // Flip every bit of the SPS in turn: h264-reader sees hostile SPS values and
        // must answer with errors or sizes, never panics.
        for i in 8..34 {
            for bit in 0..8 {
                let mut v = AVCC_640X360;
                v[i] ^= 1 << bit;
                let _ = AvcDecoderConfig::parse(&v);
            }
        }
        // A PPS where the SPS should be.
        let mut v = AVCC_640X360;
        v[8] = 0x68;
        assert!(AvcDecoderConfig::parse(&v).is_err());
    }

    #[test]
    fn record_without_parameter_sets_has_unknown_size() {
        let c = AvcDecoderConfig::parse(&[1, 0x42, 0xc0, 0x1e, 0xff, 0xe0, 0x00]).unwrap();
        assert_eq!((c.width, c.height, c.nal_length_size), (0, 0, 4));
        assert_eq!(c.codec_string(), "avc1.42C01E");
    }

    #[test]
    fn avcc_to_annexb_converts_and_rolls_back_on_error() {
        let au = [
            0, 0, 0, 2, 0x09, 0xf0, 0, 0, 0, 0, 0, 0, 0, 3, 0x65, 0x88, 0x84,
        ];
        let mut out = vec![0xaa];
        avcc_to_annexb(&au, 4, &mut out).unwrap();
        assert_eq!(
            out,
            [0xaa, 0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, 0x65, 0x88, 0x84]
        );
        let mut out = vec![0xaa];
        let err = avcc_to_annexb(&au[..16], 4, &mut out).unwrap_err();
        assert_eq!(
            err,
            CodecError::NalOverrun {
                offset: 10,
                len: 3,
                available: 2
            }
        );
        assert_eq!(out, [0xaa]);
        assert_eq!(
            avcc_to_annexb(&au, 0, &mut out),
            Err(CodecError::InvalidNalLengthSize(0))
        );
        assert_eq!(
            avcc_to_annexb(&au, 5, &mut out),
            Err(CodecError::InvalidNalLengthSize(5))
        );
    }

    #[test]
    fn iterates_nalus_with_short_prefixes() {
        let au = [0, 2, 0xaa, 0xbb, 0, 1, 0xcc, 0];
        let nalus: Vec<_> = iter_avcc_nalus(&au, 2).collect();
        assert_eq!(nalus.len(), 3);
        assert_eq!(nalus[0], Ok(&[0xaa, 0xbb][..]));
        assert_eq!(nalus[1], Ok(&[0xcc][..]));
        assert!(nalus[2].is_err());
        let nalus: Vec<_> = iter_avcc_nalus(&[1, 0x41, 2, 0x41, 0x42], 1).collect();
        assert_eq!(nalus, vec![Ok(&[0x41][..]), Ok(&[0x41, 0x42][..])]);
        assert_eq!(iter_avcc_nalus(&[], 4).count(), 0);
    }
}
