// Plays a live stream in Debian's headless Chromium through ferrocast's player page, over
// HLS and then over HTTP-FLV, and checks that it really plays.
//
//   node tests/browser/play.mjs <base-url> <out-dir> [app/stream]
//
// For each protocol: opens `<base-url>/?app=live&stream=b&proto=<p>&autoplay=1`, waits
// until `video.currentTime` has advanced by at least 5 s of real playback (timeout 40 s)
// with `window.ferrocastPlayer.fatal === false`, checks that the picture is 640x360 and
// not blank, and saves `<out-dir>/<p>.png`. Exits 0 when both play; otherwise prints
// what went wrong (player errors, page console, state) and exits 1.
//
// The browser is the system's (`/usr/bin/chromium`): playwright-core never downloads one.

import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

const PROTOCOLS = ['hls', 'flv'];
const NEED_PLAYED_S = 5;
const TIMEOUT_MS = 40_000;
const POLL_MS = 250;
// currentTime steps larger than this between two polls are seeks (hls.js jumping to
// the live edge, gap skipping), not playback, and do not count.
const MAX_STEP_S = 1.5;
const EXPECTED_SIZE = [640, 360];

const [baseUrl, outDir, name = 'live/b'] = process.argv.slice(2);
if (!baseUrl || !outDir) {
  console.error('usage: node play.mjs <base-url> <out-dir> [app/stream]');
  process.exit(2);
}
const [app, stream] = name.split('/');
fs.mkdirSync(outDir, { recursive: true });

const EXECUTABLE = '/usr/bin/chromium';
if (!fs.existsSync(EXECUTABLE)) {
  console.error(`FAIL: ${EXECUTABLE} not found: install the Debian package \`chromium\``);
  process.exit(1);
}

const browser = await chromium.launch({
  executablePath: EXECUTABLE,
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
    // The machine has no network but the package registries: no QUIC attempts either.
    '--disable-quic',
    '--autoplay-policy=no-user-gesture-required',
  ],
});
console.log(`chromium ${browser.version()}`);

const failures = [];
try {
  for (const proto of PROTOCOLS) {
    const failure = await playOne(proto);
    if (failure) failures.push(`${proto}: ${failure}`);
  }
} finally {
  await browser.close();
}
if (failures.length > 0) {
  for (const f of failures) console.error(`FAIL ${f}`);
  process.exit(1);
}
console.log('OK: every protocol played');

// Plays one protocol in a fresh page; returns a failure message, or null.
async function playOne(proto) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const consoleLines = [];
  page.on('console', (m) => consoleLines.push(`[${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => consoleLines.push(`[pageerror] ${e.message}`));
  page.on('requestfailed', (r) =>
    consoleLines.push(`[requestfailed] ${r.url()} ${r.failure()?.errorText ?? ''}`),
  );
  const url = `${baseUrl}/?app=${app}&stream=${stream}&proto=${proto}&autoplay=1`;
  console.log(`${proto}: opening ${url}`);
  const started = Date.now();
  let failure = null;
  let sample = null;
  try {
    await page.goto(url, { waitUntil: 'load', timeout: 15_000 });
    await page.waitForFunction(() => window.ferrocastPlayer && window.ferrocastPlayer.video, null, {
      timeout: 10_000,
    });
    let played = 0;
    let last = null;
    let firstProgressMs = null;
    while (Date.now() - started < TIMEOUT_MS) {
      sample = await page.evaluate(() => {
        const p = window.ferrocastPlayer;
        return {
          currentTime: p.video.currentTime,
          paused: p.video.paused,
          readyState: p.video.readyState,
          width: p.video.videoWidth,
          height: p.video.videoHeight,
          proto: p.proto,
          fatal: p.fatal,
          errors: p.errors,
          state: document.body.dataset.state,
        };
      });
      if (sample.fatal) {
        failure = 'fatal player error: ' + JSON.stringify(sample.errors);
        break;
      }
      if (last !== null) {
        const step = sample.currentTime - last;
        if (step > 0 && step <= MAX_STEP_S) {
          played += step;
          firstProgressMs ??= Date.now() - started;
        }
      }
      last = sample.currentTime;
      if (played >= NEED_PLAYED_S) break;
      await page.waitForTimeout(POLL_MS);
    }
    const took = ((Date.now() - started) / 1000).toFixed(1);
    console.log(
      `${proto}: played ${played.toFixed(2)} s in ${took} s (first progress after ` +
        `${firstProgressMs} ms), currentTime ${sample.currentTime.toFixed(2)}, ` +
        `${sample.width}x${sample.height}, state ${sample.state}, ` +
        `${sample.errors.filter((e) => !e.fatal).length} recoverable player errors`,
    );
    if (!failure && played < NEED_PLAYED_S) {
      failure =
        `video.currentTime advanced by only ${played.toFixed(2)} s in ${TIMEOUT_MS / 1000} s ` +
        `(need ${NEED_PLAYED_S}); last sample ${JSON.stringify(sample)}`;
    }
    if (!failure && (sample.width !== EXPECTED_SIZE[0] || sample.height !== EXPECTED_SIZE[1])) {
      failure = `picture is ${sample.width}x${sample.height}, expected ${EXPECTED_SIZE.join('x')}`;
    }
    if (!failure && sample.proto !== proto) {
      failure = `ferrocastPlayer.proto is ${sample.proto}`;
    }
    if (!failure) {
      // The decoded picture is not blank: testsrc2 is colourful, so its frame has
      // many distinct colours and a wide spread of brightness.
      const picture = await page.evaluate(() => {
        const v = window.ferrocastPlayer.video;
        const c = document.createElement('canvas');
        c.width = 160;
        c.height = 90;
        const g = c.getContext('2d');
        g.drawImage(v, 0, 0, c.width, c.height);
        const d = g.getImageData(0, 0, c.width, c.height).data;
        const colours = new Set();
        let min = 255;
        let max = 0;
        for (let i = 0; i < d.length; i += 4) {
          colours.add((d[i] >> 4) * 256 + (d[i + 1] >> 4) * 16 + (d[i + 2] >> 4));
          const y = 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2];
          min = Math.min(min, y);
          max = Math.max(max, y);
        }
        return { colours: colours.size, min, max };
      });
      console.log(`${proto}: picture ${JSON.stringify(picture)}`);
      if (picture.colours < 20 || picture.max - picture.min < 100) {
        failure = `the video frame looks blank: ${JSON.stringify(picture)}`;
      }
    }
  } catch (e) {
    failure = `${e.name}: ${e.message}`;
  }
  const shot = path.join(outDir, `${proto}.png`);
  try {
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`${proto}: screenshot ${shot}`);
  } catch (e) {
    console.log(`${proto}: no screenshot: ${e.message}`);
  }
  if (failure) {
    console.log(`${proto}: page console:\n  ${consoleLines.join('\n  ') || '(nothing)'}`);
  }
  await page.close();
  return failure;
}
