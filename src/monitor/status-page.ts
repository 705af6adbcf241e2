// The live status page served on `/`: one self-contained HTML document (inline CSS and script, no
// external assets) that reads `/api/hastat` every REFRESH_MS and shows it. Read-only: it has no
// forms and calls nothing else. Data is put in with textContent only, never as HTML.

import { createHash } from 'node:crypto';

export const REFRESH_MS = 2000;

const SCRIPT = `
'use strict';
const $ = (id) => document.getElementById(id);
const el = (tag, text, cls) => { const e = document.createElement(tag); if (text !== undefined) e.textContent = String(text); if (cls) e.className = cls; return e; };
const row = (cells, attrs) => { const tr = document.createElement('tr'); for (const [k, v] of Object.entries(attrs || {})) tr.setAttribute(k, v); for (const c of cells) tr.append(c instanceof Node ? c : el('td', c)); return tr; };
const td = (text, cls) => el('td', text, cls);
const secs = (s) => s === null || !Number.isFinite(s) ? '-' : s < 60 ? s.toFixed(1) + ' s' : s < 3600 ? Math.round(s / 60) + ' min' : (s / 3600).toFixed(1) + ' h';
const tone = (s) => ({ up: 'good', DONE: 'good', PASSED: 'good', stale: 'bad', fenced: 'bad', FAILED: 'bad', left: 'dim' })[s] || 'warn';
const running = (st) => st === 'DONE' || st === 'PASSED';
let view = null, fetchedAt = 0, viewAgeMs = 0, failed = '';

function ageAt(iso) {
  // Seconds from iso to now, on the writer's clock: the view's age comes from the server.
  if (!view || !iso) return null;
  return (Date.parse(view.time) - Date.parse(iso) + viewAgeMs + (performance.now() - fetchedAt)) / 1000;
}

function render() {
  const h = view;
  const age = h ? (viewAgeMs + performance.now() - fetchedAt) / 1000 : null;
  $('age').textContent = h ? 'view of ' + h.node + ', built ' + secs(age) + ' ago (' + h.time + ')' : 'no view yet';
  $('age').className = age !== null && age > 10 ? 'bad' : '';
  $('problem').textContent = failed;
  $('problem').hidden = !failed;
  if (!h) return;
  const q = h.quorum;
  $('quorum').textContent = (q.ok ? 'quorum' : 'NO QUORUM') + ' — ' + q.live + ' live' + (q.expected ? ' of ' + q.expected : '') + ' (' + q.policy + ': ' + q.reason + ')';
  $('quorum').className = 'badge ' + (q.ok ? 'good' : 'bad');
  $('quorum').dataset.ok = String(q.ok);

  const nodes = $('nodes');
  nodes.replaceChildren();
  for (const [name, n] of Object.entries(h.nodes)) {
    const f = n.lastFence;
    const fence = f ? f.result + ' by ' + f.fencer + (f.method ? ' (' + f.method + ')' : '') + ' at ' + f.time : '';
    nodes.append(row([td(name), td(n.state === 'stale' ? 'stale (down?)' : n.state, tone(n.state)), td(secs(ageAt(n.lastChange))), td(n.seq === null ? '-' : n.seq), td(fence), td(n.readError || n.declaredStaleBy || '')], { 'data-node': name, 'data-state': n.state }));
  }

  const groups = $('groups');
  groups.replaceChildren();
  let failovers = 0;
  for (const [name, g] of Object.entries(h.groups)) {
    failovers += g.failovers || 0;
    const on = Object.entries(g.instances).filter(([, i]) => i.level === g.want && running(i.state)).map(([n]) => n);
    const inst = Object.entries(g.instances).map(([n, i]) => n + ': ' + i.level + ' ' + i.state).join(', ');
    const where = on.length ? on.join(', ') : g.want && g.want !== 'stop' ? 'nowhere' : '-';
    groups.append(row([td(name), td(g.want === null ? '-' : g.want), td(where, on.length === 1 ? 'good' : on.length ? 'bad' : g.want && g.want !== 'stop' ? 'warn' : 'dim'), td(inst || '-'), td(g.failovers || 0), td((g.notes || []).join('; '))], { 'data-group': name, 'data-running-on': on.join(',') }));
  }
  $('failovers').textContent = String(failovers);

  const events = [];
  for (const [name, n] of Object.entries(h.nodes)) {
    if (n.state !== 'up' && n.lastChange) events.push([n.lastChange, name + ': last heartbeat (now ' + n.state + ')']);
    const f = n.lastFence;
    if (f) events.push([f.time, 'fence of ' + name + ' by ' + f.fencer + ': ' + f.result + (f.method ? ' via ' + f.method : '') + (f.detail ? ' — ' + f.detail : '')]);
  }
  for (const [name, g] of Object.entries(h.groups)) for (const t of g.local?.transitions || []) events.push([t.at, name + ' on ' + h.node + ': ' + (t.level || 'none') + ' ' + t.state]);
  events.sort((a, b) => (a[0] < b[0] ? 1 : a[0] > b[0] ? -1 : 0));
  const list = $('events');
  list.replaceChildren();
  for (const [at, what] of events.slice(0, 20)) list.append(row([td(at.replace('T', ' ').replace('Z', '')), td(what)]));
  if (!events.length) list.append(row([td('-'), td('nothing recent')]));

  const errors = $('errors');
  errors.replaceChildren(...h.errors.map((e) => el('li', e)));
  $('errors-box').hidden = h.errors.length === 0;
}

async function refresh() {
  try {
    const r = await fetch('/api/hastat', { cache: 'no-store' });
    if (!r.ok) throw new Error((await r.text()) || r.statusText);
    view = await r.json();
    viewAgeMs = Number(r.headers.get('x-peerha-view-age-ms')) || 0;
    fetchedAt = performance.now();
    failed = '';
  } catch (e) {
    failed = 'cannot refresh: ' + (e && e.message ? e.message : e) + ' (showing the last view)';
  }
  render();
  document.body.dataset.loaded = 'true';
}
refresh();
setInterval(refresh, ${REFRESH_MS});
setInterval(render, 500);
`;

const STYLE = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #1d232a; background: #f7f8fa; }
h1 { font-size: 1.4em; margin: 0 0 .2em; }
h2 { font-size: 1.1em; margin: 1.4em 0 .4em; }
#age { color: #555; }
table { border-collapse: collapse; background: #fff; min-width: 40em; }
th, td { text-align: left; padding: .3em .8em; border-bottom: 1px solid #e3e6ea; vertical-align: top; }
th { background: #eef1f4; font-weight: 600; }
.good { color: #17803d; font-weight: 600; }
.bad { color: #c0262d; font-weight: 600; }
.warn { color: #a15c00; font-weight: 600; }
.dim { color: #888; }
.badge { display: inline-block; padding: .25em .7em; border-radius: 1em; background: #fff; border: 1px solid currentColor; }
#problem { background: #fde8e8; color: #8a1116; padding: .4em .8em; margin: .6em 0; }
.summary span { margin-right: 1.5em; }
`;

export const STATUS_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>peerha status</title>
<style>${STYLE}</style>
</head>
<body>
<h1>peerha cluster status</h1>
<div id="age">loading…</div>
<div id="problem" hidden></div>
<p class="summary"><span id="quorum" class="badge">…</span><span>failovers seen: <b id="failovers">-</b></span><span><a href="/metrics">metrics</a> · <a href="/api/hastat">hastat JSON</a></span></p>
<h2>Nodes</h2>
<table><thead><tr><th>node</th><th>state</th><th>heartbeat age</th><th>seq</th><th>last fence</th><th>note</th></tr></thead><tbody id="nodes"></tbody></table>
<h2>Groups</h2>
<table><thead><tr><th>group</th><th>wanted</th><th>running on</th><th>instances</th><th>failovers</th><th>notes</th></tr></thead><tbody id="groups"></tbody></table>
<h2>Recent events and fences</h2>
<table><thead><tr><th>time (UTC)</th><th>event</th></tr></thead><tbody id="events"></tbody></table>
<div id="errors-box" hidden><h2>Configuration problems</h2><ul id="errors"></ul></div>
<script>${SCRIPT}</script>
</body>
</html>
`;

/** Allows exactly this page's inline script and style, and fetches to this listener only. */
export const STATUS_PAGE_CSP = [
  "default-src 'none'",
  `script-src 'sha256-${createHash('sha256').update(SCRIPT).digest('base64')}'`,
  `style-src 'sha256-${createHash('sha256').update(STYLE).digest('base64')}'`,
  "connect-src 'self'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');
