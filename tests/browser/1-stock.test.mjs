// 1. Live inventory: two browsers watch one product, a third buys the last units through the UI;
//    both watchers' badges flip to "Out of stock" without a reload.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  assertNotReloaded, createProduct, launchBrowser, newContext, openPage, screenshot, signIn, waitConnected,
} from './helpers.mjs';

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

const badge = (page) => page.locator('[data-testid=stock-badge]');

test('buying the last units flips every watcher to "Out of stock" live', async () => {
  const product = await createProduct({ name: 'Last Pair Runner', stock: 3, price_cents: 14900 });
  const hash = `#/products/${product.id}`;

  const watchers = [];
  for (let i = 0; i < 2; i++) {
    const page = await openPage(await newContext(browser), hash);
    await waitConnected(page);
    await badge(page).filter({ hasText: 'Only 3 left!' }).waitFor();
    watchers.push(page);
  }

  const buyer = await openPage(await newContext(browser), hash);
  await signIn(buyer, 'alice');
  await badge(buyer).filter({ hasText: 'Only 3 left!' }).waitFor();

  // presence_stats on stock:{id}: the three browsers on the page are counted (reports every ~2 s)
  await watchers[0].waitForFunction(() => {
    const el = document.querySelector('[data-testid=viewers]');
    return el && Number(el.dataset.count) >= 3;
  }, null, { timeout: 20000 });

  await screenshot(watchers[0], '1-stock-watcher-a-before');
  await buyer.fill('[data-testid=buy-qty]', '3');
  await buyer.click('[data-testid=buy-now]');
  await buyer.waitForURL(/#\/orders\/\d+$/);
  await buyer.locator('[data-testid=order-status][data-status=confirmed]').waitFor({ timeout: 20000 });

  for (const page of watchers) {
    await badge(page).filter({ hasText: 'Out of stock' }).waitFor({ timeout: 15000 });
    assert.equal(await badge(page).getAttribute('data-status'), 'out');
    assert.equal(await badge(page).getAttribute('data-available'), '0');
    assert.ok(await page.locator('[data-testid=buy-now]').isDisabled(), 'Buy is disabled when sold out');
    await assertNotReloaded(page);
    assert.deepEqual(page.errors, []);
  }
  await screenshot(watchers[0], '1-stock-watcher-a-out-of-stock');
  await screenshot(watchers[1], '1-stock-watcher-b-out-of-stock');
  await screenshot(buyer, '1-stock-buyer-order');
});
