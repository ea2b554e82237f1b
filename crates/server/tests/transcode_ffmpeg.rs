//! The transcoder with a real ffmpeg, in this process: ffmpeg publishes to the
//! server's RTMP listener, the [`Transcoder`]'s ffmpeg makes the renditions, and the
//! frames of every stream are read from the hub. These check the claim of
//! `transcode/args.rs`'s flags: every rendition frame carries a source timestamp and
//! the renditions' keyframes are exactly the source's. (The command lines themselves
//! are unit-tested in `transcode/args.rs`, without ffmpeg.)

mod common;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::require;
use ferrocast::hub::{Hub, HubSettings, StreamKey};
use ferrocast::transcode::{rtmp_url, JobStatus, Transcoder};
use tokio::process::Command;
use tokio::sync::watch;

fn key(stream: &str) -> StreamKey {
    StreamKey::new(None, "live", stream)
}

/// A fresh directory of this test under `CARGO_TARGET_TMPDIR`.
fn test_dir(name: &str) -> PathBuf {
    let d = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("transcode-ffmpeg-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// `d`.
/// (pts, keyframe) of the coded video frames of `key`, from its GOP cache on, for
/// `d`.
async fn video_frames(hub: Arc<Hub>, key: StreamKey, d: Duration) -> Vec<(i64, bool)> {
    let stream = hub.find(&key).expect("stream");
    let mut sub = hub.subscribe_internal(&stream).expect("subscription");
    let mut out = Vec::new();
    let end = tokio::time::Instant::now() + d;
    let mut batch = Vec::new();
    while let Ok(Ok(())) = tokio::time::timeout_at(end, sub.next_batch(&mut batch, 256)).await {
        for p in batch.drain(..) {
            if p.kind == ferrocast::hub::PacketKind::Video
                && !p.sequence_header
                && p.payload.len() > 5
            {
                let b = &p.payload;
                // AVC composition time: signed 24 bits.
                let cts = (i32::from_be_bytes([b[2], b[3], b[4], 0]) >> 8) as i64;
                out.push((i64::from(p.timestamp) + cts, p.keyframe));
            }
        }
    }
    out
}

/// The server's RTMP listener on a free loopback port, in this process.
async fn rtmp_server(
    hub: &Arc<Hub>,
    c: &ferrocast::config::Config,
) -> (SocketAddr, watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = watch::channel(false);
    let settings = Arc::new(ferrocast::rtmp::RtmpSettings::from_config(c));
    let server = tokio::spawn(ferrocast::rtmp::serve(
        listener,
        hub.clone(),
        settings,
        64,
        stop_rx,
    ));
    (addr, stop_tx, server)
}

async fn wait_async(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let t = Instant::now();
    while !check() {
        assert!(t.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The real thing: ffmpeg publishes a 720p stream (B-frames, keyframes every
/// 1.7 s: no multiple of any fixed GOP) to the RTMP listener, the transcoder's
/// ffmpeg makes 480p and 360p of it; every rendition frame must carry a source
/// timestamp and the keyframes must be the source's. Then ffmpeg is killed
/// (restarted) and the publisher stopped (the transcode ends).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_renditions_follow_the_source_keyframes_and_timestamps() {
    require("ffmpeg");
    let dir = test_dir("e2e");
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("src.flv");
    let ok = std::process::Command::new("ffmpeg")
        .args(
            "-nostdin -hide_banner -loglevel error -y \
             -f lavfi -i testsrc2=size=1280x720:rate=25 -f lavfi -i sine=sample_rate=44100 \
             -t 10 -c:v libx264 -preset ultrafast -bf 2 -g 1000 -sc_threshold 0 \
             -force_key_frames expr:gte(t,n_forced*1.7) -pix_fmt yuv420p \
             -c:a aac -b:a 128k -f flv"
                .split_whitespace(),
        )
        .arg(&src)
        .status()
        .unwrap();
    assert!(ok.success());

    let mut c = ferrocast::config::Config::default();
    c.general.continue_push_ms = 1000;
    let hub = Hub::new(HubSettings::from_config(&c));
    let (addr, stop_tx, server) = rtmp_server(&hub, &c).await;
    let mut tc = c.transcode.clone();
    tc.preset = "ultrafast".into();
    tc.restart_delay_ms = 300;
    let t = Transcoder::new(hub.clone(), tc, addr);

    let m = key("m");
    let mut publisher = Command::new("ffmpeg")
        .args("-nostdin -hide_banner -loglevel error -re -stream_loop -1 -i".split_whitespace())
        .arg(&src)
        .args("-c copy -f flv".split_whitespace())
        .arg(rtmp_url(addr, &m))
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    wait_async("the source", Duration::from_secs(10), || {
        hub.find(&m).is_some_and(|s| s.is_publishing())
    })
    .await;
    assert_eq!(t.start(&m, "default"), Ok("__defaultVhost__/live/m".into()));
    wait_async("two renditions", Duration::from_secs(30), || {
        t.renditions(&m).len() == 2
    })
    .await;
    let names: Vec<String> = t
        .renditions(&m)
        .iter()
        .map(|r| r.key.stream.clone())
        .collect();
    assert_eq!(names, ["m_480p", "m_360p"]);

    let d = Duration::from_secs(8);
    let (source, r480, r360) = tokio::join!(
        video_frames(hub.clone(), m.clone(), d),
        video_frames(hub.clone(), key("m_480p"), d),
        video_frames(hub.clone(), key("m_360p"), d),
    );
    let source_pts: HashSet<i64> = source.iter().map(|f| f.0).collect();
    for (name, frames) in [("480p", &r480), ("360p", &r360)] {
        let lo = frames[0].0.max(source.iter().map(|f| f.0).min().unwrap());
        let hi = frames
            .iter()
            .map(|f| f.0)
            .max()
            .unwrap()
            .min(source.iter().map(|f| f.0).max().unwrap());
        let in_range = |f: &&(i64, bool)| f.0 >= lo && f.0 <= hi;
        let rk: Vec<i64> = frames
            .iter()
            .filter(in_range)
            .filter(|f| f.1)
            .map(|f| f.0)
            .collect();
        let sk: Vec<i64> = source
            .iter()
            .filter(in_range)
            .filter(|f| f.1)
            .map(|f| f.0)
            .collect();
        let off: Vec<i64> = frames
            .iter()
            .filter(in_range)
            .map(|f| f.0)
            .filter(|p| !source_pts.contains(p))
            .collect();
        let n = frames.iter().filter(in_range).count();
        eprintln!("{name}: {n} frames in [{lo}, {hi}] ms, {} not at a source pts; keyframes {rk:?}, source's {sk:?}", off.len());
        assert!(n > 100, "{name}: {n} frames");
        assert!(off.is_empty(), "{name}: pts not in the source: {off:?}");
        assert!(sk.len() >= 3, "{sk:?}");
        assert_eq!(rk, sk, "{name}: keyframes");
    }

    // Killed: restarted, renditions back.
    let pid = t.list()[0].pid.unwrap();
    std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    wait_async("a restart", Duration::from_secs(20), || {
        let l = t.list();
        l[0].restarts >= 1 && l[0].pid.is_some_and(|p| p != pid)
    })
    .await;
    assert_eq!(t.list()[0].status, JobStatus::Running);
    wait_async("renditions again", Duration::from_secs(30), || {
        t.renditions(&m).len() == 2
    })
    .await;
    let new_pid = t.list()[0].pid.unwrap();

    // The publisher goes: the transcode ends.
    publisher.kill().await.unwrap();
    let _ = publisher.wait().await;
    wait_async("the transcode to end", Duration::from_secs(20), || {
        t.list().is_empty()
    })
    .await;
    assert!(!std::path::Path::new(&format!("/proc/{new_pid}")).exists());
    t.shutdown().await;
    let _ = stop_tx.send(true);
    let _ = server.await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A stream of an app in `transcode.apps` is transcoded from its first frame (the
/// case where the AAC priming or B-frames would make timestamps negative and the
/// muxer shift them): the renditions' first keyframe is the source's, at the same
/// time; the renditions themselves are not transcoded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apps_stream_is_transcoded_from_its_first_frame() {
    require("ffmpeg");
    let dir = test_dir("auto");
    std::fs::create_dir_all(&dir).unwrap();
    let mut c = ferrocast::config::Config::default();
    c.general.continue_push_ms = 0;
    let hub = Hub::new(HubSettings::from_config(&c));
    // Every stream subscribed to as it is created: everything from its start.
    let subs: Arc<Mutex<Vec<ferrocast::hub::Subscription>>> = Arc::default();
    let s2 = subs.clone();
    let h2 = Arc::downgrade(&hub);
    hub.add_on_new_stream(move |stream| {
        if let Some(sub) = h2.upgrade().and_then(|h| h.subscribe_internal(stream)) {
            s2.lock().unwrap().push(sub);
        }
    });
    let (addr, stop_tx, server) = rtmp_server(&hub, &c).await;
    let mut tc = c.transcode.clone();
    tc.preset = "ultrafast".into();
    tc.apps = [("auto".to_owned(), "default".to_owned())].into();
    let t = Transcoder::new(hub.clone(), tc, addr);
    t.attach();

    // A live encoder whose video and audio both start at 0: no B-frames, and PCM
    // audio (an AAC encoder's priming would shift the publisher's video).
    let a = StreamKey::new(None, "auto", "a");
    let mut publisher = Command::new("ffmpeg")
        .args(
            "-nostdin -hide_banner -loglevel error \
             -re -f lavfi -i testsrc2=size=1280x720:rate=25 -re -f lavfi -i sine=sample_rate=44100 \
             -t 8 -c:v libx264 -preset ultrafast -bf 0 -g 40 -pix_fmt yuv420p \
             -c:a pcm_s16le -f flv"
                .split_whitespace(),
        )
        .arg(rtmp_url(addr, &a))
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    wait_async("two renditions", Duration::from_secs(30), || {
        t.renditions(&a).len() == 2
    })
    .await;
    assert_eq!(
        t.list().len(),
        1,
        "renditions are not transcoded: {:?}",
        t.list()
    );
    let _ = publisher.wait().await;
    wait_async("the transcode to end", Duration::from_secs(20), || {
        t.list().is_empty()
    })
    .await;

    let subs: Vec<ferrocast::hub::Subscription> = std::mem::take(&mut *subs.lock().unwrap());
    let mut frames: HashMap<String, Vec<(i64, bool)>> = HashMap::new();
    for mut sub in subs {
        let name = sub.stream().key.stream.clone();
        let mut batch = Vec::new();
        let mut v = Vec::new();
        while let Ok(Ok(())) =
            tokio::time::timeout(Duration::from_secs(1), sub.next_batch(&mut batch, 256)).await
        {
            for p in batch.drain(..) {
                if p.kind == ferrocast::hub::PacketKind::Video
                    && !p.sequence_header
                    && p.payload.len() > 5
                {
                    let b = &p.payload;
                    let cts = (i32::from_be_bytes([b[2], b[3], b[4], 0]) >> 8) as i64;
                    v.push((i64::from(p.timestamp) + cts, p.keyframe));
                }
            }
        }
        frames.insert(name, v);
    }
    let source = &frames["a"];
    let source_pts: HashSet<i64> = source.iter().map(|f| f.0).collect();
    let source_keys: Vec<i64> = source.iter().filter(|f| f.1).map(|f| f.0).collect();
    for r in ["a_480p", "a_360p"] {
        let v = &frames[r];
        let keys: Vec<i64> = v.iter().filter(|f| f.1).map(|f| f.0).collect();
        eprintln!("{r}: first frame {:?}, {} frames; keyframes {keys:?}; source: first {:?}, keyframes {source_keys:?}", v[0], v.len(), source[0]);
        assert_eq!(
            v[0], source[0],
            "{r} starts with the source's first keyframe"
        );
        assert!(
            v.iter().all(|f| source_pts.contains(&f.0)),
            "{r}: every pts is a source pts"
        );
        assert_eq!(keys, source_keys[..keys.len()], "{r}: keyframes");
    }
    t.shutdown().await;
    let _ = stop_tx.send(true);
    let _ = server.await;
    let _ = std::fs::remove_dir_all(&dir);
}
