// End-to-end test of the builder's file sources (issue 13): files uploaded into the domain's
// own data/ folder, read by a source block. Debian's Chromium, driven by playwright-core.
//
// Needs a running `canopy serve` over a freshly built example mesh (acme) and its tokens:
//   CANOPY_URL=http://127.0.0.1:PORT  TOKEN_ALICE=…  TOKEN_BOB=…  TOKEN_ZOE=…
//   CANOPY_MESH_DIR=the mesh's folder (optional: the saved YAML is then read from disk too)
//   SCREENSHOT_DIR=/some/dir (optional)  CHROMIUM=/usr/bin/chromium (optional)
//   node --test upload.test.mjs
//
// The story: alice (owner of sales) opens the builder; a .xlsx file is refused before anything
// is sent; she uploads regions_targets_<stamp>.csv (region,target) made by the test, sees it
// listed as a file of sales with its columns, uploads it again and is asked before it is
// replaced; a file whose content does not match its extension shows the server's message and
// hint. A source block on the file previews its four rows; joined with the customers per region
// and published as an output port, the flow is reviewed (the product YAML has the file input),
// saved and built. zoe (no member of sales) and bob (no member of customers) are refused by the
// upload API (403). Each run names its file and product afresh, so it can run again on the same
// server. Every wait is bounded (10 s); the whole test at 90 s.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { launch, screenshot, sel, signIn as signInAs } from './support.mjs';

const BASE = (process.env.CANOPY_URL || '').replace(/\/+$/, '');
const TOKENS = { alice: process.env.TOKEN_ALICE, bob: process.env.TOKEN_BOB, zoe: process.env.TOKEN_ZOE };
const SHOTS = process.env.SCREENSHOT_DIR || mkdtempSync(join(tmpdir(), 'canopy-shots-'));
const MESH = process.env.CANOPY_MESH_DIR || '';
const STAMP = Date.now().toString(36);
const FILE_STEM = `regions_targets_${STAMP}`;
const FILE = `data/${FILE_STEM}.csv`;
const PRODUCT = `regions_vs_targets_${STAMP}`;
const ADDRESS = `sales.${PRODUCT}`;
const CSV = 'region,target\nEU,120\nUS,90\nAPAC,40\nLATAM,25\n';

let context;
let page;
let profileDir;
const pageErrors = [];
const uploadsSent = [];

const signIn = (who) => signInAs(page, BASE, who, TOKENS[who]);
const shot = (name, locator, options) => screenshot(page, SHOTS, name, locator, options);
// data-testid pieces as util.js's tid() writes them.
const tid = (...parts) => parts.map((p) => String(p).replace(/[^A-Za-z0-9_.:-]+/g, '_')).join('-');

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

async function previewOk(id) {
  const preview = page.locator(`${sel('block-preview')}[data-block="${id}"]`);
  await preview.locator('xpath=self::*[@data-state="ok" or @data-state="error"]').waitFor();
  if ((await preview.getAttribute('data-state')) === 'error') {
    assert.fail(`preview of ${id} failed: ${await preview.locator(sel('preview-error')).innerText()}`);
  }
  return preview;
}

async function pickFile(name, content, mimeType = 'text/csv') {
  await page.locator(sel('upload-input')).setInputFiles({ name, mimeType, buffer: Buffer.from(content) });
}

// The upload API called directly with `who`'s token: {status, body}.
async function uploadAs(who, domain, name, content) {
  const res = await fetch(`${BASE}/api/v1/domains/${domain}/uploads?name=${encodeURIComponent(name)}`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${TOKENS[who]}`, 'Content-Type': 'application/octet-stream' },
    body: content,
  });
  const text = await res.text();
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    body = { raw: text };
  }
  return { status: res.status, body };
}

before(async () => {
  assert.ok(BASE, 'set CANOPY_URL to the address of `canopy serve`, e.g. http://127.0.0.1:8080');
  for (const [who, t] of Object.entries(TOKENS)) assert.ok(t, `set TOKEN_${who.toUpperCase()} (canopy token create ${who})`);
  mkdirSync(SHOTS, { recursive: true });
  ({ context, page, profileDir } = await launch());
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('request', (r) => {
    if (r.method() === 'POST' && /\/uploads(\?|$)/.test(r.url())) uploadsSent.push(r.url());
  });
});

after(async () => {
  await context?.close().catch(() => {});
  if (profileDir) rmSync(profileDir, { recursive: true, force: true });
  console.log(`screenshots in ${SHOTS}; file sales/${FILE}; product ${ADDRESS}`);
});

test('files uploaded into the domain as builder sources', { timeout: 90_000 }, async (t) => {
  await t.test('alice uploads a CSV into sales; a wrong file is refused', async () => {
    await signIn('alice');
    await page.locator(sel('nav-builder')).click();
    await page.locator(`${sel('page-builder')}[data-mode="new"]`).waitFor();
    assert.equal(await page.locator(sel('builder-domain')).inputValue(), 'sales');
    await page.locator(sel('product-name')).fill(PRODUCT);
    await page.locator(sel('product-purpose')).fill('Customers per region against the regional targets sales keeps in a spreadsheet.');

    // The palette: ports beside the files of sales (the example's own CSV files are there).
    const palette = page.locator(sel('source-palette'));
    await palette.locator(sel(tid('palette-port', 'customers.customers'))).waitFor();
    await palette.locator(sel(tid('palette-file', 'data/order_lines.csv'))).waitFor();
    assert.match(await page.locator(sel('upload-limit')).innerText(), /CSV, JSON or Parquet, up to [\d.]+ (KB|MB|GB)/, 'the size limit is shown');

    // A spreadsheet is refused before anything is sent.
    await pickFile('Targets.xlsx', 'PK\u0003\u0004 not a csv', 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet');
    assert.match(await page.locator(sel('upload-refused')).innerText(), /\.xlsx file: a source reads CSV \(\.csv\), JSON \(\.json\) or Parquet/);
    assert.deepEqual(uploadsSent, [], 'nothing was sent');

    // The CSV: its name is offered in the server's form, renamed here to this run's.
    await pickFile('Regions Targets.csv', CSV);
    const name = page.locator(sel('upload-name'));
    assert.equal(await name.inputValue(), 'regions_targets', 'a name the server accepts is suggested');
    await name.fill(FILE_STEM);
    await page.locator(sel('upload-send')).click();
    const ok = page.locator(sel('upload-ok'));
    await ok.waitFor();
    assert.match(await ok.innerText(), new RegExp(`Uploaded ${FILE}: 4 rows`));
    assert.match(await page.locator(sel('upload-columns')).innerText(), /region \(varchar\), target \((bigint|integer|hugeint|smallint|tinyint|int\w*)\)/);
    assert.equal(uploadsSent.length, 1);

    // It is listed as a file of sales, with its columns.
    const item = palette.locator(sel(tid('palette-file', FILE)));
    await item.waitFor();
    assert.match(await item.innerText(), /CSV file/);
    assert.match(await item.locator(sel(tid('palette-file-columns', FILE))).innerText(), /region varchar · target/);

    // The same name again: asked first, then replaced.
    await pickFile(`${FILE_STEM}.csv`, CSV);
    assert.equal(await name.inputValue(), FILE_STEM);
    await page.locator(sel('upload-send')).click();
    const conflict = page.locator(sel('upload-conflict'));
    await conflict.waitFor();
    assert.match(await conflict.innerText(), new RegExp(`${FILE} is already in sales`));
    await page.locator(sel('upload-replace')).click();
    await ok.waitFor();
    assert.match(await ok.innerText(), new RegExp(`Replaced ${FILE}: 4 rows`));
    assert.ok(uploadsSent.at(-1).includes('replace=true'), 'the second try asks to replace');

    // Content that is not what its extension says: the server's message and hint.
    await pickFile(`bad_${STAMP}.json`, 'region,target\nEU,1\n', 'application/json');
    await page.locator(sel('upload-send')).click();
    const error = page.locator(sel('upload-error'));
    await error.waitFor();
    assert.match(await error.innerText(), new RegExp(`bad_${STAMP}\\.json was not uploaded\\.`));
    assert.ok((await page.locator(sel('upload-error-hint')).innerText()).trim().length > 0, "the server's hint is shown");
    assert.equal(await palette.locator(sel(tid('palette-file', `data/bad_${STAMP}.json`))).count(), 0, 'nothing was kept');
  });

  await t.test('a source block reads the file; joined, saved and built', async () => {
    // Upload it once more (replace) and add it from there.
    await pickFile(`${FILE_STEM}.csv`, CSV);
    await page.locator(sel('upload-send')).click();
    await page.locator(sel('upload-replace')).click();
    await page.locator(sel('upload-add')).click();
    await page.locator(`${sel('block-editor')}[data-block="${FILE_STEM}"]`).waitFor();
    assert.equal(await page.locator(sel('source-kind-file')).getAttribute('aria-pressed'), 'true');
    assert.equal(await page.locator(sel('source-file')).inputValue(), FILE);
    assert.equal(await page.locator(sel(`block-${FILE_STEM}`)).getAttribute('data-reads'), 'file');
    // A shorter step name.
    await page.locator(sel('block-id')).fill('targets');
    await page.locator(sel('block-id')).press('Tab');
    await page.locator(`${sel('block-editor')}[data-block="targets"]`).waitFor();

    const preview = await previewOk('targets');
    assert.equal(await preview.locator(sel('preview-row-count')).getAttribute('data-rows'), '4');
    const grid = preview.locator(sel('preview-grid'));
    assert.deepEqual(await grid.locator('thead th .col-name').allInnerTexts(), ['region', 'target']);
    const cells = await grid.locator('tbody td').allInnerTexts();
    for (const v of ['EU', 'US', 'APAC', 'LATAM', '120', '25']) assert.ok(cells.includes(v), `the preview shows ${v} (${cells.join(' ')})`);

    // Customers per region, from a port added from the palette.
    await page.locator(sel(tid('palette-add-port', 'customers.customers'))).click();
    await page.locator(`${sel('block-editor')}[data-block="customers"]`).waitFor();
    assert.equal(await page.locator(sel('source-port')).inputValue(), 'customers.customers');
    assert.equal(await addBlock('aggregate'), 'aggregated');
    await page.locator(sel('group-by-region')).check();
    await page.locator(sel('add-measure')).click();
    await page.locator(sel('measure-fn-0')).selectOption('count');
    await page.locator(sel('measure-as-0')).fill('customers');
    await previewOk('aggregated');

    // Joined with the targets on region.
    assert.equal(await addBlock('join'), 'joined');
    await page.locator(sel('join-right')).selectOption('targets');
    await page.locator(sel('join-add-key')).click();
    await page.locator(sel('join-key-left-0')).selectOption('region');
    await page.locator(sel('join-key-right-0')).selectOption('region');
    await page.locator(sel('edge-targets-joined')).waitFor({ state: 'attached' });
    const joined = await previewOk('joined');
    assert.deepEqual(await joined.locator(`${sel('preview-grid')} thead th .col-name`).allInnerTexts(), ['region', 'customers', 'target']);
    assert.ok(Number(await joined.locator(sel('preview-row-count')).getAttribute('data-rows')) >= 1, 'regions matched their targets');

    assert.equal(await addBlock('output'), 'output');
    await page.locator(sel('output-description')).fill('Customers per region, with the region’s target.');
    await previewOk('output');

    await selectBlock('targets');
    await previewOk('targets');
    await page.evaluate(() => window.scrollTo(0, 0));
    await shot('builder-upload.png', null, { fullPage: true });

    // Review: the product YAML reads the file as an input named after the block.
    await page.locator(sel('review-save')).click();
    const review = page.locator(`${sel('review-panel')}[data-state="ok"]`);
    await review.waitFor();
    const yaml = review.locator(`details[data-path="domains/sales/products/${PRODUCT}.yaml"]`);
    const added = await yaml.locator('tr.line-add').allInnerTexts();
    assert.ok(
      added.some((l) => l.includes(`file: ${FILE}`)) && added.some((l) => /name: targets\b/.test(l)),
      `the YAML has the input {name: targets, file: ${FILE}}:\n${added.join('\n')}`,
    );
    await page.locator(sel('save-product')).click();
    await page.locator(sel('save-ok')).waitFor();
    assert.equal(new URL(page.url()).hash, `#/builder/sales/${PRODUCT}`);

    // What was written: the file on disk when the test knows the mesh's folder, else what the
    // server says it would replace.
    const saved = MESH ? readFileSync(join(MESH, `domains/sales/products/${PRODUCT}.yaml`), 'utf8') : await savedYaml();
    assert.ok(hasInput(saved, 'targets', FILE), `the saved YAML has the file input:\n${saved}`);
    if (MESH) assert.ok(existsSync(join(MESH, 'domains/sales', FILE)), 'the file is in the domain folder');

    // The build reads the file as sales.
    const build = page.locator(sel('build-product'));
    await build.scrollIntoViewIfNeeded();
    await build.click();
    await page.locator(`${sel(`build-row-${ADDRESS}`)}[data-status="published"]`).waitFor({ timeout: 30_000 });
    await page.locator(`${sel('build-done')}[data-ok="true"]`).waitFor();
  });

  await t.test('the upload API refuses who is not a member of the domain', async () => {
    const zoe = await uploadAs('zoe', 'sales', `zoe_${STAMP}.csv`, CSV);
    assert.equal(zoe.status, 403, JSON.stringify(zoe.body));
    assert.ok(zoe.body?.error?.message, 'with a message');
    const bob = await uploadAs('bob', 'customers', `bob_${STAMP}.csv`, CSV);
    assert.equal(bob.status, 403, JSON.stringify(bob.body));
    const list = await fetch(`${BASE}/api/v1/domains/sales/uploads`, { headers: { Authorization: `Bearer ${TOKENS.zoe}` } });
    assert.equal(list.status, 403, 'nor may zoe list the files of sales');
    // zoe's builder lists no file of sales either.
    const sources = await (await fetch(`${BASE}/api/v1/builder/sources`, { headers: { Authorization: `Bearer ${TOKENS.zoe}` } })).json();
    assert.deepEqual((sources.files || []).filter((f) => f.domain === 'sales'), []);
  });

  assert.deepEqual(pageErrors, [], 'no uncaught errors in the page');
});

// Whether a product YAML lists an input {name, file} (flow or block style).
function hasInput(yaml, name, file) {
  const flow = new RegExp(`\\{\\s*name:\\s*${name}\\s*,\\s*file:\\s*${file.replace(/\./g, '\\.')}`);
  const block = new RegExp(`-\\s*name:\\s*${name}\\s*\\n\\s*file:\\s*${file.replace(/\./g, '\\.')}`);
  return flow.test(yaml) || block.test(yaml);
}

// The saved product YAML, as the server gives it back: the `previous` of a dry run of its flow.
async function savedYaml() {
  const headers = { Authorization: `Bearer ${TOKENS.alice}`, 'Content-Type': 'application/json' };
  const flow = await (await fetch(`${BASE}/api/v1/domains/sales/products/${PRODUCT}/flow`, { headers })).json();
  const res = await fetch(`${BASE}/api/v1/domains/sales/products/${PRODUCT}`, { method: 'PUT', headers, body: JSON.stringify({ flow: flow.flow, dry_run: true }) });
  const data = await res.json();
  const f = (data.files || []).find((x) => x.path === `domains/sales/products/${PRODUCT}.yaml`);
  return f?.previous ?? f?.content ?? '';
}
