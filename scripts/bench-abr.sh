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
#   DURATION=30 MAX_N=3 PRESET=veryfast ./scripts/bench-abr.sh
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
cpu_of() { awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
frames_of() { api getMediaList "schema=rtmp&app=live&stream=$1" | json "d['data'][0]['tracks'][0]['frames'] if d.get('data') else 0"; }

{
  echo "# ferrocast ABR benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo "# default ladder on a 1280x720 25 fps source (renditions 480p 1200k + 360p 600k), libx264 preset $PRESET, ${DURATION}s window after ${WARMUP}s warm-up"
  echo "# n  ffmpeg_cpu_cores_per_ladder(each)  ferrocast_server_cpu_cores  rendition_fps(min)  realtime"
} | tee "$OUT/results.txt"

for n in $(seq 1 "$MAX_N"); do
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
  list=$(api listTranscode "")
  declare -A CPU0 F0
  for i in $(seq 1 "$n"); do
    pid=$(echo "$list" | json "[t['pid'] for t in d['data'] if t['key'].endswith('/s$i')][0]")
    CPU0[$i]=$(cpu_of "$pid"); PID[$i]=$pid
    for r in 480p 360p; do F0[$i$r]=$(frames_of "s${i}_$r"); done
  done
  S0=$(cpu_of "$SERVER")
  sleep "$DURATION"
  S1=$(cpu_of "$SERVER")
  scpu=$(python3 -c "print(round(($S1-$S0)/$TICK/$DURATION, 3))")
  cpus=(); minfps=1000
  for i in $(seq 1 "$n"); do
    c1=$(cpu_of "${PID[$i]}")
    cpus+=("$(python3 -c "print(round(($c1-${CPU0[$i]})/$TICK/$DURATION, 2))")")
    for r in 480p 360p; do
      f1=$(frames_of "s${i}_$r")
      fps=$(python3 -c "print(round(($f1-${F0[$i$r]})/$DURATION, 1))")
      minfps=$(python3 -c "print(min($minfps, $fps))")
    done
  done
  rt=$(python3 -c "print('yes' if $minfps >= 0.97*25 else 'no')")
  echo "$n  ${cpus[*]}  $scpu  $minfps  $rt" | tee -a "$OUT/results.txt"
  for i in $(seq 1 "$n"); do api stopTranscode "app=live&stream=s$i" >/dev/null; done
  for p in "${PUBS[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 3
done
