//! The client state machine: what the load generator and the push/pull proxies use.
//!
//! Handshake ([`ClientHandshake`], digest form on request), `connect`, then on its
//! `_result` Set Chunk Size and Window Acknowledgement Size, then per [`ClientMode`]
//! `releaseStream` + `FCPublish` + `createStream` + `publish`, or `createStream` +
//! `play` + Set Buffer Length. All of that runs without the driver's help; the driver
//! sees [`ClientEvent::Connected`], then [`ClientEvent::Started`] once media may flow.
//! The client's first output (C0 + C1) is ready before any input, so drain
//! `poll_output` right after `new`.
//!
//! What the client lets pass (commands it does not know such as `onBWDone`, data
//! messages other than metadata and `onStatus`, `_result`s to nothing it asked) is
//! counted in [`Tolerated`]. `|RtmpSampleAccess` is not counted: servers send it to
//! every player as a capability notice, and a player has nothing to do with it.

use std::collections::VecDeque;

use bytes::Bytes;

use super::link::{self, Endpoint, Link};
use super::values::{f64_to_u32, metadata_from_data};
use super::{SessionConfig, SessionError, Tolerated};
use crate::amf0::Amf0Value;
use crate::rtmp::chunk::MAX_CHUNK_SIZE;
use crate::rtmp::handshake::ClientHandshake;
use crate::rtmp::message::{csid, type_id, Message, UserControl};

/// Client flashVer: encoders identify as FMLE, which servers treat as a publisher
/// that knows `releaseStream` / `FCPublish`.
pub(super) const CLIENT_FLASH_VER: &str = "FMLE/3.0 (compatible; ferrocast)";
/// Buffer length a playing client announces, as ffmpeg and Flash Player do (ms).
pub(super) const PLAY_BUFFER_MS: u32 = 3000;

/// What a client session does once connected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientMode {
    /// createStream + play(stream)
    Play,
    /// releaseStream + FCPublish + createStream + publish(stream, "live")
    Publish,
}

/// Where a client session connects: `rtmp://host[:port]/{app}/{stream}` gives
/// app, `tc_url` = `rtmp://host[:port]/{app}`, stream (with `?query` kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTarget {
    pub app: String,
    pub tc_url: String,
    pub stream: String,
    pub mode: ClientMode,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    /// NetConnection.Connect.Success received.
    Connected,
    /// NetStream.Play.Start or NetStream.Publish.Start received: media may flow.
    Started {
        stream_id: u32,
    },
    /// Any onStatus (including the ones above), for logging and errors such as
    /// NetStream.Play.StreamNotFound, NetStream.Publish.BadName, UnpublishNotify.
    Status {
        level: String,
        code: String,
        description: String,
    },
    /// `_error` answer to one of our commands.
    CommandError {
        command: String,
        description: String,
    },
    /// onMetaData (with or without @setDataFrame): `payload` is the AMF0 bytes of
    /// "onMetaData" + the value, `values` the same two values decoded.
    Metadata {
        timestamp: u32,
        payload: Bytes,
        values: Vec<Amf0Value>,
    },
    Audio {
        timestamp: u32,
        payload: Bytes,
    },
    Video {
        timestamp: u32,
        payload: Bytes,
    },
    /// Stream EOF user control or onStatus *.UnpublishNotify / *.Stop. Reported once
    /// until the stream starts (Started, Stream Begin) again.
    StreamEnded,
}

/// Client state machine: handshake (digest form when `digest`), connect, then play or
/// publish per [`ClientTarget`], automatically. Answers pings, sends acknowledgements.
pub struct ClientSession {
    config: SessionConfig,
    target: ClientTarget,
    /// `Some` until the handshake is done.
    handshake: Option<ClientHandshake>,
    link: Link,
    events: VecDeque<ClientEvent>,
    next_transaction: f64,
    /// Commands sent with a transaction id and not yet answered.
    pending: Vec<(f64, &'static str)>,
    /// The message stream id createStream returned.
    stream_id: Option<u32>,
    /// StreamEnded was reported and nothing restarted the stream since.
    ended: bool,
    closed: bool,
}

impl ClientSession {
    pub fn new(
        config: SessionConfig,
        target: ClientTarget,
        epoch: u32,
        random: u64,
        digest: bool,
    ) -> Self {
        let mut config = config;
        config.out_chunk_size = config.out_chunk_size.clamp(1, MAX_CHUNK_SIZE);
        let mut handshake = ClientHandshake::new(epoch, random, digest);
        let mut link = Link::new(config.chunk_limits);
        while let Some(bytes) = handshake.poll_output() {
            link.out.extend_from_slice(&bytes);
        }
        ClientSession {
            config,
            target,
            handshake: Some(handshake),
            link,
            events: VecDeque::new(),
            next_transaction: 1.0,
            pending: Vec::new(),
            stream_id: None,
            ended: false,
            closed: false,
        }
    }

    /// Feeds bytes read from the socket. An error ends the session.
    pub fn handle_input(&mut self, data: &[u8]) -> Result<(), SessionError> {
        link::handle_input(self, data)
    }

    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// Everything queued for the peer, as one buffer (C0 + C1 right after `new`).
    pub fn poll_output(&mut self) -> Option<Bytes> {
        self.link.take_output()
    }

    /// The message stream id createStream returned, once it did.
    pub fn stream_id(&self) -> Option<u32> {
        self.stream_id
    }

    /// What the server sent that the session ignored or worked around so far (see
    /// "What is lenient" in the [session docs](super)); for the driver's log.
    pub fn tolerated(&self) -> Tolerated {
        self.link.tolerated()
    }

    /// Publishing: queue one message (after Started). `@setDataFrame` is prepended to
    /// metadata by `send_metadata`. Dropped before createStream answered or after
    /// `close`.
    pub fn send_audio(&mut self, timestamp: u32, payload: &[u8]) {
        if let Some(stream_id) = self.open_stream() {
            self.link
                .send_raw(csid::AUDIO, timestamp, type_id::AUDIO, stream_id, payload);
        }
    }

    pub fn send_video(&mut self, timestamp: u32, payload: &[u8]) {
        if let Some(stream_id) = self.open_stream() {
            self.link
                .send_raw(csid::VIDEO, timestamp, type_id::VIDEO, stream_id, payload);
        }
    }

    /// `values` is `["onMetaData", object]` (a bare `[object]` gets the name added).
    pub fn send_metadata(&mut self, values: &[Amf0Value]) {
        let Some(stream_id) = self.open_stream() else {
            return;
        };
        let mut all = Vec::with_capacity(values.len() + 2);
        all.push(Amf0Value::String("@setDataFrame".into()));
        if !matches!(values.first(), Some(Amf0Value::String(_))) {
            all.push(Amf0Value::String("onMetaData".into()));
        }
        all.extend_from_slice(values);
        self.link.send_data(csid::DATA, stream_id, 0, &all);
    }

    /// Sends FCUnpublish + deleteStream (publish) or closeStream + deleteStream
    /// (play). Later calls, and sends after it, do nothing.
    pub fn close(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        let Some(stream_id) = self.stream_id else {
            return;
        };
        match self.target.mode {
            ClientMode::Publish => {
                let stream = Amf0Value::String(self.target.stream.clone());
                self.send_tracked(0, "FCUnpublish", &[stream]);
            }
            ClientMode::Play => {
                self.link.send_command(
                    csid::COMMAND,
                    stream_id,
                    "closeStream",
                    0.0,
                    &Amf0Value::Null,
                    &[],
                );
            }
        }
        self.send_tracked(
            0,
            "deleteStream",
            &[Amf0Value::Number(f64::from(stream_id))],
        );
    }

    fn open_stream(&self) -> Option<u32> {
        if self.closed {
            None
        } else {
            self.stream_id
        }
    }

    /// Sends a command with a fresh transaction id and remembers it for the answer.
    fn send_tracked(&mut self, stream_id: u32, name: &'static str, args: &[Amf0Value]) {
        let transaction_id = self.next_transaction;
        self.next_transaction += 1.0;
        self.pending.push((transaction_id, name));
        self.link.send_command(
            csid::COMMAND,
            stream_id,
            name,
            transaction_id,
            &Amf0Value::Null,
            args,
        );
    }

    fn send_connect(&mut self) {
        let text = |s: &str| Amf0Value::String(s.to_string());
        let mut properties = vec![
            ("app".to_string(), text(&self.target.app)),
            ("flashVer".to_string(), text(CLIENT_FLASH_VER)),
            ("tcUrl".to_string(), text(&self.target.tc_url)),
        ];
        match self.target.mode {
            ClientMode::Publish => properties.push(("type".into(), text("nonprivate"))),
            ClientMode::Play => properties.extend([
                ("fpad".to_string(), Amf0Value::Boolean(false)),
                ("capabilities".to_string(), Amf0Value::Number(15.0)),
                // The codec bit masks Flash Player 10+ (and ffmpeg) announce.
                ("audioCodecs".to_string(), Amf0Value::Number(4071.0)),
                ("videoCodecs".to_string(), Amf0Value::Number(252.0)),
                ("videoFunction".to_string(), Amf0Value::Number(1.0)),
            ]),
        }
        let transaction_id = self.next_transaction;
        self.next_transaction += 1.0;
        self.pending.push((transaction_id, "connect"));
        self.link.send_command(
            csid::COMMAND,
            0,
            "connect",
            transaction_id,
            &Amf0Value::Object(properties),
            &[],
        );
    }
}

impl Endpoint for ClientSession {
    type Handshake = ClientHandshake;

    fn parts(&mut self) -> (&mut Option<Self::Handshake>, &mut Link) {
        (&mut self.handshake, &mut self.link)
    }

    fn on_handshake_done(&mut self) {
        self.send_connect();
    }

    fn handle_message(&mut self, msg: Message) -> Result<(), SessionError> {
        match msg {
            Message::UserControl(UserControl::StreamBegin(_)) => self.ended = false,
            Message::UserControl(UserControl::StreamEof(_)) => self.stream_ended(),
            // Servers tell players about these; a live player has nothing to do.
            Message::UserControl(UserControl::StreamDry(_) | UserControl::StreamIsRecorded(_)) => {}
            Message::UserControl(event) => {
                self.link
                    .tolerated
                    .unexpected_user_control(event.event_type());
            }
            Message::Audio {
                timestamp, payload, ..
            } => self
                .events
                .push_back(ClientEvent::Audio { timestamp, payload }),
            Message::Video {
                timestamp, payload, ..
            } => self
                .events
                .push_back(ClientEvent::Video { timestamp, payload }),
            Message::Data {
                timestamp, values, ..
            } => {
                let name = values.first().and_then(Amf0Value::as_str);
                if name == Some("onStatus") {
                    match values.get(1) {
                        Some(info) => self.on_status(info),
                        None => self.link.tolerated.ignored_data += 1,
                    }
                } else if name == Some("|RtmpSampleAccess") {
                    // A capability notice every player gets (see the module docs).
                } else if let Some((payload, values)) = metadata_from_data(values) {
                    self.events.push_back(ClientEvent::Metadata {
                        timestamp,
                        payload,
                        values,
                    });
                } else {
                    self.link.tolerated.ignored_data += 1;
                }
            }
            Message::Command {
                name,
                transaction_id,
                command_object,
                args,
                ..
            } => match name.as_str() {
                "_result" => self.on_result(transaction_id, &command_object, &args)?,
                "_error" => self.on_error(transaction_id, &command_object, &args),
                "onStatus" => {
                    // The info object is the first argument; a few servers put it in
                    // the command object's place instead.
                    let info = args
                        .first()
                        .filter(|a| a.get("code").is_some())
                        .unwrap_or(&command_object);
                    self.on_status(info);
                }
                _ => self.link.tolerated.unknown_command(&name),
            },
            Message::Other(raw) => self.link.tolerated.unhandled_message(raw.type_id),
            // The link handled the protocol control messages.
            _ => {}
        }
        Ok(())
    }
}

impl ClientSession {
    fn take_pending(&mut self, transaction_id: f64) -> Option<&'static str> {
        let pos = self
            .pending
            .iter()
            .position(|(t, _)| *t == transaction_id)?;
        Some(self.pending.swap_remove(pos).1)
    }

    fn on_result(
        &mut self,
        transaction_id: f64,
        command_object: &Amf0Value,
        args: &[Amf0Value],
    ) -> Result<(), SessionError> {
        match self.take_pending(transaction_id) {
            Some("connect") => {
                self.events.push_back(ClientEvent::Connected);
                self.link.set_chunk_size(self.config.out_chunk_size);
                self.link
                    .send(&Message::WindowAckSize(self.config.window_ack_size));
                let stream = Amf0Value::String(self.target.stream.clone());
                if self.target.mode == ClientMode::Publish {
                    self.send_tracked(0, "releaseStream", std::slice::from_ref(&stream));
                    self.send_tracked(0, "FCPublish", &[stream]);
                }
                self.send_tracked(0, "createStream", &[]);
            }
            Some("createStream") => {
                let stream_id = args
                    .iter()
                    .chain(std::iter::once(command_object))
                    .find_map(Amf0Value::as_f64)
                    .and_then(f64_to_u32)
                    .ok_or_else(|| {
                        SessionError::Protocol("createStream _result without a stream id".into())
                    })?;
                self.stream_id = Some(stream_id);
                if self.closed {
                    return Ok(());
                }
                let stream = Amf0Value::String(self.target.stream.clone());
                match self.target.mode {
                    ClientMode::Publish => {
                        self.send_tracked(
                            stream_id,
                            "publish",
                            &[stream, Amf0Value::String("live".into())],
                        );
                    }
                    ClientMode::Play => {
                        // start -2: live if there is a live stream, else recorded
                        // (spec 7.2.2.1), the default Flash Player sends.
                        self.send_tracked(stream_id, "play", &[stream, Amf0Value::Number(-2.0)]);
                        self.link
                            .send(&Message::UserControl(UserControl::SetBufferLength {
                                stream_id,
                                buffer_ms: PLAY_BUFFER_MS,
                            }));
                    }
                }
            }
            // Answers to releaseStream, FCPublish, publish, play, FCUnpublish and
            // deleteStream carry nothing the client needs.
            Some(_) => {}
            None => self.link.tolerated.unmatched_results += 1,
        }
        Ok(())
    }

    fn on_error(&mut self, transaction_id: f64, command_object: &Amf0Value, args: &[Amf0Value]) {
        let command = self
            .take_pending(transaction_id)
            .unwrap_or("unknown")
            .to_string();
        let info = args.first().unwrap_or(command_object);
        let description = info
            .get("description")
            .or_else(|| info.get("code"))
            .and_then(Amf0Value::as_str)
            .unwrap_or("")
            .to_string();
        self.events.push_back(ClientEvent::CommandError {
            command,
            description,
        });
    }

    fn on_status(&mut self, info: &Amf0Value) {
        let field = |key: &str| {
            info.get(key)
                .and_then(Amf0Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let (level, code, description) = (field("level"), field("code"), field("description"));
        let started = code == "NetStream.Publish.Start" || code == "NetStream.Play.Start";
        let ended = code.ends_with(".UnpublishNotify") || code.ends_with(".Stop");
        self.events.push_back(ClientEvent::Status {
            level,
            code,
            description,
        });
        if started {
            self.ended = false;
            self.events.push_back(ClientEvent::Started {
                stream_id: self.stream_id.unwrap_or(0),
            });
        } else if ended {
            self.stream_ended();
        }
    }

    fn stream_ended(&mut self) {
        if !self.ended {
            self.ended = true;
            self.events.push_back(ClientEvent::StreamEnded);
        }
    }
}
