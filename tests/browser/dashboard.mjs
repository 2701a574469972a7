// Browser tests of berth's dashboard: Debian's chromium, driven by playwright-core, against a
// real `berth serve` that tests/browser.rs started (never a browser Playwright downloads).
//
//   node tests/browser/dashboard.mjs main|perf
//
// Environment: BERTH_URL (http://127.0.0.1:PORT), BERTH_ADMIN_PASSWORD, BERTH_VIEWER_USER,
// BERTH_VIEWER_PASSWORD, ARTIFACTS (a directory for screenshots and figures), CHROMIUM
// (default /usr/bin/chromium). Prints one line per step; exits non-zero at the first failure.

import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const BASE = process.env.BERTH_URL;
const ADMIN_PASSWORD = process.env.BERTH_ADMIN_PASSWORD;
const VIEWER_USER = process.env.BERTH_VIEWER_USER;
const VIEWER_PASSWORD = process.env.BERTH_VIEWER_PASSWORD;
const ARTIFACTS = process.env.ARTIFACTS;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const PHASE = process.argv[2] || 'main';
for (const [name, value] of Object.entries({ BERTH_URL: BASE, BERTH_ADMIN_PASSWORD: ADMIN_PASSWORD, ARTIFACTS })) {
  if (!value) throw new Error(`${name} is not set`);
}
mkdirSync(ARTIFACTS, { recursive: true });

const FLAGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

function step(text) {
  console.log(`step: ${text}`);
}

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

const profile = mkdtempSync(join(tmpdir(), 'berth-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: CHROMIUM,
  headless: true,
  args: FLAGS,
  viewport: { width: 1280, height: 860 },
});
const consoleErrors = [];
let page;

async function newPage() {
  const p = await context.newPage();
  p.setDefaultTimeout(20000);
  p.on('pageerror', (e) => consoleErrors.push(`page error: ${e.message}`));
  p.on('console', (m) => {
    // The browser logs every non-2xx answer as a console error; those are answers the page
    // handles (401 before login, a refused action it shows), not failures of the page.
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) {
      consoleErrors.push(`console: ${m.text()}`);
    }
  });
  // Confirmations (remove) are accepted; prompts (tag) get the answer the test set.
  p.on('dialog', (d) => d.accept(p.promptAnswer ?? undefined));
  return p;
}

async function shot(name) {
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
  step(`screenshot ${name}.png`);
}

async function login(user, password) {
  await page.goto(BASE + '/');
  await page.locator('#login-user').fill(user);
  await page.locator('#login-password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('navigation', { name: 'Main' }).waitFor();
  step(`logged in as ${user}`);
}

async function logout() {
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.locator('#login-user').waitFor();
  step('logged out');
}

async function main() {
  page = await newPage();

  // A wrong password is refused with the daemon's words, and the form stays.
  await page.goto(BASE + '/');
  await page.locator('#login-user').fill('admin');
  await page.locator('#login-password').fill('not-the-password');
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.locator('.form-error').waitFor();
  check((await page.locator('.form-error').textContent()).includes('wrong'), 'a wrong password is reported');
  step('a wrong password is refused');

  await login('admin', ADMIN_PASSWORD);
  await page.locator('.cards').waitFor();
  await shot('overview');

  // The run form checks its fields before sending anything.
  await page.getByRole('link', { name: 'Containers' }).click();
  await page.locator('[data-test=run-button]').click();
  await page.locator('#run-image').fill('');
  await page.locator('#run-memory').fill('lots');
  await page.getByRole('button', { name: 'Run' }).click();
  await page.locator('#image-error').waitFor();
  await page.locator('#memory-error').waitFor();
  step('the run form refuses an empty image and a bad memory size');
  await shot('run-form-errors');

  // Run a busybox container that writes to stdout and stderr every half second.
  await page.locator('#run-image').fill('busybox');
  await page.locator('#run-memory').fill('');
  await page.locator('#run-name').fill('web1');
  await page.locator('#run-command').fill(
    `sh -c 'i=0; while true; do echo "line $i"; echo "oops $i" >&2; i=$((i+1)); sleep 0.5; done'`);
  await page.getByRole('button', { name: 'Run' }).click();
  await page.waitForURL('**/containers/web1');
  step('ran web1 from the form');

  // Logs arrive live: lines written after the page opened appear without a reload.
  await page.locator('.log-line.stdout', { hasText: 'line 1' }).first().waitFor();
  const later = await page.locator('.log-line').count();
  await page.locator('.log-line.stdout', { hasText: 'line 6' }).first().waitFor();
  check((await page.locator('.log-line').count()) > later, 'new log lines arrive live');
  check((await page.locator('.log-line.stderr', { hasText: 'oops' }).count()) > 0, 'stderr lines are marked');
  await page.locator('#log-search').fill('oops 3');
  check((await page.locator('.log-line').count()) === 1, 'the log search filters lines');
  await page.locator('#log-search').fill('');
  step('logs stream live, stderr told apart, search filters');
  await shot('container-logs');

  await page.getByRole('tab', { name: 'Stats' }).click();
  await page.locator('.chart polyline[points*=","]').first().waitFor();
  step('stats chart draws live samples');
  await shot('container-stats');

  // An interactive shell: type, see the output.
  await page.getByRole('tab', { name: 'Terminal' }).click();
  await page.locator('[data-test=open-terminal]').click();
  await page.locator('[data-test=terminal-status]', { hasText: 'Connected' }).waitFor();
  // Type once the shell shows its prompt, as a person would (input sent before the shell set
  // up its line editor may be flushed by it).
  await page.waitForFunction(() => document.querySelector('.xterm-rows')?.textContent.includes('#'));
  await page.locator('.terminal .xterm').click();
  await page.keyboard.type('echo hello');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => [...document.querySelectorAll('.xterm-rows > div')]
    .some((row) => row.textContent.trim() === 'hello'));
  step('terminal: echo hello printed hello');
  await shot('container-terminal');

  // Stopping the container ends the shell with a message in the terminal.
  await page.getByRole('button', { name: 'Stop', exact: true }).click();
  await page.locator('[data-test=terminal-status]', { hasText: /ended|closed|lost/ }).waitFor({ timeout: 30000 });
  await page.waitForFunction(() => document.querySelector('.xterm-rows').textContent.match(/session ended|connection/));
  await page.locator('.badge.state-exited').waitFor();
  step('stopping the container ended the terminal session with a message');

  await page.getByRole('button', { name: 'Remove', exact: true }).click();
  await page.waitForURL(/\/containers$/);
  await page.waitForFunction(() => !document.querySelector('tr[data-name="web1"]'));
  step('removed web1');

  // Build from a pasted Dockerfile, with the output streaming in.
  await page.getByRole('link', { name: 'Images' }).click();
  await page.locator('[data-test=build-button]').click();
  await page.locator('#build-tags').fill('browser-built:latest');
  await page.locator('#build-dockerfile').fill('FROM busybox\nRUN echo built-in-the-browser\n');
  await page.locator('[data-test=build-panel] button[type=submit]').click();
  await page.locator('.build-log .step').first().waitFor();
  await page.locator('.build-log .built').waitFor({ timeout: 60000 });
  check((await page.locator('.build-log').textContent()).includes('built-in-the-browser'), 'RUN output streams');
  await page.locator('td.repo', { hasText: 'browser-built' }).waitFor();
  step('built browser-built:latest from a pasted Dockerfile with streamed output');
  await shot('images');

  // Pull with per-layer progress, when the test started a registry.
  if (process.env.BERTH_PULL_REFERENCE) {
    await page.locator('[data-test=pull-button]').click();
    await page.locator('#pull-reference').fill(process.env.BERTH_PULL_REFERENCE);
    await page.locator('[data-test=pull-panel] button[type=submit]').click();
    await page.locator('.layer progress').first().waitFor();
    await page.locator('.transfer-log.ok').waitFor({ timeout: 60000 });
    check((await page.locator('.transfer-log').textContent()).includes('Pulled'), 'the pull reports its end');
    step('pulled with a progress bar per layer');
    await shot('images-pull');
  }

  await page.locator('td.repo a', { hasText: 'browser-built' }).click();
  await page.locator('#layers-heading').waitFor();
  await page.locator('#history-heading').waitFor();
  step('image page shows layers and history');
  await shot('image-detail');

  await page.getByRole('link', { name: 'History' }).click();
  await page.locator('table.data tbody tr').first().waitFor();
  step('history lists events');
  await shot('history');

  // Admin: a token's secret is shown once.
  await page.getByRole('link', { name: 'Admin' }).click();
  await page.locator('#token-user').fill('admin');
  await page.locator('#token-name').fill('browser-test');
  await page.getByRole('button', { name: 'Create token' }).click();
  await page.locator('.secret-value').waitFor();
  check((await page.locator('.secret-value').textContent()).length > 20, 'the new token secret is shown');
  await page.getByRole('button', { name: 'Done' }).click();
  check((await page.locator('.secret-value').count()) === 0, 'the secret is gone once dismissed');
  step('admin created a token and saw its secret once');
  await shot('admin');

  // Phone width: nothing wider than the screen.
  await page.setViewportSize({ width: 390, height: 844 });
  for (const [path, name] of [['/', 'overview-phone'], ['/containers', 'containers-phone'], ['/images', 'images-phone']]) {
    await page.goto(BASE + path);
    await page.locator('.page-header').waitFor();
    await page.waitForTimeout(300);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(overflow <= 1, `${path} fits a phone screen (overflows by ${overflow}px)`);
    await shot(name);
  }
  await page.setViewportSize({ width: 1280, height: 860 });
  step('pages fit a 390px screen');

  // Keyboard: the skip link is the first stop, and the navigation is reachable by Tab.
  await page.goto(BASE + '/containers');
  await page.locator('.page-header').waitFor();
  await page.keyboard.press('Tab');
  check(await page.evaluate(() => document.activeElement.classList.contains('skip-link')), 'Tab reaches the skip link first');
  step('keyboard: skip link first');

  await logout();

  // A viewer sees the containers but no way to run one.
  if (VIEWER_USER) {
    await login(VIEWER_USER, VIEWER_PASSWORD);
    await page.getByRole('link', { name: 'Containers' }).click();
    await page.locator('.page-header h1', { hasText: 'Containers' }).waitFor();
    await page.locator('.state, table.data').first().waitFor();
    check((await page.locator('[data-test=run-button]').count()) === 0, 'a viewer has no run button');
    check((await page.getByRole('link', { name: 'Admin' }).count()) === 0, 'a viewer has no admin page');
    await page.goto(BASE + '/run');
    await page.locator('.state.error', { hasText: 'Not allowed' }).waitFor();
    step('a viewer cannot see the run button');
    await shot('containers-viewer');
    await logout();
  }
}

async function perf() {
  // The containers page with the containers the test created: from navigation start until
  // every row is on screen, measured by the browser's clock (performance.now()).
  page = await newPage();
  await login('admin', ADMIN_PASSWORD);
  const expected = Number(process.env.BERTH_PERF_CONTAINERS || '200');
  const figures = [];
  for (let run = 0; run < 5; run++) {
    await page.goto(BASE + '/containers');
    await page.waitForFunction((n) => document.querySelectorAll('tr[data-name]').length >= n, expected, { timeout: 30000 });
    figures.push(await page.evaluate(() => performance.now()));
  }
  const sorted = [...figures].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)];
  await shot('containers-200');
  const result = { containers: expected, runs_ms: figures.map((f) => Math.round(f)), median_ms: Math.round(median) };
  writeFileSync(join(ARTIFACTS, 'containers-page.json'), JSON.stringify(result, null, 2) + '\n');
  console.log(`figure: containers page with ${expected} containers shown after ${result.median_ms} ms (median of ${figures.length}; runs ${result.runs_ms.join(', ')} ms)`);

  // Bulk action: select every container shown and remove them all at once.
  await page.getByRole('checkbox', { name: 'Select all shown containers' }).check();
  await page.locator('.bulk', { hasText: `${expected} selected` }).waitFor();
  await page.locator('.bulk').getByRole('button', { name: 'Remove' }).click();
  await page.locator('.state.empty', { hasText: 'No containers yet' }).waitFor({ timeout: 120000 });
  step(`bulk remove of ${expected} selected containers`);
}

let failed = false;
try {
  if (PHASE === 'perf') await perf(); else await main();
  if (consoleErrors.length) throw new Error(`the page logged errors:\n${consoleErrors.join('\n')}`);
  console.log('ok');
} catch (e) {
  failed = true;
  console.error(`FAILED: ${e.stack || e}`);
  if (page) {
    await page.screenshot({ path: join(ARTIFACTS, `failure-${PHASE}.png`), fullPage: true }).catch(() => {});
    console.error(`page URL at failure: ${page.url()}`);
  }
  if (consoleErrors.length) console.error(consoleErrors.join('\n'));
} finally {
  await context.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
