// Small DOM helpers: element building without innerHTML for data, money and time formatting, toasts.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'value') el.value = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const formatters = new Map();
export function money(cents, currency = 'EUR') {
  if (!formatters.has(currency)) {
    formatters.set(currency, new Intl.NumberFormat('en-IE', { style: 'currency', currency }));
  }
  return formatters.get(currency).format((cents || 0) / 100);
}

export function clock(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

export function dateTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return d.toLocaleString([], { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}

/** "mm:ss" (or "h:mm:ss" beyond an hour) for a number of milliseconds, never negative. */
export function countdown(ms) {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = total % 60;
  const pad = (n) => String(n).padStart(2, '0');
  return hours > 0 ? `${hours}:${pad(minutes)}:${pad(seconds)}` : `${pad(minutes)}:${pad(seconds)}`;
}

export function toast(message, kind = 'info', ms = 4000) {
  const host = document.getElementById('toasts');
  if (!host) return;
  const el = h('div', { class: `toast toast-${kind}`, role: 'status' }, message);
  host.append(el);
  setTimeout(() => el.classList.add('leaving'), ms - 300);
  setTimeout(() => el.remove(), ms);
}

/** A function that runs `fn` once calls have paused for `ms` (e.g. typing "100" sends one update). */
export function debounce(fn, ms) {
  let timer = null;
  const debounced = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => { timer = null; fn(...args); }, ms);
  };
  debounced.pending = () => timer !== null;
  debounced.cancel = () => { clearTimeout(timer); timer = null; };
  return debounced;
}

/** Test and debugging hook: a log of what the page rendered and received (window.flashline.log). */
export function trace(kind, detail = {}) {
  const hook = (window.flashline ||= { log: [] });
  hook.log.push({ kind, at: Date.now(), ...detail });
  if (hook.log.length > 500) hook.log.splice(0, 250);
}

/** A random idempotency key (crypto.randomUUID needs a secure context; this works everywhere). */
export function newKey() {
  if (crypto.randomUUID) {
    try { return crypto.randomUUID(); } catch { /* not a secure context */ }
  }
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
