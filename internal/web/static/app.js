// flashsale web page: a small hash-routed single-page app over the public
// REST API (/v1). No framework, no build step, nothing from other origins.
//
// Times: every countdown uses the server's clock. Each API answer that
// carries serverTime sets clockOffset = serverTime - Date.now() at arrival,
// and serverNow() = Date.now() + clockOffset. The page shows the sale state
// the API computes; it never decides on its own whether a sale is open.
'use strict';

// ---------- small DOM helpers ----------

// h builds an element. attrs: plain attributes, except "on*" (listeners),
// "text" (textContent) and boolean false/null (omitted).
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const byId = (id) => document.getElementById(id);

// ---------- session (token kept for this browser tab's session) ----------

const SESSION_KEY = 'flashsale.session';

const session = {
  get() {
    try {
      const s = JSON.parse(sessionStorage.getItem(SESSION_KEY) || 'null');
      if (s && s.expiresAt && Date.parse(s.expiresAt) <= serverNow()) {
        sessionStorage.removeItem(SESSION_KEY);
        return null;
      }
      return s;
    } catch {
      return null;
    }
  },
  set(s) { sessionStorage.setItem(SESSION_KEY, JSON.stringify(s)); },
  clear() { sessionStorage.removeItem(SESSION_KEY); },
  isAdmin() { const s = this.get(); return !!s && s.role === 'ROLE_ADMIN'; },
};

// ---------- server clock ----------

let clockOffset = 0; // ms: server time minus browser time

function noteServerTime(serverTime) {
  const t = Date.parse(serverTime);
  if (!Number.isNaN(t)) clockOffset = t - Date.now();
}

function serverNow() { return Date.now() + clockOffset; }

// ---------- API ----------

const REASON_TEXT = {
  SOLD_OUT: 'Sold out: every item in this sale has been sold.',
  ALREADY_ORDERED: 'Already ordered: you have an order in this sale (one per customer).',
  SALE_NOT_ACTIVE: 'Not open: this sale has not started yet, or it has ended.',
  SALE_OVERLAP: 'This product already has a sale in that window. Pick a window that does not overlap.',
  EMAIL_TAKEN: 'That email is already registered. Sign in instead.',
  QUEUE_BUSY: 'Busy: too many orders are waiting right now.',
};

const STATUS_TEXT = {
  0: 'Cannot reach the server. Check your connection and try again.',
  400: 'The request was not accepted.',
  401: 'Please sign in.',
  403: 'You are not allowed to do that.',
  404: 'Not found.',
  409: 'That conflicts with something that already exists.',
  429: 'Too many requests. Slow down a little.',
  500: 'Something went wrong on the server.',
  503: 'The service is busy or unavailable. Try again shortly.',
};

// APIError is a failed API call, with the readable parts of the JSON error
// body: message, ErrorInfo reason and BadRequest field violations.
class APIError extends Error {
  constructor(status, body, retryAfter) {
    const details = (body && Array.isArray(body.details)) ? body.details : [];
    let reason = '';
    const violations = [];
    for (const d of details) {
      const type = String(d['@type'] || '');
      if (type.endsWith('google.rpc.ErrorInfo')) reason = d.reason || '';
      if (type.endsWith('google.rpc.BadRequest')) {
        for (const v of d.fieldViolations || []) violations.push({ field: v.field || '', description: v.description || '' });
      }
    }
    const serverMessage = body && typeof body.message === 'string' ? body.message : '';
    super(REASON_TEXT[reason] || (violations.length ? 'Please fix these fields:' : '') ||
      readableMessage(serverMessage) || STATUS_TEXT[status] || `Request failed (HTTP ${status}).`);
    this.status = status;
    this.reason = reason;
    this.violations = violations;
    this.retryAfter = retryAfter;
  }
}

// readableMessage capitalises a server message for display.
function readableMessage(m) {
  m = (m || '').trim();
  if (!m) return '';
  return m[0].toUpperCase() + m.slice(1) + (/[.!?]$/.test(m) ? '' : '.');
}

// retryAfterSeconds reads Retry-After: delta-seconds or an HTTP date.
function retryAfterSeconds(v) {
  if (!v) return 0;
  if (/^\d+$/.test(v.trim())) return parseInt(v, 10);
  const t = Date.parse(v);
  return Number.isNaN(t) ? 0 : Math.max(0, Math.ceil((t - Date.now()) / 1000));
}

// api calls the REST API and returns {status, data}; it throws APIError.
async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const s = session.get();
  if (s) headers.Authorization = 'Bearer ' + s.token;
  let resp;
  try {
    resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new APIError(0, null, 0);
  }
  let data = null;
  const text = await resp.text();
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (data && data.serverTime) noteServerTime(data.serverTime);
  if (!resp.ok) {
    const err = new APIError(resp.status, data, retryAfterSeconds(resp.headers.get('Retry-After')));
    if (resp.status === 401 && s) {
      // The token was refused (expired, or the server's key changed).
      session.clear();
      updateNav();
      err.message = 'Your session has ended. Please sign in again.';
    }
    throw err;
  }
  return { status: resp.status, data: data || {} };
}

// ---------- formatting ----------

const productCache = new Map();

async function getProduct(id) {
  if (!productCache.has(id)) {
    const p = api('GET', `/v1/products/${encodeURIComponent(id)}`).then((r) => r.data.product);
    productCache.set(id, p);
    p.catch(() => productCache.delete(id));
  }
  return productCache.get(id);
}

function minorDigits(currency) {
  try {
    return new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits;
  } catch {
    return 2;
  }
}

function money(priceMinor, currency) {
  const digits = minorDigits(currency);
  const amount = Number(priceMinor) / 10 ** digits;
  try {
    return new Intl.NumberFormat(undefined, { style: 'currency', currency }).format(amount);
  } catch {
    return `${amount.toFixed(digits)} ${currency}`;
  }
}

function fmtLocal(t) {
  return new Date(t).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
}

function fmtUTC(t) {
  return new Date(t).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}

function fmtDuration(ms) {
  let s = Math.max(0, Math.floor(ms / 1000));
  const d = Math.floor(s / 86400); s -= d * 86400;
  const hr = Math.floor(s / 3600); s -= hr * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  const pad = (n) => String(n).padStart(2, '0');
  if (d > 0) return `${d}d ${hr}h ${pad(m)}m ${pad(s)}s`;
  if (hr > 0) return `${hr}h ${pad(m)}m ${pad(s)}s`;
  if (m > 0) return `${m}m ${pad(s)}s`;
  return `${s}s`;
}

const STATE_TEXT = {
  SALE_STATE_UPCOMING: 'Upcoming',
  SALE_STATE_ACTIVE: 'Live now',
  SALE_STATE_SOLD_OUT: 'Sold out',
  SALE_STATE_ENDED: 'Ended',
};

const ORDER_TEXT = {
  ORDER_STATUS_PENDING: 'Pending',
  ORDER_STATUS_CONFIRMED: 'Confirmed',
  ORDER_STATUS_REJECTED: 'Rejected',
};

function stateBadge(state) {
  const key = String(state || '').replace('SALE_STATE_', '').toLowerCase();
  return h('span', { class: `badge badge-${key}`, 'data-testid': 'sale-state', 'data-state': state, text: STATE_TEXT[state] || 'Unknown' });
}

// countdownText is what a countdown shows for a sale in the state the API
// reported, measured on the server's clock.
function countdownText(state, startsAt, endsAt) {
  const now = serverNow();
  if (state === 'SALE_STATE_UPCOMING') {
    const left = Date.parse(startsAt) - now;
    return left > 0 ? `Starts in ${fmtDuration(left)}` : 'Starting now…';
  }
  if (state === 'SALE_STATE_ACTIVE' || state === 'SALE_STATE_SOLD_OUT') {
    const left = Date.parse(endsAt) - now;
    return left > 0 ? `Ends in ${fmtDuration(left)}` : 'Ending now…';
  }
  return 'This sale has ended.';
}

function windowText(startsAt, endsAt) {
  return h('dl', { class: 'window' },
    h('dt', { text: 'Starts' }),
    h('dd', {}, h('span', { 'data-testid': 'starts-local', text: fmtLocal(startsAt) }), ' ', h('span', { class: 'utc', 'data-testid': 'starts-utc', text: `(${fmtUTC(startsAt)})` })),
    h('dt', { text: 'Ends' }),
    h('dd', {}, h('span', { 'data-testid': 'ends-local', text: fmtLocal(endsAt) }), ' ', h('span', { class: 'utc', 'data-testid': 'ends-utc', text: `(${fmtUTC(endsAt)})` })),
  );
}

// ---------- view lifecycle: timers die with the view ----------

let viewTimers = [];
let viewGeneration = 0;

function every(ms, fn) {
  const gen = viewGeneration;
  const id = setInterval(() => { if (gen === viewGeneration) fn(); }, ms);
  viewTimers.push(() => clearInterval(id));
}

function later(ms, fn) {
  const gen = viewGeneration;
  const id = setTimeout(() => { if (gen === viewGeneration) fn(); }, ms);
  viewTimers.push(() => clearTimeout(id));
  return () => clearTimeout(id);
}

// alive reports whether the view that started some work is still shown.
function aliveCheck() {
  const gen = viewGeneration;
  return () => gen === viewGeneration;
}

function flash(message) {
  const el = byId('flash');
  el.textContent = message || '';
  el.hidden = !message;
}

function errorBox(id) {
  return h('div', { id, class: 'error', role: 'alert', 'data-testid': id, hidden: true });
}

function showError(box, err) {
  box.replaceChildren();
  if (!err) { box.hidden = true; return; }
  box.append(h('p', { text: err.message || String(err) }));
  if (err.violations && err.violations.length) {
    box.append(h('ul', {}, err.violations.map((v) => h('li', { text: `${humanField(v.field)}: ${v.description}` }))));
  }
  box.hidden = false;
}

function humanField(f) {
  const s = String(f || 'input').replace(/([a-z])([A-Z])/g, '$1 $2').replace(/[_.]/g, ' ').toLowerCase();
  return s[0].toUpperCase() + s.slice(1);
}

function field(label, input, hint) {
  const hintEl = hint ? h('small', { id: `${input.id}-hint`, class: 'hint', text: hint }) : null;
  if (hintEl) input.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: input.id, text: label }), input, hintEl);
}

// ---------- router ----------

const routes = [
  [/^#?\/?$/, viewSales],
  [/^#\/product\/([0-9a-fA-F-]+)$/, viewProduct],
  [/^#\/orders$/, viewOrders],
  [/^#\/signin$/, viewSignin],
  [/^#\/signup$/, viewSignup],
  [/^#\/admin$/, viewAdmin],
  [/^#\/admin\/live\/([0-9a-fA-F-]+)$/, viewLive],
];

let firstRender = true; // the first page load keeps focus where the browser put it

function render() {
  viewGeneration++;
  for (const stop of viewTimers) stop();
  viewTimers = [];
  flash('');
  updateNav();
  const view = byId('view');
  view.replaceChildren();
  const hash = location.hash || '#/';
  const route = routes.find(([re]) => re.test(hash));
  if (route) {
    const m = hash.match(route[0]);
    Promise.resolve(route[1](view, ...m.slice(1))).catch((err) => flash(err.message || String(err)));
  } else {
    title(view, 'Page not found');
    view.append(h('p', {}, h('a', { href: '#/', text: 'Back to the sales' })));
  }
  firstRender = false;
}

// title sets the heading of a view and moves keyboard focus to it, so a
// screen reader announces the new page.
function title(view, text) {
  const h1 = h('h1', { tabindex: -1, text });
  view.append(h1);
  document.title = `${text} · flashsale`;
  if (!firstRender) h1.focus({ preventScroll: false });
  return h1;
}

function updateNav() {
  const s = session.get();
  byId('nav-orders').hidden = !s;
  byId('nav-admin').hidden = !(s && s.role === 'ROLE_ADMIN');
  byId('nav-signin').hidden = !!s;
  byId('nav-signup').hidden = !!s;
  byId('signout').hidden = !s;
  const who = byId('whoami');
  who.hidden = !s;
  who.textContent = s ? `${s.email}${s.role === 'ROLE_ADMIN' ? ' (admin)' : ''}` : '';
  for (const a of document.querySelectorAll('header nav a')) {
    if (a.getAttribute('href') === (location.hash || '#/')) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

function go(hash) {
  if (location.hash === hash) render();
  else location.hash = hash;
}

// ---------- views: sales ----------

async function viewSales(view) {
  title(view, 'Sales');
  const live = h('ul', { class: 'cards', id: 'live-sales', 'data-testid': 'live-sales' });
  const upcoming = h('ul', { class: 'cards', id: 'upcoming-sales', 'data-testid': 'upcoming-sales' });
  const status = h('p', { class: 'muted', text: 'Loading sales…' });
  view.append(status,
    h('section', { 'aria-labelledby': 'live-h' }, h('h2', { id: 'live-h', text: 'Live now' }), live),
    h('section', { 'aria-labelledby': 'up-h' }, h('h2', { id: 'up-h', text: 'Upcoming' }), upcoming));

  const alive = aliveCheck();
  const cards = new Map(); // sale id -> {sale, el parts}

  async function load() {
    const { data } = await api('GET', '/v1/flash-sales?pageSize=100');
    if (!alive()) return;
    const sales = data.flashSales || [];
    status.textContent = sales.length ? '' : 'No live or upcoming sales right now.';
    status.hidden = sales.length > 0;
    const seen = new Set();
    for (const sale of sales) {
      seen.add(sale.id);
      let c = cards.get(sale.id);
      if (!c) {
        c = makeCard(sale);
        cards.set(sale.id, c);
      }
      c.sale = sale;
      updateCard(c, sale.state, null);
    }
    for (const [id, c] of cards) {
      if (!seen.has(id)) { c.el.remove(); cards.delete(id); }
    }
    emptyNotes();
  }

  function emptyNotes() {
    for (const [list, empty] of [[live, 'Nothing is live right now.'], [upcoming, 'Nothing scheduled yet.']]) {
      const note = list.querySelector('.empty');
      if (!list.querySelector('.card')) { if (!note) list.append(h('li', { class: 'empty muted', text: empty })); } else if (note) note.remove();
    }
  }

  function makeCard(sale) {
    const name = h('h3', { text: 'Product' });
    const price = h('p', { class: 'price' });
    const badge = h('span');
    const countdown = h('p', { class: 'countdown', 'data-testid': 'countdown' });
    const remaining = h('p', { class: 'remaining', 'data-testid': 'remaining' });
    const link = h('a', { class: 'button', href: `#/product/${sale.productId}`, 'data-testid': 'view-sale', text: 'View and buy' });
    const el = h('li', { class: 'card', 'data-testid': 'sale-card', 'data-sale-id': sale.id, 'data-product-id': sale.productId },
      name, badge, price, countdown, remaining, link);
    getProduct(sale.productId).then((p) => {
      name.textContent = p.name;
      link.setAttribute('aria-label', `View and buy ${p.name}`);
      price.textContent = money(p.priceMinor, p.currency);
      if (remaining.textContent === '') remaining.textContent = `${p.quantity} left`;
    }).catch(() => { name.textContent = 'Unknown product'; });
    return { el, name, price, badge, countdown, remaining, sale };
  }

  function updateCard(c, state, remainingCount) {
    const b = stateBadge(state);
    c.badge.replaceWith(b);
    c.badge = b;
    c.sale.state = state;
    if (remainingCount !== null) c.remaining.textContent = `${remainingCount} left`;
    c.countdown.textContent = countdownText(state, c.sale.startsAt, c.sale.endsAt);
    const list = state === 'SALE_STATE_UPCOMING' ? upcoming : live;
    if (c.el.parentElement !== list) {
      list.append(c.el);
      emptyNotes();
    }
  }

  // Remaining stock and state, every ~2 s, from the sale status of each
  // sale that is live or due to start; upcoming ones wait for the list refresh.
  async function poll() {
    const due = [...cards.values()].filter((c) => c.sale.state !== 'SALE_STATE_UPCOMING' || Date.parse(c.sale.startsAt) <= serverNow());
    await Promise.all(due.slice(0, 24).map(async (c) => {
      try {
        const { data } = await api('GET', `/v1/products/${c.sale.productId}/sale-status`);
        if (alive() && data.flashSaleId === c.sale.id) updateCard(c, data.state, data.remaining);
      } catch { /* the next list refresh settles it */ }
    }));
  }

  await load();
  await poll();
  let ticks = 0;
  every(1000, () => {
    for (const c of cards.values()) c.countdown.textContent = countdownText(c.sale.state, c.sale.startsAt, c.sale.endsAt);
  });
  every(2000, () => {
    ticks++;
    poll();
    if (ticks % 5 === 0) load().catch((err) => flash(err.message));
  });
}

// ---------- views: product / sale page with the Buy button ----------

async function viewProduct(view, productId) {
  const alive = aliveCheck();
  const h1 = title(view, 'Product');
  const p = await getProduct(productId).catch((err) => {
    view.append(h('p', { class: 'error', role: 'alert', text: err.status === 404 ? 'There is no such product.' : err.message }));
    return null;
  });
  if (!p || !alive()) return;
  h1.textContent = p.name;
  document.title = `${p.name} · flashsale`;

  const stateHolder = h('span', {}, stateBadge(''));
  const countdown = h('p', { class: 'countdown big', id: 'countdown', 'data-testid': 'countdown', text: '' });
  const remaining = h('p', { class: 'remaining', id: 'remaining', 'data-testid': 'remaining' });
  const windowBox = h('div', { id: 'sale-window' });
  const noSale = h('p', { class: 'muted', id: 'no-sale', hidden: true, text: 'No sale is scheduled for this product.' });
  const outcome = h('div', { id: 'buy-result', class: 'outcome', role: 'status', 'aria-live': 'polite', 'data-testid': 'buy-result', hidden: true });
  const buyBtn = h('button', { type: 'button', id: 'buy', class: 'primary', 'data-testid': 'buy', text: 'Buy now' });
  const signinLink = h('p', { id: 'buy-signin' }, h('a', { href: '#/signin', onclick: () => { returnTo = `#/product/${productId}`; }, text: 'Sign in' }), ' or ',
    h('a', { href: '#/signup', onclick: () => { returnTo = `#/product/${productId}`; }, text: 'sign up' }), ' to buy.');

  view.append(...[
    h('p', { class: 'price big', 'data-testid': 'price', text: money(p.priceMinor, p.currency) }),
    p.description ? h('p', { class: 'description', text: p.description }) : null,
    h('section', { class: 'panel', 'aria-labelledby': 'sale-h' },
      h('h2', { id: 'sale-h' }, 'Sale ', stateHolder),
      noSale, countdown, remaining, windowBox),
    session.get() ? buyBtn : signinLink,
    outcome,
    h('p', {}, h('a', { href: '#/', text: '← All sales' })),
  ].filter(Boolean));

  let status = null; // last GetSaleStatus answer

  function showStatus() {
    if (!status) return;
    countdown.textContent = countdownText(status.state, status.startsAt, status.endsAt);
  }

  async function refresh() {
    try {
      const { data } = await api('GET', `/v1/products/${productId}/sale-status`);
      if (!alive()) return;
      const first = !status || status.flashSaleId !== data.flashSaleId;
      status = data;
      noSale.hidden = true;
      stateHolder.replaceChildren(stateBadge(data.state));
      remaining.textContent = `${data.remaining} left`;
      if (first) windowBox.replaceChildren(windowText(data.startsAt, data.endsAt));
      showStatus();
    } catch (err) {
      if (!alive()) return;
      if (err.status === 404) {
        status = null;
        noSale.hidden = false;
        countdown.textContent = '';
        windowBox.replaceChildren();
        stateHolder.replaceChildren();
        remaining.textContent = '';
      }
    }
  }

  // setOutcome shows what happened to a purchase, in words.
  function setOutcome(kind, message, extra) {
    outcome.dataset.outcome = kind;
    outcome.className = `outcome outcome-${kind}`;
    outcome.replaceChildren(...[h('p', { 'data-testid': 'buy-message', text: message }), extra].filter(Boolean));
    outcome.hidden = false;
  }

  let stopRetry = null;
  function retryCountdown(kind, lead, seconds) {
    if (stopRetry) stopRetry();
    let left = Math.max(1, seconds || 1);
    buyBtn.disabled = true;
    const tick = () => {
      if (left <= 0) {
        buyBtn.disabled = false;
        buyBtn.textContent = 'Try again';
        setOutcome(kind, `${lead} You can try again now.`);
        stopRetry = null;
        return;
      }
      setOutcome(kind, `${lead} Try again in ${left}s.`);
      left--;
      stopRetry = later(1000, tick);
    };
    tick();
  }

  function settled(order) {
    if (order.status === 'ORDER_STATUS_CONFIRMED') {
      setOutcome('confirmed', 'Confirmed: the item is yours.', h('p', { class: 'muted' }, `Order ${order.id}. `, h('a', { href: '#/orders', text: 'See my orders' })));
      return true;
    }
    if (order.status === 'ORDER_STATUS_REJECTED') {
      setOutcome('rejected', 'Rejected: the sale sold out before your order was processed.');
      return true;
    }
    return false;
  }

  // watchOrder checks a pending (queued) order until it is confirmed or rejected.
  function watchOrder() {
    const started = Date.now();
    const check = async () => {
      try {
        const { data } = await api('GET', `/v1/products/${productId}/orders/mine`);
        if (!alive()) return;
        if (data.order && settled(data.order)) { refresh(); return; }
      } catch (err) {
        if (!alive()) return;
        if (err.status === 401) { setOutcome('signin', err.message); return; }
      }
      if (Date.now() - started > 120000) {
        setOutcome('pending', 'Still pending. The queue is long; check My orders in a little while.');
        return;
      }
      later(1000, check);
    };
    later(1000, check);
  }

  async function buy() {
    if (buyBtn.disabled) return;
    buyBtn.disabled = true;
    setOutcome('working', 'Placing your order…');
    let keepDisabled = false;
    try {
      const { status: code, data } = await api('POST', `/v1/products/${productId}/orders`, {});
      if (!alive()) return;
      const order = data.order || {};
      if (code === 202 || order.status === 'ORDER_STATUS_PENDING') {
        setOutcome('pending', 'Pending: your order is in the queue. Checking its status…');
        watchOrder();
      } else if (!settled(order)) {
        setOutcome('error', 'The server answered, but without an order status. Check My orders.');
      }
    } catch (err) {
      if (!alive()) return;
      if (err.status === 503 || err.reason === 'QUEUE_BUSY') {
        keepDisabled = true;
        retryCountdown('busy', 'Busy: too many orders are waiting right now.', err.retryAfter);
      } else if (err.status === 429) {
        keepDisabled = true;
        retryCountdown('rate-limited', 'Too many requests from you.', err.retryAfter);
      } else if (err.reason === 'SOLD_OUT') {
        setOutcome('sold-out', REASON_TEXT.SOLD_OUT);
      } else if (err.reason === 'ALREADY_ORDERED') {
        setOutcome('already-ordered', REASON_TEXT.ALREADY_ORDERED, h('p', {}, h('a', { href: '#/orders', text: 'See my orders' })));
      } else if (err.reason === 'SALE_NOT_ACTIVE') {
        setOutcome('not-active', REASON_TEXT.SALE_NOT_ACTIVE);
      } else if (err.status === 401) {
        setOutcome('signin', err.message, h('p', {}, h('a', { href: '#/signin', onclick: () => { returnTo = `#/product/${productId}`; }, text: 'Sign in' })));
      } else {
        setOutcome('error', err.message);
      }
    } finally {
      if (!keepDisabled) buyBtn.disabled = false;
      refresh();
    }
  }
  buyBtn.addEventListener('click', buy);

  await refresh();
  // An order placed earlier (this visit or another) shows straight away.
  if (session.get()) {
    api('GET', `/v1/products/${productId}/orders/mine`).then(({ data }) => {
      if (!alive() || !data.secured || !data.order || !outcome.hidden) return;
      if (data.order.status === 'ORDER_STATUS_PENDING') {
        setOutcome('pending', 'Pending: your order is in the queue. Checking its status…');
        watchOrder();
      } else {
        settled(data.order);
      }
    }).catch(() => {});
  }
  every(1000, showStatus);
  every(2000, refresh);
}

// ---------- views: my orders ----------

async function viewOrders(view) {
  const s = session.get();
  title(view, s && s.role === 'ROLE_ADMIN' ? 'All orders' : 'My orders');
  if (!s) {
    view.append(h('p', {}, h('a', { href: '#/signin', onclick: () => { returnTo = '#/orders'; }, text: 'Sign in' }), ' to see your orders.'));
    return;
  }
  const alive = aliveCheck();
  const body = h('tbody', { id: 'orders-body' });
  const table = h('div', { class: 'table-wrap' }, h('table', { id: 'orders', 'data-testid': 'orders' },
    h('caption', { class: 'visually-hidden', text: 'Orders, newest first' }),
    h('thead', {}, h('tr', {}, ['Product', 'Status', 'Placed', 'Order'].map((c) => h('th', { scope: 'col', text: c })))),
    body));
  const empty = h('p', { class: 'muted', id: 'orders-empty', hidden: true, text: 'No orders yet. ' }, h('a', { href: '#/', text: 'Browse the sales' }));
  const more = h('button', { type: 'button', id: 'orders-more', hidden: true, text: 'Load more' });
  view.append(table, empty, more);

  let token = '';
  async function page() {
    const q = new URLSearchParams({ pageSize: '50' });
    if (token) q.set('pageToken', token);
    const { data } = await api('GET', `/v1/orders?${q}`);
    if (!alive()) return;
    for (const o of data.orders || []) {
      const name = h('a', { href: `#/product/${o.productId}`, text: 'Product' });
      getProduct(o.productId).then((p) => { name.textContent = p.name; }).catch(() => {});
      body.append(h('tr', { 'data-testid': 'order-row', 'data-order-id': o.id, 'data-status': o.status },
        h('td', {}, name),
        h('td', {}, h('span', { class: `badge order-${String(o.status).replace('ORDER_STATUS_', '').toLowerCase()}`, text: ORDER_TEXT[o.status] || o.status })),
        h('td', {}, h('time', { datetime: o.createdAt, text: fmtLocal(o.createdAt) })),
        h('td', { class: 'mono', text: o.id })));
    }
    token = data.nextPageToken || '';
    more.hidden = !token;
    empty.hidden = body.children.length > 0;
    table.hidden = body.children.length === 0;
  }
  more.addEventListener('click', () => page().catch((err) => flash(err.message)));
  await page();
}

// ---------- views: sign in / sign up ----------

let returnTo = '';

function authView(view, mode) {
  const signup = mode === 'signup';
  title(view, signup ? 'Sign up' : 'Sign in');
  if (session.get()) {
    view.append(h('p', { text: `You are signed in as ${session.get().email}.` }));
    return;
  }
  const email = h('input', { id: `${mode}-email`, name: 'email', type: 'email', required: true, autocomplete: 'email', inputmode: 'email' });
  const password = h('input', { id: `${mode}-password`, name: 'password', type: 'password', required: true, autocomplete: signup ? 'new-password' : 'current-password' });
  const err = errorBox(`${mode}-error`);
  const submit = h('button', { type: 'submit', id: `${mode}-submit`, class: 'primary', text: signup ? 'Create account' : 'Sign in' });
  const form = h('form', { id: `${mode}-form`, novalidate: true, class: 'form narrow' },
    err,
    field('Email', email),
    field('Password', password, signup ? 'At least 8 characters.' : null),
    submit,
    h('p', {}, signup ? 'Have an account? ' : 'New here? ', h('a', { href: signup ? '#/signin' : '#/signup', text: signup ? 'Sign in' : 'Sign up' })));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showError(err, null);
    submit.disabled = true;
    try {
      const { data } = await api('POST', signup ? '/v1/auth/register' : '/v1/auth/login', { email: email.value.trim(), password: password.value });
      const user = data.user || {};
      session.set({ token: data.accessToken, expiresAt: data.expiresAt, email: user.email || email.value.trim(), role: user.role || 'ROLE_CUSTOMER' });
      const target = returnTo || (user.role === 'ROLE_ADMIN' ? '#/admin' : '#/');
      returnTo = '';
      go(target);
    } catch (e) {
      if (e.status === 401 && !signup) e.message = 'Wrong email or password.';
      showError(err, e);
      err.focus?.();
    } finally {
      submit.disabled = false;
    }
  });
  view.append(form);
  email.focus();
}

function viewSignin(view) { authView(view, 'signin'); }
function viewSignup(view) { authView(view, 'signup'); }

// ---------- views: admin ----------

// localInputValue formats a time as a datetime-local value in the browser's zone.
function localInputValue(ms) {
  const d = new Date(ms);
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

// localInputToDate reads a datetime-local value as the browser's local time.
function localInputToDate(v) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?/.exec(v || '');
  if (!m) return null;
  const d = new Date(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +(m[6] || 0));
  return Number.isNaN(d.getTime()) ? null : d;
}

function zoneText() {
  const off = -new Date().getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  const a = Math.abs(off);
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || 'local';
  return `${zone}, UTC${sign}${String(Math.floor(a / 60)).padStart(2, '0')}:${String(a % 60).padStart(2, '0')}`;
}

async function viewAdmin(view) {
  title(view, 'Admin');
  if (!session.isAdmin()) {
    view.append(h('p', { text: 'This page is for admins. ' }, h('a', { href: '#/signin', onclick: () => { returnTo = '#/admin'; }, text: 'Sign in as an admin' })));
    return;
  }
  const alive = aliveCheck();

  // Create a product.
  const pName = h('input', { id: 'product-name', required: true, maxlength: 200 });
  const pDesc = h('textarea', { id: 'product-description', rows: 2 });
  const pPrice = h('input', { id: 'product-price', type: 'number', min: 0, step: '0.01', required: true, inputmode: 'decimal' });
  const pCurrency = h('input', { id: 'product-currency', required: true, value: 'USD', maxlength: 3, autocomplete: 'off' });
  const pQty = h('input', { id: 'product-quantity', type: 'number', min: 0, step: 1, required: true, inputmode: 'numeric' });
  const pErr = errorBox('product-error');
  const pResult = h('div', { id: 'product-result', class: 'success', role: 'status', 'data-testid': 'product-result', hidden: true });
  const pForm = h('form', { id: 'product-form', class: 'form panel', novalidate: true },
    h('h2', { text: 'New product' }), pErr,
    field('Name', pName), field('Description', pDesc),
    h('div', { class: 'row' }, field('Price', pPrice, 'In the currency’s main unit, e.g. 19.99.'), field('Currency', pCurrency, 'ISO code, e.g. USD.'), field('Stock', pQty, 'How many can be sold.')),
    h('button', { type: 'submit', id: 'product-submit', class: 'primary', text: 'Create product' }), pResult);

  // Create a sale.
  const sProduct = h('select', { id: 'sale-product', required: true });
  const startDefault = Math.ceil((serverNow() + 5 * 60000) / 60000) * 60000;
  const sStarts = h('input', { id: 'sale-starts', type: 'datetime-local', step: 1, required: true, value: localInputValue(startDefault) });
  const sEnds = h('input', { id: 'sale-ends', type: 'datetime-local', step: 1, required: true, value: localInputValue(startDefault + 3600000) });
  const sStartsUTC = h('small', { class: 'hint', id: 'sale-starts-preview', 'aria-live': 'polite' });
  const sEndsUTC = h('small', { class: 'hint', id: 'sale-ends-preview', 'aria-live': 'polite' });
  const sErr = errorBox('sale-error');
  const sResult = h('div', { id: 'sale-result', class: 'success', role: 'status', 'data-testid': 'sale-result', hidden: true });
  const preview = () => {
    for (const [input, out] of [[sStarts, sStartsUTC], [sEnds, sEndsUTC]]) {
      const d = localInputToDate(input.value);
      out.textContent = d ? `= ${fmtUTC(d)}` : '';
    }
  };
  sStarts.addEventListener('input', preview);
  sEnds.addEventListener('input', preview);
  const sForm = h('form', { id: 'sale-form', class: 'form panel', novalidate: true },
    h('h2', { text: 'New sale' }), sErr,
    field('Product', sProduct),
    h('p', { class: 'hint', id: 'sale-zone', text: `Times are in your local time zone (${zoneText()}) and are sent as UTC.` }),
    h('div', { class: 'row' },
      h('div', {}, field('Starts', sStarts), sStartsUTC),
      h('div', {}, field('Ends', sEnds), sEndsUTC)),
    h('button', { type: 'submit', id: 'sale-submit', class: 'primary', text: 'Create sale' }), sResult);

  const productsList = h('ul', { id: 'admin-products', class: 'plain' });
  view.append(pForm, sForm, h('section', { class: 'panel' }, h('h2', { text: 'Products' }), productsList,
    h('p', {}, h('a', { href: '#/orders', text: 'All orders' }))));
  preview();

  async function loadProducts(selectId) {
    const all = [];
    let token = '';
    do {
      const q = new URLSearchParams({ pageSize: '500' });
      if (token) q.set('pageToken', token);
      const { data } = await api('GET', `/v1/products?${q}`);
      all.push(...(data.products || []));
      token = data.nextPageToken || '';
    } while (token && all.length < 5000);
    if (!alive()) return;
    const keep = selectId || sProduct.value;
    sProduct.replaceChildren(h('option', { value: '', text: all.length ? 'Choose a product…' : 'Create a product first' }),
      ...all.slice().reverse().map((p) => h('option', { value: p.id, text: `${p.name} (${p.quantity} in stock)` })));
    sProduct.value = keep && all.some((p) => p.id === keep) ? keep : '';
    productsList.replaceChildren(...all.slice().reverse().map((p) => h('li', {},
      h('a', { href: `#/product/${p.id}`, text: p.name }), ` · ${money(p.priceMinor, p.currency)} · ${p.quantity} in stock · `,
      h('a', { href: `#/admin/live/${p.id}`, 'data-testid': 'live-link', text: 'live view' }))));
    for (const p of all) productCache.set(p.id, Promise.resolve(p));
  }

  pForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showError(pErr, null);
    pResult.hidden = true;
    const currency = pCurrency.value.trim().toUpperCase();
    const price = Number(pPrice.value);
    const qty = Number(pQty.value);
    const problems = [];
    if (!pName.value.trim()) problems.push({ field: 'name', description: 'is required' });
    if (pPrice.value === '' || !Number.isFinite(price) || price < 0) problems.push({ field: 'price', description: 'must be a number, 0 or more' });
    if (pQty.value === '' || !Number.isInteger(qty) || qty < 0) problems.push({ field: 'stock', description: 'must be a whole number, 0 or more' });
    if (problems.length) {
      showError(pErr, { message: 'Please fix these fields:', violations: problems });
      return;
    }
    const btn = byId('product-submit');
    btn.disabled = true;
    try {
      const { data } = await api('POST', '/v1/products', {
        name: pName.value.trim(),
        description: pDesc.value.trim(),
        priceMinor: String(Math.round(price * 10 ** minorDigits(currency))),
        currency,
        quantity: qty,
      });
      const p = data.product;
      productCache.set(p.id, Promise.resolve(p));
      pResult.dataset.productId = p.id;
      pResult.replaceChildren(h('p', {}, 'Created ', h('a', { href: `#/product/${p.id}`, text: p.name }),
        ` (${money(p.priceMinor, p.currency)}, ${p.quantity} in stock). It is selected in the sale form below.`));
      pResult.hidden = false;
      await loadProducts(p.id);
      pForm.reset();
      pCurrency.value = currency;
    } catch (e) {
      showError(pErr, e);
    } finally {
      btn.disabled = false;
    }
  });

  sForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showError(sErr, null);
    sResult.hidden = true;
    const starts = localInputToDate(sStarts.value);
    const ends = localInputToDate(sEnds.value);
    const problems = [];
    if (!sProduct.value) problems.push({ field: 'product', description: 'choose one' });
    if (!starts) problems.push({ field: 'starts', description: 'enter a date and time' });
    if (!ends) problems.push({ field: 'ends', description: 'enter a date and time' });
    if (problems.length) {
      showError(sErr, { message: 'Please fix these fields:', violations: problems });
      return;
    }
    const btn = byId('sale-submit');
    btn.disabled = true;
    try {
      const { data } = await api('POST', '/v1/flash-sales', { productId: sProduct.value, startsAt: starts.toISOString(), endsAt: ends.toISOString() });
      const s = data.flashSale;
      sResult.dataset.saleId = s.id;
      sResult.dataset.productId = s.productId;
      sResult.replaceChildren(
        h('p', {}, 'Sale created: ', stateBadge(s.state), ' ', h('a', { href: `#/product/${s.productId}`, 'data-testid': 'sale-link', text: 'open its page' })),
        windowText(s.startsAt, s.endsAt));
      sResult.hidden = false;
    } catch (e) {
      showError(sErr, e);
    } finally {
      btn.disabled = false;
    }
  });

  await loadProducts();
}

// ---------- views: admin, live sale ----------

// The live view of a product's sale: its state and remaining stock from
// WatchSaleStatus (the REST stream), and this server's decisions on the
// sale by outcome from its Prometheus metrics (/metrics), charted every
// second: admissions per second and units left, over the last minutes.

const LIVE_WINDOW_S = 300; // seconds of history the chart keeps
const LIVE_OUTCOMES = ['CONFIRMED', 'PENDING', 'SOLD_OUT', 'ALREADY_ORDERED', 'QUEUE_BUSY', 'UNAVAILABLE'];

// watchSaleStatus reads the REST WatchSaleStatus stream (one JSON object
// a line) and calls onStatus with each status, until signal aborts it or
// the stream ends.
async function watchSaleStatus(productId, signal, onStatus) {
  const resp = await fetch(`/v1/products/${productId}/sale-status:watch`, { headers: { Accept: 'application/json' }, signal });
  if (!resp.ok || !resp.body) throw new APIError(resp.status, null, 0);
  const reader = resp.body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += dec.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i).trim();
      buf = buf.slice(i + 1);
      if (!line) continue;
      const msg = JSON.parse(line);
      if (msg.error) throw new APIError(500, msg.error, 0);
      const st = msg.result && msg.result.status;
      if (st) onStatus(st);
    }
  }
}

// saleMetrics reads this server's flashsale_sale_decisions_total and
// flashsale_sale_remaining for the sale from /metrics (Prometheus text).
async function saleMetrics(saleId) {
  const resp = await fetch('/metrics', { headers: { Accept: 'text/plain' } });
  if (!resp.ok) return null;
  const out = { outcomes: {}, remaining: null };
  for (const line of (await resp.text()).split('\n')) {
    const m = /^(flashsale_sale_decisions_total|flashsale_sale_remaining)\{([^}]*)\} (\S+)$/.exec(line);
    if (!m || !m[2].includes(`sale="${saleId}"`)) continue;
    const v = Number(m[3]);
    if (m[1] === 'flashsale_sale_remaining') out.remaining = v;
    else {
      const o = /outcome="([A-Z_]+)"/.exec(m[2]);
      if (o) out.outcomes[o[1]] = v;
    }
  }
  return out;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'text') el.textContent = v;
    else el.setAttribute(k, String(v));
  }
  for (const c of children) el.append(c);
  return el;
}

// niceMax rounds a chart's top up to 1, 2, 4 or 8 times a power of ten,
// which quarter into round ticks.
function niceMax(v) {
  if (!(v > 0)) return 4;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 4, 8, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function tickText(v) {
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}

// drawLiveChart draws admissions per second (left scale) and units left
// (right scale) against time into the svg element.
function drawLiveChart(el, points) {
  const W = 640, H = 260, L = 48, R = 56, T = 16, B = 28;
  const now = points.length ? points[points.length - 1].t : 0;
  // The time axis spans what the view has seen, 30 s at least and
  // LIVE_WINDOW_S at most.
  const span = Math.min(LIVE_WINDOW_S * 1000, Math.max(30000, points.length ? now - points[0].t : 0));
  const t0 = now - span;
  const maxRate = niceMax(Math.max(0, ...points.map((p) => p.rate)));
  const maxLeft = niceMax(Math.max(0, ...points.map((p) => p.remaining ?? 0)));
  const x = (t) => L + ((t - t0) / span) * (W - L - R);
  const yRate = (v) => H - B - (v / maxRate) * (H - T - B);
  const yLeft = (v) => H - B - (v / maxLeft) * (H - T - B);
  const line = (pts) => pts.map(([a, b]) => `${a.toFixed(1)},${b.toFixed(1)}`).join(' ');
  const kids = [
    svg('rect', { x: L, y: T, width: W - L - R, height: H - T - B, class: 'chart-frame' }),
  ];
  for (let i = 0; i <= 4; i++) {
    const y = T + (i / 4) * (H - T - B);
    kids.push(svg('line', { x1: L, x2: W - R, y1: y, y2: y, class: 'chart-grid' }));
    kids.push(svg('text', { x: L - 6, y: y + 4, 'text-anchor': 'end', class: 'chart-axis rate', text: tickText(maxRate * (1 - i / 4)) }));
    kids.push(svg('text', { x: W - R + 6, y: y + 4, class: 'chart-axis left', text: tickText(maxLeft * (1 - i / 4)) }));
  }
  for (let i = 0; i <= 5; i++) {
    const ago = Math.round((span / 1000) * (1 - i / 5));
    const label = ago === 0 ? 'now' : ago >= 120 ? `-${Math.round(ago / 60)}m` : `-${ago}s`;
    kids.push(svg('text', { x: x(now - ago * 1000), y: H - 8, 'text-anchor': 'middle', class: 'chart-axis', text: label }));
  }
  kids.push(svg('polyline', { id: 'live-remaining-line', class: 'series-left', 'data-points': points.filter((p) => p.remaining !== null).length,
    points: line(points.filter((p) => p.remaining !== null).map((p) => [x(p.t), yLeft(p.remaining)])) }));
  kids.push(svg('polyline', { id: 'live-rate-line', class: 'series-rate', 'data-points': points.length,
    'data-max': Math.max(0, ...points.map((p) => p.rate)),
    points: line(points.map((p) => [x(p.t), yRate(p.rate)])) }));
  kids.push(svg('text', { x: L, y: T - 4, class: 'chart-axis rate', text: 'admissions/s' }));
  kids.push(svg('text', { x: W - R, y: T - 4, 'text-anchor': 'end', class: 'chart-axis left', text: 'units left' }));
  el.replaceChildren(...kids);
  el.dataset.points = String(points.length);
}

async function viewLive(view, productId) {
  const heading = title(view, 'Live sale');
  if (!session.isAdmin()) {
    view.append(h('p', { text: 'This page is for admins. ' }, h('a', { href: '#/signin', onclick: () => { returnTo = `#/admin/live/${productId}`; }, text: 'Sign in as an admin' })));
    return;
  }
  const alive = aliveCheck();
  const stateEl = h('span', {}, stateBadge(''));
  const leftEl = h('strong', { id: 'live-remaining', 'data-testid': 'live-remaining', text: '…' });
  const rateEl = h('strong', { id: 'live-rate', 'data-testid': 'live-rate', text: '0' });
  const admittedEl = h('strong', { id: 'live-admitted', 'data-testid': 'live-admitted', text: '0' });
  const countsEl = h('dl', { id: 'live-outcomes', class: 'outcomes', 'data-testid': 'live-outcomes' });
  const chart = svg('svg', { id: 'live-chart', 'data-testid': 'live-chart', viewBox: '0 0 640 260', role: 'img',
    'aria-label': 'Admissions per second and units left, over up to the last five minutes', class: 'chart' });
  const note = h('p', { class: 'hint', text: 'Units left and state come from the sale-status stream; decisions are this server\'s (/metrics), sampled every second.' });
  view.append(
    h('p', {}, h('a', { href: '#/admin', text: '← Admin' }), ' · ', h('a', { href: `#/product/${productId}`, text: 'sale page' })),
    h('section', { class: 'panel live' },
      h('p', { class: 'live-figures' }, stateEl, ' ', leftEl, ' units left · ', rateEl, ' admissions/s · ', admittedEl, ' admitted'),
      chart, countsEl, note));
  getProduct(productId).then((p) => { if (alive()) heading.textContent = `Live sale: ${p.name}`; }).catch(() => {});

  let status = null; // the latest sale status from the stream
  const points = [];
  let last = null; // {t, admitted} of the previous sample
  drawLiveChart(chart, points);

  const ctrl = new AbortController();
  viewTimers.push(() => ctrl.abort());
  (async () => {
    while (alive()) {
      try {
        await watchSaleStatus(productId, ctrl.signal, (st) => {
          status = st;
          if (st.serverTime) noteServerTime(st.serverTime);
          stateEl.replaceChildren(stateBadge(st.state));
          if (leftEl.dataset.exact !== 'true') leftEl.textContent = String(st.remaining ?? 0);
        });
      } catch (e) {
        if (!alive()) return;
        flash(e.message || String(e));
      }
      await new Promise((r) => setTimeout(r, 1000)); // the stream ended: open it again
    }
  })();

  async function sample() {
    const now = Date.now();
    let admitted = null;
    let remaining = status ? Number(status.remaining ?? 0) : null;
    if (status && status.flashSaleId) {
      const m = await saleMetrics(status.flashSaleId).catch(() => null);
      if (!alive()) return;
      if (m) {
        admitted = (m.outcomes.CONFIRMED || 0) + (m.outcomes.PENDING || 0);
        if (m.remaining !== null) {
          remaining = m.remaining;
          leftEl.textContent = String(m.remaining);
          leftEl.dataset.exact = 'true';
        }
        countsEl.replaceChildren(...LIVE_OUTCOMES.map((o) => h('div', {},
          h('dt', { text: o.replaceAll('_', ' ').toLowerCase() }),
          h('dd', { 'data-outcome': o, text: String(m.outcomes[o] || 0) }))));
      }
    }
    let rate = 0;
    if (admitted !== null && last && last.admitted !== null) rate = Math.max(0, (admitted - last.admitted) / ((now - last.t) / 1000));
    last = { t: now, admitted };
    if (admitted !== null) admittedEl.textContent = String(admitted);
    rateEl.textContent = rate.toFixed(rate < 10 ? 1 : 0);
    points.push({ t: now, rate, remaining });
    while (points.length && points[0].t < now - LIVE_WINDOW_S * 1000) points.shift();
    drawLiveChart(chart, points);
  }
  await sample();
  every(1000, () => { sample().catch(() => {}); });
}

// ---------- start ----------

byId('signout').addEventListener('click', () => {
  session.clear();
  productCache.clear();
  go('#/');
});
window.addEventListener('hashchange', render);
render();
