//! Fuzzes the RTMP client session: what a remote server sends to our pull and push
//! proxies (and to the load generator). Past the handshake, every byte is the
//! server's: the chunk, message and command layers, the `_result` / `_error` /
//! `onStatus` answers the client waits for, pings, and media.
//!
//! Input layout: the first byte steers, the rest is the server's chunk stream after
//! S0 + S1 + S2.
//! * bits 0..=5: delivery piece size (0 = everything in one `handle_input`);
//! * bit 6: publish (set) or play (clear);
//! * bit 7: the handshake is a digest one (the client then checks the server's S1
//!   and S2, and goes on whatever they hold, as it does with real servers).
//!
//! The handshake answer is fixed (version 3, a filler S1, an S2 echoing C1), so the
//! fuzzer spends its time past it. The seeds in `fuzz/seeds/client_session/` are what
//! a `ServerSession` answered a `ClientSession` in the session tests' back-to-back
//! pair (play and publish), with the steering byte in front.
#![no_main]

use ferrocast_proto::amf0::Amf0Value;
use ferrocast_proto::rtmp::handshake::HANDSHAKE_SIZE;
use ferrocast_proto::rtmp::session::{
    ClientEvent, ClientMode, ClientSession, ClientTarget, SessionConfig,
};
use libfuzzer_sys::fuzz_target;

/// Drains events (sending media once started, as the push proxy does) and output.
fn drain(client: &mut ClientSession) {
    while let Some(event) = client.poll_event() {
        if let ClientEvent::Started { .. } = event {
            client.send_metadata(&[
                Amf0Value::String("onMetaData".into()),
                Amf0Value::Object(vec![("width".into(), Amf0Value::Number(640.0))]),
            ]);
            client.send_video(0, &[0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f]);
            client.send_audio(0, &[0xaf, 0, 0x12, 0x10]);
        }
    }
    while client.poll_output().is_some() {}
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let mode = if control & 0x40 != 0 {
        ClientMode::Publish
    } else {
        ClientMode::Play
    };
    let target = ClientTarget {
        app: "live".into(),
        tc_url: "rtmp://remote/live".into(),
        stream: "s?token=t".into(),
        mode,
    };
    let digest = control & 0x80 != 0;
    let mut client = ClientSession::new(SessionConfig::default(), target, 0, 0x5eed, digest);
    let mut c0c1 = Vec::new();
    while let Some(bytes) = client.poll_output() {
        c0c1.extend_from_slice(&bytes);
    }
    if c0c1.len() < 1 + HANDSHAKE_SIZE {
        return;
    }

    let mut input = Vec::with_capacity(1 + 2 * HANDSHAKE_SIZE + rest.len());
    input.push(3);
    input.extend((0..HANDSHAKE_SIZE).map(|i| (i * 13) as u8));
    input.extend_from_slice(&c0c1[1..1 + HANDSHAKE_SIZE]);
    input.extend_from_slice(rest);

    let piece = match (control & 0x3f) as usize {
        0 => input.len().max(1),
        n => n,
    };
    for part in input.chunks(piece) {
        if client.handle_input(part).is_err() {
            // A failed session must keep refusing input without panicking.
            let _ = client.handle_input(part);
            drain(&mut client);
            let _ = client.tolerated().to_string();
            return;
        }
        drain(&mut client);
    }
    let _ = (client.stream_id(), client.tolerated().to_string());
    client.close();
    while client.poll_output().is_some() {}
    let _ = client.handle_input(rest);
    drain(&mut client);
});
