#!/usr/bin/env bash
# RTMP fan-out benchmark: ferrocast and nginx-rtmp measured in the same run by the same
# load generator (ferrocast-bench). Prints one JSON line per (server, players) run and
# a Markdown table for BENCHMARKS.md.
#
#   ./scripts/bench.sh [PLAYERS...]        default: 10 100 1000
#   DURATION=20 REPEAT=3 ./scripts/bench.sh 100
#   SERVERS=ferrocast FERROCAST_CONFIG=flush0.toml ./scripts/bench.sh 1000
#
# For each server and player count: one publisher pushes a ~2 Mbit/s H.264+AAC file
# (stream copy, real time), N players play it for DURATION seconds; we read the
# server's CPU time (utime+stime of all its processes, /proc) and RSS before and after.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh

PLAYERS=("${@:-10 100 1000}")
[ $# -eq 0 ] && PLAYERS=(10 100 1000)
DURATION="${DURATION:-20}"
REPEAT="${REPEAT:-3}"
OUT="${OUT:-target/bench}"
mkdir -p "$OUT"
ulimit -n 65536 || true

command -v ffmpeg >/dev/null || { echo "ffmpeg missing (run scripts/test.sh once)" >&2; exit 1; }
[ -f /usr/lib/nginx/modules/ngx_rtmp_module.so ] || { echo "libnginx-mod-rtmp missing" >&2; exit 1; }

cargo build --release --locked -p ferrocast -p ferrocast-bench >&2
FERROCAST="${CARGO_TARGET_DIR:-target}/release/ferrocast"
BENCH="${CARGO_TARGET_DIR:-target}/release/ferrocast-bench"

SRC="$OUT/src-2mbit.flv"
make_src_2mbit "$SRC"

cpu_ticks() { # sum utime+stime over pids
  local t=0
  for p in "$@"; do
    [ -r "/proc/$p/stat" ] || continue
    t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  echo "$t"
}
rss_kb() { local t=0; for p in "$@"; do t=$((t + $(awk '/VmRSS/{print $2}' "/proc/$p/status" 2>/dev/null || echo 0))); done; echo "$t"; }
TICKS=$(getconf CLK_TCK)

start_ferrocast() {
  local cfg=()
  [ -n "${FERROCAST_CONFIG:-}" ] && cfg=(--config "$FERROCAST_CONFIG")
  RUST_LOG=warn "$FERROCAST" "${cfg[@]}" --rtmp 127.0.0.1:19360 --http 127.0.0.1:19361 --data-dir "$OUT/data" >"$OUT/ferrocast.log" 2>&1 &
  SERVER_PIDS=($!)
  PORT=19360
}
start_nginx() {
  local d="$OUT/nginx"; mkdir -p "$d/logs"
  cat >"$d/nginx.conf" <<NGX
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
daemon off;
master_process off;
worker_processes 1;
error_log $PWD/$d/logs/error.log warn;
pid $PWD/$d/nginx.pid;
events { worker_connections 65536; }
rtmp { server { listen 127.0.0.1:19370; chunk_size 4096; application live { live on; wait_key on; } } }
NGX
  nginx -c "$PWD/$d/nginx.conf" -p "$PWD/$d" &
  SERVER_PIDS=($!)
  PORT=19370
}

run_one() { # server players
  local server=$1 n=$2
  "start_$server"
  sleep 1
  ffmpeg -loglevel error -re -stream_loop -1 -i "$SRC" -c copy -f flv "rtmp://127.0.0.1:$PORT/live/bench" &
  local pub=$!
  sleep 3
  local rss0 cpu0 cpu1 rss1 json
  rss0=$(rss_kb "${SERVER_PIDS[@]}")
  cpu0=$(cpu_ticks "${SERVER_PIDS[@]}")
  "$BENCH" play "rtmp://127.0.0.1:$PORT/live/bench" -n "$n" --duration "$DURATION" --ramp 200 --expect-kbps 2000 >"$OUT/bench.json" &
  local bench=$!
  sleep $((DURATION * 3 / 4))   # every player connected (ramp 200/s), stream flowing
  rss1=$(rss_kb "${SERVER_PIDS[@]}")
  wait "$bench"
  cpu1=$(cpu_ticks "${SERVER_PIDS[@]}")
  json=$(cat "$OUT/bench.json")
  kill "$pub" 2>/dev/null || true
  kill "${SERVER_PIDS[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  python3 - "$server" "$n" "$cpu0" "$cpu1" "$TICKS" "$rss0" "$rss1" "$json" <<'PY'
import json, sys
server, n, c0, c1, ticks, r0, r1, j = sys.argv[1:]
j = json.loads(j)
cpu_s = (int(c1) - int(c0)) / int(ticks)
gb = j["bytes_total"] / 1e9
print(json.dumps({
  "server": server, "config": __import__("os").environ.get("FERROCAST_CONFIG", "") if server == "ferrocast" else "", "players": int(n), "connected": j["connected"], "failed": j["failed"],
  "cpu_s": round(cpu_s, 2), "delivered_gb": round(gb, 3),
  "cpu_s_per_gb": round(cpu_s / gb, 2) if gb > 0 else None,
  "rss_per_player_kb": round((int(r1) - int(r0)) / int(n), 1),
  "share_ge_90pct": j["players_at_ge_90pct"],
  "ttff_p50_ms": j["first_video_frame_ms"]["p50"], "ttff_p95_ms": j["first_video_frame_ms"]["p95"],
  "first_frame_keyframe_all": j["first_video_is_keyframe"]["all"],
}))
PY
}

for n in "${PLAYERS[@]}"; do
  for r in $(seq "$REPEAT"); do
    for s in ${SERVERS:-ferrocast nginx}; do
      run_one "$s" "$n" | tee -a "$OUT/results.jsonl"
    done
  done
done
