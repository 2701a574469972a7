// Browser tests of berth's dashboard: Debian's chromium, driven by playwright-core, against a
// real `berth serve` that tests/browser.rs started (never a browser Playwright downloads).
//
//   node tests/browser/dashboard.mjs main|perf|network
//
// `network` runs inside the network namespace of a daemon with networking (tests/browser.rs
// starts node there): volumes, networks, a container with a published port, a volume and a
// health check from the run form, and a compose stack.
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
  await page.locator('[data-test=node-cards]').waitFor();
  await page.locator('.cards').nth(1).waitFor();
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

/// Fits a 390 px screen: nothing wider than it.
async function fitsPhone(path, name) {
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(BASE + path);
  await page.locator('.page-header').waitFor();
  await page.waitForTimeout(300);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 1, `${path} fits a phone screen (overflows by ${overflow}px)`);
  await shot(name);
  await page.setViewportSize({ width: 1280, height: 860 });
}

/// Follows a link of the main navigation (a page's breadcrumb may have one of the same name).
async function nav(name) {
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name, exact: true }).click();
}

async function network() {
  page = await newPage();
  await login('admin', ADMIN_PASSWORD);

  // Overview: the node's CPU, memory and disk arrive over /ws/node and keep coming.
  await page.locator('[data-test=node-cpu]').waitFor();
  const cpu = await page.locator('[data-test=node-cpu]').textContent();
  check(/^\d+(\.\d)?%$/.test(cpu), `node CPU is a percentage (${cpu})`);
  check(/\d/.test(await page.locator('[data-test=node-memory]').textContent()), 'node memory is shown');
  check(/\d/.test(await page.locator('[data-test=node-disk]').textContent()), 'node disk is shown');
  // A later sample replaces the first without a reload (the daemon sends one every 2 s).
  const first = await page.locator('[data-test=node-cards]').getAttribute('data-time');
  await page.waitForFunction((t) => document.querySelector('[data-test=node-cards]')?.dataset.time !== t, first, { timeout: 15000 });
  step('overview shows node CPU, memory and disk from the node stream');
  await shot('overview-node');

  // Volumes: create one; a bad name is refused in the form first.
  await nav('Volumes');
  await page.locator('.state.empty, table.data').first().waitFor();
  await page.locator('[data-test=create-volume]').click();
  await page.locator('#vol-name').fill('web data');
  await page.getByRole('button', { name: 'Create', exact: true }).click();
  await page.locator('#vol-name-error', { hasText: 'invalid characters' }).waitFor();
  await page.locator('#vol-name').fill('webdata');
  await page.getByRole('button', { name: 'Create', exact: true }).click();
  await page.locator('tr[data-name="webdata"]').waitFor();
  step('created volume webdata from the page (a bad name refused first)');

  // Networks: create one with a subnet; a subnet with host bits is refused in the form first.
  await nav('Networks');
  await page.locator('tr[data-name="bridge"]').waitFor();
  await page.locator('[data-test=create-network]').click();
  await page.locator('#net-name').fill('backend');
  await page.locator('#net-subnet').fill('172.31.5.9/24');
  await page.getByRole('button', { name: 'Create', exact: true }).click();
  await page.locator('#net-subnet-error', { hasText: 'it should be 172.31.5.0/24' }).waitFor();
  await page.locator('#net-subnet').fill('172.31.5.0/24');
  await page.getByRole('button', { name: 'Create', exact: true }).click();
  await page.locator('tr[data-name="backend"]').waitFor();
  check((await page.locator('tr[data-name="backend"]').textContent()).includes('172.31.5.0/24'), 'the subnet is listed');
  step('created network backend with subnet 172.31.5.0/24 (a wrong subnet refused first)');
  await shot('networks');

  // The run form: a port, the volume, the network and a health check.
  await nav('Containers');
  await page.locator('[data-test=run-button]').click();
  await page.locator('#run-name').fill('web2');
  await page.locator('#run-command').fill(`sh -c 'echo hi-from-volume > /data/hello; exec httpd -f -p 8080 -h /data'`);
  await page.locator('[data-test=add-port]').click();
  await page.locator('#port-container-1').fill('0');
  await page.locator('[data-test=add-mount]').click();
  await page.locator('#mount-source-1').fill('webdata');
  await page.locator('#mount-target-1').fill('data');
  await page.locator('#run-health-cmd').fill('wget -q -O- http://127.0.0.1:8080/hello');
  await page.locator('#run-health-interval').fill('1');
  await page.getByRole('button', { name: 'Run' }).click();
  await page.locator('#ports-error', { hasText: 'invalid containerPort: 0' }).waitFor();
  await page.locator('#mounts-error', { hasText: 'mount path must be absolute' }).waitFor();
  await page.locator('#health-error', { hasText: 'not a duration' }).waitFor();
  step('the run form refuses a bad port, a relative mount path and a bad interval with Docker\'s words');
  await shot('run-form-network-errors');
  await page.locator('#port-host-1').fill('18080');
  await page.locator('#port-container-1').fill('8080');
  await page.locator('#mount-target-1').fill('/data');
  await page.locator('#run-health-interval').fill('1s');
  await page.locator('#run-network').selectOption('backend');
  await page.locator('#run-aliases').fill('www');
  await page.getByRole('button', { name: 'Run' }).click();
  await page.waitForURL('**/containers/web2');
  step('ran web2 with -p 18080:8080, webdata:/data, --network backend and a health check');

  // The published port answers from the host side, with the file written into the volume.
  let body = '';
  for (let i = 0; i < 50 && !body.includes('hi-from-volume'); i++) {
    body = await fetch('http://127.0.0.1:18080/hello').then((r) => r.text()).catch(() => '');
    if (!body.includes('hi-from-volume')) await new Promise((r) => setTimeout(r, 200));
  }
  check(body.includes('hi-from-volume'), `the published port serves the volume's file (got ${JSON.stringify(body)})`);
  step('http://127.0.0.1:18080/hello answered through the published port');

  // The container page shows ports, mounts, networks and health from inspect.
  await page.getByRole('tab', { name: 'Details' }).click();
  await page.locator('[data-test=ports]', { hasText: '0.0.0.0:18080->8080/tcp' }).waitFor();
  await page.locator('[data-test=mounts] tr', { hasText: '/data' }).filter({ hasText: 'webdata' }).waitFor();
  await page.locator('[data-test=networks] tr', { hasText: 'backend' }).filter({ hasText: '172.31.5.' }).waitFor();
  await page.locator('[data-test=health-status] .badge.health-healthy').waitFor({ timeout: 30000 });
  check((await page.locator('table.probes').textContent()).includes('hi-from-volume'), 'the probe output is shown');
  step('container page: port, volume mount, network address and healthy status with probe output');
  await shot('container-details');

  // The daemon's refusal lands next to the field: the same host port again.
  await page.goto(BASE + '/run');
  await page.locator('#run-name').fill('web3');
  await page.locator('#run-command').fill('sleep 30');
  await page.locator('[data-test=add-port]').click();
  await page.locator('#port-host-1').fill('18080');
  await page.locator('#port-container-1').fill('80');
  await page.getByRole('button', { name: 'Run' }).click();
  await page.locator('#ports-error', { hasText: 'already allocated' }).waitFor();
  check(page.url().endsWith('/run'), 'the form stays to be corrected');
  step('a port in use: the daemon\'s refusal is shown under the ports');
  await shot('run-form-port-in-use');

  // The containers list: ports column and health badge.
  await nav('Containers');
  const row = page.locator('tr[data-name="web2"]');
  await row.locator('.badge.health-healthy').waitFor();
  check((await row.textContent()).includes('0.0.0.0:18080->8080/tcp'), 'the ports column shows the binding');
  check((await page.locator('tr[data-name="web3"]').count()) === 0, 'the container that could not start was removed');
  step('containers list: ports column and health badge');
  await shot('containers-ports');

  // The network and volume pages show who uses them.
  await page.goto(BASE + '/networks/backend');
  await page.locator('[data-test=attached] tr', { hasText: 'web2' }).waitFor();
  step('network page lists web2 as attached');
  await shot('network-detail');
  await page.goto(BASE + '/volumes/webdata');
  await page.locator('[data-test=used-by]', { hasText: 'web2' }).waitFor();
  step('volume page shows it is used by web2');
  await shot('volume-detail');
  await page.goto(BASE + '/volumes');
  await page.locator('tr[data-name="webdata"] button[disabled]').waitFor();
  await shot('volumes');

  // A compose stack from a pasted file: services, their containers, merged live logs.
  await nav('Stacks');
  await page.locator('.state.empty, table.data').first().waitFor();
  await page.locator('[data-test=stack-up]').click();
  await page.locator('#stack-name').fill('demo');
  await page.locator('#stack-file').fill([
    'services:',
    '  app:',
    '    image: busybox',
    `    command: ["sh", "-c", "i=0; while true; do echo tick-app $$i; i=$$((i+1)); sleep 0.5; done"]`,
    '  worker:',
    '    image: busybox',
    `    command: ["sh", "-c", "while true; do echo tick-worker; sleep 0.5; done"]`,
    '',
  ].join('\n'));
  await page.getByRole('button', { name: 'Up', exact: true }).click();
  await page.waitForURL('**/stacks/demo', { timeout: 60000 });
  await page.locator('[data-test=services] tr', { hasText: 'demo-app-1' }).locator('.badge.state-running').waitFor();
  await page.locator('[data-test=services] tr', { hasText: 'demo-worker-1' }).locator('.badge.state-running').waitFor();
  step('stack demo is up from a pasted compose file: two services running');
  await page.locator('[data-test=stack-log] .log-line', { hasText: 'tick-app' }).first().waitFor();
  await page.locator('[data-test=stack-log] .log-line', { hasText: 'tick-worker' }).first().waitFor();
  const before = await page.locator('[data-test=stack-log] .log-line').count();
  await page.waitForFunction((n) => document.querySelectorAll('[data-test=stack-log] .log-line').length > n + 2, before);
  check((await page.locator('[data-test=stack-log] .log-source', { hasText: 'demo-app-1' }).count()) > 0, 'lines are tagged with their container');
  step('stack logs from both services arrive live, tagged with their container');
  await shot('stack-detail');

  await page.getByRole('button', { name: 'Stop', exact: true }).click();
  await page.locator('[data-test=services] tr', { hasText: 'demo-app-1' }).locator('.badge.state-exited').waitFor({ timeout: 60000 });
  await page.getByRole('button', { name: 'Start', exact: true }).click();
  await page.locator('[data-test=services] tr', { hasText: 'demo-app-1' }).locator('.badge.state-running').waitFor({ timeout: 60000 });
  step('stack stop then start');
  await nav('Stacks');
  await page.locator('tr[data-name="demo"]').waitFor();
  await shot('stacks');
  await page.goto(BASE + '/stacks/demo');
  await page.locator('[data-test=services]').waitFor();
  await page.getByRole('button', { name: 'Down', exact: true }).click();
  await page.waitForURL(/\/stacks$/, { timeout: 60000 });
  await page.waitForFunction(() => !document.querySelector('tr[data-name="demo"]'));
  step('stack down removed it');

  for (const [path, name] of [['/networks', 'networks-phone'], ['/volumes', 'volumes-phone'], ['/stacks', 'stacks-phone'], ['/containers/web2', 'container-phone']]) {
    await fitsPhone(path, name);
  }
  step('new pages fit a 390px screen');

  // Keyboard: the run form's new rows are reachable with Tab.
  await page.goto(BASE + '/run');
  await page.locator('[data-test=add-port]').focus();
  await page.keyboard.press('Enter');
  await page.keyboard.press('Shift+Tab');
  check(await page.evaluate(() => document.activeElement.closest('.port-row') !== null), 'Shift+Tab from Add a port reaches the new port row');
  step('keyboard: a new port row is reachable');

  await logout();
  if (VIEWER_USER) {
    await login(VIEWER_USER, VIEWER_PASSWORD);
    for (const [path, button] of [['/networks', 'create-network'], ['/volumes', 'create-volume'], ['/stacks', 'stack-up']]) {
      await page.goto(BASE + path);
      await page.locator('.page-header h1').waitFor();
      await page.locator('.state, table.data').first().waitFor();
      check((await page.locator(`[data-test=${button}]`).count()) === 0, `a viewer has no ${button} button`);
      check((await page.getByRole('button', { name: /Remove|Prune/ }).count()) === 0, `a viewer has no remove or prune on ${path}`);
    }
    await page.goto(BASE + '/');
    await page.locator('[data-test=node-cpu]').waitFor();
    step('a viewer sees networks, volumes, stacks and node load but no mutating buttons');
    await shot('networks-viewer');
    await logout();
  }

  // A member of two teams picks which one owns what the run form creates.
  if (process.env.BERTH_TEAM_USER) {
    await login(process.env.BERTH_TEAM_USER, process.env.BERTH_TEAM_PASSWORD);
    await page.goto(BASE + '/run');
    await page.locator('#run-team').waitFor();
    const teams = await page.locator('#run-team option').allTextContents();
    check([...teams].sort().join(',') === 'blue,red', `the team choice lists the user's teams (${teams})`);
    // Not the first (the daemon's default without a choice): the choice must travel.
    const picked = teams[1];
    await page.locator('#run-team').selectOption(picked);
    await page.locator('#run-name').fill('team-pick');
    await page.locator('#run-command').fill('sleep 60');
    await page.getByRole('button', { name: 'Run' }).click();
    await page.waitForURL('**/containers/team-pick');
    console.log(`picked team: ${picked}`);
    step('an operator of two teams ran team-pick for the team picked');
    await logout();
  }
}

let failed = false;
try {
  if (PHASE === 'perf') await perf(); else if (PHASE === 'network') await network(); else await main();
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
