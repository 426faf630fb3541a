// Who is signed in. In development the storefront server mints dev identity tokens (POST /dev/token)
// for the sign-in switcher; in production a real identity provider would stand here.
// The identity lives in localStorage, so every tab of the browser follows a sign-in.

const KEY = 'flashline.identity';
const REFRESH_MARGIN_MS = 60_000;

function load() {
  try {
    const raw = localStorage.getItem(KEY);
    return raw ? JSON.parse(raw) : null;
  } catch {
    return null;
  }
}

export class TokenError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export class Session extends EventTarget {
  constructor(config) {
    super();
    this.config = config;
    this.identity = load(); // {user, role, tenant, label} or null for a guest
    this._token = null; // {token, expires_at (ms)}
    this._inflight = null;
    window.addEventListener('storage', (event) => {
      if (event.key !== KEY) return;
      this.identity = load();
      this._token = null;
      this.dispatchEvent(new CustomEvent('change', { detail: { remote: true } }));
    });
  }

  get isGuest() { return !this.identity; }
  get user() { return this.identity ? this.identity.user : ''; }
  get role() { return this.identity ? this.identity.role : 'guest'; }
  get isStaff() { return this.role === 'staff'; }
  get label() { return this.identity ? (this.identity.label || this.identity.user) : 'Guest'; }

  /** Switch identity (null = guest). Callers restart live state afterwards. */
  set(identity) {
    this.identity = identity;
    this._token = null;
    if (identity) localStorage.setItem(KEY, JSON.stringify(identity));
    else localStorage.removeItem(KEY);
  }

  /** A valid user token for REST calls (cached until a minute before expiry), or null for a guest. */
  async userToken() {
    if (this.isGuest) return null;
    if (this._token && this._token.expires_at - Date.now() > REFRESH_MARGIN_MS) return this._token.token;
    return this.freshToken();
  }

  /** A newly minted user token: the SDK's connection getToken calls this before the old one expires. */
  async freshToken() {
    if (this.isGuest) return '';
    const identity = this.identity;
    if (!this._inflight) {
      this._inflight = (async () => {
        const response = await fetch('/dev/token', {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ user: identity.user, role: identity.role, tenant: identity.tenant || null }),
        });
        if (!response.ok) {
          const body = await response.json().catch(() => ({}));
          throw new TokenError(response.status, body.detail || `token request failed (${response.status})`);
        }
        const body = await response.json();
        if (this.identity === identity) this._token = { token: body.token, expires_at: body.expires_at * 1000 };
        return body.token;
      })().finally(() => { this._inflight = null; });
    }
    return this._inflight;
  }
}
