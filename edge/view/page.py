"""The live view's page and script, as bytes (served from memory; no file is read).

The script fills the figures from server-sent events (/events) with textContent only:
labels and versions come from the bundle and the car, never as HTML.
"""

from __future__ import annotations

PAGE_HTML = b"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>edgekit live view</title>
<style>
  body { font: 15px/1.35 system-ui, sans-serif; margin: 0; background: #111; color: #eee; }
  header { padding: 8px 14px; background: #222; display: flex; gap: 18px; align-items: baseline; }
  header h1 { font-size: 17px; margin: 0; }
  main { display: flex; flex-wrap: wrap; gap: 14px; padding: 14px; }
  #frame { flex: 1 1 480px; max-width: 960px; }
  #stream { width: 100%; background: #000; border: 1px solid #333; }
  aside { flex: 1 1 300px; }
  #label { font-size: 42px; font-weight: 700; margin: 0; }
  #confidence { color: #aaa; }
  table { border-collapse: collapse; width: 100%; margin: 8px 0; }
  td { padding: 2px 6px; border-bottom: 1px solid #2a2a2a; }
  td.num { text-align: right; font-variant-numeric: tabular-nums; }
  .bar { height: 8px; background: #4a9; }
  dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 8px 0; }
  dt { color: #aaa; } dd { margin: 0; font-variant-numeric: tabular-nums; }
  #swap { background: #463; padding: 6px 8px; margin: 8px 0; display: none; }
  h2 { font-size: 16px; margin: 12px 0 6px; }
  #thumbs { display: flex; flex-wrap: wrap; gap: 6px; }
  figure { margin: 0; font-size: 12px; color: #bbb; width: 160px; }
  figure img { width: 160px; display: block; }
  #status { color: #e96; }
</style>
</head>
<body data-ready="0">
<header><h1>edgekit live view</h1><span id="model"></span><span id="status"></span></header>
<main>
  <section id="frame">
    <img id="stream" src="/stream.mjpg" alt="the newest camera frame, region of interest drawn">
    <h2>Last logged samples</h2>
    <div id="thumbs"></div>
  </section>
  <aside>
    <p id="label">&hellip;</p>
    <div id="confidence"></div>
    <table id="topk"></table>
    <div id="swap"></div>
    <dl>
      <dt>frames/s</dt><dd id="fps"></dd>
      <dt>latency p50 / p99</dt><dd id="latency"></dd>
      <dt>frame</dt><dd id="frames"></dd>
      <dt>skipped</dt><dd id="skipped"></dd>
      <dt>swaps (refused)</dt><dd id="swaps"></dd>
      <dt>viewers, dropped</dt><dd id="viewers"></dd>
    </dl>
    <h2>Sample log</h2>
    <dl id="log"></dl>
  </aside>
</main>
<script src="/app.js"></script>
</body>
</html>
"""

APP_JS = b"""'use strict';
const $ = (id) => document.getElementById(id);
const text = (id, value) => { $(id).textContent = value; };
const ms = (v) => (v === null || v === undefined) ? '-' : v.toFixed(1) + ' ms';
let thumbsShown = '';

function row(cells) {
  const tr = document.createElement('tr');
  for (const [value, cls] of cells) {
    const td = document.createElement('td');
    if (value instanceof Node) td.appendChild(value); else td.textContent = value;
    if (cls) td.className = cls;
    tr.appendChild(td);
  }
  return tr;
}

function render(s) {
  const c = s.counters || {};
  text('label', s.label || '-');
  text('confidence', s.confidence === undefined ? '' : 'confidence ' + (100 * s.confidence).toFixed(1) + '%'
       + (s.truth ? ' (truth: ' + s.truth + ')' : ''));
  text('model', s.model_version ? 'model ' + s.model_version : '');
  const topk = $('topk');
  topk.replaceChildren(...(s.top_k || []).map(([name, p]) => {
    const bar = document.createElement('div');
    bar.className = 'bar';
    bar.style.width = Math.round(100 * p) + '%';
    return row([[name], [(100 * p).toFixed(1) + '%', 'num'], [bar]]);
  }));
  text('fps', s.fps.toFixed(1));
  text('latency', ms(s.latency_p50_ms) + ' / ' + ms(s.latency_p99_ms));
  text('frames', (s.frame === undefined ? '-' : '#' + s.frame) + ' (' + (c.frames || 0) + ' answered)');
  text('skipped', String(c.skipped || 0));
  text('swaps', (c.swaps || 0) + ' (' + (c.swaps_refused || 0) + ')');
  text('viewers', s.view.clients + ', ' + s.view.dropped + ' dropped (slow viewers)');
  const swap = s.swaps && s.swaps.length ? s.swaps[s.swaps.length - 1] : null;
  $('swap').style.display = swap ? 'block' : 'none';
  if (swap) text('swap', 'hot swap at frame ' + swap.frame + ': ' + swap.from + ' \\u2192 ' + swap.to);
  const log = $('log');
  const entries = Object.entries(c).filter(([k]) => k.startsWith('log.'));
  log.replaceChildren(...entries.flatMap(([k, v]) => {
    const dt = document.createElement('dt'); dt.textContent = k.slice(4);
    const dd = document.createElement('dd'); dd.textContent = String(v);
    return [dt, dd];
  }));
  if (!entries.length) { const dd = document.createElement('dd'); dd.textContent = 'off'; log.appendChild(dd); }
  const ids = (s.thumbnails || []).map((t) => t.id).join(',');
  if (ids !== thumbsShown) {
    thumbsShown = ids;
    $('thumbs').replaceChildren(...s.thumbnails.map((t) => {
      const figure = document.createElement('figure');
      const img = document.createElement('img');
      img.src = t.url; img.alt = 'logged sample, frame ' + t.frame;
      const caption = document.createElement('figcaption');
      caption.textContent = '#' + t.frame + ' ' + t.label + ' ' + (100 * t.confidence).toFixed(0) + '% (' + t.reasons + ')';
      figure.append(img, caption);
      return figure;
    }));
  }
  document.body.dataset.frame = String(s.frame === undefined ? -1 : s.frame);
  document.body.dataset.model = s.model_version || '';
  document.body.dataset.swaps = String(c.swaps || 0);
  document.body.dataset.ready = '1';
}

const events = new EventSource('/events');
events.onmessage = (e) => { text('status', ''); render(JSON.parse(e.data)); };
events.onerror = () => text('status', 'reconnecting\\u2026 (is edgekit run still running?)');
"""
