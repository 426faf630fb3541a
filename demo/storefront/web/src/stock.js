// Live stock of one product: `stock:{id}` (public, anonymous too), loaded over REST and kept current.

import { countdown, h, replace, trace } from './ui.js';

/** Badge text, style and whether the product can be bought right now. */
export function stockLabel(state, now = Date.now()) {
  if (!state) return { text: 'Loading…', cls: 'muted', buyable: false };
  switch (state.status) {
    case 'upcoming': {
      const starts = state.sale_starts_at ? Date.parse(state.sale_starts_at) : NaN;
      if (Number.isNaN(starts)) return { text: 'Coming soon', cls: 'upcoming', buyable: false };
      const left = starts - now;
      return { text: left > 0 ? `Drops in ${countdown(left)}` : 'Opening…', cls: 'upcoming', buyable: false };
    }
    case 'out':
      return { text: 'Out of stock', cls: 'out', buyable: false };
    case 'low':
      return { text: `Only ${state.available} left!`, cls: 'low', buyable: state.available > 0 };
    default:
      return { text: 'In stock', cls: 'in-stock', buyable: state.available > 0 };
  }
}

export function stockBadge() {
  return h('span', { class: 'badge muted', 'data-testid': 'stock-badge' }, 'Loading…');
}

export function paintBadge(el, state) {
  const label = stockLabel(state);
  el.className = `badge ${label.cls}`;
  el.dataset.status = state ? state.status : '';
  el.dataset.available = state ? String(state.available) : '';
  el.dataset.version = state ? String(state.version) : '';
  if (el.textContent !== label.text) replace(el, label.text);
  return label;
}

function normalize(data, previous) {
  return {
    product_id: data.product_id ?? data.id,
    available: data.available,
    status: data.status,
    version: data.version,
    sale_starts_at: data.sale_starts_at !== undefined ? data.sale_starts_at : previous && previous.sale_starts_at,
  };
}

/**
 * Watch `stock:{productId}`; `onState(state, source)` gets every newer state.
 * A countdown to a drop re-renders every quarter second; the Buy button enables when the catalog's
 * publication at the start time arrives (one REST look a few seconds later guards a missed push).
 */
export function watchStock(app, productId, { initial = null, onState }) {
  let state = null;
  const apply = (data, source) => {
    if (!data) return;
    const next = normalize(data, state);
    if (state && next.version < state.version) return;
    if (state && source === 'push' && next.version === state.version) return;
    state = next;
    trace('stock-render', { product: state.product_id, source, status: state.status, available: state.available, version: state.version });
    onState(state, source);
  };
  if (initial) apply(initial, 'rest');
  const load = () => app.api.catalog(`/products/${productId}`, { auth: false });
  const handle = app.live.watch(`stock:${productId}`, { initial, load, apply });

  let lookedAfterDrop = false;
  const ticker = setInterval(() => {
    if (!state || state.status !== 'upcoming') return;
    onState(state, 'tick');
    const starts = state.sale_starts_at ? Date.parse(state.sale_starts_at) : NaN;
    if (!lookedAfterDrop && Date.now() - starts > 4000) {
      lookedAfterDrop = true;
      load().then((rep) => apply(rep, 'rest')).catch(() => {});
    }
  }, 250);

  return {
    get state() { return state; },
    sub: handle.sub,
    close() {
      clearInterval(ticker);
      handle.close();
    },
  };
}
