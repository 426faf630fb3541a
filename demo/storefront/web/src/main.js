// Flashline storefront: boot, header (cart count, connection indicator, sign-in switcher) and routing.

import { createApi } from './api.js';
import { CartStore, guestCartRef } from './cart.js';
import { icon } from './icons.js';
import { Live } from './live.js';
import { Session } from './session.js';
import { h, replace, toast, trace } from './ui.js';
import { cartView } from './views/cart.js';
import { orderView, statusLabel } from './views/order.js';
import { ordersView } from './views/orders.js';
import { productView } from './views/product.js';
import { productsView } from './views/products.js';

const ROUTES = [
  [/^#?\/?$/, productsView, []],
  [/^#\/products\/(\d+)$/, productView, ['id']],
  [/^#\/cart$/, cartView, []],
  [/^#\/orders$/, ordersView, []],
  [/^#\/orders\/(\d+)$/, orderView, ['id']],
];

const INDICATOR = {
  connected: ['Live', 'All updates arrive as they happen'],
  connecting: ['Connecting…', 'Opening the live connection'],
  reconnecting: ['Reconnecting…', 'The live connection dropped; catching up as soon as it is back'],
  disconnected: ['Offline', 'No live connection'],
};

class App extends EventTarget {
  async boot() {
    const response = await fetch('/config.json');
    this.config = await response.json();
    this.session = new Session(this.config);
    this.api = createApi(this.config, this.session);
    this.live = new Live(this.config, this.session);
    this.cart = null;
    this.cleanup = null;
    this.userSub = null;
    this.root = document.getElementById('view');
    this.buildChrome();
    this.live.addEventListener('state', () => { this.paintIndicator(); this.paintDebug(); });
    this.session.addEventListener('change', () => this.restart()); // signed in or out in another tab
    window.addEventListener('hashchange', () => this.route());
    this.startIdentity();
    this.route();
    setInterval(() => this.paintDebug(), 500);
  }

  // ---- identity-bound state: the live connection, the cart, the user's notifications ----

  startIdentity() {
    this.live.start();
    this.cart = new CartStore(this.api, this.live, this.session);
    this.cart.addEventListener('change', () => this.paintCartCount());
    this.cart.addEventListener('stats', () => this.paintCartCount());
    this.cart.start();
    if (!this.session.isGuest) {
      this.userSub = this.live.listen(`user#${this.session.user}`, (summary) => this.onSummary(summary));
    }
    this.paintSwitcher();
    this.paintCartCount();
    this.paintIndicator();
  }

  stopIdentity() {
    if (this.cleanup) this.cleanup();
    this.cleanup = null;
    if (this.userSub) this.userSub.close();
    this.userSub = null;
    if (this.cart) this.cart.stop();
    this.live.stop();
  }

  restart() {
    this.stopIdentity();
    this.startIdentity();
    this.route();
  }

  async switchTo(identity) {
    const guestCart = this.session.isGuest ? guestCartRef() : null;
    this.stopIdentity();
    this.session.set(identity);
    if (identity && identity.role === 'customer' && guestCart) {
      try {
        const merged = await CartStore.mergeGuestCart(this.api, guestCart);
        CartStore.announceUserCart(identity.user, merged.cart_id);
        toast('Your guest cart is now in your account', 'ok');
      } catch (err) {
        trace('merge-error', { message: err.message, status: err.status });
        if (err.status === 404 || err.status === 403) CartStore.forgetGuestCart();
        else toast(`Could not merge your guest cart: ${err.message}`, 'error');
      }
    } else if (!identity) {
      CartStore.forgetGuestCart(); // a new guest starts with a new cart
    }
    this.startIdentity();
    this.route();
    toast(identity ? `Signed in as ${identity.label || identity.user}` : 'Signed out: browsing as a guest');
  }

  onSummary(summary) {
    if (!summary || summary.kind !== 'order_status') return;
    this.dispatchEvent(new CustomEvent('order-summary', { detail: summary }));
    if (summary.status !== 'pending' && location.hash !== `#/orders/${summary.order_id}`) {
      toast(`Order #${summary.order_id}: ${statusLabel(summary.status)}`, summary.status === 'rejected' ? 'error' : 'info');
    }
  }

  // ---- routing ----

  navigate(hash) {
    if (location.hash === hash) this.route();
    else location.hash = hash;
  }

  route() {
    if (this.cleanup) this.cleanup();
    this.cleanup = null;
    const hash = location.hash || '#/';
    for (const [pattern, view, names] of ROUTES) {
      const match = hash.match(pattern);
      if (!match) continue;
      const params = Object.fromEntries(names.map((name, i) => [name, match[i + 1]]));
      this.cleanup = view(this, this.root, params) || null;
      this.paintNav(hash);
      window.scrollTo(0, 0);
      return;
    }
    replace(this.root, h('p', {}, 'Nothing here. ', h('a', { href: '#/' }, 'Back to the shop')));
  }

  // ---- header and footer ----

  buildChrome() {
    this.cartLink = h('a', { href: '#/cart', class: 'nav-link cart-link', 'data-testid': 'cart-link' },
      icon('cart'), ' Cart ', this.cartCount = h('span', { class: 'count', 'data-testid': 'cart-count' }, '0'));
    this.ordersLink = h('a', { href: '#/orders', class: 'nav-link' }, 'Orders');
    this.shopLink = h('a', { href: '#/', class: 'nav-link' }, 'Shop');
    this.indicator = h('span', { class: 'indicator', 'data-testid': 'connection', role: 'status' },
      h('span', { class: 'dot' }), this.indicatorText = h('span', {}, ''));
    this.switcher = h('select', { class: 'switcher', 'data-testid': 'sign-in', 'aria-label': 'Signed in as' });
    this.switcher.addEventListener('change', () => {
      const value = this.switcher.value;
      const identity = value ? this.config.dev_users.find((u) => u.user === value) : null;
      this.switchTo(identity || null);
    });
    replace(document.getElementById('header'),
      h('a', { href: '#/', class: 'brand' }, h('span', { class: 'logo' }, icon('bolt')), 'Flashline'),
      h('nav', {}, this.shopLink, this.ordersLink, this.cartLink),
      h('div', { class: 'header-right' }, this.indicator, this.switcher));
    this.debug = document.getElementById('debug');
  }

  paintNav(hash) {
    this.shopLink.classList.toggle('active', hash === '#/' || hash.startsWith('#/products'));
    this.ordersLink.classList.toggle('active', hash.startsWith('#/orders'));
    this.cartLink.classList.toggle('active', hash === '#/cart');
  }

  paintSwitcher() {
    const options = [h('option', { value: '' }, 'Guest')];
    for (const user of this.config.dev_users) options.push(h('option', { value: user.user }, user.label));
    replace(this.switcher, options);
    this.switcher.value = this.session.isGuest ? '' : this.session.user;
    this.switcher.disabled = !this.config.dev_sign_in;
  }

  paintCartCount() {
    const cart = this.cart;
    const n = cart ? cart.count : 0;
    this.cartCount.textContent = String(n);
    this.cartCount.classList.toggle('zero', n === 0);
    this.cartLink.dataset.count = String(n);
    this.cartLink.dataset.renders = String(cart ? cart.renders : 0);
    this.cartLink.dataset.pushes = String(cart ? cart.pushes : 0);
    this.cartLink.dataset.version = cart && cart.cart ? String(cart.cart.version) : '';
    this.paintDebug();
  }

  paintIndicator() {
    const state = this.live.state;
    const [text, title] = INDICATOR[state] || INDICATOR.disconnected;
    this.indicator.dataset.state = state;
    this.indicator.title = title;
    this.indicatorText.textContent = text;
  }

  paintDebug() {
    if (!this.debug) return;
    const cart = this.cart;
    const parts = [
      `gateway ${this.live.url}`,
      `client ${this.live.clientId ? this.live.clientId.slice(0, 8) : '–'}`,
      `as ${this.session.isGuest ? 'guest' : this.session.user}`,
    ];
    if (cart && cart.cart) parts.push(`cart v${cart.cart.version} · ${cart.renders} renders · ${cart.pushes} pushes`);
    const text = parts.join('  ·  ');
    if (this.debug.textContent !== text) this.debug.textContent = text;
  }

  highlightSignIn() {
    this.switcher.classList.add('pulse');
    this.switcher.focus();
    setTimeout(() => this.switcher.classList.remove('pulse'), 2000);
  }
}

const app = new App();
(window.flashline ||= { log: [] }).app = app;
app.boot().catch((err) => {
  document.getElementById('view').textContent = `The storefront could not start: ${err.message}`;
});
