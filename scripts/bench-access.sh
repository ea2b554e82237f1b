#!/usr/bin/env bash
# Access-control benchmark (issue 11): what hooks and signed URLs cost. Prints one JSON
# line per run and a summary line per measurement, all appended to $RESULTS.
# The method and the figures are in BENCHMARKS.md ("Access control: hooks and signed
# URLs (issue 11)").
#
#   ./scripts/bench-access.sh                   # all steps, 3 interleaved pairs each
#   STEPS="hls" REPEAT=1 ./scripts/bench-access.sh
#
# Steps (ferrocast on 127.0.0.1:19560 (RTMP) / 19561 (HTTP), restarted for every run;
# the hook receiver, scripts/hook-receiver.py, on 19562 answers {"code":0} after
# HOOK_DELAY_MS; every process started here is stopped on exit):
#   play     PLAY_N `ferrocast-bench play` players joining at PLAY_RAMP/s a stream that
#            ffmpeg publishes (-re -stream_loop -1 -c copy, the fan-out benchmark's
#            2 Mbit/s file), PLAY_DURATION s, with `hook.on_play` vs hooks off. Join
#            time = the bench's first_video_frame_ms (TCP connect -> first video
#            frame); admitted = players that got Play.Start and video.
#   publish  PUB_N `ferrocast-bench publish` publishers (one stream each) at PUB_RAMP/s
#            with `hook.on_publish` vs hooks off: the bench's publish_start_ms (TCP
#            connect -> NetStream.Publish.Start).
#   hls      one live segment loaded by `wrk $WRK_ARGS`: signed (auth.play = "signed";
#            the URI comes from `ferrocast sign` -> master playlist -> media playlist,
#            with its ?session= token) vs open (the same path, no token, default config);
#            also the server's CPU time per request over the wrk run. HLS_ORDER sets
#            the order within each pair ("signed open" or "open signed").
#   hlsalt   the same two URLs served at once by two servers (signed on 19561, open on
#            19571), loaded in alternation, ALT_ROUNDS x (signed, open) of `wrk
#            $ALT_WRK_ARGS`: machine load that drifts over minutes hits both alike.
# Each invocation appends a "machine" line, its runs, and summaries of its own runs.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh

STEPS="${STEPS:-play publish hls hlsalt}"
REPEAT="${REPEAT:-3}"
HOOK_DELAY_MS="${HOOK_DELAY_MS:-5}"
PLAY_N="${PLAY_N:-1000}" PLAY_RAMP="${PLAY_RAMP:-200}" PLAY_DURATION="${PLAY_DURATION:-20}"
PUB_N="${PUB_N:-200}" PUB_RAMP="${PUB_RAMP:-50}" PUB_DURATION="${PUB_DURATION:-8}"
WRK_ARGS="${WRK_ARGS:--t2 -c50 -d15s}"
HLS_ORDER="${HLS_ORDER:-signed open}"
ALT_ROUNDS="${ALT_ROUNDS:-8}" ALT_WRK_ARGS="${ALT_WRK_ARGS:--t2 -c50 -d5s}"
OUT="${OUT:-target/bench-access}"
RESULTS="${RESULTS:-benchmarks/$(date -u +%F)-access.jsonl}"
mkdir -p "$OUT" "$(dirname "$RESULTS")"
OUT="$(cd "$OUT" && pwd)"
ulimit -n 65536 2>/dev/null || true   # 20000 (the hard limit here) is enough too

RTMP_PORT=19560 HTTP_PORT=19561 HOOK_PORT=19562

command -v ffmpeg >/dev/null || { echo "ffmpeg missing (run scripts/test.sh once)" >&2; exit 1; }
if [[ " $STEPS " == *" hls "* ]] && ! command -v wrk >/dev/null; then
  echo "installing wrk (Debian package)" >&2
  apt-get install -y wrk >&2 || { apt-get update >&2 && apt-get install -y wrk >&2; }
fi

cargo build --release --locked -p ferrocast -p ferrocast-bench >&2
FERROCAST="${CARGO_TARGET_DIR:-target}/release/ferrocast"
BENCH="${CARGO_TARGET_DIR:-target}/release/ferrocast-bench"

PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM
stop_pid() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# Prints a JSON object (stdin) as one line with extra fields and the 1-minute load
# average (the machine is shared) merged in front, and appends it to the results.
emit() { # extra-json
  python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d["loadavg_1m"]=float(open("/proc/loadavg").read().split()[0]); d.update(json.load(sys.stdin)); print(json.dumps(d))' "$1" |
    tee -a "$RESULTS"
}

SRC="$OUT/src-2mbit.flv"
make_src_2mbit "$SRC"
SRC_HLS="$OUT/src-800k.flv"
make_src_800k "$SRC_HLS"

python3 scripts/hook-receiver.py "$HOOK_PORT" "$HOOK_DELAY_MS" &
PIDS+=("$!")
wait_http "http://127.0.0.1:$HOOK_PORT/stats"
hook_calls() { # path -> POSTs the receiver has answered on it so far
  curl -sf "http://127.0.0.1:$HOOK_PORT/stats" | jq --arg p "$1" '.paths[$p].requests // 0'
}

FC_PID=
start_ferrocast() { # config file [rtmp port, http port]
  local rtmp=${2:-$RTMP_PORT} http=${3:-$HTTP_PORT}
  RUST_LOG=warn "$FERROCAST" --config "$1" --rtmp "127.0.0.1:$rtmp" --http "127.0.0.1:$http" \
    --data-dir "$OUT/data-$http" >>"$OUT/ferrocast.log" 2>&1 &
  FC_PID=$!
  PIDS+=("$FC_PID")
  wait_http "http://127.0.0.1:$http/healthz"
}

# Configs: hooks off (embedded defaults), a gate hook on, signed play.
write_config() { # file hook-event|"" play-policy
  {
    if [ -n "$2" ]; then
      printf '[hook]\nenable = true\n%s = "http://127.0.0.1:%s/%s"\n' "$2" "$HOOK_PORT" "$2"
    fi
    if [ "$3" = signed ]; then
      printf '[auth]\nplay = "signed"\nsecret = "bench-access-secret-0123456789"\n'
    fi
  } >"$1"
}
write_config "$OUT/off.toml" "" open
write_config "$OUT/on_play.toml" on_play open
write_config "$OUT/on_publish.toml" on_publish open
write_config "$OUT/signed.toml" "" signed

# ---------------------------------------------------------------- machine and build
python3 - "$(date -u)" "$(git rev-parse --short HEAD)" \
  "$(git status --porcelain --untracked-files=no | awk '{print $2}' | grep -v -e '^crates/bench/' -e '^scripts/' -e '^BENCHMARKS.md$' | paste -sd, -)" \
  "$(lscpu | sed -n 's/^Model name: *//p' | head -1)" "$(nproc)" "$(uname -r)" "$(cut -d' ' -f1-3 /proc/loadavg)" \
  "$(ffmpeg -version | head -1 | awk '{print $3}')" "$(dpkg-query -W -f='${Version}' wrk 2>/dev/null || echo none)" \
  "$HOOK_DELAY_MS" <<'PY' | tee -a "$RESULTS"
import json, sys
a = sys.argv[1:]
print(json.dumps({"step": "machine", "date": a[0], "commit": a[1], "modified_outside_bench": [f for f in a[2].split(",") if f],
                  "cpu_model": a[3], "vcpus": int(a[4]), "kernel": a[5], "loadavg_at_start": a[6], "ffmpeg": a[7],
                  "wrk": a[8], "hook_delay_ms": float(a[9])}))
PY

# ---------------------------------------------------------------- 1. players joining
if [[ " $STEPS " == *" play "* ]]; then
  for r in $(seq "$REPEAT"); do
    for hooks in off on; do
      cfg="$OUT/off.toml"; [ "$hooks" = on ] && cfg="$OUT/on_play.toml"
      start_ferrocast "$cfg"
      ffmpeg -loglevel error -re -stream_loop -1 -i "$SRC" -c copy -f flv "rtmp://127.0.0.1:$RTMP_PORT/live/bench" &
      pub=$!; PIDS+=("$pub")
      sleep 3
      h0=$(hook_calls /on_play)
      "$BENCH" play "rtmp://127.0.0.1:$RTMP_PORT/live/bench" -n "$PLAY_N" --ramp "$PLAY_RAMP" \
        --duration "$PLAY_DURATION" --expect-kbps 2000 >"$OUT/play.json"
      h1=$(hook_calls /on_play)
      stop_pid "$pub"; stop_pid "$FC_PID"
      jq -c '{players, connected, failed, failures,
              video_frames_min: .video_frames.min,
              share_ge_90pct: .players_at_ge_90pct,
              join_ms_p50: .first_video_frame_ms.p50, join_ms_p95: .first_video_frame_ms.p95,
              join_ms_max: .first_video_frame_ms.max, first_frame_keyframe_all: .first_video_is_keyframe.all,
              disconnected_early}' "$OUT/play.json" |
        emit "{\"step\": \"play\", \"run\": $r, \"hooks\": \"$hooks\", \"ramp_per_s\": $PLAY_RAMP, \"hook_calls\": $((h1 - h0))}"
    done
  done
fi

# ---------------------------------------------------------------- 2. publish start
if [[ " $STEPS " == *" publish "* ]]; then
  for r in $(seq "$REPEAT"); do
    for hooks in off on; do
      cfg="$OUT/off.toml"; [ "$hooks" = on ] && cfg="$OUT/on_publish.toml"
      start_ferrocast "$cfg"
      h0=$(hook_calls /on_publish)
      "$BENCH" publish "rtmp://127.0.0.1:$RTMP_PORT/live/p" -f "$SRC" -n "$PUB_N" --ramp "$PUB_RAMP" \
        --duration "$PUB_DURATION" >"$OUT/publish.json"
      h1=$(hook_calls /on_publish)
      stop_pid "$FC_PID"
      jq -c '{publishers, connected, failed, failures,
              publish_start_ms_p50: .publish_start_ms.p50, publish_start_ms_p95: .publish_start_ms.p95,
              publish_start_ms_max: .publish_start_ms.max, max_send_lag_ms, disconnected_early}' "$OUT/publish.json" |
        emit "{\"step\": \"publish\", \"run\": $r, \"hooks\": \"$hooks\", \"ramp_per_s\": $PUB_RAMP, \"hook_calls\": $((h1 - h0))}"
    done
  done
fi

# ---------------------------------------------------------------- 3. HLS segments
# Follows a playlist URL the way a player does: a master playlist's variant URI, then
# the media playlist; prints the URL (with its query) of the newest segment that
# appears after the call started, so it stays served for a whole wrk run (window +
# retain segments, 16 s at the defaults).
base_of() { echo "${1%/*}/"; }
last_uri() { awk '!/^#/ && NF { last = $0 } END { print last }'; }
fresh_segment() { # playlist url
  local url=$1 body variant media prev seg i
  body=$(curl -sf "$url")
  if grep -q '^#EXT-X-STREAM-INF' <<<"$body"; then
    variant=$(last_uri <<<"$body")
    media="$(base_of "${url%%\?*}")$variant"
  else
    media=$url
  fi
  prev=$(curl -sf "$media" | last_uri)
  for i in $(seq 200); do
    seg=$(curl -sf "$media" | last_uri)
    [ -n "$seg" ] && [ "${seg%%\?*}" != "${prev%%\?*}" ] && break
    sleep 0.05
  done
  echo "$(base_of "${media%%\?*}")$seg"
}
if [[ " $STEPS " == *" hls "* ]]; then
  for r in $(seq "$REPEAT"); do
    for mode in $HLS_ORDER; do
      cfg="$OUT/off.toml"; [ "$mode" = signed ] && cfg="$OUT/signed.toml"
      start_ferrocast "$cfg"
      "$BENCH" publish "rtmp://127.0.0.1:$RTMP_PORT/live/x" -f "$SRC_HLS" --loop >/dev/null &
      pub=$!; PIDS+=("$pub")
      pl="http://127.0.0.1:$HTTP_PORT/live/x/hls.m3u8"
      [ "$mode" = signed ] && pl=$("$FERROCAST" sign --config "$cfg" play "$pl")
      for i in $(seq 100); do [ -n "$(curl -sf "$pl" | last_uri)" ] && break; sleep 0.2; done
      seg=$(fresh_segment "$pl")
      [ "$mode" = open ] && seg="${seg%%\?*}"
      size=$(curl -sf -o /dev/null -w '%{size_download}' "$seg")
      # The check that the signed server enforces the token (403 without it).
      bare=$(curl -s -o /dev/null -w '%{http_code}' "${seg%%\?*}")
      c0=$(cpu_ns "$FC_PID")
      # shellcheck disable=SC2086
      wrk $WRK_ARGS "$seg" >"$OUT/wrk.txt"
      c1=$(cpu_ns "$FC_PID")
      wrk_json <"$OUT/wrk.txt" |
        python3 -c 'import json,sys; d=json.load(sys.stdin); c=(int(sys.argv[2])-int(sys.argv[1]))/1e9; d["server_cpu_s"]=round(c,2); d["server_cpu_us_per_request"]=round(c*1e6/d["requests"],2) if d["requests"] else None; print(json.dumps(d))' "$c0" "$c1" |
        emit "{\"step\": \"hls\", \"run\": $r, \"mode\": \"$mode\", \"segment_url\": \"${seg//\"/}\", \"segment_bytes\": $size, \"status_without_token\": $bare, \"wrk_args\": \"$WRK_ARGS\"}"
      stop_pid "$pub"; stop_pid "$FC_PID"
    done
  done
fi

# ---------------------------------------------------------------- 4. HLS, alternating
wrk_row() { # pid mode round url extra-args...: one wrk run, its JSON line with server CPU
  local pid=$1 mode=$2 round=$3 url=$4 c0 c1
  shift 4
  c0=$(cpu_ns "$pid")
  wrk "$@" "$url" >"$OUT/wrk.txt"
  c1=$(cpu_ns "$pid")
  wrk_json <"$OUT/wrk.txt" |
    python3 -c 'import json,sys; d=json.load(sys.stdin); c=(int(sys.argv[2])-int(sys.argv[1]))/1e9; d["server_cpu_s"]=round(c,2); d["server_cpu_us_per_request"]=round(c*1e6/d["requests"],2) if d["requests"] else None; print(json.dumps(d))' "$c0" "$c1" |
    emit "{\"step\": \"hlsalt\", \"round\": $round, \"mode\": \"$mode\", \"segment_url\": \"$url\", \"segment_bytes\": $(curl -sf -o /dev/null -w '%{size_download}' "$url" || echo null), \"wrk_args\": \"$*\"}"
}
if [[ " $STEPS " == *" hlsalt "* ]]; then
  start_ferrocast "$OUT/signed.toml"; SIGNED_PID=$FC_PID
  start_ferrocast "$OUT/off.toml" 19570 19571; OPEN_PID=$FC_PID
  "$BENCH" publish "rtmp://127.0.0.1:$RTMP_PORT/live/x" -f "$SRC_HLS" --loop >/dev/null &
  pub1=$!; PIDS+=("$pub1")
  "$BENCH" publish "rtmp://127.0.0.1:19570/live/x" -f "$SRC_HLS" --loop >/dev/null &
  pub2=$!; PIDS+=("$pub2")
  pl=$("$FERROCAST" sign --config "$OUT/signed.toml" play "http://127.0.0.1:$HTTP_PORT/live/x/hls.m3u8")
  for i in $(seq 100); do [ -n "$(curl -sf "$pl" | last_uri)" ] && break; sleep 0.2; done
  for k in $(seq "$ALT_ROUNDS"); do
    # A fresh segment each round (one lives ~16 s); the open server's segment of the
    # same number: the same bytes of the same file, cut by the same muxer settings.
    seg_s=$(fresh_segment "$pl")
    seg_o="http://127.0.0.1:19571/live/x/$(basename "${seg_s%%\?*}")"
    for i in $(seq 60); do curl -sf -o /dev/null "$seg_o" && break; sleep 0.05; done
    # shellcheck disable=SC2086
    wrk_row "$SIGNED_PID" signed "$k" "$seg_s" $ALT_WRK_ARGS
    # shellcheck disable=SC2086
    wrk_row "$OPEN_PID" open "$k" "$seg_o" $ALT_WRK_ARGS
  done
  stop_pid "$pub1"; stop_pid "$pub2"; stop_pid "$SIGNED_PID"; stop_pid "$OPEN_PID"
fi

# ---------------------------------------------------------------- summary
python3 - "$RESULTS" <<'PY' | tee -a "$RESULTS"
import json, statistics, sys
# This invocation's lines only: those after the last "machine" line.
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
last = max(i for i, r in enumerate(rows) if r.get("step") == "machine")
rows = rows[last + 1:]
def med(xs):
    xs = [x for x in xs if x is not None]
    return round(statistics.median(xs), 1) if xs else None
def of(step, **kw):
    return [r for r in rows if r.get("step") == step and all(r.get(k) == v for k, v in kw.items())]
def ratio(a, b):
    return round(a / b, 3) if a is not None and b else None

on, off = of("play", hooks="on"), of("play", hooks="off")
if on and off:
    out = {"summary": "play_join", "runs": len(on), "players": on[0]["players"]}
    for name, rs in (("on", on), ("off", off)):
        out[f"{name}_connected_min"] = min(r["connected"] for r in rs)
        out[f"{name}_failed_total"] = sum(r["failed"] for r in rs)
        out[f"{name}_video_frames_min"] = min(r["video_frames_min"] or 0 for r in rs)
        out[f"{name}_hook_calls"] = [r["hook_calls"] for r in rs]
        out[f"{name}_join_p50_ms_runs"] = [r["join_ms_p50"] for r in rs]
        out[f"{name}_join_p95_ms_runs"] = [r["join_ms_p95"] for r in rs]
        out[f"{name}_join_p50_ms_median"] = med([r["join_ms_p50"] for r in rs])
        out[f"{name}_join_p95_ms_median"] = med([r["join_ms_p95"] for r in rs])
    out["p50_on_minus_off_ms"] = round(out["on_join_p50_ms_median"] - out["off_join_p50_ms_median"], 1)
    out["p95_on_minus_off_ms"] = round(out["on_join_p95_ms_median"] - out["off_join_p95_ms_median"], 1)
    print(json.dumps(out))
on, off = of("publish", hooks="on"), of("publish", hooks="off")
if on and off:
    out = {"summary": "publish_start", "runs": len(on), "publishers": on[0]["publishers"]}
    for name, rs in (("on", on), ("off", off)):
        out[f"{name}_connected_min"] = min(r["connected"] for r in rs)
        out[f"{name}_hook_calls"] = [r["hook_calls"] for r in rs]
        out[f"{name}_p50_ms_runs"] = [r["publish_start_ms_p50"] for r in rs]
        out[f"{name}_p95_ms_runs"] = [r["publish_start_ms_p95"] for r in rs]
        out[f"{name}_p50_ms_median"] = med([r["publish_start_ms_p50"] for r in rs])
        out[f"{name}_p95_ms_median"] = med([r["publish_start_ms_p95"] for r in rs])
    out["p50_on_minus_off_ms"] = round(out["on_p50_ms_median"] - out["off_p50_ms_median"], 1)
    out["p95_on_minus_off_ms"] = round(out["on_p95_ms_median"] - out["off_p95_ms_median"], 1)
    print(json.dumps(out))
s, o = of("hls", mode="signed"), of("hls", mode="open")
if s and o:
    sm, om = med([r["requests_per_s"] for r in s]), med([r["requests_per_s"] for r in o])
    print(json.dumps({"summary": "hls_segment_wrk", "runs": len(s), "wrk_args": s[0]["wrk_args"],
                      "signed_req_s_runs": [r["requests_per_s"] for r in s], "open_req_s_runs": [r["requests_per_s"] for r in o],
                      "signed_req_s_median": sm, "open_req_s_median": om, "signed_over_open": ratio(sm, om),
                      "target": ">= 0.95",
                      "signed_cpu_us_per_request_median": med([r.get("server_cpu_us_per_request") for r in s]),
                      "open_cpu_us_per_request_median": med([r.get("server_cpu_us_per_request") for r in o]), "non_2xx": sum(r["non_2xx"] for r in s + o),
                      "signed_status_without_token": [r["status_without_token"] for r in s]}))
s, o = of("hlsalt", mode="signed"), of("hlsalt", mode="open")
if s and o:
    sm, om = med([r["requests_per_s"] for r in s]), med([r["requests_per_s"] for r in o])
    pairs = [a["requests_per_s"] / b["requests_per_s"] for a, b in zip(s, o)]
    print(json.dumps({"summary": "hls_segment_wrk_alternating", "rounds": len(s), "wrk_args": s[0]["wrk_args"],
                      "signed_req_s_median": sm, "open_req_s_median": om, "signed_over_open": ratio(sm, om),
                      "pair_ratios": [round(p, 3) for p in pairs], "pair_ratio_median": round(statistics.median(pairs), 3),
                      "signed_cpu_us_per_request_median": med([r["server_cpu_us_per_request"] for r in s]),
                      "open_cpu_us_per_request_median": med([r["server_cpu_us_per_request"] for r in o]),
                      "target": ">= 0.95", "non_2xx": sum(r["non_2xx"] for r in s + o)}))
PY
