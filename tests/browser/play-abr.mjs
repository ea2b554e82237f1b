// Plays a transcoded live stream (the source and its renditions, from master.m3u8) in
// Debian's headless Chromium through ferrocast's player page, and switches quality.
//
//   node tests/browser/play-abr.mjs <base-url> <out-dir> <app/stream>
//
// Opens `<base-url>/?app=<app>&stream=<stream>&proto=hls&autoplay=1` and checks, with
// `window.ferrocastPlayer.fatal === false` throughout, that
//   - hls.js found three levels, 360p, 480p and 720p (`ferrocastPlayer.hls.levels`), and
//     the page's quality selector (#quality) offers Auto and each of them;
//   - `video.currentTime` advances by at least 2 s of real playback (timeout 20 s);
//   - after `hls.currentLevel = <the 360p level>`: within 20 s hls.js reports
//     LEVEL_SWITCHED to it (or `hls.currentLevel` is it) and `video.videoHeight` is 360;
//     then playback advances by 2 s more and the picture is not blank
//     (`<out-dir>/abr-360.png` is saved here);
//   - after choosing the 720p level in #quality as a user would: within 20 s
//     `hls.currentLevel` is it, `video.videoHeight` is 720, and playback advances by 2 s
//     more with a picture that is not blank.
// Exits 0 when all holds; otherwise prints what went wrong (player errors, level
// switches, page console, last state), saves `<out-dir>/abr-failure.png` when it failed
// before the 360p screenshot, and exits 1.

import fs from 'node:fs';
import path from 'node:path';
import {
  MAX_STEP_S,
  POLL_MS,
  checkPicture,
  gotoPlayer,
  launchBrowser,
  openPage,
  samplePlayer,
  screenshot,
} from './lib.mjs';

const EXPECTED_HEIGHTS = [360, 480, 720];
const LEVELS_TIMEOUT_MS = 15_000;
const NEED_PLAYED_S = 2;
const PLAY_TIMEOUT_MS = 20_000;
const SWITCH_TIMEOUT_MS = 20_000;

const [baseUrl, outDir, name] = process.argv.slice(2);
if (!baseUrl || !outDir || !name || !name.includes('/')) {
  console.error('usage: node play-abr.mjs <base-url> <out-dir> <app/stream>');
  process.exit(2);
}
const [app, stream] = name.split('/');
fs.mkdirSync(outDir, { recursive: true });

// A failed check (declared before the top-level await below uses it).
class Failure extends Error {}

const browser = await launchBrowser();
let failure = null;
try {
  failure = await run();
} finally {
  await browser.close();
}
if (failure) {
  console.error(`FAIL ${failure}`);
  process.exit(1);
}
console.log('OK: three levels, played at 360p and at 720p after switching');

// Samples the player, with hls.js's view of the levels; fails on a fatal player error.
async function sampleOk(page) {
  const s = await samplePlayer(page);
  Object.assign(
    s,
    await page.evaluate(() => {
      const hls = window.ferrocastPlayer.hls;
      return {
        hasHls: Boolean(hls),
        currentLevel: hls ? hls.currentLevel : null,
        autoLevelEnabled: hls ? hls.autoLevelEnabled : null,
        switched: window.abrSwitched || [],
      };
    }),
  );
  if (s.fatal) throw new Failure('fatal player error: ' + JSON.stringify(s.errors));
  if (s.proto !== 'hls') throw new Failure(`ferrocastPlayer.proto is ${s.proto}`);
  if (!s.hasHls) throw new Failure('ferrocastPlayer.hls is gone');
  return s;
}

// Polls until `video.currentTime` has advanced by `need` seconds of real playback
// (steps over MAX_STEP_S are jumps, not playback); returns the last sample.
async function playFor(page, label, need) {
  const started = Date.now();
  let played = 0;
  let last = null;
  let sample = null;
  while (Date.now() - started < PLAY_TIMEOUT_MS) {
    sample = await sampleOk(page);
    if (last !== null) {
      const step = sample.currentTime - last;
      if (step > 0 && step <= MAX_STEP_S) played += step;
    }
    last = sample.currentTime;
    if (played >= need) break;
    await page.waitForTimeout(POLL_MS);
  }
  console.log(
    `${label}: played ${played.toFixed(2)} s in ${((Date.now() - started) / 1000).toFixed(1)} s, ` +
      `currentTime ${sample.currentTime.toFixed(2)}, ${sample.width}x${sample.height}, ` +
      `level ${sample.currentLevel}, state ${sample.state}`,
  );
  if (played < need) {
    throw new Failure(
      `${label}: video.currentTime advanced by only ${played.toFixed(2)} s in ` +
        `${PLAY_TIMEOUT_MS / 1000} s (need ${need}); last sample ${JSON.stringify(sample)}`,
    );
  }
  return sample;
}

// Waits until hls.js is on `index` (a LEVEL_SWITCHED to it after the first `since`
// events, or `currentLevel`) and the decoded picture is `height` pixels high.
async function waitForLevel(page, label, index, height, since) {
  const started = Date.now();
  let sample = null;
  let onLevelMs = null;
  let eventMs = null;
  while (Date.now() - started < SWITCH_TIMEOUT_MS) {
    sample = await sampleOk(page);
    const event = sample.switched.slice(since).includes(index);
    if (event && eventMs === null) eventMs = Date.now() - started;
    if ((event || sample.currentLevel === index) && onLevelMs === null) onLevelMs = Date.now() - started;
    if (onLevelMs !== null && sample.height === height) break;
    await page.waitForTimeout(POLL_MS);
  }
  console.log(
    `${label}: hls.currentLevel ${sample.currentLevel} (on level ${index} after ${onLevelMs} ms, ` +
      `LEVEL_SWITCHED to it after ${eventMs} ms; all LEVEL_SWITCHED ${JSON.stringify(sample.switched)}), ` +
      `picture ${sample.width}x${sample.height} after ${Date.now() - started} ms`,
  );
  if (onLevelMs === null || sample.height !== height) {
    throw new Failure(
      `${label}: within ${SWITCH_TIMEOUT_MS / 1000} s hls.js did not settle on level ${index} ` +
        `with a ${height}p picture; last sample ${JSON.stringify(sample)}`,
    );
  }
}

async function notBlank(page, label) {
  const picture = await checkPicture(page);
  console.log(`${label}: picture ${JSON.stringify(picture)}`);
  if (picture.blank) throw new Failure(`${label}: the video frame looks blank: ${JSON.stringify(picture)}`);
}

async function run() {
  const { page, lines: consoleLines } = await openPage(browser);
  const url = `${baseUrl}/?app=${app}&stream=${stream}&proto=hls&autoplay=1`;
  console.log(`opening ${url}`);
  let failure = null;
  let shot = false;
  try {
    await gotoPlayer(page, url);

    // 1. The levels, as hls.js parsed them from master.m3u8, and as the page offers them.
    await page.waitForFunction(
      () => window.ferrocastPlayer.hls && window.ferrocastPlayer.hls.levels.length > 0,
      null,
      { timeout: LEVELS_TIMEOUT_MS },
    );
    // Every LEVEL_SWITCHED from now on (hls.js may already have switched once).
    const levels = await page.evaluate(() => {
      const hls = window.ferrocastPlayer.hls;
      window.abrSwitched = [];
      hls.on(window.Hls.Events.LEVEL_SWITCHED, (_event, data) => window.abrSwitched.push(data.level));
      return hls.levels.map((l) => ({ width: l.width, height: l.height, bitrate: l.bitrate }));
    });
    console.log(`levels ${JSON.stringify(levels)}`);
    const heights = levels.map((l) => l.height).sort((a, b) => a - b);
    if (JSON.stringify(heights) !== JSON.stringify(EXPECTED_HEIGHTS)) {
      throw new Failure(`hls.levels heights are ${JSON.stringify(heights)}, expected ${JSON.stringify(EXPECTED_HEIGHTS)}`);
    }
    const low = levels.findIndex((l) => l.height === 360);
    const high = levels.findIndex((l) => l.height === 720);

    const options = await page.evaluate(() => {
      const select = document.getElementById('quality');
      return {
        visible: Boolean(select.offsetParent) && !document.getElementById('quality-field').hidden,
        options: [...select.options].map((o) => ({ value: o.value, text: o.textContent })),
      };
    });
    console.log(`#quality ${JSON.stringify(options)}`);
    if (!options.visible) throw new Failure('the quality selector #quality is not shown');
    if (options.options.length < 4) {
      throw new Failure(`#quality has ${options.options.length} options, expected Auto and 3 levels`);
    }
    if (!options.options.some((o) => o.value === '-1' && o.text.startsWith('Auto'))) {
      throw new Failure(`#quality has no Auto option: ${JSON.stringify(options.options)}`);
    }
    for (const h of EXPECTED_HEIGHTS) {
      const index = String(levels.findIndex((l) => l.height === h));
      if (!options.options.some((o) => o.value === index && o.text.includes(`${h}p`))) {
        throw new Failure(`#quality has no ${h}p option (value ${index}): ${JSON.stringify(options.options)}`);
      }
    }

    // 2. It plays, at whatever level hls.js picked.
    await playFor(page, 'start', NEED_PLAYED_S);

    // 3. The lowest level, forced.
    let since = await page.evaluate((i) => {
      const before = window.abrSwitched.length;
      window.ferrocastPlayer.hls.currentLevel = i;
      return before;
    }, low);
    await waitForLevel(page, '360p', low, 360, since);
    await playFor(page, '360p', NEED_PLAYED_S);
    await notBlank(page, '360p');
    await screenshot(page, path.join(outDir, 'abr-360.png'), '360p');
    shot = true;

    // 4. The highest level, chosen in the page's quality selector.
    since = await page.evaluate(() => window.abrSwitched.length);
    await page.selectOption('#quality', String(high), { timeout: 5_000 });
    await waitForLevel(page, '720p', high, 720, since);
    const last = await playFor(page, '720p', NEED_PLAYED_S);
    await notBlank(page, '720p');
    const recoverable = last.errors.filter((e) => !e.fatal);
    console.log(`${recoverable.length} recoverable player errors ${JSON.stringify(recoverable)}`);
  } catch (e) {
    failure = e instanceof Failure ? e.message : `${e.name}: ${e.message}`;
  }
  if (!shot) await screenshot(page, path.join(outDir, 'abr-failure.png'), 'at the failure');
  if (failure) {
    try {
      console.log(`last state ${JSON.stringify(await sampleOk(page))}`);
    } catch (e) {
      console.log(`last state: ${e.message}`);
    }
    console.log(`page console:\n  ${consoleLines.join('\n  ') || '(nothing)'}`);
  }
  await page.close();
  return failure;
}
