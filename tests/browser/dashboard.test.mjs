// The dashboard in a real browser: headless Chromium (Debian's) driven by playwright-core,
// against `missionctl serve --demo`. Run with `node --test tests/browser/` after `npm ci` in
// tests/browser. Screenshots go to tests/browser/artifacts/.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { startServer, CHROMIUM } from './server.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ARTIFACTS = join(HERE, 'artifacts');
const require = createRequire(import.meta.url);
const AXE_SOURCE = await readFile(require.resolve('axe-core/axe.min.js'), 'utf8');
// Generous: test machines are noisy.
const WAIT = 30_000;

let server;
let browser;
const otherTenant = `acme-${Date.now().toString(36)}`;

before(async () => {
  await mkdir(ARTIFACTS, { recursive: true });
  server = await startServer();
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'], headless: true });
  // Another tenant, created by the operator: its run must stay invisible to the demo tenant.
  const created = await server.api(server.operatorKey, 'POST', 'tenants', { id: otherTenant, name: 'Acme Advisors' });
  assert.equal(created.status, 201, JSON.stringify(created.body));
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** A new browser context and page; records console errors and failed page scripts. */
async function newPage({ viewport = { width: 1280, height: 900 }, acceptDownloads = false } = {}) {
  const context = await browser.newContext({ viewport, acceptDownloads });
  context.setDefaultTimeout(WAIT);
  const page = await context.newPage();
  page.problems = [];
  page.on('console', (m) => {
    // A refused request (401, 404...) is logged by Chromium itself; the tests check those pages.
    if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) page.problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => page.problems.push(`page error: ${e.message}`));
  return page;
}

async function signInWithLink(page) {
  await page.goto(server.demoLink);
  await page.locator('nav[aria-label="Main"]').waitFor();
}

async function signInWithForm(page, key) {
  await page.goto(`${server.base}/app/`);
  await page.getByLabel('Your access key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('nav[aria-label="Main"]').waitFor();
}

/** A link of the main navigation. */
function nav(page, name) {
  return page.locator('nav[aria-label="Main"]').getByRole('link', typeof name === 'string' ? { name, exact: true } : { name });
}

/** Waits until the page has rendered: an h1 and nothing still loading. */
async function settled(page) {
  await page.locator('main h1').first().waitFor();
  await page.waitForFunction(() => !document.querySelector('main .loading'));
}

async function waitForRun(tenant, id, states) {
  for (;;) {
    const r = await server.api(server.operatorKey, 'GET', `tenants/${tenant}/runs/${id}`);
    if (states.includes(r.body.state)) return r.body;
    await new Promise((res) => setTimeout(res, 200));
  }
}

test('signing in with the demo link trades the key for a session and clears it from the address bar', async () => {
  const page = await newPage();
  await signInWithLink(page);
  assert.ok(!page.url().includes('#key='), `the key stays in the URL: ${page.url()}`);
  assert.ok(!page.url().includes(server.demoKey));
  await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
  assert.match(await page.locator('.who').textContent(), /admin/);
  const cookies = await page.context().cookies();
  const session = cookies.find((c) => c.name === 'mc_session');
  assert.ok(session && session.httpOnly && session.sameSite === 'Strict', 'an HttpOnly SameSite=Strict session cookie');
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

test('the key form refuses a wrong key with a clear message and accepts the right one', async () => {
  const page = await newPage();
  await page.goto(`${server.base}/app/runs`);
  await page.getByLabel('Your access key').fill('mc_000000000000_not-a-real-key');
  await page.getByRole('button', { name: 'Sign in' }).click();
  const error = page.locator('#signin-error');
  await error.getByText(/not valid/).waitFor();
  assert.equal(await page.getByLabel('Your access key').getAttribute('aria-invalid'), 'true');
  await page.getByLabel('Your access key').fill(server.operatorKey);
  await page.getByRole('button', { name: 'Sign in' }).click();
  // Signing in lands on the page that was asked for; an operator sees the Operator view.
  await page.getByRole('heading', { level: 1, name: 'Runs' }).waitFor();
  await nav(page, 'Operator').waitFor();
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

test('the overview fits a 375 px wide screen without horizontal scrolling', async () => {
  const page = await newPage({ viewport: { width: 375, height: 812 } });
  await signInWithLink(page);
  await page.locator('.stat').first().waitFor();
  await settled(page);
  const { scroll, client } = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth }));
  assert.ok(scroll <= client, `the page scrolls sideways: ${scroll} > ${client}`);
  await page.screenshot({ path: join(ARTIFACTS, 'overview-375.png'), fullPage: true });
  await page.context().close();
});

test('run an automation now and watch its run succeed live, without reloading', async () => {
  const page = await newPage();
  await signInWithLink(page);
  let loads = 0;
  page.on('load', () => { loads += 1; });
  await nav(page, 'Automations').click();
  await page.getByRole('heading', { level: 1, name: 'Automations' }).waitFor();
  const card = page.locator('[data-automation="monday-kpis"]');
  await card.getByRole('button', { name: 'Run now' }).click();
  const last = card.locator('[data-last-for="monday-kpis"]');
  await page.waitForFunction(() => document.querySelector('[data-last-for="monday-kpis"]')?.dataset.run);
  const id = Number(await last.getAttribute('data-run'));
  assert.ok(id > 0);
  // The last result follows the run's events to `succeeded`.
  await last.locator('[data-state="succeeded"]').waitFor();

  // The live run list: a run started elsewhere appears and finishes without a reload.
  await nav(page, 'Runs').click();
  await page.locator('#runs-table').waitFor();
  await page.locator('.live-indicator[data-live="live"]').waitFor();
  const started = await server.api(server.operatorKey, 'POST', 'tenants/demo/automations/daily-inbox/run', {});
  assert.equal(started.status, 202, JSON.stringify(started.body));
  const runId = started.body.run;
  await page.locator(`#runs-table tr[data-run="${runId}"][data-state="succeeded"]`).waitFor();

  // The run's page: status, input, log and delegation tree.
  await page.locator(`#runs-table tr[data-run="${runId}"] a`).first().click();
  await page.getByRole('heading', { level: 1, name: `Run #${runId}` }).waitFor();
  await page.locator('#run-state [data-state="succeeded"]').waitFor();
  await page.getByRole('heading', { name: 'Input' }).waitFor();
  assert.equal(loads, 0, 'the page reloaded');
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

test('install a template from the gallery into a new tenant; bad parameters and plan limits are explained', async () => {
  const page = await newPage();
  await signInWithForm(page, server.operatorKey);
  await page.goto(`${server.base}/app/templates?tenant=${otherTenant}`);
  await page.getByRole('heading', { level: 1, name: 'Templates' }).waitFor();
  await page.locator('a[href*="templates/professional-services"]').click();
  await page.getByRole('heading', { level: 1, name: /Professional services/i }).waitFor();
  // One invalid parameter: the message names it, next to the field.
  await page.locator('#param-firm').fill('x');
  await page.getByRole('button', { name: /^Install into/ }).click();
  await page.locator('#param-firm-err').getByText(/firm/).waitFor();
  assert.equal(await page.locator('#param-firm').getAttribute('aria-invalid'), 'true');
  assert.ok(await page.locator('#param-firm').getAttribute('pattern'), 'the pattern is also the input\'s pattern attribute');
  // A time zone the pattern allows but the server does not know: the API's message is shown.
  await page.locator('#param-firm').fill('Acme Advisors');
  await page.locator('#param-timezone').fill('Mars/Olympus_Mons');
  await page.getByRole('button', { name: /^Install into/ }).click();
  await page.locator('#install-result [role="alert"]').getByText(/Mars\/Olympus_Mons/).waitFor();
  // Good values install.
  await page.locator('#param-timezone').fill('Europe/London');
  await page.getByRole('button', { name: /^Install into/ }).click();
  await page.locator('#install-result').getByText(/is installed/).waitFor();
  const agents = await server.api(server.operatorKey, 'GET', `tenants/${otherTenant}/agents`);
  assert.ok(agents.body.length >= 3, JSON.stringify(agents.body));

  // The marketing team needs more agents than the Starter plan allows.
  await page.goto(`${server.base}/app/templates/marketing-agency?tenant=${otherTenant}`);
  await page.locator('#param-company').fill('Acme Advisors');
  await page.locator('#param-topic').fill('Tax season checklists');
  await page.getByRole('button', { name: /^Install into/ }).click();
  const refusal = page.locator('#install-result [role="alert"]');
  await refusal.getByText(/Starter plan/).waitFor();
  assert.match(await refusal.textContent(), /plan/i);
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

/** A run of an automation whose output waits for approval (created through the API). */
async function pendingApproval() {
  const put = await server.api(server.operatorKey, 'PUT', 'tenants/demo/automations/review-article', {
    agent: 'content-writer',
    trigger: { manual: true },
    approval: {},
    input: { brief: 'Autumn bulbs: what to plant before the frost', voice: 'warm and practical' },
  });
  assert.ok([200, 201].includes(put.status), JSON.stringify(put.body));
  const started = await server.api(server.operatorKey, 'POST', 'tenants/demo/automations/review-article/run', {});
  assert.equal(started.status, 202, JSON.stringify(started.body));
  await waitForRun('demo', started.body.run, ['awaiting_approval']);
  return started.body.run;
}

test('approve an output after editing it in place', async () => {
  const id = await pendingApproval();

  const page = await newPage();
  await signInWithLink(page);
  await nav(page, /^Approvals/).click();
  const item = page.locator(`article[data-run="${id}"]`);
  await item.waitFor();
  const box = item.getByLabel('Output (JSON)');
  const output = JSON.parse(await box.inputValue());
  // Invalid JSON is refused next to the text area.
  await box.fill('{ not json');
  await item.getByRole('button', { name: 'Approve' }).click();
  await item.getByText(/not valid JSON/).waitFor();
  output.reviewed_by = 'browser test';
  await box.fill(JSON.stringify(output, null, 2));
  await item.getByRole('button', { name: 'Approve' }).click();
  await item.waitFor({ state: 'detached' });

  const decision = await server.api(server.operatorKey, 'GET', `tenants/demo/runs/${id}/decision`);
  assert.equal(decision.body.decision, 'approved');
  assert.ok(decision.body.original_output, 'the agent\'s own version is kept');
  const run = await server.api(server.operatorKey, 'GET', `tenants/demo/runs/${id}`);
  assert.equal(run.body.output.reviewed_by, 'browser test');
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

test('chat with an agent: the reply streams in', async () => {
  const page = await newPage();
  await signInWithLink(page);
  await page.goto(`${server.base}/app/agents/content-writer`);
  await page.getByRole('heading', { level: 1, name: 'content-writer' }).waitFor();
  await page.getByLabel('Message to content-writer').fill('Give me three blog titles about spring bulbs.');
  await page.getByRole('button', { name: 'Send' }).click();
  const reply = page.locator('.bubble-assistant[data-done="true"]').last();
  await reply.waitFor();
  const text = (await reply.locator('.bubble-text').textContent()).trim();
  assert.ok(text.length > 10, `a reply: ${text}`);
  assert.ok(!(await reply.getAttribute('class')).includes('bubble-error'), text);
  await page.locator('.bubble-user').getByText('spring bulbs').waitFor();
  // The thread is kept: after a reload the conversation is still there.
  await page.reload();
  await page.locator('.bubble-assistant').first().waitFor();
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

test('download the costs CSV', async () => {
  const page = await newPage({ acceptDownloads: true });
  await signInWithLink(page);
  await nav(page, 'Costs').click();
  await page.getByRole('heading', { level: 1, name: 'Costs' }).waitFor();
  await page.locator('svg.chart').first().waitFor();
  const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#csv-agent').click()]);
  const csv = await readFile(await download.path(), 'utf8');
  const [head, ...rows] = csv.trim().split('\n');
  assert.match(head, /^key,ai_calls,input_tokens,output_tokens/);
  assert.ok(rows.some((r) => r.startsWith('"director"')), csv);
  assert.ok(rows.some((r) => r.startsWith('"total"')), csv);
  assert.match(download.suggestedFilename(), /\.csv$/);
  await page.context().close();
});

test('registries: add a row, find it by searching, and see the API\'s validation message when editing it', async () => {
  const page = await newPage();
  await signInWithLink(page);
  await page.goto(`${server.base}/app/registries/kpi-history`);
  await page.getByRole('heading', { level: 1, name: 'kpi-history' }).waitFor();
  const form = page.locator('form.row-form');
  await form.getByLabel(/^week/).fill('2026-11-23');
  await form.getByLabel(/^metric/).fill('visits');
  // Missing a required field: said next to it.
  await form.getByRole('button', { name: 'Add row' }).click();
  await form.locator('.field-error').getByText(/value is required/).waitFor();
  await form.getByLabel(/^value/).fill('1500');
  await form.getByRole('button', { name: 'Add row' }).click();
  await page.locator('tbody tr').filter({ hasText: 'visits' }).first().waitFor();
  await page.getByLabel('Field').selectOption('metric');
  await page.getByLabel('Condition').selectOption('eq');
  await page.getByLabel('Value', { exact: true }).fill('visits');
  await page.getByRole('button', { name: 'Search' }).click();
  await page.waitForURL(/where=metric%3Aeq%3Avisits/);
  const row = page.locator('tbody tr').filter({ hasText: '1500' }).first();
  await row.waitFor();
  // The API's own validation message, shown next to the field it names.
  await row.getByRole('button', { name: /^Edit row/ }).click();
  await form.getByLabel(/^metric/).fill('');
  await form.getByRole('button', { name: 'Save changes' }).click();
  await form.locator('.field-error').getByText(/field `metric` of registry `kpi-history` is required/).waitFor();
  await form.locator('[role="alert"]').getByText(/is required/).waitFor();
  assert.equal(await form.getByLabel(/^metric/).getAttribute('aria-invalid'), 'true');
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

test('another tenant\'s run, an unknown run and an unknown page get friendly refusals', async () => {
  const started = await server.api(server.operatorKey, 'PUT', `tenants/${otherTenant}/automations/by-hand`, { agent: 'client-onboarding', trigger: { manual: true } });
  let foreignRun = 1;
  if ([200, 201].includes(started.status)) {
    const r = await server.api(server.operatorKey, 'POST', `tenants/${otherTenant}/automations/by-hand/run`, {});
    if (r.status === 202) foreignRun = r.body.run;
  }
  const page = await newPage();
  await signInWithLink(page);
  await page.goto(`${server.base}/app/runs/${foreignRun}?tenant=${otherTenant}`);
  await page.getByRole('heading', { level: 1, name: 'Not found, or not yours' }).waitFor();
  assert.match(await page.locator('main').textContent(), /belongs to another account/);
  await page.screenshot({ path: join(ARTIFACTS, 'not-yours.png'), fullPage: true });
  await page.goto(`${server.base}/app/runs/987654`);
  await page.getByRole('heading', { level: 1, name: 'Not found, or not yours' }).waitFor();
  await page.goto(`${server.base}/app/no/such/page`);
  await page.getByRole('heading', { level: 1, name: 'Page not found' }).waitFor();
  await page.context().close();
});

/** The API requests a page made (paths with their queries), recorded from now on. */
function recordApiCalls(page) {
  const calls = [];
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.pathname.startsWith('/api/v1/')) calls.push(`${u.pathname}${u.search}`);
  });
  return calls;
}

test('the overview and the team come from one summary call each, not from listing runs', async () => {
  const page = await newPage();
  const calls = recordApiCalls(page);
  await signInWithLink(page);
  await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
  await page.locator('#ov-today').waitFor();
  await settled(page);
  const overview = calls.filter((c) => c.startsWith('/api/v1/tenants/demo/overview?since='));
  assert.ok(overview.length >= 1, `the overview asks for its summary: ${calls.join(', ')}`);
  assert.ok(!calls.some((c) => c.startsWith('/api/v1/tenants/demo/runs?')), `no run listing: ${calls.join(', ')}`);
  // The numbers shown are the server's count since the browser's midnight.
  const since = new URL(`http://x${overview[0]}`).searchParams.get('since');
  const started = Number(await page.locator('#ov-today + .stats .stat').first().locator('.stat-value').textContent());
  const counted = await server.api(server.operatorKey, 'GET', `tenants/demo/overview?since=${encodeURIComponent(since)}`);
  assert.equal(counted.status, 200, JSON.stringify(counted.body));
  assert.ok(started > 0 && started <= counted.body.runs.started, `shown ${started}, counted ${counted.body.runs.started}`);

  calls.length = 0;
  await nav(page, 'Team').click();
  await page.getByRole('heading', { level: 1, name: 'Team' }).waitFor();
  await page.locator('.agent-card').first().waitFor();
  assert.deepEqual(calls.filter((c) => c.startsWith('/api/v1/tenants/demo/team')), ['/api/v1/tenants/demo/team'], 'one call for the whole team');
  assert.ok(!calls.some((c) => /\/runs\?|\/usage\?/.test(c)), `no call per agent: ${calls.join(', ')}`);
  const team = await server.api(server.operatorKey, 'GET', 'tenants/demo/team');
  const director = team.body[0];
  const card = page.locator('.agent-card').filter({ has: page.locator(`#agent-${director.name}`) });
  await card.getByText('Cost this month').waitFor();
  if (director.last_run) await card.locator(`a[href$="/runs/${director.last_run.id}"]`).first().waitFor();
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

test('white-label: a partner\'s tenant shows its name, logo and colours; others keep Mission Control\'s', async () => {
  const partner = `northwind-${Date.now().toString(36)}`;
  const logo = `data:image/svg+xml;base64,${Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="28" height="28"><rect width="28" height="28" fill="#7a1f5c"/></svg>').toString('base64')}`;
  const bad = await server.api(server.operatorKey, 'PUT', `brands/${partner}`, { name: 'Northwind Digital', primary_color: '#ffee00' });
  assert.equal(bad.status, 400);
  assert.match(bad.body.error.message, /^primary_color: #ffee00 is too light/);
  const brand = await server.api(server.operatorKey, 'PUT', `brands/${partner}`, { name: 'Northwind Digital', logo, primary_color: '#7A1F5C', accent_color: '#0B6E4F' });
  assert.equal(brand.status, 201, JSON.stringify(brand.body));
  const tenant = `${partner}-client`;
  const created = await server.api(server.operatorKey, 'POST', 'tenants', { id: tenant, name: 'Northwind Client', partner });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const key = await server.api(server.operatorKey, 'POST', 'keys', { role: 'admin', tenant });
  assert.equal(key.status, 201, JSON.stringify(key.body));

  const page = await newPage();
  await signInWithForm(page, key.body.key);
  await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
  await page.locator('.brand-name', { hasText: 'Northwind Digital' }).waitFor();
  await settled(page);
  const look = await page.evaluate(() => ({
    brand: getComputedStyle(document.documentElement).getPropertyValue('--brand').trim(),
    accent: getComputedStyle(document.documentElement).getPropertyValue('--accent').trim(),
    link: getComputedStyle(document.querySelector('#sign-out')).color,
    current: getComputedStyle(document.querySelector('.nav-link[aria-current="page"]')).borderBottomColor,
    logo: document.querySelector('.brand-logo').src,
    title: document.title,
  }));
  assert.equal(look.brand, '#7a1f5c');
  assert.equal(look.accent, '#0b6e4f');
  assert.equal(look.link, 'rgb(122, 31, 92)', 'buttons and links in the partner\'s colour');
  assert.equal(look.current, 'rgb(11, 110, 79)', 'the current page marked in its accent');
  assert.ok(look.logo.startsWith('data:image/svg+xml;base64,'), look.logo);
  assert.match(look.title, /Northwind Digital/);
  const violations = await axe(page);
  assert.deepEqual(violations, [], 'the branded page stays accessible');
  await page.screenshot({ path: join(ARTIFACTS, 'white-label.png'), fullPage: true });
  assert.deepEqual(page.problems, [], 'no CSP refusals or script errors');
  await page.context().close();

  // The demo tenant has no partner: Mission Control's own name and colours.
  const plain = await newPage();
  await signInWithLink(plain);
  await plain.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
  const own = await plain.evaluate(() => ({
    name: document.querySelector('.brand-name').textContent,
    brand: getComputedStyle(document.documentElement).getPropertyValue('--brand').trim(),
    link: getComputedStyle(document.querySelector('#sign-out')).color,
    logo: new URL(document.querySelector('.brand-logo').src).pathname,
  }));
  assert.deepEqual(own, { name: 'Mission Control', brand: '#2f5d8a', link: 'rgb(47, 93, 138)', logo: '/app/assets/logo.svg' });
  assert.deepEqual(plain.problems, []);
  await plain.context().close();
});

/** Runs axe-core on the page; returns the serious and critical violations. */
async function axe(page) {
  await page.evaluate(AXE_SOURCE);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ')}`);
}

test('every main page renders cleanly, passes axe-core without serious violations, and is screenshotted', async () => {
  await pendingApproval(); // so the inbox shows its form
  const admin = await newPage();
  await signInWithLink(admin);
  const runs = await server.api(server.demoKey, 'GET', 'tenants/demo/runs?limit=1&automation=new-campaign');
  const runId = runs.body.items[0]?.id ?? 1;
  const pages = [
    ['overview', '/app/'],
    ['team', '/app/team'],
    ['agent', '/app/agents/director'],
    ['automations', '/app/automations'],
    ['runs', '/app/runs'],
    ['run', `/app/runs/${runId}`],
    ['costs', '/app/costs'],
    ['approvals', '/app/approvals'],
    ['registries', '/app/registries'],
    ['registry', '/app/registries/content-calendar'],
    ['templates', '/app/templates'],
    ['template', '/app/templates/marketing-agency'],
    ['health', '/app/health'],
    ['not-found', '/app/no-such-page'],
  ];
  const failures = [];
  for (const [name, path] of pages) {
    await admin.goto(`${server.base}${path}`);
    await settled(admin);
    await admin.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
    for (const v of await axe(admin)) failures.push(`${name}: ${v}`);
  }
  assert.deepEqual(admin.problems, []);
  await admin.context().close();

  const operator = await newPage();
  await signInWithForm(operator, server.operatorKey);
  await operator.goto(`${server.base}/app/operator`);
  await settled(operator);
  await operator.locator('#tenants-table').getByText('demo').first().waitFor();
  await operator.getByRole('heading', { name: 'Incidents across the fleet' }).waitFor();
  await operator.screenshot({ path: join(ARTIFACTS, 'operator.png'), fullPage: true });
  for (const v of await axe(operator)) failures.push(`operator: ${v}`);
  await operator.context().close();

  const anonymous = await newPage();
  await anonymous.goto(`${server.base}/app/`);
  await anonymous.getByLabel('Your access key').waitFor();
  await anonymous.screenshot({ path: join(ARTIFACTS, 'sign-in.png'), fullPage: true });
  for (const v of await axe(anonymous)) failures.push(`sign-in: ${v}`);
  await anonymous.context().close();

  assert.deepEqual(failures, []);
});

test('sign out ends the session', async () => {
  const page = await newPage();
  await signInWithLink(page);
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByLabel('Your access key').waitFor();
  const status = await page.evaluate(async () => (await fetch('/ui/session')).status);
  assert.equal(status, 401);
  await page.reload();
  await page.getByLabel('Your access key').waitFor();
  const api = await page.evaluate(async () => (await fetch('/api/v1/tenants/demo/runs')).status);
  assert.equal(api, 401);
  await page.context().close();
});
