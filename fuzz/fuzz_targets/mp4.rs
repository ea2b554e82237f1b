//! Fuzzes the MP4 recorder (`ferrocast_proto::mp4`): a publisher's FLV tags, which
//! are hostile input, go straight into a recording.
//!
//! The input is cut into tags (1 byte: kind and flags, 2 bytes: timestamp step,
//! 2 bytes: body length, then the body). Any tag may be rejected, none may panic;
//! a rejected tag appends nothing; the bytes handed out and the trailer add up to a
//! file whose patches all land inside it, on a box type field.

#![no_main]

use ferrocast_proto::flv::Bytes;
use ferrocast_proto::mp4::Mp4Recorder;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, mut rest)) = data.split_first() else {
        return;
    };
    let mut rec = Mp4Recorder::new(
        flags & 1 != 0,
        flags & 2 != 0,
        100 + u32::from(flags >> 2) * 10,
    );
    let mut out = Vec::new();
    let mut file_len = 0u64;
    let mut ts = 0u32;
    while rest.len() >= 5 {
        let kind = rest[0];
        ts = ts.wrapping_add(u32::from(u16::from_be_bytes([rest[1], rest[2]])) % 2000);
        let len = usize::from(u16::from_be_bytes([rest[3], rest[4]])).min(rest.len() - 5);
        let body = Bytes::copy_from_slice(&rest[5..5 + len]);
        rest = &rest[5 + len..];
        let before = out.len();
        let r = if kind & 1 == 0 {
            rec.write_video(ts, &body, &mut out)
        } else {
            rec.write_audio(ts, &body, &mut out)
        };
        if r.is_err() {
            assert_eq!(out.len(), before, "a rejected tag appended output");
        }
        file_len += out.drain(..).map(|b| b.len() as u64).sum::<u64>();
    }
    if let Ok(fin) = rec.finish(&mut out) {
        file_len += out.drain(..).map(|b| b.len() as u64).sum::<u64>();
        for (offset, _) in &fin.patches {
            assert!(
                offset + 4 <= file_len,
                "patch at {offset} outside {file_len} bytes"
            );
        }
    }
});
