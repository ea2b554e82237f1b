//! Fuzzes the RTMP server session past the handshake: the chunk, message and command
//! layers, and the publish/play state machine with a driver that accepts everything.
//!
//! Input layout: the first byte steers, the rest is the peer's chunk stream.
//! * bits 0..=5: delivery piece size (0 = everything in one `handle_input`);
//! * bit 6: prepend a valid `connect`, so commands after it are reachable at once;
//! * bit 7: also prepend `createStream`, so `publish` / `play` on stream 1 are too.
//!
//! The handshake is done for real: a simple C0 + C1 is sent, and C2 echoes the S1 the
//! server answered, so the target passes however strictly the server checks C2.
#![no_main]

use ferrocast_proto::amf0::Amf0Value;
use ferrocast_proto::rtmp::chunk::{encode_message, DEFAULT_CHUNK_SIZE};
use ferrocast_proto::rtmp::handshake::HANDSHAKE_SIZE;
use ferrocast_proto::rtmp::message::{command_payload, csid, type_id};
use ferrocast_proto::rtmp::session::{ServerEvent, ServerSession, SessionConfig};
use libfuzzer_sys::fuzz_target;

/// Appends one AMF0 command, chunked at the default chunk size, to `input`.
fn command(
    input: &mut Vec<u8>,
    name: &str,
    transaction_id: f64,
    object: &Amf0Value,
    args: &[Amf0Value],
) {
    let payload = command_payload(name, transaction_id, object, args);
    // A `BytesMut`, by inference: fuzz/Cargo.toml does not depend on `bytes` itself.
    let mut chunked = Default::default();
    encode_message(
        &mut chunked,
        csid::COMMAND,
        0,
        type_id::COMMAND_AMF0,
        0,
        &payload,
        DEFAULT_CHUNK_SIZE,
    );
    input.extend_from_slice(&chunked);
}

/// Drains events (answering requests as a permissive driver would) and output.
fn drain(server: &mut ServerSession) {
    while let Some(event) = server.poll_event() {
        match event {
            ServerEvent::Publish { stream_id, .. } => server.accept_publish(stream_id),
            ServerEvent::Play {
                stream_id,
                stream_name,
                reset,
                ..
            } => {
                server.accept_play(stream_id, &stream_name, reset);
                // Exercise the other answers on streams that may or may not exist.
                server.unpublish_notify(stream_id, &stream_name);
                server.play_not_found(stream_id.wrapping_add(1), &stream_name);
            }
            _ => {}
        }
    }
    while server.poll_output().is_some() {}
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let mut server = ServerSession::new(SessionConfig::default(), 0, 0x5eed);

    // C0 + C1 of a simple handshake: time, four zero bytes, then filler.
    let mut c0c1 = Vec::with_capacity(1 + HANDSHAKE_SIZE);
    c0c1.push(3);
    c0c1.extend_from_slice(&[0; 8]);
    c0c1.extend((8..HANDSHAKE_SIZE).map(|i| (i * 7) as u8));
    if server.handle_input(&c0c1).is_err() {
        return;
    }
    let mut s0s1s2 = Vec::new();
    while let Some(bytes) = server.poll_output() {
        s0s1s2.extend_from_slice(&bytes);
    }
    if s0s1s2.len() < 1 + HANDSHAKE_SIZE {
        return;
    }

    let mut input = Vec::new();
    input.extend_from_slice(&s0s1s2[1..1 + HANDSHAKE_SIZE]);
    if control & 0xc0 != 0 {
        let object = Amf0Value::Object(vec![
            ("app".into(), Amf0Value::String("live".into())),
            (
                "tcUrl".into(),
                Amf0Value::String("rtmp://localhost/live".into()),
            ),
        ]);
        command(&mut input, "connect", 1.0, &object, &[]);
    }
    if control & 0x80 != 0 {
        command(&mut input, "createStream", 2.0, &Amf0Value::Null, &[]);
    }
    input.extend_from_slice(rest);

    let piece = match (control & 0x3f) as usize {
        0 => input.len().max(1),
        n => n,
    };
    for part in input.chunks(piece) {
        if server.handle_input(part).is_err() {
            // A failed session must keep refusing input without panicking.
            let _ = server.handle_input(part);
            drain(&mut server);
            // The close line's summary is built from hostile names: it must not panic.
            let _ = server.tolerated().to_string();
            return;
        }
        drain(&mut server);
    }
    let _ = (
        server.app(),
        server.app_params(),
        server.bytes_received(),
        server.out_chunk_size(),
        server.tolerated().to_string(),
    );
});
