// Plays a live stream in Debian's headless Chromium through ferrocast's player page, over
// HLS and then over HTTP-FLV (or the protocols given), and checks that it really plays.
//
//   node tests/browser/play.mjs <base-url> <out-dir> [app/stream] [protocols] [query]
//
// `protocols` is a comma-separated list of the page's names (hls, flv, wsflv); default
// `hls,flv`. An https:// base URL is served with the test's own CA, which Chromium does
// not know: the page then accepts any certificate (the e2e test checks trust with curl).
// `query` (e.g. a signed URL's `exp=...&sig=...`) is added to the page's address; the
// page hands it on to the media URLs.
//
// For each protocol: opens `<base-url>/?app=live&stream=b&proto=<p>&autoplay=1`, waits
// until `video.currentTime` has advanced by at least 5 s of real playback (timeout 40 s)
// with `window.ferrocastPlayer.fatal === false`, checks that the picture is 640x360 and
// not blank, and saves `<out-dir>/<p>.png`. Exits 0 when both play; otherwise prints
// what went wrong (player errors, page console, state) and exits 1.
//
// Browser start-up, page sampling and the picture check live in lib.mjs.

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

const NEED_PLAYED_S = 5;
const TIMEOUT_MS = 40_000;

const [baseUrl, outDir, name = 'live/b', protocols = 'hls,flv', extraQuery = ''] =
  process.argv.slice(2);
if (!baseUrl || !outDir) {
  console.error('usage: node play.mjs <base-url> <out-dir> [app/stream] [protocols] [query]');
  process.exit(2);
}
const PROTOCOLS = protocols.split(',');
const [app, stream] = name.split('/');
fs.mkdirSync(outDir, { recursive: true });

const browser = await launchBrowser();

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
  const { page, lines: consoleLines } = await openPage(browser, {
    ignoreHTTPSErrors: baseUrl.startsWith('https:'),
  });
  const extra = extraQuery ? `&${extraQuery}` : '';
  const url = `${baseUrl}/?app=${app}&stream=${stream}&proto=${proto}&autoplay=1${extra}`;
  console.log(`${proto}: opening ${url}`);
  const started = Date.now();
  let failure = null;
  let sample = null;
  try {
    await gotoPlayer(page, url);
    let played = 0;
    let last = null;
    let firstProgressMs = null;
    while (Date.now() - started < TIMEOUT_MS) {
      sample = await samplePlayer(page);
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
      const picture = await checkPicture(page);
      console.log(`${proto}: picture ${JSON.stringify(picture)}`);
      if (picture.blank) failure = `the video frame looks blank: ${JSON.stringify(picture)}`;
    }
  } catch (e) {
    failure = `${e.name}: ${e.message}`;
  }
  await screenshot(page, path.join(outDir, `${proto}.png`), proto);
  if (failure) {
    console.log(`${proto}: page console:\n  ${consoleLines.join('\n  ') || '(nothing)'}`);
  }
  await page.close();
  return failure;
}
