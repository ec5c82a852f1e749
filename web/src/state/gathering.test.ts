import { describe, expect, it } from 'vitest';
import {
  alreadyAdded,
  displayName,
  filmsCount,
  joinNames,
  missingLists,
  missingText,
  personStatus,
  recentlyWatched,
  rollBlocked,
  uploadReport,
} from './gathering';
import { film, participant, session } from './fixtures';
import type { ImportAnswer } from './types';

const err = (code: string, message = 'server words') => ({ code, message });

describe('personStatus: what the session screen says before the search', () => {
  it('a list that was read: found, with the count in thousands', () => {
    expect(personStatus(participant({ status: 'ready', films: 1000 }))).toEqual({ text: 'Found, 1,000 films', tone: 'ok', pages: null });
    expect(personStatus(participant({ status: 'ready', films: 1 })).text).toBe('Found, 1 film');
    expect(personStatus(participant({ status: 'ready', films: 10, source: 'import', name: 'Dana' })).text).toBe('Uploaded, 10 films');
  });

  it('being read: pages of pages, or looking them up while the total is unknown', () => {
    expect(personStatus(participant({ status: 'fetching', pages_fetched: 3, pages_total: 36 }))).toEqual({
      text: 'Reading their list: 3 of 36 pages',
      tone: 'busy',
      pages: { done: 3, of: 36 },
    });
    expect(personStatus(participant({ status: 'fetching', pages_fetched: 9, pages_total: 1 })).pages).toEqual({ done: 1, of: 1 });
    expect(personStatus(participant({ status: 'fetching' }))).toEqual({ text: 'Looking them up…', tone: 'busy', pages: null });
    expect(personStatus(participant({ status: 'queued' })).text).toBe('Looking them up…');
  });

  it('a site not answering while still trying says so', () => {
    const p = participant({ status: 'fetching', warning: err('source_unavailable') });
    expect(personStatus(p)).toMatchObject({ text: 'Letterboxd is not answering, retrying…', tone: 'bad' });
  });

  it.each([
    ['user_not_found', 'nosuchuser', 'No Letterboxd user called “nosuchuser”'],
    ['empty_watchlist', 'empty_x', 'This watchlist is private or empty'],
    ['source_blocked', 'blocked_x', 'Letterboxd refused the request: upload your export instead'],
    ['source_unavailable', 'down_x', 'Letterboxd is not answering, try again in a while'],
  ])('failed with %s', (code, name, text) => {
    expect(personStatus(participant({ name, status: 'failed', error: err(code) }))).toEqual({ text, tone: 'bad', pages: null });
  });

  it('never says found before the list was read', () => {
    for (const status of ['waiting', 'queued', 'fetching'] as const) {
      expect(personStatus(participant({ status, films: 0 })).text).not.toMatch(/found/i);
      expect(personStatus(participant({ status })).tone).not.toBe('ok');
    }
  });
});

describe('a name typed twice', () => {
  const s = session({
    participants: [participant({ id: 'p1', name: 'alice' }), participant({ id: 'p2', name: 'Upload 1', source: 'import' })],
  });
  it('finds the Letterboxd person of that name, in any case', () => {
    expect(alreadyAdded(s, 'alice')?.id).toBe('p1');
    expect(alreadyAdded(s, ' Alice ')?.id).toBe('p1');
    expect(alreadyAdded(s, 'bob')).toBeNull();
    expect(alreadyAdded(s, '')).toBeNull();
  });
  it('an upload participant is not a Letterboxd username', () => {
    expect(alreadyAdded(s, 'upload 1')).toBeNull();
  });
});

describe('missing lists on the results', () => {
  const alice = participant({ id: 'p1', name: 'alice', status: 'ready', films: 1000 });
  const bob = participant({ id: 'p2', name: 'bob', status: 'failed', error: err('user_not_found') });
  const carol = participant({ id: 'p3', name: 'carol', status: 'failed', error: err('empty_watchlist') });
  const dan = participant({ id: 'p4', name: 'dan', status: 'ready', films: 20 });

  it('one readable list is not a group result', () => {
    const m = missingLists(session({ status: 'results', participants: [alice, bob] }));
    expect(m.missing.map((p) => p.name)).toEqual(['bob']);
    expect(missingText(m)).toEqual({
      heading: 'bob’s list is missing',
      body: 'Only alice’s list could be read, so these films are just alice’s watchlist, not the group’s.',
    });
  });

  it('names every missing list and every readable one', () => {
    const m = missingLists(session({ status: 'results', participants: [alice, bob, carol, dan] }));
    expect(missingText(m)).toEqual({
      heading: 'The lists of bob and carol are missing',
      body: 'These films are only from the lists of alice and dan.',
    });
  });

  it('nothing to say when every list was read', () => {
    expect(missingText(missingLists(session({ participants: [alice, dan] })))).toBeNull();
  });

  it('Roll! waits until the group goes on without exactly those people', () => {
    const m = missingLists(session({ participants: [alice, bob, carol] }));
    expect(rollBlocked(m, new Set())).toBe(true);
    expect(rollBlocked(m, new Set(['p2']))).toBe(true);
    expect(rollBlocked(m, new Set(['p2', 'p3']))).toBe(false);
    // nothing was read: no roll at all, so nothing to go on with
    expect(rollBlocked(missingLists(session({ participants: [bob] })), new Set())).toBe(false);
    expect(missingText(missingLists(session({ participants: [bob] })))?.body).toBe(
      'No list could be read, so there is nothing to pick from yet.',
    );
  });

  it('joinNames', () => {
    expect(joinNames([])).toBe('');
    expect(joinNames(['a'])).toBe('a');
    expect(joinNames(['a', 'b', 'c'])).toBe('a, b and c');
  });
});

describe('recently watched', () => {
  const heat = film(7, 'Heat', 1995);
  const alien = film(8, 'Alien', 1979);
  it('once per film, with who marked it, newest first', () => {
    const s = session({
      participants: [
        participant({
          id: 'p1',
          name: 'alice',
          recently_watched: [
            { film: heat, watched_at: '2026-11-20T20:00:00Z' },
            { film: alien, watched_at: '2026-11-10T20:00:00Z' },
          ],
        }),
        participant({ id: 'p2', name: 'bob', recently_watched: [{ film: heat, watched_at: '2026-11-21T20:00:00Z' }] }),
        participant({ id: 'p3', name: 'carol' }),
      ],
    });
    expect(recentlyWatched(s)).toEqual([
      { film: heat, who: ['alice', 'bob'], watched_at: '2026-11-21T20:00:00Z' },
      { film: alien, who: ['alice'], watched_at: '2026-11-10T20:00:00Z' },
    ]);
  });
  it('ignores what is not a film', () => {
    const bad = [{ film: null, watched_at: 'x' }, { watched_at: 'y' }, 'z'] as unknown as never[];
    expect(recentlyWatched(session({ participants: [participant({ recently_watched: bad })] }))).toEqual([]);
    expect(recentlyWatched(session({ participants: [participant()] }))).toEqual([]);
  });
});

describe('the upload report', () => {
  const answer = (over: Partial<ImportAnswer['import']>): ImportAnswer => ({
    import: { id: 'abc', participant: { import: 'abc' }, format: 'letterboxd_csv', films: 10, row_errors: [], row_errors_total: 0, ...over },
  });
  it('says how many films were matched, and lists the rows that could not be used', () => {
    const r = uploadReport(
      answer({
        films: 1200,
        row_errors: [
          { line: 11, reason: 'year is not a number', title: 'The Broken Year Row', year: null },
          { line: 12, reason: 'no title', title: null, year: 2001 },
        ],
        row_errors_total: 3,
      }),
      'watchlist.csv',
    );
    expect(r.summary).toBe('1,200 films matched from watchlist.csv.');
    expect(r.rowsHeading).toBe('3 rows could not be used:');
    expect(r.rows).toEqual([
      { line: 11, title: 'The Broken Year Row', year: '—', reason: 'Year is not a number' },
      { line: 12, title: '(no title)', year: '2001', reason: 'No title' },
    ]);
    expect(r.more).toBe(1);
  });
  it('every row used: no list', () => {
    const r = uploadReport(answer({ films: 1 }), 'export.zip');
    expect(r).toEqual({ summary: '1 film matched from export.zip.', rowsHeading: null, rows: [], more: 0 });
  });
  it('an older server without title and year still gives the line and reason', () => {
    const r = uploadReport(answer({ row_errors: [{ line: 4, reason: 'bad row' }], row_errors_total: 1 }), 'w.csv');
    expect(r.rowsHeading).toBe('1 row could not be used:');
    expect(r.rows).toEqual([{ line: 4, title: '(no title)', year: '—', reason: 'Bad row' }]);
  });
});

describe('display name of an upload', () => {
  it('trimmed, at most 40 characters, empty means the server names it', () => {
    expect(displayName('  Dana ')).toBe('Dana');
    expect(displayName('   ')).toBeNull();
    expect(displayName('x'.repeat(50))).toHaveLength(40);
  });
  it('filmsCount', () => {
    expect(filmsCount(0)).toBe('0 films');
    expect(filmsCount(12345)).toBe('12,345 films');
  });
});
