// The cart page: quantities debounced (typing "100" sends one update), live across tabs, checkout.

import { withRetry } from '../api.js';
import { lookOf } from '../looks.js';
import { debounce, h, money, newKey, replace, toast } from '../ui.js';

const DEBOUNCE_MS = 350;

export function cartView(app, root) {
  const store = app.cart;
  const rows = new Map(); // product_id -> {row, input, send, ...}
  const inflight = new Set();
  const list = h('div', { class: 'cart-lines', 'data-testid': 'cart-lines' });
  const totals = h('div', { class: 'totals' });
  const checkout = h('button', { class: 'btn primary', 'data-testid': 'checkout' }, 'Check out');
  const note = h('p', { class: 'muted small' });
  const view = h('section', { class: 'cart', 'data-testid': 'cart-view' },
    h('h1', {}, 'Your cart'),
    list,
    h('div', { class: 'cart-footer' }, totals, h('div', { class: 'checkout-box' }, checkout, note)));
  replace(root, view);

  function track(promise) {
    inflight.add(promise);
    promise.finally(() => inflight.delete(promise));
    return promise;
  }

  function send(productId, input) {
    const n = Math.floor(Number(input.value));
    if (input.value === '' || !Number.isFinite(n) || n < 0) {
      input.classList.add('invalid');
      return;
    }
    input.classList.remove('invalid');
    track(store.setQuantity(productId, n).catch((err) => {
      toast(`Could not update the quantity: ${err.message}`, 'error');
      render();
    }));
  }

  function rowFor(line) {
    let entry = rows.get(line.product_id);
    if (entry) return entry;
    const look = lookOf(line);
    const input = h('input', { type: 'number', min: '0', class: 'qty', 'aria-label': `Quantity of ${line.name}`, 'data-testid': 'line-qty' });
    const sendLater = debounce(() => send(line.product_id, input), DEBOUNCE_MS);
    input.addEventListener('input', () => sendLater());
    input.addEventListener('keydown', (e) => { if (e.key === 'Enter') { sendLater.cancel(); send(line.product_id, input); } });
    const remove = h('button', { class: 'btn ghost', 'data-testid': 'line-remove', title: 'Remove',
      onclick: () => { sendLater.cancel(); input.value = '0'; send(line.product_id, input); } }, 'Remove');
    const name = h('a', { href: `#/products/${line.product_id}`, class: 'line-name' });
    const unit = h('span', { class: 'muted small' });
    const total = h('span', { class: 'line-total' });
    const warn = h('span', { class: 'warn small' });
    const row = h('div', { class: 'cart-line', 'data-product-id': line.product_id },
      h('div', { class: 'swatch mini', style: `background: linear-gradient(135deg, ${look.from}, ${look.to})` },
        h('span', { class: 'mark' }, look.mark)),
      h('div', { class: 'line-main' }, name, unit, warn),
      input, total, remove);
    entry = { row, input, sendLater, name, unit, total, warn };
    rows.set(line.product_id, entry);
    return entry;
  }

  function render() {
    const cart = store.cart;
    view.dataset.version = cart ? String(cart.version) : '';
    if (!cart || cart.items.length === 0) {
      rows.clear();
      replace(list, h('div', { class: 'empty' },
        h('p', {}, store.error ? `Could not load your cart: ${store.error.message}` : 'Your cart is empty.'),
        h('a', { href: '#/', class: 'btn' }, 'Browse products')));
      replace(totals);
      checkout.disabled = true;
      note.textContent = '';
      return;
    }
    const seen = new Set();
    const ordered = [];
    for (const line of cart.items) {
      const entry = rowFor(line);
      seen.add(line.product_id);
      entry.name.textContent = line.name;
      entry.unit.textContent = `${money(line.unit_price_cents, cart.totals.currency)} each`;
      entry.total.textContent = money(line.line_total_cents, cart.totals.currency);
      entry.warn.textContent = line.short ? `Only ${line.available} available` : '';
      entry.row.classList.toggle('short', !!line.short);
      const editing = document.activeElement === entry.input && entry.sendLater.pending();
      if (!editing && entry.input.value !== String(line.quantity)) entry.input.value = String(line.quantity);
      ordered.push(entry.row);
    }
    for (const [pid] of rows) if (!seen.has(pid)) rows.delete(pid);
    if (list.firstElementChild && list.firstElementChild.classList.contains('empty')) replace(list);
    ordered.forEach((row, i) => { if (list.children[i] !== row) list.insertBefore(row, list.children[i] || null); });
    while (list.children.length > ordered.length) list.lastElementChild.remove();
    replace(totals,
      h('div', { class: 'row between' }, h('span', {}, `${cart.totals.items} item${cart.totals.items === 1 ? '' : 's'}`),
        h('strong', { 'data-testid': 'cart-subtotal' }, money(cart.totals.subtotal_cents, cart.totals.currency))));
    const short = cart.items.some((l) => l.short);
    checkout.disabled = short || app.session.isStaff;
    note.textContent = short ? 'Some items are no longer available in that quantity.'
      : (app.session.isGuest ? 'You will be asked to sign in.' : '');
  }

  async function doCheckout() {
    if (app.session.isGuest) {
      toast('Sign in to check out: your cart comes with you.', 'info');
      app.highlightSignIn();
      return;
    }
    checkout.disabled = true;
    for (const entry of rows.values()) if (entry.sendLater.pending()) { entry.sendLater.cancel(); send(Number(entry.row.dataset.productId), entry.input); }
    await Promise.allSettled([...inflight]);
    const cart = store.cart;
    if (!cart || !cart.items.length) return;
    const key = newKey();
    try {
      const order = await withRetry(() => app.api.orders('/orders', {
        method: 'POST',
        headers: { 'Idempotency-Key': key },
        body: { items: cart.items.map((l) => ({ product_id: l.product_id, quantity: l.quantity })), cart_id: cart.cart_id },
      }));
      app.navigate(`#/orders/${order.id}`);
    } catch (err) {
      toast(`Checkout failed: ${err.message}`, 'error');
      render();
    }
  }
  checkout.addEventListener('click', doCheckout);

  const onChange = () => render();
  store.addEventListener('change', onChange);
  if (!store.ref && !app.session.isGuest) store.start(); // a cart made on another device since
  render();
  return () => {
    store.removeEventListener('change', onChange);
    for (const entry of rows.values()) {
      if (entry.sendLater.pending()) { entry.sendLater.cancel(); send(Number(entry.row.dataset.productId), entry.input); }
    }
  };
}
