//! The session tests: a client and a server wired back to back in memory, commands
//! fed to a server by hand, and a capture of ffmpeg publishing.

use bytes::{Bytes, BytesMut};

use super::client::{CLIENT_FLASH_VER, PLAY_BUFFER_MS};
use super::server::{status_object, FMS_VERSION};
use super::values::encode_values;
use super::*;
use crate::amf0::{self, Amf0Limits, Amf0Value};
use crate::rtmp::chunk::{self, ChunkDecoder, ChunkError, ChunkLimits, DEFAULT_CHUNK_SIZE};
use crate::rtmp::handshake::{ClientHandshake, HANDSHAKE_SIZE};
use crate::rtmp::message::{self, csid, type_id, Message, UserControl};

/// C0 + C1 + C2 (or S0 + S1 + S2).
const HANDSHAKE_BYTES: usize = 1 + 2 * HANDSHAKE_SIZE;

fn text(s: &str) -> Amf0Value {
    Amf0Value::String(s.to_string())
}

fn target(mode: ClientMode, stream: &str) -> ClientTarget {
    ClientTarget {
        app: "live".into(),
        tc_url: "rtmp://localhost/live".into(),
        stream: stream.into(),
        mode,
    }
}

/// How the test driver answers publish and play requests.
#[derive(Clone, Copy, PartialEq)]
enum Answer {
    Accept,
    Refuse,
}

/// A client and a server session wired back to back in memory.
struct Pair {
    client: ClientSession,
    server: ServerSession,
    answer: Answer,
    byte_at_a_time: bool,
    server_events: Vec<ServerEvent>,
    client_events: Vec<ClientEvent>,
    /// Every byte the client sent, and every byte the server sent.
    to_server: Vec<u8>,
    to_client: Vec<u8>,
}

/// Feeds `bytes` to one side, whole or one byte at a time.
fn deliver(
    bytes: &[u8],
    byte_at_a_time: bool,
    mut handle: impl FnMut(&[u8]) -> Result<(), SessionError>,
) {
    if byte_at_a_time {
        for byte in bytes {
            handle(std::slice::from_ref(byte)).unwrap();
        }
    } else {
        handle(bytes).unwrap();
    }
}

impl Pair {
    fn new(mode: ClientMode, stream: &str) -> Pair {
        Pair::with_configs(
            mode,
            stream,
            SessionConfig::default(),
            SessionConfig::default(),
        )
    }

    fn with_configs(
        mode: ClientMode,
        stream: &str,
        client: SessionConfig,
        server: SessionConfig,
    ) -> Pair {
        Pair {
            client: ClientSession::new(client, target(mode, stream), 1000, 0x1234_5678, true),
            server: ServerSession::new(server, 2000, 0x9abc_def0),
            answer: Answer::Accept,
            byte_at_a_time: false,
            server_events: Vec::new(),
            client_events: Vec::new(),
            to_server: Vec::new(),
            to_client: Vec::new(),
        }
    }

    /// Moves bytes both ways, answering requests, until nobody has output.
    fn pump(&mut self) {
        for _ in 0..1000 {
            let mut moved = false;
            while let Some(bytes) = self.client.poll_output() {
                moved = true;
                self.to_server.extend_from_slice(&bytes);
                let server = &mut self.server;
                deliver(&bytes, self.byte_at_a_time, |b| server.handle_input(b));
            }
            while let Some(event) = self.server.poll_event() {
                self.answer(&event);
                self.server_events.push(event);
            }
            while let Some(bytes) = self.server.poll_output() {
                moved = true;
                self.to_client.extend_from_slice(&bytes);
                let client = &mut self.client;
                deliver(&bytes, self.byte_at_a_time, |b| client.handle_input(b));
            }
            while let Some(event) = self.client.poll_event() {
                self.client_events.push(event);
            }
            if !moved {
                return;
            }
        }
        panic!("the sessions never went quiet");
    }

    fn answer(&mut self, event: &ServerEvent) {
        match (event, self.answer) {
            (ServerEvent::Publish { stream_id, .. }, Answer::Accept) => {
                self.server.accept_publish(*stream_id)
            }
            (ServerEvent::Publish { stream_id, .. }, Answer::Refuse) => self.server.reject_publish(
                *stream_id,
                "NetStream.Publish.BadName",
                "Stream already publishing.",
            ),
            (
                ServerEvent::Play {
                    stream_id,
                    stream_name,
                    reset,
                    ..
                },
                Answer::Accept,
            ) => self.server.accept_play(*stream_id, stream_name, *reset),
            (
                ServerEvent::Play {
                    stream_id,
                    stream_name,
                    ..
                },
                Answer::Refuse,
            ) => self.server.play_not_found(*stream_id, stream_name),
            _ => {}
        }
    }

    fn status_codes(&self) -> Vec<&str> {
        self.client_events
            .iter()
            .filter_map(|e| match e {
                ClientEvent::Status { code, .. } => Some(code.as_str()),
                _ => None,
            })
            .collect()
    }
}

/// Decodes the messages in what one side sent, after its handshake bytes.
fn messages(sent: &[u8]) -> Vec<Message> {
    let mut decoder = ChunkDecoder::new(ChunkLimits::default());
    decoder.push(&sent[HANDSHAKE_BYTES..]);
    let mut out = Vec::new();
    while let Some(raw) = decoder.poll_message().unwrap() {
        out.push(Message::parse(&raw).unwrap());
    }
    out
}

/// A server that completed a digest handshake with a real client handshake.
fn handshaken_server() -> ServerSession {
    let mut server = ServerSession::new(SessionConfig::default(), 0, 7);
    let mut client = ClientHandshake::new(0, 9, true);
    for _ in 0..4 {
        while let Some(bytes) = client.poll_output() {
            server.handle_input(&bytes).unwrap();
        }
        match server.poll_output() {
            Some(bytes) => {
                client.handle_input(&bytes).unwrap();
            }
            None => break,
        }
    }
    server
}

fn command(
    stream_id: u32,
    name: &str,
    transaction_id: f64,
    object: Amf0Value,
    args: &[Amf0Value],
) -> BytesMut {
    let payload = message::command_payload(name, transaction_id, &object, args);
    let mut out = BytesMut::new();
    chunk::encode_message(
        &mut out,
        csid::COMMAND,
        0,
        type_id::COMMAND_AMF0,
        stream_id,
        &payload,
        DEFAULT_CHUNK_SIZE,
    );
    out
}

fn connect_command(app: &str) -> BytesMut {
    let object = Amf0Value::Object(vec![
        ("app".into(), text(app)),
        ("tcUrl".into(), text(&format!("rtmp://localhost/{app}"))),
    ]);
    command(0, "connect", 1.0, object, &[])
}

fn drain_events(server: &mut ServerSession) -> Vec<ServerEvent> {
    std::iter::from_fn(|| server.poll_event()).collect()
}

/// Decodes one output buffer (type-0 headers, so a fresh decoder can read it as
/// long as every message fits in `chunk_size`).
fn decode_output(bytes: &[u8], chunk_size: u32) -> Vec<Message> {
    let mut decoder = ChunkDecoder::new(ChunkLimits::default());
    if chunk_size != DEFAULT_CHUNK_SIZE {
        let mut set = BytesMut::new();
        Message::SetChunkSize(chunk_size).encode(&mut set, DEFAULT_CHUNK_SIZE);
        decoder.push(&set);
    }
    decoder.push(bytes);
    let mut out = Vec::new();
    while let Some(raw) = decoder.poll_message().unwrap() {
        match Message::parse(&raw).unwrap() {
            Message::SetChunkSize(_) if chunk_size != DEFAULT_CHUNK_SIZE && out.is_empty() => {}
            msg => out.push(msg),
        }
    }
    out
}

fn publish_opening(p: &mut Pair) {
    p.pump();
    match &p.server_events[0] {
        ServerEvent::Connect {
            app,
            tc_url,
            command_object,
        } => {
            assert_eq!(app, "live");
            assert_eq!(tc_url.as_deref(), Some("rtmp://localhost/live"));
            assert_eq!(command_object.get("type"), Some(&text("nonprivate")));
            assert_eq!(
                command_object.get("flashVer"),
                Some(&text(CLIENT_FLASH_VER))
            );
        }
        other => panic!("expected Connect, got {other:?}"),
    }
    assert_eq!(
        p.server_events[1],
        ServerEvent::Publish {
            stream_id: 1,
            stream_name: "cam".into(),
            params: "key=1".into(),
            publish_type: "live".into()
        }
    );
    assert_eq!(p.server_events.len(), 2);
    assert_eq!(
        p.client_events,
        vec![
            ClientEvent::Connected,
            ClientEvent::Status {
                level: "status".into(),
                code: "NetStream.Publish.Start".into(),
                description: "Started publishing stream.".into()
            },
            ClientEvent::Started { stream_id: 1 },
        ]
    );
    p.server_events.clear();
    p.client_events.clear();
}

#[test]
fn publish_end_to_end() {
    let mut p = Pair::new(ClientMode::Publish, "cam?key=1");
    publish_opening(&mut p);

    // What the server said to connect, in this order: the chunk size goes out
    // before the first message larger than 128 bytes.
    let replies = messages(&p.to_client);
    assert_eq!(replies[0], Message::WindowAckSize(5_000_000));
    assert_eq!(
        replies[1],
        Message::SetPeerBandwidth {
            size: 5_000_000,
            limit_type: 2
        }
    );
    assert_eq!(replies[2], Message::SetChunkSize(60000));
    match &replies[3] {
        Message::Command {
            name,
            transaction_id,
            command_object,
            args,
            ..
        } => {
            assert_eq!((name.as_str(), *transaction_id), ("_result", 1.0));
            assert_eq!(command_object.get("fmsVer"), Some(&text(FMS_VERSION)));
            assert_eq!(
                args[0].get("code"),
                Some(&text("NetConnection.Connect.Success"))
            );
            assert_eq!(args[0].get("objectEncoding"), Some(&Amf0Value::Number(0.0)));
        }
        other => panic!("expected _result, got {other:?}"),
    }

    let metadata = vec![
        text("onMetaData"),
        Amf0Value::EcmaArray(vec![
            ("width".into(), Amf0Value::Number(640.0)),
            ("videocodecid".into(), Amf0Value::Number(7.0)),
        ]),
    ];
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    p.client.send_metadata(&metadata);
    p.client.send_video(40, &[0x17, 0, 0, 0, 0, 1, 2, 3]);
    p.client.send_video(80, &big);
    p.client.send_audio(41, &[0xaf, 1, 0x21]);
    p.pump();
    assert_eq!(
        p.server_events,
        vec![
            ServerEvent::Metadata {
                timestamp: 0,
                payload: encode_values(&metadata),
                values: metadata.clone()
            },
            ServerEvent::Video {
                timestamp: 40,
                payload: Bytes::from_static(&[0x17, 0, 0, 0, 0, 1, 2, 3])
            },
            ServerEvent::Video {
                timestamp: 80,
                payload: Bytes::from(big)
            },
            ServerEvent::Audio {
                timestamp: 41,
                payload: Bytes::from_static(&[0xaf, 1, 0x21])
            },
        ]
    );
    p.server_events.clear();

    p.client.close();
    p.client.close();
    p.pump();
    assert_eq!(
        p.server_events,
        vec![ServerEvent::Unpublish { stream_id: 1 }]
    );
    // Nothing is sent after close.
    p.client.send_audio(50, &[0xaf, 1]);
    assert!(p.client.poll_output().is_none());
    // Two sessions of ours have nothing to tolerate in each other.
    assert_eq!(p.server.tolerated(), Tolerated::default());
    assert_eq!(p.client.tolerated(), Tolerated::default());
}

#[test]
fn play_end_to_end() {
    let mut p = Pair::new(ClientMode::Play, "cam");
    p.pump();
    assert!(matches!(p.server_events[0], ServerEvent::Connect { .. }));
    assert_eq!(
        p.server_events[1],
        ServerEvent::Play {
            stream_id: 1,
            stream_name: "cam".into(),
            params: String::new(),
            start: -2.0,
            duration: -1.0,
            reset: true
        }
    );
    assert_eq!(p.client_events[0], ClientEvent::Connected);
    assert!(p
        .client_events
        .contains(&ClientEvent::Started { stream_id: 1 }));
    assert_eq!(
        p.status_codes(),
        ["NetStream.Play.Reset", "NetStream.Play.Start"]
    );
    assert_eq!(p.client.stream_id(), Some(1));
    let sent = messages(&p.to_server);
    assert!(
        sent.contains(&Message::UserControl(UserControl::SetBufferLength {
            stream_id: 1,
            buffer_ms: PLAY_BUFFER_MS
        }))
    );
    let server_sent = messages(&p.to_client);
    assert!(server_sent.contains(&Message::UserControl(UserControl::StreamBegin(1))));
    p.client_events.clear();

    // Media the server chunks once and shares: message stream id 1 at the
    // announced chunk size, written straight into the client's input.
    let chunk_size = p.server.out_chunk_size();
    let big: Vec<u8> = (0..150_000u32).map(|i| (i % 253) as u8).collect();
    let metadata = [
        text("onMetaData"),
        Amf0Value::Object(vec![("width".into(), Amf0Value::Number(320.0))]),
    ];
    let metadata_payload = encode_values(&metadata);
    let mut shared = BytesMut::new();
    chunk::encode_message(
        &mut shared,
        csid::DATA,
        0,
        type_id::DATA_AMF0,
        1,
        &metadata_payload,
        chunk_size,
    );
    chunk::encode_message(
        &mut shared,
        csid::VIDEO,
        1234,
        type_id::VIDEO,
        1,
        &big,
        chunk_size,
    );
    chunk::encode_message(
        &mut shared,
        csid::AUDIO,
        1240,
        type_id::AUDIO,
        1,
        &[0xaf, 1, 2],
        chunk_size,
    );
    p.client.handle_input(&shared).unwrap();
    p.pump();
    assert_eq!(
        p.client_events,
        vec![
            ClientEvent::Metadata {
                timestamp: 0,
                payload: metadata_payload,
                values: metadata.to_vec()
            },
            ClientEvent::Video {
                timestamp: 1234,
                payload: Bytes::from(big)
            },
            ClientEvent::Audio {
                timestamp: 1240,
                payload: Bytes::from_static(&[0xaf, 1, 2])
            },
        ]
    );
    p.client_events.clear();

    // The publisher left: UnpublishNotify + Stream EOF make one StreamEnded.
    p.server.unpublish_notify(1, "cam");
    p.pump();
    assert_eq!(
        p.client_events,
        vec![
            ClientEvent::Status {
                level: "status".into(),
                code: "NetStream.Play.UnpublishNotify".into(),
                description: "cam is now unpublished.".into()
            },
            ClientEvent::StreamEnded,
        ]
    );

    p.server_events.clear();
    p.client.close();
    p.pump();
    assert_eq!(
        p.server_events,
        vec![ServerEvent::StopPlay { stream_id: 1 }]
    );
    // |RtmpSampleAccess, Stream Begin and EOF are what a player expects.
    assert_eq!(p.server.tolerated(), Tolerated::default());
    assert_eq!(p.client.tolerated(), Tolerated::default());
}

/// Appends one message, chunked at the default chunk size, to `input`.
fn raw_message(input: &mut BytesMut, csid: u32, type_id: u8, stream_id: u32, payload: &[u8]) {
    chunk::encode_message(
        input,
        csid,
        0,
        type_id,
        stream_id,
        payload,
        DEFAULT_CHUNK_SIZE,
    );
}

#[test]
fn server_counts_what_it_tolerates_and_goes_on() {
    let mut server = handshaken_server();
    let mut input = BytesMut::new();
    raw_message(&mut input, csid::VIDEO, type_id::VIDEO, 1, &[0x17, 0]);
    input.extend_from_slice(&connect_command("live"));
    for name in ["foo", "receiveAudio", "foo"] {
        input.extend_from_slice(&command(0, name, 0.0, Amf0Value::Null, &[]));
    }
    input.extend_from_slice(&command(0, "createStream", 2.0, Amf0Value::Null, &[]));
    // Stream 1 exists but does not publish yet.
    raw_message(&mut input, csid::AUDIO, type_id::AUDIO, 1, &[0xaf, 1]);
    // Nothing to close: an unknown stream, a deleteStream without an id, and
    // FCUnpublish with no publish.
    input.extend_from_slice(&command(5, "closeStream", 0.0, Amf0Value::Null, &[]));
    let seven = [Amf0Value::Number(7.0)];
    input.extend_from_slice(&command(0, "deleteStream", 0.0, Amf0Value::Null, &seven));
    input.extend_from_slice(&command(0, "deleteStream", 0.0, Amf0Value::Null, &[]));
    input.extend_from_slice(&command(0, "FCUnpublish", 4.0, Amf0Value::Null, &[]));
    // User control events a publisher has no reason to send; Set Buffer Length is
    // what players send, and is not counted.
    for event in [
        UserControl::StreamBegin(1),
        UserControl::SetBufferLength {
            stream_id: 1,
            buffer_ms: 100,
        },
        UserControl::Other {
            event_type: 99,
            data: Bytes::from_static(&[0, 0, 0, 0]),
        },
    ] {
        Message::UserControl(event).encode(&mut input, DEFAULT_CHUNK_SIZE);
    }
    raw_message(&mut input, csid::DATA, type_id::AGGREGATE, 1, &[0; 11]);
    raw_message(
        &mut input,
        csid::DATA,
        type_id::SHARED_OBJECT_AMF0,
        0,
        &[0; 4],
    );
    input.extend_from_slice(&command(1, "publish", 0.0, Amf0Value::Null, &[text("cam")]));
    server.handle_input(&input).unwrap();
    let events = drain_events(&mut server);
    assert!(
        matches!(
            events.as_slice(),
            [ServerEvent::Connect { .. }, ServerEvent::Publish { .. }]
        ),
        "{events:?}"
    );
    server.accept_publish(1);

    // On the publishing stream: a data message that is not metadata, one that is not
    // AMF0 at all, and a video message cut off by a new header on its chunk stream.
    let mut input = BytesMut::new();
    let cue = encode_values(&[text("onCuePoint"), Amf0Value::Null]);
    raw_message(&mut input, csid::DATA, type_id::DATA_AMF0, 1, &cue);
    raw_message(&mut input, csid::DATA, type_id::DATA_AMF0, 1, &[0xff]);
    let mut cut = BytesMut::new();
    raw_message(&mut cut, csid::VIDEO, type_id::VIDEO, 1, &[0x27; 200]);
    input.extend_from_slice(&cut[..140]);
    raw_message(&mut input, csid::VIDEO, type_id::VIDEO, 1, &[0x27, 1]);
    server.handle_input(&input).unwrap();
    assert_eq!(
        drain_events(&mut server),
        vec![ServerEvent::Video {
            timestamp: 0,
            payload: Bytes::from_static(&[0x27, 1])
        }]
    );

    let tolerated = server.tolerated();
    assert_eq!(
        tolerated,
        Tolerated {
            unknown_commands: 3,
            first_unknown_command: Some("foo".into()),
            media_before_connect: 1,
            media_outside_publish: 1,
            ignored_data: 1,
            undecodable_media: 1,
            unhandled_messages: 2,
            first_unhandled_type: Some(type_id::AGGREGATE),
            unexpected_user_controls: 2,
            first_user_control: Some(UserControl::STREAM_BEGIN),
            stray_stream_closes: 4,
            interrupted_messages: 1,
            ..Tolerated::default()
        }
    );
    assert_eq!(
        tolerated.to_string(),
        "unknown command x3 (first: 'foo'), media before connect x1, \
         media outside a publish x1, data message ignored x1, \
         undecodable media or data x1, unhandled message x2 (first: type 22), \
         unexpected user control event x2 (first: event 0), \
         close of a stream not in use x4, partial message cut off by a new header x1"
    );
}

#[test]
fn client_counts_what_it_tolerates() {
    let mut p = Pair::new(ClientMode::Play, "cam");
    p.pump();
    assert!(p
        .client_events
        .contains(&ClientEvent::Started { stream_id: 1 }));
    p.client_events.clear();

    let mut input = BytesMut::new();
    input.extend_from_slice(&command(0, "onBWDone", 0.0, Amf0Value::Null, &[]));
    // An answer to a transaction the client never opened.
    input.extend_from_slice(&command(0, "_result", 99.0, Amf0Value::Null, &[]));
    let cue = encode_values(&[text("onCuePoint"), Amf0Value::Null]);
    raw_message(&mut input, csid::DATA, type_id::DATA_AMF0, 1, &cue);
    let bare_status = encode_values(&[text("onStatus")]);
    raw_message(&mut input, csid::DATA, type_id::DATA_AMF0, 1, &bare_status);
    // Servers send these to players: not counted.
    let sample_access = encode_values(&[
        text("|RtmpSampleAccess"),
        Amf0Value::Boolean(true),
        Amf0Value::Boolean(true),
    ]);
    raw_message(
        &mut input,
        csid::DATA,
        type_id::DATA_AMF0,
        1,
        &sample_access,
    );
    Message::UserControl(UserControl::StreamIsRecorded(1)).encode(&mut input, DEFAULT_CHUNK_SIZE);
    // Only a client sends Set Buffer Length.
    let buffer = UserControl::SetBufferLength {
        stream_id: 1,
        buffer_ms: 10,
    };
    Message::UserControl(buffer).encode(&mut input, DEFAULT_CHUNK_SIZE);
    p.client.handle_input(&input).unwrap();
    assert_eq!(p.client.poll_event(), None);
    assert_eq!(
        p.client.tolerated(),
        Tolerated {
            unknown_commands: 1,
            first_unknown_command: Some("onBWDone".into()),
            ignored_data: 2,
            unexpected_user_controls: 1,
            first_user_control: Some(UserControl::SET_BUFFER_LENGTH),
            unmatched_results: 1,
            ..Tolerated::default()
        }
    );
}

#[test]
fn play_not_found_is_reported() {
    let mut p = Pair::new(ClientMode::Play, "nothing");
    p.answer = Answer::Refuse;
    p.pump();
    assert!(p.client_events.contains(&ClientEvent::Status {
        level: "error".into(),
        code: "NetStream.Play.StreamNotFound".into(),
        description: "Failed to play nothing; stream not found.".into()
    }));
    assert!(!p
        .client_events
        .iter()
        .any(|e| matches!(e, ClientEvent::Started { .. })));
    // Closing a stream whose play was refused reports nothing.
    p.server_events.clear();
    p.client.close();
    p.pump();
    assert!(p.server_events.is_empty());
}

#[test]
fn reject_publish_is_reported_and_not_unpublished() {
    let mut p = Pair::new(ClientMode::Publish, "cam");
    p.answer = Answer::Refuse;
    p.pump();
    assert_eq!(p.status_codes(), ["NetStream.Publish.BadName"]);
    assert!(p.client_events.contains(&ClientEvent::Status {
        level: "error".into(),
        code: "NetStream.Publish.BadName".into(),
        description: "Stream already publishing.".into()
    }));
    assert!(!p
        .client_events
        .iter()
        .any(|e| matches!(e, ClientEvent::Started { .. })));
    p.server_events.clear();
    p.client.close();
    p.pump();
    assert!(p.server_events.is_empty(), "{:?}", p.server_events);
}

#[test]
fn empty_publish_name_is_a_bad_name() {
    let mut p = Pair::new(ClientMode::Publish, "?only=query");
    p.pump();
    assert_eq!(p.server_events.len(), 1, "{:?}", p.server_events);
    assert!(matches!(p.server_events[0], ServerEvent::Connect { .. }));
    assert_eq!(p.status_codes(), ["NetStream.Publish.BadName"]);
}

#[test]
fn commands_before_connect_are_protocol_errors() {
    let mut server = handshaken_server();
    let err = server
        .handle_input(&command(1, "play", 0.0, Amf0Value::Null, &[text("cam")]))
        .unwrap_err();
    assert_eq!(err, SessionError::Protocol("play before connect".into()));
    // The session is finished.
    assert!(server.handle_input(&connect_command("live")).is_err());

    let mut server = handshaken_server();
    let err = server
        .handle_input(&command(0, "createStream", 2.0, Amf0Value::Null, &[]))
        .unwrap_err();
    assert_eq!(
        err,
        SessionError::Protocol("createStream before connect".into())
    );
}

#[test]
fn second_connect_is_a_protocol_error() {
    let mut server = handshaken_server();
    server.handle_input(&connect_command("live")).unwrap();
    let err = server.handle_input(&connect_command("live")).unwrap_err();
    assert_eq!(err, SessionError::Protocol("second connect".into()));
}

#[test]
fn connect_app_keeps_the_query_aside() {
    let mut server = handshaken_server();
    server.poll_output();
    server
        .handle_input(&connect_command("live/?vhost=example.com"))
        .unwrap();
    assert_eq!(server.app(), Some("live"));
    assert_eq!(server.app_params(), Some("vhost=example.com"));
    match drain_events(&mut server).as_slice() {
        [ServerEvent::Connect { app, .. }] => assert_eq!(app, "live"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn stream_ids_start_at_one_reuse_the_lowest_and_are_capped() {
    let mut server = handshaken_server();
    server.handle_input(&connect_command("live")).unwrap();
    server.poll_output();
    let created = |server: &mut ServerSession| -> Vec<f64> {
        let out = server.poll_output().unwrap();
        decode_output(&out, 60000)
            .into_iter()
            .filter_map(|m| match m {
                Message::Command { name, args, .. } if name == "_result" => args[0].as_f64(),
                _ => None,
            })
            .collect()
    };
    for _ in 0..MAX_STREAMS {
        server
            .handle_input(&command(0, "createStream", 2.0, Amf0Value::Null, &[]))
            .unwrap();
    }
    assert_eq!(
        created(&mut server),
        (1..=MAX_STREAMS).map(f64::from).collect::<Vec<_>>()
    );
    server
        .handle_input(&command(
            0,
            "deleteStream",
            0.0,
            Amf0Value::Null,
            &[Amf0Value::Number(1.0)],
        ))
        .unwrap();
    server
        .handle_input(&command(0, "createStream", 3.0, Amf0Value::Null, &[]))
        .unwrap();
    assert_eq!(created(&mut server), vec![1.0]);
    let err = server
        .handle_input(&command(0, "createStream", 4.0, Amf0Value::Null, &[]))
        .unwrap_err();
    assert_eq!(
        err,
        SessionError::Protocol(format!("more than {MAX_STREAMS} streams on one connection"))
    );
}

#[test]
fn publish_on_a_stream_not_created_is_an_error() {
    let mut server = handshaken_server();
    server.handle_input(&connect_command("live")).unwrap();
    let err = server
        .handle_input(&command(1, "publish", 0.0, Amf0Value::Null, &[text("cam")]))
        .unwrap_err();
    assert_eq!(
        err,
        SessionError::Protocol("publish on stream 1, which createStream did not return".into())
    );
}

#[test]
fn a_request_withdrawn_before_the_answer_still_ends_once() {
    let mut server = handshaken_server();
    let mut input = connect_command("live");
    input.extend_from_slice(&command(0, "createStream", 2.0, Amf0Value::Null, &[]));
    input.extend_from_slice(&command(1, "play", 0.0, Amf0Value::Null, &[text("cam")]));
    input.extend_from_slice(&command(
        0,
        "deleteStream",
        0.0,
        Amf0Value::Null,
        &[Amf0Value::Number(1.0)],
    ));
    server.handle_input(&input).unwrap();
    let events = drain_events(&mut server);
    assert!(matches!(
        events.as_slice(),
        [
            ServerEvent::Connect { .. },
            ServerEvent::Play { stream_id: 1, .. }
        ]
    ));
    // The driver answers late; the stream is already gone, so it learns at once.
    server.accept_play(1, "cam", true);
    assert_eq!(
        drain_events(&mut server),
        vec![ServerEvent::StopPlay { stream_id: 1 }]
    );
    server.accept_play(1, "cam", true);
    assert!(drain_events(&mut server).is_empty());

    // Same for a publish withdrawn with FCUnpublish.
    let mut server = handshaken_server();
    let mut input = connect_command("live");
    input.extend_from_slice(&command(0, "createStream", 2.0, Amf0Value::Null, &[]));
    input.extend_from_slice(&command(
        1,
        "publish",
        0.0,
        Amf0Value::Null,
        &[text("cam"), text("live")],
    ));
    input.extend_from_slice(&command(
        0,
        "FCUnpublish",
        5.0,
        Amf0Value::Null,
        &[text("cam")],
    ));
    input.extend_from_slice(&command(
        0,
        "deleteStream",
        6.0,
        Amf0Value::Null,
        &[Amf0Value::Number(1.0)],
    ));
    server.handle_input(&input).unwrap();
    assert_eq!(drain_events(&mut server).len(), 2);
    server.accept_publish(1);
    assert_eq!(
        drain_events(&mut server),
        vec![ServerEvent::Unpublish { stream_id: 1 }]
    );
}

#[test]
fn second_publish_on_one_connection_is_an_error() {
    let mut server = handshaken_server();
    let mut input = connect_command("live");
    input.extend_from_slice(&command(0, "createStream", 2.0, Amf0Value::Null, &[]));
    input.extend_from_slice(&command(0, "createStream", 3.0, Amf0Value::Null, &[]));
    input.extend_from_slice(&command(1, "publish", 0.0, Amf0Value::Null, &[text("a")]));
    server.handle_input(&input).unwrap();
    drain_events(&mut server);
    server.accept_publish(1);
    let err = server
        .handle_input(&command(2, "publish", 0.0, Amf0Value::Null, &[text("b")]))
        .unwrap_err();
    assert_eq!(
        err,
        SessionError::Protocol("second publish on one connection".into())
    );
}

#[test]
fn acknowledgements_follow_the_peer_window() {
    // The client announces a 4096-byte window, the server a 2000-byte one.
    let client_config = SessionConfig {
        window_ack_size: 4096,
        ..SessionConfig::default()
    };
    let server_config = SessionConfig {
        window_ack_size: 2000,
        ..SessionConfig::default()
    };
    let mut p = Pair::with_configs(
        ClientMode::Publish,
        "cam?key=1",
        client_config,
        server_config,
    );
    publish_opening(&mut p);
    p.client.send_video(0, &[0x27; 10_000]);
    p.pump();
    let server_acks: Vec<u32> = messages(&p.to_client)
        .into_iter()
        .filter_map(|m| match m {
            Message::Acknowledgement { sequence } => Some(sequence),
            _ => None,
        })
        .collect();
    assert_eq!(
        server_acks.last().copied(),
        Some(p.server.bytes_received() as u32)
    );
    assert!(server_acks.iter().all(|s| *s >= 4096), "{server_acks:?}");
    assert_eq!(p.server.bytes_received(), p.to_server.len() as u64);

    let client_acks = messages(&p.to_server)
        .into_iter()
        .filter(|m| matches!(m, Message::Acknowledgement { sequence } if *sequence >= 2000))
        .count();
    assert!(client_acks >= 1);

    // Without a window from the peer, nobody acknowledges.
    let mut p = Pair::new(ClientMode::Publish, "cam?key=1");
    p.server.config.window_ack_size = 0;
    publish_opening(&mut p);
    p.client.send_video(0, &[0x27; 10_000]);
    p.pump();
    assert!(messages(&p.to_server)
        .iter()
        .all(|m| !matches!(m, Message::Acknowledgement { .. })));
}

#[test]
fn pings_are_answered_with_the_same_timestamp() {
    let mut p = Pair::new(ClientMode::Publish, "cam?key=1");
    publish_opening(&mut p);
    let mut ping = BytesMut::new();
    Message::UserControl(UserControl::PingRequest(777)).encode(&mut ping, DEFAULT_CHUNK_SIZE);
    p.server.handle_input(&ping).unwrap();
    let out = p.server.poll_output().unwrap();
    assert_eq!(
        decode_output(&out, 60000),
        vec![Message::UserControl(UserControl::PingResponse(777))]
    );

    p.client.handle_input(&ping).unwrap();
    let out = p.client.poll_output().unwrap();
    assert_eq!(
        decode_output(&out, 60000),
        vec![Message::UserControl(UserControl::PingResponse(777))]
    );
}

#[test]
fn byte_at_a_time_delivery() {
    let mut p = Pair::new(ClientMode::Publish, "cam?key=1");
    p.byte_at_a_time = true;
    publish_opening(&mut p);
    let frame: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
    p.client.send_video(33, &frame);
    p.client.send_audio(34, &[0xaf, 1, 7]);
    p.pump();
    assert_eq!(
        p.server_events,
        vec![
            ServerEvent::Video {
                timestamp: 33,
                payload: Bytes::from(frame)
            },
            ServerEvent::Audio {
                timestamp: 34,
                payload: Bytes::from_static(&[0xaf, 1, 7])
            },
        ]
    );

    let mut p = Pair::new(ClientMode::Play, "cam");
    p.byte_at_a_time = true;
    p.pump();
    assert!(p
        .client_events
        .contains(&ClientEvent::Started { stream_id: 1 }));
}

#[test]
fn parse_rtmp_url_cases() {
    let (host, port, t) = parse_rtmp_url("rtmp://example.com/live/cam", ClientMode::Play).unwrap();
    assert_eq!((host.as_str(), port), ("example.com", 1935));
    assert_eq!(
        t,
        ClientTarget {
            app: "live".into(),
            tc_url: "rtmp://example.com/live".into(),
            stream: "cam".into(),
            mode: ClientMode::Play
        }
    );

    let (host, port, t) = parse_rtmp_url(
        "rtmp://10.0.0.1:1936/live/inst/cam?token=a/b&x=1",
        ClientMode::Publish,
    )
    .unwrap();
    assert_eq!((host.as_str(), port), ("10.0.0.1", 1936));
    assert_eq!(t.app, "live/inst");
    assert_eq!(t.tc_url, "rtmp://10.0.0.1:1936/live/inst");
    assert_eq!(t.stream, "cam?token=a/b&x=1");
    assert_eq!(t.mode, ClientMode::Publish);

    let (host, port, t) = parse_rtmp_url("rtmps://secure.example/app/s", ClientMode::Play).unwrap();
    assert_eq!(
        (host.as_str(), port, t.tc_url.as_str()),
        ("secure.example", 443, "rtmps://secure.example/app")
    );

    let (host, port, t) = parse_rtmp_url("rtmp://[::1]:19350/live/s", ClientMode::Play).unwrap();
    assert_eq!(
        (host.as_str(), port, t.tc_url.as_str()),
        ("::1", 19350, "rtmp://[::1]:19350/live")
    );

    for bad in [
        "",
        "rtmp://",
        "rtmp://host",
        "rtmp://host/",
        "rtmp://host/live",
        "rtmp://host/live/",
        "rtmp:///live/s",
        "rtmp://host:abc/live/s",
        "rtmp://host:0/live/s",
        "rtmp://host:70000/live/s",
        "rtmp://host//s",
        "http://host/live/s",
        "host/live/s",
        "rtmp://[::1/live/s",
        "rtmp://user@host/live/s",
    ] {
        assert_eq!(parse_rtmp_url(bad, ClientMode::Play), None, "{bad}");
    }
}

#[test]
fn media_and_data_count_only_on_the_publishing_stream() {
    let mut server = handshaken_server();
    let mut input = connect_command("live");
    input.extend_from_slice(&command(0, "createStream", 2.0, Amf0Value::Null, &[]));
    input.extend_from_slice(&command(0, "createStream", 3.0, Amf0Value::Null, &[]));
    input.extend_from_slice(&command(1, "publish", 0.0, Amf0Value::Null, &[text("cam")]));
    server.handle_input(&input).unwrap();
    drain_events(&mut server);
    server.accept_publish(1);

    let metadata = [
        text("onMetaData"),
        Amf0Value::Object(vec![("fps".into(), Amf0Value::Number(25.0))]),
    ];
    let mut input = BytesMut::new();
    let mut data = |stream_id: u32, values: &[Amf0Value]| {
        let payload = encode_values(values);
        chunk::encode_message(
            &mut input,
            csid::DATA,
            5,
            type_id::DATA_AMF0,
            stream_id,
            &payload,
            DEFAULT_CHUNK_SIZE,
        );
    };
    // Bare onMetaData (no @setDataFrame) counts; other data messages do not.
    data(1, &metadata);
    data(1, &[text("onCuePoint"), Amf0Value::Null]);
    data(1, &[text("@setDataFrame"), text("onMetaData")]);
    // Stream 2 is not publishing.
    data(2, &metadata);
    chunk::encode_message(
        &mut input,
        csid::VIDEO,
        9,
        type_id::VIDEO,
        2,
        &[0x17, 1],
        DEFAULT_CHUNK_SIZE,
    );
    chunk::encode_message(
        &mut input,
        csid::VIDEO,
        10,
        type_id::VIDEO,
        1,
        &[0x27, 1],
        DEFAULT_CHUNK_SIZE,
    );
    server.handle_input(&input).unwrap();
    assert_eq!(
        drain_events(&mut server),
        vec![
            ServerEvent::Metadata {
                timestamp: 5,
                payload: encode_values(&metadata),
                values: metadata.to_vec()
            },
            ServerEvent::Video {
                timestamp: 10,
                payload: Bytes::from_static(&[0x27, 1])
            },
        ]
    );
}

#[test]
fn play_on_a_playing_stream_switches() {
    let mut server = handshaken_server();
    let mut input = connect_command("live");
    input.extend_from_slice(&command(0, "createStream", 2.0, Amf0Value::Null, &[]));
    input.extend_from_slice(&command(1, "play", 0.0, Amf0Value::Null, &[text("a")]));
    server.handle_input(&input).unwrap();
    drain_events(&mut server);
    server.accept_play(1, "a", true);
    server
        .handle_input(&command(1, "play", 0.0, Amf0Value::Null, &[text("b?x=1")]))
        .unwrap();
    assert_eq!(
        drain_events(&mut server),
        vec![
            ServerEvent::StopPlay { stream_id: 1 },
            ServerEvent::Play {
                stream_id: 1,
                stream_name: "b".into(),
                params: "x=1".into(),
                start: -2.0,
                duration: -1.0,
                reset: true
            },
        ]
    );
    // Unanswered, a second play is ambiguous: refused.
    let err = server
        .handle_input(&command(1, "play", 0.0, Amf0Value::Null, &[text("c")]))
        .unwrap_err();
    assert!(matches!(err, SessionError::Protocol(_)));
}

#[test]
fn client_reports_command_errors() {
    let mut client = ClientSession::new(
        SessionConfig::default(),
        target(ClientMode::Play, "cam"),
        0,
        1,
        false,
    );
    let mut server = ServerSession::new(SessionConfig::default(), 0, 2);
    server.handle_input(&client.poll_output().unwrap()).unwrap();
    client.handle_input(&server.poll_output().unwrap()).unwrap();
    let sent = client.poll_output().unwrap();
    assert!(sent.len() > HANDSHAKE_SIZE, "C2 and connect");
    let info = status_object(
        "error",
        "NetConnection.Connect.Rejected",
        "No such app.",
        "",
    );
    client
        .handle_input(&command(0, "_error", 1.0, Amf0Value::Null, &[info]))
        .unwrap();
    assert_eq!(
        client.poll_event(),
        Some(ClientEvent::CommandError {
            command: "connect".into(),
            description: "No such app.".into()
        })
    );
    assert_eq!(client.poll_event(), None);
}

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn ffmpeg_publish_fixture() {
    let fixture = unhex(FFMPEG_PUBLISH);
    for piece in [fixture.len(), 1, 7, 1000] {
        let mut server = handshaken_server();
        let mut events = Vec::new();
        for part in fixture.chunks(piece) {
            server.handle_input(part).unwrap();
            while let Some(event) = server.poll_event() {
                if let ServerEvent::Publish { stream_id, .. } = event {
                    server.accept_publish(stream_id);
                }
                events.push(event);
            }
        }
        match &events[0] {
            ServerEvent::Connect { app, tc_url, .. } => {
                assert_eq!(app, "live");
                assert_eq!(tc_url.as_deref(), Some("rtmp://127.0.0.1:19350/live"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            events[1],
            ServerEvent::Publish {
                stream_id: 1,
                stream_name: "cam".into(),
                params: "key=abc".into(),
                publish_type: "live".into()
            }
        );
        match &events[2] {
            ServerEvent::Metadata {
                timestamp: 0,
                values,
                payload,
            } => {
                assert_eq!(values[0], text("onMetaData"));
                assert_eq!(values[1].get("width"), Some(&Amf0Value::Number(32.0)));
                assert_eq!(values[1].get("encoder"), Some(&text("Lavf59.27.100")));
                assert_eq!(
                    amf0::decode_all(payload, &Amf0Limits::default()).unwrap(),
                    *values
                );
            }
            other => panic!("{other:?}"),
        }
        let video: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                ServerEvent::Video { timestamp, payload } => Some((*timestamp, payload.clone())),
                _ => None,
            })
            .collect();
        // AVC sequence header, two frames (the first a keyframe), end of sequence.
        assert_eq!(video.len(), 4);
        assert_eq!(&video[0].1[..2], &[0x17, 0x00]);
        assert_eq!(&video[1].1[..2], &[0x17, 0x01]);
        assert_eq!(&video[2].1[..2], &[0x27, 0x01]);
        assert_eq!(&video[3].1[..], &[0x17, 0x02, 0, 0, 0]);
        // ffmpeg starts video 128 ms in (fmt-1 delta), then 10 fps.
        assert_eq!((video[1].0, video[2].0), (128, 228));
        let audio: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                ServerEvent::Audio { payload, .. } => Some(payload.clone()),
                _ => None,
            })
            .collect();
        assert!(audio.len() >= 2, "{}", audio.len());
        assert_eq!(&audio[0][..2], &[0xaf, 0x00]);
        assert!(audio[1..].iter().all(|a| a[..2] == [0xaf, 0x01]));
        // FCUnpublish then deleteStream: one Unpublish, at the end.
        assert_eq!(
            events
                .iter()
                .filter(|e| matches!(e, ServerEvent::Unpublish { .. }))
                .count(),
            1
        );
        assert_eq!(
            events.last(),
            Some(&ServerEvent::Unpublish { stream_id: 1 })
        );
        assert_eq!(
            server.bytes_received(),
            (HANDSHAKE_BYTES + fixture.len()) as u64
        );
        // ffmpeg sends nothing the server has to let pass.
        assert!(server.tolerated().is_empty(), "{}", server.tolerated());
    }
}

/// ffmpeg 5.1 (Lavf59.27.100) publishing `rtmp://127.0.0.1:19350/live/cam?key=abc`:
/// every byte it sent after C2, captured against a minimal responder (2 H.264
/// frames at 32x32, AAC audio, then FCUnpublish + deleteStream).
const FFMPEG_PUBLISH: &str = concat!(
    "0300000000008c1400000000020007636f6e6e656374003ff00000000000000300036170700200046c69766500047479",
    "706502000a6e6f6e707269766174650008666c617368566572020024464d4c452f332e302028636f6d70617469626c65",
    "3b204c61766635392e32372e313030290005746355726c02001b72746d703a2f2f3132372e302e302e313a31c3393335",
    "302f6c69766500000902000000000004010000000000001000430000000000281402000d72656c656173655374726561",
    "6d0040000000000000000502000b63616d3f6b65793d616263430000000000241402000946435075626c697368004008",
    "0000000000000502000b63616d3f6b65793d616263430000000000191402000c63726561746553747265616d00401000",
    "0000000000050800000000002914010000000200077075626c6973680040140000000000000502000b63616d3f6b6579",
    "3d6162630200046c69766504000000000135120100000002000d40736574446174614672616d6502000a6f6e4d657461",
    "44617461080000000d00086475726174696f6e0000000000000000000005776964746800404000000000000000066865",
    "69676874004040000000000000000d766964656f646174617261746500000000000000000000096672616d6572617465",
    "004024000000000000000c766964656f636f646563696400401c000000000000000d617564696f646174617261746500",
    "402f400000000000000f617564696f73616d706c65726174650040bf400000000000000f617564696f73616d706c6573",
    "697a65004030000000000000000673746572656f0100000c617564696f636f6465636964004024000000000000000765",
    "6e636f64657202000d4c61766635392e32372e313030000866696c6573697a6500000000000000000000000906000000",
    "00002f0901000000170000000001f4000affe1001667f4000a9196896c0440000003004000000523c489a801000568ce",
    "0f1920fff8f800040000000000070801000000af00158856e500040000000001670801000000af01de02004c61766335",
    "392e33372e313030000234a75ae9c8e6aafd65f6fd3f5e172aaf6924724449170331661cc598731661f5af5df5af5df5",
    "efa8f7576af7576af7576afedbf6bfaefdaff1bfab4d5334d5b34d5b3169e6629e69aa6731669d8dad763736c5a7998a",
    "9db2b11cbd9878bbaa7ec5328e3add99dc7d1f8d7df94dae0d5ba6a9db2bdc7ad76deadd176ad772ac6e3ac372ca75ec",
    "a71d8db15c6c571b15c6c559ad566b51afd1afcfafcfaa94aa52a94aa52b94bf2954a552954494494494494494494494",
    "494494494494494494494494494494494494494494494494494494494494494494494494e0a70538732cb2cb2cb2cb2c",
    "b2cb2cb2cb2cb2cb2cb2cb2cb2cb2cb2cb2cb2cb2cb2cb2cb2cb2cb2cb2cb2cb2cb2cb2cb2cb2cb2cb2cb2cb2cb2cb2c",
    "b2cb2cb2cb2cb2cb2cb2cb2cb2cb2cb2cb2cb2cb2cb2cb2cb2cb29932640c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0",
    "c0c0c0c0c0c0c0c0c0c0c0c0f84600008000054a091701000000000002520605ffff4edc45e9bde6d948b7962cd820d9",
    "23eeef78323634202d20636f7265203136342072333039352062616565343030202d20482e3236342f4d5045472d3420",
    "41564320636f646563202d20436f70796c65667420323030332d32303232202d20687474703a2f2f7777772e76696465",
    "6f6c616e2e6f72672f783236342e68746d6c202d206f7074696f6e733a2063616261633d30207265663d31206465626c",
    "6f636b3d303a303a3020616e616c7973653d303a30206d653d646961207375626d653d30207073793d31207073795f72",
    "643d312e30303a302e3030206d697865645f7265663d30206d655f72616e67653d3136206368726f6d615f6d653d3120",
    "7472656c6c69733d30203878386463743d302063716d3d3020646561647a6f6e653d32312c313120666173745f70736b",
    "69703d31206368726f6d615f71705f6f66667365743d3620746872656164733d31206c6f6f6b61686561645f74687265",
    "6164733d3120736c696365645f746872656164733d30206e723d3020646563696d6174653d3120696e7465726c616365",
    "643d3020626c757261795f636f6d7061743d3020636f6e73747261696e65645f696e7472613d3020626672616d65733d",
    "3020776569676874703d30206b6579696e743d3130206b6579696e745f6d696e3d31207363656e656375743d3020696e",
    "7472615f726566726573683d302072633d637266206d62747265653d30206372663d32332e302071636f6d703d302e36",
    "302071706d696e3d302071706d61783d3639207170737465703d342069705f726174696f3d312e34302061713d300080",
    "000002eb6588843a0840010d00807961bd7953005a4190b6a84f800536444c6fd0c8ee000e83288e624d352e15e555c0",
    "99a24fd4174d37f6603dfe0dc3df840000800000600a961ec000140039a6028d81d1f3c06400008058000803801f73f0",
    "004409086201d0e0bf51b7c131340046db7ca6c82e4afc3a52fe66000584ef0be8f7e10000540282e587fff000400010",
    "09280140dc94d145410d5955c3f8a000f9118d50844717d08e03297bf4460370a6bf66000089022120d447bf08914b0f",
    "ffe10801c0c2001e442681192241314dc08c07ebff070001001000e0172c0480adca1f10e5fd38c4c2d39a4377683023",
    "3323436e87467c00305335da943c0ef8a35fdbc304200010001025353192064d06f7ddf001c45210ac04e485e68c3409",
    "801e8700028010152c02d701132980325ba5fccd1c4625fb41814fcd73933fff800e000200e3079bf1444a240d64a31d",
    "4a51074ce58058b80212bd80ceb74bfa2320ca369ae35dbb4180b1910d14854713d280fc3e3a0038c1840f4f91d43a17",
    "a70892e194e3f001e088005d48f34412795f57bfc800010040001006032e15007dc00e8802700200565e2c1e2e0260f7",
    "2904ebad147b2ff12001b858f12cd0b4d41395bf8480016b4030323b0002e60cc005584e8874c018a84f6ff100584406",
    "0d0cf278052507a5d4e5ee146240058c634329ef73005b7efe6600fe1cfb9e00020083120526a26ad84671ad28ee91bf",
    "c400581000580303318689e012c2f98eea8e6502b1f84001616d832096babf303ffefd8804e3cb1d000400101520cb24",
    "0dc2dde93074956cdbabf800f61066a07aa40c3e6fd5e078000801300c00eb838406c4071b6ef0063b034d6280e2684e",
    "00370f3a1b80a131ca00efdda120006e400381f0d80008b3001c03029b7167499b02a8849fe24058645400368102233c",
    "0766411f081896f768531000580cc04c929b7dda24aa53c00040c1540072845421905e8a75a28a7fc4802c09001600d0",
    "1bc72e67815990078411145ba4240058705a4c007c3ee2019cdda2008c54b84400008000013808af0100f49ed9b16175",
    "c221d59913196632428fe33ffdbff6f6bd71c5cb4af7fcffe9ff9fdecbd4b937f6fb7ff87febfa8755ab8fdbf6ffb7fe",
    "7fac49a5eb49974628f032e8c49c72e8c51e1e1ed414d25f4e2340d141a8a375145146ea23c165f90b9c9faf05d82070",
    "8beb0ae719d70b8c375c1f0937c7d3f27a7d1e5eb2e6458cc5ae12b6a27d82f58ac86663e587b46066ac0c9967965af6",
    "cd9d97becd916f6cd9b08efa45c23689717fda7b08ecd9b23dafc8df78b646eba1a57c55ddcb39e65ca7d493d426e992",
    "d487a077807782d3cbd39fa73a4c47b12046c9bc60e02db05df66fbf76bbac23b6f23ae9739e79e79e7509d4a54f3cf3",
    "cf3a8df46fa28a5f9d4bd6943fe9e8e36bb06f89daa595a217a9cfee3faaa3a60d978ef64a5b1baa2d7d181818912bc4",
    "81953912107d9f2d9c78d6e4d3cbc04600006400001909270100000000000010419a20627c9174d2fbbfe48adb6beabc",
    "4400008000012208af0100f29fb632617663212a2ab84831f6f5ffe1ff9fd38938925e7bfe9ffd3ff3fc68bd4b935fb7",
    "e7ffdbff5fc44e2ed221974608f3977d1cf2383f3773dd6e7748d265a25a46e83741aadfbd878a1ef4d15a959a532d4d",
    "2a6940c0da181818181b4303031206941a52599b52b10606060606363ac96f57378caadf53d1ab134e95d0a15585ea42",
    "a5638c426315cd54cde50ddb6d75d5ba2899e4ce7af913d7de777a0ef685fef3fa07f431bbd7eb23c52af5f885fc98df",
    "f965ff2cb1451451459628a2891145145144fc440844482a8ea3d5155144110d553d1aad78122f3392702132579f3378",
    "f6b513ec2ce624c4afccba9975682eb05d615ce2b5059837a0cc8181caa03625940c0e5948dbabad7f233e0ae3d694eb",
    "7a8cc2334abf9706bb704400008000010108af0101029fb5a17032fc781f97bf7ff6ff4fbf1c757c48d73fd37ff8ffcb",
    "400064d6b566464647bcf79f2fd70fd55fa0b98cd2f3cf3cf3c1e63cc798f3cf3cf0631e79e4bcf3cf639a73d7adac4e",
    "692562b3b16489390e10975c363575b1b88700e0e4385708cf6450800201190295cb8a8064c0903a245dba015e38d126",
    "0027007f7fbb95dc4018187ea7f7aeca00ef3d8fc5d9880331db74dcf798adab6a7a00008bc1dd6d73d4f53d4180001a",
    "dad6d3c1a0d06830000274e9d3c1a0cea6a0000e5f2f4f3cf3f0bc2f0bc2f0bc2033cf3cf3cf3cfc2f0bc2f0bc2f0bc2",
    "f08033cf3cf3b91e1785e1785e1785d772b95ca00000e572b95cae572b95cae572800e46000000000005091702000000",
    "430000000000261402000b4643556e7075626c6973680040180000000000000502000b63616d3f6b65793d6162634300",
    "00000000221402000c64656c65746553747265616d00401c00000000000005003ff0000000000000",
);

#[test]
fn errors_name_where_they_failed() {
    // A publish whose stream name is cut short: the command and the byte are named.
    let mut server = handshaken_server();
    let connect = connect_command("live");
    server.handle_input(&connect).unwrap();
    let mut payload = message::command_payload("publish", 0.0, &Amf0Value::Null, &[]).to_vec();
    payload.extend_from_slice(&[0x02, 0, 9, b'c']);
    let mut input = BytesMut::new();
    raw_message(
        &mut input,
        csid::COMMAND,
        type_id::COMMAND_AMF0,
        1,
        &payload,
    );
    let err = server.handle_input(&input).unwrap_err();
    assert_eq!(
        err.to_string(),
        "message: bad AMF0 in message type 20 (command 'publish'), starting at byte 20: \
         AMF0 input truncated at offset 3"
    );

    // Set Chunk Size 0 right after connect: the chunk is named by its offset in the
    // chunk stream (the bytes after the handshake).
    let mut server = handshaken_server();
    let mut input = connect_command("live");
    let at = input.len();
    Message::SetChunkSize(0).encode(&mut input, DEFAULT_CHUNK_SIZE);
    let err = server.handle_input(&input).unwrap_err();
    assert_eq!(
        err,
        SessionError::Chunk(ChunkError::BadChunkSize {
            size: 0,
            offset: at as u64
        })
    );
    assert!(err
        .to_string()
        .starts_with("chunk stream: chunk size 0 out of range"));
}

#[test]
fn long_connect_strings_are_refused_naming_the_field() {
    let at_limit = "x".repeat(MAX_CONNECT_STRING);
    for field in ["app", "tcUrl", "flashVer", "swfUrl", "pageUrl"] {
        let mut server = handshaken_server();
        let object = Amf0Value::Object(vec![
            ("app".into(), text("live")),
            (field.into(), text(&at_limit)),
        ]);
        server
            .handle_input(&command(0, "connect", 1.0, object, &[]))
            .unwrap_or_else(|e| panic!("{field} at the limit: {e}"));

        let mut server = handshaken_server();
        let object = Amf0Value::Object(vec![
            ("app".into(), text("live")),
            (field.into(), text(&format!("{at_limit}y"))),
        ]);
        let err = server
            .handle_input(&command(0, "connect", 1.0, object, &[]))
            .unwrap_err();
        assert_eq!(
            err,
            SessionError::Protocol(format!(
                "connect field {field:?} of {} bytes (limit {MAX_CONNECT_STRING})",
                MAX_CONNECT_STRING + 1
            ))
        );
        assert!(drain_events(&mut server).is_empty());
    }
}

#[test]
fn long_stream_names_are_refused() {
    for cmd in ["publish", "play"] {
        let mut server = handshaken_server();
        let mut input = connect_command("live");
        input.extend_from_slice(&command(0, "createStream", 2.0, Amf0Value::Null, &[]));
        server.handle_input(&input).unwrap();
        drain_events(&mut server);
        let name = format!("k?token={}", "a".repeat(MAX_STREAM_NAME));
        let err = server
            .handle_input(&command(1, cmd, 0.0, Amf0Value::Null, &[text(&name)]))
            .unwrap_err();
        assert_eq!(
            err,
            SessionError::Protocol(format!(
                "{cmd} stream name of {} bytes (limit {MAX_STREAM_NAME})",
                name.len()
            ))
        );
        assert!(drain_events(&mut server).is_empty());
    }
}

#[test]
fn publish_unpublish_churn_is_bounded() {
    let mut server = handshaken_server();
    let mut input = connect_command("live");
    input.extend_from_slice(&command(0, "createStream", 2.0, Amf0Value::Null, &[]));
    server.handle_input(&input).unwrap();
    drain_events(&mut server);
    let publish = command(1, "publish", 0.0, Amf0Value::Null, &[text("k")]);
    let unpublish = command(0, "FCUnpublish", 0.0, Amf0Value::Null, &[text("k")]);
    for _ in 0..MAX_PUBLISH_ATTEMPTS {
        server.handle_input(&publish).unwrap();
        assert!(matches!(
            drain_events(&mut server)[..],
            [ServerEvent::Publish { stream_id: 1, .. }]
        ));
        server.accept_publish(1);
        server.handle_input(&unpublish).unwrap();
        assert_eq!(
            drain_events(&mut server),
            [ServerEvent::Unpublish { stream_id: 1 }]
        );
    }
    let err = server.handle_input(&publish).unwrap_err();
    assert_eq!(
        err,
        SessionError::Protocol(format!(
            "more than {MAX_PUBLISH_ATTEMPTS} publish requests on one connection"
        ))
    );
    assert!(drain_events(&mut server).is_empty());
}

#[test]
fn play_churn_is_bounded() {
    let mut server = handshaken_server();
    let mut input = connect_command("live");
    input.extend_from_slice(&command(0, "createStream", 2.0, Amf0Value::Null, &[]));
    server.handle_input(&input).unwrap();
    drain_events(&mut server);
    let play = command(1, "play", 0.0, Amf0Value::Null, &[text("k")]);
    for _ in 0..MAX_PLAY_ATTEMPTS {
        server.handle_input(&play).unwrap();
        drain_events(&mut server);
        server.accept_play(1, "k", true);
        drain_events(&mut server);
    }
    let err = server.handle_input(&play).unwrap_err();
    assert_eq!(
        err,
        SessionError::Protocol(format!(
            "more than {MAX_PLAY_ATTEMPTS} play requests on one connection"
        ))
    );
}
