// End-to-end test of the no-code product builder (#/builder) in Debian's Chromium, driven by
// playwright-core.
//
// Needs a running `canopy serve` over a freshly built example mesh (acme) and two tokens:
//   CANOPY_URL=http://127.0.0.1:PORT  TOKEN_BOB=…  TOKEN_DANA=…
//   SCREENSHOT_DIR=/some/dir (optional; default: a new temp folder)  CHROMIUM=/usr/bin/chromium (optional)
//   node --test builder.test.mjs
//
// The story: bob (a member of sales without the pii clearance) draws sales_by_region_<stamp>
// without writing SQL — two sources, a join, a filter, a derived column picked from the function
// list, an aggregate and an output port — sees email masked in the join's preview and an_email
// classified pii from its lineage, reviews the files as diffs, saves, builds it from the page
// and follows the link to its product page. dana (no member of sales) opens bob's flow: it is
// read-only, and trying to save it anyway shows the server's 403 message and hint. Each run
// names the product afresh, so it can run again on the same server. Every wait is bounded
// (10 s); the whole test at 90 s.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { STEP_TIMEOUT, launch, screenshot, sel, signIn as signInAs } from './support.mjs';

const BASE = (process.env.CANOPY_URL || '').replace(/\/+$/, '');
const TOKENS = { bob: process.env.TOKEN_BOB, dana: process.env.TOKEN_DANA };
const SHOTS = process.env.SCREENSHOT_DIR || mkdtempSync(join(tmpdir(), 'canopy-shots-'));
const PRODUCT = `sales_by_region_${Date.now().toString(36)}`;
const ADDRESS = `sales.${PRODUCT}`;

let context;
let page;
let profileDir;
const pageErrors = [];

const signIn = (who) => signInAs(page, BASE, who, TOKENS[who]);
const shot = (name, locator) => screenshot(page, SHOTS, name, locator);

// Adds a block of `type` (reading the selected block) and waits for its box on the canvas.
async function addBlock(type) {
  const before = Number(await page.locator(sel('flow-canvas')).getAttribute('data-blocks'));
  await page.locator(sel(`add-${type}`)).click();
  await page.locator(`${sel('flow-canvas')}[data-blocks="${before + 1}"]`).waitFor();
  const editor = page.locator(`${sel('block-editor')}[data-type="${type}"]`);
  await editor.waitFor();
  return editor.getAttribute('data-block');
}

async function selectBlock(id) {
  await page.locator(sel(`block-${id}`)).click();
  await page.locator(`${sel('block-editor')}[data-block="${id}"]`).waitFor();
}

// Waits until the block's preview has rows (or fails with the server's message).
async function previewOk(id) {
  const preview = page.locator(`${sel('block-preview')}[data-block="${id}"]`);
  await preview.locator('xpath=self::*[@data-state="ok" or @data-state="error"]').waitFor();
  if ((await preview.getAttribute('data-state')) === 'error') {
    assert.fail(`preview of ${id} failed: ${await preview.locator(sel('preview-error')).innerText()}`);
  }
  return preview;
}

before(async () => {
  assert.ok(BASE, 'set CANOPY_URL to the address of `canopy serve`, e.g. http://127.0.0.1:8080');
  for (const [who, t] of Object.entries(TOKENS)) assert.ok(t, `set TOKEN_${who.toUpperCase()} (canopy token create ${who})`);
  mkdirSync(SHOTS, { recursive: true });
  ({ context, page, profileDir } = await launch());
  page.on('pageerror', (e) => pageErrors.push(e.message));
});

after(async () => {
  await context?.close().catch(() => {});
  if (profileDir) rmSync(profileDir, { recursive: true, force: true });
  console.log(`screenshots in ${SHOTS}; product ${ADDRESS}`);
});

test('canopy product builder', { timeout: 90_000 }, async (t) => {
  await t.test('bob draws a product from blocks, without writing SQL', async () => {
    await signIn('bob');
    await page.locator(sel('nav-builder')).click();
    await page.locator(`${sel('page-builder')}[data-mode="new"]`).waitFor();
    assert.equal(await page.locator(sel('builder-domain')).inputValue(), 'sales', 'bob builds in his domain');
    await page.locator(sel('product-name')).fill(PRODUCT);
    await page.locator(sel('product-purpose')).fill('Net sales and order counts per customer region, for the weekly sales review.');

    // Two sources; each shows its columns with their classification and what is masked for bob.
    assert.equal(await addBlock('source'), 'source');
    await page.locator(sel('source-port')).selectOption('sales.orders');
    await page.locator(`${sel('block-editor')}[data-block="orders"]`).waitFor();
    await addBlock('source');
    await page.locator(sel('source-port')).selectOption('customers.customers');
    await page.locator(`${sel('block-editor')}[data-block="customers"]`).waitFor();
    assert.equal(await page.locator(sel('source-column-email')).getAttribute('data-masked'), 'true', 'the palette says email is masked for bob');

    // Join orders with customers on customer_id.
    await selectBlock('orders');
    assert.equal(await addBlock('join'), 'joined');
    await page.locator(sel('join-right')).selectOption('customers');
    await page.locator(sel('join-add-key')).click();
    await page.locator(sel('join-key-left-0')).selectOption('customer_id');
    await page.locator(sel('join-key-right-0')).selectOption('customer_id');
    await page.locator(`${sel('edge-customers-joined')}`).waitFor({ state: 'attached' });

    // The join's preview runs as bob: email is masked, and marked so; no address shows.
    const preview = await previewOk('joined');
    const grid = preview.locator(sel('preview-grid'));
    await grid.waitFor();
    assert.equal(await grid.locator(sel('col-email')).getAttribute('data-masked'), 'true', 'email is marked masked');
    await grid.locator(sel('masked-email')).waitFor();
    assert.equal(await grid.locator(sel('col-order_status')).getAttribute('data-masked'), 'false');
    const emailCol = await headerIndex(grid, 'email');
    const emailCells = grid.locator(`tbody tr td:nth-child(${emailCol + 1})`);
    assert.ok((await emailCells.count()) > 0, 'the join has rows');
    for (const cls of await emailCells.evaluateAll((tds) => tds.map((td) => td.className))) assert.match(cls, /masked-cell/);
    const cells = await grid.locator('tbody td').allInnerTexts();
    assert.ok(cells.length > 0);
    assert.ok(!cells.some((c) => c.includes('@')), 'no cell of the preview holds an e-mail address');
    assert.match(await preview.locator(sel('preview-masked')).innerText(), /customers\.customers\.email/);
    assert.match(await preview.locator(sel('preview-row-count')).innerText(), /\d+ rows/);
    await shot('builder-preview-masked.png', preview);

    // The profile: nulls, distinct values, and a histogram of a number column.
    await preview.locator(sel('preview-tab-profile')).click();
    await preview.locator(sel('profile-net_amount')).waitFor();
    assert.ok((await preview.locator(`${sel('hist-net_amount')} rect`).count()) === 10, 'ten bins');
    // It says which rows its figures are over (the first 50,000 of a larger block).
    assert.match(await preview.locator(sel('profile-sample')).innerText(), /over all [\d,]+ rows/);
    await preview.locator(sel('preview-tab-rows')).click();

    // Keep the orders that are not cancelled.
    assert.equal(await addBlock('filter'), 'filtered');
    await page.locator(sel('cond-column-c-0')).selectOption('order_status');
    await page.locator(sel('cond-op-c-0')).selectOption('!=');
    await page.locator(sel('cond-value-c-0')).fill('cancelled');
    await previewOk('filtered');

    // A derived column, picked from the function list: upper(email).
    assert.equal(await addBlock('derive'), 'derived');
    await page.locator(sel('derive-name')).fill('email_upper');
    await page.locator(sel('fn-select')).selectOption('upper');
    await page.locator(sel('fn-arg-0')).selectOption('email');
    await page.locator(sel('fn-insert')).click();
    assert.equal(await page.locator(sel('derive-expression')).inputValue(), 'upper(email)');
    await page.locator(sel('derive-ok')).waitFor();
    await previewOk('derived');

    // Net sales, orders and one (masked) e-mail per region.
    assert.equal(await addBlock('aggregate'), 'aggregated');
    await page.locator(sel('group-by-region')).check();
    const measures = [
      ['sum', 'net_amount', 'net_sales'],
      ['count', '', 'orders'],
      ['max', 'email_upper', 'an_email'],
    ];
    for (const [i, [fn, column, as]] of measures.entries()) {
      await page.locator(sel('add-measure')).click();
      await page.locator(sel(`measure-fn-${i}`)).selectOption(fn);
      if (column) await page.locator(sel(`measure-col-${i}`)).selectOption(column);
      await page.locator(sel(`measure-as-${i}`)).fill(as);
    }
    const aggregated = await previewOk('aggregated');
    assert.deepEqual(
      await aggregated.locator(`${sel('preview-grid')} thead th .col-name`).allInnerTexts(),
      ['region', 'net_sales', 'orders', 'an_email'],
    );

    // The output port: an_email is pii by its lineage (from customers.customers.email).
    assert.equal(await addBlock('output'), 'output');
    assert.equal(await page.locator(sel('output-name')).inputValue(), PRODUCT, 'the port is named after the product');
    await page.locator(sel('output-description')).fill('Net sales and orders per region.');
    const lineage = page.locator(sel('out-lineage-an_email'));
    await page.locator(`${sel('out-lineage-an_email')}[data-classification="pii"]`).waitFor();
    assert.match(await lineage.innerText(), /pii\s+— from customers\.customers\.email/);
    assert.equal(await page.locator(sel('out-lineage-region')).getAttribute('data-classification'), 'internal');
    for (const [col, text] of [
      ['region', 'Sales region of the customer'],
      ['net_sales', 'Net amount of the orders not cancelled, in EUR'],
      ['orders', 'Orders not cancelled'],
      ['an_email', 'One customer e-mail of the region, in capitals'],
    ]) {
      await page.locator(sel(`out-desc-${col}`)).fill(text);
    }
    await page.locator(sel('out-required-region')).check();
    await page.locator(sel('out-unique-region')).check();
    await page.locator(sel('quality-add')).click(); // rowCount > 0
    await page.locator(sel('quality-add')).click();
    await page.locator(sel('quality-metric-1')).selectOption('nullValues');
    await page.locator(sel('quality-column-1')).selectOption('net_sales');
    await page.locator(sel('quality-op-1')).selectOption('mustBe');
    await page.locator(sel('quality-value-1')).fill('0');
    await previewOk('output');
    assert.equal(await page.locator(`${sel('flow-canvas')} .flow-block`).count(), 7, 'seven blocks on the canvas');
    assert.equal(await page.locator(`${sel('flow-canvas')} path.edge`).count(), 6, 'six wires');
    await page.evaluate(() => window.scrollTo(0, 0));
    await shot('builder-canvas.png');
  });

  await t.test('bob reviews the files as diffs and saves', async () => {
    await page.locator(sel('review-save')).click();
    const review = page.locator(`${sel('review-panel')}[data-state="ok"]`);
    await review.waitFor();
    const files = review.locator('details.file-diff');
    const paths = await files.evaluateAll((ds) => ds.map((d) => d.dataset.path));
    for (const p of [
      `domains/sales/products/${PRODUCT}.yaml`,
      `domains/sales/products/${PRODUCT}.flow.json`,
      `domains/sales/sql/${PRODUCT}/joined.sql`,
      `domains/sales/sql/${PRODUCT}/aggregated.sql`,
    ]) {
      assert.ok(paths.includes(p), `the review lists ${p} (it lists ${paths.join(', ')})`);
    }
    for (const status of await files.evaluateAll((ds) => ds.map((d) => d.dataset.status))) assert.equal(status, 'new');
    const yaml = review.locator(`details[data-path="domains/sales/products/${PRODUCT}.yaml"]`);
    assert.equal(await yaml.locator('tr.line-del').count(), 0, 'a new file only adds lines');
    const added = await yaml.locator('tr.line-add').allInnerTexts();
    assert.ok(added.some((l) => /classification: pii/.test(l)), 'the contract classifies a column pii');
    assert.ok(added.some((l) => /owner: bob/.test(l)));
    const sql = await review.locator(`details[data-path="domains/sales/sql/${PRODUCT}/derived.sql"] tr.line-add`).allInnerTexts();
    assert.ok(sql.some((l) => /upper\(email\)/.test(l)), 'the derived model holds the expression');
    await shot('builder-diff.png', review);

    await page.locator(sel('save-product')).click();
    const ok = page.locator(sel('save-ok'));
    await ok.waitFor();
    assert.match(await ok.innerText(), new RegExp(`Saved ${ADDRESS}`));
    assert.equal(await page.locator(sel('page-builder')).getAttribute('data-mode'), 'existing');
    assert.equal(new URL(page.url()).hash, `#/builder/sales/${PRODUCT}`);
  });

  await t.test('bob builds it from the page and opens it in the marketplace', async () => {
    const build = page.locator(sel('build-product'));
    await build.scrollIntoViewIfNeeded();
    await build.click();
    await page.locator(sel('build-progress')).waitFor();
    const row = page.locator(`${sel(`build-row-${ADDRESS}`)}`);
    await row.waitFor();
    await page.locator(`${sel(`build-row-${ADDRESS}`)}[data-status="published"]`).waitFor();
    await page.locator(`${sel('build-done')}[data-ok="true"]`).waitFor();
    // Every step the server streamed is listed, in order.
    const steps = await page.locator(`${sel('build-steps')} li`).allInnerTexts();
    assert.ok(steps.length >= 4, `the build's steps are shown (${steps.join(' / ')})`);
    assert.equal(steps[0], 'reading inputs');
    assert.equal(steps[steps.length - 1], 'publishing');
    const checks = page.locator(`${sel('build-checks')} tbody tr`);
    assert.ok((await checks.count()) >= 2, 'the contract checks are listed');
    assert.equal(await page.locator(`${sel('build-checks')} tbody tr[data-passed="false"]`).count(), 0, 'every check passes');
    await shot('builder-build.png', page.locator(sel('build-panel')));

    await page.locator(sel('build-product-link')).click();
    await page.locator(`${sel('page-product')}[data-product="${ADDRESS}"]`).waitFor();
    await page.locator(`${sel('header-freshness')}[data-status="fresh"]`).waitFor();
    await page.locator(sel('open-in-builder')).waitFor();
  });

  await t.test('dana, not a member of sales, cannot save it', async () => {
    await signIn('dana');
    // Her own builder: she belongs to no domain, so there is nowhere to save.
    await page.locator(sel('nav-builder')).click();
    await page.locator(sel('builder-no-domain')).waitFor();
    // bob's flow opens read-only, with the reason; saving it anyway is refused by the server.
    await page.goto(`${BASE}/#/builder/sales/${PRODUCT}`);
    await page.locator(`${sel('page-builder')}[data-read-only="true"]`).waitFor();
    assert.match(await page.locator(sel('builder-read-only')).innerText(), /only members of sales may change it/);
    assert.equal(await page.locator(`${sel('flow-canvas')} .flow-block`).count(), 7, 'she sees the whole flow');
    await page.locator(sel('review-save')).click();
    const error = page.locator(sel('review-error'));
    await error.waitFor();
    assert.match(await error.innerText(), /user:dana may not save products in sales: only its members may/);
    assert.match(await page.locator(sel('review-error-hint')).innerText(), /ask an owner of sales \(alice\)/);
    assert.equal(await page.locator(sel('save-product')).count(), 0, 'nothing to save');
  });

  assert.deepEqual(pageErrors, [], 'no uncaught errors in the page');
});

async function headerIndex(grid, name) {
  const names = await grid.locator('thead th').evaluateAll((ths) => ths.map((th) => th.getAttribute('data-testid')));
  const i = names.indexOf(`col-${name}`);
  assert.ok(i >= 0, `column ${name} in the grid`);
  return i;
}
