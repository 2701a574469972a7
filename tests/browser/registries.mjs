// The dashboard's Registries page in a real browser (Debian's chromium through playwright-core):
// search a registry, browse a repository's tags, open a tag's manifest (platform, config,
// layers), and delete the tag. Run against a daemon whose registry server holds REPOSITORY:TAG
// and that is logged in to it (tests/registry_server.rs sets this up; by hand:
//   BERTH_URL=http://127.0.0.1:PORT BERTH_ADMIN_PASSWORD=... REGISTRY_HOST=127.0.0.1:5000 \
//   REPOSITORY=dev/app TAG=1 ARTIFACTS=target/browser-artifacts node tests/browser/registries.mjs).
import { chromium } from 'playwright-core';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const BASE = env('BERTH_URL');
const ADMIN_PASSWORD = env('BERTH_ADMIN_PASSWORD');
const REGISTRY_HOST = env('REGISTRY_HOST');
const REPOSITORY = env('REPOSITORY');
const TAG = env('TAG');
const ARTIFACTS = env('ARTIFACTS');
mkdirSync(ARTIFACTS, { recursive: true });

const step = (text) => console.log(`step: ${text}`);
const check = (condition, message) => {
  if (!condition) throw new Error(`check failed: ${message}`);
};

const profile = mkdtempSync(join(tmpdir(), 'berth-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
  viewport: { width: 1280, height: 860 },
});
const errors = [];
let page;
try {
  page = await context.newPage();
  page.setDefaultTimeout(20000);
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    // Non-2xx answers the page handles are logged as "Failed to load resource": not failures.
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(`console: ${m.text()}`);
  });
  let confirmed = '';
  page.on('dialog', (d) => { confirmed = d.message(); d.accept(); });
  const shot = async (name) => {
    await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
    step(`screenshot ${name}.png`);
  };

  await page.goto(BASE + '/');
  await page.locator('#login-user').fill('admin');
  await page.locator('#login-password').fill(ADMIN_PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('navigation', { name: 'Main' }).waitFor();
  step('logged in as admin');

  await page.getByRole('link', { name: 'Registries' }).click();
  await page.locator('.page-header').waitFor();
  const registryRow = page.locator('table tr', { hasText: REGISTRY_HOST }).first();
  await registryRow.waitFor();
  check((await registryRow.textContent()).includes('yes'), 'the registry row says logged in');
  // Clicking the host fills the search box with it.
  await registryRow.getByRole('button', { name: REGISTRY_HOST }).click();
  check((await page.locator('#registry-search').inputValue()) === `${REGISTRY_HOST}/`, 'the host fills the search box');
  step('the registries table lists the registry, logged in');

  await page.locator('#registry-search').fill(`${REGISTRY_HOST}/${REPOSITORY.split('/').pop()}`);
  await page.getByRole('button', { name: 'Search', exact: true }).click();
  const result = page.locator('[aria-label="Search results"] button', { hasText: REPOSITORY }).first();
  await result.waitFor();
  step(`search found ${REPOSITORY}`);
  await shot('registries-search');

  await result.click();
  await page.getByRole('heading', { name: /^Tags of / }).waitFor();
  const tagRow = page.locator(`tr[data-name="${TAG}"]`);
  await tagRow.waitFor();
  check(/sha256:[0-9a-f]{64}/.test(await tagRow.textContent()), 'the tag row shows its digest');
  check(/linux\/[a-z0-9]+/.test(await tagRow.textContent()), 'the tag row shows its platform');
  step(`tags of ${REPOSITORY}: ${TAG} with size, platform and digest`);

  await tagRow.getByRole('button', { name: TAG, exact: true }).click();
  await page.getByRole('heading', { name: /^Manifest of / }).waitFor();
  const manifest = page.locator('[data-test=manifest]');
  await manifest.waitFor();
  const facts = await manifest.textContent();
  check(/sha256:[0-9a-f]{64}/.test(facts), 'the manifest view shows the digest');
  check(/application\/vnd\.(oci|docker)/.test(facts), 'the manifest view shows the media type');
  const pageText = await page.locator('main').textContent();
  check(/linux\/[a-z0-9]+/.test(pageText), 'the image heading names its platform');
  check(pageText.includes('Config'), 'the config is shown');
  const layerRows = await page.locator('[aria-label="Layers"] tbody tr').count();
  check(layerRows >= 1, `the layers table has rows (${layerRows})`);
  step(`manifest view: digest, media type, platform, config and ${layerRows} layer(s)`);
  await shot('registries-manifest');

  await tagRow.getByRole('button', { name: 'Delete', exact: true }).click();
  await page.locator('.notice', { hasText: 'Deleted' }).waitFor();
  check(confirmed.includes(`${REPOSITORY}:${TAG}`), `the confirmation names the tag (${confirmed})`);
  await page.waitForFunction((tag) => !document.querySelector(`tr[data-name="${tag}"]`), TAG);
  // It was the repository's only tag: the registry no longer knows the repository.
  await page.locator('p.summary', { hasText: 'No tags.' }).waitFor();
  check((await page.locator('.notice.failed').count()) === 0, 'no error shown after the delete');
  step(`deleted ${REPOSITORY}:${TAG} (confirmed, notice shown, row gone, "No tags.")`);
  await shot('registries-deleted');

  check(errors.length === 0, `no console or page errors: ${errors.join('; ')}`);
  step('no console errors');
} catch (e) {
  // What the page showed when a step failed.
  if (page) {
    await page.screenshot({ path: join(ARTIFACTS, 'registries-failure.png'), fullPage: true }).catch(() => {});
    console.log(`page text at the failure: ${await page.locator('main').textContent().catch(() => '?')}`);
  }
  throw e;
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
