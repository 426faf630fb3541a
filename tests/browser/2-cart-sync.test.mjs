// 2. Cart sync: two tabs of one guest cart. A change in one shows in the other; the tab that made
//    it renders its own REST answer once and never gets its own echo from the gateway.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  assertNotReloaded, createProduct, go, launchBrowser, newContext, openPage, screenshot, waitConnected, waitFor,
} from './helpers.mjs';

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

const counters = (page) => page.evaluate(() => {
  const link = document.querySelector('[data-testid=cart-link]');
  return {
    renders: Number(link.dataset.renders), pushes: Number(link.dataset.pushes),
    count: Number(link.dataset.count), version: Number(link.dataset.version),
  };
});

test('a change in one tab shows in the other, without an echo to the first', async () => {
  const cap = await createProduct({ name: 'Sync Cap', stock: 50, price_cents: 2500 });
  const tee = await createProduct({ name: 'Sync Tee', stock: 50, price_cents: 3500 });
  const context = await newContext(browser); // one guest: both tabs share its cart (localStorage)

  const tab1 = await openPage(context, `#/products/${cap.id}`);
  await waitConnected(tab1);
  await tab1.locator('[data-testid=add-to-cart]:not([disabled])').click();
  await tab1.locator('[data-testid=cart-link][data-count="1"]').waitFor();

  const tab2 = await openPage(context, '#/cart');
  await waitConnected(tab2);
  await tab2.locator(`.cart-line[data-product-id="${cap.id}"]`).waitFor();

  // Both tabs subscribed to cart:{id}; take the counts once everything is quiet.
  await new Promise((r) => setTimeout(r, 1000));
  const before1 = await counters(tab1);
  const before2 = await counters(tab2);

  await go(tab1, `#/products/${tee.id}`);
  await tab1.locator('[data-testid=add-to-cart]:not([disabled])').click();
  await tab1.locator('[data-testid=cart-link][data-count="2"]').waitFor();
  await tab2.locator(`.cart-line[data-product-id="${tee.id}"]`).waitFor({ timeout: 10000 });
  await new Promise((r) => setTimeout(r, 1500)); // an echo, if any, would have arrived by now

  const after1 = await counters(tab1);
  const after2 = await counters(tab2);
  const cartTrace = (page) => page.evaluate(() => JSON.stringify(window.flashline.log.filter(
    (e) => e.kind.startsWith('cart') || (e.channel || '').startsWith('cart') || e.kind.startsWith('connect'))));
  console.log(`cart counters before: ${JSON.stringify([before1, before2])}, after: ${JSON.stringify([after1, after2])}`);
  try {
    assert.equal(after1.renders - before1.renders, 1, 'the writing tab renders its change exactly once');
    assert.equal(after1.pushes - before1.pushes, 0, 'the writing tab gets no echo of its own change');
    assert.equal(after2.pushes - before2.pushes, 1, 'the other tab gets the change as one publication');
    assert.equal(after2.renders - before2.renders, 1, 'the other tab renders it once');
  } catch (err) {
    console.log(`tab 1 trace: ${await cartTrace(tab1)}\ntab 2 trace: ${await cartTrace(tab2)}`);
    throw err;
  }
  assert.equal(after2.version, after1.version);

  // Quantity inputs are debounced: typing "12" sends one update, which the other tab then shows.
  const puts = [];
  tab2.on('request', (req) => { if (req.method() === 'PUT' && req.url().includes('/items/')) puts.push(req.url()); });
  const qty = tab2.locator(`.cart-line[data-product-id="${tee.id}"] [data-testid=line-qty]`);
  await qty.click();
  await qty.press('ControlOrMeta+a');
  await qty.pressSequentially('12', { delay: 90 });
  await tab1.locator('[data-testid=cart-link][data-count="13"]').waitFor({ timeout: 10000 });
  await new Promise((r) => setTimeout(r, 800));
  assert.equal(puts.length, 1, `typing "12" sends one update, not ${puts.length}`);

  await waitFor(async () => (await counters(tab2)).count === 13, { what: 'tab 2 to show 13 items' });
  for (const page of [tab1, tab2]) {
    await assertNotReloaded(page);
    assert.deepEqual(page.errors, []);
  }
  await go(tab1, '#/cart');
  await tab1.locator(`.cart-line[data-product-id="${tee.id}"] [data-testid=line-qty]`).waitFor();
  await screenshot(tab1, '2-cart-tab1');
  await screenshot(tab2, '2-cart-tab2');
});
