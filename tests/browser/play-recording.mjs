// Plays recordings (MP4 through the <video> element, HLS VOD through hls.js) in Debian's
// headless Chromium through ferrocast's player page, and checks what a user sees.
//
//   node tests/browser/play-recording.mjs <base-url> <out-dir> <label>=<path>[@<seconds>]...
//
// e.g. `mp4=/record/live/r/2026-11-24/10-00-00.mp4@9.4 hls=/record/live/r/.../index.m3u8`.
// For each recording, in a fresh page: opens `<base-url>/?record=<path>` and checks that
//   - `ferrocastPlayer.proto` is 'record' and `fatal` stays false throughout;
//   - `video.currentTime` advances by at least 3 s of real playback (timeout 30 s);
//   - `video.duration` is finite and over 5 s, and within 1.5 s of <seconds> when given;
//   - the picture is 640x360 and not blank;
//   - after `video.currentTime = min(5, duration - 2)` playback goes on from there: within
//     10 s currentTime is at or past the target, never falls back before it, advances by
//     at least 1 s more, and the picture is still not blank;
// and saves `<out-dir>/record-<label>.png` (taken after the seek). Exits 0 when every
// recording passes; otherwise prints what went wrong (player errors, page console, last
// state) and exits 1.

import fs from 'node:fs';
import path from 'node:path';
import {
  EXPECTED_SIZE,
  MAX_STEP_S,
  POLL_MS,
  checkPicture,
  gotoPlayer,
  launchBrowser,
  openPage,
  samplePlayer,
  screenshot,
} from './lib.mjs';

const NEED_PLAYED_S = 3;
const PLAY_TIMEOUT_MS = 30_000;
const DURATION_TOLERANCE_S = 1.5;
const MIN_DURATION_S = 5;
const SEEK_TO_S = 5;
const SEEK_TIMEOUT_MS = 10_000;
const NEED_PLAYED_AFTER_SEEK_S = 1;
// currentTime right after a seek may sit a hair before the target (frame rounding).
const SEEK_SLACK_S = 0.05;

const [baseUrl, outDir, ...specs] = process.argv.slice(2);
if (!baseUrl || !outDir || specs.length === 0) {
  console.error('usage: node play-recording.mjs <base-url> <out-dir> <label>=<path>[@<seconds>]...');
  process.exit(2);
}
const recordings = specs.map((spec) => {
  const m = /^([\w-]+)=([^@]+)(?:@([\d.]+))?$/.exec(spec);
  if (!m) {
    console.error(`bad recording argument ${JSON.stringify(spec)}`);
    process.exit(2);
  }
  return { label: m[1], path: m[2], expected: m[3] === undefined ? null : Number(m[3]) };
});
fs.mkdirSync(outDir, { recursive: true });

// A failed check (declared before the top-level await below uses it); caught in
// playRecording.
class Failure extends Error {}

const browser = await launchBrowser();
const failures = [];
try {
  for (const rec of recordings) {
    const failure = await playRecording(rec);
    if (failure) failures.push(`${rec.label}: ${failure}`);
  }
} finally {
  await browser.close();
}
if (failures.length > 0) {
  for (const f of failures) console.error(`FAIL ${f}`);
  process.exit(1);
}
console.log('OK: every recording played and seeked');

// Samples the player and fails on a fatal player error or a wrong `proto`.
async function sampleOk(page) {
  const s = await samplePlayer(page);
  if (s.fatal) throw new Failure('fatal player error: ' + JSON.stringify(s.errors));
  if (s.proto !== 'record') throw new Failure(`ferrocastPlayer.proto is ${s.proto}`);
  return s;
}

// Plays one recording in a fresh page; returns a failure message, or null.
async function playRecording({ label, path: recPath, expected }) {
  const { page, lines: consoleLines } = await openPage(browser);
  const url = `${baseUrl}/?record=${recPath}`;
  console.log(`${label}: opening ${url}`);
  const started = Date.now();
  let failure = null;
  let sample = null;
  try {
    await gotoPlayer(page, url);

    // 1. It plays from the start.
    let played = 0;
    let last = null;
    while (Date.now() - started < PLAY_TIMEOUT_MS) {
      sample = await sampleOk(page);
      if (last !== null) {
        const step = sample.currentTime - last;
        if (step > 0 && step <= MAX_STEP_S) played += step;
      }
      last = sample.currentTime;
      if (played >= NEED_PLAYED_S) break;
      await page.waitForTimeout(POLL_MS);
    }
    const took = ((Date.now() - started) / 1000).toFixed(1);
    console.log(
      `${label}: played ${played.toFixed(2)} s in ${took} s, currentTime ` +
        `${sample.currentTime.toFixed(2)}, duration ${sample.duration}, ` +
        `${sample.width}x${sample.height}, state ${sample.state}`,
    );
    if (played < NEED_PLAYED_S) {
      throw new Failure(
        `video.currentTime advanced by only ${played.toFixed(2)} s in ` +
          `${PLAY_TIMEOUT_MS / 1000} s (need ${NEED_PLAYED_S}); last sample ${JSON.stringify(sample)}`,
      );
    }

    // 2. Its length, as the scrub bar shows it.
    const duration = sample.duration;
    if (duration === null || duration <= MIN_DURATION_S) {
      throw new Failure(`video.duration is ${duration}, expected a finite length over ${MIN_DURATION_S} s`);
    }
    if (expected !== null && Math.abs(duration - expected) > DURATION_TOLERANCE_S) {
      throw new Failure(
        `video.duration is ${duration.toFixed(2)} s, the recording is ${expected} s ` +
          `(tolerance ${DURATION_TOLERANCE_S} s)`,
      );
    }

    // 3. The picture.
    if (sample.width !== EXPECTED_SIZE[0] || sample.height !== EXPECTED_SIZE[1]) {
      throw new Failure(`picture is ${sample.width}x${sample.height}, expected ${EXPECTED_SIZE.join('x')}`);
    }
    const picture = await checkPicture(page);
    console.log(`${label}: picture ${JSON.stringify(picture)}`);
    if (picture.blank) throw new Failure(`the video frame looks blank: ${JSON.stringify(picture)}`);

    // 4. Seeking, as a user dragging the scrub bar.
    const target = Math.min(SEEK_TO_S, duration - 2);
    const seekStarted = Date.now();
    await page.evaluate((t) => {
      window.ferrocastPlayer.video.currentTime = t;
    }, target);
    let landedAt = null; // currentTime once the seek finished
    let landedMs = null;
    let lowest = Infinity; // the lowest currentTime once landed
    while (Date.now() - seekStarted < SEEK_TIMEOUT_MS) {
      sample = await sampleOk(page);
      if (landedAt === null && !sample.seeking && sample.currentTime >= target - SEEK_SLACK_S) {
        landedAt = sample.currentTime;
        landedMs = Date.now() - seekStarted;
      }
      if (landedAt !== null) {
        lowest = Math.min(lowest, sample.currentTime);
        if (sample.currentTime - landedAt >= NEED_PLAYED_AFTER_SEEK_S) break;
      }
      await page.waitForTimeout(POLL_MS);
    }
    console.log(
      `${label}: seek to ${target.toFixed(2)}: landed at ${landedAt?.toFixed(2)} after ` +
        `${landedMs} ms, now ${sample.currentTime.toFixed(2)}, state ${sample.state}`,
    );
    if (landedAt === null) {
      throw new Failure(
        `after seeking to ${target.toFixed(2)} s currentTime never reached it in ` +
          `${SEEK_TIMEOUT_MS / 1000} s; last sample ${JSON.stringify(sample)}`,
      );
    }
    if (lowest < target - SEEK_SLACK_S) {
      throw new Failure(`after seeking to ${target.toFixed(2)} s playback fell back to ${lowest.toFixed(2)} s`);
    }
    if (sample.currentTime - landedAt < NEED_PLAYED_AFTER_SEEK_S) {
      throw new Failure(
        `after seeking to ${target.toFixed(2)} s currentTime advanced only from ` +
          `${landedAt.toFixed(2)} to ${sample.currentTime.toFixed(2)}; last sample ${JSON.stringify(sample)}`,
      );
    }
    const after = await checkPicture(page);
    console.log(`${label}: picture after the seek ${JSON.stringify(after)}`);
    if (after.blank) throw new Failure(`the video frame after the seek looks blank: ${JSON.stringify(after)}`);
    const recoverable = sample.errors.filter((e) => !e.fatal);
    console.log(`${label}: ${recoverable.length} recoverable player errors ${JSON.stringify(recoverable)}`);
  } catch (e) {
    failure = e instanceof Failure ? e.message : `${e.name}: ${e.message}`;
  }
  await screenshot(page, path.join(outDir, `record-${label}.png`), label);
  if (failure) {
    console.log(`${label}: page console:\n  ${consoleLines.join('\n  ') || '(nothing)'}`);
  }
  await page.close();
  return failure;
}
