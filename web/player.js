// ferrocast player page.
//
// Owns: the live stream list (polled from the ZLMediaKit-compatible API), one player at a
// time (hls.js for HLS, mpegts.js for HTTP-FLV and WebSocket-FLV, native HLS where hls.js
// cannot run), the statistics shown under the video, and `window.ferrocastPlayer`, the
// contract automated tests read.
//
// Must never: load anything from outside the server (the page works offline), put
// server- or publisher-supplied text into the page as HTML (stream names come from
// whoever publishes), or leave a previous player running when another one starts.
//
// Plain script, no build step: hls.js and mpegts.js are loaded before this file by
// index.html and found as `window.Hls` and `window.mpegts`.
'use strict';

(function () {
  // The stream list is refreshed this often; a new publisher shows up within 2 s.
  const POLL_INTERVAL_MS = 2000;
  // A stalled API call is abandoned after this long so that polling carries on.
  const API_TIMEOUT_MS = 5000;
  // Statistics are redrawn this often: fast enough to watch latency move, cheap to draw.
  const STATS_INTERVAL_MS = 500;
  // The HLS bitrate is measured over this many recent segments (bytes / duration).
  const BITRATE_WINDOW_SEGMENTS = 3;

  // Low-latency defaults. With 2 s segments, liveSyncDurationCount 2 starts about 4 s behind
  // the live edge instead of hls.js's 3 segments; a 10 s forward buffer is plenty for live.
  // lowLatencyMode is off until ferrocast serves LL-HLS parts.
  const HLS_CONFIG = { lowLatencyMode: false, liveSyncDurationCount: 2, maxBufferLength: 10 };
  // No IO stash buffer (frames go to the decoder as they arrive) and skip ahead when the
  // element's buffer grows beyond mpegts.js's default limit (1.5 s).
  const FLV_CONFIG = { enableStashBuffer: false, liveBufferLatencyChasing: true };

  const PROTOCOL_NAMES = { hls: 'HLS', flv: 'HTTP-FLV', wsflv: 'WebSocket-FLV' };
  const STATE_LABELS = { idle: 'Idle', loading: 'Loading…', playing: 'Playing', error: 'Error' };
  const CODEC_NAMES = { 'mpeg4-generic': 'AAC' };

  const $ = (id) => document.getElementById(id);
  const els = {
    video: $('video'),
    placeholder: $('placeholder'),
    muteButton: $('mute-button'),
    qualityField: $('quality-field'),
    quality: $('quality'),
    stateText: $('state-text'),
    errorBox: $('error-box'),
    statStream: $('stat-stream'),
    statProto: $('stat-proto'),
    statResolution: $('stat-resolution'),
    statBitrate: $('stat-bitrate'),
    statLatency: $('stat-latency'),
    statWarnings: $('stat-warnings'),
    statUrl: $('stat-url'),
    playForm: $('play-form'),
    streamInput: $('stream-input'),
    proto: $('proto'),
    stopButton: $('stop-button'),
    streamsStatus: $('streams-status'),
    streamList: $('stream-list'),
  };
  const video = els.video;

  // The contract for automated tests (see web/README.md). One object for the page's life;
  // `errors`, `fatal`, `hls` and `flv` are reset each time a stream starts.
  const player = {
    video,
    proto: null, // 'hls' | 'flv' | 'wsflv' | 'record' | null
    app: null,
    stream: null,
    url: null, // the playback URL in use
    state: 'idle', // mirrors <body data-state>
    errors: [], // every player error of the current stream, recoverable or not
    fatal: false, // true once a fatal error happened for the current stream
    hls: null, // the hls.js instance, when playing HLS through hls.js
    flv: null, // the mpegts.js player, when playing HTTP-FLV or WS-FLV
    nativeHls: false, // true when the browser's own HLS is used (Safari on iOS)
    stats: { width: 0, height: 0, bitrateKbps: null, bitrateSource: null, latencySec: null },
    play,
    playRecording,
    stop,
  };
  window.ferrocastPlayer = player;

  // Each started stream gets a new session number; events from a torn-down player carry an
  // old number and are ignored, so a late error from the last stream never marks this one.
  let session = 0;
  let active = false; // a stream has been started and not stopped
  let segmentSamples = []; // recent HLS segments: { bytes, duration }
  let flvSpeedKBps = null; // mpegts.js statistics: KB/s received
  let renderedListKey = null; // the stream list is only redrawn when it changed

  // ---- URLs ---------------------------------------------------------------------------
  // Relative to the page, so the page also works behind a reverse proxy under a prefix.

  function absoluteUrl(relative) {
    return new URL(relative, document.baseURI).href;
  }

  function streamPath(app, stream) {
    // A stream name may hold '/'; every segment is escaped on its own.
    return encodeURIComponent(app) + '/' + stream.split('/').map(encodeURIComponent).join('/');
  }

  // The page's own parameters; any other (a signed URL's exp and sig, a token a
  // play hook checks) is handed on to the media URLs, so a link such as
  // /?app=live&stream=cam&proto=hls&exp=...&sig=... plays a signed stream.
  const PAGE_PARAMS = ['app', 'stream', 'proto', 'autoplay', 'record'];

  function accessQuery() {
    const params = new URLSearchParams(location.search);
    for (const name of PAGE_PARAMS) params.delete(name);
    const query = params.toString();
    return query ? '?' + query : '';
  }

  function playbackUrl(proto, app, stream) {
    const path = streamPath(app, stream);
    // The master playlist: the source and its transcoded renditions (just the source
    // when the stream is not transcoded); hls.js switches between them.
    if (proto === 'hls') return absoluteUrl(path + '/master.m3u8' + accessQuery());
    const flv = absoluteUrl(path + '.live.flv' + accessQuery());
    // http -> ws, https -> wss: same host, port and path.
    return proto === 'wsflv' ? flv.replace(/^http/, 'ws') : flv;
  }

  // "live/test" -> { app: 'live', stream: 'test' }; anything else -> null.
  function parseStreamId(text) {
    const trimmed = text.trim().replace(/^\/+/, '');
    const slash = trimmed.indexOf('/');
    if (slash <= 0 || slash === trimmed.length - 1) return null;
    return { app: trimmed.slice(0, slash), stream: trimmed.slice(slash + 1) };
  }

  // ---- state and errors ---------------------------------------------------------------

  function setState(state, label) {
    // A fatal error sticks until the next stream starts.
    if (player.fatal && state !== 'error') return;
    player.state = state;
    document.body.dataset.state = state;
    els.stateText.textContent = label || STATE_LABELS[state];
  }

  // Records a player error. `error` holds at least { fatal, source, type, details }.
  function reportError(token, error) {
    if (token !== session) return;
    const entry = Object.assign({ time: new Date().toISOString() }, error);
    player.errors.push(entry);
    if (entry.fatal) {
      player.fatal = true;
      showError(describeError(entry));
      setState('error');
    }
    els.statWarnings.textContent = String(player.errors.filter((e) => !e.fatal).length);
  }

  function describeError(e) {
    const parts = [e.source + ': ' + (e.details || e.type)];
    if (e.message) parts.push(e.message);
    if (e.httpStatus) parts.push('HTTP ' + e.httpStatus);
    const text = parts.join(' — ');
    return e.httpStatus === 404 ? text + ' (is the stream live?)' : text;
  }

  function showError(message) {
    els.errorBox.textContent = message;
    els.errorBox.hidden = false;
  }

  function clearError() {
    els.errorBox.textContent = '';
    els.errorBox.hidden = true;
  }

  // ---- starting and stopping ----------------------------------------------------------

  function play(app, stream, proto) {
    if (!PROTOCOL_NAMES[proto]) throw new Error('unknown protocol ' + proto);
    teardown();
    const token = session;
    active = true;
    Object.assign(player, { proto, app, stream, errors: [], fatal: false });
    player.url = playbackUrl(proto, app, stream);
    clearError();
    setState('loading');
    els.placeholder.hidden = true;
    els.statStream.textContent = app + '/' + stream;
    els.statProto.textContent = PROTOCOL_NAMES[proto];
    els.statUrl.textContent = player.url;
    els.statWarnings.textContent = '0';
    els.streamInput.value = app + '/' + stream;
    els.proto.value = proto;
    markCurrentStream();
    rememberInAddressBar(app, stream, proto);

    try {
      if (proto === 'hls') startHls(token);
      else startFlv(token);
    } catch (e) {
      reportError(token, { fatal: true, source: 'page', type: 'exception', details: String(e) });
    }
  }

  // Plays a recording served under /record/: an MP4 file in the video element itself
  // (the server answers Range requests, so seeking works), an HLS recording with hls.js.
  function playRecording(path) {
    const rel = String(path).replace(/^\/+/, '');
    if (!/^record\/[^?#]+\.(mp4|m3u8)$/.test(rel) || rel.split('/').includes('..')) {
      throw new Error('not a recording path: ' + path);
    }
    teardown();
    const token = session;
    active = true;
    Object.assign(player, { proto: 'record', app: null, stream: null, errors: [], fatal: false });
    player.url = absoluteUrl(rel + accessQuery());
    clearError();
    setState('loading');
    els.placeholder.hidden = true;
    els.statStream.textContent = rel;
    els.statProto.textContent = rel.endsWith('.mp4') ? 'MP4 recording' : 'HLS recording';
    els.statUrl.textContent = player.url;
    els.statWarnings.textContent = '0';
    try {
      if (rel.endsWith('.m3u8')) {
        startHls(token);
      } else {
        video.src = player.url;
        startVideo(token);
      }
    } catch (e) {
      reportError(token, { fatal: true, source: 'page', type: 'exception', details: String(e) });
    }
  }

  function stop() {
    teardown();
    active = false;
    Object.assign(player, { proto: null, app: null, stream: null, url: null });
    player.fatal = false;
    clearError();
    setState('idle', 'Stopped');
    els.placeholder.hidden = false;
    for (const el of [els.statStream, els.statProto, els.statUrl]) el.textContent = '—';
    markCurrentStream();
    forgetInAddressBar();
  }

  // Destroys the current player, if any, and invalidates its late events.
  function teardown() {
    session += 1;
    if (player.hls) {
      player.hls.destroy(); // also detaches the media element
      player.hls = null;
    }
    if (player.flv) {
      try {
        player.flv.destroy(); // unloads, detaches the media element, drops listeners
      } catch (e) {
        console.warn('mpegts.js destroy failed', e);
      }
      player.flv = null;
    }
    if (player.nativeHls || video.hasAttribute('src')) {
      video.removeAttribute('src');
      video.load();
    }
    player.nativeHls = false;
    segmentSamples = [];
    flvSpeedKBps = null;
    renderQualityOptions();
    drawStats();
  }

  function startHls(token) {
    const Hls = window.Hls;
    if (Hls && Hls.isSupported()) {
      const hls = new Hls(HLS_CONFIG);
      player.hls = hls;
      hls.on(Hls.Events.ERROR, (_event, data) => {
        reportError(token, {
          fatal: Boolean(data.fatal),
          source: 'hls.js',
          type: data.type,
          details: data.details,
          message: data.error ? data.error.message : data.reason,
          httpStatus: data.response && data.response.code ? data.response.code : undefined,
        });
      });
      // play() is called once the playlist is known, the order hls.js documents: an earlier
      // call can be aborted while hls.js is still attaching its MediaSource.
      hls.on(Hls.Events.MANIFEST_PARSED, () => {
        if (token !== session) return;
        renderQualityOptions();
        startVideo(token);
      });
      hls.on(Hls.Events.LEVEL_SWITCHED, () => {
        if (token === session) updateAutoQualityLabel();
      });
      hls.on(Hls.Events.FRAG_LOADED, (_event, data) => {
        if (token !== session || data.frag.type !== 'main') return;
        const bytes = data.frag.stats.total || data.frag.stats.loaded;
        if (!(bytes > 0 && data.frag.duration > 0)) return;
        segmentSamples.push({ bytes, duration: data.frag.duration });
        if (segmentSamples.length > BITRATE_WINDOW_SEGMENTS) segmentSamples.shift();
      });
      hls.loadSource(player.url);
      hls.attachMedia(video);
    } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
      // Safari on iPhone has no MediaSource: its own HLS player does the job.
      player.nativeHls = true;
      video.src = player.url;
      startVideo(token);
    } else {
      throw new Error('this browser can play neither hls.js (MediaSource) nor native HLS');
    }
  }

  function startFlv(token) {
    const mpegts = window.mpegts;
    if (!mpegts) throw new Error('mpegts.js did not load');
    if (!mpegts.getFeatureList().mseLivePlayback) {
      throw new Error('this browser cannot play live FLV (no MediaSource)');
    }
    const flv = mpegts.createPlayer({ type: 'flv', isLive: true, url: player.url }, FLV_CONFIG);
    player.flv = flv;
    // mpegts.js gives up on the stream after any ERROR event: all of them are fatal here.
    flv.on(mpegts.Events.ERROR, (type, details, info) => {
      reportError(token, {
        fatal: true,
        source: 'mpegts.js',
        type,
        details,
        message: typeof info === 'string' ? info : info && (info.msg || info.message),
        httpStatus: info && info.code > 0 ? info.code : undefined,
      });
    });
    flv.on(mpegts.Events.STATISTICS_INFO, (info) => {
      if (token === session && typeof info.speed === 'number') flvSpeedKBps = info.speed;
    });
    flv.on(mpegts.Events.LOADING_COMPLETE, () => {
      if (token === session) setState('idle', 'Stream ended');
    });
    flv.attachMediaElement(video); // sets video.src to its MediaSource at once
    flv.load();
    startVideo(token);
  }

  // Starts playback. Autoplay rules allow muted playback; if sound was turned on and the
  // browser refuses, play muted rather than not at all.
  function startVideo(token) {
    const attempt = video.play();
    if (!attempt || !attempt.catch) return;
    attempt.catch((e) => {
      if (token !== session) return; // interrupted by a newer stream or by stop()
      if (e.name === 'NotAllowedError' && !video.muted) {
        video.muted = true;
        startVideo(token);
      } else if (e.name === 'NotAllowedError') {
        setState('idle', 'Press play to start');
      }
      // Other rejections (AbortError, NotSupportedError) surface as player or media errors.
    });
  }

  // ---- the video element --------------------------------------------------------------

  function onVideoEvent(event) {
    if (!active) return;
    const token = session;
    switch (event.type) {
      case 'playing':
        setState('playing');
        break;
      case 'waiting':
        setState('loading', 'Buffering…');
        break;
      case 'pause':
        // A 'pause' queued by the teardown of the previous stream arrives after the new
        // stream's play(): the element is no longer paused then, and it is ignored.
        if (video.paused && !video.ended) setState('idle', 'Paused');
        break;
      case 'ended':
        setState('idle', 'Stream ended');
        break;
      case 'error': {
        const error = video.error;
        if (!error) return;
        reportError(token, {
          fatal: true,
          source: 'video',
          type: 'mediaError',
          details: 'MEDIA_ERR code ' + error.code,
          message: error.message || undefined,
        });
        break;
      }
    }
  }
  for (const type of ['playing', 'waiting', 'pause', 'ended', 'error']) {
    video.addEventListener(type, onVideoEvent);
  }

  function syncMuteButton() {
    els.muteButton.textContent = video.muted ? 'Unmute' : 'Mute';
    els.muteButton.setAttribute('aria-pressed', String(video.muted));
  }
  els.muteButton.addEventListener('click', () => {
    video.muted = !video.muted;
    if (!video.muted && video.volume === 0) video.volume = 1;
  });
  video.addEventListener('volumechange', syncMuteButton);

  // ---- statistics ---------------------------------------------------------------------

  function lastEnd(ranges) {
    return ranges && ranges.length > 0 ? ranges.end(ranges.length - 1) : null;
  }

  // Bitrate in kbit/s and where it comes from.
  function currentBitrate() {
    if (player.hls) {
      if (segmentSamples.length > 0) {
        let bytes = 0;
        let duration = 0;
        for (const s of segmentSamples) {
          bytes += s.bytes;
          duration += s.duration;
        }
        return { kbps: (bytes * 8) / duration / 1000, source: 'segments' };
      }
      const level = player.hls.levels[player.hls.currentLevel];
      if (level && level.bitrate > 0) return { kbps: level.bitrate / 1000, source: 'playlist' };
      const estimate = player.hls.bandwidthEstimate;
      if (estimate > 0) return { kbps: estimate / 1000, source: 'bandwidth estimate' };
    }
    if (player.flv && flvSpeedKBps !== null) {
      // mpegts.js counts KB as 1024 bytes.
      return { kbps: (flvSpeedKBps * 1024 * 8) / 1000, source: 'received' };
    }
    return null;
  }

  // Seconds between the newest media the player has and what is on screen; null when the
  // stream is not live (a recording) or nothing is known yet.
  function currentLatency() {
    if (player.hls) {
      const details = player.hls.latestLevelDetails;
      if (details && !details.live) return null;
      const latency = player.hls.latency;
      if (typeof latency === 'number' && latency > 0 && Number.isFinite(latency)) return latency;
    }
    if (player.nativeHls && Number.isFinite(video.duration)) return null; // not live
    const edge = player.flv ? lastEnd(video.buffered) : lastEnd(video.seekable);
    if (edge === null || video.readyState === 0) return null;
    return Math.max(0, edge - video.currentTime);
  }

  function drawStats() {
    const stats = player.stats;
    stats.width = video.videoWidth;
    stats.height = video.videoHeight;
    const bitrate = active ? currentBitrate() : null;
    stats.bitrateKbps = bitrate ? Math.round(bitrate.kbps) : null;
    stats.bitrateSource = bitrate ? bitrate.source : null;
    stats.latencySec = active ? currentLatency() : null;

    els.statResolution.textContent =
      stats.width > 0 ? stats.width + ' × ' + stats.height : active ? 'no video yet' : '—';
    els.statBitrate.textContent = bitrate
      ? formatKbps(bitrate.kbps) + ' (' + bitrate.source + ')'
      : '—';
    els.statLatency.textContent = stats.latencySec === null ? '—' : stats.latencySec.toFixed(2) + ' s';
  }
  setInterval(drawStats, STATS_INTERVAL_MS);

  function formatKbps(kbps) {
    return kbps >= 1000 ? (kbps / 1000).toFixed(2) + ' Mbit/s' : Math.round(kbps) + ' kbit/s';
  }

  // ---- quality (hls.js levels) --------------------------------------------------------

  function levelLabel(level, index) {
    const name = level.height > 0 ? level.height + 'p' : 'Level ' + (index + 1);
    return level.bitrate > 0 ? name + ' · ' + formatKbps(level.bitrate / 1000) : name;
  }

  // The selector appears only when the playlist offers a choice (a master playlist).
  function renderQualityOptions() {
    const levels = player.hls ? player.hls.levels : [];
    els.quality.replaceChildren();
    if (levels.length < 2) {
      els.qualityField.hidden = true;
      return;
    }
    els.quality.append(new Option('Auto', '-1'));
    // Highest quality first, as viewers expect.
    for (let i = levels.length - 1; i >= 0; i -= 1) {
      els.quality.append(new Option(levelLabel(levels[i], i), String(i)));
    }
    els.quality.value = player.hls.autoLevelEnabled ? '-1' : String(player.hls.currentLevel);
    els.qualityField.hidden = false;
    updateAutoQualityLabel();
  }

  function updateAutoQualityLabel() {
    const hls = player.hls;
    const auto = els.quality.options[0];
    if (!hls || !auto) return;
    const level = hls.autoLevelEnabled ? hls.levels[hls.currentLevel] : null;
    auto.textContent = level && level.height > 0 ? 'Auto (' + level.height + 'p)' : 'Auto';
    // A level forced from elsewhere (hls.currentLevel set by a script) shows in the menu.
    els.quality.value = hls.autoLevelEnabled ? '-1' : String(hls.currentLevel);
  }

  els.quality.addEventListener('change', () => {
    // -1 hands the choice back to hls.js's bandwidth-based switching.
    if (player.hls) player.hls.currentLevel = Number(els.quality.value);
  });

  // ---- the stream list ----------------------------------------------------------------

  // getMediaList has one entry per output schema (rtmp, hls, ts ...): one row per app/stream.
  function summarizeStreams(entries) {
    const byId = new Map();
    for (const e of entries) {
      if (!e || typeof e.app !== 'string' || typeof e.stream !== 'string') continue;
      const id = e.app + '/' + e.stream;
      let s = byId.get(id);
      if (!s) {
        s = { id, app: e.app, stream: e.stream, schemas: [], readers: 0, totalReaders: null, bytesSpeed: 0, tracks: [] };
        byId.set(id, s);
      }
      if (typeof e.schema === 'string' && !s.schemas.includes(e.schema)) s.schemas.push(e.schema);
      if (Number.isFinite(e.readerCount)) s.readers += e.readerCount;
      // totalReaderCount, when present, already counts the readers of every schema.
      if (Number.isFinite(e.totalReaderCount)) s.totalReaders = Math.max(s.totalReaders || 0, e.totalReaderCount);
      if (Number.isFinite(e.bytesSpeed)) s.bytesSpeed = Math.max(s.bytesSpeed, e.bytesSpeed);
      if (Array.isArray(e.tracks) && e.tracks.length > s.tracks.length) s.tracks = e.tracks;
    }
    return [...byId.values()].sort((a, b) => a.id.localeCompare(b.id));
  }

  function describeTrack(t) {
    const codec = CODEC_NAMES[t.codec_id_name] || t.codec_id_name || '?';
    if (t.codec_type === 0) {
      const parts = [codec];
      if (t.width > 0 && t.height > 0) parts.push(t.width + '×' + t.height);
      if (t.fps > 0) parts.push(Math.round(t.fps) + ' fps');
      return parts.join(' ');
    }
    if (t.codec_type === 1) {
      const parts = [codec];
      if (t.sample_rate > 0) parts.push(t.sample_rate / 1000 + ' kHz');
      if (t.channels === 1) parts.push('mono');
      else if (t.channels === 2) parts.push('stereo');
      else if (t.channels > 2) parts.push(t.channels + ' ch');
      return parts.join(' ');
    }
    return codec;
  }

  function describeStream(s) {
    const viewers = s.totalReaders !== null ? s.totalReaders : s.readers;
    const usage = [viewers === 1 ? '1 viewer' : viewers + ' viewers'];
    if (s.bytesSpeed > 0) usage.push(formatKbps((s.bytesSpeed * 8) / 1000));
    if (s.schemas.length > 0) usage.push(s.schemas.join(' '));
    return { media: s.tracks.map(describeTrack).join(' · '), usage: usage.join(' · ') };
  }

  function renderStreams(streams) {
    const key = JSON.stringify(streams.map((s) => [s.id, describeStream(s)]));
    if (key === renderedListKey) return; // unchanged: keep the DOM (and keyboard focus) as is
    renderedListKey = key;

    const focusedId = document.activeElement && document.activeElement.dataset
      ? document.activeElement.dataset.streamId
      : undefined;
    const items = streams.map((s) => {
      const text = describeStream(s);
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'stream';
      button.dataset.streamId = s.id;
      button.dataset.app = s.app;
      button.dataset.stream = s.stream;
      const name = document.createElement('span');
      name.className = 'stream-name';
      name.textContent = s.id;
      button.append(name);
      for (const line of [text.media, text.usage]) {
        if (!line) continue;
        const meta = document.createElement('span');
        meta.className = 'stream-meta';
        meta.textContent = line;
        button.append(meta);
      }
      const li = document.createElement('li');
      li.append(button);
      return li;
    });
    els.streamList.replaceChildren(...items);
    markCurrentStream();
    if (focusedId !== undefined) {
      const again = [...els.streamList.querySelectorAll('button')].find((b) => b.dataset.streamId === focusedId);
      if (again) again.focus();
    }

    if (streams.length === 0) {
      const host = location.hostname || 'host';
      setStreamsStatus(
        'No live streams. Publish one, for example: ffmpeg -re -i input.mp4 -c copy -f flv rtmp://' +
          host + ':1935/live/test',
        false,
      );
    } else {
      setStreamsStatus(streams.length === 1 ? '1 live stream' : streams.length + ' live streams', false);
    }
  }

  function markCurrentStream() {
    const current = active ? player.app + '/' + player.stream : null;
    for (const button of els.streamList.querySelectorAll('button')) {
      if (button.dataset.streamId === current) button.setAttribute('aria-current', 'true');
      else button.removeAttribute('aria-current');
    }
  }

  function setStreamsStatus(text, isProblem) {
    els.streamsStatus.textContent = text;
    els.streamsStatus.classList.toggle('problem', isProblem);
  }

  // A list kept on screen after a failed poll would be stale: clear it.
  function showApiProblem(text) {
    if (renderedListKey !== null) {
      els.streamList.replaceChildren();
      renderedListKey = null;
    }
    setStreamsStatus(text + ' You can still type app/stream above.', true);
  }

  async function fetchStreamList() {
    // The public list (no secret: a viewer is never asked for the admin secret).
    const url = absoluteUrl('streams.json');
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), API_TIMEOUT_MS);
    try {
      const response = await fetch(url, {
        signal: controller.signal,
        cache: 'no-store',
        headers: { Accept: 'application/json' },
      });
      if (response.status === 404) {
        showApiProblem('This server does not publish its stream list.');
        return;
      }
      if (!response.ok) {
        showApiProblem('The stream list is unavailable (HTTP ' + response.status + ').');
        return;
      }
      let body;
      try {
        body = await response.json();
      } catch (e) {
        showApiProblem('The stream list was not JSON.');
        return;
      }
      if (!body || body.code !== 0) {
        const code = body && body.code !== undefined ? body.code : '?';
        const msg = body && body.msg ? body.msg : 'no message';
        showApiProblem('The server refused the stream list (code ' + code + ': ' + msg + ').');
        return;
      }
      renderStreams(summarizeStreams(Array.isArray(body.data) ? body.data : []));
    } catch (e) {
      const reason = e.name === 'AbortError' ? 'no answer in ' + API_TIMEOUT_MS / 1000 + ' s' : e.message;
      showApiProblem('Cannot reach the stream list (' + reason + ').');
    } finally {
      clearTimeout(timer);
    }
  }

  // One request at a time: the next poll is scheduled when the previous one has finished.
  async function pollStreams() {
    if (!document.hidden) await fetchStreamList();
    setTimeout(pollStreams, POLL_INTERVAL_MS);
  }

  els.streamList.addEventListener('click', (event) => {
    const button = event.target.closest('button.stream');
    if (button) play(button.dataset.app, button.dataset.stream, els.proto.value);
  });

  // ---- forms --------------------------------------------------------------------------

  els.streamInput.addEventListener('input', () => els.streamInput.setCustomValidity(''));

  els.playForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const id = parseStreamId(els.streamInput.value);
    if (!id) {
      els.streamInput.setCustomValidity('Enter the stream as app/stream, for example live/test.');
      els.streamInput.reportValidity();
      return;
    }
    play(id.app, id.stream, els.proto.value);
  });

  // Switching protocol while a stream plays restarts it with the new protocol.
  els.proto.addEventListener('change', () => {
    if (active) play(player.app, player.stream, els.proto.value);
  });

  els.stopButton.addEventListener('click', stop);

  // Keeps the address bar shareable: reloading it opens the same stream.
  function rememberInAddressBar(app, stream, proto) {
    const params = new URLSearchParams(location.search);
    params.set('app', app);
    params.set('stream', stream);
    params.set('proto', proto);
    params.set('autoplay', '1');
    history.replaceState(null, '', '?' + params.toString());
  }

  // After Stop, reloading the page must not start the stream again.
  function forgetInAddressBar() {
    const params = new URLSearchParams(location.search);
    for (const name of ['app', 'stream', 'autoplay']) params.delete(name);
    const query = params.toString();
    history.replaceState(null, '', query ? '?' + query : location.pathname);
  }

  // Browsers without MediaSource (Safari on iPhone) cannot use mpegts.js at all.
  function disableUnsupportedProtocols() {
    const mpegts = window.mpegts;
    const flvOk = Boolean(mpegts && mpegts.getFeatureList().mseLivePlayback);
    const Hls = window.Hls;
    const hlsOk = Boolean((Hls && Hls.isSupported()) || video.canPlayType('application/vnd.apple.mpegurl'));
    for (const option of els.proto.options) {
      const ok = option.value === 'hls' ? hlsOk : flvOk;
      option.disabled = !ok;
      if (!ok) option.textContent += ' — not supported here';
    }
    if (els.proto.selectedOptions[0] && els.proto.selectedOptions[0].disabled) {
      const first = [...els.proto.options].find((o) => !o.disabled);
      if (first) els.proto.value = first.value;
    }
  }

  // ---- start-up -----------------------------------------------------------------------

  function start() {
    if (window.mpegts && window.mpegts.LoggingControl) {
      // mpegts.js logs every chunk at info/debug level; keep warnings and errors.
      window.mpegts.LoggingControl.applyConfig({ enableDebug: false, enableVerbose: false, enableInfo: false });
    }
    disableUnsupportedProtocols();
    syncMuteButton();
    drawStats();

    // ?app=live&stream=test&proto=hls|flv|wsflv&autoplay=1 opens a stream directly;
    // without autoplay=1 the form is only filled in.
    const params = new URLSearchParams(location.search);
    const proto = params.get('proto');
    if (proto && PROTOCOL_NAMES[proto]) els.proto.value = proto;
    const app = params.get('app');
    const stream = params.get('stream');
    const recording = params.get('record');
    if (recording) {
      try {
        playRecording(recording);
      } catch (e) {
        showError(String(e.message || e));
      }
    } else if (app && stream) {
      els.streamInput.value = app + '/' + stream;
      if (params.get('autoplay') === '1') play(app, stream, els.proto.value);
    }
    pollStreams();
  }

  start();
})();
