// The cart of this browser: a guest cart (id + cart token in localStorage, shared by every tab) or the
// signed-in user's cart. Kept live through `cart:{id}`; every tab renders the same cart.
//
// Echo suppression: writes carry `X-Client-Id` (this tab's gateway client id), so the cart service
// tells the gateway not to send the resulting publication back to this tab: the tab renders the
// PUT's response once, every other tab renders the publication once.

import { ApiError, withRetry } from './api.js';
import { trace } from './ui.js';

const GUEST_KEY = 'flashline.guest-cart';
const USER_KEY = 'flashline.user-cart'; // {user, cart_id}: tells this browser's other tabs which cart a user has

function announceUserCart(user, cartId) {
  const raw = JSON.stringify({ user, cart_id: cartId });
  if (localStorage.getItem(USER_KEY) !== raw) localStorage.setItem(USER_KEY, raw);
}

export function guestCartRef() {
  try {
    const raw = localStorage.getItem(GUEST_KEY);
    return raw ? JSON.parse(raw) : null;
  } catch {
    return null;
  }
}

function setGuestCartRef(ref) {
  if (ref) localStorage.setItem(GUEST_KEY, JSON.stringify(ref));
  else localStorage.removeItem(GUEST_KEY);
}

export class CartStore extends EventTarget {
  constructor(api, live, session) {
    super();
    this.api = api;
    this.live = live;
    this.session = session;
    this.cart = null; // the last rendered cart
    this.ref = null; // {cart_id, cart_token?}
    this.watchHandle = null;
    this.renders = 0; // states applied (REST answers and publications)
    this.pushes = 0; // publications received on cart:{id}
    this.error = null;
    this._creating = null;
    this._onStorage = (event) => {
      if (event.key === USER_KEY && !this.session.isGuest && event.newValue) {
        // another tab of this user made (or merged into) the user's cart: follow it
        const announced = JSON.parse(event.newValue);
        if (announced.user === this.session.user && (!this.ref || this.ref.cart_id !== announced.cart_id)) {
          this._follow({ cart_id: announced.cart_id }, null);
        }
        return;
      }
      if (event.key !== GUEST_KEY || !this.session.isGuest) return;
      const ref = guestCartRef();
      if (ref && (!this.ref || ref.cart_id !== this.ref.cart_id)) this._follow(ref, null); // another tab made the cart
      if (!ref && this.ref) this._forget();
    };
    window.addEventListener('storage', this._onStorage);
  }

  get count() { return this.cart ? this.cart.items.reduce((n, line) => n + line.quantity, 0) : 0; }
  get id() { return this.ref ? this.ref.cart_id : null; }

  quantityOf(productId) {
    const line = this.cart && this.cart.items.find((l) => l.product_id === productId);
    return line ? line.quantity : 0;
  }

  headers(extra = {}) {
    const headers = { ...extra };
    if (this.ref && this.ref.cart_token) headers['X-Cart-Token'] = this.ref.cart_token;
    return headers;
  }

  /** Find this browser's cart (nothing creates one here: a cart is made at the first add). */
  async start() {
    this._emit();
    if (this.session.isGuest) {
      const ref = guestCartRef();
      if (ref) this._follow(ref, null);
      return;
    }
    if (this.session.isStaff) return; // staff have no cart
    try {
      const cart = await withRetry(() => this.api.cart('/carts/mine'));
      this._follow({ cart_id: cart.cart_id }, cart);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) return; // no cart yet
      this.error = err;
      trace('cart-error', { message: err.message });
      this._emit();
    }
  }

  stop() {
    if (this.watchHandle) this.watchHandle.close();
    this.watchHandle = null;
    window.removeEventListener('storage', this._onStorage);
  }

  _follow(ref, initial) {
    if (this.watchHandle) this.watchHandle.close();
    this.ref = ref;
    if (!this.session.isGuest) announceUserCart(this.session.user, ref.cart_id);
    this.cart = null;
    if (initial) this.apply(initial, 'rest');
    const path = `/carts/${encodeURIComponent(ref.cart_id)}`;
    this.watchHandle = this.live.watch(`cart:${ref.cart_id}`, {
      initial,
      load: () => this.api.cart(path, { headers: this.headers() }),
      token: () => this.api.cart(`${path}/subscription-token`, { method: 'POST', headers: this.headers() }),
      apply: (data, source) => this.apply(data, source),
      onFatal: () => {
        // The cart is gone or not ours (e.g. a closed guest cart): start over without one.
        if (this.session.isGuest && guestCartRef() && guestCartRef().cart_id === ref.cart_id) setGuestCartRef(null);
        this._forget();
      },
    });
  }

  _forget() {
    if (this.watchHandle) this.watchHandle.close();
    this.watchHandle = null;
    this.ref = null;
    this.cart = null;
    this._emit();
  }

  apply(cart, source) {
    if (source === 'push') {
      this.pushes += 1;
      this.dispatchEvent(new CustomEvent('stats'));
    }
    if (!cart || (this.ref && cart.cart_id !== this.ref.cart_id)) return;
    if (this.cart && cart.version < this.cart.version) return;
    if (this.cart && source === 'push' && cart.version === this.cart.version) return;
    if (cart.status === 'closed' && this.session.isGuest) {
      // merged into a user's cart (signed in in another tab): this guest cart is finished
      trace('cart-closed', { cart: cart.cart_id });
    }
    this.cart = cart;
    this.renders += 1;
    trace('cart-render', { source, version: cart.version, items: cart.items.length, count: this.count });
    this._emit();
  }

  _emit() {
    this.dispatchEvent(new CustomEvent('change', { detail: { cart: this.cart } }));
  }

  /** The cart to write to, creating it on first use (a guest cart, or the customer's open cart). */
  async ensure() {
    if (this.ref) return this.ref;
    if (this.session.isStaff) throw new Error('staff accounts have no cart');
    if (!this._creating) {
      const guest = this.session.isGuest;
      this._creating = (async () => {
        const headers = this.live.clientId ? { 'X-Client-Id': this.live.clientId } : {};
        const created = await this.api.cart('/carts', { method: 'POST', headers });
        const ref = guest ? { cart_id: created.cart_id, cart_token: created.cart_token } : { cart_id: created.cart_id };
        if (guest) setGuestCartRef(ref);
        if (!this.ref || this.ref.cart_id !== ref.cart_id) {
          this._follow(ref, created);
          // Write only once subscribed: a write that commits before the subscribe would come back to
          // this tab as a recovered publication (history knows no excluded client). Never wait long.
          await this.watchHandle.sub.ready(1500).catch(() => {});
        }
        return this.ref;
      })().finally(() => { this._creating = null; });
    }
    return this._creating;
  }

  /** Set a line's quantity (0 removes it). Renders the answer; a stale If-Match is retried once. */
  async setQuantity(productId, quantity) {
    const ref = await this.ensure();
    const path = `/carts/${encodeURIComponent(ref.cart_id)}/items/${productId}`;
    const send = (version) => {
      const headers = this.headers();
      if (this.live.clientId) headers['X-Client-Id'] = this.live.clientId;
      if (version !== null && version !== undefined) headers['If-Match'] = String(version);
      return this.api.cart(path, { method: 'PUT', headers, body: { quantity } });
    };
    let answer;
    try {
      answer = await send(this.cart ? this.cart.version : null);
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 412) throw err;
      // Another tab changed the cart first: adopt its cart, then apply this change on top of it.
      const current = err.body && (err.body.cart || err.body.current || err.body);
      if (current && current.cart_id) this.apply(current, 'rest');
      answer = await send(this.cart ? this.cart.version : null);
    }
    this.apply(answer, 'rest');
    return answer;
  }

  async add(productId, quantity = 1) {
    await this.ensure();
    return this.setQuantity(productId, this.quantityOf(productId) + quantity);
  }

  /** At sign-in: fold the guest cart of this browser into the user's cart. */
  static async mergeGuestCart(api, guestRef) {
    const answer = await api.cart(`/carts/${encodeURIComponent(guestRef.cart_id)}/merge`, {
      method: 'POST',
      headers: { 'X-Cart-Token': guestRef.cart_token },
    });
    setGuestCartRef(null);
    return answer;
  }

  static announceUserCart(user, cartId) {
    announceUserCart(user, cartId);
  }

  static forgetGuestCart() {
    setGuestCartRef(null);
  }
}
