//! What is known about a stream's tracks: codec, resolution, frame rate, GOP, sample
//! rate, channels. Filled by the publisher path from sequence headers (parsed once
//! per header, not per frame) and counters. The API shows it as ZLMediaKit's
//! `tracks` array; the codec ids and names of that format live in `api/`.

use ferrocast_proto::codec::{
    aac::AudioSpecificConfig, h264::AvcDecoderConfig, h265::HevcDecoderConfig,
};
use ferrocast_proto::flv::{AudioCodec, AudioTagHeader, VideoCodec, VideoTagHeader};

/// A track's codec as the FLV tag header names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackCodec {
    Video(VideoCodec),
    Audio(AudioCodec),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrackInfo {
    /// The codec, from the last tag header seen; `None` before the first.
    pub codec: Option<TrackCodec>,
    /// RFC 6381 codec string when known (avc1.64001E, mp4a.40.2, ...).
    pub codec_string: Option<String>,
    pub width: u32,
    pub height: u32,
    pub sample_rate: u32,
    pub channels: u8,
    pub frames: u64,
    pub key_frames: u64,
    first_ts: Option<u32>,
    last_ts: u32,
    last_key_ts: Option<u32>,
    frames_since_key: u64,
    /// Frames in the last complete GOP and its length in ms.
    pub gop_size: u64,
    pub gop_interval_ms: u32,
}

impl TrackInfo {
    pub fn fps(&self) -> f64 {
        match self.first_ts {
            Some(first) if self.frames > 1 && self.last_ts > first => {
                (self.frames - 1) as f64 * 1000.0 / (self.last_ts - first) as f64
            }
            _ => 0.0,
        }
    }

    pub fn duration_ms(&self) -> u32 {
        self.first_ts
            .map(|f| self.last_ts.saturating_sub(f))
            .unwrap_or(0)
    }

    fn frame(&mut self, ts: u32, keyframe: bool) {
        self.frames += 1;
        self.first_ts.get_or_insert(ts);
        self.last_ts = ts;
        self.frames_since_key += 1;
        if keyframe {
            self.key_frames += 1;
            if let Some(prev) = self.last_key_ts {
                self.gop_size = self.frames_since_key;
                self.gop_interval_ms = ts.saturating_sub(prev);
            }
            self.last_key_ts = Some(ts);
            self.frames_since_key = 0;
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct MediaInfo {
    pub video: Option<TrackInfo>,
    pub audio: Option<TrackInfo>,
}

impl MediaInfo {
    /// One video message, its tag header already parsed by the publisher path.
    pub fn on_video(
        &mut self,
        ts: u32,
        payload: &[u8],
        tag: &VideoTagHeader,
        keyframe: bool,
        header: bool,
    ) {
        let track = self.video.get_or_insert_with(TrackInfo::default);
        track.codec = Some(TrackCodec::Video(tag.codec));
        if header {
            let body = payload.get(tag.header_len..).unwrap_or(&[]);
            match tag.codec {
                VideoCodec::H264 => {
                    if let Ok(c) = AvcDecoderConfig::parse(body) {
                        track.width = c.width;
                        track.height = c.height;
                        track.codec_string = Some(c.codec_string());
                    }
                }
                VideoCodec::H265 => {
                    if let Ok(c) = HevcDecoderConfig::parse(body) {
                        track.width = c.width;
                        track.height = c.height;
                        track.codec_string = Some(c.codec_string());
                    }
                }
                _ => {}
            }
        } else {
            track.frame(ts, keyframe);
        }
    }

    /// One audio message, its tag header already parsed by the publisher path.
    pub fn on_audio(&mut self, ts: u32, payload: &[u8], tag: &AudioTagHeader, header: bool) {
        let track = self.audio.get_or_insert_with(TrackInfo::default);
        track.codec = Some(TrackCodec::Audio(tag.codec));
        if header && tag.codec == AudioCodec::Aac {
            if let Ok(c) = AudioSpecificConfig::parse(payload.get(tag.header_len..).unwrap_or(&[]))
            {
                track.sample_rate = c.sample_rate;
                track.channels = c.channel_configuration;
                track.codec_string = Some(c.codec_string());
            }
        } else if !header {
            track.frame(ts, false);
        }
    }
}
