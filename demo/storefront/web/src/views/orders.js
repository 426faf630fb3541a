// "My orders": the caller's orders, newest first; status summaries arrive live on `user#{id}`.

import { dateTime, h, money, replace } from '../ui.js';
import { statusLabel } from './order.js';

export function ordersView(app, root) {
  const list = h('div', { class: 'orders-list', 'data-testid': 'orders-list' });
  replace(root, h('h1', {}, app.session.isStaff ? 'Orders' : 'My orders'), list);
  if (app.session.isGuest) {
    replace(list, h('p', { class: 'muted' }, 'Sign in (top right) to see your orders.'));
    return () => {};
  }
  let cancelled = false;
  const rows = new Map();

  function row(order) {
    const pill = h('span', { class: 'pill', 'data-status': order.status }, statusLabel(order.status));
    const el = h('a', { class: 'card order-row', href: `#/orders/${order.id}`, 'data-order-id': order.id },
      h('strong', {}, `Order #${order.id}`),
      h('span', { class: 'muted small' }, dateTime(order.created_at || order.updated_at)),
      h('span', {}, money(order.total_cents, order.currency)),
      pill);
    rows.set(order.id, { el, pill, version: order.version });
    return el;
  }

  const onSummary = (event) => {
    const summary = event.detail;
    const entry = rows.get(summary.order_id);
    if (!entry) {
      if (!cancelled) load();
      return;
    }
    if (summary.version <= entry.version) return;
    entry.version = summary.version;
    entry.pill.textContent = statusLabel(summary.status);
    entry.pill.dataset.status = summary.status;
  };
  app.addEventListener('order-summary', onSummary);

  function load() {
    app.api.orders('/orders?limit=50').then((page) => {
      if (cancelled) return;
      const items = Array.isArray(page) ? page : (page.items || []);
      rows.clear();
      replace(list, items.length ? items.map(row)
        : h('p', { class: 'muted' }, 'No orders yet.'));
    }).catch((err) => {
      if (!cancelled) replace(list, h('p', { class: 'error' }, `Could not load your orders: ${err.message}`));
    });
  }
  load();
  return () => {
    cancelled = true;
    app.removeEventListener('order-summary', onSummary);
  };
}
