//! RTMP handshake, both sides: arbitrary bytes in arbitrary splits. Neither side
//! may panic, `remaining` never holds more than the call was given, and an error
//! sticks.
//!
//! Input layout: 8 control bytes, then the bytes fed to both sides. Control byte 0
//! picks the mode: bit 0 makes the client use the digest form; bit 1 first feeds
//! each side a genuine peer packet (a real C0+C1 for the server, a real S0+S1 for
//! the client), so the fuzzed bytes land in C2 / S2 and after it, not only on the
//! version byte and C1. The control bytes also give the split lengths (cycling).

#![no_main]

use ferrocast_proto::rtmp::handshake::{ClientHandshake, HandshakeProgress, ServerHandshake};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let (control, input) = data.split_at(8);
    let seed = u64::from_le_bytes(control.try_into().expect("8 bytes"));
    let digest = control[0] & 1 != 0;
    let genuine_prefix = control[0] & 2 != 0;

    let mut server = ServerHandshake::new(0, seed);
    let mut client = ClientHandshake::new(0, !seed, digest);
    let c0c1 = client.poll_output().expect("C0+C1 is queued at once");

    if genuine_prefix {
        // A peer client's C0+C1 for our server.
        let mut peer_client = ClientHandshake::new(1, seed ^ 1, digest);
        let peer_c0c1 = peer_client.poll_output().expect("C0+C1");
        feed_server(&mut server, &peer_c0c1);
        // A peer server's S0+S1 (without S2) answering our client's C1.
        let mut peer_server = ServerHandshake::new(2, seed ^ 2);
        assert!(peer_server.handle_input(&c0c1).is_ok());
        let answer = peer_server.poll_output().expect("S0+S1+S2");
        feed_client(&mut client, &answer[..1 + 1536]);
    }

    let mut rest = input;
    let mut i = 0;
    while !rest.is_empty() {
        // 1..=3316 bytes per call: covers 1-byte reads and whole packets.
        let len = (usize::from(control[i % control.len()]) * 13 + 1).min(rest.len());
        let (chunk, tail) = rest.split_at(len);
        feed_server(&mut server, chunk);
        feed_client(&mut client, chunk);
        rest = tail;
        i += 1;
    }
});

fn feed_server(server: &mut ServerHandshake, chunk: &[u8]) {
    match server.handle_input(chunk) {
        Ok(HandshakeProgress::Done { remaining, .. }) => assert!(remaining.len() <= chunk.len()),
        Ok(HandshakeProgress::InProgress) => {}
        Err(error) => assert_eq!(server.handle_input(chunk), Err(error)),
    }
    while server.poll_output().is_some() {}
}

fn feed_client(client: &mut ClientHandshake, chunk: &[u8]) {
    match client.handle_input(chunk) {
        Ok(HandshakeProgress::Done { remaining, .. }) => assert!(remaining.len() <= chunk.len()),
        Ok(HandshakeProgress::InProgress) => {}
        Err(error) => assert_eq!(client.handle_input(chunk), Err(error)),
    }
    while client.poll_output().is_some() {}
}
