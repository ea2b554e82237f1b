//! The GOP cache: what a new subscriber needs to start at once on a keyframe.

use std::collections::VecDeque;
use std::sync::Arc;

use super::packet::{Packet, PacketKind};

/// Metadata, the latest sequence headers, and every message since the last video
/// keyframe, bounded in frames and bytes. When a GOP outgrows the bounds the cached
/// frames are dropped until the next keyframe: new players then start on that one
/// instead of the server holding unbounded memory for a stream with a huge GOP.
#[derive(Debug)]
pub struct GopCache {
    enabled: bool,
    max_frames: usize,
    max_bytes: usize,
    pub metadata: Option<Arc<Packet>>,
    pub video_header: Option<Arc<Packet>>,
    pub audio_header: Option<Arc<Packet>>,
    frames: VecDeque<Arc<Packet>>,
    bytes: usize,
    /// True once a video sequence header or frame was seen: then audio is cached only
    /// after a keyframe, so a player's first video frame is always a keyframe.
    has_video: bool,
    /// True while the cache holds a GOP that starts on a keyframe.
    started: bool,
}

impl GopCache {
    pub fn new(enabled: bool, max_frames: usize, max_bytes: usize) -> Self {
        GopCache {
            enabled,
            max_frames,
            max_bytes,
            metadata: None,
            video_header: None,
            audio_header: None,
            frames: VecDeque::new(),
            bytes: 0,
            has_video: false,
            started: false,
        }
    }

    pub fn push(&mut self, packet: &Arc<Packet>) {
        match packet.kind {
            PacketKind::Metadata => self.metadata = Some(packet.clone()),
            PacketKind::Video if packet.sequence_header => {
                self.video_appeared();
                self.video_header = Some(packet.clone());
            }
            PacketKind::Audio if packet.sequence_header => self.audio_header = Some(packet.clone()),
            PacketKind::Eof => self.clear(),
            PacketKind::Video | PacketKind::Audio => {
                if !self.enabled {
                    return;
                }
                if packet.kind == PacketKind::Video {
                    self.video_appeared();
                    if packet.keyframe {
                        self.drop_frames();
                        self.started = true;
                    }
                }
                // Audio-only streams: keep a short run of audio so players start at once.
                if !self.has_video && packet.kind == PacketKind::Audio {
                    self.started = true;
                    if self.frames.len() >= 64 {
                        if let Some(old) = self.frames.pop_front() {
                            self.bytes -= old.size();
                        }
                    }
                }
                if !self.started {
                    return;
                }
                if self.frames.len() >= self.max_frames
                    || self.bytes + packet.size() > self.max_bytes
                {
                    // Too big a GOP: forget it, wait for the next keyframe.
                    self.drop_frames();
                    self.started = false;
                    return;
                }
                self.bytes += packet.size();
                self.frames.push_back(packet.clone());
            }
        }
    }

    /// Audio cached while the stream looked audio-only must not be followed by a
    /// non-key video frame: start again at the next keyframe.
    fn video_appeared(&mut self) {
        if !self.has_video {
            self.has_video = true;
            self.drop_frames();
            self.started = false;
        }
    }

    fn drop_frames(&mut self) {
        self.frames.clear();
        self.bytes = 0;
    }

    /// Forget everything (a new publisher will send its own headers).
    pub fn clear(&mut self) {
        self.drop_frames();
        self.metadata = None;
        self.video_header = None;
        self.audio_header = None;
        self.has_video = false;
        self.started = false;
    }

    /// What a new subscriber receives first, in order.
    pub fn snapshot(&self, out: &mut Vec<Arc<Packet>>) {
        out.extend(self.metadata.iter().cloned());
        out.extend(self.headers());
        out.extend(self.frames.iter().cloned());
    }

    /// The current sequence headers (sent again to a subscriber after it skipped).
    pub fn headers(&self) -> impl Iterator<Item = Arc<Packet>> + '_ {
        self.video_header
            .iter()
            .chain(self.audio_header.iter())
            .cloned()
    }

    pub fn has_video(&self) -> bool {
        self.has_video
    }

    pub fn cached_bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn pkt(kind: PacketKind, ts: u32, key: bool, hdr: bool, len: usize) -> Arc<Packet> {
        Arc::new(Packet::new(kind, ts, key, hdr, Bytes::from(vec![0u8; len])))
    }

    #[test]
    fn starts_on_keyframe_with_headers_first() {
        let mut g = GopCache::new(true, 100, 1 << 20);
        g.push(&pkt(PacketKind::Metadata, 0, false, false, 10));
        g.push(&pkt(PacketKind::Video, 0, false, true, 10));
        g.push(&pkt(PacketKind::Audio, 0, false, true, 2));
        g.push(&pkt(PacketKind::Video, 40, false, false, 10)); // before any keyframe
        g.push(&pkt(PacketKind::Audio, 41, false, false, 10));
        g.push(&pkt(PacketKind::Video, 80, true, false, 10));
        g.push(&pkt(PacketKind::Audio, 81, false, false, 10));
        g.push(&pkt(PacketKind::Video, 120, false, false, 10));
        let mut out = Vec::new();
        g.snapshot(&mut out);
        let kinds: Vec<_> = out
            .iter()
            .map(|p| (p.kind, p.timestamp, p.keyframe, p.sequence_header))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (PacketKind::Metadata, 0, false, false),
                (PacketKind::Video, 0, false, true),
                (PacketKind::Audio, 0, false, true),
                (PacketKind::Video, 80, true, false),
                (PacketKind::Audio, 81, false, false),
                (PacketKind::Video, 120, false, false),
            ]
        );
        // A new keyframe restarts the GOP.
        g.push(&pkt(PacketKind::Video, 160, true, false, 10));
        out.clear();
        g.snapshot(&mut out);
        assert_eq!(out.len(), 4);
        assert!(out[3].keyframe);
    }

    #[test]
    fn oversized_gop_is_dropped_until_next_keyframe() {
        let mut g = GopCache::new(true, 3, 1 << 20);
        g.push(&pkt(PacketKind::Video, 0, true, false, 10));
        for i in 1..5 {
            g.push(&pkt(PacketKind::Video, i * 40, false, false, 10));
        }
        let mut out = Vec::new();
        g.snapshot(&mut out);
        assert!(out.is_empty(), "over the frame bound nothing is cached");
        g.push(&pkt(PacketKind::Video, 400, true, false, 10));
        out.clear();
        g.snapshot(&mut out);
        assert_eq!(out.len(), 1);
        assert!(out[0].keyframe);
        assert!(g.cached_bytes() <= 30);
    }

    #[test]
    fn audio_before_video_does_not_let_a_p_frame_lead() {
        let mut g = GopCache::new(true, 100, 1 << 20);
        g.push(&pkt(PacketKind::Audio, 0, false, false, 10));
        g.push(&pkt(PacketKind::Audio, 23, false, false, 10));
        g.push(&pkt(PacketKind::Video, 40, false, false, 10)); // P-frame first
        g.push(&pkt(PacketKind::Audio, 46, false, false, 10));
        let mut out = Vec::new();
        g.snapshot(&mut out);
        assert!(out.iter().all(|p| p.kind != PacketKind::Video));
        assert!(out.is_empty());
        g.push(&pkt(PacketKind::Video, 80, true, false, 10));
        out.clear();
        g.snapshot(&mut out);
        assert!(out[0].keyframe);
    }

    #[test]
    fn byte_bound_holds() {
        let mut g = GopCache::new(true, 1000, 100);
        g.push(&pkt(PacketKind::Video, 0, true, false, 60));
        g.push(&pkt(PacketKind::Video, 40, false, false, 60));
        assert!(g.cached_bytes() <= 100);
    }
}
