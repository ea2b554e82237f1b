#!/usr/bin/env bash
# ABR benchmark (issue 6): CPU per transcoded stream for the `default` ladder (a 720p
# source gives 480p + 360p) at libx264 $PRESET, and how many such ladders run at once
# in real time on this machine, and the server's own CPU meanwhile.
#
# For N = 1..MAX_N: N ffmpeg publishers stream-copy a pre-encoded 720p/25 fps file
# into ferrocast, startTranscode runs the ladder on each, and after a warm-up the
# script samples, over DURATION seconds,
#   - the CPU time (utime+stime from /proc) of each transcoding ffmpeg (listTranscode's pid),
#   - the frames each rendition stream received (getMediaList `frames`), as fps.
# A ladder is "real time" when every rendition gets >= 97% of the source's 25 fps.
#
#   DURATION=30 MAX_N=3 PRESET=veryfast ./scripts/bench-abr.sh   (START_N=5 MAX_N=7: only N = 5..7)
# Results go to $OUT (default benchmarks/abr-<UTC time>/): results.txt and the server log.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-30}"
MAX_N="${MAX_N:-3}"
PRESET="${PRESET:-veryfast}"
WARMUP="${WARMUP:-10}"
OUT="${OUT:-benchmarks/abr-$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$OUT"
RTMP=127.0.0.1:19391
HTTP=127.0.0.1:18391
SECRET=bench
API="http://$HTTP/index/api"
TICK=$(getconf CLK_TCK)

cargo build --release -p ferrocast >/dev/null
SRC=target/bench-media/src-1280x720-25fps-g50.flv
if [ ! -f "$SRC" ]; then
  mkdir -p "$(dirname "$SRC")"
  ffmpeg -nostdin -loglevel error -y -f lavfi -i testsrc2=size=1280x720:rate=25 \
    -f lavfi -i sine=frequency=440:sample_rate=44100 -t 20 -c:v libx264 -preset veryfast \
    -b:v 3000k -g 50 -keyint_min 50 -sc_threshold 0 -pix_fmt yuv420p -c:a aac -b:a 128k \
    -f flv "$SRC.tmp" && mv "$SRC.tmp" "$SRC"
fi

cat >"$OUT/ferrocast.toml" <<EOF
[api]
secret = "$SECRET"
[transcode]
max_concurrent = $MAX_N
preset = "$PRESET"
EOF
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
target/release/ferrocast --config "$OUT/ferrocast.toml" --rtmp $RTMP --http $HTTP \
  --data-dir "$OUT/data" >"$OUT/ferrocast.log" 2>&1 &
SERVER=$!
PIDS+=($SERVER)
sleep 1

api() { curl -s "$API/$1?secret=$SECRET&$2"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

{
  echo "# ferrocast ABR benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo "# default ladder on a 1280x720 25 fps source (renditions 480p 1200k + 360p 600k), libx264 preset $PRESET, ${DURATION}s window after ${WARMUP}s warm-up"
  echo "# n  ffmpeg_cpu_cores_per_ladder(each)  ferrocast_server_cpu_cores  rendition_fps(min)  realtime"
} | tee "$OUT/results.txt"

for n in $(seq "${START_N:-1}" "$MAX_N"); do
  PUBS=()
  for i in $(seq 1 "$n"); do
    ffmpeg -nostdin -loglevel error -re -stream_loop -1 -i "$SRC" -c copy -f flv "rtmp://$RTMP/live/s$i" &
    PUBS+=($!)
  done
  sleep 2
  for i in $(seq 1 "$n"); do
    r=$(api startTranscode "app=live&stream=s$i&ladder=default" | json "d['code']")
    [ "$r" = 0 ] || { echo "startTranscode s$i failed" >&2; exit 1; }
  done
  sleep "$WARMUP"
  # One sample = one pass over /proc and one getMediaList, stamped with the wall
  # clock; rates are deltas over the measured wall time between the two samples.
  python3 - "$API" "$SECRET" "$SERVER" "$n" "$DURATION" "$TICK" >>"$OUT/results.txt" <<'PY'
import json, sys, time, urllib.request
api, secret, server, n, duration, tick = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
def call(name):
    with urllib.request.urlopen(f"{api}/{name}?secret={secret}") as r:
        return json.load(r)
def cpu(pid):
    try:
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / tick
    except OSError:
        return None
def sample():
    pids = {t["stream"]: t["pid"] for t in call("listTranscode")["data"]}
    frames = {m["stream"]: m["tracks"][0]["frames"] for m in call("getMediaList")["data"]
              if m["schema"] == "rtmp" and m["tracks"]}
    return time.monotonic(), pids, {s: cpu(p) for s, p in pids.items()}, cpu(server), frames
t0, pids0, c0, s0, f0 = sample()
time.sleep(duration)
t1, pids1, c1, s1, f1 = sample()
wall = t1 - t0
per = []
for s in sorted(pids0):
    if pids1.get(s) != pids0[s] or c0[s] is None or c1.get(s) is None:
        per.append("restarted")
    else:
        per.append(f"{(c1[s] - c0[s]) / wall:.2f}")
fps = [(f1[k] - f0[k]) / wall for k in f0 if "_" in k and k in f1]
minfps = min(fps) if fps else 0.0
rt = "yes" if fps and minfps >= 0.97 * 25 and "restarted" not in per else "no"
line = f"{n}  {' '.join(per)}  {(s1 - s0) / wall:.3f}  {minfps:.1f}  {rt}"
print(line)
print(line, file=sys.stderr)
PY
  for i in $(seq 1 "$n"); do api stopTranscode "app=live&stream=s$i" >/dev/null; done
  for p in "${PUBS[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 3
done
