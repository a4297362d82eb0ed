// End-to-end test of dashboards (#/dashboards/{domain}/{name}) in Debian's Chromium, driven by
// playwright-core.
//
// Needs a running `canopy serve` over a freshly built example mesh (acme) and four tokens:
//   CANOPY_URL=http://127.0.0.1:PORT  TOKEN_BOB=…  TOKEN_DANA=…  TOKEN_ALICE=…  TOKEN_ZOE=…
//   SCREENSHOT_DIR=/some/dir (optional; default: a new temp folder)  CHROMIUM=/usr/bin/chromium (optional)
//   node --test dashboard.test.mjs
//
// The story: bob (a member of sales without the pii clearance) builds weekly_review_<stamp> in the
// query console from three saved charts — net sales per customer e-mail (sales.orders joined with
// customers.customers), orders per status (sales.orders) and products per category
// (sales.products) — the first creating the dashboard, the others added to it; then he widens a
// tile and retitles another on the dashboard page and saves. dana (no pii clearance) sees the
// e-mail tile masked and marked, no address in it; alice (the domain's owner, pii clearance) sees
// the addresses; the marketplace lists the dashboard and sales.orders' lineage shows it; zoe (no
// grants) sees the tiles over customers.customers and sales.orders denied, with the hint and a
// request-access form she sends, and the sales.products tile drawn. Each run names the dashboard
// afresh, so it runs again on the same server. Every wait is bounded (10 s); the whole test at 90 s.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { STEP_TIMEOUT, launch, screenshot, sel, signIn as signInAs } from './support.mjs';

const BASE = (process.env.CANOPY_URL || '').replace(/\/+$/, '');
const TOKENS = { bob: process.env.TOKEN_BOB, dana: process.env.TOKEN_DANA, alice: process.env.TOKEN_ALICE, zoe: process.env.TOKEN_ZOE };
const SHOTS = process.env.SCREENSHOT_DIR || mkdtempSync(join(tmpdir(), 'canopy-shots-'));
const DASHBOARD = `weekly_review_${Date.now().toString(36)}`;
const ADDRESS = `sales.${DASHBOARD}`;

// The charts bob saves, in order: [title, the chart name derived from it, SQL].
const CHARTS = [
  [
    'Net sales per customer e-mail',
    'net_sales_per_customer_e_mail',
    'select c.email, sum(o.net_amount) as net_sales from sales.orders o join customers.customers c on c.customer_id = o.customer_id group by c.email order by net_sales desc limit 10',
  ],
  ['Orders per status', 'orders_per_status', 'select order_status, count(*) as orders from sales.orders group by order_status order by order_status'],
  ['Products per category', 'products_per_category', 'select category, count(*) as products from sales.products group by category order by category'],
];
const [EMAILS, STATUS, CATALOG] = CHARTS.map((c) => c[1]);

let context;
let page;
let profileDir;
const pageErrors = [];

const signIn = (who) => signInAs(page, BASE, who, TOKENS[who]);
const shot = (name, locator) => screenshot(page, SHOTS, name, locator);

// Runs `sql` in the console, draws the default chart of its result and opens "Save chart".
async function chartInConsole(sql) {
  // Through the marketplace, so that the console starts without the previous result.
  await page.locator(sel('nav-marketplace')).click();
  await page.locator(sel('page-marketplace')).waitFor();
  await page.locator(sel('nav-query')).click();
  await page.locator(sel('page-query')).waitFor();
  assert.equal(await page.locator(sel('query-result')).count(), 0);
  await page.locator(sel('sql-input')).fill(sql);
  await page.locator(sel('run-query')).click();
  await page.locator(sel('query-result')).or(page.locator(sel('query-error'))).first().waitFor();
  if (await page.locator(sel('query-error')).isVisible()) assert.fail(`the query failed: ${await page.locator(sel('query-error')).innerText()}`);
  await page.locator(sel('make-chart')).click();
  await page.locator(`${sel('chart')}[data-drawn="true"] svg`).waitFor();
  await page.locator(sel('save-chart')).click();
  const form = page.locator(sel('save-chart-form'));
  await form.locator(`${sel('save-chart-dashboard')}, ${sel('save-chart-no-domain')}`).first().waitFor();
  return form;
}

async function saveChart(form, title, name) {
  await form.locator(sel('save-chart-title')).fill(title);
  assert.equal(await form.locator(sel('save-chart-name')).inputValue(), name, 'the chart name is derived from the title');
  await form.locator(sel('save-chart-submit')).click();
  try {
    await form.locator(sel('save-chart-saved')).waitFor();
  } catch (e) {
    const error = form.locator(sel('save-chart-error'));
    if (await error.isVisible()) assert.fail(`the save was refused: ${await error.innerText()}`);
    throw e;
  }
}

async function openDashboard() {
  await page.goto(`${BASE}/#/dashboards/sales/${DASHBOARD}`);
  await page.locator(`${sel('page-dashboard')}[data-dashboard="${ADDRESS}"]`).waitFor();
}

// Waits until the tile has run (or been denied) and returns it with its state.
async function tile(name) {
  const t = page.locator(sel(`tile-${name}`));
  await t.locator('xpath=self::*[@data-state="ok" or @data-state="denied" or @data-state="refused" or @data-state="error"]').waitFor();
  return { t, state: await t.getAttribute('data-state') };
}

before(async () => {
  assert.ok(BASE, 'set CANOPY_URL to the address of `canopy serve`, e.g. http://127.0.0.1:8080');
  for (const [who, t] of Object.entries(TOKENS)) assert.ok(t, `set TOKEN_${who.toUpperCase()} (canopy token create ${who})`);
  mkdirSync(SHOTS, { recursive: true });
  // zoe holds no grant on sales.orders (ui.test.mjs grants one for a while, and takes it back).
  await fetch(`${BASE}/api/v1/grants?product=sales.orders&grantee=user:zoe`, {
    method: 'DELETE',
    headers: { Authorization: `Bearer ${TOKENS.alice}` },
    signal: AbortSignal.timeout(STEP_TIMEOUT),
  });
  ({ context, page, profileDir } = await launch());
  page.on('pageerror', (e) => pageErrors.push(e.message));
});

after(async () => {
  await context?.close().catch(() => {});
  if (profileDir) rmSync(profileDir, { recursive: true, force: true });
  console.log(`screenshots in ${SHOTS}; dashboard ${ADDRESS}`);
});

test('canopy dashboards', { timeout: 90_000 }, async (t) => {
  await t.test('bob builds a dashboard from charts saved in the query console', async () => {
    await signIn('bob');

    // The first chart creates the dashboard: net sales per (masked, for bob) customer e-mail.
    let form = await chartInConsole(CHARTS[0][2]);
    assert.match(await page.locator(sel('masked-summary')).innerText(), /email/, 'the console marks email masked for bob');
    await form.locator(sel('save-chart-dashboard')).selectOption('__new__');
    // A dashboard named like a product of sales does not validate: the server's diagnostics show.
    await form.locator(sel('save-chart-new-name')).fill('orders');
    await form.locator(sel('save-chart-title')).fill(CHARTS[0][0]);
    await form.locator(sel('save-chart-submit')).click();
    const refused = form.locator(sel('save-chart-error-diagnostic-0'));
    await refused.waitFor();
    assert.match(await refused.innerText(), /domains\/sales\/dashboards\/orders\.yaml.*has the name of a product of sales/s);
    await form.locator(sel('save-chart-new-name')).fill(DASHBOARD);
    assert.equal(await form.locator(sel('save-chart-new-domain')).inputValue(), 'sales', 'bob saves in his domain');
    await form.locator(sel('save-chart-purpose')).fill('Who buys most, order statuses and the catalog, for the weekly sales review.');
    await saveChart(form, CHARTS[0][0], EMAILS);
    assert.match(await form.locator(sel('save-chart-saved')).innerText(), new RegExp(`Created ${ADDRESS.replace('.', '\\.')}`));
    await shot('query-save-chart.png', form);

    // The others are added to it: the form offers the dashboard saved to last.
    for (const [title, name, sql] of CHARTS.slice(1)) {
      form = await chartInConsole(sql);
      assert.equal(await form.locator(sel('save-chart-dashboard')).inputValue(), ADDRESS, 'the form remembers the dashboard');
      await saveChart(form, title, name);
      assert.match(await form.locator(sel('save-chart-saved')).innerText(), new RegExp(`Added to ${ADDRESS.replace('.', '\\.')}`));
    }

    // Its page: three tiles laid out on two columns, at the first free cells.
    await form.locator(sel('save-chart-open')).click();
    await page.locator(`${sel('page-dashboard')}[data-dashboard="${ADDRESS}"]`).waitFor();
    assert.equal(await page.locator(sel('dashboard-owner')).innerText(), 'bob');
    assert.equal(await page.locator(sel('dashboard-grid')).getAttribute('data-columns'), '2');
    const places = [];
    for (const name of [EMAILS, STATUS, CATALOG]) {
      const { t: tl, state } = await tile(name);
      assert.equal(state, 'ok', `bob's tile ${name} runs`);
      places.push(`${await tl.getAttribute('data-x')},${await tl.getAttribute('data-y')}`);
    }
    assert.deepEqual(places, ['0,0', '1,0', '0,1']);

    // Edit: widen the catalog tile to both columns, retitle the status tile, write how to use
    // it, tag it, give it a filter on the order status, save.
    await page.locator(sel('dashboard-edit')).click();
    await page.locator(sel(`tile-wider-${CATALOG}`)).click();
    await page.locator(sel(`tile-title-input-${STATUS}`)).fill('Orders per status, all channels');
    await page.locator(sel('dashboard-usage')).fill('Pick an order status to see its orders alone.');
    await page.locator(sel('dashboard-tags')).fill('sales, weekly-review');
    await page.locator(sel('dashboard-filter-add')).click();
    await page.locator(sel('dashboard-filter-column-0')).fill('order_status');
    await page.locator(sel('dashboard-filter-label-0')).fill('Order status');
    assert.equal(await page.locator(sel('dashboard-filter-name-0')).inputValue(), 'order_status', 'the name follows the column');
    await shot('dashboard-edit.png');
    await page.locator(sel('dashboard-save')).click();
    await page.locator(sel('dashboard-saved')).or(page.locator(sel('dashboard-save-error'))).first().waitFor();
    if (await page.locator(sel('dashboard-save-error')).isVisible()) assert.fail(await page.locator(sel('dashboard-save-error')).innerText());
    await page.locator(`${sel('page-dashboard')}[data-editing="false"]`).waitFor();
    await page.locator(`${sel(`tile-title-${STATUS}`)}`).filter({ hasText: 'Orders per status, all channels' }).waitFor();
    await page.reload();
    await page.locator(`${sel(`tile-${CATALOG}`)}[data-width="2"]`).waitFor();
    assert.equal(await page.locator(sel(`tile-title-${STATUS}`)).innerText(), 'Orders per status, all channels', 'the title was saved');
    assert.match(await page.locator('.dash-about').innerText(), /Pick an order status to see its orders alone\./, 'the usage was saved');
    assert.deepEqual(await page.locator('.dash-about .tags li').allInnerTexts(), ['sales', 'weekly-review'], 'the tags were saved');

    // The new filter: its choices are the statuses the tiles showed; picking one narrows the
    // status tile to it, on the server (the tile's query is filtered, not its drawing).
    const before = Number(await (await tile(STATUS)).t.getAttribute('data-rows'));
    assert.ok(before > 1, `the status tile shows every status first (${before})`);
    const status = page.locator(sel('filter-order_status'));
    await status.locator('option', { hasText: /^completed$/ }).waitFor({ state: 'attached' });
    await status.selectOption('completed');
    await page.locator(sel('filters-apply')).click();
    await page.locator(`${sel(`tile-${STATUS}`)}[data-rows="1"]`).waitFor();
    assert.match(await page.locator(sel(`tile-filter-${STATUS}-order_status`)).innerText(), /Order status = completed/);
    await page.locator(sel('filters-clear')).click();
    await page.locator(`${sel(`tile-${STATUS}`)}[data-rows="${before}"]`).waitFor();
  });

  await t.test('dana sees the e-mails masked, and marked so', async () => {
    await signIn('dana');
    await openDashboard();
    assert.equal(await page.locator(sel('dashboard-edit')).count(), 0, 'dana is no member of sales: no editing');
    const { t: emails, state } = await tile(EMAILS);
    assert.equal(state, 'ok');
    assert.equal(await emails.getAttribute('data-masked'), 'true');
    assert.match(await emails.locator(sel(`tile-masked-${EMAILS}`)).innerText(), /masked for you: email/);
    await emails.locator(`${sel(`tile-chart-${EMAILS}`)}[data-drawn="true"] svg`).waitFor();
    const drawn = await emails.textContent();
    assert.match(drawn, /h_[0-9a-f]{6}/, 'the chart is labelled with masked values');
    assert.ok(!drawn.includes('@'), 'no e-mail address anywhere in the tile');
    // Its data: the email column marked masked, every cell of it a masked cell.
    await emails.locator(sel(`tile-toggle-${EMAILS}`)).click();
    const grid = emails.locator(sel(`tile-grid-${EMAILS}`));
    await grid.waitFor();
    assert.equal(await grid.locator(sel('col-email')).getAttribute('data-masked'), 'true');
    const classes = await grid.locator('tbody tr td:first-child').evaluateAll((tds) => tds.map((td) => td.className));
    assert.ok(classes.length > 0 && classes.every((c) => /masked-cell/.test(c)), 'every email cell is marked masked');
    assert.ok(!(await emails.textContent()).includes('@'), 'no e-mail address in the table either');
    assert.equal((await tile(STATUS)).state, 'ok');
    await (await tile(CATALOG)).t.locator(`${sel(`tile-chart-${CATALOG}`)}[data-drawn="true"] svg`).waitFor();
    await shot('dashboard-dana.png');
  });

  await t.test('the marketplace lists it, and the lineage of sales.orders shows it', async () => {
    await page.locator(sel('nav-marketplace')).click();
    await page.locator(sel('search-input')).fill(DASHBOARD);
    const card = page.locator(sel(`dashboard-card-${ADDRESS}`));
    await card.waitFor();
    assert.match(await card.innerText(), /Dashboard/);
    assert.equal(await card.locator(sel(`dashboard-charts-${ADDRESS}`)).innerText(), '3 charts');
    assert.match(await card.locator(sel(`dashboard-ports-${ADDRESS}`)).innerText(), /customers\.customers.*sales\.orders.*sales\.products/);
    assert.match(await card.innerText(), /Owner bob/);
    await page.locator(sel('search-input')).fill('');

    await page.goto(`${BASE}/#/products/sales/orders?tab=lineage`);
    const node = page.locator(sel(`lineage-node-dashboard:${ADDRESS}`));
    await node.waitFor();
    assert.match(await node.getAttribute('class'), /node-dashboard/);
    await page.locator(sel(`lineage-link-dashboard:${ADDRESS}`)).click();
    await page.locator(`${sel('page-dashboard')}[data-dashboard="${ADDRESS}"]`).waitFor();
  });

  await t.test('alice, with the pii clearance, sees the addresses', async () => {
    await signIn('alice');
    await openDashboard();
    const { t: emails, state } = await tile(EMAILS);
    assert.equal(state, 'ok');
    assert.equal(await emails.getAttribute('data-masked'), 'false');
    assert.equal(await emails.locator(sel(`tile-masked-${EMAILS}`)).count(), 0, 'nothing marked masked');
    await emails.locator(`${sel(`tile-chart-${EMAILS}`)}[data-drawn="true"] svg`).waitFor();
    assert.ok((await emails.textContent()).includes('@'), 'the chart shows e-mail addresses');
    await emails.locator(sel(`tile-toggle-${EMAILS}`)).click();
    const cells = await emails.locator(`${sel(`tile-grid-${EMAILS}`)} tbody tr td:first-child`).allInnerTexts();
    assert.ok(cells.length > 0 && cells.every((c) => c.includes('@')), 'every email cell holds an address');
    assert.equal(await page.locator(sel('dashboard-edit')).count(), 1, 'alice owns sales: she may edit');
    await (await tile(CATALOG)).t.locator(`${sel(`tile-chart-${CATALOG}`)}[data-drawn="true"] svg`).waitFor();
    await shot('dashboard-alice.png');
  });

  await t.test('zoe is denied the tiles over customers and orders, told how to ask, and asks', async () => {
    // On a fresh mesh zoe has not asked for customers.customers yet; a second run on the same
    // server finds her first request pending (the server refuses a second one).
    const mine = await fetch(`${BASE}/api/v1/access-requests`, {
      headers: { Authorization: `Bearer ${TOKENS.zoe}` },
      signal: AbortSignal.timeout(STEP_TIMEOUT),
    }).then((r) => r.json());
    const asked = mine.some((r) => r.product === 'customers.customers' && r.status === 'pending');
    await signIn('zoe');
    await openDashboard();
    for (const name of [EMAILS, STATUS]) {
      const { t: denied, state } = await tile(name);
      assert.equal(state, 'denied', `zoe may not run ${name}`);
      assert.match(await denied.locator(sel(`tile-denied-message-${name}`)).innerText(), /You may not read/);
      assert.ok(await denied.locator(sel(`tile-denied-hint-${name}`)).isVisible(), 'the hint shows');
      if (name === STATUS || !asked) {
        assert.ok(await denied.locator(sel(`tile-request-access-${name}`)).isVisible(), 'a request-access button shows');
      }
      assert.ok(!(await denied.textContent()).includes('@'));
    }
    const emails = page.locator(sel(`tile-${EMAILS}`));
    assert.equal(await emails.locator(sel(`tile-denied-${EMAILS}`)).getAttribute('data-product'), 'customers.customers');
    assert.match(await emails.locator(sel(`tile-denied-hint-${EMAILS}`)).innerText(), /request access to customers\.customers/);
    assert.match(await page.locator(sel(`tile-denied-hint-${STATUS}`)).innerText(), /request access to sales\.orders/);
    // The catalog is public: zoe's tile is drawn.
    const { t: catalog, state } = await tile(CATALOG);
    assert.equal(state, 'ok');
    await catalog.locator(`${sel(`tile-chart-${CATALOG}`)}[data-drawn="true"] svg`).waitFor();

    await shot('dashboard-zoe-denied.png');

    // Asking from the tile: the product page's request form, in place.
    if (!asked) {
      await emails.locator(sel(`tile-request-access-${EMAILS}`)).click();
      await emails.locator(sel('request-purpose')).fill('The weekly review dashboard: top customers by net sales (browser test)');
      await emails.locator(sel('request-submit')).click();
    }
    await emails.locator(sel(`tile-request-sent-${EMAILS}`)).waitFor();
    assert.match(await emails.locator(sel(`tile-request-sent-${EMAILS}`)).innerText(), /You asked for customers\.customers: request #\d+ is pending/);
  });

  assert.deepEqual(pageErrors, [], 'no uncaught errors in the page');
});
