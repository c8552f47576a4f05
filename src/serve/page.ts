/**
 * The status page, bundled as three strings (HTML, CSS, JS) so it ships in
 * the compiled package and loads nothing from outside the machine. It renders
 * the status document it receives over server-sent events: the stage stepper,
 * the 2 x 120 shard heatmap (a colour and a glyph per state, so it reads in
 * grayscale; a hover with the shard's figures), backfill progress with ETA,
 * verify per pair, instances, journal and outbox, and a STALE banner when
 * the data is older than three intervals. Below 700 px each row of 120
 * shards wraps into 12 x 10.
 */

/** The page's HTML shell (no data in it; the data comes over `/events`). */
export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>shardkit status</title>
<link rel="stylesheet" href="app.css">
</head>
<body>
<div id="stale" class="stale" role="alert" hidden><strong>STALE</strong> <span id="stale-why"></span></div>
<header>
  <h1>shardkit <span id="stage-name" data-stage="">…</span> <small id="stage-version"></small></h1>
  <ol id="stepper" class="stepper" aria-label="cutover stages"></ol>
  <p class="meta">updated <span id="age">…</span> · <span id="sources"></span></p>
</header>
<main>
  <section id="problems-box" class="problems" hidden><h2>Problems</h2><ul id="problems"></ul></section>
  <p class="next"><strong>Next:</strong> <span id="next-step">…</span></p>
  <section>
    <h2>Shards</h2>
    <div id="legend" class="legend"></div>
    <div class="heat"><span class="rowlabel">user</span><div id="heat-user" class="grid" data-dimension="user"></div></div>
    <div class="heat"><span class="rowlabel">merchant</span><div id="heat-merchant" class="grid" data-dimension="merchant"></div></div>
    <p id="hover" class="hover" aria-live="polite">hover a shard for its figures</p>
  </section>
  <div class="cols">
    <section><h2>Backfill</h2><div class="bar"><div id="bf-bar"></div></div><dl id="backfill"></dl></section>
    <section><h2>Verify</h2><table id="verify"></table></section>
    <section><h2>Instances</h2><table id="instances"></table><p id="runlock" class="meta"></p></section>
    <section><h2>Journal and outbox</h2><dl id="queues"></dl><table id="primaries"></table></section>
  </div>
</main>
<footer class="meta">read-only · changes are made with <code>shardctl</code> · <span id="generated"></span></footer>
<script src="app.js"></script>
</body>
</html>
`

/** The page's stylesheet. */
export const PAGE_CSS = `:root{--fg:#1b1f24;--muted:#5b6470;--bg:#fff;--line:#d0d7de;
--pending:#d8dee4;--copying:#54aeff;--copied:#4ac26b;--verified:#1a7f37;--mismatch:#fb8f44;--error:#cf222e;--paused:#d4a72c}
*{box-sizing:border-box}section{min-width:0;overflow-x:auto}body{margin:0;font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);background:var(--bg)}
header,main,footer{padding:8px 16px}h1{font-size:20px;margin:4px 0}h2{font-size:15px;margin:12px 0 6px}
.meta{color:var(--muted);font-size:12px}.next{background:#f6f8fa;border:1px solid var(--line);padding:6px 10px;border-radius:6px}
.stale{position:sticky;top:0;z-index:2;background:#cf222e;color:#fff;padding:8px 16px;font-size:15px}
.problems{border:2px solid var(--error);border-radius:6px;padding:4px 12px}.problems ul{margin:4px 0;padding-left:18px}
.stepper{display:flex;flex-wrap:wrap;gap:4px;list-style:none;padding:0;margin:6px 0}
.stepper li{border:1px solid var(--line);border-radius:12px;padding:2px 10px;font-size:12px;color:var(--muted)}
.stepper li.done{background:#eaeef2;color:var(--fg)}.stepper li.current{background:#0969da;color:#fff;border-color:#0969da;font-weight:600}
.legend{display:flex;flex-wrap:wrap;gap:10px;margin-bottom:6px;font-size:12px}.legend span.sw{display:inline-block;width:16px;height:16px;text-align:center;line-height:16px;border-radius:2px;margin-right:3px;vertical-align:middle;font-size:11px}
.heat{display:flex;align-items:flex-start;gap:6px;margin:3px 0}.rowlabel{width:64px;flex:none;font-size:12px;color:var(--muted);padding-top:2px}
.grid{display:grid;grid-template-columns:repeat(120,minmax(0,1fr));gap:1px;flex:1;min-width:0}
.cell{aspect-ratio:1/1;min-height:8px;font-size:9px;line-height:1;display:flex;align-items:center;justify-content:center;border-radius:1px;cursor:default;overflow:hidden;color:#000}
.s-pending{background:var(--pending)}.s-copying{background:var(--copying)}.s-copied{background:var(--copied)}.s-verified{background:var(--verified);color:#fff}
.s-mismatch{background:var(--mismatch)}.s-error{background:var(--error);color:#fff}.s-paused{background:var(--paused)}
.hover{min-height:2.8em;font-size:12px;color:var(--muted)}
.cols{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:0 24px}
.bar{height:14px;background:#eaeef2;border-radius:7px;overflow:hidden}.bar div{height:100%;background:#0969da;width:0}
dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 10px;margin:6px 0}dt{color:var(--muted)}dd{margin:0}
table{border-collapse:collapse;width:100%;font-size:12px}td,th{border-bottom:1px solid var(--line);padding:3px 4px;text-align:left;vertical-align:top}
.why{color:var(--muted);font-style:italic}code{font-size:12px}
@media (max-width:700px){.grid{grid-template-columns:repeat(12,minmax(0,1fr))}.cell{font-size:11px;min-height:18px}.heat{flex-direction:column}.rowlabel{width:auto}}
`

/** The page's script: renders each status document it receives; no library, nothing from outside. */
export const PAGE_JS = `(function () {
  'use strict';
  var GLYPH = { pending: '\\u00b7', copying: '\\u25b8', copied: '=', verified: '\\u2713', mismatch: '!', error: '\\u2715', paused: '\\u2016' };
  var STATES = ['pending', 'copying', 'copied', 'verified', 'mismatch', 'error', 'paused'];
  var token = new URLSearchParams(location.search).get('token');
  var q = token ? '?token=' + encodeURIComponent(token) : '';
  var lastEvent = 0, interval = 2000, serverAge = 0, serverError = null, current = null;
  function $(id) { return document.getElementById(id); }
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function why(o, f) { return o && o.why && o.why[f] ? o.why[f] : 'unknown'; }
  function val(o, f, fmt) {
    var v = o ? o[f] : null;
    if (v === null || v === undefined) return el('span', { class: 'why', title: why(o, f) }, '\\u2013 ' + why(o, f));
    return document.createTextNode(fmt ? fmt(v) : String(v));
  }
  function num(n) { return Number(n).toLocaleString('en-US'); }
  function dur(s) { return s < 120 ? Math.round(s) + ' s' : s < 7200 ? Math.round(s / 60) + ' min' : (s / 3600).toFixed(1) + ' h'; }
  function ms(v) { return v < 1000 ? v + ' ms' : (v / 1000).toFixed(1) + ' s'; }
  function dl(id, rows) {
    var d = $(id); d.textContent = '';
    rows.forEach(function (r) { d.appendChild(el('dt', {}, r[0])); var dd = el('dd'); dd.appendChild(r[1]); d.appendChild(dd); });
  }
  function table(id, head, rows) {
    var t = $(id); t.textContent = '';
    var tr = el('tr'); head.forEach(function (h) { tr.appendChild(el('th', {}, h)); }); t.appendChild(tr);
    rows.forEach(function (r) { var x = el('tr'); r.forEach(function (c) { var td = el('td'); td.appendChild(typeof c === 'object' ? c : document.createTextNode(String(c))); x.appendChild(td); }); t.appendChild(x); });
  }
  function txt(s) { return document.createTextNode(s); }
  function renderHeat(dim, shards) {
    var g = $('heat-' + dim);
    if (g.children.length !== shards.length) {
      g.textContent = '';
      shards.forEach(function (s) { g.appendChild(el('div', { class: 'cell' })); });
    }
    shards.forEach(function (s, i) {
      var c = g.children[i];
      var title = dim + ' shard ' + s.shard + ' \\u00b7 ' + s.state + ' \\u00b7 ' + s.host + ' ' + s.database + '.' + s.table +
        ' \\u00b7 differences ' + (s.differences === null ? '? (' + why(s, 'differences') + ')' : s.differences) + ' \\u00b7 ' + s.reason;
      c.className = 'cell s-' + s.state;
      c.setAttribute('data-state', s.state);
      c.setAttribute('data-shard', String(s.shard));
      c.setAttribute('title', title);
      c.setAttribute('aria-label', title);
      c.textContent = GLYPH[s.state] || '?';
      c.onmouseenter = function () { $('hover').textContent = title; };
    });
  }
  function render(d) {
    current = d;
    var st = d.stage;
    var name = $('stage-name');
    name.textContent = st.stage + (st.stage === 'read-shards' ? ' ' + st.readPercent + '%' : '');
    name.setAttribute('data-stage', st.stage);
    name.setAttribute('data-version', String(st.version));
    $('stage-version').textContent = 'v' + st.version + (st.enteredBy ? ' \\u00b7 entered by ' + st.enteredBy : '') + (st.enteredAt ? ' at ' + st.enteredAt : '');
    var step = $('stepper'); step.textContent = '';
    var idx = st.stages.indexOf(st.stage);
    st.stages.forEach(function (s, i) { step.appendChild(el('li', { class: i < idx ? 'done' : i === idx ? 'current' : '', 'aria-current': i === idx ? 'step' : 'false' }, s)); });
    $('sources').textContent = 'stage from ' + st.source + ' \\u00b7 Redis ' + (d.sources.redis.ok ? 'ok' : 'UNREACHABLE (' + d.sources.redis.error + ')') + ' \\u00b7 control DB ' + (d.sources.controlDb.ok ? 'ok' : 'UNREACHABLE');
    var pb = $('problems'); pb.textContent = '';
    d.problems.forEach(function (p) { pb.appendChild(el('li', {}, p)); });
    $('problems-box').hidden = d.problems.length === 0;
    $('next-step').textContent = d.nextStep;
    var lg = $('legend'); lg.textContent = '';
    STATES.forEach(function (s) {
      var item = el('span', { 'data-legend': s });
      item.appendChild(el('span', { class: 'sw cell s-' + s }, GLYPH[s]));
      item.appendChild(txt(s + ' '));
      item.appendChild(el('strong', { 'data-count': s }, d.shards.counts.all[s]));
      lg.appendChild(item);
    });
    renderHeat('user', d.shards.user);
    renderHeat('merchant', d.shards.merchant);
    var b = d.backfill;
    $('bf-bar').style.width = (b.percent || 0) + '%';
    dl('backfill', [
      ['state', el('strong', { id: 'backfill-state' }, b.state)],
      ['rows', b.rowsDone === null ? val(b, 'rowsDone') : txt(num(b.rowsDone) + ' of ' + (b.rowsTotal === null ? '?' : num(b.rowsTotal)) + (b.percent === null ? '' : ' (' + b.percent + '%)'))],
      ['rate', val(b, 'rowsPerSecond', function (v) { return num(v) + ' rows/s (last minute)'; })],
      ['ETA', val(b, 'etaSeconds', function (v) { return dur(v) + (b.etaAt ? ' (' + b.etaAt.slice(11, 19) + ' UTC)' : ''); })],
      ['settings', txt(b.settings ? (b.settings.paused ? 'PAUSED \\u00b7 ' : '') + 'max ' + (b.settings.maxRowsPerSecond === null ? 'unthrottled' : num(b.settings.maxRowsPerSecond) + ' rows/s') + ' \\u00b7 chunk ' + (b.settings.chunkSize === null ? 'auto' : b.settings.chunkSize) + ' \\u00b7 concurrency ' + (b.settings.concurrency === null ? 'default' : b.settings.concurrency) : why(b, 'settings'))],
      ['job', b.job ? txt(b.job.state + ' on ' + b.job.host + ' pid ' + b.job.pid + ', ' + b.job.chunks + ' chunks') : val(b, 'job')],
    ]);
    table('verify', ['pair', 'last run', 'result'], Object.keys(d.verify.pairs).map(function (p) {
      var v = d.verify.pairs[p];
      if (!v) return [p, el('span', { class: 'why' }, d.verify.why['pairs.' + p] || 'none'), ''];
      return [p, v.mode + (v.since ? ' since ' + v.since : '') + ', ' + v.finishedAt.replace('T', ' ').slice(0, 19) + (v.countsForStage === false ? ' (before this stage)' : ''), v.clean ? 'clean' : v.differences + ' differences'];
    }));
    if (d.instances.list === null) table('instances', ['instances'], [[el('span', { class: 'why' }, why(d.instances, 'list'))]]);
    else if (d.instances.list.length === 0) table('instances', ['instances'], [[el('span', { class: 'why' }, 'no live instance: no service is following the stage')]]);
    else table('instances', ['instance', 'version', 'host / pid', 'heartbeat'], d.instances.list.map(function (i) {
      return [i.instanceId, 'v' + i.version + (i.acknowledged ? '' : ' BEHIND'), (i.host || '-') + ' / ' + (i.pid || '-'), i.heartbeatAgeMs === null ? '?' : ms(i.heartbeatAgeMs) + ' ago'];
    }));
    $('runlock').textContent = d.runLock.holder ? 'run lock: ' + d.runLock.holder.actor + ' on ' + d.runLock.holder.host + ' pid ' + d.runLock.holder.pid + ' since ' + d.runLock.holder.since : 'run lock: ' + why(d.runLock, 'holder');
    dl('queues', [
      ['journal', d.journal.depth === null ? val(d.journal, 'depth') : txt(num(d.journal.depth) + ' entries' + (d.journal.oldestAgeMs === null ? '' : ', oldest ' + ms(d.journal.oldestAgeMs)))],
      ['outbox', d.outbox.depth === null ? val(d.outbox, 'depth') : txt(num(d.outbox.depth) + ' unpublished' + (d.outbox.lagMs === null ? '' : ', lag ' + ms(d.outbox.lagMs)))],
      ['relay', txt(d.outbox.relayHolders.length ? d.outbox.relayHolders.join(', ') : 'no live lease')],
    ]);
    table('primaries', ['primary', 'journal', 'outbox', 'fence'], d.primaries.map(function (p) {
      return [p.primary, p.journalDepth === null ? '? ' + (p.error || '') : p.journalDepth, p.outboxDepth === null ? '?' : p.outboxDepth, p.fence.state + (p.fence.version === null ? '' : ' v' + p.fence.version)];
    }));
    $('generated').textContent = 'generated ' + d.generatedAt + ' in ' + d.buildMs + ' ms';
  }
  function tick() {
    var sinceEvent = lastEvent ? Date.now() - lastEvent : Infinity;
    var age = lastEvent ? serverAge + sinceEvent : Infinity;
    $('age').textContent = isFinite(age) ? ms(Math.round(age)) + ' ago' : 'never';
    var stale = !current || age > 3 * interval;
    var banner = $('stale');
    banner.hidden = !stale;
    banner.setAttribute('data-stale', stale ? 'true' : 'false');
    $('stale-why').textContent = stale ? (serverError ? serverError : !lastEvent ? 'no status received yet' : sinceEvent > 3 * interval ? 'the status server does not answer' : 'the data is older than 3 intervals') + (isFinite(age) ? ' (data from ' + ms(Math.round(age)) + ' ago)' : '') : '';
  }
  function onSnapshot(ev) {
    var s = JSON.parse(ev.data);
    lastEvent = Date.now();
    interval = s.intervalMs || interval;
    serverAge = s.ageMs === null ? Infinity : s.ageMs;
    serverError = s.error;
    if (s.doc && (!current || s.doc.generatedAt !== current.generatedAt)) render(s.doc);
    tick();
  }
  var es = new EventSource('events' + q);
  es.addEventListener('status', onSnapshot);
  es.addEventListener('stage', onSnapshot);
  setInterval(tick, 250);
  tick();
})();
`
