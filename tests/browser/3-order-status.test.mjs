// 3. Order status: the order page moves confirmed -> paid -> packed -> shipped live as the owner pays
//    and staff advance it through the API; every step appears without a reload.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  api, assertNotReloaded, createProduct, devToken, env, go, launchBrowser, newContext, openPage, placeOrder,
  screenshot, signIn, waitForStatus,
} from './helpers.mjs';

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

test('the order page shows each status change live', async () => {
  const product = await createProduct({ name: 'Timeline Jacket', stock: 10, price_cents: 18900 });
  const order = await placeOrder('alice', [{ product_id: product.id, quantity: 2 }]);

  const page = await openPage(await newContext(browser), '#/');
  await signIn(page, 'alice');
  await go(page, `#/orders/${order.id}`);
  const status = page.locator('[data-testid=order-status]');
  await page.locator('[data-testid=order-status][data-status=confirmed]').waitFor({ timeout: 20000 });
  const step = (name) => page.locator(`[data-testid=timeline] [data-step=${name}].done`);
  await step('confirmed').waitFor();
  assert.equal(await step('paid').count(), 0);

  const alice = await devToken('alice');
  const carol = await devToken('carol', 'staff');
  const moves = [
    ['paid', () => api(env.orders, `/orders/${order.id}/pay`, { method: 'POST', token: alice })],
    ['packed', () => api(env.orders, `/orders/${order.id}/status`, { method: 'POST', token: carol, body: { status: 'packed' } })],
    ['shipped', () => api(env.orders, `/orders/${order.id}/status`, { method: 'POST', token: carol, body: { status: 'shipped' } })],
  ];
  let pushes = 0;
  for (const [next, move] of moves) {
    await move();
    await step(next).waitFor({ timeout: 10000 });
    assert.equal(await status.getAttribute('data-status'), next);
    const feed = await page.locator('[data-testid=live-feed] .live-entry').count();
    assert.ok(feed > pushes, `the "${next}" change arrived as a live update`);
    pushes = feed;
  }
  await waitForStatus('alice', order.id, 'shipped');
  for (const name of ['pending', 'confirmed', 'paid', 'packed', 'shipped']) {
    assert.equal(await step(name).count(), 1, `${name} is marked done`);
  }
  assert.equal(await step('delivered').count(), 0);
  await assertNotReloaded(page);
  assert.deepEqual(page.errors, []);
  await screenshot(page, '3-order-timeline-shipped');
});
