//! The server state machine: what a publisher or a player talks to.
//!
//! ```text
//! connection:  Handshake --C0 C1 C2--> Connecting --connect--> Connected
//! each stream (createStream gives ids 1, 2, ...):
//!   Idle --publish--> PublishRequested --accept_publish--> Publishing --+
//!                                      `-reject_publish--> Idle         |
//!   Idle --play-----> PlayRequested ----accept_play-----> Playing ------+
//!                                      `-play_not_found--> Idle         |
//!   Idle <--FCUnpublish (publishing) / closeStream / deleteStream ------+
//! ```
//! * The handshake ([`ServerHandshake`]) comes first; the bytes left over after C2 go
//!   to the [`ChunkDecoder`](crate::rtmp::chunk::ChunkDecoder), which applies Set
//!   Chunk Size and Abort itself.
//! * `connect` is answered at once (Window Acknowledgement Size, Set Peer Bandwidth,
//!   Set Chunk Size, then `_result`) and reported as [`ServerEvent::Connect`]. Any
//!   other command before `connect` is a [`SessionError::Protocol`].
//! * `createStream` hands out the lowest free message stream id, starting at 1: the
//!   server chunks media for players once per stream on message stream id 1 and
//!   shares those bytes between every player, so an ordinary player must get id 1.
//!   At most [`MAX_STREAMS`] streams exist at once.
//! * `publish` and `play` are *requests*: they become [`ServerEvent::Publish`] /
//!   [`ServerEvent::Play`], and the driver answers each with `accept_publish` /
//!   `reject_publish` or `accept_play` / `play_not_found`, which queue the matching
//!   `onStatus` messages.
//! * Every accepted publish is followed by exactly one [`ServerEvent::Unpublish`], and
//!   every accepted play by exactly one [`ServerEvent::StopPlay`], whether the peer
//!   closed the stream before or after the driver's answer. A stream closed while its
//!   request was still unanswered is remembered, and the late `accept_*` queues the
//!   closing event right away instead of output. So a driver that keeps a
//!   subscription per accepted play never leaks one.
//! * What the server lets pass (unknown commands, media outside a publish, ...) is
//!   listed in the [session docs](super) and counted in [`Tolerated`].

use std::collections::VecDeque;

use bytes::Bytes;

use super::link::{self, Endpoint, Link};
use super::url::{split_app, split_stream_name};
use super::values::{f64_to_u32, metadata_from_data, short};
use super::{SessionConfig, SessionError, Tolerated};
use crate::amf0::Amf0Value;
use crate::rtmp::chunk::MAX_CHUNK_SIZE;
use crate::rtmp::handshake::ServerHandshake;
use crate::rtmp::message::{csid, Message, UserControl};

/// Most message streams one connection may have at once. A publisher needs one and a
/// player one; Flash clients that juggle several NetStreams rarely go past two or
/// three. Eight leaves room for those and bounds the per-connection state.
pub const MAX_STREAMS: u32 = 8;

/// Longest string value the `connect` command object may carry (app, tcUrl,
/// flashVer, swfUrl, pageUrl...), in bytes. Real ones are tens to a few hundred bytes
/// (a tcUrl with a signed query a few hundred); the session keeps app and hands tcUrl
/// to the driver, which keeps and logs them, so each is capped rather than trusted to
/// the 16 MiB message limit.
pub const MAX_CONNECT_STRING: usize = 4096;
/// Longest `publish` / `play` stream name, its `?query` included, in bytes (names
/// become stream keys, API listings, file names and hook bodies).
pub const MAX_STREAM_NAME: usize = 4096;
/// Most `publish` requests one connection may make. An encoder publishes once per
/// connection (OBS and ffmpeg reconnect to publish again); a few more cover clients
/// that retry a refused name. Each attempt creates or takes over a hub stream and
/// runs the publish hooks, so a connection that churns publish/unpublish is cut off
/// here instead of costing that forever.
pub const MAX_PUBLISH_ATTEMPTS: u32 = 8;
/// Most `play` requests one connection may make: Flash players switch streams with
/// a new `play` on the same NetStream, which a viewer does by hand, a few times, not
/// thousands.
pub const MAX_PLAY_ATTEMPTS: u32 = 64;

/// Server version string in the connect `_result` (the value FMS 3 sent; some
/// clients parse it, none need it to be newer).
pub(super) const FMS_VERSION: &str = "FMS/3,0,1,123";
/// Server capabilities in the connect `_result` (FMS sends 31).
const FMS_CAPABILITIES: f64 = 31.0;

#[derive(Debug, Clone, PartialEq)]
pub enum ServerEvent {
    /// connect was received and answered with NetConnection.Connect.Success.
    Connect {
        app: String,
        tc_url: Option<String>,
        command_object: Amf0Value,
    },
    /// publish received; answer with accept_publish or reject_publish.
    Publish {
        stream_id: u32,
        stream_name: String,
        params: String,
        publish_type: String,
    },
    /// play received; answer with accept_play or play_not_found.
    Play {
        stream_id: u32,
        stream_name: String,
        params: String,
        start: f64,
        duration: f64,
        reset: bool,
    },
    /// The publisher stopped (FCUnpublish, closeStream or deleteStream of its stream).
    Unpublish {
        stream_id: u32,
    },
    /// A player stopped (closeStream or deleteStream of its stream).
    StopPlay {
        stream_id: u32,
    },
    /// @setDataFrame/onMetaData from the publisher: `payload` is the AMF0 bytes of
    /// "onMetaData" + the metadata value, ready to forward to players. `values` are
    /// the same two values decoded: `[String("onMetaData"), value]`.
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
}

/// What a server-side message stream is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamState {
    Idle,
    /// publish reported, accept_publish / reject_publish not yet called.
    PublishRequested,
    Publishing,
    /// play reported, accept_play / play_not_found not yet called.
    PlayRequested,
    Playing,
}

#[derive(Debug)]
struct ServerStream {
    id: u32,
    state: StreamState,
    /// Stream name of the publish or play, for onStatus `details`.
    name: String,
}

/// A request that the peer withdrew (closed its stream) before the driver answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Withdrawn {
    Publish(u32),
    Play(u32),
}

/// Server side of one RTMP connection. The state machine is drawn in this file's
/// module docs (`rtmp/session/server.rs`); the order in which to call the methods is
/// in the [session docs](super).
pub struct ServerSession {
    pub(super) config: SessionConfig,
    /// `Some` until the handshake is done.
    handshake: Option<ServerHandshake>,
    link: Link,
    events: VecDeque<ServerEvent>,
    connected: bool,
    app: Option<String>,
    app_params: Option<String>,
    streams: Vec<ServerStream>,
    withdrawn: Vec<Withdrawn>,
    /// `publish` and `play` requests so far ([`MAX_PUBLISH_ATTEMPTS`],
    /// [`MAX_PLAY_ATTEMPTS`]).
    publishes: u32,
    plays: u32,
}

impl ServerSession {
    /// `epoch` and `random` seed the handshake's S1 (this crate reads no clock and no
    /// RNG).
    pub fn new(config: SessionConfig, epoch: u32, random: u64) -> Self {
        let mut config = config;
        config.out_chunk_size = config.out_chunk_size.clamp(1, MAX_CHUNK_SIZE);
        ServerSession {
            config,
            handshake: Some(ServerHandshake::new(epoch, random)),
            link: Link::new(config.chunk_limits),
            events: VecDeque::new(),
            connected: false,
            app: None,
            app_params: None,
            streams: Vec::new(),
            withdrawn: Vec::new(),
            publishes: 0,
            plays: 0,
        }
    }

    /// Feeds bytes read from the socket. An error ends the session.
    pub fn handle_input(&mut self, data: &[u8]) -> Result<(), SessionError> {
        link::handle_input(self, data)
    }

    /// The next event, in the order the peer's messages arrived.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// Everything queued for the peer, as one buffer.
    pub fn poll_output(&mut self) -> Option<Bytes> {
        self.link.take_output()
    }

    /// Answers [`ServerEvent::Publish`]: onStatus NetStream.Publish.Start.
    pub fn accept_publish(&mut self, stream_id: u32) {
        if let Some(stream) = self.stream_in(stream_id, StreamState::PublishRequested) {
            stream.state = StreamState::Publishing;
            let details = stream.name.clone();
            self.on_status(
                stream_id,
                "status",
                "NetStream.Publish.Start",
                "Started publishing stream.",
                &details,
            );
        } else if self.take_withdrawn(Withdrawn::Publish(stream_id)) {
            self.events.push_back(ServerEvent::Unpublish { stream_id });
        }
    }

    /// Answers [`ServerEvent::Publish`] with an error onStatus (e.g.
    /// `NetStream.Publish.BadName` when the stream is already being published).
    pub fn reject_publish(&mut self, stream_id: u32, code: &str, description: &str) {
        if let Some(stream) = self.stream_in(stream_id, StreamState::PublishRequested) {
            stream.state = StreamState::Idle;
            let details = std::mem::take(&mut stream.name);
            self.on_status(stream_id, "error", code, description, &details);
        } else {
            self.take_withdrawn(Withdrawn::Publish(stream_id));
        }
    }

    /// Answers [`ServerEvent::Play`]: Stream Begin, NetStream.Play.Reset (when
    /// `reset`), NetStream.Play.Start and |RtmpSampleAccess, as nginx-rtmp sends them.
    /// No NetStream.Data.Start (FMS/SRS send one): ffmpeg's FLV demuxer turns that
    /// data message into an extra "unknown" data stream, which confuses players and
    /// remuxers (`ffprobe` would list three streams). Media may follow this output.
    pub fn accept_play(&mut self, stream_id: u32, stream_name: &str, reset: bool) {
        if let Some(stream) = self.stream_in(stream_id, StreamState::PlayRequested) {
            stream.state = StreamState::Playing;
            stream.name = stream_name.to_string();
            self.link
                .send(&Message::UserControl(UserControl::StreamBegin(stream_id)));
            if reset {
                let description = format!("Playing and resetting {stream_name}.");
                self.on_status(
                    stream_id,
                    "status",
                    "NetStream.Play.Reset",
                    &description,
                    stream_name,
                );
            }
            let description = format!("Started playing {stream_name}.");
            self.on_status(
                stream_id,
                "status",
                "NetStream.Play.Start",
                &description,
                stream_name,
            );
            let sample_access = [
                Amf0Value::String("|RtmpSampleAccess".into()),
                Amf0Value::Boolean(true),
                Amf0Value::Boolean(true),
            ];
            self.link
                .send_data(csid::DATA, stream_id, 0, &sample_access);
        } else if self.take_withdrawn(Withdrawn::Play(stream_id)) {
            self.events.push_back(ServerEvent::StopPlay { stream_id });
        }
    }

    /// Answers [`ServerEvent::Play`] with NetStream.Play.StreamNotFound.
    pub fn play_not_found(&mut self, stream_id: u32, stream_name: &str) {
        if let Some(stream) = self.stream_in(stream_id, StreamState::PlayRequested) {
            stream.state = StreamState::Idle;
            stream.name.clear();
            let description = format!("Failed to play {stream_name}; stream not found.");
            self.on_status(
                stream_id,
                "error",
                "NetStream.Play.StreamNotFound",
                &description,
                stream_name,
            );
        } else {
            self.take_withdrawn(Withdrawn::Play(stream_id));
        }
    }

    /// Refuses [`ServerEvent::Play`] with an error onStatus (`code`, e.g.
    /// `NetStream.Play.Unauthorized`, and `description`); the stream goes back to
    /// idle. Ignored for a stream that is not waiting for a play answer.
    pub fn reject_play(&mut self, stream_id: u32, code: &str, description: &str) {
        if let Some(stream) = self.stream_in(stream_id, StreamState::PlayRequested) {
            stream.state = StreamState::Idle;
            let details = std::mem::take(&mut stream.name);
            self.on_status(stream_id, "error", code, description, &details);
        } else {
            self.take_withdrawn(Withdrawn::Play(stream_id));
        }
    }

    /// Tells a playing stream that its publisher left: NetStream.Play.UnpublishNotify
    /// then Stream EOF. The stream stays playing (the player may wait for a new
    /// publisher); ignored for a stream that is not playing.
    pub fn unpublish_notify(&mut self, stream_id: u32, stream_name: &str) {
        if self.stream_in(stream_id, StreamState::Playing).is_some() {
            let description = format!("{stream_name} is now unpublished.");
            self.on_status(
                stream_id,
                "status",
                "NetStream.Play.UnpublishNotify",
                &description,
                stream_name,
            );
            self.link
                .send(&Message::UserControl(UserControl::StreamEof(stream_id)));
        }
    }

    /// The chunk size of everything we send after the connect answer; media chunked
    /// for this connection elsewhere must use it.
    pub fn out_chunk_size(&self) -> u32 {
        self.config.out_chunk_size
    }

    /// The connect `app`, without a trailing `/` or `?query`; `None` before connect.
    pub fn app(&self) -> Option<&str> {
        self.app.as_deref()
    }

    /// The `?query` part of the connect `app` (without the `?`), e.g. `vhost=x`.
    pub fn app_params(&self) -> Option<&str> {
        self.app_params.as_deref()
    }

    /// All bytes received, handshake included.
    pub fn bytes_received(&self) -> u64 {
        self.link.bytes_received
    }

    /// What the peer sent that the session ignored or worked around so far (see
    /// "What is lenient" in the [session docs](super)); for the driver's close log.
    pub fn tolerated(&self) -> Tolerated {
        self.link.tolerated()
    }

    fn stream_in(&mut self, stream_id: u32, state: StreamState) -> Option<&mut ServerStream> {
        self.streams
            .iter_mut()
            .find(|s| s.id == stream_id && s.state == state)
    }

    fn take_withdrawn(&mut self, request: Withdrawn) -> bool {
        match self.withdrawn.iter().position(|w| *w == request) {
            Some(pos) => {
                self.withdrawn.swap_remove(pos);
                true
            }
            None => false,
        }
    }

    fn is_publishing(&self, stream_id: u32) -> bool {
        self.streams.iter().any(|s| {
            s.id == stream_id
                && matches!(
                    s.state,
                    StreamState::PublishRequested | StreamState::Publishing
                )
        })
    }

    fn on_status(
        &mut self,
        stream_id: u32,
        level: &str,
        code: &str,
        description: &str,
        details: &str,
    ) {
        let info = status_object(level, code, description, details);
        // csid 5, on the stream's message stream id, like FMS and SRS.
        self.link.send_command(
            csid::DATA,
            stream_id,
            "onStatus",
            0.0,
            &Amf0Value::Null,
            &[info],
        );
    }
}

impl Endpoint for ServerSession {
    type Handshake = ServerHandshake;

    fn parts(&mut self) -> (&mut Option<Self::Handshake>, &mut Link) {
        (&mut self.handshake, &mut self.link)
    }

    fn handle_message(&mut self, msg: Message) -> Result<(), SessionError> {
        // Media and data count only on the publishing stream; elsewhere they are
        // dropped and counted (see "What is lenient").
        match msg {
            Message::Audio {
                timestamp,
                stream_id,
                payload,
            } if self.is_publishing(stream_id) => {
                self.events
                    .push_back(ServerEvent::Audio { timestamp, payload });
            }
            Message::Video {
                timestamp,
                stream_id,
                payload,
            } if self.is_publishing(stream_id) => {
                self.events
                    .push_back(ServerEvent::Video { timestamp, payload });
            }
            Message::Data {
                timestamp,
                stream_id,
                values,
                ..
            } if self.is_publishing(stream_id) => match metadata_from_data(values) {
                Some((payload, values)) => self.events.push_back(ServerEvent::Metadata {
                    timestamp,
                    payload,
                    values,
                }),
                None => self.link.tolerated.ignored_data += 1,
            },
            Message::Command {
                stream_id,
                name,
                transaction_id,
                command_object,
                args,
            } => {
                self.handle_command(stream_id, &name, transaction_id, command_object, args)?;
            }
            Message::Audio { .. } | Message::Video { .. } | Message::Data { .. } => {
                if self.connected {
                    self.link.tolerated.media_outside_publish += 1;
                } else {
                    self.link.tolerated.media_before_connect += 1;
                }
            }
            // Players announce their buffer; a live server has no use for it.
            Message::UserControl(UserControl::SetBufferLength { .. }) => {}
            Message::UserControl(event) => {
                self.link
                    .tolerated
                    .unexpected_user_control(event.event_type());
            }
            Message::Other(raw) => self.link.tolerated.unhandled_message(raw.type_id),
            // The link handled the protocol control messages.
            _ => {}
        }
        Ok(())
    }
}

impl ServerSession {
    fn handle_command(
        &mut self,
        stream_id: u32,
        name: &str,
        transaction_id: f64,
        command_object: Amf0Value,
        args: Vec<Amf0Value>,
    ) -> Result<(), SessionError> {
        if name == "connect" {
            return self.on_connect(transaction_id, command_object);
        }
        if !self.connected {
            return Err(SessionError::Protocol(format!(
                "{} before connect",
                short(name)
            )));
        }
        match name {
            "createStream" => self.on_create_stream(transaction_id)?,
            "publish" => self.on_publish(stream_id, &args)?,
            "play" => self.on_play(stream_id, &args)?,
            "deleteStream" => {
                let id = args
                    .first()
                    .and_then(Amf0Value::as_f64)
                    .and_then(f64_to_u32);
                if !id.is_some_and(|id| self.stop_stream(id, true)) {
                    self.link.tolerated.stray_stream_closes += 1;
                }
            }
            "closeStream" => {
                if !self.stop_stream(stream_id, false) {
                    self.link.tolerated.stray_stream_closes += 1;
                }
            }
            "FCUnpublish" => {
                let publishing = self
                    .streams
                    .iter()
                    .find(|s| {
                        matches!(
                            s.state,
                            StreamState::PublishRequested | StreamState::Publishing
                        )
                    })
                    .map(|s| s.id);
                match publishing {
                    Some(id) => {
                        self.stop_stream(id, false);
                    }
                    None => self.link.tolerated.stray_stream_closes += 1,
                }
                self.answer_empty_result(transaction_id, Amf0Value::Undefined);
            }
            "releaseStream" | "FCPublish" | "_checkbw" => {
                self.answer_empty_result(transaction_id, Amf0Value::Undefined);
            }
            // Live streams have no length; a plain 0 satisfies the Flash players
            // that ask before playing.
            "getStreamLength" => self.answer_empty_result(transaction_id, Amf0Value::Number(0.0)),
            // Flash-era extras (onBWDone, receiveAudio, pause, ...): see "What is
            // lenient".
            _ => self.link.tolerated.unknown_command(name),
        }
        Ok(())
    }

    fn answer_empty_result(&mut self, transaction_id: f64, value: Amf0Value) {
        if transaction_id != 0.0 {
            self.link.send_command(
                csid::COMMAND,
                0,
                "_result",
                transaction_id,
                &Amf0Value::Null,
                &[value],
            );
        }
    }

    fn on_connect(
        &mut self,
        transaction_id: f64,
        command_object: Amf0Value,
    ) -> Result<(), SessionError> {
        if self.connected {
            return Err(SessionError::Protocol("second connect".into()));
        }
        check_connect_strings(&command_object)?;
        let raw_app = command_object
            .get("app")
            .and_then(Amf0Value::as_str)
            .ok_or_else(|| SessionError::Protocol("connect without an app".into()))?;
        let (app, params) = split_app(raw_app);
        let tc_url = command_object
            .get("tcUrl")
            .and_then(Amf0Value::as_str)
            .map(str::to_string);
        let object_encoding = command_object
            .get("objectEncoding")
            .and_then(Amf0Value::as_f64)
            .unwrap_or(0.0);

        let window = self.config.window_ack_size;
        self.link.send(&Message::WindowAckSize(window));
        // Limit type 2 (dynamic), as FMS and SRS send it.
        self.link.send(&Message::SetPeerBandwidth {
            size: window,
            limit_type: 2,
        });
        // Must precede every message larger than 128 bytes, starting with _result.
        self.link.set_chunk_size(self.config.out_chunk_size);
        let properties = Amf0Value::Object(vec![
            ("fmsVer".into(), Amf0Value::String(FMS_VERSION.into())),
            ("capabilities".into(), Amf0Value::Number(FMS_CAPABILITIES)),
        ]);
        let info = Amf0Value::Object(vec![
            ("level".into(), Amf0Value::String("status".into())),
            (
                "code".into(),
                Amf0Value::String("NetConnection.Connect.Success".into()),
            ),
            (
                "description".into(),
                Amf0Value::String("Connection succeeded.".into()),
            ),
            ("objectEncoding".into(), Amf0Value::Number(object_encoding)),
        ]);
        self.link.send_command(
            csid::COMMAND,
            0,
            "_result",
            transaction_id,
            &properties,
            &[info],
        );

        self.connected = true;
        self.app = Some(app.clone());
        self.app_params = params;
        self.events.push_back(ServerEvent::Connect {
            app,
            tc_url,
            command_object,
        });
        Ok(())
    }

    fn on_create_stream(&mut self, transaction_id: f64) -> Result<(), SessionError> {
        let in_use = |id: u32| {
            self.streams.iter().any(|s| s.id == id)
                || self
                    .withdrawn
                    .iter()
                    .any(|w| matches!(w, Withdrawn::Publish(i) | Withdrawn::Play(i) if *i == id))
        };
        let id = (1..=MAX_STREAMS).find(|id| !in_use(*id)).ok_or_else(|| {
            SessionError::Protocol(format!("more than {MAX_STREAMS} streams on one connection"))
        })?;
        self.streams.push(ServerStream {
            id,
            state: StreamState::Idle,
            name: String::new(),
        });
        self.link.send_command(
            csid::COMMAND,
            0,
            "_result",
            transaction_id,
            &Amf0Value::Null,
            &[Amf0Value::Number(f64::from(id))],
        );
        Ok(())
    }

    fn created_stream(&self, command: &str, stream_id: u32) -> Result<usize, SessionError> {
        self.streams
            .iter()
            .position(|s| s.id == stream_id)
            .ok_or_else(|| {
                SessionError::Protocol(format!(
                    "{command} on stream {stream_id}, which createStream did not return"
                ))
            })
    }

    fn on_publish(&mut self, stream_id: u32, args: &[Amf0Value]) -> Result<(), SessionError> {
        let index = self.created_stream("publish", stream_id)?;
        self.publishes += 1;
        if self.publishes > MAX_PUBLISH_ATTEMPTS {
            return Err(SessionError::Protocol(format!(
                "more than {MAX_PUBLISH_ATTEMPTS} publish requests on one connection"
            )));
        }
        let publish_pending_or_active = self.streams.iter().any(|s| {
            matches!(
                s.state,
                StreamState::PublishRequested | StreamState::Publishing
            )
        }) || self
            .withdrawn
            .iter()
            .any(|w| matches!(w, Withdrawn::Publish(_)));
        if publish_pending_or_active {
            return Err(SessionError::Protocol(
                "second publish on one connection".into(),
            ));
        }
        if self.streams[index].state != StreamState::Idle {
            return Err(SessionError::Protocol(format!(
                "publish on stream {stream_id}, which is playing"
            )));
        }
        let raw_name = stream_name_arg("publish", args)?;
        let (stream_name, params) = split_stream_name(raw_name);
        if stream_name.is_empty() {
            self.on_status(
                stream_id,
                "error",
                "NetStream.Publish.BadName",
                "Missing stream name.",
                raw_name,
            );
            return Ok(());
        }
        let publish_type = args
            .get(1)
            .and_then(Amf0Value::as_str)
            .unwrap_or("live")
            .to_string();
        let stream = &mut self.streams[index];
        stream.state = StreamState::PublishRequested;
        stream.name = stream_name.clone();
        self.events.push_back(ServerEvent::Publish {
            stream_id,
            stream_name,
            params,
            publish_type,
        });
        Ok(())
    }

    fn on_play(&mut self, stream_id: u32, args: &[Amf0Value]) -> Result<(), SessionError> {
        let index = self.created_stream("play", stream_id)?;
        self.plays += 1;
        if self.plays > MAX_PLAY_ATTEMPTS {
            return Err(SessionError::Protocol(format!(
                "more than {MAX_PLAY_ATTEMPTS} play requests on one connection"
            )));
        }
        match self.streams[index].state {
            StreamState::Idle => {}
            StreamState::PublishRequested | StreamState::Publishing => {
                return Err(SessionError::Protocol(format!(
                    "play on stream {stream_id}, which is publishing"
                )));
            }
            StreamState::PlayRequested => {
                return Err(SessionError::Protocol(format!(
                    "second play on stream {stream_id} before the first was answered"
                )));
            }
            // Flash's NetStream.play() on a playing stream switches streams: stop the
            // old play, then request the new one.
            StreamState::Playing => {
                self.stop_stream(stream_id, false);
            }
        }
        let raw_name = stream_name_arg("play", args)?;
        let (stream_name, params) = split_stream_name(raw_name);
        let start = args.get(1).and_then(Amf0Value::as_f64).unwrap_or(-2.0);
        let duration = args.get(2).and_then(Amf0Value::as_f64).unwrap_or(-1.0);
        let reset = match args.get(3) {
            Some(Amf0Value::Boolean(b)) => *b,
            // Old FMS clients send reset as a number (0 = do not flush).
            Some(Amf0Value::Number(n)) => *n != 0.0,
            _ => true,
        };
        let stream = &mut self.streams[index];
        stream.state = StreamState::PlayRequested;
        stream.name = stream_name.clone();
        self.events.push_back(ServerEvent::Play {
            stream_id,
            stream_name,
            params,
            start,
            duration,
            reset,
        });
        Ok(())
    }

    /// The peer closed (or deleted) a stream: report the end of what it was doing.
    /// `false` when no such stream exists.
    fn stop_stream(&mut self, stream_id: u32, delete: bool) -> bool {
        let Some(index) = self.streams.iter().position(|s| s.id == stream_id) else {
            return false;
        };
        let stream = &mut self.streams[index];
        match stream.state {
            StreamState::Idle => {}
            StreamState::Publishing => self.events.push_back(ServerEvent::Unpublish { stream_id }),
            StreamState::Playing => self.events.push_back(ServerEvent::StopPlay { stream_id }),
            StreamState::PublishRequested => self.withdrawn.push(Withdrawn::Publish(stream_id)),
            StreamState::PlayRequested => self.withdrawn.push(Withdrawn::Play(stream_id)),
        }
        stream.state = StreamState::Idle;
        stream.name.clear();
        if delete {
            self.streams.swap_remove(index);
        }
        true
    }
}

/// Refuses a `connect` whose command object holds a string longer than
/// [`MAX_CONNECT_STRING`], naming the field. Only the top level is looked at: that is
/// where every field a server reads lives, and nested values are bounded by the AMF0
/// limits and the message size, and dropped with the event.
fn check_connect_strings(command_object: &Amf0Value) -> Result<(), SessionError> {
    let (Amf0Value::Object(fields) | Amf0Value::EcmaArray(fields)) = command_object else {
        return Ok(());
    };
    for (key, value) in fields {
        if let Amf0Value::String(s) = value {
            if s.len() > MAX_CONNECT_STRING {
                return Err(SessionError::Protocol(format!(
                    "connect field {:?} of {} bytes (limit {MAX_CONNECT_STRING})",
                    short(key),
                    s.len()
                )));
            }
        }
    }
    Ok(())
}

/// The stream name argument of `publish` or `play` ("" when absent), refused when
/// longer than [`MAX_STREAM_NAME`].
fn stream_name_arg<'a>(command: &str, args: &'a [Amf0Value]) -> Result<&'a str, SessionError> {
    let name = args.first().and_then(Amf0Value::as_str).unwrap_or("");
    if name.len() > MAX_STREAM_NAME {
        return Err(SessionError::Protocol(format!(
            "{command} stream name of {} bytes (limit {MAX_STREAM_NAME})",
            name.len()
        )));
    }
    Ok(name)
}

pub(super) fn status_object(
    level: &str,
    code: &str,
    description: &str,
    details: &str,
) -> Amf0Value {
    Amf0Value::Object(vec![
        ("level".into(), Amf0Value::String(level.into())),
        ("code".into(), Amf0Value::String(code.into())),
        ("description".into(), Amf0Value::String(description.into())),
        ("details".into(), Amf0Value::String(details.into())),
    ])
}
