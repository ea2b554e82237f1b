//! Retention: deleting the oldest finished MP4 recordings (`record.delete_after_s`,
//! `record.max_disk_bytes`).
//!
//! A periodic pass lists every `.mp4` under the record directory (the tree that
//! `customized_path` recordings share), oldest first by modification time, and
//! deletes those older than `delete_after_s`, then the oldest until the total
//! size fits `max_disk_bytes`. Files being written or finished by this server
//! ([`super::OpenFiles`]) and unfinished ones waiting for their repair are counted
//! in the total but never deleted. The choice is a pure function ([`choose`]), the
//! pass only lists and deletes. HLS recordings (directories of segments) are left
//! alone: deleting part of one would break its playlist.
//!
//! Modification time, not the name, says how old a file is: it is when the file
//! was last written (its end), names are in UTC and customized paths may mix trees.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Retention settings (0 = off for each).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Retention {
    pub delete_after_s: u64,
    pub max_disk_bytes: u64,
}

impl Retention {
    pub(crate) fn enabled(&self) -> bool {
        self.delete_after_s > 0 || self.max_disk_bytes > 0
    }

    /// Time between passes: half of `delete_after_s` (1 s to 60 s), or 10 s for
    /// the size cap alone (a disk fills faster than a day passes).
    pub(crate) fn interval(&self) -> Duration {
        if self.delete_after_s > 0 {
            Duration::from_secs((self.delete_after_s / 2).clamp(1, 60))
        } else {
            Duration::from_secs(10)
        }
    }
}

/// One recording file seen by a pass.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FileInfo {
    pub path: PathBuf,
    pub size: u64,
    pub modified: SystemTime,
    /// Being written, finished or repaired: counted, never deleted.
    pub busy: bool,
}

/// Which files to delete, oldest first.
pub(crate) fn choose(mut files: Vec<FileInfo>, now: SystemTime, r: Retention) -> Vec<PathBuf> {
    files.sort_by(|a, b| a.modified.cmp(&b.modified).then(a.path.cmp(&b.path)));
    let mut total: u64 = files.iter().map(|f| f.size).sum();
    let mut out = Vec::new();
    for f in files.iter().filter(|f| !f.busy) {
        let age = now.duration_since(f.modified).unwrap_or(Duration::ZERO);
        let too_old = r.delete_after_s > 0 && age.as_secs() >= r.delete_after_s;
        let too_big = r.max_disk_bytes > 0 && total > r.max_disk_bytes;
        if !(too_old || too_big) {
            // Sorted by age: nothing later is older, and the size already fits.
            break;
        }
        total -= f.size;
        out.push(f.path.clone());
    }
    out
}

/// Every `.mp4` under `root` with its size and modification time (blocking).
fn list(root: &Path, open: &super::OpenFiles) -> Vec<FileInfo> {
    let open = open.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut out = Vec::new();
    let mut dirs = vec![(root.to_path_buf(), 0usize)];
    while let Some((dir, depth)) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(t) = e.file_type() else { continue };
            let path = e.path();
            if t.is_dir() && depth < 12 {
                dirs.push((path, depth + 1));
            } else if t.is_file() && path.extension().is_some_and(|x| x == "mp4") {
                let Ok(meta) = e.metadata() else { continue };
                let busy = open.contains(&path) || super::repair::is_interrupted(&path);
                out.push(FileInfo {
                    size: meta.len(),
                    modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                    busy,
                    path,
                });
            }
        }
    }
    out
}

/// One pass: deletes what [`choose`] picks (blocking). Returns the paths deleted.
pub(crate) fn pass(root: &Path, open: &super::OpenFiles, r: Retention) -> Vec<PathBuf> {
    let files = list(root, open);
    let mut deleted = Vec::new();
    for path in choose(files, SystemTime::now(), r) {
        // Checked again: a recording may have started on this name since the listing.
        if open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&path)
        {
            continue;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => {
                tracing::info!(path = %path.display(), "recording deleted by retention (record.delete_after_s / record.max_disk_bytes)");
                crate::metrics::recording_deleted();
                // The day directory goes when its last file does (fails if not empty).
                if let Some(dir) = path.parent() {
                    let _ = std::fs::remove_dir(dir);
                }
                deleted.push(path);
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "retention could not delete a recording")
            }
        }
    }
    deleted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, size: u64, age_s: u64, busy: bool, now: SystemTime) -> FileInfo {
        FileInfo {
            path: PathBuf::from(name),
            size,
            modified: now - Duration::from_secs(age_s),
            busy,
        }
    }

    #[test]
    fn oldest_finished_files_go_first() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let files = vec![
            file("c", 100, 10, false, now),
            file("a", 100, 300, false, now),
            file("busy-old", 100, 500, true, now),
            file("b", 100, 200, false, now),
        ];
        let off = Retention::default();
        assert!(!off.enabled());
        assert!(choose(files.clone(), now, off).is_empty());
        let by_age = Retention {
            delete_after_s: 150,
            max_disk_bytes: 0,
        };
        assert_eq!(
            choose(files.clone(), now, by_age),
            ["a", "b"].map(PathBuf::from)
        );
        // 400 bytes, 250 allowed: the two oldest finished ones (the busy one counts
        // but stays).
        let by_size = Retention {
            delete_after_s: 0,
            max_disk_bytes: 250,
        };
        assert_eq!(
            choose(files.clone(), now, by_size),
            ["a", "b"].map(PathBuf::from)
        );
        let fits = Retention {
            delete_after_s: 0,
            max_disk_bytes: 400,
        };
        assert!(choose(files.clone(), now, fits).is_empty());
        // Everything that is not busy can go; the busy file alone is over the cap.
        let tiny = Retention {
            delete_after_s: 0,
            max_disk_bytes: 1,
        };
        assert_eq!(choose(files, now, tiny), ["a", "b", "c"].map(PathBuf::from));
        assert_eq!(by_age.interval(), Duration::from_secs(60));
        assert_eq!(
            Retention {
                delete_after_s: 4,
                max_disk_bytes: 0
            }
            .interval(),
            Duration::from_secs(2)
        );
    }
}
