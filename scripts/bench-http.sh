#!/usr/bin/env bash
# HLS and HTTP-FLV delivery benchmarks (issue 3), end to end. Prints one JSON line per
# run and a summary line per measurement; everything also goes to $OUT/results.jsonl.
# The method of each measurement is in BENCHMARKS.md ("HLS and HTTP-FLV delivery").
#
#   ./scripts/bench-http.sh                      # all steps
#   STEPS="latency wrk" ./scripts/bench-http.sh  # some of: start latency wrk cpu
#   NGINX_RTMP=0 ./scripts/bench-http.sh         # skip the nginx-rtmp HLS latency runs
#
# Steps (servers on loopback ports 1946x/1947x/1948x; every process started here is
# stopped on exit):
#   start    time from starting an ffmpeg publisher (-re, stream copy, 2 s GOP) to the
#            first playlist listing a segment, polled every 20 ms; REPEAT_START runs;
#            also with `ferrocast-bench publish` as the publisher (no ffmpeg start-up)
#            and against nginx-rtmp (NGINX_RTMP=1), interleaved.
#   latency  HTTP-FLV and HLS live latency against the wall clock stamped into
#            onMetaData by `ferrocast-bench publish --stamp-wallclock`; REPEAT_LAT runs
#            of LAT_DURATION s; also nginx-rtmp's HLS (NGINX_RTMP=1) interleaved.
#   wrk      segment requests/s: one live segment (~200 KB) from ferrocast's memory vs
#            the same bytes from disk by nginx (sendfile), `wrk -t2 -c50 -d10s`,
#            REPEAT_WRK interleaved pairs.
#   cpu      server CPU with CPU_STREAMS looping publishers for CPU_DURATION s, with
#            [hls] enabled = true vs false; REPEAT_CPU interleaved pairs.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh

STEPS="${STEPS:-start latency wrk cpu}"
REPEAT_START="${REPEAT_START:-7}"
REPEAT_LAT="${REPEAT_LAT:-5}"
LAT_DURATION="${LAT_DURATION:-20}"
REPEAT_WRK="${REPEAT_WRK:-3}"
WRK_ARGS="${WRK_ARGS:--t2 -c50 -d10s}"
REPEAT_CPU="${REPEAT_CPU:-3}"
CPU_STREAMS="${CPU_STREAMS:-10}"
CPU_DURATION="${CPU_DURATION:-30}"
NGINX_RTMP="${NGINX_RTMP:-1}"
OUT="${OUT:-target/bench-http}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
RESULTS="$OUT/results.jsonl"
: >"$RESULTS"
ulimit -n 65536 || true

RTMP_PORT=19460 HTTP_PORT=19461           # ferrocast
NGINX_HTTP_PORT=19481                     # plain nginx (wrk step)
NRTMP_PORT=19470 NRTMP_HTTP_PORT=19471    # nginx-rtmp (latency step)

command -v ffmpeg >/dev/null || { echo "ffmpeg missing (run scripts/test.sh once)" >&2; exit 1; }
command -v nginx >/dev/null || { echo "nginx missing (apt-get install nginx)" >&2; exit 1; }
if [[ " $STEPS " == *" wrk "* ]] && ! command -v wrk >/dev/null; then
  echo "installing wrk (Debian package)" >&2
  apt-get install -y wrk >&2 || { apt-get update >&2 && apt-get install -y wrk >&2; }
fi
if [ "$NGINX_RTMP" = 1 ] && [ ! -f /usr/lib/nginx/modules/ngx_rtmp_module.so ]; then
  echo "libnginx-mod-rtmp missing: skipping the nginx-rtmp runs" >&2
  NGINX_RTMP=0
fi

cargo build --release --locked -p ferrocast -p ferrocast-bench >&2
FERROCAST="${CARGO_TARGET_DIR:-target}/release/ferrocast"
BENCH="${CARGO_TARGET_DIR:-target}/release/ferrocast-bench"

# Every background process we start, for the exit trap.
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 60 s of 1280x720 30 fps H.264 (~700 kbit/s, GOP 2 s exactly, no scene cuts) and
# AAC 96 kbit/s: segments of ~200 KB at the default 2 s.
SRC="$OUT/src-800k.flv"
make_src_800k "$SRC"

# Prints a JSON object (stdin, possibly pretty) as one line with extra fields merged
# in front, and appends it to the results.
emit() { # extra-json
  python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d.update(json.load(sys.stdin)); print(json.dumps(d))' "$1" |
    tee -a "$RESULTS"
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TICKS=$(getconf CLK_TCK)

FC_PID=
start_ferrocast() { # [config file]
  local cfg=()
  [ -n "${1:-}" ] && cfg=(--config "$1")
  RUST_LOG=warn "$FERROCAST" "${cfg[@]}" --rtmp "127.0.0.1:$RTMP_PORT" --http "127.0.0.1:$HTTP_PORT" \
    --data-dir "$OUT/data" >>"$OUT/ferrocast.log" 2>&1 &
  FC_PID=$!
  PIDS+=("$FC_PID")
  wait_http "http://127.0.0.1:$HTTP_PORT/healthz"
}
stop_pid() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

NRTMP_PID=
start_nginx_rtmp() {
  local d="$OUT/nginx-rtmp"
  rm -rf "$d"; mkdir -p "$d/logs" "$d/hls"
  cat >"$d/nginx.conf" <<NGX
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
daemon off;
master_process off;
worker_processes 1;
error_log $d/logs/error.log crit;
pid $d/nginx.pid;
events { worker_connections 1024; }
rtmp { server { listen 127.0.0.1:$NRTMP_PORT; chunk_size 4096;
  application live { live on; hls on; hls_path $d/hls; hls_fragment 2s; hls_playlist_length 6s; } } }
http { access_log off; sendfile on;
  types { application/vnd.apple.mpegurl m3u8; video/mp2t ts; }
  server { listen 127.0.0.1:$NRTMP_HTTP_PORT; location /hls/ { alias $d/hls/; add_header Cache-Control no-cache; } } }
NGX
  nginx -c "$d/nginx.conf" -p "$d" &
  NRTMP_PID=$!
  PIDS+=("$NRTMP_PID")
  wait_http "http://127.0.0.1:$NRTMP_HTTP_PORT/"
}

NGINX_PID=
start_nginx_static() { # root dir
  local d="$OUT/nginx-static"
  mkdir -p "$d/logs"
  cat >"$d/nginx.conf" <<NGX
daemon off;
master_process on;
worker_processes auto;
error_log $d/logs/error.log crit;
pid $d/nginx.pid;
events { worker_connections 4096; }
http { sendfile on; access_log off;
  types { video/mp2t ts; }
  server { listen 127.0.0.1:$NGINX_HTTP_PORT; root $1; } }
NGX
  nginx -c "$d/nginx.conf" -p "$d" &
  NGINX_PID=$!
  PIDS+=("$NGINX_PID")
  wait_http "http://127.0.0.1:$NGINX_HTTP_PORT/"
}

# ---------------------------------------------------------------- machine and build
# Tracked files modified outside the bench itself: the measured server is exactly the
# commit only when this list is empty.
python3 - "$(date)" "$(git rev-parse --short HEAD)" \
  "$(git status --porcelain --untracked-files=no | awk '{print $2}' | grep -v -e '^crates/bench/' -e '^scripts/bench-http.sh$' | paste -sd, -)" \
  "$(lscpu | sed -n 's/^Model name: *//p' | head -1)" "$(nproc)" "$(uname -r)" \
  "$(nginx -v 2>&1 | sed 's/.*nginx\///')" "$(ffmpeg -version | head -1 | awk '{print $3}')" \
  "$(command -v wrk >/dev/null && dpkg-query -W -f='${Version}' wrk 2>/dev/null || echo none)" <<'PY' | tee -a "$RESULTS"
import json, sys
a = sys.argv[1:]
print(json.dumps({"step": "machine", "date": a[0], "commit": a[1], "modified_outside_bench": [f for f in a[2].split(",") if f],
                  "cpu_model": a[3], "vcpus": int(a[4]), "kernel": a[5], "nginx": a[6], "ffmpeg": a[7], "wrk": a[8]}))
PY

# ---------------------------------------------------------------- 1. first playlist
if [[ " $STEPS " == *" start "* ]]; then
  start_ferrocast
  [ "$NGINX_RTMP" = 1 ] && start_nginx_rtmp
  for r in $(seq "$REPEAT_START"); do
    s="fp$r-$RANDOM"
    "$BENCH" first-playlist "http://127.0.0.1:$HTTP_PORT/live/$s/hls.m3u8" --interval-ms 20 --timeout 15 -- \
      ffmpeg -loglevel error -re -i "$SRC" -c copy -f flv "rtmp://127.0.0.1:$RTMP_PORT/live/$s" |
      emit "{\"step\": \"first_playlist\", \"server\": \"ferrocast\", \"publisher\": \"ffmpeg\", \"run\": $r}"
    sleep 1
    s="fpb$r-$RANDOM"
    "$BENCH" first-playlist "http://127.0.0.1:$HTTP_PORT/live/$s/hls.m3u8" --interval-ms 20 --timeout 15 -- \
      "$BENCH" publish "rtmp://127.0.0.1:$RTMP_PORT/live/$s" -f "$SRC" --duration 10 |
      emit "{\"step\": \"first_playlist\", \"server\": \"ferrocast\", \"publisher\": \"ferrocast-bench\", \"run\": $r}"
    sleep 1
    if [ "$NGINX_RTMP" = 1 ]; then
      "$BENCH" first-playlist "http://127.0.0.1:$NRTMP_HTTP_PORT/hls/$s.m3u8" --interval-ms 20 --timeout 15 -- \
        ffmpeg -loglevel error -re -i "$SRC" -c copy -f flv "rtmp://127.0.0.1:$NRTMP_PORT/live/$s" |
        emit "{\"step\": \"first_playlist\", \"server\": \"nginx-rtmp\", \"publisher\": \"ffmpeg\", \"run\": $r}"
      sleep 1
    fi
  done
  stop_pid "$FC_PID"
  [ "$NGINX_RTMP" = 1 ] && stop_pid "$NRTMP_PID"
fi

# ---------------------------------------------------------------- 2. live latency
if [[ " $STEPS " == *" latency "* ]]; then
  start_ferrocast
  [ "$NGINX_RTMP" = 1 ] && start_nginx_rtmp
  for r in $(seq "$REPEAT_LAT"); do
    # ferrocast: HTTP-FLV and HLS readers on the same stream at the same time; the HLS
    # reader takes T0 from the stream's HTTP-FLV onMetaData.
    s="lat$r-$RANDOM"
    "$BENCH" publish "rtmp://127.0.0.1:$RTMP_PORT/live/$s" -f "$SRC" --duration $((LAT_DURATION + 5)) \
      --stamp-wallclock >"$OUT/publish.json" &
    pub=$!; PIDS+=("$pub")
    "$BENCH" latency "http://127.0.0.1:$HTTP_PORT/live/$s.live.flv" --duration "$LAT_DURATION" >"$OUT/lat-flv.json" &
    flv=$!; PIDS+=("$flv")
    "$BENCH" latency "http://127.0.0.1:$HTTP_PORT/live/$s/hls.m3u8" --duration "$LAT_DURATION" >"$OUT/lat-hls.json"
    wait "$flv"; wait "$pub"
    lag=$(jq .max_send_lag_ms "$OUT/publish.json")
    emit "{\"step\": \"latency\", \"server\": \"ferrocast\", \"run\": $r, \"publisher_max_send_lag_ms\": $lag}" <"$OUT/lat-flv.json"
    emit "{\"step\": \"latency\", \"server\": \"ferrocast\", \"run\": $r, \"publisher_max_send_lag_ms\": $lag}" <"$OUT/lat-hls.json"
    if [ "$NGINX_RTMP" = 1 ]; then
      # nginx-rtmp's TS muxer writes DTS = ts * 90 + 63000 (checked below on a fresh
      # stream's first fragment); HLS carries no onMetaData, so T0 comes from a file.
      s="nlat$r-$RANDOM"
      rm -f "$OUT/t0.txt"
      "$BENCH" publish "rtmp://127.0.0.1:$NRTMP_PORT/live/$s" -f "$SRC" --duration $((LAT_DURATION + 5)) \
        --stamp-wallclock --t0-file "$OUT/t0.txt" >"$OUT/publish.json" &
      pub=$!; PIDS+=("$pub")
      # The first fragment is complete once the second exists; nginx-rtmp deletes it
      # a few fragments later, so copy it while it is there.
      frag="$OUT/nginx-rtmp/hls/$s"
      (for i in $(seq 200); do [ -f "$frag-1.ts" ] && { cp "$frag-0.ts" "$OUT/nginx-first.ts" || true; break; }; sleep 0.05; done) &
      cp_pid=$!; PIDS+=("$cp_pid")
      rm -f "$OUT/nginx-first.ts"
      "$BENCH" latency "http://127.0.0.1:$NRTMP_HTTP_PORT/hls/$s.m3u8" --duration "$LAT_DURATION" \
        --t0-file "$OUT/t0.txt" --pts-offset-90k 63000 >"$OUT/lat-hls.json"
      wait "$cp_pid" || true
      first_dts=$(ffprobe -v error -select_streams v:0 -show_entries packet=dts -read_intervals '%+#1' -of csv=p=0 \
        "$OUT/nginx-first.ts" 2>/dev/null | head -1 | tr -dc 0-9)
      [[ "$first_dts" =~ ^[0-9]+$ ]] || first_dts=null
      wait "$pub"
      lag=$(jq .max_send_lag_ms "$OUT/publish.json")
      emit "{\"step\": \"latency\", \"server\": \"nginx-rtmp\", \"run\": $r, \"publisher_max_send_lag_ms\": $lag, \"first_fragment_first_video_dts_90k\": $first_dts}" <"$OUT/lat-hls.json"
    fi
  done
  stop_pid "$FC_PID"
  [ "$NGINX_RTMP" = 1 ] && stop_pid "$NRTMP_PID"
fi

# ---------------------------------------------------------------- 3. segment req/s
newest_segment() { # playlist url -> newest segment name ("" if none yet)
  { curl -sf "$1" || true; } | awk '!/^#/ && NF { last = $0 } END { print last }'
}
if [[ " $STEPS " == *" wrk "* ]]; then
  root="$OUT/nginx-root"; rm -rf "$root"; mkdir -p "$root"
  start_ferrocast
  start_nginx_static "$root"
  "$BENCH" publish "rtmp://127.0.0.1:$RTMP_PORT/live/seg" -f "$SRC" --loop >/dev/null &
  pub=$!; PIDS+=("$pub")
  pl="http://127.0.0.1:$HTTP_PORT/live/seg/hls.m3u8"
  for i in $(seq 100); do [ -n "$(newest_segment "$pl")" ] && break; sleep 0.2; done
  for r in $(seq "$REPEAT_WRK"); do
    # A segment that was just listed: it stays served for window + retain segments
    # (16 s at the defaults), longer than one wrk run.
    prev=$(newest_segment "$pl")
    for i in $(seq 200); do seg=$(newest_segment "$pl"); [ "$seg" != "$prev" ] && break; sleep 0.05; done
    curl -sf -o "$root/$seg" "http://127.0.0.1:$HTTP_PORT/live/seg/$seg"
    size=$(stat -c %s "$root/$seg")
    # shellcheck disable=SC2086
    wrk $WRK_ARGS "http://127.0.0.1:$HTTP_PORT/live/seg/$seg" | wrk_json |
      emit "{\"step\": \"wrk\", \"server\": \"ferrocast\", \"run\": $r, \"segment\": \"$seg\", \"segment_bytes\": $size, \"wrk_args\": \"$WRK_ARGS\"}"
    # shellcheck disable=SC2086
    wrk $WRK_ARGS "http://127.0.0.1:$NGINX_HTTP_PORT/$seg" | wrk_json |
      emit "{\"step\": \"wrk\", \"server\": \"nginx\", \"run\": $r, \"segment\": \"$seg\", \"segment_bytes\": $size, \"wrk_args\": \"$WRK_ARGS\"}"
  done
  stop_pid "$pub"; stop_pid "$FC_PID"; stop_pid "$NGINX_PID"
fi

# ---------------------------------------------------------------- 4. HLS muxing CPU
if [[ " $STEPS " == *" cpu "* ]]; then
  for r in $(seq "$REPEAT_CPU"); do
    for hls in true false; do
      printf '[hls]\nenabled = %s\n' "$hls" >"$OUT/hls-$hls.toml"
      start_ferrocast "$OUT/hls-$hls.toml"
      "$BENCH" publish "rtmp://127.0.0.1:$RTMP_PORT/live/cpu" -f "$SRC" -n "$CPU_STREAMS" --loop \
        --duration $((CPU_DURATION + 6)) >"$OUT/publish.json" &
      pub=$!; PIDS+=("$pub")
      sleep 3
      c0=$(cpu_ticks "$FC_PID"); n0=$(cpu_ns "$FC_PID")
      sleep "$CPU_DURATION"
      c1=$(cpu_ticks "$FC_PID"); n1=$(cpu_ns "$FC_PID")
      seg=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HTTP_PORT/live/cpu_0/hls.m3u8")
      wait "$pub"
      stop_pid "$FC_PID"
      python3 -c 'import json,sys; a = [int(x) for x in sys.argv[1:]]; print(json.dumps({"cpu_s": round((a[4] - a[3]) / 1e9, 3), "cpu_s_ticks": round((a[1] - a[0]) / a[2], 2)}))' \
        "$c0" "$c1" "$TICKS" "$n0" "$n1" |
        emit "{\"step\": \"cpu\", \"server\": \"ferrocast\", \"run\": $r, \"hls\": $hls, \"streams\": $CPU_STREAMS, \"window_s\": $CPU_DURATION, \"playlist_status\": $seg, \"publishers_connected\": $(jq .connected "$OUT/publish.json"), \"publisher_max_send_lag_ms\": $(jq .max_send_lag_ms "$OUT/publish.json")}"
    done
  done
fi

# ---------------------------------------------------------------- summary
python3 - "$RESULTS" <<'PY' | tee -a "$RESULTS"
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def med(xs):
    xs = [x for x in xs if x is not None]
    return round(statistics.median(xs), 1) if xs else None
def of(step, **kw):
    return [r for r in rows if r.get("step") == step and all(r.get(k) == v for k, v in kw.items())]

for server, publisher in (("ferrocast", "ffmpeg"), ("ferrocast", "ferrocast-bench"), ("nginx-rtmp", "ffmpeg")):
    fp = of("first_playlist", server=server, publisher=publisher)
    if fp:
        ms = [r["playlist_ms"] for r in fp]
        print(json.dumps({"summary": "first_playlist", "server": server, "publisher": publisher, "runs": len(fp),
                          "failed": sum(r["error"] is not None for r in fp),
                          "playlist_ms_median": med(ms), "playlist_ms_max": max((m for m in ms if m is not None), default=None),
                          "first_segment_ms_median": med([r["first_segment_ms"] for r in fp]),
                          "target_ms": 2500}))
for server in ("ferrocast", "nginx-rtmp"):
    flv = of("latency", server=server, mode="http-flv")
    if flv:
        print(json.dumps({"summary": "http_flv_latency", "server": server, "runs": len(flv),
                          "p50_ms_median": med([r["latency_ms"]["p50"] for r in flv]),
                          "p95_ms_median": med([r["latency_ms"]["p95"] for r in flv]),
                          "max_ms_max": max(r["latency_ms"]["max"] or 0 for r in flv),
                          "frames_measured": sum(r["frames_measured"] for r in flv), "target_ms": 500}))
    hls = of("latency", server=server, mode="hls")
    if hls:
        out = {"summary": "hls_latency", "server": server, "runs": len(hls),
               "segments_measured": sum(r["segments_measured"] for r in hls),
               "edge_p50_ms_median": med([r["edge_ms"]["p50"] for r in hls]),
               "edge_max_ms_max": max(r["edge_ms"]["max"] or 0 for r in hls),
               "after_segment_end_p50_ms_median": med([r["after_segment_end_ms"]["p50"] for r in hls]),
               "target_ms": 6000}
        for k in sorted(hls[0]["player_ms"]):
            out[f"player_{k}_p50_ms_median"] = med([r["player_ms"][k]["p50"] for r in hls])
            out[f"player_{k}_max_ms_max"] = max(r["player_ms"][k]["max"] or 0 for r in hls)
        print(json.dumps(out))
fc, ng = of("wrk", server="ferrocast"), of("wrk", server="nginx")
if fc and ng:
    f_rps, n_rps = med([r["requests_per_s"] for r in fc]), med([r["requests_per_s"] for r in ng])
    f_tr, n_tr = med([r["transfer_mb_per_s"] for r in fc]), med([r["transfer_mb_per_s"] for r in ng])
    print(json.dumps({"summary": "segment_wrk", "runs": len(fc), "ferrocast_req_s_median": f_rps, "nginx_req_s_median": n_rps,
                      "ferrocast_over_nginx": round(f_rps / n_rps, 2), "ferrocast_mb_s_median": f_tr, "nginx_mb_s_median": n_tr,
                      "non_2xx": sum(r["non_2xx"] for r in fc + ng)}))
on, off = of("cpu", hls=True), of("cpu", hls=False)
if on and off:
    n, w = on[0]["streams"], on[0]["window_s"]
    pairs = [a["cpu_s"] - b["cpu_s"] for a, b in zip(on, off)]
    print(json.dumps({"summary": "hls_cpu", "runs": len(pairs), "streams": n, "window_s": w,
                      "cpu_s_hls_on_median": round(statistics.median([r["cpu_s"] for r in on]), 3),
                      "cpu_s_hls_off_median": round(statistics.median([r["cpu_s"] for r in off]), 3),
                      "diff_per_pair": [round(p, 3) for p in pairs],
                      "core_share_per_stream_median_pct": round(statistics.median(pairs) / n / w * 100, 3)}))
PY
