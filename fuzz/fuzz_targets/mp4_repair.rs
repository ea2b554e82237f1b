//! Fuzzes the MP4 repair walk (`ferrocast_proto::mp4::repair`): at start-up it reads
//! whatever a crash, a full disk or anyone with access to the record directory left
//! in an `.mp4` file.
//!
//! First byte even: the rest is the file. Odd: the file is a real interrupted
//! recording (the proto fixture `tiny.flv` recorded in 30 ms fragments), cut at
//! the length in the next two bytes and edited by the (offset, byte) triples that
//! follow, so the fuzzer starts from well-formed boxes instead of having to find a
//! valid `moov` by chance.
//!
//! Any bytes: no panic; the cut lands inside the file; every patch lands inside the
//! kept part; a result with samples has a trailer.

#![no_main]

use std::sync::OnceLock;

use ferrocast_proto::flv::{read_file_header, read_tag, Bytes, TAG_AUDIO, TAG_VIDEO};
use ferrocast_proto::mp4::{needs_repair, repair, Mp4Recorder};
use libfuzzer_sys::fuzz_target;

fn recording() -> &'static [u8] {
    static FILE: OnceLock<Vec<u8>> = OnceLock::new();
    FILE.get_or_init(|| {
        let flv = Bytes::from_static(include_bytes!("../../crates/proto/tests/fixtures/tiny.flv"));
        let mut offset = read_file_header(&flv).unwrap();
        let mut rec = Mp4Recorder::new(true, true, 30);
        let mut out = Vec::new();
        while let Ok(Some((tag, next))) = read_tag(&flv, offset) {
            let _ = match tag.tag_type {
                TAG_VIDEO => rec.write_video(tag.timestamp, &tag.body, &mut out),
                TAG_AUDIO => rec.write_audio(tag.timestamp, &tag.body, &mut out),
                _ => Ok(()),
            };
            offset = next;
        }
        let _ = rec.flush(&mut out);
        out.concat()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let file: Vec<u8> = if mode & 1 == 0 {
        rest.to_vec()
    } else {
        let base = recording();
        let (cut, edits) = match rest {
            [a, b, edits @ ..] => (usize::from(u16::from_be_bytes([*a, *b])), edits),
            _ => (base.len(), &[][..]),
        };
        let mut f = base[..cut.min(base.len())].to_vec();
        for e in edits.chunks_exact(3) {
            let at = usize::from(u16::from_be_bytes([e[0], e[1]]));
            if let Some(b) = f.get_mut(at) {
                *b = e[2];
            }
        }
        f
    };
    let _ = needs_repair(&file);
    if let Ok(r) = repair(&file) {
        assert!(r.truncate_to <= file.len() as u64);
        for (at, _) in &r.patches {
            assert!(
                at + 4 <= r.truncate_to,
                "patch at {at} past {}",
                r.truncate_to
            );
        }
        assert_eq!(r.samples == 0, r.trailer.is_empty());
    }
});
