// Hookline console: a small single-page script over the public HTTP API
// (/v1). No framework and no build step: the page's address decides what is
// shown (every page can be bookmarked), links change it with
// history.pushState, and every change goes through the same API calls the
// README documents. The token, when the server has tokens, is kept in
// sessionStorage for the browser session only.
'use strict';

(() => {
  const main = document.getElementById('main');
  const flashBox = document.getElementById('flash');
  const errorBox = document.getElementById('error');
  const TOKEN = 'hookline.token';
  const STATES = ['succeeded', 'failed', 'retrying', 'pending'];
  const STATE_SIGN = { succeeded: '✓', failed: '✗', retrying: '↻', pending: '…' };
  const STATE_COLOUR = { succeeded: '#15803d', failed: '#b91c1c', retrying: '#b45309', pending: '#6b7280' };

  // ---- small helpers -------------------------------------------------

  // el builds an element: el('a', {href: '/', class: 'x', onclick: f}, 'text', child...).
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else if (k === 'class') e.className = v;
      else if (k === 'dataset') Object.assign(e.dataset, v);
      else if (k === 'value') e.value = v;
      else if (k === 'checked') e.checked = !!v;
      else if (k === 'text') e.textContent = v;
      else if (k === 'style') e.style.cssText = v; // CSSOM: allowed by the page's CSP, unlike the attribute
      else e.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children.flat(Infinity)) {
      if (c === undefined || c === null || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }
  const svgNS = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs, ...children) {
    const e = document.createElementNS(svgNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return e;
  }
  const shortId = (id) => (id || '').slice(-8);
  const fmtTime = (t) => (t ? new Date(t).toLocaleString() : '—');
  const pct = (x) => (x === null || x === undefined || isNaN(x) ? '—' : (x * 100).toFixed(1) + '%');
  const plural = (n, one, many) => `${n} ${n === 1 ? one : many || one + 's'}`;
  // localInput turns a time into a datetime-local input's value.
  function localInput(d) {
    const p = (n) => String(n).padStart(2, '0');
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
  }
  // rfc3339 turns a datetime-local value into an RFC 3339 time in UTC.
  const rfc3339 = (v) => (v ? new Date(v).toISOString().replace(/\.\d{3}Z$/, 'Z') : undefined);
  const hoursAgo = (h) => new Date(Date.now() - h * 3600e3);

  // put replaces a node's children, skipping the nulls that conditional
  // parts leave.
  function put(node, ...kids) {
    node.replaceChildren(...kids.flat(2).filter((k) => k !== null && k !== undefined && k !== false));
  }

  function flash(msg) { errorBox.textContent = ''; flashBox.textContent = msg; }
  function showError(msg) { flashBox.textContent = ''; errorBox.textContent = msg; }
  function clearMessages() { flashBox.textContent = ''; errorBox.textContent = ''; }

  // ---- the API ---------------------------------------------------------

  class APIError extends Error {
    constructor(status, body) {
      const e = (body && body.error) || {};
      super(e.message || `HTTP ${status}`);
      this.status = status;
      this.code = e.code;
      this.field = e.field;
    }
  }

  async function api(method, path, body) {
    const headers = { Accept: 'application/json' };
    const token = sessionStorage.getItem(TOKEN);
    if (token) headers.Authorization = 'Bearer ' + token;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
    if (!res.ok) throw new APIError(res.status, data);
    return data;
  }
  const get = (path) => api('GET', path);
  function query(params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
    const s = q.toString();
    return s ? '?' + s : '';
  }

  let catalogue = null;
  async function eventTypes() {
    if (!catalogue) catalogue = await get('/v1/event-types');
    return catalogue;
  }

  // ---- routing ---------------------------------------------------------

  const routes = [
    [/^\/$/, 'webhooks', pageWebhooks],
    [/^\/webhooks\/new$/, 'webhook-form', () => pageWebhookForm(null)],
    [/^\/webhooks\/([^/]+)\/edit$/, 'webhook-form', (id) => pageWebhookForm(id)],
    [/^\/webhooks\/([^/]+)$/, 'webhook', pageWebhook],
    [/^\/deliveries\/([^/]+)$/, 'delivery', pageDelivery],
    [/^\/replays$/, 'replays', pageReplays],
  ];

  let timers = [];
  let generation = 0; // a render started later makes earlier ones stop
  function every(ms, f) { timers.push(setInterval(f, ms)); }
  function stopTimers() { timers.forEach(clearInterval); timers = []; }

  function navigate(path, { replace = false, keepMessages = false } = {}) {
    if (replace) history.replaceState(null, '', path);
    else history.pushState(null, '', path);
    render({ keepMessages });
  }

  async function render({ keepMessages = false } = {}) {
    stopTimers();
    const gen = ++generation;
    if (!keepMessages) clearMessages();
    const path = location.pathname;
    let route = routes.find(([re]) => re.test(path));
    main.setAttribute('data-loading', '');
    put(main, el('p', { class: 'muted' }, 'Loading…'));
    document.getElementById('sign-out').hidden = !sessionStorage.getItem(TOKEN);
    for (const a of document.querySelectorAll('[data-nav]')) {
      const current = (a.dataset.nav === 'replays') === (path === '/replays');
      if (current) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
    }
    let name = route ? route[1] : 'not-found';
    try {
      if (!route) {
        put(main, el('h1', {}, 'Not found'), el('p', {}, 'No console page has this address. ', el('a', { href: '/' }, 'Back to the webhooks')));
      } else {
        const args = path.match(route[0]).slice(1).map(decodeURIComponent);
        const view = await route[2](...args);
        if (gen !== generation) return;
        put(main, view);
      }
    } catch (err) {
      if (gen !== generation) return;
      if (err instanceof APIError && err.status === 401) {
        name = 'login';
        put(main, loginView());
      } else if (err instanceof APIError && err.status === 404) {
        put(main, el('h1', {}, 'Not found'), el('p', {}, err.message + '. ', el('a', { href: '/' }, 'Back to the webhooks')));
      } else {
        put(main, el('h1', {}, 'Something went wrong'), el('p', {}, String(err.message || err)));
      }
    }
    main.dataset.page = name;
    main.removeAttribute('data-loading');
    const h1 = main.querySelector('h1');
    document.title = (h1 ? h1.textContent + ' · ' : '') + 'Hookline';
  }

  document.addEventListener('click', (e) => {
    const a = e.target.closest('a[href]');
    if (!a || a.target || a.hasAttribute('download') || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    const url = new URL(a.href, location.href);
    if (url.origin !== location.origin || url.pathname.startsWith('/v1/') || url.pathname.startsWith('/console/')) return;
    e.preventDefault();
    navigate(url.pathname + url.search);
  });
  window.addEventListener('popstate', () => render());
  document.getElementById('sign-out').addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN);
    catalogue = null;
    navigate('/');
  });

  // confirmDialog asks a yes/no question in the page's dialog.
  function confirmDialog(text, ok) {
    const d = document.getElementById('confirm');
    document.getElementById('confirm-text').textContent = text;
    document.getElementById('confirm-ok').textContent = ok || 'OK';
    return new Promise((resolve) => {
      // The close event is dispatched later, as a task: one left over from
      // the dialog's last use (Cancel, then at once Delete again) arrives
      // while the dialog is open again, and must not answer this question.
      const onClose = () => {
        if (d.open) return;
        d.removeEventListener('close', onClose);
        resolve(d.returnValue === 'ok');
      };
      d.addEventListener('close', onClose);
      d.returnValue = '';
      d.showModal();
      document.getElementById('confirm-cancel').focus();
    });
  }

  // ---- login -------------------------------------------------------------

  function loginView() {
    const input = el('input', { id: 'token', type: 'password', autocomplete: 'current-password', required: true });
    const form = el('form', {
      id: 'login', class: 'login', onsubmit: (e) => {
        e.preventDefault();
        sessionStorage.setItem(TOKEN, input.value.trim());
        catalogue = null;
        render();
      },
    },
    el('div', { class: 'field' }, el('label', { for: 'token' }, 'API token'), input,
      el('p', { class: 'hint' }, 'A token of --api-tokens. It is kept for this browser session only.')),
    el('div', { class: 'actions' }, el('button', { type: 'submit', class: 'primary' }, 'Sign in')));
    if (sessionStorage.getItem(TOKEN)) {
      sessionStorage.removeItem(TOKEN);
      showError('That token was not accepted.');
    }
    setTimeout(() => input.focus(), 0);
    return [el('h1', {}, 'Sign in'), form];
  }

  // ---- shared bits ---------------------------------------------------------

  function stateIcon(state) {
    return el('span', { class: 'state-icon', 'data-state': state, role: 'img', 'aria-label': state, title: state }, STATE_SIGN[state] || '?');
  }
  // relTime says how far a time is from now, in words: "in 5 minutes",
  // "now", "2 hours ago". English, as the rest of the console.
  const relative = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });
  function relTime(t) {
    const s = (new Date(t).getTime() - Date.now()) / 1000;
    const a = Math.abs(s);
    if (a < 1) return relative.format(0, 'second');
    if (a < 60) return relative.format(Math.round(s), 'second');
    if (a < 3600) return relative.format(Math.round(s / 60), 'minute');
    if (a < 86400) return relative.format(Math.round(s / 3600), 'hour');
    return relative.format(Math.round(s / 86400), 'day');
  }
  // nextAttempt is "next attempt in 5 minutes" for a delivery that waits
  // and says until when (the API answers next_attempt_at only while it is
  // pending or retrying), or null. tickNextAttempts keeps every one shown
  // current.
  function nextAttempt(d) {
    if (!d.next_attempt_at) return null;
    return el('span', { class: 'next-attempt', 'data-at': d.next_attempt_at, title: fmtTime(d.next_attempt_at) }, 'next attempt ' + relTime(d.next_attempt_at));
  }
  function tickNextAttempts() {
    for (const e of document.querySelectorAll('.next-attempt[data-at]')) e.textContent = 'next attempt ' + relTime(e.dataset.at);
  }
  function breakerBadge(state) {
    return el('span', { class: 'badge breaker ' + (state || 'unknown') }, state || 'unknown');
  }
  function tableWrap(table) { return el('div', { class: 'table-wrap' }, table); }
  // field makes a labelled input with its error line, for the API field f.
  function field(f, label, input, hint, cls) {
    input.id = input.id || 'f-' + f.replace(/[^a-z0-9_]/gi, '-');
    input.setAttribute('aria-describedby', 'err-' + input.id);
    return el('div', { class: 'field ' + (cls || '') },
      el('label', { for: input.id }, label), input,
      hint ? el('p', { class: 'hint' }, hint) : null,
      el('p', { class: 'field-error', id: 'err-' + input.id, 'data-field': f }));
  }
  function check(name, label, checked, hint) {
    const input = el('input', { type: 'checkbox', name, id: 'f-' + name, checked });
    return el('div', { class: 'field inline check' }, input, el('label', { for: 'f-' + name }, label),
      hint ? el('p', { class: 'hint', style: 'flex-basis:100%' }, hint) : null,
      el('p', { class: 'field-error', 'data-field': name }));
  }
  function selectOf(name, options, value) {
    return el('select', { name }, options.map(([v, label]) => el('option', { value: v, selected: v === value ? true : undefined }, label)));
  }

  // ---- webhooks grid ---------------------------------------------------------

  async function pageWebhooks() {
    const params = new URLSearchParams(location.search);
    const filters = { name: params.get('name') || '', enabled: params.get('enabled') || '', event: params.get('event') || '' };
    const list = await get('/v1/webhooks' + query({ ...filters, limit: 50, cursor: params.get('cursor') }));
    const types = (await eventTypes()).resources.flatMap((r) => r.types);

    const selected = new Set();
    const buttons = {
      enable: el('button', { type: 'button', id: 'bulk-enable', disabled: true }, 'Enable'),
      disable: el('button', { type: 'button', id: 'bulk-disable', disabled: true }, 'Disable'),
      delete: el('button', { type: 'button', id: 'bulk-delete', class: 'danger', disabled: true }, 'Delete'),
    };
    const count = el('span', { class: 'muted', 'aria-live': 'polite' });
    const all = el('input', { type: 'checkbox', 'aria-label': 'Select every webhook on this page' });
    function selectionChanged() {
      for (const b of Object.values(buttons)) b.disabled = selected.size === 0;
      count.textContent = selected.size ? `${selected.size} selected` : '';
      all.checked = selected.size > 0 && selected.size === list.data.length;
    }
    for (const [action, b] of Object.entries(buttons)) {
      b.addEventListener('click', async () => {
        const ids = [...selected];
        if (action === 'delete' && !(await confirmDialog(`Delete ${plural(ids.length, 'webhook')}? Their delivery history stays, their configuration is gone.`, 'Delete'))) return;
        try {
          const res = await api('POST', '/v1/webhooks/bulk', { action, ids });
          const failed = res.results.filter((r) => r.status >= 300);
          const done = { enable: 'Enabled', disable: 'Disabled', delete: 'Deleted' }[action];
          render({ keepMessages: true });
          if (failed.length) showError(`${done} ${res.succeeded}; ${failed.length} failed: ` + failed.map((r) => `${shortId(r.id)} ${r.message}`).join('; '));
          else flash(`${done} ${plural(res.succeeded, 'webhook')}.`);
        } catch (err) { showError(err.message); }
      });
    }
    all.addEventListener('change', () => {
      for (const box of main.querySelectorAll('input.select')) {
        box.checked = all.checked;
        if (all.checked) selected.add(box.value); else selected.delete(box.value);
      }
      selectionChanged();
    });

    const rows = list.data.map((w) => {
      const box = el('input', { type: 'checkbox', class: 'select', value: w.id, 'aria-label': `Select ${w.name}` });
      box.addEventListener('change', () => { if (box.checked) selected.add(w.id); else selected.delete(w.id); selectionChanged(); });
      const toggle = el('input', { type: 'checkbox', class: 'toggle', role: 'switch', checked: w.enabled, 'aria-label': `${w.name} enabled` });
      toggle.addEventListener('change', async () => {
        try {
          await api('PATCH', '/v1/webhooks/' + encodeURIComponent(w.id), { enabled: toggle.checked });
          flash(`${w.name} ${toggle.checked ? 'enabled' : 'disabled'}.`);
        } catch (err) { toggle.checked = !toggle.checked; showError(err.message); }
      });
      const cells = { success: el('td', { class: 'success num' }, '…'), count: el('td', { class: 'count num' }, '…'), last: el('td', { class: 'last' }, '…') };
      fillRowStats(w.id, cells);
      return el('tr', { 'data-id': w.id },
        el('td', {}, box),
        el('td', {}, el('a', { class: 'name', href: '/webhooks/' + encodeURIComponent(w.id) }, w.name),
          w.disabled_reason ? el('p', { class: 'hint' }, w.disabled_reason) : null),
        el('td', { class: 'url' }, w.url),
        el('td', {}, toggle),
        el('td', { class: 'events' }, (w.events || []).join(', ')),
        el('td', { class: 'breaker' }, breakerBadge(w.breaker_state)),
        cells.success, cells.count, cells.last);
    });

    const form = el('form', { id: 'filters', class: 'filters', role: 'search', onsubmit: (e) => {
      e.preventDefault();
      const f = new FormData(e.target);
      navigate('/' + query({ name: f.get('name'), enabled: f.get('enabled'), event: f.get('event') }));
    } },
    field('name', 'Name', el('input', { id: 'filter-name', name: 'name', type: 'text', value: filters.name, placeholder: 'one or more, comma-separated' })),
    field('enabled', 'Enabled', el('select', { id: 'filter-enabled', name: 'enabled' },
      [['', 'Any'], ['true', 'Enabled'], ['false', 'Disabled']].map(([v, l]) => el('option', { value: v, selected: v === filters.enabled ? true : undefined }, l)))),
    field('event', 'Event type', el('input', { id: 'filter-event', name: 'event', type: 'text', value: filters.event, list: 'event-type-list', placeholder: 'ticket.created' })),
    el('datalist', { id: 'event-type-list' }, types.map((t) => el('option', { value: t }))),
    el('button', { type: 'submit' }, 'Filter'),
    filters.name || filters.enabled || filters.event ? el('a', { href: '/', class: 'button' }, 'Clear') : null);

    const table = el('table', { id: 'webhooks' },
      el('caption', { class: 'skip' }, 'Webhooks'),
      el('thead', {}, el('tr', {}, el('th', {}, all), ['Name', 'URL', 'Enabled', 'Events', 'Breaker'].map((h) => el('th', { scope: 'col' }, h)),
        el('th', { scope: 'col', class: 'num' }, 'Success (24 h)'), el('th', { scope: 'col', class: 'num' }, 'Deliveries (24 h)'), el('th', { scope: 'col' }, 'Last delivery'))),
      el('tbody', {}, rows));
    return [
      el('h1', {}, 'Webhooks'),
      form,
      el('div', { class: 'toolbar' }, el('a', { id: 'new-webhook', class: 'button primary', href: '/webhooks/new' }, 'New webhook'),
        el('span', { class: 'grow' }), count, buttons.enable, buttons.disable, buttons.delete),
      list.data.length ? tableWrap(table) : el('p', { class: 'empty' }, filters.name || filters.enabled || filters.event ? 'No webhook matches these filters.' : 'No webhooks yet. Create one with "New webhook".'),
      list.next_cursor ? el('div', { class: 'actions' }, el('a', { id: 'next-page', class: 'button', href: '/' + query({ ...filters, cursor: list.next_cursor }) }, 'Next page')) : null,
    ];
  }

  async function fillRowStats(id, cells) {
    const since = rfc3339(localInput(hoursAgo(24)));
    try {
      const [stats, latest] = await Promise.all([
        get(`/v1/webhooks/${encodeURIComponent(id)}/stats` + query({ since })),
        get(`/v1/webhooks/${encodeURIComponent(id)}/deliveries?limit=1`),
      ]);
      const d = stats.deliveries || {};
      const total = STATES.reduce((n, s) => n + (d[s] || 0), 0);
      cells.success.textContent = total ? pct(stats.success_rate) : '—';
      cells.count.textContent = String(total);
      cells.last.textContent = latest.data.length ? fmtTime(latest.data[0].created_at) : 'never';
    } catch (_) {
      cells.success.textContent = cells.count.textContent = cells.last.textContent = 'n/a';
    }
  }

  // ---- create / edit form ---------------------------------------------------

  async function pageWebhookForm(id) {
    const cat = await eventTypes();
    const w = id ? await get('/v1/webhooks/' + encodeURIComponent(id)) : null;
    const v = w || { enabled: true, content_type: 'application/json', events: ['*'], retries: 5, timeout_ms: 10000, max_concurrency: 32, include_all_fields: true, include_changes: true };
    const known = new Set(cat.resources.flatMap((r) => r.types));
    const everything = (v.events || ['*']).length === 1 && v.events[0] === '*';
    const chosen = new Set(everything ? [] : v.events);
    const other = everything ? [] : v.events.filter((t) => !known.has(t));

    // Events: everything, or a resource × trigger matrix from the catalogue.
    const triggers = [...new Set(cat.resources.flatMap((r) => r.triggers))];
    const matrix = el('table', { class: 'matrix' },
      el('caption', { class: 'hint' }, 'Resources (rows) and triggers (columns).'),
      el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'Resource'), triggers.map((t) => el('th', { scope: 'col' }, t)))),
      el('tbody', {}, cat.resources.map((r) => el('tr', {}, el('th', { scope: 'row' }, r.resource + (r.operational ? ' (Hookline)' : '')),
        triggers.map((t) => {
          const i = r.triggers.indexOf(t);
          if (i < 0) return el('td', {});
          const type = r.types[i];
          return el('td', {}, el('input', { type: 'checkbox', name: 'event', value: type, checked: chosen.has(type), 'aria-label': type, title: type }));
        })))));
    const modeAll = el('input', { type: 'radio', name: 'events_mode', value: 'all', id: 'events-all', checked: everything });
    const modeSelect = el('input', { type: 'radio', name: 'events_mode', value: 'select', id: 'events-select', checked: !everything });
    const picker = el('div', { id: 'event-picker', hidden: everything ? true : undefined },
      tableWrap(matrix),
      field('events_other', 'Other event types', el('input', { type: 'text', name: 'events_other', value: other.join(', '), placeholder: 'ticket.*, hookline.delivery_failed' }),
        'Comma-separated: patterns like ticket.* or types the catalogue does not list yet.'));
    for (const r of [modeAll, modeSelect]) r.addEventListener('change', () => { picker.hidden = modeAll.checked; });

    const related = el('table', {}, el('thead', {}, el('tr', {}, el('th', {}, 'A trigger on'), el('th', {}, 'also fires webhooks of'))),
      el('tbody', {}, (cat.related || []).map((p) => el('tr', {}, el('td', {}, `${p.resource} ${p.trigger}`), el('td', {}, (p.to || []).join(', '))))));

    // Secret: generated, given, or none (create); rotation (edit).
    let secretBlock;
    if (!w) {
      const custom = el('input', { type: 'text', name: 'secret', id: 'f-secret', autocomplete: 'off', placeholder: 'whsec_… or any string', disabled: true });
      const radios = [['generate', 'Generate a secret (shown once, after Create)'], ['custom', 'Use my own secret'], ['none', 'Unsigned: no secret']].map(([val, label]) => {
        const r = el('input', { type: 'radio', name: 'secret_mode', value: val, id: 'secret-' + val, checked: val === 'generate' });
        r.addEventListener('change', () => { custom.disabled = val !== 'custom'; if (val === 'custom') custom.focus(); });
        return el('div', {}, r, ' ', el('label', { for: 'secret-' + val }, label));
      });
      secretBlock = el('fieldset', {}, el('legend', {}, 'Signing secret'),
        el('div', { class: 'radios', role: 'radiogroup', 'aria-label': 'Signing secret' }, radios),
        field('secret', 'Secret', custom, 'Deliveries carry webhook-signature (Standard Webhooks) and X-Hookline-Signature-256 (GitHub style).'));
    } else {
      secretBlock = el('fieldset', {}, el('legend', {}, 'Signing secret'),
        el('p', {}, w.has_secret ? 'This webhook signs its deliveries. Its secret cannot be read back.' : 'This webhook is unsigned.'),
        w.previous_secret_expires_at ? el('p', { class: 'hint' }, 'The previous secret signs too until ' + fmtTime(w.previous_secret_expires_at) + '.') : null,
        rotatePanel(w));
    }

    // Auth: every type, credentials write-only.
    const authType = selectOf('auth_type', [['none', 'None'], ['basic', 'Basic'], ['bearer', 'Bearer token'], ['api_key', 'API key header'], ['oauth2_client_credentials', 'OAuth 2 client credentials']], (v.auth && v.auth.type) || 'none');
    authType.id = 'f-auth_type';
    const a = v.auth || {};
    const keep = w && w.auth && w.auth.has_credentials ? 'Leave empty to keep the current one.' : undefined;
    const authFields = {
      basic: [field('auth.username', 'Username', el('input', { type: 'text', name: 'auth_username', value: a.username || '', autocomplete: 'off' })),
        field('auth.password', 'Password', el('input', { type: 'password', name: 'auth_password', autocomplete: 'new-password' }), keep)],
      bearer: [field('auth.token', 'Token', el('input', { type: 'password', name: 'auth_token', autocomplete: 'off' }), keep)],
      api_key: [field('auth.header', 'Header', el('input', { type: 'text', name: 'auth_header', value: a.header || '', placeholder: 'X-Api-Key' })),
        field('auth.value', 'Value', el('input', { type: 'password', name: 'auth_value', autocomplete: 'off' }), keep)],
      oauth2_client_credentials: [field('auth.token_url', 'Token URL', el('input', { type: 'url', name: 'auth_token_url', value: a.token_url || '' })),
        field('auth.client_id', 'Client id', el('input', { type: 'text', name: 'auth_client_id', value: a.client_id || '' })),
        field('auth.client_secret', 'Client secret', el('input', { type: 'password', name: 'auth_client_secret', autocomplete: 'off' }), keep),
        field('auth.scopes', 'Scopes', el('input', { type: 'text', name: 'auth_scopes', value: (a.scopes || []).join(' ') }), 'Space-separated.')],
    };
    const authBox = el('div', {});
    const showAuth = () => { put(authBox, ...(authFields[authType.value] || [])); };
    authType.addEventListener('change', showAuth);
    showAuth();

    const b = v.batching || { mode: 'none' };
    const headersText = Object.entries(v.headers || {}).map(([k, val]) => `${k}: ${val}`).join('\n');
    const form = el('form', { id: 'webhook-form', novalidate: true },
      el('fieldset', {}, el('legend', {}, 'Endpoint'),
        field('name', 'Name', el('input', { type: 'text', name: 'name', value: v.name || '', required: true, maxlength: 200 })),
        field('url', 'Payload URL', el('input', { type: 'url', name: 'url', value: v.url || '', required: true, placeholder: 'https://example.com/hooks' })),
        check('enabled', 'Enabled: deliver events', v.enabled),
        field('content_type', 'Content type', selectOf('content_type', [['application/json', 'application/json'], ['application/x-www-form-urlencoded', 'application/x-www-form-urlencoded (payload=<json>)']], v.content_type))),
      secretBlock,
      el('fieldset', {}, el('legend', {}, 'Events'),
        el('div', { class: 'radios', role: 'radiogroup', 'aria-label': 'Which events' },
          el('div', {}, modeAll, ' ', el('label', { for: 'events-all' }, 'Send me everything')),
          el('div', {}, modeSelect, ' ', el('label', { for: 'events-select' }, 'Let me select individual events'))),
        el('p', { class: 'field-error', 'data-field': 'events' }),
        picker,
        field('identifier', 'Only this resource id', el('input', { type: 'text', name: 'identifier', value: v.identifier || '' }), 'Empty: every resource.'),
        check('include_related', 'Include related resources', v.include_related, 'Also fire on triggers of related resources:'),
        tableWrap(related)),
      el('fieldset', {}, el('legend', {}, 'Condition'),
        field('condition', 'Condition', el('textarea', { name: 'condition', rows: 3, spellcheck: 'false', placeholder: 'data.priority == "High" && data.assignee == nil' }, v.condition || ''),
          'An expression over the event (data, changes, context, resource, trigger, …); empty: every event.')),
      el('fieldset', {}, el('legend', {}, 'Payload'),
        field('fields', 'Fields', el('input', { type: 'text', name: 'fields', value: (v.fields || []).join(', '), placeholder: 'subject, priority' }), 'Comma-separated fields of data to send; empty: all.'),
        check('include_all_fields', 'Updates send every field (off: only the changed ones)', v.include_all_fields !== false),
        check('include_changes', 'Updates carry changes ({field: {old, new}})', v.include_changes !== false),
        field('select_values', 'Single-select values', selectOf('select_values', [['', 'As given'], ['id', 'Their id'], ['display', 'Their display text']], v.select_values || ''))),
      el('fieldset', {}, el('legend', {}, 'Batching'),
        el('div', { class: 'row' },
          field('batching.mode', 'Mode', selectOf('batching_mode', [['none', 'None: one event per request'], ['same_event', 'Same event'], ['same_type', 'Same type'], ['any', 'Any']], b.mode || 'none')),
          field('batching.wait_seconds', 'Wait (seconds)', el('input', { type: 'number', name: 'batching_wait_seconds', min: 0, value: b.wait_seconds || '' })),
          field('batching.max_items', 'Max items', el('input', { type: 'number', name: 'batching_max_items', min: 0, value: b.max_items || '' }))),
        el('p', { class: 'note' }, 'With batching, the request body becomes a JSON array of payloads.')),
      el('fieldset', {}, el('legend', {}, 'Endpoint authentication'),
        field('auth.type', 'Type', authType, 'Credentials are write-only: they are never shown again.'), authBox),
      el('fieldset', {}, el('legend', {}, 'Headers'),
        field('headers', 'Extra request headers', el('textarea', { name: 'headers', rows: 3, spellcheck: 'false', placeholder: 'X-Tenant: acme' }, headersText), 'One "Name: value" per line.')),
      el('fieldset', {}, el('legend', {}, 'Delivery'),
        el('div', { class: 'row' },
          field('retries', 'Retries', el('input', { type: 'number', name: 'retries', min: 0, value: v.retries })),
          field('timeout_ms', 'Timeout (ms)', el('input', { type: 'number', name: 'timeout_ms', min: 1, value: v.timeout_ms })),
          field('rate_limit', 'Rate limit (requests/s)', el('input', { type: 'number', name: 'rate_limit', min: 0, step: 'any', value: v.rate_limit || '' }), 'Empty: no limit.'),
          field('max_concurrency', 'Max concurrency', el('input', { type: 'number', name: 'max_concurrency', min: 1, value: v.max_concurrency || 32 })))),
      el('div', { class: 'actions' },
        el('button', { type: 'submit', id: 'save', class: 'primary' }, w ? 'Save' : 'Create webhook'),
        el('a', { id: 'cancel', class: 'button', href: w ? '/webhooks/' + encodeURIComponent(w.id) : '/' }, 'Cancel'),
        w ? el('span', { class: 'grow' }) : null,
        w ? el('button', { type: 'button', id: 'delete-webhook', class: 'danger', onclick: () => deleteWebhook(w) }, 'Delete webhook') : null));

    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      clearFieldErrors(form);
      let body;
      try { body = formBody(form, w); } catch (err) { return fieldError(form, err.field, err.message); }
      const save = form.querySelector('#save');
      save.disabled = true;
      try {
        const res = w ? await api('PATCH', '/v1/webhooks/' + encodeURIComponent(w.id), body) : await api('POST', '/v1/webhooks', body);
        const warn = (res.warnings || []).join(' ');
        if (res.secret) {
          put(main, secretOnce(res, warn));
          main.dataset.page = 'webhook-form';
          return;
        }
        navigate('/webhooks/' + encodeURIComponent(res.id));
        if (warn) showError('Saved, with warnings: ' + warn); else flash(w ? 'Saved.' : 'Webhook created.');
      } catch (err) {
        save.disabled = false;
        if (err instanceof APIError && err.status === 400) fieldError(form, err.field, err.message);
        else showError(err.message);
      }
    });
    return [el('h1', {}, w ? `Edit ${w.name}` : 'New webhook'), form];
  }

  function clearFieldErrors(form) {
    clearMessages();
    for (const p of form.querySelectorAll('.field-error')) p.textContent = '';
    for (const i of form.querySelectorAll('[aria-invalid]')) i.removeAttribute('aria-invalid');
  }

  // fieldError shows a server (or form) error next to its field: the exact
  // field, else its parent (auth.password → auth.type's box, events[2] →
  // events), else at the top.
  function fieldError(form, f, message) {
    const names = f ? [f, f.replace(/\[\d+\]$/, ''), f.split('.')[0] + '.type', f.split(/[.[]/)[0]] : [];
    let p = null;
    for (const n of names) { p = form.querySelector(`.field-error[data-field="${CSS.escape(n)}"]`); if (p) break; }
    if (!p) { showError(message); return; }
    const label = f && p.dataset.field !== f ? `${f}: ` : '';
    p.textContent = label + message;
    const input = p.parentElement.querySelector('input, select, textarea');
    if (input) { input.setAttribute('aria-invalid', 'true'); input.focus(); }
    showError('The webhook was not saved: ' + (f ? f + ' ' : '') + message);
  }

  // formBody turns the form into the API's webhook body.
  function formBody(form, w) {
    const f = new FormData(form);
    const s = (n) => (f.get(n) || '').toString().trim();
    const num = (n) => (s(n) === '' ? undefined : Number(s(n)));
    const list = (n, sep) => s(n).split(sep || ',').map((x) => x.trim()).filter(Boolean);
    const body = {
      name: s('name'), url: s('url'), enabled: form.elements.enabled.checked, content_type: s('content_type'),
      identifier: s('identifier'), include_related: form.elements.include_related.checked,
      condition: s('condition'), fields: list('fields'),
      include_all_fields: form.elements.include_all_fields.checked, include_changes: form.elements.include_changes.checked,
      select_values: s('select_values'), retries: num('retries'), timeout_ms: num('timeout_ms'),
      rate_limit: num('rate_limit') || 0, max_concurrency: num('max_concurrency'),
    };
    if (f.get('events_mode') === 'all') body.events = ['*'];
    else {
      body.events = [...f.getAll('event'), ...list('events_other')];
      if (!body.events.length) throw Object.assign(new Error('choose at least one event, or "Send me everything"'), { field: 'events' });
    }
    const mode = s('batching_mode');
    body.batching = mode === 'none' ? { mode: 'none' } : { mode, wait_seconds: num('batching_wait_seconds'), max_items: num('batching_max_items') };
    const headers = {};
    for (const line of s('headers').split('\n').map((l) => l.trim()).filter(Boolean)) {
      const i = line.indexOf(':');
      if (i <= 0) throw Object.assign(new Error(`"${line}" is not "Name: value"`), { field: 'headers' });
      headers[line.slice(0, i).trim()] = line.slice(i + 1).trim();
    }
    body.headers = headers;
    if (!w) {
      const m = f.get('secret_mode');
      if (m === 'none') body.secret = null;
      else if (m === 'custom') body.secret = s('secret');
    }
    const type = s('auth_type');
    const auth = { type };
    const creds = { basic: ['password'], bearer: ['token'], api_key: ['value'], oauth2_client_credentials: ['client_secret'] }[type] || [];
    const plain = { basic: ['username'], api_key: ['header'], oauth2_client_credentials: ['token_url', 'client_id'] }[type] || [];
    for (const k of [...plain, ...creds]) if (s('auth_' + k)) auth[k] = s('auth_' + k);
    if (type === 'oauth2_client_credentials' && s('auth_scopes')) auth.scopes = list('auth_scopes', /\s+/);
    const before = w && w.auth;
    const givesCreds = creds.some((k) => auth[k]);
    if (type === 'none') { if (!w || before) body.auth = { type: 'none' }; }
    else if (givesCreds) body.auth = auth;
    else if (!before || before.type !== type) throw Object.assign(new Error('give the credentials'), { field: 'auth.' + creds[0] });
    else {
      const changed = plain.some((k) => (auth[k] || '') !== (before[k] || '')) || (type === 'oauth2_client_credentials' && (auth.scopes || []).join(' ') !== (before.scopes || []).join(' '));
      if (changed) throw Object.assign(new Error('give the credentials again to change this authentication'), { field: 'auth.' + creds[0] });
    }
    return body;
  }

  function secretOnce(res, warn) {
    const code = el('code', { id: 'new-secret' }, res.secret);
    const copy = el('button', { type: 'button', id: 'copy-secret', onclick: async () => {
      try { await navigator.clipboard.writeText(res.secret); copy.textContent = 'Copied'; } catch (_) {
        const r = document.createRange(); r.selectNodeContents(code); const sel = getSelection(); sel.removeAllRanges(); sel.addRange(r);
        copy.textContent = 'Selected: press Ctrl+C';
      }
    } }, 'Copy');
    return [
      el('h1', {}, res.name),
      warn ? el('p', { class: 'note' }, 'Warnings: ' + warn) : null,
      el('div', { id: 'secret-once', class: 'secret-once' },
        el('h2', {}, 'Signing secret'),
        el('p', {}, 'Copy it now: it is shown only this once. Receivers verify deliveries with it.'),
        code, el('div', { class: 'actions' }, copy,
          el('a', { id: 'continue', class: 'button primary', href: '/webhooks/' + encodeURIComponent(res.id) }, 'Continue to the webhook'))),
    ];
  }

  function rotatePanel(w) {
    const out = el('div', { id: 'rotate-result' });
    const overlap = el('input', { type: 'number', name: 'overlap_seconds', id: 'f-overlap', min: 0, value: 86400 });
    const secret = el('input', { type: 'text', name: 'new_secret', id: 'f-new-secret', autocomplete: 'off', placeholder: 'empty: generate one' });
    const button = el('button', { type: 'button', id: 'rotate-secret' }, 'Rotate secret');
    button.addEventListener('click', async () => {
      if (!(await confirmDialog('Rotate the signing secret? The previous one keeps signing for the overlap, then stops.', 'Rotate'))) return;
      try {
        const body = { overlap_seconds: Number(overlap.value || 0) };
        if (secret.value.trim()) body.secret = secret.value.trim();
        const res = await api('POST', `/v1/webhooks/${encodeURIComponent(w.id)}/rotate-secret`, body);
        put(out, el('div', { class: 'secret-once' },
          res.secret ? [el('p', {}, 'The new secret, shown only this once:'), el('code', { id: 'rotated-secret' }, res.secret)] : el('p', {}, 'The secret was replaced.'),
          res.previous_secret_expires_at ? el('p', { class: 'hint' }, 'The previous secret signs too until ' + fmtTime(res.previous_secret_expires_at) + ' (each delivery carries both signatures).') : null));
        flash('Secret rotated.');
      } catch (err) { showError(err.message); }
    });
    return el('div', {}, el('div', { class: 'row' }, field('overlap_seconds', 'Overlap (seconds)', overlap), field('secret', 'New secret', secret)),
      el('div', { class: 'actions' }, button), out);
  }

  // deleteWebhook asks, deletes and goes back to the grid.
  async function deleteWebhook(w) {
    if (!(await confirmDialog(`Delete ${w.name}? Its delivery history stays.`, 'Delete'))) return;
    try {
      await api('DELETE', '/v1/webhooks/' + encodeURIComponent(w.id));
      navigate('/');
      flash(`Deleted ${w.name}.`);
    } catch (err) { showError(err.message); }
  }

  // ---- webhook page ----------------------------------------------------------

  async function pageWebhook(id) {
    const w = await get('/v1/webhooks/' + encodeURIComponent(id));
    const base = '/v1/webhooks/' + encodeURIComponent(id);
    const summary = el('table', { class: 'kv', id: 'webhook-summary' }, el('tbody', {},
      el('tr', {}, el('th', { scope: 'row' }, 'URL'), el('td', { class: 'mono' }, w.url)),
      el('tr', {}, el('th', { scope: 'row' }, 'State'), el('td', {}, el('span', { class: 'badge ' + (w.enabled ? 'on' : 'off') }, w.enabled ? 'enabled' : 'disabled'),
        w.disabled_reason ? ' ' + w.disabled_reason : '')),
      el('tr', {}, el('th', { scope: 'row' }, 'Events'), el('td', {}, (w.events || []).join(', '))),
      el('tr', {}, el('th', { scope: 'row' }, 'Circuit breaker'), el('td', { class: 'breaker' }, breakerBadge(w.breaker_state))),
      el('tr', {}, el('th', { scope: 'row' }, 'Signing'), el('td', {}, w.has_secret ? 'signed' : 'unsigned')),
      w.condition ? el('tr', {}, el('th', { scope: 'row' }, 'Condition'), el('td', { class: 'mono' }, w.condition)) : null,
      el('tr', {}, el('th', { scope: 'row' }, 'Id'), el('td', { class: 'mono' }, w.id))));

    const sendTest = el('button', { type: 'button', id: 'send-test' }, 'Send test event');
    sendTest.addEventListener('click', async () => {
      try {
        const d = await api('POST', base + '/test', {});
        queued.set(d.id, d);
        flash(`Test event sent as delivery ${shortId(d.id)}; it shows below in a moment.`);
        refreshDeliveries();
      } catch (err) { showError(err.message); }
    });
    const del = el('button', { type: 'button', id: 'delete-webhook', class: 'danger', onclick: () => deleteWebhook(w) }, 'Delete');

    const { section: deliveries, refresh: refreshDeliveries } = deliveriesSection(w);
    return [
      el('h1', {}, w.name),
      el('div', { class: 'actions' }, el('a', { id: 'edit', class: 'button', href: base.replace('/v1', '') + '/edit' }, 'Edit'), sendTest, del),
      summary,
      statsSection(w),
      el('div', { class: 'panels' }, redeliverPanel(w, () => refreshDeliveries()), replayPanel(w)),
      deliveries,
    ];
  }

  function statsSection(w) {
    const base = '/v1/webhooks/' + encodeURIComponent(w.id);
    const period = el('select', { id: 'stats-period', 'aria-label': 'Period' },
      el('option', { value: '24' }, 'Last 24 hours'), el('option', { value: '168' }, 'Last 7 days'), el('option', { value: '1' }, 'Last hour'));
    const cards = el('div', { class: 'cards' });
    const byState = svg('svg', { id: 'chart-deliveries', role: 'img', 'aria-label': 'Deliveries by state over time', viewBox: '0 0 600 180', preserveAspectRatio: 'none' });
    const latency = svg('svg', { id: 'chart-latency', role: 'img', 'aria-label': 'p50 and p99 latency over time', viewBox: '0 0 600 180', preserveAspectRatio: 'none' });
    const legend = (items) => el('div', { class: 'legend' }, items.map(([c, l]) => el('span', {}, el('i', { style: `background:${c}` }), l)));
    async function load() {
      const hours = Number(period.value);
      const since = new Date(Date.now() - hours * 3600e3).toISOString().replace(/\.\d{3}Z$/, 'Z');
      const step = hours <= 1 ? '5m' : hours <= 24 ? '1h' : '6h';
      try {
        const [stats, series] = await Promise.all([get(base + '/stats' + query({ since })), get(base + '/stats/series' + query({ since, step }))]);
        const d = stats.deliveries || {};
        const total = STATES.reduce((n, s) => n + (d[s] || 0), 0);
        const card = (k, val, cls) => el('div', { class: 'card ' + (cls || '') }, el('div', { class: 'k' }, k), el('div', { class: 'v' }, val));
        put(cards, card('Deliveries', total), card('Success rate', total ? pct(stats.success_rate) : '—'),
          ...STATES.map((s) => card(s, d[s] || 0, 'state-' + s)),
          card('p50 latency', `${Math.round(stats.latency_ms.p50)} ms`), card('p99 latency', `${Math.round(stats.latency_ms.p99)} ms`),
          el('div', { class: 'card' }, el('div', { class: 'k' }, 'Breaker'), el('div', { class: 'v' }, breakerBadge(stats.breaker_state))));
        drawStacked(byState, series.buckets);
        drawLines(latency, series.buckets);
      } catch (err) { put(cards, el('p', { class: 'muted' }, 'Stats are not available: ' + err.message)); }
    }
    period.addEventListener('change', load);
    load();
    every(15000, load);
    return el('section', { id: 'stats', 'aria-labelledby': 'stats-h' },
      el('div', { class: 'toolbar' }, el('h2', { id: 'stats-h' }, 'Stats'), period),
      cards,
      el('div', { class: 'charts' },
        el('figure', { class: 'chart' }, byState, el('figcaption', {}, legend(STATES.map((s) => [STATE_COLOUR[s], s])))),
        el('figure', { class: 'chart' }, latency, el('figcaption', {}, legend([['#1d4ed8', 'p50 latency'], ['#b91c1c', 'p99 latency']])))));
  }

  function axisLabel(node, text) { node.append(svg('text', { x: 4, y: 12, 'font-size': 11, fill: '#4b5563' }, text)); }

  function drawStacked(node, buckets) {
    put(node, );
    const W = 600, H = 180, top = 16;
    const totals = buckets.map((b) => STATES.reduce((n, s) => n + (b.deliveries[s] || 0), 0));
    const max = Math.max(1, ...totals);
    const bw = W / Math.max(1, buckets.length);
    buckets.forEach((b, i) => {
      let y = H;
      for (const s of STATES) {
        const n = b.deliveries[s] || 0;
        if (!n) continue;
        const h = (n / max) * (H - top);
        y -= h;
        node.append(svg('rect', { x: i * bw + 1, y, width: Math.max(1, bw - 2), height: h, fill: STATE_COLOUR[s] }, svg('title', {}, `${new Date(b.start).toLocaleString()}: ${n} ${s}`)));
      }
    });
    axisLabel(node, `max ${max} per bucket`);
  }

  function drawLines(node, buckets) {
    put(node, );
    const W = 600, H = 180, top = 16;
    const max = Math.max(1, ...buckets.map((b) => b.latency_ms.p99 || 0));
    const x = (i) => (buckets.length <= 1 ? W / 2 : (i / (buckets.length - 1)) * W);
    const y = (v) => H - (v / max) * (H - top);
    for (const [key, colour] of [['p50', '#1d4ed8'], ['p99', '#b91c1c']]) {
      const pts = buckets.map((b, i) => `${x(i).toFixed(1)},${y(b.latency_ms[key] || 0).toFixed(1)}`).join(' ');
      node.append(svg('polyline', { points: pts, fill: 'none', stroke: colour, 'stroke-width': 2, 'vector-effect': 'non-scaling-stroke' }));
    }
    axisLabel(node, `max ${Math.round(max)} ms`);
  }

  function redeliverPanel(w, done) {
    const since = el('input', { type: 'datetime-local', name: 'since', value: localInput(hoursAgo(24)) });
    const until = el('input', { type: 'datetime-local', name: 'until' });
    const result = el('p', { id: 'redeliver-result', 'aria-live': 'polite' });
    const form = el('form', { id: 'redeliver-failed', onsubmit: async (e) => {
      e.preventDefault();
      result.textContent = '';
      try {
        const res = await api('POST', `/v1/webhooks/${encodeURIComponent(w.id)}/redeliver-failed`, { since: rfc3339(since.value), until: rfc3339(until.value) });
        result.textContent = res.count ? `${plural(res.count, 'failed delivery', 'failed deliveries')} redelivered.` : 'No failed delivery to redeliver in this range.';
        result.dataset.count = res.count;
        done();
      } catch (err) { result.textContent = err.message; }
    } },
    el('div', { class: 'row' }, field('since', 'Created from', since), field('until', 'until', until, 'Empty: now.')),
    el('div', { class: 'actions' }, el('button', { type: 'submit' }, 'Redeliver failed')), result);
    return el('section', { class: 'panel', 'aria-labelledby': 'redeliver-h' }, el('h2', { id: 'redeliver-h' }, 'Redeliver failed deliveries'),
      el('p', { class: 'hint' }, 'Each failed delivery in the range that is not redelivered yet goes out again under a new id.'), form);
  }

  // progressOf is a replay's share of its partitions read, 0 to 1.
  function progressOf(r) {
    let total = 0, read = 0;
    for (const p of r.partitions || []) { total += Math.max(0, p.end - p.start); read += Math.max(0, Math.min(p.next, p.end) - p.start); }
    return r.state === 'done' ? 1 : total ? read / total : 0;
  }

  function replayPanel(w) {
    const from = el('input', { type: 'datetime-local', name: 'from', value: localInput(hoursAgo(1)) });
    const to = el('input', { type: 'datetime-local', name: 'to' });
    const result = el('p', { id: 'replay-result', 'aria-live': 'polite' });
    const progress = el('progress', { id: 'replay-progress', max: 1, value: 0, hidden: true, 'aria-label': 'Replay progress' });
    const dry = el('button', { type: 'button', id: 'replay-dry-run' }, 'Dry run: count');
    const run = el('button', { type: 'button', id: 'replay-run', class: 'primary', disabled: true }, 'Replay');
    const cancel = el('button', { type: 'button', id: 'replay-cancel', class: 'danger', hidden: true }, 'Cancel');
    let current = null;
    const spec = (dryRun) => {
      const body = { webhook_ids: [w.id], from: { time: rfc3339(from.value) }, dry_run: dryRun };
      if (to.value) body.to = { time: rfc3339(to.value) };
      return body;
    };
    function show(r) {
      result.dataset.state = r.state;
      progress.hidden = false;
      progress.value = progressOf(r);
      const counts = `${plural(r.matched, 'event')} matched of ${r.scanned} scanned`;
      if (r.dry_run) {
        result.textContent = r.state === 'running' ? `Counting… ${counts}` : `Dry run ${r.state}: ${counts}.`;
        if (r.state === 'done') { result.dataset.matched = r.matched; run.disabled = r.matched === 0; run.textContent = `Replay ${plural(r.matched, 'event')}`; }
      } else {
        result.textContent = `Replay ${r.state}: ${counts}, ${r.enqueued} enqueued.`;
        result.dataset.matched = r.matched;
      }
      if (r.state === 'failed' && r.error) result.textContent += ' ' + r.error;
      cancel.hidden = r.state !== 'running';
    }
    async function follow(r) {
      current = r;
      show(r);
      while (current && current.id === r.id && r.state === 'running' && main.contains(result)) {
        await new Promise((res) => setTimeout(res, 500));
        try { r = await get('/v1/replays/' + encodeURIComponent(r.id)); } catch (err) { result.textContent = err.message; return; }
        if (!current || current.id !== r.id) return; // another replay started meanwhile
        current = r;
        show(r);
      }
    }
    async function start(dryRun) {
      delete result.dataset.matched;
      run.disabled = true;
      try { follow(await api('POST', '/v1/replays', spec(dryRun))); } catch (err) { result.textContent = err.message; delete result.dataset.state; }
    }
    dry.addEventListener('click', () => start(true));
    run.addEventListener('click', () => start(false));
    for (const i of [from, to]) i.addEventListener('change', () => { run.disabled = true; run.textContent = 'Replay'; });
    cancel.addEventListener('click', async () => {
      if (!current) return;
      try { show(await api('DELETE', '/v1/replays/' + encodeURIComponent(current.id))); } catch (err) { result.textContent = err.message; }
    });
    const form = el('form', { id: 'replay', onsubmit: (e) => { e.preventDefault(); start(true); } },
      el('div', { class: 'row' }, field('from', 'Events from', from), field('to', 'until', to, 'Empty: up to now.')),
      el('div', { class: 'actions' }, dry, run, cancel), progress, result);
    return el('section', { class: 'panel', 'aria-labelledby': 'replay-h' }, el('h2', { id: 'replay-h' }, 'Replay'),
      el('p', { class: 'hint' }, 'Re-reads hookline.events for this webhook, with its configuration of now. Count first with a dry run. ', el('a', { href: '/replays' }, 'Every replay')), form);
  }

  function deliveriesSection(w) {
    const base = '/v1/webhooks/' + encodeURIComponent(w.id);
    const tbody = el('tbody', {});
    const table = el('table', { id: 'deliveries' },
      el('thead', {}, el('tr', {}, ['State', 'Delivery', 'Event type', 'Status', 'Attempts', 'Created', 'Updated'].map((h) => el('th', { scope: 'col' }, h)))),
      tbody);
    const pager = el('div', { class: 'actions' });
    const empty = el('p', { class: 'empty', hidden: true }, 'No deliveries yet.');
    let filters = {};
    let cursors = []; // cursors of the pages before this one
    let cursor = '';
    async function load() {
      let page;
      try { page = await get(base + '/deliveries' + query({ ...filters, limit: 25, cursor })); } catch (err) { empty.hidden = false; empty.textContent = err.message; return; }
      const redeliveredBy = {};
      for (const d of page.data) if (d.redelivery_of) (redeliveredBy[d.redelivery_of] = redeliveredBy[d.redelivery_of] || []).push(d.id);
      put(tbody, ...page.data.map((d) => el('tr', { 'data-id': d.id, 'data-state': d.state, class: 'clickable',
        // As in BMS, a click anywhere on the row opens the delivery.
        onclick: (e) => { if (!e.target.closest('a, button, input')) navigate('/deliveries/' + encodeURIComponent(d.id)); } },
        el('td', {}, stateIcon(d.state)),
        el('td', {}, el('a', { class: 'delivery mono', href: '/deliveries/' + encodeURIComponent(d.id) }, shortId(d.id)),
          d.redelivery_of ? el('a', { class: 'redelivered', href: '/deliveries/' + encodeURIComponent(d.redelivery_of), title: 'Redelivery of ' + d.redelivery_of }, '↻ redelivery of ' + shortId(d.redelivery_of)) : null,
          (redeliveredBy[d.id] || []).map((n) => el('a', { class: 'redelivered-by', href: '/deliveries/' + encodeURIComponent(n), title: 'Redelivered as ' + n }, '→ redelivered as ' + shortId(n))),
          d.replay_id ? el('span', { class: 'badge', title: 'Replay ' + d.replay_id }, 'replay') : null),
        el('td', { class: 'event-type' }, d.event_type),
        el('td', { class: 'status' }, d.last_status_code ? String(d.last_status_code) : (d.state === 'pending' ? '' : 'no response'), nextAttempt(d)),
        el('td', { class: 'num' }, String(d.attempt_count)),
        el('td', {}, fmtTime(d.created_at)),
        el('td', {}, fmtTime(d.updated_at)))));
      empty.hidden = page.data.length > 0;
      table.hidden = page.data.length === 0;
      put(pager, 
        cursors.length ? el('button', { type: 'button', id: 'newest', onclick: () => { cursors = []; cursor = ''; load(); } }, 'Newest') : null,
        page.next_cursor ? el('button', { type: 'button', id: 'older', onclick: () => { cursors.push(cursor); cursor = page.next_cursor; load(); } }, 'Older') : null);
    }
    const form = el('form', { id: 'delivery-filters', class: 'filters', role: 'search', onsubmit: (e) => {
      e.preventDefault();
      const f = new FormData(e.target);
      filters = { state: f.get('state'), event_type: f.get('event_type'), status: f.get('status'), since: rfc3339(f.get('since')), until: rfc3339(f.get('until')) };
      cursors = []; cursor = '';
      load();
    } },
    field('state', 'State', selectOf('state', [['', 'Any'], ...STATES.map((s) => [s, s])], '')),
    field('event_type', 'Event type', el('input', { type: 'text', name: 'event_type', placeholder: 'ticket.created' })),
    field('status', 'Status', el('input', { type: 'text', name: 'status', placeholder: '5xx, 404, error' })),
    field('since', 'Created from', el('input', { type: 'datetime-local', name: 'since' })),
    field('until', 'until', el('input', { type: 'datetime-local', name: 'until' })),
    el('button', { type: 'submit' }, 'Filter'));
    load();
    every(3000, () => { if (!cursor && document.visibilityState === 'visible') load(); });
    every(5000, tickNextAttempts);
    const section = el('section', { 'aria-labelledby': 'deliveries-h' },
      el('h2', { id: 'deliveries-h' }, 'Recent deliveries'), form, tableWrap(table), empty, pager);
    return { section, refresh: load };
  }

  // ---- delivery page -------------------------------------------------------------

  function pretty(body) {
    if (!body) return '';
    try { return JSON.stringify(JSON.parse(body), null, 2); } catch (_) { /* not JSON */ }
    try {
      const p = new URLSearchParams(body).get('payload');
      if (p) return 'payload=\n' + JSON.stringify(JSON.parse(p), null, 2);
    } catch (_) { /* not a form either */ }
    return body;
  }
  function headerTable(id, cls, headers) {
    const names = Object.keys(headers || {}).sort();
    return el('table', { id, class: 'kv ' + (cls || '') }, el('tbody', {}, names.map((n) =>
      el('tr', { 'data-header': n }, el('th', { scope: 'row' }, n), el('td', { class: 'mono' }, headers[n])))));
  }

  // queued holds deliveries this browser just asked for (a redelivery, a
  // test): the history shows one at its first attempt, so until then its
  // page shows it as queued and looks again every second.
  const queued = new Map();

  async function pageDelivery(id) {
    let d;
    try { d = await get('/v1/deliveries/' + encodeURIComponent(id)); } catch (err) {
      if (!(err instanceof APIError && err.status === 404 && queued.has(id))) throw err;
      d = { ...queued.get(id), attempts: [], request: null, queued: true };
      every(1000, async () => {
        try { await get('/v1/deliveries/' + encodeURIComponent(id)); queued.delete(id); render({ keepMessages: true }); } catch (_) { /* not yet */ }
      });
    }
    const failed = d.state === 'failed';
    const redeliver = el('button', { type: 'button', id: 'redeliver', class: failed ? 'primary' : '' }, failed ? 'Redeliver' : 'Redeliver anyway');
    redeliver.addEventListener('click', async () => {
      if (!failed && !(await confirmDialog(`This delivery ${d.state === 'succeeded' ? 'succeeded' : 'is ' + d.state}. Send it again anyway, under a new id?`, 'Redeliver anyway'))) return;
      try {
        const n = await api('POST', `/v1/deliveries/${encodeURIComponent(d.id)}/redeliver`, failed ? {} : { force: true });
        queued.set(n.id, n);
        navigate('/deliveries/' + encodeURIComponent(n.id), { keepMessages: true });
        flash(`Redelivered as ${n.id}. Its first attempt shows here in a moment.`);
      } catch (err) { showError(err.message); }
    });
    const facts = el('table', { class: 'kv', id: 'delivery-summary' }, el('tbody', {},
      el('tr', {}, el('th', { scope: 'row' }, 'State'), el('td', {}, stateIcon(d.state), ' ', d.state, nextAttempt(d))),
      el('tr', {}, el('th', { scope: 'row' }, 'Webhook'), el('td', {}, el('a', { id: 'webhook-link', href: '/webhooks/' + encodeURIComponent(d.webhook_id) }, d.webhook_id))),
      el('tr', {}, el('th', { scope: 'row' }, 'Event type'), el('td', {}, d.event_type)),
      el('tr', {}, el('th', { scope: 'row' }, 'Events'), el('td', { class: 'mono' }, (d.event_ids || []).join(', '))),
      el('tr', {}, el('th', { scope: 'row' }, 'URL'), el('td', { class: 'mono' }, d.url || '')),
      el('tr', {}, el('th', { scope: 'row' }, 'Created'), el('td', {}, fmtTime(d.created_at))),
      el('tr', {}, el('th', { scope: 'row' }, 'Attempts'), el('td', {}, String(d.attempt_count))),
      d.redelivery_of ? el('tr', {}, el('th', { scope: 'row' }, 'Redelivery of'), el('td', {}, el('a', { id: 'redelivery-of', class: 'mono', href: '/deliveries/' + encodeURIComponent(d.redelivery_of) }, d.redelivery_of))) : null,
      (d.redelivered_by || []).length ? el('tr', {}, el('th', { scope: 'row' }, 'Redelivered as'), el('td', { id: 'redelivered-by' },
        d.redelivered_by.map((n, i) => [i ? ', ' : '', el('a', { class: 'mono', href: '/deliveries/' + encodeURIComponent(n) }, n)]))) : null,
      d.replay_id ? el('tr', {}, el('th', { scope: 'row' }, 'Replay'), el('td', { class: 'mono' }, el('a', { href: '/replays' }, d.replay_id))) : null));
    const req = d.request || { headers: {}, body: '' };
    const attempts = (d.attempts || []).slice().reverse().map((a) => el('section', { class: 'attempt', 'aria-label': `Attempt ${a.n}` },
      el('h3', {}, `Attempt ${a.n}`, ' ', el('span', { class: 'muted' }, fmtTime(a.at))),
      el('table', { class: 'kv' }, el('tbody', {},
        el('tr', {}, el('th', { scope: 'row' }, 'Status'), el('td', { class: 'status' }, a.status_code ? String(a.status_code) : 'no response')),
        el('tr', {}, el('th', { scope: 'row' }, 'Duration'), el('td', { class: 'duration' }, `${a.duration_ms} ms`)),
        el('tr', {}, el('th', { scope: 'row' }, 'Error'), el('td', { class: 'error' }, a.error || '—')))),
      el('h4', {}, 'Response headers'), headerTable(undefined, 'response-headers', a.response_headers),
      el('h4', {}, 'Response body'), el('pre', { class: 'response-body' }, pretty(a.response_body) || '(empty)')));
    every(3000, async () => {
      if (d.state !== 'pending' && d.state !== 'retrying') return;
      try {
        const n = await get('/v1/deliveries/' + encodeURIComponent(id));
        if (n.state !== d.state || n.attempt_count !== d.attempt_count || n.next_attempt_at !== d.next_attempt_at) render({ keepMessages: true });
      } catch (_) { /* keep the page */ }
    });
    every(1000, tickNextAttempts);
    return [
      el('h1', {}, 'Delivery ', el('span', { class: 'mono' }, d.id)),
      el('div', { class: 'actions' }, d.queued ? null : redeliver, el('a', { class: 'button', href: '/webhooks/' + encodeURIComponent(d.webhook_id) }, 'Back to the webhook')),
      facts,
      d.queued ? el('p', { class: 'note', id: 'queued' }, 'Queued: the request and its attempts show here once its first attempt is made.') : null,
      el('h2', {}, 'Request'),
      el('p', { class: 'hint' }, d.attempt_count === 0 && !d.queued ? 'Not sent yet: the body that will be sent.' : 'Credentials are masked; the signatures are shown as sent.'),
      headerTable('request-headers', '', req.headers),
      el('h3', {}, 'Body'), el('pre', { id: 'request-body' }, pretty(req.body) || '(not kept)'),
      el('h2', {}, 'Attempts'),
      attempts.length ? attempts : el('p', { class: 'empty' }, d.next_attempt_at && d.state === 'pending' ? 'No attempt yet: it waits for its first.' : 'No attempt yet: it is queued.'),
    ];
  }

  // ---- replays page ---------------------------------------------------------------

  async function pageReplays() {
    const params = new URLSearchParams(location.search);
    const list = await get('/v1/replays' + query({ limit: 50, cursor: params.get('cursor'), state: params.get('state') }));
    const tbody = el('tbody', {});
    function rows(data) {
      put(tbody, ...data.map((r) => {
        const cancel = r.state === 'running' ? el('button', { type: 'button', class: 'danger', onclick: async () => {
          try { await api('DELETE', '/v1/replays/' + encodeURIComponent(r.id)); render({ keepMessages: true }); flash('Replay cancelled.'); } catch (err) { showError(err.message); }
        } }, 'Cancel') : null;
        const p = progressOf(r);
        return el('tr', { 'data-id': r.id },
          el('td', { class: 'mono' }, shortId(r.id)),
          el('td', {}, (r.webhook_ids || []).map((id, i) => [i ? ', ' : '', el('a', { href: '/webhooks/' + encodeURIComponent(id), class: 'mono' }, shortId(id))])),
          el('td', {}, r.from && r.from.time ? fmtTime(r.from.time) : r.from && r.from.offsets ? 'offsets' : '—'),
          el('td', {}, r.to && r.to.time ? fmtTime(r.to.time) : r.to && r.to.offsets ? 'offsets' : 'its start'),
          el('td', {}, r.dry_run ? 'dry run' : 'deliver'),
          el('td', { class: 'state' }, el('span', { class: 'badge ' + r.state }, r.state)),
          el('td', {}, el('progress', { max: 1, value: p, 'aria-label': `Progress of replay ${shortId(r.id)}` }), ` ${Math.round(p * 100)}%`),
          el('td', { class: 'num' }, String(r.scanned)), el('td', { class: 'num' }, String(r.matched)), el('td', { class: 'num' }, String(r.enqueued)),
          el('td', {}, fmtTime(r.created_at)), el('td', {}, cancel));
      }));
    }
    rows(list.data);
    if (list.data.some((r) => r.state === 'running')) {
      every(1000, async () => {
        try { const n = await get('/v1/replays' + query({ limit: 50, cursor: params.get('cursor'), state: params.get('state') })); rows(n.data); } catch (_) { /* keep */ }
      });
    }
    const table = el('table', { id: 'replays' },
      el('thead', {}, el('tr', {}, ['Replay', 'Webhooks', 'From', 'To', 'Kind', 'State', 'Progress'].map((h) => el('th', { scope: 'col' }, h)),
        ['Scanned', 'Matched', 'Enqueued'].map((h) => el('th', { scope: 'col', class: 'num' }, h)), el('th', { scope: 'col' }, 'Created'), el('th', { scope: 'col' }, el('span', { class: 'skip' }, 'Actions')))),
      tbody);
    return [
      el('h1', {}, 'Replays'),
      el('p', { class: 'hint' }, 'Start a replay from a webhook\'s page. Scanned counts your events read; matched, those the webhooks take.'),
      list.data.length ? tableWrap(table) : el('p', { class: 'empty' }, 'No replays yet.'),
      list.next_cursor ? el('div', { class: 'actions' }, el('a', { class: 'button', href: '/replays' + query({ cursor: list.next_cursor }) }, 'Older')) : null,
    ];
  }

  render();
})();
