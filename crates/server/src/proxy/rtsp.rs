//! RTSP pull client: turns an `rtsp://` camera or server into [`Media`] (FLV tag
//! bodies), so the proxy manager can publish it into the hub like any RTMP publisher.
//!
//! # Why retina
//! RTSP itself is a small text protocol, but a client that works with real cameras
//! is not: Digest authentication, RTP depacketization for H.264 (FU-A, STAP-A),
//! H.265 (FU, AP) and AAC (RFC 3640 AU headers), interleaved TCP and UDP transports,
//! keepalives, TEARDOWN, and a long list of camera quirks. [retina] is the maintained
//! Rust RTSP client crate (used by Moonfire NVR) that does all of that, with errors
//! that carry enough context to find the offending packet in a capture. Its
//! depacketizers are pure and only its `tokio` module touches sockets, which is the
//! split ferrocast wants anyway; this module is the thin glue.
//!
//! # What is converted
//! * The first H.264 or H.265 video track and the first AAC (`mpeg4-generic`) audio
//!   track are set up. Other audio codecs (G.711 A-law/µ-law, Opus, G.726, LATM ...)
//!   are not: FLV players do not take them, so one warning names the codec and the
//!   video goes on alone. With neither a video nor an AAC track the pull fails with
//!   [`ProxyError::Unsupported`].
//! * retina is asked for MP4 framing ([`FrameFormat::MP4`]): 4-byte length-prefixed
//!   NAL units with the parameter sets removed from the frames, the decoder
//!   configuration record (`avcC` / `hvcC`) as the stream parameters, and raw AAC
//!   access units with the AudioSpecificConfig as parameters. That is FLV's layout:
//!   * H.264: sequence header `17 00 000000 avcC`, frames `17|27 01 cts24 NALUs`;
//!   * H.265, Enhanced RTMP: `90 'hvc1' hvcC` (key, SequenceStart), frames
//!     `91|a1 'hvc1' cts24 NALUs` (key or inter, CodedFrames);
//!   * AAC: `af 00 ASC`, then `af 01 raw-frame`.
//!
//!   Those bodies are written by `ferrocast_proto::flv` (`avc_sequence_header`,
//!   `hevc_frame`, `aac_frame`, ...), next to the parsers that read them back.
//!
//!   A sequence header goes out before the first frame and again whenever retina's
//!   parameters for the track change (new SPS/PPS in band). Video frames before the
//!   first parameters and before the first keyframe are dropped: nobody can decode
//!   them. With a video track, audio waits for that keyframe too, so the stream
//!   starts at a keyframe with both tracks. retina flags only IDR pictures as
//!   H.265 random access points; CRA and BLA pictures (x265's default open GOP) are
//!   keyframes here too, as ffmpeg treats them.
//!
//! # Timestamps
//! retina turns 32-bit RTP timestamps into unwrapped "normal play time": ticks since
//! the start of the stream, at each track's own clock rate. When the server's `PLAY`
//! response carries `RTP-Info: rtptime=` for every track (it usually does, and we
//! ask retina to use it: [`InitialTimestampPolicy::Permissive`]), that start is the
//! same instant for every track, so audio and video are in sync. Otherwise retina
//! puts each track's first packet at 0, which can skew audio against video by the
//! difference in their first arrival (usually well under a frame). Either way we
//! convert to milliseconds and subtract the time of the first frame we emit (the
//! first video keyframe, or the first audio frame of an audio-only stream), so the
//! FLV timeline starts at 0 and both tracks share that zero; the other track's
//! frames from before that instant are dropped.
//!
//! RTP carries presentation times only. RTSP cameras almost never send B-frames, so
//! the FLV timestamp (a DTS) is the PTS and the composition offset is 0. Backward
//! steps (jitter, B-frames, a camera re-basing its clock) are clamped so each track's
//! timestamps never decrease, which the hub and the muxers downstream rely on.
//!
//! # Errors
//! retina's error type is opaque apart from the RTSP status code, so
//! `classify` maps status codes (401, 404, other failures) and, for the rest,
//! the error's fixed leading text to [`ProxyError`]. The full message, with
//! retina's connection and packet context, goes into the error string.
//!
//! This module never panics on peer input and holds no socket of its own; dropping
//! the [`pull`] future drops the retina session, which tears the RTSP session down.
//!
//! [retina]: https://github.com/scottlamb/retina

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use ferrocast_proto::codec::h264::iter_avcc_nalus;
use ferrocast_proto::flv;
use ferrocast_proto::percent::percent_decode;
use futures_util::StreamExt;
use retina::client::{
    Credentials, InitialTimestampPolicy, PlayOptions, SessionOptions, SetupOptions, Transport,
};
use retina::codec::{CodecItem, FrameFormat, ParametersRef};
use tokio::sync::mpsc;
use url::Url;

use super::{Media, MediaKind, ProxyError};
use crate::redact::redact;

/// RTP transport to ask the server for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RtspTransport {
    /// RTP interleaved in the RTSP TCP connection: works through NAT and firewalls
    /// and never loses packets, so it is the usual choice.
    Tcp,
    /// RTP over UDP. retina has no reorder buffer, so this suits a LAN only.
    Udp,
}

#[derive(Clone, Debug)]
pub(crate) struct RtspOptions {
    pub transport: RtspTransport,
    /// Bounds connecting plus DESCRIBE, SETUP and PLAY; not the stream after it
    /// (the proxy manager watches for stalls).
    pub connect_timeout: Duration,
}

/// Sent as `User-Agent` with every request.
const USER_AGENT: &str = "ferrocast";

/// RTSP's default port (RFC 2326 section 3.2).
const DEFAULT_PORT: u16 = 554;

/// Pulls `url` (`rtsp://[user:pass@]host[:port]/path`) with retina and sends FLV tag
/// bodies into `tx` until the remote ends (Ok) or fails (Err). Ok(()) also when `tx`
/// is closed.
///
/// Credentials in the URL's userinfo are given to retina (Basic or Digest, as the
/// server asks) and removed from the URL it sends. `opts.connect_timeout` bounds the
/// time until `PLAY` is answered.
pub(crate) async fn pull(
    url: &str,
    opts: &RtspOptions,
    tx: mpsc::Sender<Media>,
) -> Result<(), ProxyError> {
    let target = Target::parse(url)?;
    let started = tokio::time::timeout(opts.connect_timeout, start(&target, opts)).await;
    let (playing, tracks) = match started {
        Ok(result) => result?,
        Err(_) => {
            return Err(ProxyError::Timeout(format!(
                "{target}: no answer to DESCRIBE/SETUP/PLAY within {} ms",
                opts.connect_timeout.as_millis()
            )))
        }
    };
    let mut demuxed = playing.demuxed().map_err(|e| classify(&target, &e))?;
    tracing::info!(remote = %target, transport = ?opts.transport,
        video = ?tracks.video.map(|(_, c)| c), audio = tracks.audio.is_some(), "RTSP pull playing");

    let mut conv = Converter::new(tracks.video.map(|(_, codec)| codec));
    let mut out = Vec::with_capacity(2);
    loop {
        let item = tokio::select! {
            // Stop as soon as nobody listens, even when the remote is quiet.
            _ = tx.closed() => return Ok(()),
            item = demuxed.next() => item,
        };
        let item = match item {
            None => {
                tracing::info!(remote = %target, "RTSP server closed the session");
                return Ok(());
            }
            Some(Err(e)) => return Err(classify(&target, &e)),
            Some(Ok(item)) => item,
        };
        match item {
            CodecItem::VideoFrame(frame) if Some(frame.stream_id()) == tracks.video_stream() => {
                if frame.loss() > 0 {
                    tracing::debug!(remote = %target, lost = frame.loss(), "RTP packets lost before a video frame");
                }
                let config = match demuxed.streams()[frame.stream_id()].parameters() {
                    Some(ParametersRef::Video(v)) => Some(v.extra_data()),
                    _ => None,
                };
                let time = StreamTime::from(frame.timestamp());
                conv.video(
                    config,
                    frame.is_random_access_point(),
                    time,
                    frame.data(),
                    &mut out,
                );
            }
            CodecItem::AudioFrame(frame) if Some(frame.stream_id()) == tracks.audio => {
                let config = match demuxed.streams()[frame.stream_id()].parameters() {
                    Some(ParametersRef::Audio(a)) => Some(a.extra_data()),
                    _ => None,
                };
                conv.audio(
                    config,
                    StreamTime::from(frame.timestamp()),
                    frame.data(),
                    &mut out,
                );
            }
            // RTCP sender reports, ONVIF metadata, tracks we did not set up.
            _ => {}
        }
        for media in out.drain(..) {
            if tx.send(media).await.is_err() {
                return Ok(());
            }
        }
    }
}

/// DESCRIBE, SETUP of the chosen tracks, PLAY.
async fn start(
    target: &Target,
    opts: &RtspOptions,
) -> Result<(retina::client::Session<retina::client::Playing>, Tracks), ProxyError> {
    let session_opts = SessionOptions::default()
        .creds(target.creds.clone())
        .user_agent(USER_AGENT.to_owned());
    let mut session = retina::client::Session::describe(target.url.clone(), session_opts)
        .await
        .map_err(|e| classify(target, &e))?;

    let tracks = {
        let offered: Vec<(&str, &str)> = session
            .streams()
            .iter()
            .map(|s| (s.media(), s.encoding_name()))
            .collect();
        choose_tracks(&offered)
    };
    let tracks = tracks.map_err(|offered| {
        ProxyError::Unsupported(format!(
            "{target}: no H.264/H.265 video or AAC audio track (offered: {offered})"
        ))
    })?;
    for skipped in &tracks.skipped {
        tracing::warn!(remote = %target, codec = %skipped,
            "RTSP track not pulled: codec not supported in FLV (video: H.264/H.265, audio: AAC)");
    }

    let setup_order = tracks.video_stream().into_iter().chain(tracks.audio);
    for i in setup_order {
        let transport = match opts.transport {
            RtspTransport::Tcp => Transport::Tcp(Default::default()),
            RtspTransport::Udp => Transport::Udp(Default::default()),
        };
        let setup = SetupOptions::default()
            .transport(transport)
            .frame_format(FrameFormat::MP4);
        session
            .setup(i, setup)
            .await
            .map_err(|e| classify(target, &e))?;
    }
    let play = PlayOptions::default().initial_timestamp(InitialTimestampPolicy::Permissive);
    let playing = session.play(play).await.map_err(|e| classify(target, &e))?;
    Ok((playing, tracks))
}

/// The remote, parsed once: the URL retina gets (no userinfo), the credentials, and
/// a redacted form for messages and logs.
struct Target {
    url: Url,
    creds: Option<Credentials>,
    /// `host:port`, for [`ProxyError::Connect`].
    addr: String,
}

impl Target {
    fn parse(raw: &str) -> Result<Target, ProxyError> {
        let mut url =
            Url::parse(raw).map_err(|e| ProxyError::BadUrl(format!("{e}: {}", redact(raw))))?;
        match url.scheme() {
            "rtsp" => {}
            "rtsps" => {
                return Err(ProxyError::Unsupported(
                    "rtsps:// (RTSP over TLS) is not supported".into(),
                ))
            }
            other => {
                return Err(ProxyError::BadUrl(format!(
                    "scheme {other}: is not rtsp: ({})",
                    redact(raw)
                )))
            }
        }
        let host = match url.host_str() {
            Some(h) if !h.is_empty() => h.to_owned(),
            _ => return Err(ProxyError::BadUrl(format!("no host in {}", redact(raw)))),
        };
        let creds = if url.username().is_empty() && url.password().is_none() {
            None
        } else {
            Some(Credentials {
                username: decode_userinfo(url.username()),
                password: decode_userinfo(url.password().unwrap_or("")),
            })
        };
        // Only fails for URLs that cannot have a host, which we ruled out above.
        let _ = url.set_username("");
        let _ = url.set_password(None);
        let addr = format!("{host}:{}", url.port().unwrap_or(DEFAULT_PORT));
        Ok(Target { url, creds, addr })
    }
}

/// The URL without credentials: safe for logs and the API's last error.
impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.url.as_str())
    }
}

/// Decodes `%XX` escapes (the url crate keeps userinfo percent-encoded). Invalid
/// escapes are kept as written (a password may contain a bare `%`); invalid UTF-8 is
/// replaced.
fn decode_userinfo(s: &str) -> String {
    let bytes: Vec<u8> = percent_decode(s.as_bytes())
        .map(|b| b.unwrap_or(b'%'))
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Maps a retina error to a [`ProxyError`].
///
/// retina exposes only the RTSP status code; everything else is told apart by the
/// fixed text its `Display` starts with (retina 0.4 `error.rs`). The message keeps
/// retina's connection and packet context on one line.
fn classify(target: &Target, e: &retina::Error) -> ProxyError {
    let text = one_line(&e.to_string());
    match e.status_code() {
        Some(401) => return ProxyError::Auth(format!("{target}: {text}")),
        Some(404) => return ProxyError::NotFound(format!("{target}: {text}")),
        Some(_) => return ProxyError::Refused(format!("{target}: {text}")),
        None => {}
    }
    if let Some(reason) = text.strip_prefix("Unable to connect to RTSP server: ") {
        return ProxyError::Connect {
            addr: target.addr.clone(),
            reason: reason.to_owned(),
        };
    }
    if text.starts_with("Timeout") {
        return ProxyError::Timeout(format!("{target}: {text}"));
    }
    if text.starts_with("Unsupported") {
        return ProxyError::Unsupported(format!("{target}: {text}"));
    }
    if text.starts_with("Error reading from RTSP peer")
        || text.starts_with("Error writing to RTSP peer")
        || text.starts_with("Error receiving UDP packet")
    {
        tracing::info!(remote = %target, error = %text, "RTSP connection lost");
        return ProxyError::Closed;
    }
    ProxyError::Protocol(format!("{target}: {text}"))
}

/// Joins retina's multi-line message (description, blank line, context lines).
fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum VideoCodec {
    H264,
    H265,
}

/// Which of the offered streams to set up.
#[derive(Debug, PartialEq, Eq)]
struct Tracks {
    video: Option<(usize, VideoCodec)>,
    audio: Option<usize>,
    /// `media/encoding` of the audio and video tracks whose codec we cannot carry,
    /// for one warning each.
    skipped: Vec<String>,
}

impl Tracks {
    fn video_stream(&self) -> Option<usize> {
        self.video.map(|(i, _)| i)
    }
}

/// Picks the first H.264/H.265 video and the first AAC audio track from the
/// DESCRIBE answer's `(media, encoding name)` pairs (retina lowercases the names).
/// Errs with the offered list when there is neither.
fn choose_tracks(offered: &[(&str, &str)]) -> Result<Tracks, String> {
    let mut tracks = Tracks {
        video: None,
        audio: None,
        skipped: Vec::new(),
    };
    for (i, &(media, encoding)) in offered.iter().enumerate() {
        match (media, encoding) {
            ("video", "h264") => {
                tracks.video.get_or_insert((i, VideoCodec::H264));
            }
            ("video", "h265") => {
                tracks.video.get_or_insert((i, VideoCodec::H265));
            }
            ("audio", "mpeg4-generic") => {
                tracks.audio.get_or_insert(i);
            }
            ("video" | "audio", _) => tracks.skipped.push(format!("{media}/{encoding}")),
            // application/ONVIF metadata, text: never wanted.
            _ => {}
        }
    }
    if tracks.video.is_none() && tracks.audio.is_none() {
        let list: Vec<String> = offered.iter().map(|(m, e)| format!("{m}/{e}")).collect();
        return Err(if list.is_empty() {
            "nothing".into()
        } else {
            list.join(", ")
        });
    }
    Ok(tracks)
}

/// A retina timestamp reduced to what the conversion needs: ticks since the
/// stream's start (unwrapped) and the tick rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct StreamTime {
    elapsed: i64,
    clock_rate: u32,
}

impl From<retina::Timestamp> for StreamTime {
    fn from(t: retina::Timestamp) -> Self {
        StreamTime {
            elapsed: t.elapsed(),
            clock_rate: t.clock_rate().get(),
        }
    }
}

impl StreamTime {
    /// Milliseconds, rounded down. i128 so no tick count can overflow.
    fn millis(self) -> i64 {
        let ms = (i128::from(self.elapsed) * 1000).div_euclid(i128::from(self.clock_rate.max(1)));
        ms.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Track {
    Video = 0,
    Audio = 1,
}

/// Session time in FLV milliseconds: zero at the first frame emitted on any track,
/// never decreasing within a track.
#[derive(Debug, Default)]
struct Clock {
    base_ms: Option<i64>,
    last_ms: [Option<i64>; 2],
    warned_backwards: [bool; 2],
}

impl Clock {
    /// The frame's DTS, or `None` when it is the first of its track and predates the
    /// session's zero (another track started the session later on the shared NPT
    /// timeline): such leading frames are dropped rather than piled up at 0.
    fn dts(&mut self, track: Track, time: StreamTime) -> Option<u32> {
        let npt_ms = time.millis();
        let base = *self.base_ms.get_or_insert(npt_ms);
        let t = track as usize;
        let mut ms = npt_ms.saturating_sub(base);
        if ms < 0 && self.last_ms[t].is_none() {
            return None;
        }
        ms = ms.max(0);
        if let Some(last) = self.last_ms[t] {
            if ms < last {
                if !self.warned_backwards[t] {
                    self.warned_backwards[t] = true;
                    tracing::warn!(
                        ?track,
                        from = last,
                        to = ms,
                        "RTSP timestamps went backwards; clamping (reported once per track)"
                    );
                }
                ms = last;
            }
        }
        self.last_ms[t] = Some(ms);
        // FLV/RTMP timestamps are 32-bit milliseconds and wrap after 49.7 days.
        Some(ms as u32)
    }
}

/// Turns depacketized frames into FLV tag bodies. Pure: no I/O, no clock reads.
#[derive(Debug)]
struct Converter {
    video_codec: Option<VideoCodec>,
    /// Decoder configuration record last sent as a sequence header.
    video_config: Option<Bytes>,
    seen_keyframe: bool,
    /// AudioSpecificConfig last sent.
    audio_config: Option<Bytes>,
    clock: Clock,
}

impl Converter {
    fn new(video_codec: Option<VideoCodec>) -> Self {
        Converter {
            video_codec,
            video_config: None,
            seen_keyframe: false,
            audio_config: None,
            clock: Clock::default(),
        }
    }

    /// One access unit: 4-byte length-prefixed NAL units without parameter sets.
    /// `config` is the track's current `avcC`/`hvcC`; a sequence header is emitted
    /// first whenever it differs from the one sent last.
    fn video(
        &mut self,
        config: Option<&[u8]>,
        keyframe: bool,
        time: StreamTime,
        data: &[u8],
        out: &mut Vec<Media>,
    ) {
        let Some(codec) = self.video_codec else {
            return;
        };
        if too_large("video", data) {
            return;
        }
        if data.is_empty() {
            // Parameter sets only: retina keeps them in `config` for the next frame.
            return;
        }
        let new_config = changed(config, self.video_config.as_deref());
        if new_config.is_none() && self.video_config.is_none() {
            tracing::debug!("RTSP video frame before its parameters: dropped");
            return;
        }
        // retina flags only IDR pictures as H.265 random access points; CRA and BLA
        // (x265's default open GOP, some cameras) are keyframes to FLV players too.
        let keyframe = keyframe || (codec == VideoCodec::H265 && has_hevc_irap(data));
        if !self.seen_keyframe && !keyframe {
            return;
        }
        let Some(timestamp) = self.clock.dts(Track::Video, time) else {
            return;
        };
        self.seen_keyframe = true;
        if let Some(c) = new_config {
            self.video_config = Some(Bytes::copy_from_slice(c));
            out.push(video_media(timestamp, sequence_header(codec, c)));
        }
        out.push(video_media(
            timestamp,
            coded_frame(codec, keyframe, 0, data),
        ));
    }

    /// One raw AAC access unit; `config` is the AudioSpecificConfig. With a video
    /// track, audio waits for video's first keyframe so the stream starts there.
    fn audio(
        &mut self,
        config: Option<&[u8]>,
        time: StreamTime,
        data: &[u8],
        out: &mut Vec<Media>,
    ) {
        if self.video_codec.is_some() && !self.seen_keyframe {
            return;
        }
        if too_large("audio", data) {
            return;
        }
        let new_config = changed(config, self.audio_config.as_deref());
        if new_config.is_none() && self.audio_config.is_none() {
            tracing::debug!("RTSP audio frame without an AudioSpecificConfig: dropped");
            return;
        }
        let Some(timestamp) = self.clock.dts(Track::Audio, time) else {
            return;
        };
        if let Some(c) = new_config {
            self.audio_config = Some(Bytes::copy_from_slice(c));
            out.push(audio_media(timestamp, flv::aac_sequence_header(c)));
        }
        out.push(audio_media(timestamp, flv::aac_frame(data)));
    }
}

/// Tag headers added in front of a frame's bytes: at most 5 (the legacy AVC and
/// Enhanced RTMP video headers; AAC adds 2).
const TAG_BODY_HEADER: usize = 5;

/// Whether a frame is too large for an FLV tag or RTMP message (24-bit lengths): it
/// is refused with a log line rather than forwarded, since every muxer would have to
/// refuse it anyway and a player would lose sync on a truncated length. The frames
/// after it may show artefacts until the next keyframe; nothing else is affected.
fn too_large(track: &str, data: &[u8]) -> bool {
    let too_large = data.len() + TAG_BODY_HEADER > flv::MAX_TAG_BODY;
    if too_large {
        tracing::warn!(
            track,
            bytes = data.len(),
            limit = flv::MAX_TAG_BODY - TAG_BODY_HEADER,
            "RTSP frame too large for FLV/RTMP: dropped"
        );
    }
    too_large
}

/// Whether a length-prefixed H.265 access unit holds an IRAP picture (NAL unit
/// types 16..=23: BLA, IDR, CRA; H.265 section 7.4.2.2).
fn has_hevc_irap(data: &[u8]) -> bool {
    iter_avcc_nalus(data, 4).map_while(Result::ok).any(|nal| {
        nal.first()
            .is_some_and(|b| (16..=23).contains(&((b >> 1) & 0x3f)))
    })
}

/// `current` when it is a non-empty configuration other than the one `sent`.
fn changed<'a>(current: Option<&'a [u8]>, sent: Option<&[u8]>) -> Option<&'a [u8]> {
    current.filter(|c| !c.is_empty() && Some(*c) != sent)
}

fn video_media(timestamp: u32, body: Bytes) -> Media {
    Media {
        kind: MediaKind::Video,
        timestamp,
        body,
    }
}

fn audio_media(timestamp: u32, body: Bytes) -> Media {
    Media {
        kind: MediaKind::Audio,
        timestamp,
        body,
    }
}

/// FLV sequence header for a decoder configuration record: legacy AVC for H.264,
/// Enhanced RTMP SequenceStart for H.265.
fn sequence_header(codec: VideoCodec, config: &[u8]) -> Bytes {
    match codec {
        VideoCodec::H264 => flv::avc_sequence_header(config),
        VideoCodec::H265 => flv::hevc_sequence_header(config),
    }
}

/// FLV video tag body for one access unit (length-prefixed NAL units) with a
/// composition time offset in ms.
fn coded_frame(codec: VideoCodec, keyframe: bool, cts: i32, data: &[u8]) -> Bytes {
    match codec {
        VideoCodec::H264 => flv::avc_frame(keyframe, cts, data),
        VideoCodec::H265 => flv::hevc_frame(keyframe, cts, data),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrocast_proto::codec::aac::AudioSpecificConfig;
    use ferrocast_proto::codec::h264::AvcDecoderConfig;
    use ferrocast_proto::codec::h265::HevcDecoderConfig;
    use ferrocast_proto::flv::{
        parse_audio_tag, parse_video_tag, AudioCodec, VideoCodec as FlvCodec, VideoPacketKind,
    };

    // Decoder configurations as retina 0.4.21 hands them over (`VideoParameters::
    // extra_data` / `AudioParameters::extra_data` with `FrameFormat::MP4`) for
    // tests/rtsp/rtsp_server.py: x264 constrained baseline 320x240, x265 Main
    // 320x240, voaacenc AAC LC 44.1 kHz mono (SDP `config=1208`).
    const AVCC: &[u8] = &[
        0x01, 0x42, 0xc0, 0x15, 0xff, 0xe1, 0x00, 0x1b, 0x67, 0x42, 0xc0, 0x15, 0xda, 0x05, 0x07,
        0xec, 0x05, 0xa8, 0x30, 0x30, 0x35, 0x28, 0x00, 0x00, 0x03, 0x00, 0x08, 0x00, 0x00, 0x03,
        0x01, 0x94, 0x78, 0xb1, 0x75, 0x01, 0x00, 0x04, 0x68, 0xce, 0x3c, 0x80,
    ];
    const HVCC: &[u8] = &[
        0x01, 0x01, 0x60, 0x00, 0x00, 0x00, 0x90, 0x00, 0x00, 0x00, 0x00, 0x00, 0x3f, 0xf0, 0x00,
        0xfc, 0xfd, 0xf8, 0xf8, 0x00, 0x00, 0x0f, 0x03, 0xa0, 0x00, 0x01, 0x00, 0x18, 0x40, 0x01,
        0x0c, 0x01, 0xff, 0xff, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00,
        0x00, 0x03, 0x00, 0x3f, 0xba, 0x02, 0x40, 0xa1, 0x00, 0x01, 0x00, 0x2f, 0x42, 0x01, 0x01,
        0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03, 0x00, 0x3f,
        0xa0, 0x0a, 0x08, 0x0f, 0x16, 0x5b, 0xa4, 0xa4, 0xc2, 0xff, 0xf0, 0x00, 0x10, 0x00, 0x16,
        0xa0, 0xc0, 0xc0, 0xc0, 0x80, 0x00, 0x00, 0x03, 0x00, 0x80, 0x00, 0x00, 0x0c, 0x84, 0xa2,
        0x00, 0x01, 0x00, 0x06, 0x44, 0x01, 0xc0, 0x71, 0x83, 0x12,
    ];
    const ASC: &[u8] = &[0x12, 0x08];

    /// An access unit as retina frames it: each NAL unit behind a 4-byte length.
    fn access_unit(nals: &[&[u8]]) -> Vec<u8> {
        let mut v = Vec::new();
        for nal in nals {
            v.extend_from_slice(&(nal.len() as u32).to_be_bytes());
            v.extend_from_slice(nal);
        }
        v
    }

    fn at(elapsed: i64, clock_rate: u32) -> StreamTime {
        StreamTime {
            elapsed,
            clock_rate,
        }
    }

    fn nalus(body: &[u8], header_len: usize) -> Vec<Vec<u8>> {
        iter_avcc_nalus(&body[header_len..], 4)
            .map(|n| n.unwrap().to_vec())
            .collect()
    }

    #[test]
    fn h264_sequence_header_then_frames() {
        let mut conv = Converter::new(Some(VideoCodec::H264));
        let mut out = Vec::new();
        let idr: &[u8] = &[0x65, 0x88, 0x84, 0x00, 0x33];
        let sei: &[u8] = &[0x06, 0x05, 0x01, 0xff, 0x80];
        conv.video(
            Some(AVCC),
            true,
            at(1_000_000, 90_000),
            &access_unit(&[sei, idr]),
            &mut out,
        );
        assert_eq!(out.len(), 2);

        let seq = &out[0];
        assert_eq!((seq.kind, seq.timestamp), (MediaKind::Video, 0));
        let h = parse_video_tag(&seq.body).unwrap();
        assert_eq!(
            (h.codec, h.kind, h.keyframe, h.enhanced),
            (FlvCodec::H264, VideoPacketKind::SequenceHeader, true, false)
        );
        assert_eq!(&seq.body[..5], &[0x17, 0, 0, 0, 0]);
        let avcc = AvcDecoderConfig::parse(&seq.body[h.header_len..]).unwrap();
        assert_eq!(
            (avcc.width, avcc.height, avcc.nal_length_size),
            (320, 240, 4)
        );

        let key = &out[1];
        let h = parse_video_tag(&key.body).unwrap();
        assert_eq!(
            (h.codec, h.kind, h.keyframe, h.composition_time),
            (FlvCodec::H264, VideoPacketKind::Frame, true, 0)
        );
        assert_eq!(&key.body[..5], &[0x17, 1, 0, 0, 0]);
        assert_eq!(
            nalus(&key.body, h.header_len),
            vec![sei.to_vec(), idr.to_vec()]
        );

        // 40 ms later at 90 kHz: an inter frame, no new sequence header.
        out.clear();
        let p: &[u8] = &[0x41, 0x9a, 0x02];
        conv.video(
            Some(AVCC),
            false,
            at(1_003_600, 90_000),
            &access_unit(&[p]),
            &mut out,
        );
        assert_eq!(out.len(), 1);
        let h = parse_video_tag(&out[0].body).unwrap();
        assert_eq!(
            (h.keyframe, h.kind, out[0].timestamp),
            (false, VideoPacketKind::Frame, 40)
        );
        assert_eq!(out[0].body[0], 0x27);
        assert_eq!(nalus(&out[0].body, h.header_len), vec![p.to_vec()]);
    }

    #[test]
    fn video_waits_for_parameters_and_a_keyframe() {
        let mut conv = Converter::new(Some(VideoCodec::H264));
        let mut out = Vec::new();
        let p = access_unit(&[&[0x41, 0x9a]]);
        // No parameters yet (in-band SPS/PPS still to come): nothing to decode with.
        conv.video(
            None,
            true,
            at(0, 90_000),
            &access_unit(&[&[0x65, 0x88]]),
            &mut out,
        );
        // Parameters but joined mid-GOP.
        conv.video(Some(AVCC), false, at(3600, 90_000), &p, &mut out);
        assert!(out.is_empty());
        conv.video(
            Some(AVCC),
            true,
            at(7200, 90_000),
            &access_unit(&[&[0x65, 0x88]]),
            &mut out,
        );
        assert_eq!(out.len(), 2);
        // The session clock starts at the first frame emitted, not the dropped ones.
        assert_eq!((out[0].timestamp, out[1].timestamp), (0, 0));
    }

    #[test]
    fn new_parameters_resend_the_sequence_header() {
        let mut conv = Converter::new(Some(VideoCodec::H264));
        let mut out = Vec::new();
        let idr = access_unit(&[&[0x65, 0x88]]);
        conv.video(Some(AVCC), true, at(0, 90_000), &idr, &mut out);
        conv.video(
            Some(AVCC),
            false,
            at(3600, 90_000),
            &access_unit(&[&[0x41, 0x9a]]),
            &mut out,
        );
        assert_eq!(out.len(), 3);
        // A different PPS arrives in band with the next IDR.
        let mut changed = AVCC.to_vec();
        *changed.last_mut().unwrap() ^= 0x40;
        out.clear();
        conv.video(Some(&changed), true, at(7200, 90_000), &idr, &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(
            parse_video_tag(&out[0].body).unwrap().kind,
            VideoPacketKind::SequenceHeader
        );
        assert_eq!(&out[0].body[5..], &changed[..]);
        assert_eq!(out[0].timestamp, 80);
        assert_eq!(
            parse_video_tag(&out[1].body).unwrap().kind,
            VideoPacketKind::Frame
        );
    }

    #[test]
    fn h265_uses_enhanced_rtmp() {
        let mut conv = Converter::new(Some(VideoCodec::H265));
        let mut out = Vec::new();
        let idr: &[u8] = &[0x26, 0x01, 0xaf, 0x06]; // IDR_W_RADL
        conv.video(
            Some(HVCC),
            true,
            at(0, 90_000),
            &access_unit(&[idr]),
            &mut out,
        );
        let trail: &[u8] = &[0x02, 0x01, 0xd0, 0x11]; // TRAIL_R
        conv.video(
            Some(HVCC),
            false,
            at(3600, 90_000),
            &access_unit(&[trail]),
            &mut out,
        );
        assert_eq!(out.len(), 3);

        assert_eq!(&out[0].body[..5], b"\x90hvc1");
        let h = parse_video_tag(&out[0].body).unwrap();
        assert_eq!(
            (h.codec, h.kind, h.enhanced, h.header_len),
            (FlvCodec::H265, VideoPacketKind::SequenceHeader, true, 5)
        );
        let hvcc = HevcDecoderConfig::parse(&out[0].body[h.header_len..]).unwrap();
        assert_eq!(
            (hvcc.width, hvcc.height, hvcc.nal_length_size),
            (320, 240, 4)
        );

        assert_eq!(&out[1].body[..8], b"\x91hvc1\0\0\0");
        let h = parse_video_tag(&out[1].body).unwrap();
        assert_eq!(
            (h.kind, h.keyframe, h.composition_time, h.header_len),
            (VideoPacketKind::Frame, true, 0, 8)
        );
        assert_eq!(nalus(&out[1].body, h.header_len), vec![idr.to_vec()]);

        assert_eq!(out[2].body[0], 0xa1);
        let h = parse_video_tag(&out[2].body).unwrap();
        assert_eq!(
            (h.kind, h.keyframe, out[2].timestamp),
            (VideoPacketKind::Frame, false, 40)
        );
        assert_eq!(nalus(&out[2].body, h.header_len), vec![trail.to_vec()]);
    }

    #[test]
    fn h265_cra_is_a_keyframe() {
        let mut conv = Converter::new(Some(VideoCodec::H265));
        let mut out = Vec::new();
        let cra: &[u8] = &[21 << 1, 0x01, 0xaf]; // CRA_NUT, which retina does not flag
        let prefix_sei: &[u8] = &[39 << 1, 0x01, 0x05];
        conv.video(
            Some(HVCC),
            false,
            at(0, 90_000),
            &access_unit(&[prefix_sei, cra]),
            &mut out,
        );
        assert_eq!(out.len(), 2);
        let h = parse_video_tag(&out[1].body).unwrap();
        assert!(h.keyframe);
        assert_eq!(out[1].body[0], 0x91);
        // TRAIL_R stays an inter frame; H.264 frames are taken as retina flags them.
        conv.video(
            Some(HVCC),
            false,
            at(3600, 90_000),
            &access_unit(&[&[1 << 1, 0x01]]),
            &mut out,
        );
        assert!(!parse_video_tag(&out[2].body).unwrap().keyframe);
        assert!(!has_hevc_irap(&[0, 0, 0, 9, 0x2a])); // truncated: not a keyframe
    }

    #[test]
    fn composition_time_is_signed_24_bit() {
        for codec in [VideoCodec::H264, VideoCodec::H265] {
            for cts in [0, 40, -40, 0x7f_ffff, -0x80_0000] {
                let body = coded_frame(codec, false, cts, &access_unit(&[&[0x41]]));
                assert_eq!(
                    parse_video_tag(&body).unwrap().composition_time,
                    cts,
                    "{codec:?}"
                );
            }
        }
    }

    #[test]
    fn aac_sequence_header_then_raw_frames() {
        let mut conv = Converter::new(None);
        let mut out = Vec::new();
        let frame: &[u8] = &[0x21, 0x10, 0x04, 0x60, 0x8c, 0x1c];
        conv.audio(Some(ASC), at(0, 44_100), frame, &mut out);
        conv.audio(Some(ASC), at(1024, 44_100), frame, &mut out);
        assert_eq!(out.len(), 3);
        assert!(out.iter().all(|m| m.kind == MediaKind::Audio));

        let h = parse_audio_tag(&out[0].body).unwrap();
        assert_eq!(
            (h.codec, h.sequence_header, h.header_len),
            (AudioCodec::Aac, true, 2)
        );
        let asc = AudioSpecificConfig::parse(&out[0].body[2..]).unwrap();
        assert_eq!(
            (asc.object_type, asc.sample_rate, asc.channel_configuration),
            (2, 44_100, 1)
        );

        for m in &out[1..] {
            let h = parse_audio_tag(&m.body).unwrap();
            assert_eq!((h.codec, h.sequence_header), (AudioCodec::Aac, false));
            assert_eq!(&m.body[h.header_len..], frame);
        }
        // 1024 samples at 44.1 kHz = 23.2 ms, rounded down.
        assert_eq!(
            (out[0].timestamp, out[1].timestamp, out[2].timestamp),
            (0, 0, 23)
        );
    }

    #[test]
    fn frames_over_the_24_bit_limit_are_refused() {
        let mut conv = Converter::new(Some(VideoCodec::H264));
        let mut out = Vec::new();
        let big = vec![0u8; flv::MAX_TAG_BODY];
        conv.video(Some(AVCC), true, at(0, 90_000), &big, &mut out);
        assert!(out.is_empty(), "{} media forwarded", out.len());
        // The largest frame that fits goes through (sequence header + frame).
        let most = vec![0u8; flv::MAX_TAG_BODY - TAG_BODY_HEADER];
        conv.video(Some(AVCC), true, at(0, 90_000), &most, &mut out);
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|m| m.body.len() <= flv::MAX_TAG_BODY));
        // Audio, now that video has started, is refused the same way.
        out.clear();
        conv.audio(Some(&[0x12, 0x10]), at(0, 48_000), &big, &mut out);
        assert!(out.is_empty(), "{} media forwarded", out.len());
        conv.audio(Some(&[0x12, 0x10]), at(0, 48_000), &[1, 2], &mut out);
        assert_eq!(out.len(), 2, "sequence header and frame");
    }

    #[test]
    fn audio_without_config_is_dropped() {
        let mut conv = Converter::new(None);
        let mut out = Vec::new();
        conv.audio(None, at(0, 44_100), &[0x21], &mut out);
        conv.audio(Some(&[]), at(0, 44_100), &[0x21], &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn clock_shares_one_zero_between_tracks() {
        let mut clock = Clock::default();
        // Video first at NPT 2.0 s, audio's first frame slightly earlier (1.99 s):
        // both are measured from video's first frame; audio before it is dropped.
        assert_eq!(clock.dts(Track::Video, at(180_000, 90_000)), Some(0));
        assert_eq!(clock.dts(Track::Audio, at(87_759, 44_100)), None);
        assert_eq!(
            clock.dts(Track::Audio, at(88_200 + 4410, 44_100)),
            Some(100)
        );
        assert_eq!(
            clock.dts(Track::Video, at(180_000 + 9000, 90_000)),
            Some(100)
        );
    }

    #[test]
    fn clock_never_goes_backwards_within_a_track() {
        let mut clock = Clock::default();
        assert_eq!(clock.dts(Track::Video, at(0, 90_000)), Some(0));
        assert_eq!(clock.dts(Track::Video, at(9000, 90_000)), Some(100));
        // A B-frame or jitter step back: held at the last value.
        assert_eq!(clock.dts(Track::Video, at(5400, 90_000)), Some(100));
        assert_eq!(clock.dts(Track::Video, at(12_600, 90_000)), Some(140));
        // The other track is clamped on its own, also below the session's zero
        // once it has started.
        assert_eq!(clock.dts(Track::Audio, at(4800, 48_000)), Some(100));
        assert_eq!(clock.dts(Track::Audio, at(0, 48_000)), Some(100));
        assert_eq!(clock.dts(Track::Audio, at(-4800, 48_000)), Some(100));
    }

    #[test]
    fn clock_handles_unwrapped_and_negative_times() {
        let mut clock = Clock::default();
        // retina's timestamps are unwrapped 64-bit values; a stream may start
        // before NPT 0 (negative elapsed) and run past 2^32 ticks.
        assert_eq!(clock.dts(Track::Video, at(-90_000, 90_000)), Some(0));
        let later = -90_000 + (1i64 << 32);
        assert_eq!(
            clock.dts(Track::Video, at(later, 90_000)),
            Some(((1i64 << 32) * 1000 / 90_000) as u32)
        );
        assert_eq!(at(-1, 90_000).millis(), -1, "rounds down, also below zero");
        assert_eq!(at(i64::MAX, 1).millis(), i64::MAX, "saturates");
    }

    #[test]
    fn audio_waits_for_the_first_video_keyframe() {
        let mut conv = Converter::new(Some(VideoCodec::H264));
        let mut out = Vec::new();
        conv.audio(Some(ASC), at(0, 44_100), &[0x21], &mut out);
        conv.video(
            Some(AVCC),
            false,
            at(0, 90_000),
            &access_unit(&[&[0x41]]),
            &mut out,
        );
        assert!(out.is_empty());
        conv.video(
            Some(AVCC),
            true,
            at(9000, 90_000),
            &access_unit(&[&[0x65]]),
            &mut out,
        );
        // Audio from before the keyframe is dropped; from it on it flows.
        conv.audio(Some(ASC), at(3072, 44_100), &[0x21], &mut out);
        conv.audio(Some(ASC), at(5120, 44_100), &[0x21], &mut out);
        let got: Vec<_> = out.iter().map(|m| (m.kind, m.timestamp)).collect();
        assert_eq!(
            got,
            [
                (MediaKind::Video, 0),
                (MediaKind::Video, 0),
                (MediaKind::Audio, 16),
                (MediaKind::Audio, 16),
            ]
        );
    }

    #[test]
    fn target_takes_credentials_out_of_the_url() {
        let t =
            Target::parse("rtsp://admin:p%40ss%3Aw0rd@cam.local:8554/Streaming/101?x=1").unwrap();
        assert_eq!(t.url.as_str(), "rtsp://cam.local:8554/Streaming/101?x=1");
        assert_eq!(t.to_string(), "rtsp://cam.local:8554/Streaming/101?x=1");
        let creds = t.creds.unwrap();
        assert_eq!(
            (creds.username.as_str(), creds.password.as_str()),
            ("admin", "p@ss:w0rd")
        );
        assert_eq!(t.addr, "cam.local:8554");

        let t = Target::parse("rtsp://10.0.0.7/live").unwrap();
        assert!(t.creds.is_none());
        assert_eq!(t.addr, "10.0.0.7:554");
        let t = Target::parse("rtsp://user@[::1]/live").unwrap();
        assert_eq!(t.creds.unwrap().password, "");
        assert_eq!(t.addr, "[::1]:554");
    }

    #[test]
    fn target_rejects_other_urls_without_leaking_passwords() {
        for (url, want) in [
            ("http://u:secret@host/cam", "BadUrl"),
            ("rtsps://u:secret@host/cam", "Unsupported"),
            ("rtsp://u:secret@/cam", "BadUrl"),
            ("rtsp://u:secret@host:99999/cam", "BadUrl"),
            ("not a url", "BadUrl"),
        ] {
            let Err(e) = Target::parse(url) else {
                panic!("{url} accepted")
            };
            assert!(format!("{e:?}").starts_with(want), "{url}: {e:?}");
            assert!(!e.to_string().contains("secret"), "{url}: {e}");
        }
        // Messages name the URL as the API does (`crate::redact`): user kept,
        // password hidden.
        assert_eq!(redact("rtsp://u:p@h:99999/x"), "rtsp://u:***@h:99999/x");
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(decode_userinfo("a%20b%2f%zz%4"), "a b/%zz%4");
        assert_eq!(decode_userinfo("%C3%A9t%C3%A9"), "été");
        assert_eq!(decode_userinfo("%ff"), "\u{fffd}");
    }

    #[test]
    fn track_choice() {
        let t = choose_tracks(&[
            ("video", "h264"),
            ("audio", "pcma"),
            ("application", "vnd.onvif.metadata"),
        ])
        .unwrap();
        assert_eq!((t.video, t.audio), (Some((0, VideoCodec::H264)), None));
        assert_eq!(t.skipped, vec!["audio/pcma".to_owned()]);

        let t = choose_tracks(&[
            ("audio", "mpeg4-generic"),
            ("video", "h265"),
            ("video", "h264"),
        ])
        .unwrap();
        assert_eq!((t.video, t.audio), (Some((1, VideoCodec::H265)), Some(0)));
        assert!(
            t.skipped.is_empty(),
            "a second usable track is just not needed"
        );

        let t = choose_tracks(&[("video", "jpeg"), ("audio", "mpeg4-generic")]).unwrap();
        assert_eq!((t.video, t.audio), (None, Some(1)));
        assert_eq!(t.skipped, vec!["video/jpeg".to_owned()]);

        assert_eq!(
            choose_tracks(&[("video", "jpeg"), ("audio", "opus")]).unwrap_err(),
            "video/jpeg, audio/opus"
        );
        assert_eq!(choose_tracks(&[]).unwrap_err(), "nothing");
    }
}

/// End to end against `tests/rtsp/rtsp_server.py` (GStreamer's RTSP server; the
/// Debian packages it needs are listed in its docstring). Like every ferrocast
/// end-to-end test these fail, never skip, when a peer cannot be started.
#[cfg(test)]
mod e2e {
    use super::*;
    use ferrocast_proto::flv::{
        parse_audio_tag, parse_video_tag, AudioCodec, VideoCodec as FlvCodec, VideoPacketKind,
    };
    use std::process::Stdio;
    use tokio::io::{AsyncBufReadExt, BufReader};
    use tokio::process::{Child, Command};

    /// How long each pull runs: three GOPs of the test source.
    const PULL_FOR: Duration = Duration::from_secs(3);

    struct RtspServer {
        url: String,
        _child: Child,
    }

    impl RtspServer {
        /// Starts the server on a free port and waits for its READY line.
        async fn start(args: &[&str]) -> RtspServer {
            let script = concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../tests/rtsp/rtsp_server.py"
            );
            let mut child = Command::new("/usr/bin/python3")
                .arg(script)
                .args(["--port", "0", "--path", "/cam"])
                .args(args)
                .stdout(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run /usr/bin/python3 {script}: {e}"));
            let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
            let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
                .await
                .expect("rtsp_server.py printed no READY line within 30 s")
                .expect("reading rtsp_server.py's stdout")
                .expect("rtsp_server.py exited before READY (GStreamer packages missing?)");
            let url = line
                .strip_prefix("READY ")
                .unwrap_or_else(|| panic!("unexpected first line from rtsp_server.py: {line:?}"))
                .to_owned();
            RtspServer { url, _child: child }
        }

        /// The URL with `user:pass@` inserted.
        fn url_with(&self, userinfo: &str) -> String {
            self.url
                .replacen("rtsp://", &format!("rtsp://{userinfo}@"), 1)
        }
    }

    /// Pulls for [`PULL_FOR`] (or until the pull fails), then closes the channel and
    /// returns what arrived and how `pull` ended. Logs go to the test's output.
    async fn pull_for(url: &str, transport: RtspTransport) -> (Vec<Media>, Result<(), ProxyError>) {
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter("ferrocast=debug")
            .try_init();
        let (tx, mut rx) = mpsc::channel(64);
        let opts = RtspOptions {
            transport,
            connect_timeout: Duration::from_secs(10),
        };
        let url = url.to_owned();
        let task = tokio::spawn(async move { pull(&url, &opts, tx).await });
        let mut got = Vec::new();
        let deadline = tokio::time::Instant::now() + PULL_FOR;
        while let Ok(Some(m)) = tokio::time::timeout_at(deadline, rx.recv()).await {
            got.push(m);
        }
        drop(rx);
        let result = tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("pull did not return after its channel closed")
            .expect("pull panicked");
        (got, result)
    }

    /// Checks a pulled stream: sequence headers first, keyframes once a second,
    /// timestamps non-decreasing per track from a shared zero, audio and video
    /// keeping pace with each other.
    fn check(media: &[Media], codec: FlvCodec, want_audio: bool) {
        let video: Vec<&Media> = media
            .iter()
            .filter(|m| m.kind == MediaKind::Video)
            .collect();
        let audio: Vec<&Media> = media
            .iter()
            .filter(|m| m.kind == MediaKind::Audio)
            .collect();
        let (mut keyframes, mut frames) = (0, 0);
        for (i, m) in video.iter().enumerate() {
            let h = parse_video_tag(&m.body).unwrap();
            assert_eq!(h.codec, codec);
            if i == 0 {
                assert_eq!(h.kind, VideoPacketKind::SequenceHeader, "first video tag");
            } else if h.kind == VideoPacketKind::Frame {
                assert!(frames > 0 || h.keyframe, "the first frame is a keyframe");
                frames += 1;
                keyframes += usize::from(h.keyframe);
            }
        }
        // 25 fps, a keyframe every 25 frames (the server may force one per client).
        assert!(frames >= 40, "{frames} video frames in {PULL_FOR:?}");
        assert!(keyframes >= 2, "{keyframes} keyframes in {PULL_FOR:?}");
        for w in video.windows(2).chain(audio.windows(2)) {
            assert!(
                w[0].timestamp <= w[1].timestamp,
                "{} then {}",
                w[0].timestamp,
                w[1].timestamp
            );
        }
        let span = video.last().unwrap().timestamp - video[0].timestamp;
        assert!(span >= 1500, "video spans only {span} ms");
        if !want_audio {
            assert!(audio.is_empty(), "{} audio tags", audio.len());
            return;
        }
        let h = parse_audio_tag(&audio[0].body).unwrap();
        assert_eq!((h.codec, h.sequence_header), (AudioCodec::Aac, true));
        // 44.1 kHz AAC: 43 frames a second.
        assert!(
            audio.len() >= 60,
            "{} audio tags in {PULL_FOR:?}",
            audio.len()
        );
        assert!(audio[1..]
            .iter()
            .all(|m| !parse_audio_tag(&m.body).unwrap().sequence_header));
        assert_eq!(
            video[0].timestamp.min(audio[0].timestamp),
            0,
            "a common zero"
        );
        let (v_end, a_end) = (
            video.last().unwrap().timestamp,
            audio.last().unwrap().timestamp,
        );
        assert!(
            v_end.abs_diff(a_end) < 500,
            "video ends at {v_end} ms, audio at {a_end} ms"
        );
    }

    #[tokio::test]
    async fn h264_aac_over_tcp() {
        let server = RtspServer::start(&["--codec", "h264", "--audio", "aac"]).await;
        let (media, result) = pull_for(&server.url, RtspTransport::Tcp).await;
        result.unwrap();
        check(&media, FlvCodec::H264, true);
    }

    #[tokio::test]
    async fn h264_aac_over_udp() {
        let server = RtspServer::start(&["--codec", "h264", "--audio", "aac"]).await;
        let (media, result) = pull_for(&server.url, RtspTransport::Udp).await;
        result.unwrap();
        check(&media, FlvCodec::H264, true);
    }

    /// H.265 goes out as Enhanced RTMP; G.711 audio is left out and video goes on.
    #[tokio::test]
    async fn h265_with_pcma_pulls_video_only() {
        let server = RtspServer::start(&["--codec", "h265", "--audio", "pcma"]).await;
        let (media, result) = pull_for(&server.url, RtspTransport::Tcp).await;
        result.unwrap();
        check(&media, FlvCodec::H265, false);
    }

    #[tokio::test]
    async fn digest_auth_and_errors() {
        let server = RtspServer::start(&["--audio", "none", "--auth", "cam:s3cret"]).await;
        let (media, result) = pull_for(&server.url_with("cam:s3cret"), RtspTransport::Tcp).await;
        result.unwrap();
        check(&media, FlvCodec::H264, false);

        for userinfo in ["cam:wrong", "cam"] {
            let (media, result) = pull_for(&server.url_with(userinfo), RtspTransport::Tcp).await;
            assert!(
                matches!(result, Err(ProxyError::Auth(_))),
                "{userinfo}: {result:?}"
            );
            assert!(media.is_empty());
        }
        let (_, result) = pull_for(&server.url, RtspTransport::Tcp).await;
        assert!(
            matches!(result, Err(ProxyError::Auth(_))),
            "no credentials: {result:?}"
        );
        let missing = server.url_with("cam:s3cret").replace("/cam", "/nope");
        let (_, result) = pull_for(&missing, RtspTransport::Tcp).await;
        assert!(matches!(result, Err(ProxyError::NotFound(_))), "{result:?}");
    }

    #[tokio::test]
    async fn connect_refused_and_silent_server() {
        // A port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let (_, result) =
            pull_for(&format!("rtsp://127.0.0.1:{port}/cam"), RtspTransport::Tcp).await;
        match result {
            Err(ProxyError::Connect { addr, .. }) => assert_eq!(addr, format!("127.0.0.1:{port}")),
            other => panic!("{other:?}"),
        }

        // Accepts the connection, never answers DESCRIBE.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "rtsp://127.0.0.1:{}/cam",
            silent.local_addr().unwrap().port()
        );
        let hold = tokio::spawn(async move {
            let _conn = silent.accept().await;
            std::future::pending::<()>().await
        });
        let (tx, _rx) = mpsc::channel(1);
        let opts = RtspOptions {
            transport: RtspTransport::Tcp,
            connect_timeout: Duration::from_millis(300),
        };
        let result = pull(&url, &opts, tx).await;
        assert!(matches!(result, Err(ProxyError::Timeout(_))), "{result:?}");
        hold.abort();
    }
}
