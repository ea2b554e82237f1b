//! H.265 / HEVC: the `hvcC` decoder configuration record (ISO/IEC 14496-15
//! 8.3.3.1), as carried in an Enhanced RTMP `hvc1` SequenceStart or a legacy
//! codec-id-12 FLV sequence header.
//!
//! The picture size comes from the first SPS, parsed here up to the conformance
//! window (H.265 7.3.2.2.1); nothing after it is read. The AVCC length-prefix helpers
//! in [`super::h264`] apply unchanged to HEVC samples.

use bytes::Bytes;

use super::h264::MAX_PARAMETER_SETS;
use super::{be_u16, nal_to_rbsp, slice, truncated, write_annexb, BitReader, CodecError};

/// Largest picture dimension we accept, in luma samples. H.265 level 6.2 allows
/// 35,651,584 luma samples per picture and at most sqrt(8 x that) = 16888 on a side.
const MAX_DIMENSION: u64 = 16_888;

/// The SPS fields we need end well within the first 512 RBSP bytes (the
/// profile_tier_level structure is at most 2 + 12 + 2 + 6 x 12 bytes).
const MAX_SPS_RBSP: usize = 512;

const NAL_VPS: u8 = 32;
const NAL_SPS: u8 = 33;
const NAL_PPS: u8 = 34;

/// Parsed HEVCDecoderConfigurationRecord.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HevcDecoderConfig {
    /// general_profile_space (0 in every deployed stream).
    pub general_profile_space: u8,
    /// general_tier_flag: false = Main tier, true = High tier.
    pub general_tier_flag: bool,
    /// general_profile_idc (1 Main, 2 Main 10, 3 Main Still Picture, 4 Range Extensions).
    pub general_profile_idc: u8,
    /// general_profile_compatibility_flags, flag 0 in the most significant bit.
    pub general_profile_compatibility_flags: u32,
    /// The 48 general constraint indicator flags (progressive_source_flag first, in
    /// bit 47), in the low 48 bits.
    pub general_constraint_indicator_flags: u64,
    /// general_level_idc (30 x level, e.g. 93 for level 3.1).
    pub general_level_idc: u8,
    /// chroma_format_idc from the record (0 mono, 1 4:2:0, 2 4:2:2, 3 4:4:4).
    pub chroma_format_idc: u8,
    pub bit_depth_luma: u8,
    pub bit_depth_chroma: u8,
    /// Size in bytes of the length prefix of each NAL unit in the samples.
    pub nal_length_size: u8,
    /// Video, sequence and picture parameter sets, each a complete NAL unit
    /// (2-byte header included). SEI and other arrays of the record are skipped.
    pub vps: Vec<Bytes>,
    pub sps: Vec<Bytes>,
    pub pps: Vec<Bytes>,
    /// Displayed width in luma samples (after the conformance window), from the first
    /// SPS of the base layer; 0 when the record carries no SPS.
    pub width: u32,
    /// Displayed height, as `width`.
    pub height: u32,
}

impl HevcDecoderConfig {
    /// Parses an HEVCDecoderConfigurationRecord: 23 fixed bytes, then `numOfArrays`
    /// arrays of length-prefixed NAL units. Parameter sets are copied out (once per
    /// stream). Trailing bytes are ignored.
    pub fn parse(data: &[u8]) -> Result<Self, CodecError> {
        const WHAT: &str = "HEVCDecoderConfigurationRecord";
        let h = slice(data, 0, 23, WHAT)?;
        if h[0] != 1 {
            return Err(CodecError::UnsupportedVersion {
                what: WHAT,
                version: h[0],
            });
        }
        let general_constraint_indicator_flags = h[6..12]
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        let mut config = HevcDecoderConfig {
            general_profile_space: h[1] >> 6,
            general_tier_flag: h[1] & 0x20 != 0,
            general_profile_idc: h[1] & 0x1f,
            general_profile_compatibility_flags: u32::from_be_bytes([h[2], h[3], h[4], h[5]]),
            general_constraint_indicator_flags,
            general_level_idc: h[12],
            chroma_format_idc: h[16] & 0x03,
            bit_depth_luma: (h[17] & 0x07) + 8,
            bit_depth_chroma: (h[18] & 0x07) + 8,
            // lengthSizeMinusOne; 2 (3-byte prefixes) is tolerated as for AVC.
            nal_length_size: (h[21] & 0x03) + 1,
            vps: Vec::new(),
            sps: Vec::new(),
            pps: Vec::new(),
            width: 0,
            height: 0,
        };

        let num_arrays = h[22];
        let mut offset = 23;
        for _ in 0..num_arrays {
            let nal_type = *data
                .get(offset)
                .ok_or_else(|| truncated(data, offset, 1, WHAT))?
                & 0x3f;
            let num_nalus = be_u16(data, offset + 1, WHAT)?;
            offset += 3;
            let (mut target, what) = match nal_type {
                NAL_VPS => (Some(&mut config.vps), "HEVC VPS"),
                NAL_SPS => (Some(&mut config.sps), "HEVC SPS"),
                NAL_PPS => (Some(&mut config.pps), "HEVC PPS"),
                _ => (None, "HEVC NAL unit array"),
            };
            // Each NAL unit takes at least its 2-byte length, so this loop is bounded
            // by the input length even for num_nalus = 65535.
            for _ in 0..num_nalus {
                let len = usize::from(be_u16(data, offset, what)?);
                let nal = slice(data, offset + 2, len, what)?;
                offset += 2 + len;
                if let Some(sets) = target.as_mut() {
                    if sets.len() >= MAX_PARAMETER_SETS {
                        return Err(CodecError::TooManyParameterSets {
                            what,
                            limit: MAX_PARAMETER_SETS,
                        });
                    }
                    sets.push(Bytes::copy_from_slice(nal));
                }
            }
        }

        // Multi-layer (SHVC / MV-HEVC) records may carry SPS with nuh_layer_id > 0,
        // whose syntax differs; the displayed size is the base layer's.
        let base_sps = config
            .sps
            .iter()
            .find(|s| s.len() >= 2 && ((s[0] & 0x01) << 5 | s[1] >> 3) == 0);
        if let Some(sps) = base_sps {
            let dims = parse_sps_dimensions(sps)?;
            config.width = dims.width;
            config.height = dims.height;
        }
        Ok(config)
    }

    /// The RFC 6381 `codecs` value per ISO/IEC 14496-15 Annex E.3, with the `hvc1`
    /// sample entry (parameter sets out of band, as in our fMP4 and FLV output):
    ///
    /// `hvc1.<space><profile_idc>.<compat>.<tier><level_idc>.<constraints>`
    ///
    /// * `space`: empty for general_profile_space 0, else `A`, `B` or `C`;
    /// * `compat`: the 32 compatibility flags in reverse bit order, hex, no leading zeros;
    /// * `tier`: `L` (Main) or `H` (High), then the level_idc in decimal;
    /// * `constraints`: the six constraint-flag bytes, each in hex, dot-separated,
    ///   trailing zero bytes omitted (at least one byte is kept).
    ///
    /// E.g. `hvc1.1.6.L93.B0` for Main profile, level 3.1, progressive, non-packed,
    /// frame-only. Hex digits are uppercase and unpadded, as in the Annex E examples.
    pub fn codec_string(&self) -> String {
        let space = match self.general_profile_space {
            0 => "",
            1 => "A",
            2 => "B",
            _ => "C",
        };
        let tier = if self.general_tier_flag { 'H' } else { 'L' };
        let mut s = format!(
            "hvc1.{space}{}.{:X}.{tier}{}",
            self.general_profile_idc,
            self.general_profile_compatibility_flags.reverse_bits(),
            self.general_level_idc
        );
        let bytes = self.general_constraint_indicator_flags.to_be_bytes();
        let constraints = &bytes[2..];
        let keep = constraints
            .iter()
            .rposition(|&b| b != 0)
            .map_or(1, |last| last + 1);
        for b in &constraints[..keep] {
            s.push_str(&format!(".{b:X}"));
        }
        s
    }

    /// Appends every VPS, SPS and PPS, each behind a 4-byte Annex B start code.
    pub fn write_annexb_parameter_sets(&self, out: &mut Vec<u8>) {
        let sets = self.vps.iter().chain(&self.sps).chain(&self.pps);
        write_annexb(sets.map(|b| &b[..]), out);
    }
}

/// Picture size fields read from an H.265 SPS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SpsDimensions {
    coded_width: u32,
    coded_height: u32,
    width: u32,
    height: u32,
}

/// Parses a base-layer SPS NAL unit (with its 2-byte header) up to the conformance
/// window: H.265 7.3.2.2.1.
fn parse_sps_dimensions(nal: &[u8]) -> Result<SpsDimensions, CodecError> {
    let header = slice(nal, 0, 2, "HEVC SPS NAL header")?;
    let nal_type = (header[0] >> 1) & 0x3f;
    if nal_type != NAL_SPS {
        return Err(CodecError::InvalidValue {
            field: "SPS nal_unit_type",
            value: u64::from(nal_type),
        });
    }
    let rbsp = nal_to_rbsp(&nal[2..], MAX_SPS_RBSP);
    let mut r = BitReader::new(&rbsp);
    r.skip_bits(4, "sps_video_parameter_set_id")?;
    let max_sub_layers_minus1 = r.read_bits(3, "sps_max_sub_layers_minus1")?;
    if max_sub_layers_minus1 > 6 {
        return Err(CodecError::InvalidValue {
            field: "sps_max_sub_layers_minus1",
            value: u64::from(max_sub_layers_minus1),
        });
    }
    r.skip_bits(1, "sps_temporal_id_nesting_flag")?;
    skip_profile_tier_level(&mut r, max_sub_layers_minus1 as usize)?;
    let sps_id = r.read_ue("sps_seq_parameter_set_id")?;
    if sps_id > 15 {
        return Err(CodecError::InvalidValue {
            field: "sps_seq_parameter_set_id",
            value: u64::from(sps_id),
        });
    }
    let chroma_format_idc = r.read_ue("chroma_format_idc")?;
    let separate_colour_plane = match chroma_format_idc {
        0..=2 => false,
        3 => r.read_bit("separate_colour_plane_flag")?,
        v => {
            return Err(CodecError::InvalidValue {
                field: "chroma_format_idc",
                value: u64::from(v),
            })
        }
    };
    let coded_width = u64::from(r.read_ue("pic_width_in_luma_samples")?);
    let coded_height = u64::from(r.read_ue("pic_height_in_luma_samples")?);
    for (field, v) in [
        ("pic_width_in_luma_samples", coded_width),
        ("pic_height_in_luma_samples", coded_height),
    ] {
        if v == 0 || v > MAX_DIMENSION {
            return Err(CodecError::InvalidValue { field, value: v });
        }
    }
    let (mut width, mut height) = (coded_width, coded_height);
    if r.read_bit("conformance_window_flag")? {
        let left = u64::from(r.read_ue("conf_win_left_offset")?);
        let right = u64::from(r.read_ue("conf_win_right_offset")?);
        let top = u64::from(r.read_ue("conf_win_top_offset")?);
        let bottom = u64::from(r.read_ue("conf_win_bottom_offset")?);
        // Offsets are in chroma sample units: Table 6-1 SubWidthC / SubHeightC, with
        // ChromaArrayType 0 (monochrome or separate planes) counting luma samples.
        let (sub_width, sub_height) = match (chroma_format_idc, separate_colour_plane) {
            (1, _) => (2, 2),
            (2, _) => (2, 1),
            _ => (1, 1),
        };
        width = coded_width
            .checked_sub(sub_width * (left + right))
            .filter(|&w| w > 0)
            .ok_or(CodecError::InvalidValue {
                field: "conformance window width",
                value: left + right,
            })?;
        height = coded_height
            .checked_sub(sub_height * (top + bottom))
            .filter(|&h| h > 0)
            .ok_or(CodecError::InvalidValue {
                field: "conformance window height",
                value: top + bottom,
            })?;
    }
    // All four values are <= MAX_DIMENSION, so the casts are lossless.
    Ok(SpsDimensions {
        coded_width: coded_width as u32,
        coded_height: coded_height as u32,
        width: width as u32,
        height: height as u32,
    })
}

/// Skips profile_tier_level(1, max_sub_layers_minus1): H.265 7.3.3.
fn skip_profile_tier_level(
    r: &mut BitReader<'_>,
    max_sub_layers_minus1: usize,
) -> Result<(), CodecError> {
    // general_profile_space .. general_level_idc: 2+1+5+32+4+43+1+8 = 96 bits.
    r.skip_bits(96, "general profile_tier_level")?;
    let mut profile_present = [false; 6];
    let mut level_present = [false; 6];
    for i in 0..max_sub_layers_minus1 {
        profile_present[i] = r.read_bit("sub_layer_profile_present_flag")?;
        level_present[i] = r.read_bit("sub_layer_level_present_flag")?;
    }
    if max_sub_layers_minus1 > 0 {
        // reserved_zero_2bits for i in max_sub_layers_minus1..8.
        r.skip_bits(2 * (8 - max_sub_layers_minus1), "reserved_zero_2bits")?;
    }
    for i in 0..max_sub_layers_minus1 {
        if profile_present[i] {
            // sub_layer_profile_space .. sub_layer_inbld_flag / reserved bit: 88 bits.
            r.skip_bits(88, "sub_layer profile")?;
        }
        if level_present[i] {
            r.skip_bits(8, "sub_layer_level_idc")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // hvcC boxes extracted from MP4 files written by ffmpeg 5.1.9 with libx265 3.5
    // (`-x265-params info=0` so the record holds no SEI array):
    //   ffmpeg -f lavfi -i testsrc2=size=640x360:rate=25 -t 0.2 -c:v libx265
    //          -x265-params info=0 -tag:v hvc1 -f mp4 h360.mp4
    // then the payload of moov/trak/mdia/minf/stbl/stsd/hvc1/hvcC. ffprobe reports
    // hevc Main, level 63 (2.1), 640x360 for this one.
    const HVCC_640X360: [u8; 111] = [
        0x01, 0x01, 0x60, 0x00, 0x00, 0x00, 0x90, 0x00, 0x00, 0x00, 0x00, 0x00, 0x3f, 0xf0, 0x00,
        0xfc, 0xfd, 0xf8, 0xf8, 0x00, 0x00, 0x0f, 0x03, 0xa0, 0x00, 0x01, 0x00, 0x18, 0x40, 0x01,
        0x0c, 0x01, 0xff, 0xff, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00,
        0x00, 0x03, 0x00, 0x3f, 0x95, 0x98, 0x09, 0xa1, 0x00, 0x01, 0x00, 0x2a, 0x42, 0x01, 0x01,
        0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03, 0x00, 0x3f,
        0xa0, 0x05, 0x02, 0x01, 0x69, 0x65, 0x95, 0x9a, 0x49, 0x32, 0xbc, 0x05, 0xa0, 0x20, 0x00,
        0x00, 0x03, 0x00, 0x20, 0x00, 0x00, 0x03, 0x03, 0x21, 0xa2, 0x00, 0x01, 0x00, 0x07, 0x44,
        0x01, 0xc1, 0x72, 0xb4, 0x62, 0x40,
    ];

    // Same at size=1920x1080 with `-x265-params info=0:min-cu-size=16`: 1080 is not a
    // multiple of 16, so the SPS codes 1088 rows and crops 8 with the conformance window.
    // ffprobe: hevc Main, level 120 (4.0), 1920x1080.
    const HVCC_1920X1080: [u8; 112] = [
        0x01, 0x01, 0x60, 0x00, 0x00, 0x00, 0x90, 0x00, 0x00, 0x00, 0x00, 0x00, 0x78, 0xf0, 0x00,
        0xfc, 0xfd, 0xf8, 0xf8, 0x00, 0x00, 0x0f, 0x03, 0xa0, 0x00, 0x01, 0x00, 0x18, 0x40, 0x01,
        0x0c, 0x01, 0xff, 0xff, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00,
        0x00, 0x03, 0x00, 0x78, 0x95, 0x98, 0x09, 0xa1, 0x00, 0x01, 0x00, 0x2b, 0x42, 0x01, 0x01,
        0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03, 0x00, 0x78,
        0xa0, 0x03, 0xc0, 0x80, 0x11, 0x07, 0xcb, 0x96, 0x56, 0x64, 0xe4, 0xca, 0xf0, 0x16, 0x80,
        0x80, 0x00, 0x00, 0x03, 0x00, 0x80, 0x00, 0x00, 0x0c, 0x84, 0xa2, 0x00, 0x01, 0x00, 0x07,
        0x44, 0x01, 0xc1, 0x72, 0xb4, 0x62, 0x40,
    ];

    // size=636x358 with `-pix_fmt yuv422p -x265-params info=0`: 4:2:2 (SubWidthC 2,
    // SubHeightC 1), coded 640x360 and cropped on the right and bottom.
    // ffprobe: hevc Rext, level 63, 636x358, yuv422p.
    const HVCC_636X358_422: [u8; 110] = [
        0x01, 0x04, 0x08, 0x00, 0x00, 0x00, 0x9d, 0x08, 0x00, 0x00, 0x00, 0x00, 0x3f, 0xf0, 0x00,
        0xfc, 0xfe, 0xf8, 0xf8, 0x00, 0x00, 0x0f, 0x03, 0xa0, 0x00, 0x01, 0x00, 0x17, 0x40, 0x01,
        0x0c, 0x01, 0xff, 0xff, 0x04, 0x08, 0x00, 0x00, 0x03, 0x00, 0x9d, 0x08, 0x00, 0x00, 0x03,
        0x00, 0x00, 0x3f, 0x95, 0x98, 0x09, 0xa1, 0x00, 0x01, 0x00, 0x2a, 0x42, 0x01, 0x01, 0x04,
        0x08, 0x00, 0x00, 0x03, 0x00, 0x9d, 0x08, 0x00, 0x00, 0x03, 0x00, 0x00, 0x3f, 0xb0, 0x05,
        0x02, 0x01, 0x69, 0xdd, 0xe5, 0x95, 0x9a, 0x49, 0x32, 0xbc, 0x05, 0xa0, 0x20, 0x00, 0x00,
        0x03, 0x00, 0x20, 0x00, 0x00, 0x03, 0x03, 0x21, 0xa2, 0x00, 0x01, 0x00, 0x07, 0x44, 0x01,
        0xc1, 0x72, 0xb4, 0x62, 0x40,
    ];

    #[test]
    fn parses_x265_hvcc_640x360() {
        let c = HevcDecoderConfig::parse(&HVCC_640X360).unwrap();
        assert_eq!(c.general_profile_space, 0);
        assert!(!c.general_tier_flag);
        assert_eq!(c.general_profile_idc, 1);
        assert_eq!(c.general_profile_compatibility_flags, 0x6000_0000);
        assert_eq!(c.general_constraint_indicator_flags, 0x9000_0000_0000);
        assert_eq!(c.general_level_idc, 63);
        assert_eq!(
            (c.chroma_format_idc, c.bit_depth_luma, c.bit_depth_chroma),
            (1, 8, 8)
        );
        assert_eq!(c.nal_length_size, 4);
        assert_eq!((c.vps.len(), c.sps.len(), c.pps.len()), (1, 1, 1));
        assert_eq!(c.sps[0][0] >> 1, 33);
        assert_eq!((c.width, c.height), (640, 360));
        let dims = parse_sps_dimensions(&c.sps[0]).unwrap();
        assert_eq!((dims.coded_width, dims.coded_height), (640, 360));
        // Main profile (compatible with Main and Main 10), Main tier, level 2.1,
        // progressive_source_flag + frame_only_constraint_flag.
        assert_eq!(c.codec_string(), "hvc1.1.6.L63.90");
    }

    #[test]
    fn applies_conformance_window_420() {
        let c = HevcDecoderConfig::parse(&HVCC_1920X1080).unwrap();
        let dims = parse_sps_dimensions(&c.sps[0]).unwrap();
        assert_eq!((dims.coded_width, dims.coded_height), (1920, 1088));
        assert_eq!((c.width, c.height), (1920, 1080));
        assert_eq!(c.codec_string(), "hvc1.1.6.L120.90");
    }

    #[test]
    fn applies_conformance_window_422() {
        let c = HevcDecoderConfig::parse(&HVCC_636X358_422).unwrap();
        assert_eq!(c.chroma_format_idc, 2);
        let dims = parse_sps_dimensions(&c.sps[0]).unwrap();
        assert_eq!((dims.coded_width, dims.coded_height), (640, 360));
        assert_eq!((c.width, c.height), (636, 358));
        // Range extensions profile (compatibility flag 4), constraint bytes 9D 08.
        assert_eq!(c.codec_string(), "hvc1.4.10.L63.9D.8");
    }

    #[test]
    fn codec_string_forms() {
        let mut c = HevcDecoderConfig::parse(&HVCC_640X360).unwrap();
        c.general_level_idc = 93;
        c.general_constraint_indicator_flags = 0xb000_0000_0000;
        assert_eq!(c.codec_string(), "hvc1.1.6.L93.B0");
        c.general_profile_space = 1;
        c.general_tier_flag = true;
        c.general_constraint_indicator_flags = 0;
        assert_eq!(c.codec_string(), "hvc1.A1.6.H93.0");
    }

    #[test]
    fn writes_parameter_sets_as_annexb() {
        let c = HevcDecoderConfig::parse(&HVCC_640X360).unwrap();
        let mut out = vec![];
        c.write_annexb_parameter_sets(&mut out);
        assert_eq!(out.len(), 3 * 4 + 24 + 42 + 7);
        assert_eq!(&out[..5], &[0, 0, 0, 1, 0x40]);
    }

    #[test]
    fn rejects_bad_records_without_panicking() {
        for n in 0..HVCC_640X360.len() {
            assert!(
                HevcDecoderConfig::parse(&HVCC_640X360[..n]).is_err(),
                "len {n}"
            );
        }
        let mut v = HVCC_640X360;
        v[0] = 2;
        assert!(matches!(
            HevcDecoderConfig::parse(&v),
            Err(CodecError::UnsupportedVersion { version: 2, .. })
        ));
        // A record with no arrays is valid; the size is then unknown.
        let c = HevcDecoderConfig::parse(&[&HVCC_640X360[..22], &[0]].concat()).unwrap();
        assert_eq!((c.width, c.height), (0, 0));
        // Flip every bit of the SPS payload in turn: errors or sizes, never panics.
        let sps_start = 57;
        for i in sps_start..sps_start + 42 {
            for bit in 0..8 {
                let mut v = HVCC_640X360;
                v[i] ^= 1 << bit;
                let _ = HevcDecoderConfig::parse(&v);
            }
        }
    }

    #[test]
    fn caps_parameter_set_count() {
        let mut v = HVCC_640X360[..22].to_vec();
        v.push(1);
        v.extend_from_slice(&[0x21, 0, 33]);
        for _ in 0..33 {
            v.extend_from_slice(&[0, 1, 0x42]);
        }
        assert_eq!(
            HevcDecoderConfig::parse(&v),
            Err(CodecError::TooManyParameterSets {
                what: "HEVC SPS",
                limit: 32
            })
        );
    }
}
