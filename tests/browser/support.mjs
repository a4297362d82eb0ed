// What the builder's and the dashboards' browser tests share: Chromium launched the same way,
// signing in with a token, screenshots.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const STEP_TIMEOUT = 10_000;

export function sel(testid) {
  return `[data-testid="${testid}"]`;
}

// Debian's Chromium (or CHROMIUM), headless, in a fresh profile; every wait bounded.
export async function launch() {
  const profileDir = mkdtempSync(join(tmpdir(), 'canopy-chromium-'));
  const context = await chromium.launchPersistentContext(profileDir, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    timeout: 20_000,
    viewport: { width: 1440, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  context.setDefaultTimeout(STEP_TIMEOUT);
  context.setDefaultNavigationTimeout(STEP_TIMEOUT);
  const page = context.pages()[0] || (await context.newPage());
  return { context, page, profileDir };
}

// Signs `who` in with `token` (signing out whoever was in), and waits until the UI says so.
export async function signIn(page, base, who, token) {
  await page.goto(`${base}/#/`, { timeout: STEP_TIMEOUT });
  const form = page.locator(sel('signin-form'));
  const out = page.locator(sel('sign-out'));
  await form.or(out).first().waitFor();
  if (await out.isVisible()) {
    await out.click();
    await form.waitFor();
  }
  await page.locator(sel('token-input')).fill(token);
  await page.locator(sel('signin-submit')).click();
  await page.locator(`${sel('whoami')}[data-principal="user:${who}"]`).waitFor();
}

// options: more of page.screenshot's (fullPage: true for the whole page).
export async function screenshot(page, folder, name, locator, options = {}) {
  if (locator) await locator.scrollIntoViewIfNeeded();
  await page.screenshot({ path: join(folder, name), timeout: STEP_TIMEOUT, ...options });
}
