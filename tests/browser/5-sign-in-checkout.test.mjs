// 5. Sign-in and checkout: a guest's cart merges into the user's cart at sign-in (the other tab
//    follows), checkout places the order with the cart, and the cart empties live once it is confirmed.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  assertNotReloaded, createProduct, go, launchBrowser, newContext, openPage, screenshot, signIn, waitConnected,
} from './helpers.mjs';

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

test('a guest cart merges at sign-in and checks out', async () => {
  const product = await createProduct({ name: 'Merge Beanie', stock: 20, price_cents: 1900 });
  const context = await newContext(browser);
  const tab1 = await openPage(context, `#/products/${product.id}`);
  await waitConnected(tab1);
  await tab1.fill('[data-testid=buy-qty]', '2');
  await tab1.locator('[data-testid=add-to-cart]:not([disabled])').click();
  await tab1.locator('[data-testid=cart-link][data-count="2"]').waitFor();
  const tab2 = await openPage(context, '#/cart');
  await tab2.locator(`.cart-line[data-product-id="${product.id}"]`).waitFor();

  await signIn(tab1, 'bob'); // the guest cart folds into bob's cart; tab 2 signs in with it (same browser)
  await tab1.locator('[data-testid=cart-link][data-count="2"]').waitFor({ timeout: 10000 });
  await tab2.waitForFunction(() => document.querySelector('[data-testid=sign-in]').value === 'bob');
  await tab2.locator(`.cart-line[data-product-id="${product.id}"] [data-testid=line-qty]`).waitFor({ timeout: 10000 });
  assert.equal(await tab2.locator('[data-testid=line-qty]').inputValue(), '2');

  await go(tab1, '#/cart');
  await tab1.click('[data-testid=checkout]');
  await tab1.waitForURL(/#\/orders\/\d+$/);
  await tab1.locator('[data-testid=order-status][data-status=confirmed]').waitFor({ timeout: 20000 });
  // the confirmed order empties the cart it came from, in every tab
  await tab1.locator('[data-testid=cart-link][data-count="0"]').waitFor({ timeout: 15000 });
  await tab2.locator('[data-testid=cart-view] .empty').waitFor({ timeout: 15000 });
  for (const page of [tab1, tab2]) {
    await assertNotReloaded(page);
    assert.deepEqual(page.errors, []);
  }
  await screenshot(tab1, '5-checkout-order-confirmed');
  await screenshot(tab2, '5-checkout-other-tab-cart-emptied');
});
