//! Fetches the player page's JavaScript (hls.js, mpegts.js) from npm at the versions
//! pinned in `web/package-lock.json`, into OUT_DIR, so the binary can embed them and
//! the page works with no internet access at run time. Needs `npm` at build time.

use std::path::{Path, PathBuf};
use std::process::Command;

const VENDOR: &[&str] = &["hls.js/dist/hls.min.js", "mpegts.js/dist/mpegts.js"];

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let web = manifest.join("../../web");
    for f in [
        "package.json",
        "package-lock.json",
        "index.html",
        "player.js",
        "player.css",
    ] {
        println!("cargo:rerun-if-changed={}", web.join(f).display());
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("web");
    std::fs::create_dir_all(&out).unwrap();
    let lock = std::fs::read(web.join("package-lock.json")).expect("web/package-lock.json");
    let stamp = out.join("package-lock.json");
    let fresh = std::fs::read(&stamp).ok().as_deref() == Some(&lock[..])
        && VENDOR
            .iter()
            .all(|v| out.join("node_modules").join(v).exists());
    if !fresh {
        std::fs::copy(web.join("package.json"), out.join("package.json")).unwrap();
        std::fs::write(&stamp, &lock).unwrap();
        let status = Command::new("npm")
            .args([
                "ci",
                "--no-audit",
                "--no-fund",
                "--ignore-scripts",
                "--loglevel=error",
            ])
            .current_dir(&out)
            .status();
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => panic!("`npm ci` for the player page failed ({s}); npm must reach its registry at build time"),
            Err(e) => panic!("cannot run npm ({e}): install Node.js and npm to build ferrocast's player page"),
        }
    }
    for v in VENDOR {
        let p = out.join("node_modules").join(v);
        assert!(Path::new(&p).exists(), "missing {}", p.display());
    }
}
