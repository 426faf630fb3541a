// Shared helpers of the browser tests: the system under test comes from the environment that
// tests/browser/run.py sets (a throwaway stack on free ports); the browser is the system's Chromium.
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the browser tests through tests/browser/run.py (make test-browser)`);
  return value;
}

export const env = {
  get storefront() { return required('STOREFRONT_URL'); },
  get catalog() { return required('CATALOG_URL'); },
  get orders() { return required('ORDERS_URL'); },
  get cart() { return required('CART_URL'); },
  get control() { return required('FLASHLINE_TEST_CONTROL_URL'); },
  artifacts: resolve(process.env.FLASHLINE_TEST_ARTIFACTS || 'test-artifacts/browser'),
};

function chromiumPath() {
  if (process.env.CHROMIUM_PATH) return process.env.CHROMIUM_PATH;
  for (const name of ['chromium', 'chromium-browser', 'google-chrome']) {
    try {
      return execFileSync('which', [name], { encoding: 'utf8' }).trim();
    } catch { /* next */ }
  }
  throw new Error('Chromium not found: install it (apt-get install chromium) or set CHROMIUM_PATH');
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: chromiumPath(),
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** A fresh browser profile (its own localStorage: its own guest cart and sign-in). */
export async function newContext(browser) {
  return browser.newContext({ viewport: { width: 1280, height: 860 }, deviceScaleFactor: 1 });
}

/** A page that collects its console errors and marks the document, so a reload would be noticed. */
export async function openPage(context, hash = '#/') {
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (err) => page.errors.push(err.message));
  await page.goto(new URL(hash, env.storefront).href);
  await page.evaluate(() => { window.__documentId = Math.random().toString(36).slice(2); });
  page.documentId = await page.evaluate(() => window.__documentId);
  return page;
}

/** Navigate inside the single-page app (a hash change: the document, its connection and state stay). */
export async function go(page, hash) {
  await page.evaluate((h) => { location.hash = h; }, hash);
}

export async function assertNotReloaded(page) {
  const id = await page.evaluate(() => window.__documentId);
  if (id !== page.documentId) throw new Error('the page was reloaded');
}

export async function waitConnected(page, timeout = 15000) {
  await page.locator('[data-testid=connection][data-state=connected]').waitFor({ timeout });
}

/** Sign in through the header's switcher (the dev identity provider of the storefront). */
export async function signIn(page, user) {
  await page.selectOption('[data-testid=sign-in]', user);
  await page.waitForFunction((u) => {
    const app = window.flashline && window.flashline.app;
    return app && app.session.user === u && app.live.state === 'connected';
  }, user, { timeout: 15000 });
}

export async function screenshot(page, name) {
  mkdirSync(env.artifacts, { recursive: true });
  const path = join(env.artifacts, `${name}.png`);
  await page.screenshot({ path, fullPage: false });
  return path;
}

// ---- the REST APIs, as the tests' own clients ----

export async function devToken(user, role = 'customer') {
  const response = await fetch(new URL('/dev/token', env.storefront), {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ user, role }),
  });
  if (!response.ok) throw new Error(`dev token for ${user}: ${response.status}`);
  return (await response.json()).token;
}

export async function api(base, path, { method = 'GET', body, token, headers = {} } = {}) {
  const sent = { ...headers };
  if (body !== undefined) sent['Content-Type'] = 'application/json';
  if (token) sent.Authorization = `Bearer ${token}`;
  const response = await fetch(base + path, { method, headers: sent, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = { detail: text }; }
  if (!response.ok) {
    const err = new Error(`${method} ${path} -> ${response.status}: ${text}`);
    err.status = response.status;
    err.body = data;
    throw err;
  }
  return data;
}

/** A new product, once the cart and orders services have it in their read models (they learn of it by event). */
export async function createProduct({ name, stock, price_cents = 9900 }) {
  const staff = await devToken('carol', 'staff');
  const sku = `T-${randomUUID().slice(0, 12)}`;
  const product = await api(env.catalog, '/products', {
    method: 'POST', token: staff, body: { sku, name, price_cents, currency: 'EUR', stock },
  });
  // A scratch guest cart (carts never touch stock) answers 404 until the cart service knows the product.
  const probe = await api(env.cart, '/carts', { method: 'POST' });
  await waitFor(async () => {
    try {
      await api(env.cart, `/carts/${probe.cart_id}/items/${product.id}`, {
        method: 'PUT', headers: { 'X-Cart-Token': probe.cart_token }, body: { quantity: 1 },
      });
      return true;
    } catch (err) {
      if (err.status === 404) return false;
      throw err;
    }
  }, { what: `the cart service to know product ${product.id}` });
  return product;
}

/** Place an order through the API; retried while the orders service has not yet heard of a new product. */
export async function placeOrder(user, items, extra = {}) {
  const token = await devToken(user);
  const key = randomUUID();
  return waitFor(async () => {
    try {
      return await api(env.orders, '/orders', {
        method: 'POST', token, headers: { 'Idempotency-Key': key }, body: { items, ...extra },
      });
    } catch (err) {
      if (err.status === 422 && err.body && err.body.code === 'unknown_product') return null;
      throw err;
    }
  }, { what: 'the orders service to know the products' });
}

export async function getOrder(user, id, role = 'customer') {
  return api(env.orders, `/orders/${id}`, { token: await devToken(user, role) });
}

export async function waitFor(check, { timeout = 15000, interval = 150, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  while (Date.now() < deadline) {
    last = await check();
    if (last) return last;
    await new Promise((r) => setTimeout(r, interval));
  }
  throw new Error(`timed out after ${timeout} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
}

export async function waitForStatus(user, id, status) {
  return waitFor(async () => {
    const order = await getOrder(user, id);
    return order.status === status ? order : null;
  }, { what: `order ${id} to be ${status}` });
}

export async function gateway(action) {
  const response = await fetch(`${env.control}/gateway/${action}`, { method: 'POST' });
  if (!response.ok) throw new Error(`gateway ${action}: ${response.status} ${await response.text()}`);
}

/** The page's own log of renders and pushes (window.flashline.log), filtered by kind. */
export async function traceOf(page, kind) {
  return page.evaluate((k) => (window.flashline.log || []).filter((e) => e.kind === k), kind);
}
