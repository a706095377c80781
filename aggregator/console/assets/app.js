// Tripline console. Every value shown comes from the aggregator's API and may be written by
// an attacker (user names, host names, paths, command lines): it only ever reaches the page
// as text (textContent, createTextNode, SVG text nodes), never as markup.
'use strict';

const state = { person: null, role: null, csrf: null, timer: null, view: null };

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

const SVG = 'http://www.w3.org/2000/svg';
function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

// Control and bidirectional-override characters shown as code points, so that a value
// cannot reorder or hide what surrounds it.
function clean(s) {
  return String(s ?? '').replace(/[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g,
    (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
}

function timeOf(ns) {
  const n = Number(ns || 0);
  if (!n) return '';
  return new Date(n / 1e6).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

function sevName(s) {
  return String(s || '').replace('SEVERITY_', '').toLowerCase();
}

function sevBadge(s) {
  const n = sevName(s);
  return el('span', { class: 'sev sev-' + n }, n);
}

function stateName(s) {
  return String(s || '').replace('STATE_', '').toLowerCase().replace('_', '-');
}

async function api(method, path, body) {
  const headers = {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && state.csrf) headers['X-CSRF-Token'] = state.csrf;
  const res = await fetch(path, {
    method, headers, credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = {};
  try { data = await res.json(); } catch (e) { data = { error: 'not JSON (' + res.status + ')' }; }
  if (res.status === 401 && path !== '/api/session') {
    showSignIn(data.error || 'signed out');
    throw new Error(data.error || 'signed out');
  }
  if (!res.ok) throw new Error(data.error || ('HTTP ' + res.status));
  return data;
}

function status(text, isError) {
  const s = document.getElementById('status');
  s.textContent = clean(text);
  s.className = isError ? 'error' : 'dim';
}

function showSignIn(message) {
  state.person = state.csrf = null;
  clearInterval(state.timer);
  document.getElementById('nav').hidden = true;
  document.getElementById('signout').hidden = true;
  document.getElementById('who').textContent = '';
  document.getElementById('view').replaceChildren();
  document.getElementById('signin').hidden = false;
  document.getElementById('signin-error').textContent = message ? clean(message) : '';
}

function signedIn(s) {
  state.person = s.person;
  state.role = s.role;
  state.csrf = s.csrf;
  document.getElementById('signin').hidden = true;
  document.getElementById('nav').hidden = false;
  document.getElementById('signout').hidden = false;
  document.getElementById('who').textContent = clean(s.person) + ' (' + clean(s.role) + ')';
  route();
}

// ---- views ----------------------------------------------------------------------------

const filters = { severity: '', state: '', host: '', identity: '', technique: '', q: '' };

async function incidentsView(view) {
  const form = el('div', { class: 'filters' });
  const sev = el('select', { id: 'f-severity' }, el('option', { value: '' }, 'any severity'),
    ...['critical', 'high', 'medium', 'low', 'info'].map((s) => el('option', { value: s }, s + ' and above')));
  sev.value = filters.severity;
  const st = el('select', { id: 'f-state' }, el('option', { value: '' }, 'any response'),
    el('option', { value: 'awaiting' }, 'awaiting a decision'), el('option', { value: 'acted' }, 'acted on'),
    el('option', { value: 'none' }, 'no action'));
  st.value = filters.state;
  form.append(sev, st);
  for (const f of ['host', 'identity', 'technique', 'q']) {
    const i = el('input', { id: 'f-' + f, placeholder: f === 'q' ? 'text' : f });
    i.value = filters[f];
    form.append(i);
  }
  const table = el('table', { id: 'incidents' });
  view.replaceChildren(el('h1', {}, 'Incidents'), form, table);
  const load = async () => {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(filters)) if (v) params.set(k, v);
    const data = await api('GET', '/api/incidents?' + params.toString());
    const rows = data.incidents.map((i) => el('tr', { class: 'row', 'data-id': i.id, onclick: () => { location.hash = '#/incident/' + encodeURIComponent(i.id); } },
      el('td', {}, sevBadge(i.severity)),
      el('td', {}, clean(i.title)),
      el('td', {}, clean((i.hosts || []).join(' → '))),
      el('td', {}, clean((i.identities || []).join(', '))),
      el('td', {}, clean((i.techniques || []).join(', '))),
      el('td', {}, timeOf(i.last_seen_ns))));
    table.replaceChildren(el('tr', {}, ...['severity', 'title', 'hosts', 'identities', 'ATT&CK', 'last activity'].map((h) => el('th', {}, h))), ...rows);
    status(data.total + ' incidents, updated ' + new Date().toLocaleTimeString());
  };
  form.addEventListener('change', (e) => {
    filters[e.target.id.slice(2)] = e.target.value;
    load().catch((err) => status(err.message, true));
  });
  await load();
  state.timer = setInterval(() => load().catch((err) => status(err.message, true)), 3000);
}

// The chain: hosts as boxes in chain order, hops as arrows with the user and the time, and
// under each host the attack's stages there (technique and what, by time).
function chainSvg(incident) {
  const hosts = incident.hosts || [];
  const hops = incident.chain || [];
  const stages = incident.stages || [];
  const w = 170, gap = 90, h = 44, top = 40;
  const perHost = hosts.map((host) => stages.filter((s) => s.host === host));
  const rows = Math.max(0, ...perHost.map((l) => l.length));
  const height = 130 + rows * 16;
  const width = Math.max(1, hosts.length) * (w + gap);
  const g = svg('svg', { class: 'chain', id: 'chain', width, height, viewBox: `0 0 ${width} ${height}`, role: 'img' });
  g.append(svg('title', {}, 'attack chain: ' + hosts.map(clean).join(' → ')));
  hosts.forEach((host, i) => {
    const x = 10 + i * (w + gap);
    g.append(svg('rect', { x, y: top, width: w, height: h, rx: 5 }));
    // Long names are cut to the box; the whole name is the box's tooltip.
    const name = clean(host);
    const t = svg('text', { x: x + 10, y: top + 27, class: 'host', 'data-index': i, 'data-name': name },
      name.length > 22 ? name.slice(0, 21) + '…' : name);
    t.append(svg('title', {}, name));
    g.append(t);
    perHost[i].forEach((s, k) => {
      const label = clean(s.technique) + ' ' + clean(s.what);
      const m = svg('text', { x: x + 4, y: top + h + 44 + k * 16, class: 'stage', 'data-host': name, 'data-technique': clean(s.technique) },
        label.length > 40 ? label.slice(0, 39) + '…' : label);
      m.append(svg('title', {}, label + (Number(s.at_ns) ? ' at ' + timeOf(s.at_ns) : '')));
      g.append(m);
    });
  });
  hops.forEach((hop) => {
    const a = hosts.indexOf(hop.from), b = hosts.indexOf(hop.to);
    if (a < 0 || b < 0 || a === b) return;
    const x1 = 10 + a * (w + gap) + w, x2 = 10 + b * (w + gap);
    const y = top + h / 2;
    const fwd = x2 > x1;
    const start = fwd ? x1 : x1 - w, end = fwd ? x2 : x2 + w;
    g.append(svg('line', { x1: start, y1: y, x2: end - (fwd ? 8 : -8), y2: y }));
    const tip = fwd ? end : end;
    g.append(svg('polygon', { points: `${tip},${y} ${tip - (fwd ? 9 : -9)},${y - 5} ${tip - (fwd ? 9 : -9)},${y + 5}` }));
    const mid = (start + end) / 2;
    g.append(svg('text', { x: mid, y: y - 28, 'text-anchor': 'middle', class: 'hop' }, clean(hop.user)));
    g.append(svg('text', { x: mid, y: y + 38, 'text-anchor': 'middle', class: 'hop' }, timeOf(hop.at_ns).slice(11)));
  });
  return g;
}

function actionRow(a, onChange) {
  const cells = [
    el('td', {}, clean(a.id)),
    el('td', {}, clean(String(a.kind || '').replace('KIND_', '').toLowerCase())),
    el('td', {}, clean(a.scope || a.target)),
    el('td', { class: 'state' }, stateName(a.state)),
    el('td', {}, clean(a.decided_by || '')),
    el('td', {}, timeOf(a.decided_ns)),
    el('td', {}, clean(a.result || '')),
  ];
  const controls = el('td', {});
  if (state.role === 'approver' && a.state === 'STATE_PROPOSED') {
    const reason = el('input', { placeholder: 'reason', class: 'reason', 'data-action': a.id });
    const decide = (verb) => async () => {
      try {
        await api('POST', '/api/actions/' + encodeURIComponent(a.id) + '/' + verb, { reason: reason.value });
        status(verb + 'd ' + a.id);
        onChange();
      } catch (err) { status(err.message, true); }
    };
    controls.append(reason, el('button', { class: 'approve', type: 'button', 'data-action': a.id, onclick: decide('approve') }, 'Approve'),
      el('button', { class: 'deny', type: 'button', 'data-action': a.id, onclick: decide('deny') }, 'Deny'));
  }
  const trail = el('button', { type: 'button', class: 'trail', 'data-action': a.id }, 'Trail');
  const trailRow = el('tr', { hidden: '' }, el('td', { colspan: 9 }));
  trail.addEventListener('click', async () => {
    const data = await api('GET', '/api/actions/' + encodeURIComponent(a.id) + '/trail');
    trailRow.firstChild.replaceChildren(el('ul', { class: 'plain trail-list' },
      ...data.trail.map((e) => el('li', {}, timeOf(e.at_ns) + '  ' + clean(e.step) + ' by ' + clean(e.by) + ': ' + clean(e.what)))));
    trailRow.hidden = false;
  });
  controls.append(trail);
  return [el('tr', { 'data-action': a.id }, ...cells, controls), trailRow];
}

function actionsTable(actions, onChange) {
  const t = el('table', { class: 'actions' }, el('tr', {}, ...['action', 'kind', 'scope', 'state', 'decided by', 'when', 'result', ''].map((h) => el('th', {}, h))));
  for (const a of actions) t.append(...actionRow(a, onChange));
  return t;
}

async function incidentView(view, id) {
  const load = async () => {
    const data = await api('GET', '/api/incidents/' + encodeURIComponent(id));
    const i = data.incident;
    view.replaceChildren(
      el('h1', {}, sevBadge(i.severity), ' ', el('span', { id: 'incident-title' }, clean(i.title))),
      el('p', { class: 'dim' }, 'confidence ' + Math.round(100 * (i.confidence || 0)) + '%, score ' + Number(i.score || 0).toFixed(2) +
        ', first seen ' + timeOf(i.first_seen_ns) + ', last ' + timeOf(i.last_seen_ns) + ', revision ' + (i.revision || 0)),
      el('h2', {}, 'Chain'), chainSvg(i),
      el('h2', {}, 'Why'), el('ul', { class: 'plain', id: 'explanation' }, ...(i.explanation || []).map((s) => el('li', {}, clean(s)))),
      el('h2', {}, 'ATT&CK'), el('p', {}, clean((i.techniques || []).join(', ') || 'none')),
      el('h2', {}, 'Identities'), el('p', {}, clean((i.identities || []).join(', '))),
      el('h2', {}, 'Timeline'), el('table', { id: 'timeline' }, el('tr', {}, ...['time', 'host', 'kind', 'what'].map((h) => el('th', {}, h))),
        ...(i.events || []).slice().sort((a, b) => Number(a.time_ns) - Number(b.time_ns)).map((e) => el('tr', {},
          el('td', {}, timeOf(e.time_ns)), el('td', {}, clean(e.host)), el('td', {}, clean(e.kind)), el('td', {}, clean(e.summary))))),
      el('h2', {}, 'Response'), data.actions.length ? actionsTable(data.actions, () => load().catch((err) => status(err.message, true)))
        : el('p', { class: 'dim' }, 'no action proposed'));
    status('incident ' + clean(i.id));
  };
  await load();
}

async function approvalsView(view) {
  const load = async () => {
    const queued = await api('GET', '/api/actions?state=proposed');
    const all = await api('GET', '/api/actions');
    const decided = all.actions.filter((a) => a.state !== 'STATE_PROPOSED');
    view.replaceChildren(el('h1', {}, 'Approvals'),
      el('h2', {}, 'Waiting for a decision'), queued.actions.length ? actionsTable(queued.actions, reload) : el('p', { class: 'dim' }, 'nothing waits'),
      el('h2', {}, 'Decided'), decided.length ? actionsTable(decided, reload) : el('p', { class: 'dim' }, 'nothing decided yet'));
    status(queued.actions.length + ' waiting');
  };
  const reload = () => load().catch((err) => status(err.message, true));
  await load();
}

async function auditView(view) {
  const data = await api('GET', '/api/audit');
  const by = new Map();
  for (const f of data.findings || []) {
    const key = f.identity + ' (' + f.kind + ')';
    if (!by.has(key)) by.set(key, []);
    by.get(key).push(f);
  }
  const parts = [el('h1', {}, 'Privilege audit')];
  for (const [who, list] of by) {
    parts.push(el('h2', {}, clean(who)), el('table', {}, el('tr', {}, ...['severity', 'host', 'finding', 'detail', 'fix'].map((h) => el('th', {}, h))),
      ...list.map((f) => el('tr', {}, el('td', {}, sevBadge(f.severity)), el('td', {}, clean(f.host)), el('td', {}, clean(f.finding)),
        el('td', {}, clean(f.detail)), el('td', {}, clean(f.fix))))));
  }
  if (by.size === 0) parts.push(el('p', { class: 'dim' }, 'no open finding'));
  view.replaceChildren(...parts);
  status((data.findings || []).length + ' findings');
}

async function fleetView(view) {
  const load = async () => {
    const s = await api('GET', '/api/fleet');
    const rows = (s.sensors || []).map((x) => el('tr', {},
      el('td', {}, clean(x.host)), el('td', {}, clean(x.sensor_id)), el('td', {}, x.connected ? 'connected' : 'away'),
      el('td', {}, el('ul', { class: 'plain' }, ...(x.families || []).map((f) => el('li', {}, clean(f.name) + ': ' + clean(f.state) + (f.reason ? ' (' + clean(f.reason) + ')' : ''))))),
      el('td', {}, String(Number(x.ringbuf_drops || 0) + Number(x.spool_drops || 0))),
      el('td', {}, timeOf(x.last_seen_ns)),
      el('td', {}, x.last_seen_ns ? Math.max(0, Math.round((Date.now() - Number(x.last_seen_ns) / 1e6) / 1000)) + ' s' : '')));
    view.replaceChildren(el('h1', {}, 'Fleet'),
      el('p', { class: 'dim' }, s.sensors_connected + ' sensors connected, ' + Number(s.events_per_second || 0).toFixed(0) + ' events/s, correlation backlog ' + (s.correlation_backlog || 0)),
      el('table', { id: 'fleet' }, el('tr', {}, ...['host', 'sensor', 'link', 'hook families', 'drops', 'last seen', 'lag'].map((h) => el('th', {}, h))), ...rows));
    status('fleet updated ' + new Date().toLocaleTimeString());
  };
  await load();
  state.timer = setInterval(() => load().catch((err) => status(err.message, true)), 5000);
}

function route() {
  if (!state.person) return;
  clearInterval(state.timer);
  const view = document.getElementById('view');
  const hash = location.hash || '#/incidents';
  const m = hash.match(/^#\/incident\/(.+)$/);
  const name = m ? 'incidents' : hash.slice(2);
  for (const a of document.querySelectorAll('nav a')) a.classList.toggle('active', a.dataset.view === name);
  let p;
  if (m) p = incidentView(view, decodeURIComponent(m[1]));
  else if (name === 'approvals') p = approvalsView(view);
  else if (name === 'audit') p = auditView(view);
  else if (name === 'fleet') p = fleetView(view);
  else p = incidentsView(view);
  p.catch((err) => status(err.message, true));
}

document.addEventListener('DOMContentLoaded', () => {
  document.getElementById('signin').addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      const s = await api('POST', '/api/session', {
        name: document.getElementById('signin-name').value,
        password: document.getElementById('signin-password').value,
      });
      document.getElementById('signin-password').value = '';
      signedIn(s);
    } catch (err) {
      document.getElementById('signin-error').textContent = clean(err.message);
    }
  });
  document.getElementById('signout').addEventListener('click', async () => {
    try { await api('DELETE', '/api/session'); } catch (e) { /* signed out either way */ }
    showSignIn('signed out');
  });
  window.addEventListener('hashchange', route);
  api('GET', '/api/session').then(signedIn).catch(() => showSignIn(''));
});
