// 4. The gateway restarts while the order page is open; a status change made during the outage
//    shows once the SDK has reconnected (recovered from the stream position), without a reload.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  api, assertNotReloaded, createProduct, devToken, env, gateway, go, launchBrowser, newContext, openPage,
  placeOrder, screenshot, signIn, traceOf, waitConnected, waitForStatus,
} from './helpers.mjs';

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => {
  await gateway('start').catch(() => {}); // never leave the stack without its gateway
  await browser?.close();
});

test('a change during a gateway outage shows after the reconnect', async () => {
  const product = await createProduct({ name: 'Outage Boots', stock: 10, price_cents: 15900 });
  const order = await placeOrder('alice', [{ product_id: product.id, quantity: 1 }]);
  await waitForStatus('alice', order.id, 'confirmed');
  const alice = await devToken('alice');
  const carol = await devToken('carol', 'staff');
  await api(env.orders, `/orders/${order.id}/pay`, { method: 'POST', token: alice });

  const page = await openPage(await newContext(browser), '#/');
  await signIn(page, 'alice');
  await go(page, `#/orders/${order.id}`);
  await page.locator('[data-testid=order-status][data-status=paid]').waitFor({ timeout: 15000 });
  await waitConnected(page);
  await page.waitForFunction((ch) => (window.flashline.log || []).some((e) => e.kind === 'subscribed' && e.channel === ch),
    `order:${order.id}`);

  await gateway('stop');
  await page.locator('[data-testid=connection][data-state=reconnecting]').waitFor({ timeout: 10000 });

  await api(env.orders, `/orders/${order.id}/status`, { method: 'POST', token: carol, body: { status: 'packed' } });
  await waitForStatus('alice', order.id, 'packed');
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(await page.locator('[data-testid=order-status]').getAttribute('data-status'), 'paid',
    'no live path while the gateway is down');
  await screenshot(page, '4-gateway-down-reconnecting');

  await gateway('start');
  await waitConnected(page, 30000);
  await page.locator('[data-testid=order-status][data-status=packed]').waitFor({ timeout: 20000 });
  await page.locator('[data-testid=timeline] [data-step=packed].done').waitFor();
  await assertNotReloaded(page);

  const subscribed = (await traceOf(page, 'subscribed')).filter((e) => e.channel === `order:${order.id}`);
  assert.ok(subscribed.length >= 2, 'the order channel was subscribed again after the reconnect');
  const last = subscribed.at(-1);
  assert.ok(last.wasRecovering, 'the resubscribe asked to recover from the last position');
  assert.deepEqual(page.errors, []);
  await screenshot(page, '4-gateway-back-packed');
});
