// An order page: the status timeline moves live on `order:{id}` (subscription token from orders).

import { withRetry } from '../api.js';
import { clock, h, money, replace, toast } from '../ui.js';

export const STEPS = ['pending', 'confirmed', 'paid', 'packed', 'shipped', 'delivered'];
const FAILED = ['rejected', 'cancelled', 'expired'];
const LABELS = {
  pending: 'Placed', confirmed: 'Confirmed', paid: 'Paid', packed: 'Packed', shipped: 'Shipped',
  delivered: 'Delivered', rejected: 'Rejected', cancelled: 'Cancelled', expired: 'Expired',
};
const NEXT_BY_STAFF = { paid: 'packed', packed: 'shipped', shipped: 'delivered' };
const CANCELLABLE = ['pending', 'confirmed', 'paid', 'packed'];
const REASONS = {
  insufficient_stock: 'not enough stock left',
  not_on_sale: 'the sale has not started yet',
  unknown_product: 'a product does not exist',
};

export function statusLabel(status) { return LABELS[status] || status; }

export function orderView(app, root, { id }) {
  const orderId = Number(id);
  let order = null;
  let history = [];
  let watch = null;
  let cancelled = false;
  const names = new Map();
  const feed = [];

  const title = h('h1', {}, `Order #${orderId}`);
  const statusPill = h('span', { class: 'pill', 'data-testid': 'order-status' }, '…');
  const timeline = h('ol', { class: 'timeline', 'data-testid': 'timeline' });
  const items = h('div', { class: 'order-items' });
  const actions = h('div', { class: 'row gap actions' });
  const feedList = h('ul', { class: 'feed', 'data-testid': 'live-feed' });
  replace(root,
    h('a', { href: '#/orders', class: 'back' }, '← My orders'),
    h('section', { class: 'order', 'data-testid': 'order-view', 'data-order-id': orderId },
      h('div', { class: 'row between' }, title, statusPill),
      h('div', { class: 'order-grid' },
        h('div', { class: 'card pad' }, h('h2', {}, 'Status'), timeline, actions),
        h('div', { class: 'card pad' }, h('h2', {}, 'Items'), items,
          h('h2', { class: 'mt' }, 'Live updates'), feedList))));

  function reached(status) {
    return history.find((entry) => entry.status === status);
  }

  function paint() {
    if (!order) return;
    statusPill.textContent = statusLabel(order.status);
    statusPill.className = `pill ${FAILED.includes(order.status) ? 'bad' : (order.status === 'delivered' ? 'good' : 'live')}`;
    statusPill.dataset.status = order.status;
    statusPill.dataset.version = String(order.version);
    const failed = FAILED.includes(order.status);
    const currentIndex = STEPS.indexOf(order.status);
    const steps = [];
    for (const [i, step] of STEPS.entries()) {
      const entry = reached(step);
      const done = !!entry || (!failed && currentIndex >= i);
      if (failed && !done) continue;
      const cls = ['step', done ? 'done' : 'todo', step === order.status ? 'current' : ''].join(' ');
      steps.push(h('li', { class: cls, 'data-step': step },
        h('span', { class: 'dot' }),
        h('span', { class: 'step-name' }, LABELS[step]),
        h('span', { class: 'step-time muted small' }, entry ? clock(entry.at) : '')));
    }
    if (failed) {
      const entry = reached(order.status);
      const reason = (entry && entry.reason) || order.reason;
      steps.push(h('li', { class: 'step done failed current', 'data-step': order.status },
        h('span', { class: 'dot' }),
        h('span', { class: 'step-name' }, LABELS[order.status] + (reason ? `: ${REASONS[reason] || reason}` : '')),
        h('span', { class: 'step-time muted small' }, entry ? clock(entry.at) : '')));
    }
    replace(timeline, steps);
    paintItems();
    paintActions();
    replace(feedList, feed.length ? feed.map((f) => h('li', { class: 'live-entry' },
      h('span', { class: 'muted small' }, f.time), ' ', h('strong', {}, statusLabel(f.status)), f.note ? ` ${f.note}` : ''))
      : h('li', { class: 'muted small' }, 'Waiting for changes… (this list fills live)'));
  }

  function paintItems() {
    const currency = order.currency || 'EUR';
    replace(items,
      (order.items || []).map((line) => h('div', { class: 'row between item' },
        h('span', {}, `${line.quantity} × ${names.get(line.product_id) || `Product ${line.product_id}`}`),
        h('span', {}, line.unit_price_cents !== undefined ? money(line.unit_price_cents * line.quantity, currency) : ''))),
      h('div', { class: 'row between total' }, h('strong', {}, 'Total'), h('strong', {}, money(order.total_cents, currency))));
  }

  function button(label, testid, run, cls = 'btn') {
    return h('button', { class: cls, 'data-testid': testid, onclick: async (event) => {
      event.target.disabled = true;
      try { await run(); } catch (err) { toast(err.message, 'error'); event.target.disabled = false; }
    } }, label);
  }

  function paintActions() {
    const buttons = [];
    const isOwner = !app.session.isStaff;
    if (isOwner && order.status === 'confirmed') {
      buttons.push(button('Pay now', 'pay', () => app.api.orders(`/orders/${orderId}/pay`, { method: 'POST' }), 'btn primary'));
    }
    if (app.session.isStaff && NEXT_BY_STAFF[order.status]) {
      const next = NEXT_BY_STAFF[order.status];
      buttons.push(button(`Mark as ${LABELS[next].toLowerCase()}`, 'advance', () => app.api.orders(`/orders/${orderId}/status`,
        { method: 'POST', body: { status: next } }), 'btn primary'));
    }
    if (CANCELLABLE.includes(order.status)) {
      buttons.push(button('Cancel order', 'cancel', () => app.api.orders(`/orders/${orderId}/cancel`, { method: 'POST' }), 'btn ghost'));
    }
    if (order.status === 'pending') buttons.push(h('span', { class: 'muted small' }, 'Reserving stock…'));
    replace(actions, buttons);
  }

  function apply(data, source) {
    if (cancelled || !data) return;
    if (source === 'rest') {
      if (order && data.version < order.version) return;
      order = { ...data };
      history = Array.isArray(data.history) ? [...data.history] : [{ status: data.status, at: data.updated_at }];
    } else {
      if (!order || data.version <= order.version) return;
      order = { ...order, status: data.status, version: data.version, reason: data.reason ?? order.reason };
      if (!reached(data.status)) history.push({ status: data.status, at: data.updated_at, reason: data.reason });
      feed.unshift({ time: clock(data.updated_at || new Date().toISOString()), status: data.status,
        note: data.reason ? `(${REASONS[data.reason] || data.reason})` : '' });
      if (data.status === 'confirmed') toast(`Order #${orderId} confirmed: stock reserved`, 'ok');
    }
    paint();
  }

  const load = () => app.api.orders(`/orders/${orderId}`);
  withRetry(load).then((rep) => {
    if (cancelled) return;
    apply(rep, 'rest');
    const ids = [...new Set((rep.items || []).map((l) => l.product_id))];
    if (ids.length) {
      app.api.catalog(`/products?ids=${ids.join(',')}`, { auth: false }).then((page) => {
        for (const p of page.items || []) names.set(p.id, p.name);
        paint();
      }).catch(() => {});
    }
    watch = app.live.watch(`order:${orderId}`, {
      initial: rep,
      load,
      token: () => app.api.orders(`/orders/${orderId}/subscription-token`, { method: 'POST' }),
      apply,
      onFatal: (err) => toast(`Live updates unavailable: ${err.message}`, 'error'),
    });
  }).catch((err) => {
    if (cancelled) return;
    replace(root, h('a', { href: '#/orders', class: 'back' }, '← My orders'),
      h('p', { class: 'error' }, [401, 403, 404].includes(err.status)
        ? (app.session.isGuest ? 'Sign in to see this order.' : 'No such order (or it is not yours).')
        : `Could not load the order: ${err.message}`));
  });

  return () => {
    cancelled = true;
    if (watch) watch.close();
  };
}
