#!/usr/bin/env bash
# Runs every ferrocast test on a fresh Debian machine with Rust:
#   1. installs the real peers the tests talk to (ffmpeg/ffprobe, rtmpdump, nginx with
#      the RTMP module, Chromium, GStreamer's RTSP server) with apt-get, and cargo-fuzz
#      with cargo, when missing;
#   2. static checks: rustfmt, clippy with warnings as errors, the server's module
#      layering (scripts/check-layers.py);
#   3. unit, property and end-to-end tests (cargo test, whole workspace);
#   4. the README's quick start, run literally (scripts/quickstart.sh);
#   5. every fuzz target for FUZZ_SECONDS (default 30) each; a crash fails the run.
# Nothing is skipped: a peer that cannot be installed fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS="${FUZZ_SECONDS:-30}"
log() { printf '\n==> %s\n' "$*"; }

# --- 1. system packages --------------------------------------------------------
need=()
command -v ffmpeg >/dev/null 2>&1 || need+=(ffmpeg)
command -v ffprobe >/dev/null 2>&1 || need+=(ffmpeg)
command -v rtmpdump >/dev/null 2>&1 || need+=(rtmpdump)
command -v nginx >/dev/null 2>&1 || need+=(nginx)
[ -f /usr/lib/nginx/modules/ngx_rtmp_module.so ] || need+=(libnginx-mod-rtmp)
# nginx's stream module terminates TLS in front of nginx-rtmp for the rtmps:// test,
# whose certificates openssl makes.
[ -f /usr/lib/nginx/modules/ngx_stream_module.so ] || need+=(libnginx-mod-stream)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# npm: build.rs fetches the player page's scripts, and the browser test needs it.
command -v npm >/dev/null 2>&1 || need+=(nodejs npm)
# Headless browser for crates/server/tests/browser.rs (Debian's build plays H.264/AAC).
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# prlimit (util-linux) runs the server under a file-size limit: the full-disk test.
command -v prlimit >/dev/null 2>&1 || need+=(util-linux)
# GStreamer's RTSP server, run by tests/rtsp/rtsp_server.py for the RTSP pull tests:
# x264enc (ugly), voaacenc/x265enc (bad), avenc_aac (libav), payloaders (good).
for p in python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base \
         gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly gstreamer1.0-plugins-bad \
         gstreamer1.0-libav; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  log "installing system packages: ${need[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${need[@]}"
fi
for tool in ffmpeg ffprobe rtmpdump nginx npm; do
  command -v "$tool" >/dev/null 2>&1 || { echo "missing $tool after install" >&2; exit 1; }
done
command -v chromium >/dev/null 2>&1 || { echo "missing chromium after install" >&2; exit 1; }
/usr/bin/python3 -c "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer" \
  || { echo "GStreamer RTSP server bindings missing after install" >&2; exit 1; }

if ! cargo fuzz --version >/dev/null 2>&1; then
  log "installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

# playwright-core for the browser test, at the version pinned in tests/browser's lock
# file; it drives /usr/bin/chromium and never downloads a browser of its own.
log "npm ci in tests/browser"
npm ci --prefix tests/browser --no-audit --no-fund

# --- 2. static checks -------------------------------------------------------------
log "cargo fmt --all --check"
cargo fmt --all --check
log "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
log "module layering"
python3 scripts/check-layers.py

# --- 3. unit, property and end-to-end tests -------------------------------------
log "cargo test --workspace"
# Two test threads: the end-to-end tests run real encoders on a 2-core machine.
cargo test --workspace --locked -- --test-threads=2

# --- 4. the README's quick start ---------------------------------------------------
log "README quick start"
./scripts/quickstart.sh

# --- 5. fuzzing -----------------------------------------------------------------
# cargo fuzz needs nightly features; RUSTC_BOOTSTRAP lets the stable toolchain build it.
log "fuzzing each target for ${FUZZ_SECONDS}s"
targets=$(cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz list)
for t in $targets; do
  log "fuzz target $t"
  mkdir -p "fuzz/corpus/$t"
  # Committed seeds (fuzz/corpus is the fuzzer's own, not committed).
  if [ -d "fuzz/seeds/$t" ]; then cp -n "fuzz/seeds/$t"/* "fuzz/corpus/$t/"; fi
  (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run "$t" -- -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 2>&1 | tail -n 5)
done

log "all tests passed"
