//! AAC: the MPEG-4 AudioSpecificConfig (ISO/IEC 14496-3 1.6.2.1, the FLV AAC
//! sequence header) and the 7-byte ADTS header (14496-3 1.A.2.2) that MPEG-TS and
//! raw `.aac` output put in front of every frame.

use super::{BitReader, CodecError};

/// Sampling frequencies by samplingFrequencyIndex (14496-3 Table 1.18); 13 and 14
/// are reserved and 15 means an explicit 24-bit rate follows.
const SAMPLE_RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/// Largest ADTS frame: frame_length is a 13-bit field that includes the header.
const MAX_ADTS_FRAME: usize = 8191;
const ADTS_HEADER_LEN: usize = 7;

/// Object type of SBR (HE-AAC) and PS (HE-AAC v2) with explicit hierarchical signalling.
const AOT_SBR: u8 = 5;
const AOT_PS: u8 = 29;

/// The leading fields of an AudioSpecificConfig.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioSpecificConfig {
    /// audioObjectType as signalled first (2 = AAC LC, 5 = SBR, 29 = PS, ...).
    pub object_type: u8,
    /// samplingFrequencyIndex (15 = explicit rate).
    pub sampling_frequency_index: u8,
    /// Sampling rate in Hz of the core decoder (for HE-AAC this is half the output rate).
    pub sample_rate: u32,
    /// channelConfiguration (0 = defined by a program config element, 1..=7 by table).
    pub channel_configuration: u8,
    /// For explicit HE-AAC (object type 5 or 29): the underlying core object type
    /// (normally 2, AAC LC). Equal to `object_type` otherwise.
    pub core_object_type: u8,
}

impl AudioSpecificConfig {
    /// Parses the start of an AudioSpecificConfig: object type, sampling frequency,
    /// channel configuration and, for explicit SBR/PS signalling, the extension
    /// sampling frequency and core object type. Everything after (GASpecificConfig,
    /// sync extensions) is ignored.
    pub fn parse(data: &[u8]) -> Result<Self, CodecError> {
        let mut r = BitReader::new(data);
        let object_type = read_object_type(&mut r)?;
        let (sampling_frequency_index, sample_rate) = read_sampling_frequency(&mut r)?;
        let channel_configuration = r.read_bits(4, "channelConfiguration")? as u8;
        let mut core_object_type = object_type;
        if object_type == AOT_SBR || object_type == AOT_PS {
            // extensionSamplingFrequencyIndex (the output rate), then the core type.
            read_sampling_frequency(&mut r)?;
            core_object_type = read_object_type(&mut r)?;
        }
        Ok(AudioSpecificConfig {
            object_type,
            sampling_frequency_index,
            sample_rate,
            channel_configuration,
            core_object_type,
        })
    }

    /// The RFC 6381 `codecs` value, `mp4a.40.<object_type>` (e.g. `mp4a.40.2` for LC).
    pub fn codec_string(&self) -> String {
        format!("mp4a.40.{}", self.object_type)
    }

    /// Builds the 7-byte ADTS header (MPEG-4, no CRC) for one raw AAC frame of
    /// `payload_len` bytes.
    ///
    /// ADTS can only express object types 1..=4 (Main, LC, SSR, LTP) through its 2-bit
    /// profile, a table-coded sampling rate and channel configurations 1..=7. For
    /// explicit HE-AAC the core object type is written, the way implicit signalling
    /// works: the decoder finds the SBR/PS data in the frame itself.
    pub fn adts_header(&self, payload_len: usize) -> Result<[u8; 7], CodecError> {
        let object_type = self.core_object_type;
        if !(1..=4).contains(&object_type) {
            return Err(CodecError::Unsupported {
                what: "AAC object type in ADTS",
                value: u64::from(object_type),
            });
        }
        if usize::from(self.sampling_frequency_index) >= SAMPLE_RATES.len() {
            return Err(CodecError::Unsupported {
                what: "AAC sampling frequency index in ADTS",
                value: u64::from(self.sampling_frequency_index),
            });
        }
        if !(1..=7).contains(&self.channel_configuration) {
            return Err(CodecError::Unsupported {
                what: "AAC channel configuration in ADTS",
                value: u64::from(self.channel_configuration),
            });
        }
        let frame_len = payload_len
            .checked_add(ADTS_HEADER_LEN)
            .filter(|&n| n <= MAX_ADTS_FRAME)
            .ok_or(CodecError::Unsupported {
                what: "ADTS frame length",
                value: payload_len as u64,
            })?;
        let profile = object_type - 1;
        let sf = self.sampling_frequency_index;
        let ch = self.channel_configuration;
        let len = frame_len as u16;
        Ok([
            // syncword 0xFFF, ID 0 (MPEG-4), layer 00, protection_absent 1.
            0xff,
            0xf1,
            // profile (2) | sampling_frequency_index (4) | private_bit | channel_configuration[2]
            (profile << 6) | (sf << 2) | (ch >> 2),
            // channel_configuration[1..0] | original_copy | home | copyright bits | frame_length[12..11]
            ((ch & 0x03) << 6) | ((len >> 11) as u8 & 0x03),
            // frame_length[10..3]
            (len >> 3) as u8,
            // frame_length[2..0] | adts_buffer_fullness[10..6] (0x7FF = variable rate)
            (((len & 0x07) as u8) << 5) | 0x1f,
            // adts_buffer_fullness[5..0] | number_of_raw_data_blocks_in_frame - 1 = 0
            0xfc,
        ])
    }
}

/// GetAudioObjectType(): 5 bits, 31 escapes to 32 + 6 more bits.
fn read_object_type(r: &mut BitReader<'_>) -> Result<u8, CodecError> {
    let aot = r.read_bits(5, "audioObjectType")? as u8;
    if aot == 31 {
        Ok(32 + r.read_bits(6, "audioObjectTypeExt")? as u8)
    } else {
        Ok(aot)
    }
}

/// samplingFrequencyIndex, and the explicit 24-bit samplingFrequency when it is 15.
fn read_sampling_frequency(r: &mut BitReader<'_>) -> Result<(u8, u32), CodecError> {
    let index = r.read_bits(4, "samplingFrequencyIndex")? as u8;
    let rate = match index {
        15 => r.read_bits(24, "samplingFrequency")?,
        i => *SAMPLE_RATES
            .get(usize::from(i))
            .ok_or(CodecError::InvalidValue {
                field: "samplingFrequencyIndex",
                value: u64::from(i),
            })?,
    };
    if rate == 0 {
        return Err(CodecError::InvalidValue {
            field: "samplingFrequency",
            value: 0,
        });
    }
    Ok((index, rate))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AAC sequence header from
    /// `ffmpeg -f lavfi -i testsrc2=size=640x360:rate=25 -f lavfi -i sine -t 1
    ///  -c:v libx264 -c:a aac -f flv x.flv` (ffmpeg 5.1.9 native encoder): the first
    /// audio tag body is `af 00 12 08 56 e5 00`; this is it without the 2-byte FLV
    /// header. ffprobe: aac LC, 44100 Hz, 1 channel. The trailing `56 e5 00` is the
    /// backward-compatible SBR sync extension (0x2b7, SBR absent) that ffmpeg appends.
    const ASC_LC_44100_MONO: [u8; 5] = [0x12, 0x08, 0x56, 0xe5, 0x00];

    #[test]
    fn parses_ffmpeg_lc_config() {
        let c = AudioSpecificConfig::parse(&ASC_LC_44100_MONO).unwrap();
        assert_eq!(c.object_type, 2);
        assert_eq!(c.core_object_type, 2);
        assert_eq!(c.sampling_frequency_index, 4);
        assert_eq!(c.sample_rate, 44100);
        assert_eq!(c.channel_configuration, 1);
        assert_eq!(c.codec_string(), "mp4a.40.2");
    }

    #[test]
    fn parses_escapes() {
        // Object type 31 -> 32 + 6 bits (= 42, USAC), frequency index 15 with an
        // explicit 24-bit rate of 50000 Hz, two channels:
        let bits = [
            "11111",
            "001010",
            "1111",
            "000000001100001101010000",
            "0010",
        ]
        .concat();
        let mut data = vec![0u8; bits.len().div_ceil(8)];
        for (i, b) in bits.bytes().enumerate() {
            if b == b'1' {
                data[i / 8] |= 0x80 >> (i % 8);
            }
        }
        let c = AudioSpecificConfig::parse(&data).unwrap();
        assert_eq!(c.object_type, 42);
        assert_eq!(c.sampling_frequency_index, 15);
        assert_eq!(c.sample_rate, 50000);
        assert_eq!(c.channel_configuration, 2);
        assert_eq!(c.codec_string(), "mp4a.40.42");
        assert!(matches!(
            c.adts_header(10),
            Err(CodecError::Unsupported { .. })
        ));
    }

    #[test]
    fn parses_explicit_he_aac() {
        // AOT 5, 24 kHz core (index 6), stereo, extension 48 kHz (index 3), core AOT 2:
        // 00101 0110 0010 0011 00010 + pad = 2b 11 88
        let c = AudioSpecificConfig::parse(&[0x2b, 0x11, 0x88]).unwrap();
        assert_eq!((c.object_type, c.core_object_type), (5, 2));
        assert_eq!(c.sample_rate, 24000);
        assert_eq!(c.codec_string(), "mp4a.40.5");
        // ADTS carries the LC core.
        assert_eq!(c.adts_header(0).unwrap()[2] >> 6, 1);
    }

    #[test]
    fn rejects_bad_configs() {
        assert_eq!(
            AudioSpecificConfig::parse(&[]),
            Err(CodecError::BitsExhausted("audioObjectType"))
        );
        assert_eq!(
            AudioSpecificConfig::parse(&[0x12]),
            Err(CodecError::BitsExhausted("samplingFrequencyIndex"))
        );
        // Reserved frequency index 13.
        assert_eq!(
            AudioSpecificConfig::parse(&[0x16, 0x88]),
            Err(CodecError::InvalidValue {
                field: "samplingFrequencyIndex",
                value: 13
            })
        );
    }

    #[test]
    fn adts_header_matches_ffmpeg() {
        // The first ADTS header of `ffmpeg -i x.flv -vn -c:a copy -f adts x.aac` for
        // the config above, whose first raw frame (FLV audio tag of 260 bytes) is 258
        // bytes: ff f1 50 40 21 3f fc.
        let c = AudioSpecificConfig::parse(&ASC_LC_44100_MONO).unwrap();
        assert_eq!(
            c.adts_header(258).unwrap(),
            [0xff, 0xf1, 0x50, 0x40, 0x21, 0x3f, 0xfc]
        );
        let h = c.adts_header(8184).unwrap();
        let len = (usize::from(h[3] & 3) << 11) | (usize::from(h[4]) << 3) | usize::from(h[5] >> 5);
        assert_eq!(len, 8191);
        assert!(c.adts_header(8185).is_err());
        assert!(c.adts_header(usize::MAX).is_err());
        let mut mono0 = c;
        mono0.channel_configuration = 0;
        assert!(mono0.adts_header(10).is_err());
    }
}
