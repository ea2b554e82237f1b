#!/usr/bin/env bash
# Runs the README's "Quick start" as a new user would, with the commands taken from
# README.md itself (so the README cannot drift from what works):
#   1. the first ```sh block of "## Quick start" (`cargo run --release`), in the
#      background, on the embedded defaults;
#   2. the publish line (`ffmpeg ... FILE ...`), with FILE a 30 s H.264/AAC clip made
#      here;
#   3. every `ffplay URL` line, played with ffprobe instead (ffplay needs a display):
#      each must show H.264 640x360 and AAC;
#   4. the player page at http://127.0.0.1:8080/;
#   5. SIGTERM: the server must exit within 5 s.
# Needs ports 1935 and 8080 free (the README's defaults). Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
server_pid=""
pub_pid=""
cleanup() {
  [ -n "$pub_pid" ] && kill "$pub_pid" 2>/dev/null || true
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "quickstart: FAILED: $*" >&2; [ -f "$work/server.log" ] && tail -n 30 "$work/server.log" >&2; exit 1; }

# The Quick start section: from its heading to the next "## ".
section=$(awk '/^## Quick start/{on=1; next} /^## /{on=0} on' README.md)
[ -n "$section" ] || fail "README.md has no '## Quick start' section"
# Its code blocks, one command per line, comments stripped.
commands=$(printf '%s\n' "$section" | awk '/^```sh/{on=1; next} /^```/{on=0} on' | sed 's/[[:space:]]*#.*$//' | sed '/^[[:space:]]*$/d')
run_line=$(printf '%s\n' "$commands" | grep -m1 '^cargo run' || true)
publish_line=$(printf '%s\n' "$commands" | grep -m1 '^ffmpeg .*FILE' || true)
play_urls=$(printf '%s\n' "$commands" | awk '$1=="ffplay"{print $2}')
[ -n "$run_line" ] || fail "no 'cargo run' command in the Quick start"
[ -n "$publish_line" ] || fail "no ffmpeg publish command (with FILE) in the Quick start"
[ -n "$play_urls" ] || fail "no ffplay command in the Quick start"
echo "quickstart: server:  $run_line"
echo "quickstart: publish: $publish_line"
echo "quickstart: play:    $(echo $play_urls)"

# A fresh data directory: the defaults write ./data, so run from a scratch copy of
# nothing but the working directory's location (cargo run needs the workspace).
rm -rf ./data.quickstart-backup
[ -d ./data ] && mv ./data ./data.quickstart-backup
restore_data() { rm -rf ./data; [ -d ./data.quickstart-backup ] && mv ./data.quickstart-backup ./data || true; }
trap 'restore_data; cleanup' EXIT

echo "quickstart: building and starting the server"
bash -c "exec $run_line" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 1800); do
  grep -q "ferrocast listening" "$work/server.log" && break
  kill -0 "$server_pid" 2>/dev/null || fail "the server exited before listening"
  sleep 0.5
done
grep -q "ferrocast listening" "$work/server.log" || fail "the server did not start listening"

FILE="$work/clip.mp4"
ffmpeg -v error -f lavfi -i testsrc2=size=640x360:rate=25 -f lavfi -i sine=frequency=440:sample_rate=44100 \
  -t 30 -c:v libx264 -preset ultrafast -g 50 -pix_fmt yuv420p -c:a aac "$FILE"
echo "quickstart: publishing"
bash -c "exec ${publish_line//FILE/$FILE}" >"$work/publish.log" 2>&1 &
pub_pid=$!
sleep 5   # long enough for the first HLS segment (2 s) to be complete
kill -0 "$pub_pid" 2>/dev/null || { cat "$work/publish.log" >&2; fail "the publisher exited"; }

for url in $play_urls; do
  out=$(timeout 20 ffprobe -v error -show_entries stream=codec_type,codec_name,width,height -of csv=p=0 "$url") \
    || fail "ffprobe could not play $url"
  echo "quickstart: $url -> $(echo $out)"
  [[ "$out" == *"h264,video,640,360"* ]] || fail "$url: expected H.264 640x360 video, got: $out"
  [[ "$out" == *"aac,audio"* ]] || fail "$url: expected AAC audio, got: $out"
done

page=$(curl -fsS http://127.0.0.1:8080/) || fail "the player page did not load"
[[ "$page" == *"<video"* ]] || fail "the player page has no <video> element"
echo "quickstart: player page served ($(printf '%s' "$page" | wc -c) bytes)"

kill "$pub_pid" 2>/dev/null || true
pub_pid=""
kill -TERM "$server_pid"
for _ in $(seq 1 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$server_pid" 2>/dev/null; then fail "the server did not exit within 5 s of SIGTERM"; fi
server_pid=""
echo "quickstart: passed"
