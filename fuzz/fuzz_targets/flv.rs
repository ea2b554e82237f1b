//! Fuzzes the FLV tag parsers, the FLV file reader and the codec configuration
//! parsers they feed (`ferrocast_proto::flv`, `ferrocast_proto::codec`).
//!
//! Any input may be rejected, none may panic. The input is used four ways: as a
//! video tag body (and, behind the parsed header, as the codec configuration or the
//! length-prefixed access unit that header announces), as an audio tag body, as each
//! configuration record directly, and as an FLV file. Checked properties: a parsed
//! header never claims more bytes than the body has; Annex B conversion either
//! succeeds or leaves its output untouched; the file reader always moves forward,
//! and every tag it reads is written back by `write_tag` to a tag it reads the same.

#![no_main]

use ferrocast_proto::codec::aac::AudioSpecificConfig;
use ferrocast_proto::codec::h264::{avcc_to_annexb, iter_avcc_nalus, AvcDecoderConfig};
use ferrocast_proto::codec::h265::HevcDecoderConfig;
use ferrocast_proto::flv::{
    parse_audio_tag, parse_video_tag, read_file_header, read_tag, write_tag, AudioCodec, Bytes,
    BytesMut, VideoCodec, VideoPacketKind,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    video_tag(data);
    audio_tag(data);
    configs(data);
    flv_file(data);
});

fn video_tag(data: &[u8]) {
    let Ok(header) = parse_video_tag(data) else {
        return;
    };
    assert!(
        header.header_len <= data.len(),
        "{header:?} for {} bytes",
        data.len()
    );
    let payload = &data[header.header_len..];
    match (header.kind, header.codec) {
        (VideoPacketKind::SequenceHeader, VideoCodec::H264) => {
            let _ = AvcDecoderConfig::parse(payload);
        }
        (VideoPacketKind::SequenceHeader, VideoCodec::H265) => {
            let _ = HevcDecoderConfig::parse(payload);
        }
        (VideoPacketKind::Frame, VideoCodec::H264 | VideoCodec::H265) => {
            annexb(payload, 4);
        }
        _ => {}
    }
}

fn audio_tag(data: &[u8]) {
    let Ok(header) = parse_audio_tag(data) else {
        return;
    };
    assert!(
        header.header_len <= data.len(),
        "{header:?} for {} bytes",
        data.len()
    );
    if header.codec == AudioCodec::Aac && header.sequence_header {
        aac(&data[header.header_len..]);
    }
}

fn configs(data: &[u8]) {
    if let Ok(avc) = AvcDecoderConfig::parse(data) {
        assert!((1..=4).contains(&avc.nal_length_size));
        assert!(avc.sps.len() <= 32 && avc.pps.len() <= 32);
        assert_eq!(avc.width == 0, avc.sps.is_empty());
        let _ = avc.codec_string();
        let mut out = Vec::new();
        avc.write_annexb_parameter_sets(&mut out);
    }
    if let Ok(hevc) = HevcDecoderConfig::parse(data) {
        assert!((1..=4).contains(&hevc.nal_length_size));
        assert!(hevc.vps.len() <= 32 && hevc.sps.len() <= 32 && hevc.pps.len() <= 32);
        let _ = hevc.codec_string();
        let mut out = Vec::new();
        hevc.write_annexb_parameter_sets(&mut out);
    }
    aac(data);
    if let Some((&first, rest)) = data.split_first() {
        // Length sizes 0..=7, so the invalid ones are exercised too.
        annexb(rest, first & 0x07);
    }
}

fn aac(data: &[u8]) {
    if let Ok(asc) = AudioSpecificConfig::parse(data) {
        let _ = asc.codec_string();
        for len in [0, data.len(), 8184, 8185, usize::MAX] {
            if let Ok(h) = asc.adts_header(len) {
                assert_eq!(&h[..2], &[0xff, 0xf1]);
            }
        }
    }
}

fn annexb(au: &[u8], nal_length_size: u8) {
    let mut out = vec![0xaa];
    match avcc_to_annexb(au, nal_length_size, &mut out) {
        Ok(()) => {
            let nalus: Vec<_> = iter_avcc_nalus(au, nal_length_size)
                .collect::<Result<_, _>>()
                .expect("iterator agrees with avcc_to_annexb");
            let expected: usize = nalus.iter().map(|n| n.len() + 4).sum();
            assert_eq!(out.len(), 1 + expected);
        }
        Err(_) => assert_eq!(out, [0xaa], "output changed on error"),
    }
}

fn flv_file(data: &[u8]) {
    let buf = Bytes::copy_from_slice(data);
    // Read from the header if there is one, else from offset 0 (a bare tag stream).
    let mut offset = read_file_header(&buf).unwrap_or(0);
    while let Ok(Some((tag, next))) = read_tag(&buf, offset) {
        assert!(next > offset && next <= buf.len());
        let mut written = BytesMut::new();
        write_tag(&mut written, tag.tag_type, tag.timestamp, &tag.body);
        let written = written.freeze();
        let (again, end) = read_tag(&written, 0)
            .expect("our own tag reads back")
            .expect("our own tag is not empty");
        assert_eq!(again, tag);
        assert_eq!(end, written.len());
        offset = next;
    }
}
