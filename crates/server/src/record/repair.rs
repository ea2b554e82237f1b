//! Finishing MP4 recordings that a crash (`kill -9`, power loss) or a write error
//! left without their final index.
//!
//! How they are found: by their first bytes, not by a marker file or a name. A
//! recording is fragmented while it is written (`ftyp moov moof mdat ...`) and its
//! initial `moov` is retyped `free` only as the last step of finishing it, so at
//! start-up, when nothing is being recorded yet, every `.mp4` under the record
//! directory whose second box is a `moov` with `mvex` is an unfinished recording
//! ([`ferrocast_proto::mp4::needs_repair`]). No rename or marker means no extra
//! step that a crash could interrupt, and files of older versions are found too.
//! The list is taken before any recording starts; the repairs then run in the
//! background, so start-up does not wait for a slow disk.
//!
//! The repair itself is the protocol's ([`Mp4Repair`]): this file only reads what
//! it asks for and applies the result like a normal finish (cut a torn last
//! fragment, append the index, sync, then the patches, sync). A file with no
//! complete fragment holds no media and is removed.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use ferrocast_proto::mp4::{needs_repair, Mp4Repair, RepairStep};

/// How deep [`find_interrupted`] looks under the record directory:
/// `{customized_path...}/{app}/{stream}/{date}/{file}` with room for nested
/// customized paths.
const MAX_DEPTH: usize = 12;

/// What became of a file.
#[derive(Debug, PartialEq)]
pub(crate) enum Outcome {
    /// Finished in place: it plays, with a full index.
    Repaired { duration_ms: u64, samples: u32 },
    /// It held no complete fragment: deleted.
    Removed,
}

/// Every unfinished MP4 recording under `root` (blocking).
pub(crate) fn find_interrupted(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![(root.to_path_buf(), 0usize)];
    while let Some((dir, depth)) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(t) = e.file_type() else { continue };
            let path = e.path();
            if t.is_dir() && depth < MAX_DEPTH {
                dirs.push((path, depth + 1));
            } else if t.is_file()
                && path.extension().is_some_and(|x| x == "mp4")
                && is_interrupted(&path)
            {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// Whether the file at `path` starts like an unfinished recording.
pub(crate) fn is_interrupted(path: &Path) -> bool {
    let Ok(f) = std::fs::File::open(path) else {
        return false;
    };
    let mut head = [0u8; 64];
    let n = read_at(&f, &mut head, 0).unwrap_or(0);
    needs_repair(&head[..n])
}

/// Reads up to `buf.len()` bytes at `offset` (fewer only at the end of the file).
fn read_at(f: &std::fs::File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read_at(&mut buf[n..], offset + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Finishes one unfinished recording in place (blocking).
pub(crate) fn repair_file(path: &Path) -> std::io::Result<Outcome> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)?;
    let len = f.metadata()?.len();
    if len == 0 {
        // A file whose first write failed (a full disk): nothing in it.
        drop(f);
        std::fs::remove_file(path)?;
        return Ok(Outcome::Removed);
    }
    let mut walk = Mp4Repair::new(len);
    let mut buf = Vec::new();
    while let RepairStep::Read { offset, len } = walk.step() {
        buf.resize(len, 0);
        let n = read_at(&f, &mut buf, offset)?;
        walk.feed(&buf[..n]);
    }
    let fin = walk
        .finish()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    if fin.samples == 0 {
        drop(f);
        std::fs::remove_file(path)?;
        return Ok(Outcome::Removed);
    }
    f.set_len(fin.truncate_to)?;
    f.write_all_at(&fin.trailer, fin.truncate_to)?;
    f.sync_data()?;
    for (at, bytes) in &fin.patches {
        f.write_all_at(bytes, *at)?;
    }
    f.sync_data()?;
    Ok(Outcome::Repaired {
        duration_ms: fin.duration_ms,
        samples: fin.samples,
    })
}

/// Repairs `files` one after the other, logging each (blocking).
pub(crate) fn repair_all(files: Vec<PathBuf>) {
    for path in files {
        match repair_file(&path) {
            Ok(Outcome::Repaired {
                duration_ms,
                samples,
            }) => {
                crate::metrics::recording_repaired();
                tracing::info!(path = %path.display(), duration_ms, samples,
                    "MP4 recording interrupted earlier: finished with a full index")
            }
            Ok(Outcome::Removed) => {
                tracing::info!(path = %path.display(), "MP4 recording interrupted before its first fragment: removed")
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "MP4 recording interrupted earlier: could not be finished")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_and_finishes_only_unfinished_recordings() {
        use bytes::Bytes;
        use ferrocast_proto::mp4::Mp4Recorder;
        let dir = std::env::temp_dir().join(format!("ferrocast-repair-{}", std::process::id()));
        let day = dir.join("live/s/2026-12-03");
        std::fs::create_dir_all(&day).unwrap();
        // 0.2 s of ffmpeg's 160x90 H.264 + AAC (the proto crate's fixture), cut into
        // 30 ms fragments; what was written up to now is what a kill -9 leaves.
        let flv = Bytes::from_static(include_bytes!("../../../proto/tests/fixtures/tiny.flv"));
        let mut offset = ferrocast_proto::flv::read_file_header(&flv).unwrap();
        let mut rec = Mp4Recorder::new(true, true, 30);
        let mut out = Vec::new();
        while let Some((tag, next)) = ferrocast_proto::flv::read_tag(&flv, offset).unwrap() {
            match tag.tag_type {
                ferrocast_proto::flv::TAG_VIDEO => {
                    rec.write_video(tag.timestamp, &tag.body, &mut out)
                }
                ferrocast_proto::flv::TAG_AUDIO => {
                    rec.write_audio(tag.timestamp, &tag.body, &mut out)
                }
                _ => Ok(()),
            }
            .unwrap();
            offset = next;
        }
        let cut: Vec<u8> = out.concat();
        let unfinished = day.join("10-00-00.mp4");
        std::fs::write(&unfinished, &cut).unwrap();
        let mut fin_out = out.clone();
        let fin = rec.finish(&mut fin_out).unwrap();
        let mut done = fin_out.concat();
        done.extend_from_slice(&fin.trailer);
        for (at, b) in &fin.patches {
            done[*at as usize..*at as usize + 4].copy_from_slice(b);
        }
        std::fs::write(day.join("09-00-00.mp4"), &done).unwrap();
        // Killed before its first fragment: header only.
        let empty = day.join("11-00-00.mp4");
        let header_len = out[0].len();
        std::fs::write(&empty, &cut[..header_len]).unwrap();
        std::fs::write(day.join("notes.txt"), b"ftyp").unwrap();

        assert_eq!(
            find_interrupted(&dir),
            vec![unfinished.clone(), empty.clone()]
        );
        assert!(matches!(
            repair_file(&unfinished).unwrap(),
            Outcome::Repaired { samples, duration_ms } if samples > 0 && duration_ms > 0
        ));
        assert_eq!(repair_file(&empty).unwrap(), Outcome::Removed);
        assert!(!empty.exists());
        assert!(find_interrupted(&dir).is_empty());
        // What a repair makes is what a clean finish makes, less the samples that
        // had not been written.
        let repaired = std::fs::read(&unfinished).unwrap();
        assert_eq!(repaired[..header_len + 4], done[..header_len + 4]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
