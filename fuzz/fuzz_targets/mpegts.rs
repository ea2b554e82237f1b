//! Fuzzes the MPEG-TS muxer (`ferrocast_proto::mpegts`) with a stream of pseudo FLV
//! tags, so sequence headers, frames and table requests interleave the way a hostile
//! publisher could make them.
//!
//! Input format, repeated until the data runs out: one byte of tag kind (low two bits:
//! 0 video, 1 audio, 2 `write_tables`, 3 video with an AVC NALU header forced onto the
//! body so frames get past the header check more often), three bytes of timestamp
//! (big-endian ms), two bytes of body length (big-endian, clipped to what is left),
//! then the body.
//!
//! Checked properties: no panic; every call leaves the output a whole number of
//! 188-byte packets, each starting with the sync byte; a call that returns `Err`
//! appends nothing.

#![no_main]

use ferrocast_proto::mpegts::{BytesMut, TsMuxer, TS_PACKET_SIZE};
use libfuzzer_sys::fuzz_target;

/// Keep the output buffer small: the properties are per call, not per stream.
const FLUSH_AT: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let mut mux = TsMuxer::new();
    let mut out = BytesMut::new();
    let mut rest = data;
    while rest.len() >= 6 {
        let kind = rest[0] & 3;
        let timestamp = u32::from_be_bytes([0, rest[1], rest[2], rest[3]]);
        let len = usize::from(u16::from_be_bytes([rest[4], rest[5]])).min(rest.len() - 6);
        let mut body = rest[6..6 + len].to_vec();
        rest = &rest[6 + len..];

        let before = out.len();
        let result = match kind {
            0 => mux.write_video(timestamp, &body, &mut out),
            1 => mux.write_audio(timestamp, &body, &mut out),
            2 => {
                mux.write_tables(&mut out);
                Ok(None)
            }
            _ => {
                if body.len() >= 2 {
                    body[0] = if body[0] & 1 == 0 { 0x17 } else { 0x27 };
                    body[1] = 1;
                }
                mux.write_video(timestamp, &body, &mut out)
            }
        };
        if result.is_err() {
            assert_eq!(out.len(), before, "output written on {result:?}");
        }
        assert_eq!(
            out.len() % TS_PACKET_SIZE,
            0,
            "partial packet after {result:?}"
        );
        assert!(
            out[before..].chunks(TS_PACKET_SIZE).all(|p| p[0] == 0x47),
            "missing sync byte after {result:?}"
        );
        if out.len() > FLUSH_AT {
            out.clear();
        }
    }
});
