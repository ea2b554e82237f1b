// What play.mjs and play-recording.mjs share: starting Debian's headless Chromium, a page
// that keeps its console, reading `window.ferrocastPlayer`, judging the decoded picture,
// and saving a screenshot.
//
// The browser is the system's (`/usr/bin/chromium`): playwright-core never downloads one.

import fs from 'node:fs';
import { chromium } from 'playwright-core';

const EXECUTABLE = '/usr/bin/chromium';

// The page poll interval of the scripts.
export const POLL_MS = 250;
// currentTime steps larger than this between two polls are seeks (hls.js jumping to
// the live edge, gap skipping), not playback, and do not count.
export const MAX_STEP_S = 1.5;
// The test file's picture size (common/mod.rs `src_flv`).
export const EXPECTED_SIZE = [640, 360];

// Starts Chromium, or exits 1 when it is not installed.
export async function launchBrowser() {
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
  return browser;
}

// A fresh page whose console, page errors and failed requests are collected in `lines`.
// `options` are more playwright page options (e.g. `ignoreHTTPSErrors`).
export async function openPage(browser, options = {}) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, ...options });
  const lines = [];
  page.on('console', (m) => lines.push(`[${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => lines.push(`[pageerror] ${e.message}`));
  page.on('requestfailed', (r) =>
    lines.push(`[requestfailed] ${r.url()} ${r.failure()?.errorText ?? ''}`),
  );
  return { page, lines };
}

// Opens `url` and waits until the player page has set up `window.ferrocastPlayer`.
export async function gotoPlayer(page, url) {
  await page.goto(url, { waitUntil: 'load', timeout: 15_000 });
  await page.waitForFunction(() => window.ferrocastPlayer && window.ferrocastPlayer.video, null, {
    timeout: 10_000,
  });
}

// What a user would see now, from `window.ferrocastPlayer`.
export function samplePlayer(page) {
  return page.evaluate(() => {
    const p = window.ferrocastPlayer;
    return {
      currentTime: p.video.currentTime,
      // JSON has no Infinity or NaN: both become null.
      duration: Number.isFinite(p.video.duration) ? p.video.duration : null,
      paused: p.video.paused,
      ended: p.video.ended,
      seeking: p.video.seeking,
      readyState: p.video.readyState,
      width: p.video.videoWidth,
      height: p.video.videoHeight,
      proto: p.proto,
      fatal: p.fatal,
      errors: p.errors,
      state: document.body.dataset.state,
    };
  });
}

// The decoded picture, scaled to 160x90: `{ colours, min, max, blank }`. testsrc2 is
// colourful, so its frame has many distinct colours and a wide spread of brightness.
export async function checkPicture(page) {
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
  picture.blank = picture.colours < 20 || picture.max - picture.min < 100;
  return picture;
}

// Saves a full-page screenshot; a failure to do so is only logged.
export async function screenshot(page, file, label) {
  try {
    await page.screenshot({ path: file, fullPage: true });
    console.log(`${label}: screenshot ${file}`);
  } catch (e) {
    console.log(`${label}: no screenshot: ${e.message}`);
  }
}
