// A product page: live stock badge, "N people viewing", add to cart, buy now (and drops that open live).

import { withRetry } from '../api.js';
import { icon } from '../icons.js';
import { lookOf } from '../looks.js';
import { paintBadge, stockBadge, watchStock } from '../stock.js';
import { h, money, newKey, replace, toast } from '../ui.js';

const PRESENCE_EVERY_MS = 3000;

export function productView(app, root, { id }) {
  const productId = Number(id);
  let watch = null;
  let presenceTimer = null;
  let cancelled = false;
  let product = null;
  let state = null;

  replace(root, h('p', { class: 'muted' }, 'Loading…'));

  const badge = stockBadge();
  badge.classList.add('badge-lg');
  const availability = h('span', { class: 'muted', 'data-testid': 'availability' });
  const viewers = h('span', { class: 'viewers', 'data-testid': 'viewers', 'data-count': '' }, '');
  const qty = h('input', { type: 'number', min: '1', value: '1', class: 'qty', 'aria-label': 'Quantity', 'data-testid': 'buy-qty' });
  const addButton = h('button', { class: 'btn', 'data-testid': 'add-to-cart', disabled: true }, 'Add to cart');
  const buyButton = h('button', { class: 'btn primary', 'data-testid': 'buy-now', disabled: true }, 'Buy now');
  const inCart = h('p', { class: 'muted small', 'data-testid': 'in-cart' });
  const hint = h('p', { class: 'muted small' });

  function quantity() {
    const n = Math.floor(Number(qty.value));
    return Number.isFinite(n) && n > 0 ? n : 1;
  }

  function paint() {
    const label = paintBadge(badge, state);
    if (!state) return;
    availability.textContent = state.status === 'upcoming'
      ? (state.sale_starts_at ? `Sale opens ${new Date(state.sale_starts_at).toLocaleTimeString()}` : '')
      : `${state.available} available`;
    const canBuy = label.buyable;
    addButton.disabled = !canBuy || app.session.isStaff;
    buyButton.disabled = !canBuy || app.session.isStaff;
    buyButton.textContent = state.status === 'upcoming' ? 'Buy (opens at the drop)' : 'Buy now';
    if (state.available > 0) qty.max = String(state.available);
    hint.textContent = app.session.isStaff
      ? 'Staff accounts cannot shop: switch to a customer.'
      : (app.session.isGuest ? 'Guests can fill a cart; sign in (top right) to check out.' : '');
  }

  function paintCart() {
    const n = app.cart.quantityOf(productId);
    inCart.textContent = n ? `In your cart: ${n}` : '';
  }

  async function pollPresence() {
    if (!watch || cancelled) return;
    try {
      const stats = await watch.sub.presenceStats();
      const n = stats.numClients || 0;
      viewers.dataset.count = String(n);
      replace(viewers, icon('eye'), ` ${n} ${n === 1 ? 'person' : 'people'} viewing`);
    } catch {
      // not subscribed right now (reconnecting): the next poll tries again
    }
  }

  async function addToCart() {
    addButton.disabled = true;
    try {
      await app.cart.add(productId, quantity());
      toast(`Added ${quantity()} × ${product.name} to your cart`, 'ok');
    } catch (err) {
      toast(`Could not add to cart: ${err.message}`, 'error');
    } finally {
      paint();
    }
  }

  async function buyNow() {
    if (app.session.isGuest) {
      toast('Sign in to buy (top right)', 'info');
      app.highlightSignIn();
      return;
    }
    buyButton.disabled = true;
    const key = newKey(); // one key per purchase: retries of this click can never order twice
    try {
      const order = await withRetry(() => app.api.orders('/orders', {
        method: 'POST',
        headers: { 'Idempotency-Key': key },
        body: { items: [{ product_id: productId, quantity: quantity() }] },
      }));
      app.navigate(`#/orders/${order.id}`);
    } catch (err) {
      toast(`Order failed: ${err.message}`, 'error');
      paint();
    }
  }

  addButton.addEventListener('click', addToCart);
  buyButton.addEventListener('click', buyNow);
  const onCart = () => paintCart();
  app.cart.addEventListener('change', onCart);

  app.api.catalog(`/products/${productId}`, { auth: false }).then((rep) => {
    if (cancelled) return;
    product = rep;
    const look = lookOf(rep);
    replace(root,
      h('a', { href: '#/', class: 'back' }, '← All products'),
      h('section', { class: 'product', 'data-product-id': productId },
        h('div', { class: 'swatch big', style: `background: linear-gradient(135deg, ${look.from}, ${look.to})` },
          h('span', { class: 'mark' }, look.mark)),
        h('div', { class: 'product-info' },
          h('p', { class: 'sku' }, rep.sku),
          h('h1', { 'data-testid': 'product-name' }, rep.name),
          h('p', { class: 'price big' }, money(rep.price_cents, rep.currency)),
          h('div', { class: 'row gap' }, badge, availability),
          h('p', {}, viewers),
          h('div', { class: 'row gap buy-row' }, qty, addButton, buyButton),
          inCart,
          hint)));
    watch = watchStock(app, productId, {
      initial: rep,
      onState: (s) => { state = s; paint(); },
    });
    watch.sub.on('subscribed', () => pollPresence());
    presenceTimer = setInterval(pollPresence, PRESENCE_EVERY_MS);
    paintCart();
  }).catch((err) => {
    if (cancelled) return;
    replace(root, h('a', { href: '#/', class: 'back' }, '← All products'),
      h('p', { class: 'error' }, err.status === 404 ? 'No such product.' : `Could not load the product: ${err.message}`));
  });

  return () => {
    cancelled = true;
    clearInterval(presenceTimer);
    app.cart.removeEventListener('change', onCart);
    if (watch) watch.close();
  };
}
