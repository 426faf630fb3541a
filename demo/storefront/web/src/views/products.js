// The shop front: every product with its live stock badge.

import { lookOf } from '../looks.js';
import { paintBadge, stockBadge, watchStock } from '../stock.js';
import { h, money, replace } from '../ui.js';

export function productsView(app, root) {
  const watches = [];
  const grid = h('div', { class: 'grid', 'data-testid': 'product-grid' });
  replace(root,
    h('section', { class: 'hero' },
      h('h1', {}, 'Fresh drops, live stock'),
      h('p', { class: 'lead' }, 'Every count on this page moves the moment someone buys. No refresh needed.')),
    grid);
  replace(grid, h('p', { class: 'muted' }, 'Loading products…'));

  let cancelled = false;
  app.api.catalog('/products?limit=50', { auth: false }).then((page) => {
    if (cancelled) return;
    const items = page.items || [];
    if (!items.length) {
      replace(grid, h('p', { class: 'muted' }, 'No products yet. `make run` seeds a few demo products.'));
      return;
    }
    replace(grid);
    for (const product of items) {
      const look = lookOf(product);
      const badge = stockBadge();
      const card = h('a', { class: 'card product-card', href: `#/products/${product.id}`, 'data-product-id': product.id },
        h('div', { class: 'swatch', style: `background: linear-gradient(135deg, ${look.from}, ${look.to})` },
          h('span', { class: 'mark' }, look.mark)),
        h('div', { class: 'card-body' },
          h('h3', {}, product.name),
          h('div', { class: 'row between' },
            h('span', { class: 'price' }, money(product.price_cents, product.currency)),
            badge)));
      grid.append(card);
      watches.push(watchStock(app, product.id, { initial: product, onState: (state) => paintBadge(badge, state) }));
    }
  }).catch((err) => {
    if (!cancelled) replace(grid, h('p', { class: 'error' }, `Could not load products: ${err.message}`));
  });

  return () => {
    cancelled = true;
    for (const w of watches) w.close();
  };
}
