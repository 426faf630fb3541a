// REST calls to the services. Every representation of live state carries `stream: {offset, epoch}`.

export class ApiError extends Error {
  constructor(status, body, message) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

function describe(body, fallback) {
  const detail = body && body.detail;
  if (!detail) return fallback;
  if (typeof detail === 'string') return detail;
  if (Array.isArray(detail)) return detail.map((d) => d.msg || JSON.stringify(d)).join('; ');
  if (typeof detail === 'object') return detail.message || detail.reason || JSON.stringify(detail);
  return String(detail);
}

export function createApi(config, session) {
  async function request(base, path, { method = 'GET', body, headers = {}, auth = true } = {}) {
    const sent = { Accept: 'application/json', ...headers };
    if (body !== undefined) sent['Content-Type'] = 'application/json';
    if (auth) {
      const token = await session.userToken();
      if (token) sent.Authorization = `Bearer ${token}`;
    }
    let response;
    try {
      response = await fetch(base + path, {
        method,
        headers: sent,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      throw new ApiError(0, null, `network error: ${err.message}`);
    }
    const text = await response.text();
    let data = null;
    if (text) {
      try { data = JSON.parse(text); } catch { data = { detail: text }; }
    }
    if (!response.ok) {
      throw new ApiError(response.status, data, describe(data, `${response.status} ${response.statusText}`));
    }
    return data;
  }
  return {
    catalog: (path, options) => request(config.catalog_url, path, options),
    orders: (path, options) => request(config.orders_url, path, options),
    cart: (path, options) => request(config.cart_url, path, options),
  };
}

/** Retry a call on network errors and 5xx (e.g. a service restarting); the body of the call must be idempotent. */
export async function withRetry(call, { attempts = 3, delay = 400 } = {}) {
  for (let i = 1; ; i++) {
    try {
      return await call();
    } catch (err) {
      const transient = err instanceof ApiError && (err.status === 0 || err.status >= 500);
      if (!transient || i >= attempts) throw err;
      await new Promise((r) => setTimeout(r, delay * i));
    }
  }
}
