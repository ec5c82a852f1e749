// The session screen's side of issue 7, end to end in Chromium against the
// real server and the fake Letterboxd: what is known of each person's list
// before the search (read as soon as they are added), a name typed twice,
// whose lists are missing from the results (and "Go on anyway"), the export
// upload (display name, drop zone, the steps, the report of matched films
// and unusable rows), the films watched here lately with "Put it back", and
// errors in one sentence. Every check is of what a person SEES: Playwright's
// visibility, not DOM presence.
//
//   FP_BUILD_DIR=$PWD/build node --test tests/e2e/gathering.test.mjs
//   (also run by tests/e2e/run.mjs)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './servers.mjs';
import {
  DESKTOP,
  PHONE,
  WAIT_MS,
  addPerson,
  assertFitsWidth,
  assertNoProblems,
  axe,
  open,
  personRow,
  profileField,
  screenshot,
  shownTitles,
  startSession,
  waitForResults,
  suite,
} from './lib.mjs';

let browser;
const servers = suite((b) => {
  browser = b;
});


/** Waits until the locator is visible, then asserts it (isVisible, not presence). */
async function seen(locator, what, timeout = WAIT_MS) {
  await locator.first().waitFor({ state: 'visible', timeout });
  assert.equal(await locator.first().isVisible(), true, `${what} should be visible`);
  return locator.first();
}

async function unseen(locator, what, timeout = WAIT_MS) {
  await locator.first().waitFor({ state: 'hidden', timeout });
  assert.equal(await locator.first().isVisible(), false, `${what} should not be visible`);
}

function statusOf(page, name) {
  return personRow(page, name).locator('.person-status');
}

const REPORT_CSV = join(ROOT, 'tests', 'data', 'upload_report.csv');
const EXPORT_CSV = join(ROOT, 'tests', 'data', 'api_watchlist.csv');

test('each person’s list before the search: found with a count, pages, no such user, private or empty, refused (upload offered), not answering', { timeout: 120000 }, async () => {
  // slow_bob_n840: 30 pages of 28, each answered after slowMs, so the pages
  // are seen going by however many the server reads at once
  const s = await servers({ universe: 3000, slowMs: 1500 });
  const { context, page, problems } = await open(browser, s.fp.url, { viewport: PHONE, reducedMotion: 'reduce' });
  await startSession(page);

  // Well formed is not "found": the field does not turn green for a name
  // nobody checked yet.
  await profileField(page).fill('notfound_x');
  const msg = await seen(page.getByText('Add “notfound_x” to look them up on Letterboxd.', { exact: true }), 'the field note');
  assert.match((await msg.getAttribute('class')) ?? '', /tone-neutral/);
  assert.doesNotMatch((await msg.getAttribute('class')) ?? '', /tone-ok/);
  assert.equal(await page.getByText(/Letterboxd user “notfound_x”/).count(), 0);

  for (const u of ['alice_n1000', 'notfound_x', 'empty_x', 'blocked_x', 'down_x', 'slow_bob_n840']) await addPerson(page, u, u);

  // bob's list is read page by page, with a progress bar, while the others are done
  await seen(statusOf(page, 'slow_bob_n840').getByText(/^Reading their list: \d+ of 30 pages$/), 'bob’s pages');
  await seen(statusOf(page, 'slow_bob_n840').getByRole('progressbar', { name: /^slow_bob_n840: Reading their list/ }), 'bob’s progress bar');

  await seen(statusOf(page, 'alice_n1000').getByText('Found, 1,000 films', { exact: true }), 'alice found');
  await seen(statusOf(page, 'notfound_x').getByText('No Letterboxd user called “notfound_x”', { exact: true }), 'no such user');
  await seen(statusOf(page, 'empty_x').getByText('This watchlist is private or empty', { exact: true }), 'empty list');
  await seen(
    statusOf(page, 'blocked_x').getByText('Letterboxd refused the request: upload your export instead', { exact: true }),
    'refused',
  );
  // the upload is offered right there, with the way to get the export
  await seen(statusOf(page, 'blocked_x').getByText('Choose file'), 'the upload for blocked_x');
  await seen(statusOf(page, 'blocked_x').getByRole('link', { name: 'letterboxd.com/settings/data' }), 'the export link');
  // a site that does not answer: said while it is retried, and after
  await seen(statusOf(page, 'down_x').getByText(/^Letterboxd is not answering, (retrying…|try again in a while)$/), 'not answering', 30000);
  // no "found" for the others, and nobody is marked ready who is not
  for (const who of ['notfound_x', 'empty_x', 'blocked_x', 'down_x']) {
    assert.equal(await statusOf(page, who).getByText(/^Found/).count(), 0, `${who} must not be “found”`);
  }
  await seen(statusOf(page, 'slow_bob_n840').getByText('Found, 840 films', { exact: true }), 'bob found', 60000);
  // all of it before anyone pressed "Suggest a film!"
  await seen(page.getByRole('heading', { level: 1, name: 'Who is watching?' }), 'the session screen');
  await seen(page.getByRole('button', { name: 'Suggest a film!' }), 'Suggest a film!');
  // the share panel speaks to people, not operators
  await seen(page.getByText('Phones can’t open it: ask whoever runs FilmPicker for its network address', { exact: false }), 'the plain words');
  assert.equal(await page.getByText('--public-url').count(), 0);
  await assertFitsWidth(page, 'statuses');
  await axe(page, 'person statuses');
  await screenshot(page, 'session-statuses');

  // blocked_x uploads their export: it is their list now, read at once
  await statusOf(page, 'blocked_x').getByLabel('Upload the Letterboxd export of blocked_x').setInputFiles(EXPORT_CSV);
  await seen(statusOf(page, 'blocked_x').getByText('Found, 10 films', { exact: true }), 'blocked_x found from the export', 30000);
  // and the same report as the top upload box: matched films and the rows not used
  const cardReport = page.locator('section.card-upload');
  await seen(cardReport.getByRole('heading', { name: 'blocked_x’s export' }), 'the card upload’s report');
  await seen(cardReport.getByText('10 films matched from api_watchlist.csv.', { exact: true }), 'the card upload’s matched count');
  await seen(cardReport.getByText('3 rows could not be used:', { exact: true }), 'the card upload’s unusable rows');
  assert.equal(await cardReport.locator('table.upload-rows tbody tr').count(), 3);
  await seen(cardReport.locator('table.upload-rows tbody tr').first(), 'an unusable row');
  assertNoProblems(problems);
  await context.close();
  await s.stop();
});

test('a name typed twice says so plainly', { timeout: 60000 }, async () => {
  const s = await servers();
  const { context, page, problems } = await open(browser, s.fp.url, { reducedMotion: 'reduce' });
  const sid = await startSession(page);
  await addPerson(page, 'alice', 'alice');
  await profileField(page).fill('https://letterboxd.com/Alice/');
  await seen(page.getByText('alice is already in the group.', { exact: true }), 'the duplicate note');
  assert.equal(await page.getByRole('button', { name: 'Add', exact: true }).isDisabled(), true);
  assert.equal(await page.locator('.people .person').count(), 1);
  await axe(page, 'duplicate name');

  // Another device sent the same name anyway: the server says the same.
  const client = await (await context.request.get('/api/v1/client')).json();
  const r = await context.request.post(`/api/v1/sessions/${sid}/participants`, {
    headers: { 'X-CSRF-Token': client.csrf_token, 'Content-Type': 'application/json' },
    data: { profile: 'ALICE' },
  });
  assert.equal(r.status(), 409);
  const body = await r.json();
  assert.equal(body.error.code, 'already_added');
  assert.equal(body.error.message, 'alice is already in the group');
  assertNoProblems(problems);
  await context.close();
  await s.stop();
});

test('one readable list is not a group result: whose lists are missing, fix or go on anyway', { timeout: 120000 }, async () => {
  const s = await servers({ universe: 3000, common: 3 });
  const { context, page, problems } = await open(browser, s.fp.url, { viewport: PHONE, reducedMotion: 'reduce' });
  await startSession(page);
  await addPerson(page, 'alice', 'alice');
  await addPerson(page, 'notfound_bob', 'notfound_bob');
  await page.getByRole('button', { name: 'Suggest a film!' }).click();
  await waitForResults(page);
  const notice = page.locator('section.missing-lists');
  await seen(notice.getByRole('heading', { name: 'notfound_bob’s list is missing' }), 'the missing-lists heading');
  await seen(
    notice.getByText('Only alice’s list could be read, so these films are just alice’s watchlist, not the group’s.', { exact: true }),
    'whose list was read',
  );
  await seen(notice.getByText('No Letterboxd user called “notfound_bob”', { exact: false }), 'why it is missing');
  await seen(notice.getByRole('button', { name: 'Remove notfound_bob and search again' }), 'remove');
  const roll = page.getByRole('button', { name: 'Roll!' });
  await seen(roll, 'Roll!');
  assert.equal(await roll.isDisabled(), true, 'Roll! waits while a list is missing');
  // why it waits, next to the button, on the phone's screen
  const why = await seen(
    page.locator('.action-bar').getByText('Fix or remove the missing lists first, or go on anyway.', { exact: true }),
    'why Roll! waits',
  );
  const wb = await why.boundingBox();
  assert.ok(wb && wb.y >= 0 && wb.y + wb.height <= PHONE.height, `the reason at ${JSON.stringify(wb)}, off the screen`);
  assert.equal(await roll.getAttribute('aria-describedby'), await why.getAttribute('id'));
  // said once: not repeated in a "Left out" section below the notice
  assert.equal(await page.locator('section.problems').count(), 0, 'no “Left out” under the notice');
  assert.equal(await page.getByText('No Letterboxd user called “notfound_bob”', { exact: false }).count(), 1);
  await assertFitsWidth(page, 'missing lists');
  await axe(page, 'missing lists');
  await screenshot(page, 'missing-lists');

  // The group goes on without bob: Roll! works, and the page still says so.
  await notice.getByRole('button', { name: 'Go on anyway' }).click();
  await unseen(notice, 'the notice');
  await seen(page.getByText('Going on without notfound_bob’s list.', { exact: true }), 'the short note');
  await unseen(page.getByText('Fix or remove the missing lists first', { exact: false }), 'the reason, once Roll! works');
  assert.equal(await roll.isDisabled(), false);
  await roll.click();
  await seen(page.locator('dialog.rolled #rolled-title'), 'the rolled film');
  await page.getByRole('button', { name: 'Back to the list' }).click();

  // Or fix it: remove bob and search again; a group result, no notice.
  await page.getByRole('button', { name: 'Change the group' }).first().click();
  await addPerson(page, 'notfound_carol', 'notfound_carol');
  // (a changed group has no results until it searches again)
  await page.getByRole('button', { name: 'Suggest a film!' }).click();
  await seen(page.locator('section.missing-lists').getByRole('heading', { name: 'The lists of notfound_bob and notfound_carol are missing' }), 'two missing', 60000);
  assert.equal(await roll.isDisabled(), true, 'a new result asks again');
  await page.getByRole('button', { name: 'Remove them and search again' }).click();
  // alice's list alone now: the results of the whole (smaller) group
  await seen(page.getByRole('heading', { level: 1, name: /films? you all want to see$/ }), 'a group result', 60000);
  assert.equal(await page.locator('section.missing-lists').count(), 0);
  assert.equal(await roll.isDisabled(), false);
  assertNoProblems(problems);
  await context.close();
  await s.stop();
});

test('export upload: display name, drag and drop, the steps, and the report of matched films and unusable rows', { timeout: 90000 }, async () => {
  const s = await servers();
  const { context, page, problems } = await open(browser, s.fp.url, { viewport: DESKTOP, reducedMotion: 'reduce' });
  await startSession(page);
  await page.getByText('No Letterboxd profile to link? Upload an export instead').click();
  const panel = page.locator('details.alt-source');

  // The three steps, with the export page as a link opening in a new tab.
  await seen(panel.getByText('Press “Export your data” and save the .zip file.'), 'step 2');
  await seen(panel.getByText('Drop that .zip here, or the watchlist.csv inside it.'), 'step 3');
  const link = await seen(panel.getByRole('link', { name: 'letterboxd.com/settings/data' }), 'the export link');
  assert.equal(await link.getAttribute('href'), 'https://letterboxd.com/settings/data/');
  assert.equal(await link.getAttribute('target'), '_blank');
  assert.deepEqual(((await link.getAttribute('rel')) ?? '').split(/\s+/).sort(), ['noopener', 'noreferrer']);
  // A styled picker: the native control is hidden, the drop zone is what shows.
  await seen(panel.locator('.dropzone').getByText('Choose file'), 'Choose file');
  await seen(panel.getByText('or drop it here'), 'the drop hint');
  await axe(page, 'upload panel');

  // A name first: a file without one is not sent, and the box says why.
  const imports = [];
  page.on('request', (r) => {
    if (r.method() === 'POST' && new URL(r.url()).pathname === '/api/v1/imports') imports.push(r.url());
  });
  const notExport = await page.evaluateHandle(() => {
    const dt = new DataTransfer();
    dt.items.add(new File(['hello,world\n1,2\n'], 'notes.csv', { type: 'text/csv' }));
    return dt;
  });
  await panel.locator('.dropzone').dispatchEvent('drop', { dataTransfer: notExport });
  await seen(panel.getByText('Give this person a name first, then upload their file.', { exact: true }), 'the name is asked for');
  assert.equal(await panel.getByLabel('Their name').getAttribute('aria-invalid'), 'true');
  await page.waitForTimeout(300);
  assert.equal(imports.length, 0, 'no upload without a name');
  assert.equal(await page.locator('.people .person').count(), 0);
  await axe(page, 'upload without a name');

  // A file that is not an export: one plain sentence, no server detail.
  await panel.getByLabel('Their name').fill('Notes');
  await unseen(panel.getByText('Give this person a name first', { exact: false }), 'the name note, once there is one');
  await panel.locator('.dropzone').dispatchEvent('drop', { dataTransfer: notExport });
  const refusal = await seen(panel.getByRole('alert'), 'the refusal');
  assert.equal(imports.length, 1);
  const words = ((await refusal.textContent()) ?? '').trim();
  assert.equal(
    words,
    'That file is not a Letterboxd export: upload the .zip from letterboxd.com/settings/data or the watchlist.csv inside it.',
  );

  // Their name, then the file dropped on the zone (highlighted while over it).
  await panel.getByLabel('Their name').fill('  Dana  ');
  const text = readFileSync(REPORT_CSV, 'utf8');
  const dt = await page.evaluateHandle((t) => {
    const d = new DataTransfer();
    d.items.add(new File([t], 'upload_report.csv', { type: 'text/csv' }));
    return d;
  }, text);
  await panel.locator('.dropzone').dispatchEvent('dragenter', { dataTransfer: dt });
  await seen(panel.locator('.dropzone.dropzone-over'), 'the highlighted drop zone');
  await panel.locator('.dropzone').dispatchEvent('drop', { dataTransfer: dt });

  // The report: how many films were matched, and the row that could not be used.
  await seen(panel.getByText('3 films matched from upload_report.csv.', { exact: true }), 'the matched count');
  await seen(panel.getByText('1 row could not be used:', { exact: true }), 'the unusable rows heading');
  const row = panel.locator('table.upload-rows tbody tr');
  assert.equal(await row.count(), 1);
  const cells = (await row.first().locator('td').allTextContents()).map((c) => c.trim());
  assert.equal(cells[0], '4', 'line');
  assert.equal(cells[1], 'The Year That Was Not', 'title');
  assert.equal(cells[2], '—', 'year (unreadable: 19x9)');
  assert.ok(cells[3] && cells[3].length > 3, `a reason: ${cells[3]}`);
  assert.equal(await panel.locator('.dropzone.dropzone-over').count(), 0);

  // The person shows under the name given, with the films read.
  const dana = personRow(page, 'Dana');
  await seen(dana, 'Dana in the people list');
  await seen(dana.getByText('uploaded list'), 'their source');
  await seen(dana.locator('.person-status').getByText('Uploaded, 3 films', { exact: true }), 'Dana’s films');
  assert.equal(await page.getByText(/import:[0-9a-f]/).count(), 0, 'no import id as a name');
  assert.equal(await panel.getByLabel('Their name').inputValue(), '');

  // Without a name again: the picker (setInputFiles) waits for one.
  const sent = imports.length;
  await panel.getByLabel('Letterboxd export file').setInputFiles(EXPORT_CSV);
  await seen(panel.getByText('Give this person a name first, then upload their file.', { exact: true }), 'the name asked for again');
  await page.waitForTimeout(300);
  assert.equal(imports.length, sent, 'no upload without a name');
  assert.equal(await page.locator('.people .person').count(), 1);
  await panel.getByLabel('Their name').fill('Eve');
  await panel.getByLabel('Letterboxd export file').setInputFiles(EXPORT_CSV);
  await seen(panel.getByText('10 films matched from api_watchlist.csv.', { exact: true }), 'the second report');
  await seen(panel.getByText('3 rows could not be used:', { exact: true }), 'its unusable rows');
  assert.equal(await panel.locator('table.upload-rows tbody tr').count(), 3);
  await seen(personRow(page, 'Eve'), 'Eve in the people list');
  await axe(page, 'upload report');
  await screenshot(page, 'upload-report');
  assertNoProblems(problems);
  await context.close();
  await s.stop();
});

test('the films watched here lately, on the next session’s screen, with Put it back', { timeout: 150000 }, async () => {
  const s = await servers({ universe: 3000, common: 3 });
  const { context, page, problems } = await open(browser, s.fp.url, { viewport: PHONE, reducedMotion: 'reduce' });
  await startSession(page);
  await addPerson(page, 'alice', 'alice');
  await addPerson(page, 'bob', 'bob');
  await page.getByRole('button', { name: 'Suggest a film!' }).click();
  await waitForResults(page);
  await page.getByRole('button', { name: 'Roll!' }).click();
  const label = ((await (await seen(page.locator('#rolled-title'), 'the rolled film')).textContent()) ?? '').trim();
  const title = label.replace(/ \(\d{4}\)$/, '');
  await page.getByRole('button', { name: 'We will watch it!' }).click();
  await page.getByRole('button', { name: 'Yes, take it off' }).click();
  await seen(page.getByText('Enjoy the film!'), 'the confirmation');

  // Next session, same people: the film shows as watched lately.
  await startSession(page);
  assert.equal(await page.locator('section.recently-watched').count(), 0);
  await addPerson(page, 'alice', 'alice');
  await seen(statusOf(page, 'alice').getByText(/^Found, /), 'alice found', 30000);
  const recent = page.locator('section.recently-watched');
  await seen(recent.getByRole('heading', { name: 'Watched recently' }), 'the panel', 30000);
  await seen(recent.getByText(label, { exact: true }), 'the film');
  await addPerson(page, 'bob', 'bob');
  await seen(recent.getByText('— alice and bob', { exact: true }), 'who marked it', 30000);
  assert.equal(await recent.locator('.recent-film').count(), 1, 'once per film');
  await axe(page, 'recently watched');
  await screenshot(page, 'recently-watched');

  await recent.getByRole('button', { name: `Put it back: ${label}` }).click();
  await unseen(recent, 'the panel');
  await page.getByRole('button', { name: 'Suggest a film!' }).click();
  await waitForResults(page);
  assert.ok((await shownTitles(page, 'common-title')).includes(title), `“${title}” is back on the lists`);
  assertNoProblems(problems);
  await context.close();
  await s.stop();
});
