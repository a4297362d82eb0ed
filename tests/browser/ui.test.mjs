// End-to-end test of the Canopy web UI in Debian's Chromium, driven by playwright-core.
//
// Needs a running `canopy serve` over a freshly built example mesh (acme) and three tokens:
//   CANOPY_URL=http://127.0.0.1:PORT  TOKEN_ZOE=…  TOKEN_ALICE=…  TOKEN_DANA=…
//   SCREENSHOT_DIR=/some/dir (optional; default: a new temp folder)  CHROMIUM=/usr/bin/chromium (optional)
//   node --test ui.test.mjs
//
// The story: zoe finds sales.orders, cannot read it and asks for access; alice (owner of sales)
// approves it in her inbox; zoe queries sales.orders and charts the result; dana (an analyst
// without the pii clearance) sees customers.customers' sample rows with masked columns marked, and
// follows a column of finance.revenue_by_region back to the sales port it is computed from.
// Every wait is bounded; the whole test is bounded at 60 s.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';

const BASE = (process.env.CANOPY_URL || '').replace(/\/+$/, '');
const TOKENS = { zoe: process.env.TOKEN_ZOE, alice: process.env.TOKEN_ALICE, dana: process.env.TOKEN_DANA };
const SHOTS = process.env.SCREENSHOT_DIR || mkdtempSync(join(tmpdir(), 'canopy-shots-'));
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const STEP_TIMEOUT = 10_000;
const PURPOSE = 'Weekly APAC sales report for the regional leads (browser test)';

let context;
let page;
let profileDir;
const pageErrors = [];

function sel(testid) {
  return `[data-testid="${testid}"]`;
}

async function apiCall(method, path, token) {
  const res = await fetch(`${BASE}${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(STEP_TIMEOUT),
  });
  return res.status;
}

// Sign in through the UI (signing out first if someone is signed in).
async function signIn(who) {
  await page.goto(`${BASE}/#/`, { timeout: STEP_TIMEOUT });
  const form = page.locator(sel('signin-form'));
  const out = page.locator(sel('sign-out'));
  await form.or(out).first().waitFor({ timeout: STEP_TIMEOUT });
  if (await out.isVisible()) await signOut();
  await page.locator(sel('token-input')).fill(TOKENS[who]);
  await page.locator(sel('signin-submit')).click();
  await page.locator(`${sel('whoami')}[data-principal="user:${who}"]`).waitFor({ timeout: STEP_TIMEOUT });
}

async function signOut() {
  await page.locator(sel('sign-out')).click();
  await page.locator(sel('signin-form')).waitFor({ timeout: STEP_TIMEOUT });
  assert.equal(await page.evaluate(() => sessionStorage.getItem('canopy.token')), null, 'sign-out forgets the token');
}

async function shot(name) {
  await page.screenshot({ path: join(SHOTS, name), timeout: STEP_TIMEOUT });
}

before(async () => {
  assert.ok(BASE, 'set CANOPY_URL to the address of `canopy serve`, e.g. http://127.0.0.1:8080');
  for (const [who, t] of Object.entries(TOKENS)) assert.ok(t, `set TOKEN_${who.toUpperCase()} (canopy token create ${who})`);
  mkdirSync(SHOTS, { recursive: true });
  // Start from a known state: zoe holds no grant on sales.orders (a previous run may have left one).
  await apiCall('DELETE', '/api/v1/grants?product=sales.orders&grantee=user:zoe', TOKENS.alice);
  profileDir = mkdtempSync(join(tmpdir(), 'canopy-chromium-'));
  context = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    timeout: 20_000,
    viewport: { width: 1280, height: 800 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  context.setDefaultTimeout(STEP_TIMEOUT);
  context.setDefaultNavigationTimeout(STEP_TIMEOUT);
  page = context.pages()[0] || (await context.newPage());
  page.on('pageerror', (e) => pageErrors.push(e.message));
});

after(async () => {
  await context?.close().catch(() => {});
  if (profileDir) rmSync(profileDir, { recursive: true, force: true });
  // Leave the catalog as we found it, so the test can run again on the same server.
  if (BASE && TOKENS.alice) await apiCall('DELETE', '/api/v1/grants?product=sales.orders&grantee=user:zoe', TOKENS.alice).catch(() => {});
  console.log(`screenshots in ${SHOTS}`);
});

test('canopy web ui', { timeout: 60_000 }, async (t) => {
  await t.test('an invalid or revoked token is refused with a clear message', async () => {
    await page.goto(`${BASE}/#/`);
    await page.locator(sel('token-input')).fill('not-a-real-token');
    await page.locator(sel('signin-submit')).click();
    const err = page.locator(sel('signin-error'));
    await err.waitFor();
    assert.match(await err.innerText(), /not accepted/i);
    // A session whose token stops working (revoked, expired) goes back to sign-in and says why.
    await page.evaluate(() => sessionStorage.setItem('canopy.token', 'revoked-token'));
    await page.reload();
    const msg = page.locator(sel('signin-message'));
    await msg.waitFor();
    assert.match(await msg.innerText(), /no longer accepted/i);
    assert.equal(await page.evaluate(() => sessionStorage.getItem('canopy.token')), null);
  });

  await t.test('zoe finds sales.orders, cannot read it, and requests access', async () => {
    await signIn('zoe');
    await page.locator(sel('product-list')).waitFor();
    await page.locator(sel('search-input')).fill('orders');
    await page.locator(sel('result-count')).filter({ hasText: 'matching' }).waitFor();
    const card = page.locator(sel('product-card-sales.orders'));
    await card.waitFor();
    assert.equal(await card.getAttribute('data-can-read'), 'false');
    await page.locator(sel('freshness-sales.orders')).waitFor();
    await shot('marketplace.png');

    await page.locator(sel('product-link-sales.orders')).click();
    await page.locator(`${sel('page-product')}[data-product="sales.orders"]`).waitFor();
    await page.locator(sel('access-denied-notice')).waitFor();
    assert.equal(await page.locator(sel('header-access')).getAttribute('data-can-read'), 'false');
    await shot('product.png');

    await page.locator(sel('request-access')).click();
    await page.locator(sel('request-purpose')).fill(PURPOSE);
    await page.locator(sel('request-submit')).click();
    const sent = page.locator(sel('request-sent'));
    await sent.waitFor();
    assert.match(await sent.innerText(), /pending/);
    await signOut();
    assert.match(await page.locator(sel('signin-message')).innerText(), /signed out/i);
  });

  await t.test('alice approves the request in her inbox', async () => {
    await signIn('alice');
    await page.locator(sel('nav-access')).click();
    await page.locator(sel('inbox')).waitFor();
    const row = page
      .locator('[data-testid^="inbox-row-"][data-requester="user:zoe"][data-product="sales.orders"]')
      .filter({ hasText: PURPOSE })
      .first();
    await row.waitFor();
    const id = (await row.getAttribute('data-testid')).replace('inbox-row-', '');
    await row.locator(sel(`note-${id}`)).fill('Approved for the APAC report');
    await shot('access-inbox.png');
    await row.locator(sel(`approve-${id}`)).click();
    await page.locator(`${sel(`request-row-${id}`)}[data-status="approved"]`).waitFor();
    await signOut();
  });

  await t.test('zoe queries sales.orders and charts the result', async () => {
    await signIn('zoe');
    await page.locator(sel('nav-query')).click();
    const sql = page.locator(sel('sql-input'));
    await sql.fill(
      "select date_trunc('month', order_date) as month, count(*) as orders, sum(net_amount) as net_amount " +
        'from sales.orders group by 1 order by 1',
    );
    await sql.press('Control+Enter');
    await page.locator(sel('result-grid')).waitFor();
    assert.match(await page.locator(sel('row-count')).innerText(), /^\d+ rows?$/);
    assert.ok((await page.locator(`${sel('result-grid')} tbody tr`).count()) > 0, 'the query returns rows');

    await page.locator(sel('make-chart')).click();
    await page.locator(sel('chart-x')).selectOption('month');
    await page.locator(sel('chart-y')).selectOption('net_amount');
    await page.locator(sel('chart-mark-bar')).click();
    await page.locator(`${sel('chart')}[data-mark="bar"] svg .mark-rect path`).first().waitFor();
    await page.locator(sel('chart-panel')).scrollIntoViewIfNeeded();
    await shot('query-chart.png');
    await signOut();
  });

  await t.test('dana sees masked sample rows of customers.customers', async () => {
    await signIn('dana');
    await page.goto(`${BASE}/#/products/customers/customers`);
    await page.locator(`${sel('page-product')}[data-product="customers.customers"]`).waitFor();
    await page.locator(sel('tab-sample')).click();
    const grid = page.locator(sel('sample-grid'));
    await grid.waitFor();
    const email = grid.locator(sel('col-email'));
    assert.equal(await email.getAttribute('data-masked'), 'true', 'email is marked as masked');
    await grid.locator(sel('masked-email')).waitFor();
    assert.equal(await grid.locator(sel('col-customer_id')).getAttribute('data-masked'), 'false');
    const firstEmail = await grid.locator('tbody tr').first().locator('td').nth(await headerIndex(grid, 'email')).innerText();
    assert.match(firstEmail, /^h_[0-9a-f]{16}$/, 'pii is hashed');
    await signOut();
  });

  await t.test('dana follows a column of finance.revenue_by_region to its sources', async () => {
    await signIn('dana');
    await page.goto(`${BASE}/#/products/finance/revenue_by_region`);
    await page.locator(`${sel('page-product')}[data-product="finance.revenue_by_region"]`).waitFor();
    await page.locator(sel('tab-lineage')).click();
    await page.locator(sel('lineage-graph')).waitFor();
    const cogs = page.locator(sel('column-lineage-finance.revenue_by_region.cogs'));
    await cogs.waitFor();
    assert.match(await cogs.innerText(), /sales\.order_lines\.quantity \(aggregation\)/, 'cogs comes from sales');
    await shot('column-lineage.png');
    await signOut();
  });

  assert.deepEqual(pageErrors, [], 'no uncaught errors in the page');
});

async function headerIndex(grid, name) {
  const names = await grid.locator('thead th').evaluateAll((ths) => ths.map((th) => th.getAttribute('data-testid')));
  const i = names.indexOf(`col-${name}`);
  assert.ok(i >= 0, `column ${name} in the grid`);
  return i;
}
