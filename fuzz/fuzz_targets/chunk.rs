//! Fuzzes the RTMP chunk decoder (`ferrocast_proto::rtmp::chunk`) and message parser
//! (`ferrocast_proto::rtmp::message`).
//!
//! The first byte picks a starting chunk size (sent as a Set Chunk Size message ahead
//! of the input, so large-chunk paths are reached without the fuzzer having to find
//! that message) and how the input is split into `push` calls; the rest is the byte
//! stream. Small limits make the limit errors reachable. Any input may be rejected,
//! none may panic; decoding stops at the first error. Every message that parses must
//! encode to chunks that a fresh decoder reads back as one message of the same kind.

#![no_main]

use ferrocast_proto::rtmp::chunk::{encode_message, ChunkDecoder, ChunkLimits};
use ferrocast_proto::rtmp::message::{type_id, Message};

/// Starting chunk sizes (`None`: stay at the default 128).
const CHUNK_SIZES: [Option<u32>; 8] = [
    None,
    Some(1),
    Some(2),
    Some(7),
    Some(128),
    Some(4096),
    Some(60000),
    Some(0x7FFF_FFFF),
];
/// Sizes of successive `push` calls, cycled (0: everything at once).
const SPLITS: [&[usize]; 8] = [
    &[0],
    &[1],
    &[2, 3],
    &[7],
    &[64],
    &[1000],
    &[1, 500, 3],
    &[13, 1],
];

fn round_trip(msg: &Message, original_type: u8) {
    // A `BytesMut`, inferred: this crate does not depend on `bytes` itself.
    let mut out = Default::default();
    msg.encode(&mut out, 128);
    let mut d = ChunkDecoder::new(ChunkLimits::default());
    d.push(&out);
    let raw = match d.poll_message() {
        Ok(Some(raw)) => raw,
        other => panic!("re-decoding {msg:?} gave {other:?}"),
    };
    let expected_type = match original_type {
        type_id::DATA_AMF3 => type_id::DATA_AMF0,
        type_id::COMMAND_AMF3 => type_id::COMMAND_AMF0,
        t => t,
    };
    assert_eq!(raw.type_id, expected_type);
    assert_eq!(d.poll_message(), Ok(None), "one message encoded to more");
    assert_eq!(d.buffered_len(), 0);
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&selector, stream)) = data.split_first() else {
        return;
    };
    let limits = ChunkLimits {
        max_message_size: 64 * 1024,
        max_chunk_streams: 8,
    };
    let mut decoder = ChunkDecoder::new(limits);

    let mut input = Default::default();
    let size = CHUNK_SIZES[usize::from(selector >> 5)];
    let prefix: &[u8] = match size {
        Some(size) => {
            encode_message(
                &mut input,
                2,
                0,
                type_id::SET_CHUNK_SIZE,
                0,
                &size.to_be_bytes(),
                128,
            );
            &input
        }
        None => &[],
    };
    let input = [prefix, stream].concat();
    let splits = SPLITS[usize::from(selector & 7)];

    let mut rest = &input[..];
    let mut i = 0;
    while !rest.is_empty() {
        let n = match splits[i % splits.len()] {
            0 => rest.len(),
            n => n.min(rest.len()),
        };
        i += 1;
        decoder.push(&rest[..n]);
        rest = &rest[n..];
        loop {
            match decoder.poll_message() {
                Ok(Some(raw)) => {
                    assert!(raw.payload.len() <= 64 * 1024);
                    if let Ok(msg) = Message::parse(&raw) {
                        round_trip(&msg, raw.type_id);
                    }
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
    assert!(decoder.bytes_consumed() <= input.len() as u64);
});
