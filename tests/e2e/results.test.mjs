// End-to-end tests of the results and the rolled film (issue 7): what is
// VISIBLE in each state of the rolled screen (Playwright's isVisible, not DOM
// presence), every common film reachable and rollable (800 of them, paged and
// searched), the Roll! bar in view after scrolling on a phone, a history
// entry per screen with "Return to your session", links out to Letterboxd
// and sharing, "Put it back", the app's own "page not found".
// Run alone:  FP_BUILD_DIR=$PWD/build node --test tests/e2e/results.test.mjs
// (tests/e2e/run.mjs runs it too).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DESKTOP,
  PHONE,
  addPerson,
  assertFitsWidth,
  assertNoProblems,
  axe,
  expected,
  fakeFilms,
  filmButton,
  open,
  screenshot,
  startSession,
  waitForResults,
  suite,
} from './lib.mjs';

let browser;
const servers = suite((b) => {
  browser = b;
});


/** A session of `users` on the results screen. */
async function resultsFor(page, users) {
  const id = await startSession(page);
  for (const u of users) await addPerson(page, u, u);
  await page.getByRole('button', { name: 'Suggest a film!' }).click();
  await waitForResults(page, 120000);
  return id;
}

/** The text of every button inside `scope` that a person can see. */
async function visibleButtons(scope) {
  const all = scope.locator('button');
  const n = await all.count();
  const names = [];
  for (let i = 0; i < n; i++) {
    const b = all.nth(i);
    if (await b.isVisible()) names.push(((await b.textContent()) ?? '').trim());
  }
  return names;
}

async function api(page, path) {
  return page.evaluate(async (p) => {
    const r = await fetch(p, { headers: { Accept: 'application/json' } });
    return { status: r.status, body: await r.json().catch(() => null) };
  }, path);
}

/** A state-changing request from the page (its cookie and CSRF token). */
async function apiPost(page, path, body) {
  return page.evaluate(
    async ([p, b]) => {
      const c = await (await fetch('/api/v1/client')).json();
      const r = await fetch(p, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': c.csrf_token },
        body: JSON.stringify(b),
      });
      return { status: r.status, body: await r.json().catch(() => null) };
    },
    [path, body],
  );
}

async function allCommon(page, id) {
  const films = [];
  let total = -1;
  for (let offset = 0; total < 0 || offset < total; offset += 500) {
    const r = await api(page, `/api/v1/sessions/${id}/films?offset=${offset}&limit=500`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.offset, offset);
    total = r.body.total;
    films.push(...r.body.films);
    if (r.body.films.length === 0) break;
  }
  return { total, films };
}

const ROLLED_LANDED = ['We will watch it!', 'Copy title', 'Share', 'Roll again', 'Back to the list'];

test('visibility: the hidden attribute always wins over a display rule', { timeout: 60000 }, async () => {
  const s = await servers();
  const { context, page, problems } = await open(browser, s.fp.url);
  await page.goto('/');
  await page.getByRole('button', { name: 'Watch together!' }).waitFor();
  const shown = await page.evaluate(() => {
    const out = {};
    for (const cls of ['actions', 'actions rolled-actions', 'btn', 'action-bar', 'films', 'hero']) {
      const el = document.createElement('div');
      el.className = cls;
      el.hidden = true;
      el.textContent = 'x';
      document.body.appendChild(el);
      out[cls] = getComputedStyle(el).display;
      el.remove();
    }
    return out;
  });
  for (const [cls, display] of Object.entries(shown)) assert.equal(display, 'none', `.${cls}[hidden] is displayed as ${display}`);
  assertNoProblems(problems);
  await context.close();
  await s.stop();
});

test('visibility on the rolled film: nothing to press mid-shuffle, one question at a time, after watched', { timeout: 120000 }, async () => {
  const s = await servers({ universe: 3000, common: 12 });
  const { context, page, problems } = await open(browser, s.fp.url, { viewport: PHONE });
  const id = await resultsFor(page, ['alice', 'bob']);

  // results: Roll! can be seen and pressed
  const rollBtn = page.getByRole('button', { name: 'Roll!' });
  assert.equal(await rollBtn.isVisible(), true);
  assert.equal(await rollBtn.isEnabled(), true);
  assert.equal(await page.locator('.film-toggle').first().isVisible(), true);

  await rollBtn.click();
  const dialog = page.locator('dialog.rolled');
  // mid-shuffle: no button at all can be seen (or pressed)
  await dialog.locator('.rolled-inner.shuffling').waitFor({ state: 'visible', timeout: 2000 });
  const during = await visibleButtons(dialog);
  const stillShuffling = await dialog.locator('.rolled-inner.shuffling').isVisible();
  assert.ok(stillShuffling, 'the check ran during the shuffle');
  assert.deepEqual(during, [], `visible mid-shuffle: ${during.join(', ')}`);
  assert.equal(await dialog.getByText('We will watch it!').isVisible(), false);

  // the pick
  await dialog.locator('.rolled-inner.landed #rolled-title').waitFor({ state: 'visible', timeout: 8000 });
  assert.deepEqual(await visibleButtons(dialog), ROLLED_LANDED);
  for (const name of ROLLED_LANDED) assert.equal(await dialog.getByRole('button', { name }).isEnabled(), true, name);
  assert.equal(await dialog.getByRole('link', { name: /on Letterboxd/ }).isVisible(), true);
  const title = ((await dialog.locator('#rolled-title').textContent()) ?? '').replace(/ \(\d{4}\)$/, '');
  await axe(page, 'rolled phone');

  // the confirmation: only its two answers, no second "We will watch it!"
  await dialog.getByRole('button', { name: 'We will watch it!' }).click();
  await dialog.getByText(`Take “${title}” off everyone’s watchlist here`).waitFor({ state: 'visible' });
  assert.deepEqual(await visibleButtons(dialog), ['Yes, take it off', 'Not yet']);
  assert.equal(await dialog.getByText('We will watch it!').isVisible(), false);
  assert.equal(await dialog.getByRole('button', { name: 'Yes, take it off' }).isEnabled(), true);
  await axe(page, 'confirmation phone');
  await screenshot(page, 'rolled-confirm');

  // Not yet: back to the pick, the question gone
  await dialog.getByRole('button', { name: 'Not yet' }).click();
  await dialog.getByRole('button', { name: 'We will watch it!' }).waitFor({ state: 'visible' });
  assert.deepEqual(await visibleButtons(dialog), ROLLED_LANDED);
  assert.equal(await dialog.getByText(`Take “${title}” off`).isVisible(), false);

  // after watched: no "We will watch it!" nor "Roll again"; "Put it back" offered
  await dialog.getByRole('button', { name: 'We will watch it!' }).click();
  await dialog.getByRole('button', { name: 'Yes, take it off' }).click();
  await dialog.getByText('Enjoy the film!').waitFor({ state: 'visible' });
  assert.deepEqual(await visibleButtons(dialog), ['Put it back', 'Copy title', 'Share', 'Back to the list']);
  const sess = await api(page, `/api/v1/sessions/${id}`);
  assert.equal(sess.body.watched.length, 1);
  await axe(page, 'watched phone');
  await screenshot(page, 'rolled-watched');

  // back on the list: the dialog is gone, Roll! is there again
  await dialog.getByRole('button', { name: 'Back to the list' }).click();
  await dialog.waitFor({ state: 'detached' });
  assert.equal(await page.getByRole('button', { name: 'Roll!' }).isVisible(), true);
  assert.equal(await page.getByRole('button', { name: 'We will watch it!' }).count(), 0);
  // "Copy title" is on the rolled film, not on every card
  assert.equal(await page.locator('.film').getByRole('button', { name: /Copy title/ }).count(), 0, 'no Copy title on the cards');
  assertNoProblems(problems);
  await context.close();
  await s.stop();
});

test('“Put it back” on the confirmation returns the film to the list', { timeout: 120000 }, async () => {
  const s = await servers({ universe: 3000, common: 5 });
  const { context, page, problems } = await open(browser, s.fp.url, { reducedMotion: 'reduce' });
  const id = await resultsFor(page, ['alice', 'bob']);
  await page.getByRole('button', { name: 'Roll!' }).click();
  const dialog = page.locator('dialog.rolled');
  await dialog.locator('#rolled-title').waitFor();
  const first = (await api(page, `/api/v1/sessions/${id}`)).body;
  const rolled = first.rolled;
  const count = first.results.common_count;
  assert.ok(count >= 5);
  await dialog.getByRole('button', { name: 'We will watch it!' }).click();
  await dialog.getByRole('button', { name: 'Yes, take it off' }).click();
  await dialog.getByText('Enjoy the film!').waitFor();
  let sess = (await api(page, `/api/v1/sessions/${id}`)).body;
  assert.deepEqual(sess.watched, [rolled.id]);
  assert.equal(sess.results.common_count, count - 1);
  assert.equal(sess.results.pool, count - 1);

  await dialog.getByRole('button', { name: 'Put it back' }).click();
  await dialog.getByText(`“${rolled.title}” is back on everyone’s watchlist.`).waitFor();
  // the pick again: it can be marked watched once more
  await dialog.getByRole('button', { name: 'We will watch it!' }).waitFor({ state: 'visible' });
  assert.deepEqual(await visibleButtons(dialog), ROLLED_LANDED);
  sess = (await api(page, `/api/v1/sessions/${id}`)).body;
  assert.deepEqual(sess.watched, []);
  assert.equal(sess.results.common_count, count);
  assert.equal(sess.results.pool, count);
  assert.ok(sess.results.common.some((f) => f.id === rolled.id), 'the film is back among the common films');
  await dialog.getByRole('button', { name: 'Back to the list' }).click();
  await page.locator('.film-title', { hasText: rolled.title }).first().waitFor();
  await page.getByText(`${count} films on everyone’s list are left to roll from.`).waitFor();
  await page.locator('.action-bar').getByText(`${count} films left`).waitFor();
  assertNoProblems(problems);
  await context.close();
  await s.stop();
});

test('watched and put back on one device: the other device’s list and counts follow', { timeout: 120000 }, async () => {
  const s = await servers({ universe: 3000, common: 6 });
  const a = await open(browser, s.fp.url, { viewport: DESKTOP, reducedMotion: 'reduce' });
  const id = await resultsFor(a.page, ['alice', 'bob']);
  const n = (await expected(s.fake, ['alice', 'bob'])).common.length;
  const b = await open(browser, s.fp.url, { viewport: PHONE, reducedMotion: 'reduce' });
  await b.page.goto(`/s/${id}`);
  await waitForResults(b.page);
  await b.page.locator('.action-bar').getByText(`${n} films left`).waitFor();

  await a.page.getByRole('button', { name: 'Roll!' }).click();
  const da = a.page.locator('dialog.rolled');
  const db = b.page.locator('dialog.rolled');
  await da.locator('#rolled-title').waitFor();
  await db.locator('#rolled-title').waitFor();
  const title = ((await da.locator('#rolled-title').textContent()) ?? '').replace(/ \(\d{4}\)$/, '');
  await da.getByRole('button', { name: 'We will watch it!' }).click();
  await da.getByRole('button', { name: 'Yes, take it off' }).click();
  // B hears it: the same film, watched
  await db.getByText('Enjoy the film!').waitFor();
  assert.deepEqual(await visibleButtons(db), ['Put it back', 'Copy title', 'Share', 'Back to the list']);
  await db.getByRole('button', { name: 'Back to the list' }).click();
  await db.waitFor({ state: 'detached' });
  const common = b.page.locator('section[aria-labelledby="common-title"]');
  await b.page.waitForFunction(
    (t) => ![...document.querySelectorAll('section[aria-labelledby="common-title"] .film-title')].some((e) => e.textContent === t),
    title,
  );
  await b.page.getByRole('heading', { level: 1, name: `${n - 1} films you all want to see` }).waitFor();
  await b.page.locator('.action-bar').getByText(`${n - 1} films left`).waitFor();
  assert.equal(await common.locator('.film').count(), n - 1);

  // A puts it back: B's list has it again, the counts too
  await da.getByRole('button', { name: 'Put it back' }).click();
  await common.locator('.film-title', { hasText: title }).first().waitFor();
  await b.page.getByRole('heading', { level: 1, name: `${n} films you all want to see` }).waitFor();
  await b.page.locator('.action-bar').getByText(`${n} films left`).waitFor();
  assert.equal(await common.locator('.film').count(), n);
  assertNoProblems(a.problems, 'A');
  assertNoProblems(b.problems, 'B');
  await a.context.close();
  await b.context.close();
  await s.stop();
});

test('800 common films: all in the roll pool, rolls land beyond the first 500, the list reaches #800', { timeout: 240000 }, async () => {
  const s = await servers({ universe: 3000, common: 800, size: 820 });
  const { context, page, problems } = await open(browser, s.fp.url, { viewport: DESKTOP, reducedMotion: 'reduce' });
  const id = await resultsFor(page, ['alice', 'bob']);
  const want = await expected(s.fake, ['alice', 'bob']);
  assert.equal(want.common.length, 800);

  // the counts agree: headline, pool, films left
  const r = (await api(page, `/api/v1/sessions/${id}`)).body.results;
  assert.equal(r.common_count, 800);
  assert.equal(r.pool, 800);
  assert.ok(r.common.length <= 100, `first page only, got ${r.common.length}`);
  await page.getByRole('heading', { level: 1, name: '800 films you all want to see' }).waitFor();
  await page.getByText('800 films on everyone’s list are left to roll from.').waitFor();
  await page.locator('.action-bar').getByText('800 films left').waitFor();
  await page.getByText('Showing 100 of 800.').waitFor();

  // every common film is reachable through the paging route
  const all = await allCommon(page, id);
  assert.equal(all.total, 800);
  assert.equal(new Set(all.films.map((f) => f.id)).size, 800);
  assert.deepEqual(all.films.map((f) => f.title).sort(), want.common.map((f) => f.title).sort());
  assert.deepEqual(all.films.slice(0, r.common.length).map((f) => f.id), r.common.map((f) => f.id), 'the first page is the start of the list');

  // rolls draw from all 800: some land beyond the first 500 (the chance
  // that 40 uniform rolls all stay in the first 500 is (5/8)^40, ~7e-9)
  const at = new Map(all.films.map((f, i) => [f.id, i]));
  let beyond = 0;
  let beyondPage = null;
  for (let i = 0; i < 40; i++) {
    const rr = await apiPost(page, `/api/v1/sessions/${id}/roll`, {});
    assert.equal(rr.status, 200);
    const k = at.get(rr.body.rolled.id);
    assert.ok(k !== undefined, 'the rolled film is a common one');
    if (k >= 500) beyond++;
    if (k >= 100 && !beyondPage) beyondPage = rr.body.rolled;
  }
  assert.ok(beyond > 0, 'no roll landed beyond the first 500');
  // such a roll shows on this device full screen, though it is not on the page here
  await page.locator('dialog.rolled #rolled-title').waitFor();
  await page.getByRole('button', { name: 'Back to the list' }).click();
  await page.locator('dialog.rolled').waitFor({ state: 'detached' });
  assert.ok(beyondPage);

  // Show more, up to the last film
  const common = page.locator('section[aria-labelledby="common-title"]');
  for (let shown = 100; shown < 800; shown += 100) {
    await common.getByRole('button', { name: /^Show 100 more$/ }).click();
    await page.waitForFunction(
      (n) => document.querySelectorAll('section[aria-labelledby="common-title"] .film').length === n,
      shown + 100,
    );
  }
  assert.equal(await common.getByRole('button', { name: /more$/ }).count(), 0, 'nothing more to show');
  // the button is gone: focus is on the first film the last page brought
  await page.waitForFunction(() => document.activeElement?.classList.contains('film-toggle'));
  assert.equal(await page.evaluate(() => document.activeElement?.querySelector('.film-title')?.textContent), all.films[700].title);
  const titles = await common.locator('.film-title').allTextContents();
  assert.deepEqual(titles, all.films.map((f) => f.title));
  assert.equal(await page.getByText(/^Showing \d+ of/).count(), 0);

  // the search finds film #800 (by its title, on the server), and it can be struck out
  await page.reload();
  await waitForResults(page);
  const last = all.films[799];
  const q = last.title.slice(0, Math.min(last.title.length, 12));
  const expectMatch = all.films.filter((f) => f.title.toLowerCase().includes(q.toLowerCase())).length;
  await page.getByLabel('Find a film by its title').fill(q);
  await common.locator('.film-title', { hasText: last.title }).first().waitFor();
  await page.getByText(new RegExp(`^${expectMatch === 1 ? '1 film matches' : `${expectMatch} films match`} “`)).waitFor();
  await filmButton(page, last.title).first().click();
  await page.locator('.action-bar').getByText('799 films left').waitFor();
  await page.getByText('799 films on everyone’s list are left to roll from.').waitFor();
  await page.waitForFunction(async ([sid, fid]) => (await (await fetch(`/api/v1/sessions/${sid}`)).json()).vetoed.includes(fid), [id, last.id]);
  assert.equal((await api(page, `/api/v1/sessions/${id}`)).body.results.pool, 799);
  // nothing matches: said plainly
  await page.getByLabel('Find a film by its title').fill('zzqqxx no such film');
  await page.getByText('No film on everyone’s list matches “zzqqxx no such film”.').waitFor();
  await page.getByLabel('Find a film by its title').fill('');
  await page.getByText('Showing 100 of 800.').waitFor();
  await axe(page, 'results 800');
  assertNoProblems(problems);
  await context.close();
  await s.stop();
});

test('5,000 common films on a phone: a page at a time, fast, and still searchable', { timeout: 300000 }, async () => {
  const s = await servers({ universe: 8000, common: 5000, size: 5000, perPage: 100 });
  const { context, page, problems } = await open(browser, s.fp.url, { viewport: PHONE, reducedMotion: 'reduce' });
  const id = await resultsFor(page, ['alice', 'bob']);
  await page.getByRole('heading', { level: 1, name: '5,000 films you all want to see' }).waitFor();
  const cards = await page.locator('.film').count();
  assert.ok(cards <= 100, `${cards} cards rendered at once`);
  const nodes = await page.evaluate(() => document.getElementsByTagName('*').length);
  assert.ok(nodes < 3000, `${nodes} elements in the page`);
  const t0 = Date.now();
  await page.getByRole('button', { name: 'Show 100 more' }).click();
  await page.waitForFunction(() => document.querySelectorAll('.film').length === 200);
  console.log(`# 5000 common: ${cards} cards, ${nodes} elements; Show more took ${Date.now() - t0} ms`);
  assert.equal((await api(page, `/api/v1/sessions/${id}`)).body.results.pool, 5000);
  await page.locator('.action-bar').getByText('5,000 films left').waitFor();
  await page.getByRole('button', { name: 'Roll!' }).click();
  await page.locator('dialog.rolled #rolled-title').waitFor();
  assertNoProblems(problems);
  await context.close();
  await s.stop();
});

test('the Roll! bar stays in view on a 390x844 phone after scrolling and striking films out', { timeout: 120000 }, async () => {
  const s = await servers({ universe: 3000, common: 60 });
  const { context, page, problems } = await open(browser, s.fp.url, { viewport: PHONE, reducedMotion: 'reduce' });
  await resultsFor(page, ['alice', 'bob']);
  const want = await expected(s.fake, ['alice', 'bob']);
  assert.equal(want.common.length, 60);
  const height = await page.evaluate(() => document.documentElement.scrollHeight);
  assert.ok(height > 3 * PHONE.height, `the page should be long, it is ${height}px`);
  const roll = page.getByRole('button', { name: 'Roll!' });

  async function inView(label) {
    assert.equal(await roll.isVisible(), true, `${label}: Roll! visible`);
    const box = await roll.boundingBox();
    assert.ok(box && box.y >= 0 && box.y + box.height <= PHONE.height, `${label}: Roll! at ${JSON.stringify(box)}, outside the screen`);
    // nothing covers it
    const top = await page.evaluate(([x, y]) => document.elementFromPoint(x, y)?.closest('button')?.textContent ?? null, [
      box.x + box.width / 2,
      box.y + box.height / 2,
    ]);
    assert.equal(top, 'Roll!', `${label}: something covers Roll!`);
  }

  await inView('top');
  await page.evaluate(() => window.scrollTo(0, document.documentElement.scrollHeight / 2));
  await inView('middle');
  await page.evaluate(() => window.scrollTo(0, document.documentElement.scrollHeight));
  await page.waitForTimeout(100);
  await inView('bottom');
  // strike out the last card, still at the bottom of the page
  const lastCard = page.locator('section[aria-labelledby="common-title"] .film-toggle').last();
  await lastCard.click();
  await page.waitForFunction((el) => el.getAttribute('aria-pressed') === 'true', await lastCard.elementHandle());
  await inView('after a strike-out');
  // how many are left is in view with it
  const left = page.locator('.action-bar').getByText('59 films left');
  await left.waitFor();
  const lb = await left.boundingBox();
  assert.ok(lb && lb.y >= 0 && lb.y + lb.height <= PHONE.height, 'films left in view');
  assert.ok((await page.evaluate(() => window.scrollY)) > 2 * PHONE.height, 'still scrolled down');
  await assertFitsWidth(page, 'results scrolled');
  await axe(page, 'results scrolled phone');
  await screenshot(page, 'results-scrolled');
  await roll.click();
  await page.locator('dialog.rolled #rolled-title').waitFor();
  assertNoProblems(problems);
  await context.close();
  await s.stop();
});

test('Back: rolled film -> the list -> the people; the start page offers “Return to your session”', { timeout: 120000 }, async () => {
  const s = await servers({ universe: 3000, common: 5 });
  const { context, page, problems } = await open(browser, s.fp.url, { viewport: PHONE, reducedMotion: 'reduce' });
  // nothing to return to yet
  await page.goto('/');
  await page.getByRole('button', { name: 'Watch together!' }).waitFor();
  const id = await resultsFor(page, ['alice', 'bob']);
  const sessionUrl = `${s.fp.url}/s/${id}`;
  await page.getByRole('button', { name: 'Roll!' }).click();
  const dialog = page.locator('dialog.rolled');
  await dialog.locator('#rolled-title').waitFor();

  await page.goBack();
  await dialog.waitFor({ state: 'detached' });
  await page.locator('.results h1').waitFor();
  assert.equal(page.url(), sessionUrl);
  assert.equal(await page.getByRole('button', { name: 'Roll!' }).isVisible(), true);

  await page.goBack();
  await page.getByRole('heading', { level: 1, name: 'Who is watching?' }).waitFor();
  assert.equal(page.url(), sessionUrl);
  assert.equal(await page.locator('.results').count(), 0);

  // Forward shows the list again
  await page.goForward();
  await page.locator('.results h1').waitFor();
  await page.goBack();
  await page.getByRole('heading', { level: 1, name: 'Who is watching?' }).waitFor();

  // one more Back: the start page, which leads back into the session
  await page.goBack();
  await page.getByRole('button', { name: 'Watch together!' }).waitFor();
  assert.equal(page.url(), `${s.fp.url}/`);
  const back = page.getByRole('link', { name: 'Return to your session' });
  await back.waitFor({ state: 'visible' });
  await page.getByText('with alice, bob').waitFor();
  await axe(page, 'start with return');
  await screenshot(page, 'start-return');
  await back.click();
  await page.waitForURL(sessionUrl);
  await page.locator('.results h1').waitFor();

  // the rolled film closed before is not put full screen again
  assert.equal(await dialog.count(), 0);
  // "Back to the list" and Back leave the same history: after closing by
  // the button, Back leaves the list (to the start page it came from), it
  // does not open the rolled film again
  await page.getByRole('button', { name: 'Roll!' }).click();
  await dialog.locator('#rolled-title').waitFor();
  await dialog.getByRole('button', { name: 'Back to the list' }).click();
  await dialog.waitFor({ state: 'detached' });
  await page.goBack();
  await page.getByRole('button', { name: 'Watch together!' }).waitFor();
  assert.equal(page.url(), `${s.fp.url}/`);
  assert.equal(await dialog.count(), 0);

  // a session that has ended is not offered
  await page.evaluate(() => localStorage.setItem('filmpicker.lastSession', '0123456789abcdef0123456789abcdef'));
  await page.goto('/');
  await page.getByRole('button', { name: 'Watch together!' }).waitFor();
  await page.waitForFunction(() => localStorage.getItem('filmpicker.lastSession') === null);
  assert.equal(await page.getByRole('link', { name: 'Return to your session' }).count(), 0);
  assertNoProblems(problems);
  await context.close();
  await s.stop();
});

test('links out: every card and the rolled film open Letterboxd in a new tab; Share shares or copies the line', { timeout: 120000 }, async () => {
  const s = await servers({ universe: 3000, common: 8 });
  const films = await fakeFilms(s.fake, 'alice');
  const slugOf = new Map(films.map((f) => [f.title, f.slug]));
  for (const withShare of [true, false]) {
    const { context, page, problems } = await open(browser, s.fp.url, { reducedMotion: 'reduce' });
    await context.addInitScript((on) => {
      if (on) {
        window.__shared = [];
        Object.defineProperty(Navigator.prototype, 'share', {
          configurable: true,
          value: async (d) => {
            window.__shared.push(d);
          },
        });
      } else {
        delete Navigator.prototype.share;
      }
    }, withShare);
    await resultsFor(page, ['alice', 'bob']);
    const want = await expected(s.fake, ['alice', 'bob']);
    const cards = page.locator('section[aria-labelledby="common-title"] .film');
    assert.equal(await cards.count(), want.common.length);
    for (let i = 0; i < want.common.length; i++) {
      const card = cards.nth(i);
      const title = await card.locator('.film-title').textContent();
      const link = card.getByRole('link', { name: `${title} on Letterboxd (opens in a new tab)` });
      assert.equal(await link.isVisible(), true, title);
      assert.equal(await link.getAttribute('target'), '_blank');
      assert.equal(await link.getAttribute('rel'), 'noopener noreferrer');
      assert.equal(await link.getAttribute('href'), `${s.fake.url}/film/${slugOf.get(title)}/`, title);
    }
    await page.getByRole('button', { name: 'Roll!' }).click();
    const dialog = page.locator('dialog.rolled');
    await dialog.locator('#rolled-title').waitFor();
    const rolledTitle = ((await dialog.locator('#rolled-title').textContent()) ?? '').replace(/ \((\d{4})\)$/, '');
    const year = /\((\d{4})\)$/.exec((await dialog.locator('#rolled-title').textContent()) ?? '')?.[1];
    const href = `${s.fake.url}/film/${slugOf.get(rolledTitle)}/`;
    const link = dialog.getByRole('link', { name: `${rolledTitle} on Letterboxd (opens in a new tab)` });
    assert.equal(await link.isVisible(), true);
    assert.equal(await link.getAttribute('href'), href);
    assert.equal(await link.getAttribute('target'), '_blank');
    assert.equal(await link.getAttribute('rel'), 'noopener noreferrer');
    // the new tab opens the film's page on the (fake) site
    const [tab] = await Promise.all([context.waitForEvent('page'), link.click()]);
    await tab.waitForLoadState('domcontentloaded');
    assert.equal(tab.url(), href);
    assert.equal(await tab.evaluate(() => window.opener), null, 'the new tab cannot reach back');
    await tab.close();

    const name = year ? `${rolledTitle} (${year})` : rolledTitle;
    await dialog.getByRole('button', { name: 'Share' }).click();
    if (withShare) {
      await page.waitForFunction(() => window.__shared.length === 1);
      assert.deepEqual(await page.evaluate(() => window.__shared[0]), { title: name, text: `Tonight: ${name}`, url: href });
    } else {
      const line = `Tonight: ${name} — ${href}`;
      await dialog.getByText(`Copied: ${line}`).waitFor();
      assert.equal(await page.evaluate(() => navigator.clipboard.readText()), line);
    }
    // Copy title is here, on the rolled film
    await dialog.getByRole('button', { name: 'Copy title' }).click();
    await dialog.getByText(`Copied “${rolledTitle}”.`).waitFor();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), rolledTitle);
    assertNoProblems(problems);
    await context.close();
  }
  await s.stop();
});

test('page not found: an unknown path gets the app’s own page', { timeout: 60000 }, async () => {
  const s = await servers();
  for (const path of ['/no/such/page', '/s/short', '/films']) {
    const r = await fetch(`${s.fp.url}${path}`);
    assert.equal(r.status, 404, path);
    assert.match(r.headers.get('content-type') ?? '', /^text\/html/, path);
    await r.arrayBuffer();
  }
  const { context, page, problems } = await open(browser, s.fp.url, { viewport: PHONE });
  for (const path of ['/no/such/page', '/s/short']) {
    await page.goto(path);
    await page.getByRole('heading', { level: 1, name: 'Page not found' }).waitFor();
    assert.equal(await page.getByRole('link', { name: 'Go to the start page' }).isVisible(), true);
  }
  await axe(page, 'page not found');
  await page.getByRole('link', { name: 'Go to the start page' }).click();
  await page.getByRole('button', { name: 'Watch together!' }).waitFor();
  assertNoProblems(problems.filter((p) => !p.includes('404')));
  await context.close();
  await s.stop();
});
