# Shell functions shared by the benchmark scripts (sourced, not run).
#   scripts/bench.sh         RTMP fan-out
#   scripts/bench-http.sh    HLS and HTTP-FLV delivery
#   scripts/bench-access.sh  hooks and signed URLs

# The fan-out benchmark's source: 60 s of 1280x720 30 fps H.264 at ~1.9 Mbit/s (GOP
# 2 s exactly, no scene cuts) + AAC 96 kbit/s, made once.
make_src_2mbit() { # path
  [ -f "$1" ] && return 0
  ffmpeg -loglevel error -f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine=frequency=440:sample_rate=44100 \
    -t 60 -c:v libx264 -preset veryfast -b:v 1900k -maxrate 2000k -bufsize 2000k -g 60 -keyint_min 60 -sc_threshold 0 \
    -pix_fmt yuv420p -c:a aac -b:a 96k -f flv "$1"
}

# The HLS benchmark's source: the same picture at ~700 kbit/s + AAC 96 kbit/s, about
# 0.8 Mbit/s; at the default 2 s segments, ~200 KB per segment.
make_src_800k() { # path
  [ -f "$1" ] && return 0
  ffmpeg -loglevel error -f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine=frequency=440:sample_rate=44100 \
    -t 60 -c:v libx264 -preset veryfast -b:v 700k -maxrate 750k -bufsize 750k -g 60 -keyint_min 60 -sc_threshold 0 \
    -pix_fmt yuv420p -c:a aac -b:a 96k -f flv "$1"
}

wait_http() { # url: until it answers at all (any status), 10 s at most
  local i
  for i in $(seq 100); do
    curl -s -o /dev/null "$1" && return 0
    sleep 0.1
  done
  echo "no answer from $1" >&2
  return 1
}

wrk_json() { # wrk output on stdin -> JSON fields
  python3 -c '
import json, re, sys
t = sys.stdin.read()
def num(pat):
    m = re.search(pat, t)
    return m.group(1) if m else None
unit = {"B": 1e-6, "KB": 1e-3, "MB": 1.0, "GB": 1e3}
tr = re.search(r"Transfer/sec:\s*([\d.]+)(\w+)", t)
print(json.dumps({
  "requests_per_s": float(num(r"Requests/sec:\s*([\d.]+)")),
  "transfer_mb_per_s": round(float(tr.group(1)) * unit[tr.group(2)], 1) if tr else None,
  "requests": int(num(r"(\d+) requests in")),
  "non_2xx": int(num(r"Non-2xx or 3xx responses:\s*(\d+)") or 0),
  "socket_errors": num(r"Socket errors: (.*)"),
  "latency_avg": num(r"Latency\s+(\S+)"),
}))'
}

# Run time of all the process's threads in ns (schedstat: exact, not tick-sampled).
# %.0f, not %d: mawk (Debian's awk) clamps %d to 2^31 - 1, i.e. 2.147 s of CPU.
cpu_ns() { cat /proc/"$1"/task/*/schedstat | awk '{ s += $1 } END { printf "%.0f\n", s }'; }
