// Helpers of the end-to-end suite: Debian's Chromium driven by
// playwright-core (never a downloaded browser), pages that fail the test on
// any script error or Content-Security-Policy violation, axe-core checks,
// screenshots, and the people-and-films arithmetic the tests compare the
// screens with (from the fake site's /_fake/films/USER).
import { createRequire } from 'node:module';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { ROOT, startFake, startServer } from './servers.mjs';

const require = createRequire(join(ROOT, 'web', 'package.json'));
const { chromium } = require('playwright-core');
const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

export const SHOTS = join(ROOT, 'tests', 'artifacts', 'screenshots');
export const PHONE = { width: 390, height: 844 };
export const DESKTOP = { width: 1280, height: 800 };
export const WAIT_MS = 15000;

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export async function launch() {
  return chromium.launch({
    executablePath: process.env.FP_CHROMIUM || '/usr/bin/chromium',
    args: CHROMIUM_ARGS,
    timeout: 30000,
  });
}

/** A browser context with one page that records problems. */
export async function open(browser, baseURL, { viewport = DESKTOP, reducedMotion = 'no-preference', bypassCSP = false } = {}) {
  const context = await browser.newContext({
    baseURL,
    viewport,
    reducedMotion,
    bypassCSP,
    isMobile: viewport.width < 500,
    hasTouch: viewport.width < 500,
    permissions: ['clipboard-read', 'clipboard-write'],
  });
  context.setDefaultTimeout(WAIT_MS);
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    const t = m.text();
    if (/Content.Security.Policy|Refused to/i.test(t)) problems.push(`CSP: ${t}`);
    else if (m.type() === 'error' && !/Failed to load resource: the server responded with a status of (404|409|422)/.test(t)) {
      problems.push(`console error: ${t}`);
    }
  });
  page.on('dialog', (d) => {
    problems.push(`dialog: ${d.type()} ${d.message()}`);
    void d.dismiss();
  });
  return { context, page, problems };
}

export function assertNoProblems(problems, what = 'page') {
  assert.deepEqual(problems, [], `${what} had problems:\n${problems.join('\n')}`);
}

/** axe-core on the page as it is now: no serious or critical violation. */
export async function axe(page, label) {
  const has = await page.evaluate(() => typeof window.axe === 'object');
  if (!has) await page.evaluate(AXE_SOURCE); // via the DevTools protocol, not a <script>: the CSP stays on
  const result = await page.evaluate(async () => {
    const r = await window.axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] },
    });
    return r.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')),
    }));
  });
  const bad = result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  const minor = result.filter((v) => !bad.includes(v));
  if (minor.length) console.log(`# axe ${label}: minor: ${minor.map((v) => `${v.id}(${v.impact})`).join(', ')}`);
  assert.deepEqual(bad, [], `axe found serious/critical violations on ${label}:\n${JSON.stringify(bad, null, 2)}`);
  return result;
}

export async function screenshot(page, name) {
  mkdirSync(SHOTS, { recursive: true });
  const vp = page.viewportSize();
  const file = join(SHOTS, `${name}-${vp.width}x${vp.height}.png`);
  await page.screenshot({ path: file, fullPage: false });
  return file;
}

/** No sideways scrolling (the 360 px promise). */
export async function assertFitsWidth(page, label) {
  const { scroll, inner } = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth,
    inner: window.innerWidth,
  }));
  assert.ok(scroll <= inner, `${label}: page is ${scroll}px wide in a ${inner}px viewport`);
}

// ---- the app's screens, as a person uses them ---------------------------------

export async function startSession(page) {
  await page.goto('/');
  await page.getByRole('button', { name: 'Watch together!' }).click();
  await page.waitForURL(/\/s\/[0-9a-f]{32}$/);
  await page.getByRole('heading', { level: 1, name: 'Who is watching?' }).waitFor();
  return new URL(page.url()).pathname.slice(3);
}

export function profileField(page) {
  return page.getByLabel('Letterboxd profile link or username');
}

/** Types a profile, waits for the check, adds it, waits for the person in the list. */
export async function addPerson(page, typed, canonical) {
  const field = profileField(page);
  await field.fill(typed);
  // well formed (not yet "found": that shows once they are added)
  await page.getByText(`Add “${canonical}” to look them up on Letterboxd.`, { exact: true }).waitFor();
  await page.getByRole('button', { name: 'Add', exact: true }).click();
  await personRow(page, canonical).waitFor();
  await assertValue(field, '');
}

export function personRow(page, name) {
  return page.locator('.people .person').filter({ has: page.locator('.person-name', { hasText: new RegExp(`^${name}$`) }) });
}

async function assertValue(locator, value) {
  await locator.page().waitForFunction(
    ([el, v]) => el.value === v,
    [await locator.elementHandle(), value],
    { timeout: WAIT_MS },
  );
}

export async function waitForResults(page, timeout = 60000) {
  await page.locator('.results h1').waitFor({ timeout });
}

export function filmButton(page, title) {
  return page.locator('.film-toggle').filter({ has: page.locator('.film-title', { hasText: title }) });
}

export async function shownTitles(page, section) {
  return page.locator(`section[aria-labelledby="${section}"] .film-title`).allTextContents();
}

// ---- what the fake site says the answer is -------------------------------------

export async function fakeFilms(fake, user) {
  const r = await fetch(`${fake.url}/_fake/films/${user}`);
  assert.equal(r.status, 200);
  return r.json();
}

/** {common: [film...], most: [{film, lists}]} the way the server ranks them. */
export async function expected(fake, users, small = 10) {
  const lists = await Promise.all(users.map((u) => fakeFilms(fake, u)));
  const count = new Map();
  const byId = new Map();
  for (const list of lists) {
    for (const f of new Map(list.map((x) => [x.lb_id, x])).values()) {
      count.set(f.lb_id, (count.get(f.lb_id) ?? 0) + 1);
      byId.set(f.lb_id, f);
    }
  }
  const common = [...count].filter(([, n]) => n === users.length).map(([id]) => byId.get(id));
  const most =
    users.length >= 3 && common.length < small
      ? [...count].filter(([, n]) => n >= 2 && n < users.length).map(([id, n]) => ({ film: byId.get(id), lists: n }))
      : [];
  return { common, most };
}

/**
 * The servers of one test file: servers(fakeFlags, env) starts a fake site
 * (react2025 markup unless told) and a FilmPicker with a fresh database;
 * its stop() checks that FilmPicker exits 0 on SIGTERM. stopAll() (in the
 * file's after hook) stops whatever a failed test left running.
 */
export function serverPool() {
  const running = [];
  return {
    async servers(fakeFlags = {}, env = {}) {
      const fake = await startFake({ markup: 'react2025', ...fakeFlags });
      running.push(fake);
      const fp = await startServer(fake, env);
      running.push(fp);
      return {
        fake,
        fp,
        async stop() {
          const a = await fp.stop();
          await fake.stop();
          running.splice(running.indexOf(fp), 1);
          running.splice(running.indexOf(fake), 1);
          assert.equal(a.exit?.code, 0, `filmpicker did not exit 0 on SIGTERM:\n${a.log}`);
        },
      };
    },
    async stopAll() {
      for (const p of running.reverse()) await p.stop();
      running.length = 0;
    },
  };
}

/**
 * The hooks of one test file: a browser launched before its tests (handed
 * to onBrowser) and closed after them, and a server pool whose leftovers are
 * stopped. Returns the pool's servers().
 */
export function suite(onBrowser) {
  const pool = serverPool();
  let browser;
  before(async () => {
    browser = await launch();
    onBrowser(browser);
  });
  after(async () => {
    await browser?.close();
    await pool.stopAll();
  });
  return pool.servers;
}
