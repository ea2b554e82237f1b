//! The live HLS service: one muxer per stream (not per viewer), segments in memory.
//!
//! When the hub creates a stream, [`attach`]'s hook spawns a task that subscribes to
//! it like any player, muxes each packet to MPEG-TS once ([`TsMuxer`]) and lets the
//! [`Segmenter`] cut segments on keyframes. Playlists and segments are `Bytes`
//! shared by every HTTP request; a viewer costs one lookup and one write.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use ferrocast_proto::hls::{parse_segment_name, HlsConfig, Segmenter};
use ferrocast_proto::mpegts::TsMuxer;

use crate::config::Config;
use crate::hub::{Hub, PacketKind, Stream, StreamKey};

#[derive(Debug, Clone)]
pub(crate) struct HlsSettings {
    pub enabled: bool,
    pub segment_ms: u32,
    pub window: usize,
    pub retain: usize,
    pub keep_after_end: Duration,
    /// Also write playlists and segments under this directory, in the URL layout
    /// (`{dir}/{app}/{stream}/hls.m3u8`, `{n}.ts`), as ZLMediaKit does under its www root.
    pub disk_dir: Option<PathBuf>,
}

impl HlsSettings {
    pub(crate) fn from_config(c: &Config) -> Self {
        HlsSettings {
            enabled: c.hls.enabled,
            segment_ms: c.hls.segment_ms,
            window: c.hls.window,
            retain: c.hls.retain,
            keep_after_end: Duration::from_millis(c.hls.keep_after_end_ms),
            disk_dir: c.hls.write_to_disk.then(|| c.data_dir.join("www")),
        }
    }
}

/// Live HLS of every stream, by key.
pub(crate) struct HlsStore {
    settings: HlsSettings,
    streams: Mutex<HashMap<StreamKey, Arc<Mutex<Segmenter>>>>,
    /// Streams without live HLS (a pull proxy added with enable_hls=0).
    disabled: Mutex<std::collections::HashSet<StreamKey>>,
}

impl HlsStore {
    pub(crate) fn new(settings: HlsSettings) -> Arc<Self> {
        Arc::new(HlsStore {
            settings,
            streams: Mutex::new(HashMap::new()),
            disabled: Mutex::new(Default::default()),
        })
    }

    /// Turns live HLS off (or back on) for streams of this key created from now on.
    pub(crate) fn set_enabled(&self, key: &StreamKey, enabled: bool) {
        let mut d = self.disabled.lock().unwrap();
        if enabled {
            d.remove(key);
        } else {
            d.insert(key.clone());
        }
    }

    fn get(&self, key: &StreamKey) -> Option<Arc<Mutex<Segmenter>>> {
        self.streams.lock().unwrap().get(key).cloned()
    }

    /// The live playlist; `None` until the first segment is complete.
    pub(crate) fn playlist(&self, key: &StreamKey) -> Option<Bytes> {
        self.get(key)?.lock().unwrap().playlist()
    }

    /// A listed or retained segment by file name (`{n}.ts`).
    pub(crate) fn segment(&self, key: &StreamKey, file: &str) -> Option<Bytes> {
        let seq = parse_segment_name(file)?;
        self.get(key)?.lock().unwrap().segment(seq)
    }
}

/// Makes every new stream of `hub` produce HLS into `store`.
pub(crate) fn attach(hub: &Arc<Hub>, store: &Arc<HlsStore>) {
    if !store.settings.enabled {
        return;
    }
    let weak_hub = Arc::downgrade(hub);
    let store = store.clone();
    hub.add_on_new_stream(move |stream| {
        let (Some(hub), Ok(rt)) = (weak_hub.upgrade(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        if store.disabled.lock().unwrap().contains(&stream.key) {
            return;
        }
        // The publish gate (hook.on_publish) may turn HLS off for this stream.
        if stream.options().enable_hls == Some(false) {
            return;
        }
        rt.spawn(run_stream(hub, store.clone(), stream.clone()));
    });
}

/// Counts the segment that the next cut, discontinuity or end completes.
fn count_close(seg: &Segmenter) {
    if seg.open_len() > 0 {
        crate::metrics::hls_segment_produced();
    }
}

fn now_unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

async fn run_stream(hub: Arc<Hub>, store: Arc<HlsStore>, stream: Arc<Stream>) {
    let Some(mut sub) = hub.subscribe_internal(&stream) else {
        return;
    };
    let key = stream.key.clone();
    // A name published again continues the sequence numbers of its previous life,
    // so a cached `0.ts` never means two different things.
    let first_sequence = store
        .get(&key)
        .map(|s| s.lock().unwrap().next_sequence())
        .unwrap_or(0);
    let s = &store.settings;
    let segmenter = Arc::new(Mutex::new(Segmenter::new(HlsConfig {
        target_duration_ms: s.segment_ms,
        window: s.window,
        retain_extra: s.retain,
        max_segment_ms: s.segment_ms.saturating_mul(3),
        first_sequence,
    })));
    store
        .streams
        .lock()
        .unwrap()
        .insert(key.clone(), segmenter.clone());
    tracing::debug!(stream = %key, "HLS muxer started");
    let mut mux = TsMuxer::new();
    let mut batch = Vec::new();
    let mut media_since_headers = false;
    let mut out = BytesMut::new();
    let mut errors_logged = 0u32;
    let mut disk = store
        .settings
        .disk_dir
        .as_ref()
        .map(|d| DiskMirror::new(d.join(&key.app).join(&key.stream)));
    while sub.next_batch(&mut batch, 1024).await.is_ok() {
        for p in batch.drain(..) {
            let is_video = match p.kind {
                PacketKind::Video => true,
                PacketKind::Audio => false,
                PacketKind::Metadata | PacketKind::Eof => continue,
            };
            if p.sequence_header {
                // New headers after media: a publisher came back (or the encoder
                // changed its settings): the player must reset its decoder.
                if media_since_headers {
                    let mut seg = segmenter.lock().unwrap();
                    count_close(&seg);
                    let expired = seg.discontinuity();
                    if let Some(d) = &mut disk {
                        d.stage(&seg, expired);
                    }
                    media_since_headers = false;
                }
            }
            let dts = p.timestamp as i64;
            {
                let mut seg = segmenter.lock().unwrap();
                if !p.sequence_header && seg.should_cut(dts, p.keyframe, is_video, mux.has_video())
                {
                    count_close(&seg);
                    let expired = seg.cut(dts);
                    if let Some(d) = &mut disk {
                        d.stage(&seg, expired);
                    }
                }
                if seg.open_len() == 0 {
                    mux.write_tables(&mut out);
                }
            }
            let written = if is_video {
                mux.write_video(p.timestamp, &p.payload, &mut out)
            } else {
                mux.write_audio(p.timestamp, &p.payload, &mut out)
            };
            match written {
                Ok(Some(_)) => media_since_headers = true,
                Ok(None) => {}
                Err(e) => {
                    if errors_logged < 3 {
                        errors_logged += 1;
                        tracing::warn!(stream = %key, error = %e, "HLS: frame not muxed");
                    }
                }
            }
            if let Some(d) = &mut disk {
                d.flush(&key).await;
            }
            if !out.is_empty() && media_since_headers {
                let chunk = out.split();
                if let Err(e) = segmenter.lock().unwrap().push(dts, &chunk, now_unix_ms()) {
                    tracing::warn!(stream = %key, error = %e, "HLS: segment data dropped");
                }
            }
        }
    }
    {
        let mut seg = segmenter.lock().unwrap();
        count_close(&seg);
        let expired = seg.end();
        if let Some(d) = &mut disk {
            d.stage(&seg, expired);
        }
    }
    if let Some(d) = &mut disk {
        d.flush(&key).await;
    }
    tracing::debug!(stream = %key, "HLS muxer ended");
    tokio::time::sleep(store.settings.keep_after_end).await;
    let removed = {
        let mut streams = store.streams.lock().unwrap();
        let ours = streams
            .get(&key)
            .is_some_and(|s| Arc::ptr_eq(s, &segmenter));
        if ours {
            streams.remove(&key);
        }
        ours
    };
    if let (true, Some(d)) = (removed, disk) {
        d.remove_all().await;
    }
}

/// Mirrors a stream's live HLS to disk: new segments and the playlist are written
/// after each cut (the playlist last, by rename, so a file server never lists a
/// segment that is not on disk), expired segments are deleted.
struct DiskMirror {
    dir: PathBuf,
    written_up_to: Option<u64>,
    pending_writes: Vec<(String, Bytes)>,
    pending_deletes: Vec<String>,
    playlist: Option<Bytes>,
    on_disk: Vec<String>,
    failed: bool,
}

impl DiskMirror {
    fn new(dir: PathBuf) -> Self {
        DiskMirror {
            dir,
            written_up_to: None,
            pending_writes: Vec::new(),
            pending_deletes: Vec::new(),
            playlist: None,
            on_disk: Vec::new(),
            failed: false,
        }
    }

    /// Under the segmenter lock: take what must go to disk (cheap `Bytes` clones).
    fn stage(&mut self, seg: &Segmenter, expired: Vec<ferrocast_proto::hls::SegmentInfo>) {
        for info in seg.segments() {
            if self.written_up_to.is_some_and(|w| info.sequence <= w) {
                continue;
            }
            if let Some(bytes) = seg.segment(info.sequence) {
                self.pending_writes.push((info.name.clone(), bytes));
                self.written_up_to = Some(info.sequence);
            }
        }
        self.pending_deletes
            .extend(expired.into_iter().map(|i| i.name));
        self.playlist = seg.playlist();
    }

    /// Outside the lock: write what was staged. A failure (full disk) is logged once;
    /// HTTP delivery goes on from memory.
    async fn flush(&mut self, key: &StreamKey) {
        if self.pending_writes.is_empty()
            && self.pending_deletes.is_empty()
            && self.playlist.is_none()
        {
            return;
        }
        if let Err(e) = self.flush_inner().await {
            if !self.failed {
                self.failed = true;
                tracing::error!(stream = %key, dir = %self.dir.display(), error = %e,
                    "HLS: writing to disk failed; HTTP delivery goes on from memory");
            }
        }
    }

    async fn flush_inner(&mut self) -> std::io::Result<()> {
        tokio::fs::create_dir_all(&self.dir).await?;
        for (name, bytes) in std::mem::take(&mut self.pending_writes) {
            tokio::fs::write(self.dir.join(&name), &bytes).await?;
            self.on_disk.push(name);
        }
        if let Some(pl) = self.playlist.take() {
            let tmp = self.dir.join("hls.m3u8.tmp");
            tokio::fs::write(&tmp, &pl).await?;
            tokio::fs::rename(&tmp, self.dir.join("hls.m3u8")).await?;
        }
        for name in std::mem::take(&mut self.pending_deletes) {
            let _ = tokio::fs::remove_file(self.dir.join(&name)).await;
            self.on_disk.retain(|n| *n != name);
        }
        Ok(())
    }

    async fn remove_all(self) {
        for name in &self.on_disk {
            let _ = tokio::fs::remove_file(self.dir.join(name)).await;
        }
        let _ = tokio::fs::remove_file(self.dir.join("hls.m3u8")).await;
        let _ = tokio::fs::remove_dir(&self.dir).await;
    }
}
