// The web app end to end: headless Chromium (Debian's) against the real
// `filmpicker serve` and the fake Letterboxd, through the screens a person
// uses. Each test starts its own servers (fresh database). Screenshots of
// every screen at 390x844 and 1280x800 go to tests/artifacts/screenshots/
// (with FP_E2E_UPDATE_DOCS=1 also to docs/screenshots/, which the README shows).
//
//   node tests/e2e/run.mjs           (or: cd web && npm run e2e)
//   FP_BUILD_DIR=build-x  the binaries; FILMPICKER_WEB_DIR  the web build
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, startRelay } from './servers.mjs';
import {
  DESKTOP,
  PHONE,
  SHOTS,
  addPerson,
  assertFitsWidth,
  assertNoProblems,
  axe,
  expected,
  fakeFilms,
  filmButton,
  launch,
  open,
  personRow,
  profileField,
  screenshot,
  shownTitles,
  startSession,
  waitForResults,
  serverPool,
} from './lib.mjs';

let browser;
const pool = serverPool();
const servers = pool.servers;

before(async () => {
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await pool.stopAll();
  if (process.env.FP_E2E_UPDATE_DOCS === '1') {
    const docs = join(ROOT, 'docs', 'screenshots');
    mkdirSync(docs, { recursive: true });
    for (const f of readdirSync(SHOTS)) if (f.endsWith('.png')) copyFileSync(join(SHOTS, f), join(docs, f));
    console.log(`# screenshots copied to ${docs}`);
  }
});

// The other test files of the suite (tests/e2e/*.test.mjs) run with this
// one (each starts its own browser and servers).
for (const f of readdirSync(new URL('.', import.meta.url)).filter((n) => n.endsWith('.test.mjs')).sort()) {
  await import(new URL(f, import.meta.url).href);
}


// Small catalogue, few films everyone shares: results have both "on every
// list" and "on most lists". Latency keeps the loading screen up a while.
// Lists are read as people are added: slow_carol's (each page waits
// slowMs) is still being read when the search starts, so it shows.
const FLOW_FAKE = { universe: 3000, common: 3, latencyMs: 400, slowMs: 4000 };

test('start page: renders fast, explains itself, passes axe at both sizes', { timeout: 60000 }, async () => {
  const s = await servers();
  for (const viewport of [PHONE, DESKTOP]) {
    const { context, page, problems } = await open(browser, s.fp.url, { viewport });
    const t0 = Date.now();
    await page.goto('/');
    await page.getByRole('button', { name: 'Watch together!' }).waitFor({ state: 'visible' });
    const wall = Date.now() - t0;
    const fcp = await page.evaluate(() => performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? -1);
    console.log(`# first screen ${viewport.width}x${viewport.height}: button visible ${wall} ms after goto, first contentful paint ${Math.round(fcp)} ms`);
    await page.getByRole('heading', { level: 1, name: /Pick a film your whole group wants to see/ }).waitFor();
    await assertFitsWidth(page, 'start');
    await axe(page, `start ${viewport.width}`);
    await screenshot(page, 'start');

    // How it works: opens, explains the logic, closes with Escape.
    await page.getByRole('button', { name: 'How it works?' }).click();
    const dialog = page.getByRole('dialog', { name: 'How it works' });
    await dialog.waitFor();
    await dialog.getByText('takes that film off everyone’s watchlist here in FilmPicker').waitFor();
    await dialog.getByText('Your Letterboxd watchlists are not changed.').waitFor();
    await axe(page, 'how it works');
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });

    // Keyboard: Tab reaches the main button with a visible focus ring.
    await page.goto('/');
    for (let i = 0; i < 6; i++) {
      await page.keyboard.press('Tab');
      if (await page.evaluate(() => document.activeElement?.textContent === 'Watch together!')) break;
    }
    const outline = await page.evaluate(() => {
      const el = document.activeElement;
      return el?.textContent === 'Watch together!' ? getComputedStyle(el).outlineStyle : 'not focused';
    });
    assert.equal(outline, 'solid');
    assertNoProblems(problems);
    await context.close();
  }

  // The page's security headers, the precompressed hashed assets, the unknown page.
  const r = await fetch(`${s.fp.url}/`, { headers: { 'Accept-Encoding': 'br' } });
  assert.match(r.headers.get('content-security-policy') ?? '', /script-src 'self'/);
  const html = await r.text();
  const js = /src="(\/assets\/index-[\w-]+\.js)"/.exec(html)?.[1];
  assert.ok(js, 'index.html names its hashed script');
  const { request } = await import('node:http');
  const head = await new Promise((res, rej) => {
    const req = request(`${s.fp.url}${js}`, { headers: { 'Accept-Encoding': 'gzip, br' } }, (resp) => {
      resp.resume();
      res(resp.headers);
    });
    req.on('error', rej);
    req.end();
  });
  console.log(`# ${js}: content-encoding ${head['content-encoding']}, cache-control ${head['cache-control']}`);
  assert.equal(head['content-encoding'], 'br');
  assert.match(head['cache-control'] ?? '', /immutable/);
  const { context, page, problems } = await open(browser, s.fp.url);
  await page.goto('/s/00000000000000000000000000000000');
  await page.getByText('This session has ended or the link is wrong.').waitFor();
  await axe(page, 'missing session');
  await context.close();
  assertNoProblems(problems.filter((p) => !p.includes('404')));
  await s.stop();
});

for (const viewport of [DESKTOP, PHONE]) {
  test(`full flow for three people at ${viewport.width}x${viewport.height}`, { timeout: 120000 }, async () => {
    const s = await servers(FLOW_FAKE);
    const { context, page, problems } = await open(browser, s.fp.url, { viewport, reducedMotion: 'reduce' });
    await startSession(page);

    // Validation as you type.
    await profileField(page).fill('https://evil.example/alice/');
    await page.getByText('“https://evil.example/alice/” is not a Letterboxd username or profile link (try alice or https://letterboxd.com/alice/).', { exact: true }).waitFor();
    assert.equal(await page.getByRole('button', { name: 'Add', exact: true }).isDisabled(), true);
    await profileField(page).fill('alice smith');
    await page.getByText('A username has no spaces', { exact: false }).waitFor();

    await addPerson(page, 'https://letterboxd.com/Alice/', 'alice');
    await addPerson(page, '@bob', 'bob');
    await addPerson(page, 'letterboxd.com/slow_carol/watchlist/', 'slow_carol');
    await page.locator('svg.qr path').waitFor();
    // served on 127.0.0.1: the join link is this page's address, and the
    // page says phones cannot open it
    assert.equal(await page.getByLabel('Join link', { exact: true }).inputValue(), page.url());
    await page.getByText('This address only works on this computer.', { exact: false }).waitFor();
    await assertFitsWidth(page, 'session');
    await axe(page, `session ${viewport.width}`);
    await screenshot(page, 'session');

    // Loading: a progress bar per person.
    await page.getByRole('button', { name: 'Suggest a film!' }).click();
    await page.getByRole('heading', { level: 1, name: 'Reading watchlists…' }).waitFor();
    for (const who of ['alice', 'bob', 'slow_carol']) await page.getByRole('progressbar', { name: new RegExp(`^${who}: `) }).waitFor();
    await page.locator('.progress-label', { hasText: /\d+ of \d+ pages|films/ }).first().waitFor();
    await assertFitsWidth(page, 'loading');
    await axe(page, `loading ${viewport.width}`);
    await screenshot(page, 'loading');

    // Results match the lists on the fake site.
    await waitForResults(page);
    const want = await expected(s.fake, ['alice', 'bob', 'slow_carol']);
    assert.ok(want.common.length >= 1 && want.most.length >= 1, 'the fake catalogue should give both kinds of results');
    assert.deepEqual((await shownTitles(page, 'common-title')).sort(), want.common.map((f) => f.title).sort());
    assert.deepEqual((await shownTitles(page, 'most-title')).sort(), want.most.map((m) => m.film.title).sort());
    const first = want.most[0];
    await page
      .locator('.film')
      .filter({ has: page.locator('.film-title', { hasText: first.film.title }) })
      .getByText(`on ${first.lists} of 3 lists`)
      .waitFor();
    await page.getByRole('heading', { level: 1, name: want.common.length === 1 ? '1 film you all want to see' : `${want.common.length} films you all want to see` }).waitFor();
    await assertFitsWidth(page, 'results');
    await axe(page, `results ${viewport.width}`);
    await screenshot(page, 'results');

    // Roll: the film is one of the results, shown full screen.
    await page.getByRole('button', { name: 'Roll!' }).click();
    const rolled = page.locator('dialog.rolled');
    await rolled.locator('#rolled-title').waitFor();
    const title = (await rolled.locator('#rolled-title').textContent()) ?? '';
    const all = [...want.common.map((f) => f.title), ...want.most.map((m) => m.film.title)];
    assert.ok(all.some((t) => title.startsWith(t)), `rolled “${title}” is not among the results`);
    await page.waitForTimeout(200);
    await axe(page, `rolled ${viewport.width}`);
    await screenshot(page, 'rolled');
    assertNoProblems(problems);
    await context.close();
    await s.stop();
  });
}

test('the smallest phone, 360x640: every screen fits without sideways scrolling', { timeout: 120000 }, async () => {
  // with the address phones reach the server at configured (as behind a proxy)
  const s = await servers({ universe: 3000, common: 3 }, { FILMPICKER_PUBLIC_URL: 'https://films.example.org/' });
  const { context, page, problems } = await open(browser, s.fp.url, { viewport: { width: 360, height: 640 }, reducedMotion: 'reduce' });
  await page.goto('/');
  await page.getByRole('button', { name: 'Watch together!' }).waitFor();
  await assertFitsWidth(page, 'start 360');
  const sid = await startSession(page);
  assert.equal(await page.getByLabel('Join link', { exact: true }).inputValue(), `https://films.example.org/s/${sid}`);
  assert.equal(await page.getByText('This address only works on this computer.', { exact: false }).count(), 0);
  // a long name and an error message must wrap, not widen the page
  for (const u of ['alice', 'bob', 'notfound_averyveryverylongname']) await addPerson(page, u, u);
  await page.locator('svg.qr path').waitFor();
  await assertFitsWidth(page, 'session 360');
  await page.getByRole('button', { name: 'Suggest a film!' }).click();
  await waitForResults(page);
  await page.locator('section.missing-lists').getByText('No Letterboxd user called “notfound_averyveryverylongname”').waitFor();
  await assertFitsWidth(page, 'results 360');
  await axe(page, 'results 360');
  // a list is missing: Roll! waits until the group chooses to go on
  await page.getByRole('button', { name: 'Go on anyway' }).click();
  await page.getByRole('button', { name: 'Roll!' }).click();
  await page.locator('dialog.rolled #rolled-title').waitFor();
  await assertFitsWidth(page, 'rolled 360');
  assertNoProblems(problems);
  await context.close();
  await s.stop();
});

test('posters where known: served from this origin, the initials where there is none', { timeout: 120000 }, async () => {
  // The fake shows poster images (as a browser-saved page does); films whose
  // Letterboxd id is a multiple of 3 have an image the host no longer has.
  const s = await servers({ universe: 3000, common: 12, posters: true });
  const { context, page, problems } = await open(browser, s.fp.url, { viewport: DESKTOP, reducedMotion: 'reduce' });
  const outside = [];
  page.on('request', (r) => {
    if (!r.url().startsWith(s.fp.url)) outside.push(r.url());
  });
  await startSession(page);
  for (const u of ['alice', 'bob']) await addPerson(page, u, u);
  await page.getByRole('button', { name: 'Suggest a film!' }).click();
  await waitForResults(page);
  const films = await fakeFilms(s.fake, 'alice');
  const byTitle = new Map(films.map((f) => [f.title, f]));
  const want = await expected(s.fake, ['alice', 'bob']);
  assert.ok(want.common.length >= 12);
  // let every image load or fail
  await page.waitForFunction(() => [...document.querySelectorAll('img.poster-img')].every((i) => i.complete), null, { timeout: 30000 });
  await page.waitForTimeout(200);
  const cards = await page.locator('section[aria-labelledby="common-title"] .film').evaluateAll((els) =>
    els.map((el) => {
      const img = el.querySelector('img.poster-img');
      return {
        title: el.querySelector('.film-title')?.textContent ?? '',
        src: img?.getAttribute('src') ?? null,
        shown: !!img && img.complete && img.naturalWidth > 0,
        initials: el.querySelector('.poster')?.firstChild?.textContent ?? '',
      };
    }),
  );
  assert.equal(cards.length, want.common.length);
  let shown = 0;
  for (const c of cards) {
    const f = byTitle.get(c.title);
    assert.ok(f, `unknown film ${c.title}`);
    assert.ok(c.initials.length > 0, `${c.title}: the initials are always underneath`);
    if (f.lb_id % 3 !== 0) {
      assert.match(c.src ?? '', /^\/api\/v1\/films\/\d+\/poster$/, c.title);
      assert.ok(c.shown, `${c.title}: its poster should show`);
      shown++;
    } else {
      assert.equal(c.shown, false, `${c.title}: the host has no image for it`);
    }
  }
  assert.ok(shown > 0 && shown < cards.length, `posters shown: ${shown} of ${cards.length}`);
  assert.deepEqual(outside, [], 'the browser asked another host');
  await axe(page, 'results with posters');
  assertNoProblems(problems);
  await context.close();
  await s.stop();
});

test('two browsers in one session see each other live', { timeout: 120000 }, async () => {
  const s = await servers({ universe: 3000, common: 3, latencyMs: 100 });
  const a = await open(browser, s.fp.url, { viewport: DESKTOP, reducedMotion: 'reduce' });
  const id = await startSession(a.page);
  // B (a phone) reaches the server through a relay the test can cut.
  const relay = await startRelay(s.fp.url);
  const b = await open(browser, relay.url, { viewport: PHONE, reducedMotion: 'reduce' });
  await b.page.goto(`/s/${id}`);
  await b.page.getByRole('heading', { level: 1, name: 'Who is watching?' }).waitFor();

  // Added on one device, seen on the other; removed likewise.
  await addPerson(a.page, 'alice', 'alice');
  await personRow(b.page, 'alice').waitFor();
  await addPerson(b.page, 'bob', 'bob');
  await personRow(a.page, 'bob').waitFor();
  await addPerson(b.page, 'dave', 'dave');
  await personRow(a.page, 'dave').waitFor();
  await a.page.getByRole('button', { name: 'Remove dave' }).click();
  await personRow(b.page, 'dave').waitFor({ state: 'detached' });
  await personRow(a.page, 'dave').waitFor({ state: 'detached' });
  // B drops off the network; what happens meanwhile reaches it after it
  // reconnects (EventSource's Last-Event-ID, or a fresh session event).
  relay.drop(true);
  await b.page.getByText('Connection lost, reconnecting…').waitFor();
  await addPerson(a.page, 'carol', 'carol');
  await personRow(b.page, 'carol').waitFor({ state: 'detached', timeout: 500 }).catch(() => {});
  assert.equal(await personRow(b.page, 'carol').count(), 0, 'B cannot see carol while cut off');
  relay.restore();
  await personRow(b.page, 'carol').waitFor({ timeout: 30000 });
  await b.page.getByText('Connection lost, reconnecting…').waitFor({ state: 'detached' });

  // The search started on A is followed on B.
  await b.page.getByRole('button', { name: 'Suggest a film!' }).click();
  await waitForResults(a.page);
  await waitForResults(b.page);
  const want = await expected(s.fake, ['alice', 'bob', 'carol']);
  const film = want.common[0] ?? want.most[0]?.film;
  assert.ok(film);

  // B strikes a film out, A sees it; A brings it back, B sees that.
  await filmButton(b.page, film.title).click();
  await a.page.waitForFunction((t) => [...document.querySelectorAll('.film-toggle')].some((b) => b.textContent.includes(t) && b.getAttribute('aria-pressed') === 'true'), film.title);
  await filmButton(a.page, film.title).click();
  await b.page.waitForFunction((t) => [...document.querySelectorAll('.film-toggle')].some((b) => b.textContent.includes(t) && b.getAttribute('aria-pressed') === 'false'), film.title);

  // A rolls; B gets the same film full screen.
  await a.page.getByRole('button', { name: 'Roll!' }).click();
  const ta = await a.page.locator('#rolled-title').textContent();
  await b.page.locator('#rolled-title').waitFor();
  assert.equal(await b.page.locator('#rolled-title').textContent(), ta);

  assertNoProblems(a.problems, 'A');
  // The cut itself shows in B's console as failed loads; nothing else may.
  assertNoProblems(
    b.problems.filter((p) => !/net::ERR_(INCOMPLETE_CHUNKED_ENCODING|CONNECTION_\w+|EMPTY_RESPONSE)/.test(p)),
    'B',
  );
  await a.context.close();
  await b.context.close();
  await relay.stop();
  await s.stop();
});

test('veto and unveto by mouse and keyboard; roll skips struck-out films', { timeout: 120000 }, async () => {
  const s = await servers({ universe: 3000, common: 3 });
  const { context, page, problems } = await open(browser, s.fp.url, { reducedMotion: 'reduce' });
  const id = await startSession(page);
  await addPerson(page, 'alice', 'alice');
  await addPerson(page, 'bob', 'bob');
  await page.getByRole('button', { name: 'Suggest a film!' }).click();
  await waitForResults(page);
  const want = await expected(s.fake, ['alice', 'bob']);
  assert.ok(want.common.length >= 2, `need two common films, got ${want.common.length}`);
  const [keep, ...strike] = want.common;

  // Mouse: strike out, the server has it, bring back.
  const btn = filmButton(page, strike[0].title);
  await btn.click();
  assert.equal(await btn.getAttribute('aria-pressed'), 'true');
  await page.waitForFunction(async ([sid, fid]) => {
    const r = await fetch(`/api/v1/sessions/${sid}`);
    return (await r.json()).vetoed.includes(fid);
  }, [id, await filmId(page, id, strike[0].title)]);
  await btn.click();
  assert.equal(await btn.getAttribute('aria-pressed'), 'false');

  // Keyboard: Space and Enter toggle the focused film.
  await btn.focus();
  await page.keyboard.press('Space');
  await page.waitForFunction((el) => el.getAttribute('aria-pressed') === 'true', await btn.elementHandle());
  await page.keyboard.press('Enter');
  await page.waitForFunction((el) => el.getAttribute('aria-pressed') === 'false', await btn.elementHandle());

  // Strike out all but one: the roll must give that one.
  for (const f of strike) {
    await filmButton(page, f.title).click();
    await page.waitForFunction((el) => el.getAttribute('aria-pressed') === 'true', await filmButton(page, f.title).elementHandle());
  }
  await page.getByText('One film on everyone’s list is left to roll.', { exact: false }).waitFor();
  await page.getByRole('button', { name: 'Roll!' }).click();
  await page.locator('#rolled-title').waitFor();
  assert.ok(((await page.locator('#rolled-title').textContent()) ?? '').startsWith(keep.title));
  assertNoProblems(problems);
  await context.close();
  await s.stop();
});

async function filmId(page, sid, title) {
  return page.evaluate(
    async ([sid, title]) => {
      const s = await (await fetch(`/api/v1/sessions/${sid}`)).json();
      return [...s.results.common, ...s.results.most].find((f) => f.title === title).id;
    },
    [sid, title],
  );
}

test('roll animation: shuffles, then lands on the pick; reduced motion goes straight there', { timeout: 90000 }, async () => {
  const s = await servers({ universe: 3000, common: 12 });
  for (const reducedMotion of ['no-preference', 'reduce']) {
    const { context, page, problems } = await open(browser, s.fp.url, { reducedMotion });
    await startSession(page);
    await addPerson(page, 'alice', 'alice');
    await addPerson(page, 'bob', 'bob');
    await page.getByRole('button', { name: 'Suggest a film!' }).click();
    await waitForResults(page);
    await page.getByRole('button', { name: 'Roll!' }).click();
    const dialog = page.locator('dialog.rolled');
    await dialog.waitFor();
    const sawShuffle = await page
      .locator('.rolled-inner.shuffling')
      .waitFor({ timeout: 300 })
      .then(() => true)
      .catch(() => false);
    assert.equal(sawShuffle, reducedMotion === 'no-preference', `shuffle with ${reducedMotion}`);
    await page.locator('.rolled-inner.landed #rolled-title').waitFor({ timeout: 5000 });
    await page.getByRole('button', { name: 'Back to the list' }).click();
    await dialog.waitFor({ state: 'detached' });
    await page.locator('.results h1').waitFor();
    assertNoProblems(problems);
    await context.close();
  }
  await s.stop();
});

test('“We will watch it!” takes the film off everyone’s list for the next session', { timeout: 120000 }, async () => {
  const s = await servers({ universe: 3000, common: 3 });
  const { context, page, problems } = await open(browser, s.fp.url, { reducedMotion: 'reduce' });
  await startSession(page);
  await addPerson(page, 'alice', 'alice');
  await addPerson(page, 'bob', 'bob');
  await page.getByRole('button', { name: 'Suggest a film!' }).click();
  await waitForResults(page);
  const before = await shownTitles(page, 'common-title');
  await page.getByRole('button', { name: 'Roll!' }).click();
  const title = ((await page.locator('#rolled-title').textContent()) ?? '').replace(/ \(\d{4}\)$/, '');
  assert.ok(before.includes(title), `rolled “${title}” should be common`);
  // One more tap to be sure: "Not yet" goes back, nothing changed.
  await page.getByRole('button', { name: 'We will watch it!' }).click();
  await page.getByText(`Take “${title}” off everyone’s watchlist here, so it does not come up next time?`).waitFor();
  await axe(page, 'watched confirmation');
  await page.getByRole('button', { name: 'Not yet' }).click();
  await page.getByRole('button', { name: 'We will watch it!' }).click();
  await page.getByRole('button', { name: 'Yes, take it off' }).click();
  await page.getByText('Enjoy the film!').waitFor();
  await page.getByText('It is off everyone’s watchlist here in FilmPicker').waitFor();
  await axe(page, 'watched');
  await page.getByRole('button', { name: 'Back to the list' }).click();

  // A new session with the same people: the film is gone.
  await startSession(page);
  await addPerson(page, 'alice', 'alice');
  await addPerson(page, 'bob', 'bob');
  await page.getByRole('button', { name: 'Suggest a film!' }).click();
  await waitForResults(page);
  const next = await shownTitles(page, 'common-title');
  assert.deepEqual(next.sort(), before.filter((t) => t !== title).sort());
  assertNoProblems(problems);
  await context.close();
  await s.stop();
});

test('every error in plain words, and the export upload offered for a refusal', { timeout: 180000 }, async () => {
  const s = await servers({ universe: 3000, common: 3 });
  for (const viewport of [DESKTOP, PHONE]) {
    const { context, page, problems } = await open(browser, s.fp.url, { viewport, reducedMotion: 'reduce' });
    await startSession(page);
    // A blocked user of its own per round: the first round uploads its export.
    const blocked = `blocked_${viewport.width}`;
    for (const u of ['alice', 'notfound_x', 'empty_x', 'down_x', blocked]) await addPerson(page, u, u);
    await page.getByRole('button', { name: 'Suggest a film!' }).click();
    // While the site keeps answering 503 the fetch is retried, and the
    // loading screen says so; after the last retry it is an error.
    await page.locator('section.loading').getByText('Letterboxd is not answering, retrying…').waitFor({ timeout: 30000 });
    await waitForResults(page, 120000);
    // Named once, in the missing-lists notice (no "Left out" repeat below it)
    const left = page.locator('section.missing-lists');
    assert.equal(await page.locator('section.problems').count(), 0);
    await left.getByText('No Letterboxd user called “notfound_x”').waitFor();
    await left.getByText('This watchlist is private or empty').waitFor();
    await left.getByText('Letterboxd is not answering, try again in a while').waitFor();
    await left.getByText('Letterboxd refused the request: upload your export instead').waitFor();
    await assertFitsWidth(page, 'errors');
    await axe(page, `errors ${viewport.width}`);
    await screenshot(page, 'errors');

    if (viewport === DESKTOP) {
      // The upload right there: blocked_x's export becomes their stored list
      // and the search runs again with it.
      await left.getByLabel(`Upload the Letterboxd export of ${blocked}`).setInputFiles(join(ROOT, 'tests', 'data', 'api_watchlist.csv'));
      // the same report as the top upload box
      const report = page.locator('section.card-upload');
      await report.getByText('10 films matched from api_watchlist.csv.', { exact: true }).waitFor();
      await report.getByText('3 rows could not be used:', { exact: true }).waitFor();
      assert.equal(await report.locator('table.upload-rows tbody tr').count(), 3);
      await waitForResults(page, 120000);
      await page.waitForFunction(
        (who) => ![...document.querySelectorAll('section.missing-lists .person-name, section.problems .person-name')].some((e) => e.textContent === who),
        blocked,
        { timeout: 120000 },
      );
    }
    assertNoProblems(problems);
    await context.close();
  }
  await s.stop();
});

test('the export upload is offered while the others are still read, and joins the search', { timeout: 120000 }, async () => {
  const s = await servers({ universe: 3000, common: 3, slowMs: 6000 });
  const { context, page, problems } = await open(browser, s.fp.url, { viewport: PHONE, reducedMotion: 'reduce' });
  await startSession(page);
  for (const u of ['alice', 'slow_bob', 'blocked_up']) await addPerson(page, u, u);
  await page.getByRole('button', { name: 'Suggest a film!' }).click();
  const loading = page.locator('section.loading');
  await loading.getByText('Letterboxd refused the request: upload your export instead').waitFor();
  // slow_bob is still being read: the search is running
  assert.equal(await page.locator('.results h1').count(), 0);
  await loading.getByLabel('Upload the Letterboxd export of blocked_up').setInputFiles(join(ROOT, 'tests', 'data', 'api_watchlist.csv'));
  await page.getByText('Export uploaded: it joins the search as soon as the others are read.').waitFor();
  // the same report as the top upload box
  const report = page.locator('section.card-upload');
  await report.getByText('10 films matched from api_watchlist.csv.', { exact: true }).waitFor();
  await report.getByText('3 rows could not be used:', { exact: true }).waitFor();
  assert.equal(await report.locator('table.upload-rows tbody tr').count(), 3);
  // the search ends, and runs again by itself with the uploaded list
  await page.waitForFunction(
    () =>
      document.querySelector('.results h1') !== null &&
      ![...document.querySelectorAll('section.missing-lists .person-name, section.problems .person-name')].some((e) => e.textContent === 'blocked_up'),
    null,
    { timeout: 60000 },
  );
  assertNoProblems(problems);
  await context.close();
  await s.stop();
});

test('an export upload adds a person', { timeout: 60000 }, async () => {
  const s = await servers();
  const { context, page, problems } = await open(browser, s.fp.url);
  await startSession(page);
  await page.getByText('No Letterboxd profile to link? Upload an export instead').click();
  await page.getByLabel('Their name').fill('Dana');
  await page.getByLabel('Letterboxd export file').setInputFiles(join(ROOT, 'tests', 'data', 'api_watchlist.csv'));
  await page.getByText('10 films matched from api_watchlist.csv.', { exact: true }).waitFor();
  await page.getByText('3 rows could not be used:', { exact: true }).waitFor();
  await page.locator('.people .person', { hasText: 'uploaded list' }).waitFor();
  assertNoProblems(problems);
  await context.close();
  await s.stop();
});

test('XSS: a film titled <img src=x onerror=alert(1)> is shown as text, no script runs', { timeout: 90000 }, async () => {
  const s = await servers();
  // bypassCSP: prove the escaping itself, not only the CSP, keeps the script out.
  for (const bypassCSP of [false, true]) {
    const { context, page, problems } = await open(browser, s.fp.url, { bypassCSP });
    await context.addInitScript(() => {
      window.__xss = false;
      window.alert = () => {
        window.__xss = true;
      };
    });
    await startSession(page);
    await addPerson(page, 'xss_a', 'xss_a');
    await addPerson(page, 'xss_b', 'xss_b');
    await page.getByRole('button', { name: 'Suggest a film!' }).click();
    await waitForResults(page);
    const payload = '<img src=x onerror=alert(1)>';
    await page.locator('.film-title', { hasText: payload }).first().waitFor();
    assert.equal(await page.locator('.film-title', { hasText: payload }).first().textContent(), payload);
    await page.waitForTimeout(300);
    assert.equal(await page.evaluate(() => window.__xss), false);
    assert.equal(await page.locator('img[src="x"]').count(), 0);
    assertNoProblems(problems);
    await context.close();
  }
  await s.stop();
});

// The session screen's side of issue 7 (gathering, uploads, missing lists).
import './gathering.test.mjs';
