import { describe, expect, it } from 'vitest';
import type { SessionAction, SessionState } from './session';
import {
  filmLabel,
  filmLists,
  initialSessionState,
  listsLabel,
  parseEvent,
  poolCount,
  progressOf,
  screenOf,
  sessionReducer,
} from './session';
import { film, participant, ranked, session } from './fixtures';
import type { SessionEvent } from './types';

const ev = (e: SessionEvent): SessionAction => ({ type: 'event', event: e });

function reduce(actions: SessionAction[], from: SessionState = initialSessionState): SessionState {
  return actions.reduce(sessionReducer, from);
}

describe('sessionReducer', () => {
  it('takes the first session event whole and goes live', () => {
    const s = session({ version: 3 });
    const st = reduce([ev({ type: 'session', id: 3, data: s })]);
    expect(st.session).toEqual(s);
    expect(st.connection).toBe('live');
  });

  it('ignores partial events before any session', () => {
    const st = reduce([ev({ type: 'participant', id: 2, data: participant() })]);
    expect(st.session).toBeNull();
  });

  it('adds a participant, then updates its progress in place', () => {
    const st = reduce([
      { type: 'server', session: session({ version: 1 }) },
      ev({ type: 'participant', id: 2, data: participant({ id: 'p1', name: 'alice' }) }),
      ev({ type: 'participant', id: 3, data: participant({ id: 'p2', name: 'bob' }) }),
      ev({ type: 'participant', id: 4, data: participant({ id: 'p1', name: 'alice', status: 'fetching', pages_fetched: 3, pages_total: 36 }) }),
    ]);
    expect(st.session?.participants.map((p) => [p.id, p.status, p.pages_fetched])).toEqual([
      ['p1', 'fetching', 3],
      ['p2', 'waiting', 0],
    ]);
    expect(st.session?.version).toBe(4);
  });

  it('removes a participant', () => {
    const st = reduce([
      { type: 'server', session: session({ participants: [participant({ id: 'p1' }), participant({ id: 'p2', name: 'bob' })] }) },
      ev({ type: 'participant_removed', id: 2, data: { id: 'p1' } }),
    ]);
    expect(st.session?.participants.map((p) => p.name)).toEqual(['bob']);
  });

  it('drops a partial event older than the state, applies one of the same version', () => {
    const base = reduce([{ type: 'server', session: session({ version: 10, vetoed: [] }) }]);
    const old = sessionReducer(base, ev({ type: 'veto', id: 9, data: { film_id: 5, vetoed: true } }));
    expect(old).toBe(base);
    const same = sessionReducer(base, ev({ type: 'veto', id: 10, data: { film_id: 5, vetoed: true } }));
    expect(same.session?.vetoed).toEqual([5]);
    expect(same.session?.version).toBe(10);
  });

  it('keeps a newer state when an older whole Session arrives late', () => {
    const newer = reduce([{ type: 'server', session: session({ version: 8, vetoed: [1] }) }]);
    const st = sessionReducer(newer, { type: 'server', session: session({ version: 7, vetoed: [] }) });
    expect(st.session?.vetoed).toEqual([1]);
    expect(st.session?.version).toBe(8);
  });

  it('replaces the state with a fresh session event after a reconnect', () => {
    const st = reduce([
      { type: 'server', session: session({ version: 4, participants: [participant()] }) },
      { type: 'connection', connection: 'reconnecting' },
      ev({ type: 'session', id: 9, data: session({ version: 9, participants: [] }) }),
    ]);
    expect(st.session?.participants).toEqual([]);
    expect(st.connection).toBe('live');
  });

  it('veto and unveto are idempotent set changes', () => {
    const st = reduce([
      { type: 'server', session: session({ version: 1 }) },
      ev({ type: 'veto', id: 2, data: { film_id: 12, vetoed: true } }),
      ev({ type: 'veto', id: 3, data: { film_id: 40, vetoed: true } }),
      ev({ type: 'veto', id: 3, data: { film_id: 40, vetoed: true } }),
      ev({ type: 'veto', id: 4, data: { film_id: 12, vetoed: false } }),
    ]);
    expect(st.session?.vetoed).toEqual([40]);
  });

  it('optimistic veto shows at once and is undone by the reverse action', () => {
    const a = reduce([{ type: 'server', session: session() }, { type: 'optimistic-veto', film_id: 3, vetoed: true }]);
    expect(a.session?.vetoed).toEqual([3]);
    const b = sessionReducer(a, { type: 'optimistic-veto', film_id: 3, vetoed: false });
    expect(b.session?.vetoed).toEqual([]);
  });

  it('results switch the session to results', () => {
    const results = { participants: 2, failed: 0, common_count: 1, common: [film(1)], most: [] };
    const st = reduce([
      { type: 'server', session: session({ status: 'searching', version: 5 }) },
      ev({ type: 'results', id: 6, data: results }),
    ]);
    expect(st.session?.status).toBe('results');
    expect(st.session?.results).toEqual(results);
  });

  it('counts each roll once, whether the answer or the event comes first', () => {
    const base = reduce([{ type: 'server', session: session({ status: 'results', version: 5 }) }]);
    expect(base.rolls).toBe(0);
    // Our own roll: the answer first, then its event with the same version.
    const answered = sessionReducer(base, { type: 'server', session: session({ status: 'results', version: 6, rolled: film(7) }) });
    expect(answered.rolls).toBe(1);
    const echoed = sessionReducer(answered, ev({ type: 'rolled', id: 6, data: { film: film(7) } }));
    expect(echoed.rolls).toBe(1);
    // Another device rolls the same film again: a newer event is a new roll.
    const again = sessionReducer(echoed, ev({ type: 'rolled', id: 8, data: { film: film(7) } }));
    expect(again.rolls).toBe(2);
    // A later whole Session with the same rolled film is not a new roll.
    const veto = sessionReducer(again, { type: 'server', session: session({ status: 'results', version: 9, rolled: film(7), vetoed: [1] }) });
    expect(veto.rolls).toBe(2);
    // Another film is.
    const other = sessionReducer(veto, ev({ type: 'rolled', id: 10, data: { film: film(8) } }));
    expect(other.rolls).toBe(3);
    expect(other.session?.rolled?.id).toBe(8);
  });

  it('marks a film watched once', () => {
    const st = reduce([
      { type: 'server', session: session({ version: 1 }) },
      ev({ type: 'watched', id: 2, data: { film_id: 7 } }),
      ev({ type: 'watched', id: 2, data: { film_id: 7 } }),
    ]);
    expect(st.session?.watched).toEqual([7]);
  });

  it('connection changes keep the same object when nothing changes', () => {
    const st = reduce([{ type: 'connection', connection: 'reconnecting' }]);
    expect(sessionReducer(st, { type: 'connection', connection: 'reconnecting' })).toBe(st);
  });
});

describe('parseEvent', () => {
  it('parses each known event with its id', () => {
    expect(parseEvent('veto', '{"film_id":12,"vetoed":true}', '17')).toEqual({
      type: 'veto',
      id: 17,
      data: { film_id: 12, vetoed: true },
    });
    expect(parseEvent('participant_removed', '{"id":"p2"}', '')).toEqual({ type: 'participant_removed', id: null, data: { id: 'p2' } });
    const s = session({ version: 4 });
    const { watched: _w, ...withoutWatched } = s;
    expect(parseEvent('session', JSON.stringify(withoutWatched), '4')).toEqual({ type: 'session', id: 4, data: s });
    expect(parseEvent('rolled', JSON.stringify({ film: film(3) }), '5')?.data).toEqual({ film: film(3) });
  });

  it('rejects unknown events, bad JSON and wrong shapes', () => {
    expect(parseEvent('message', '{}', '1')).toBeNull();
    expect(parseEvent('veto', '{not json', '1')).toBeNull();
    expect(parseEvent('veto', '{"film_id":"12","vetoed":true}', '1')).toBeNull();
    expect(parseEvent('participant', '{"id":1}', '1')).toBeNull();
    expect(parseEvent('session', '{"id":"x"}', '1')).toBeNull();
    expect(parseEvent('results', '{"common":[{"id":1}],"most":[]}', '1')).toBeNull();
    expect(parseEvent('rolled', '{"film":null}', '1')).toBeNull();
  });

  it('ignores an id that is not a number', () => {
    expect(parseEvent('watched', '{"film_id":1}', 'abc')?.id).toBeNull();
  });
});

describe('what the screens show', () => {
  it('picks the screen from the status', () => {
    expect(screenOf(session({ status: 'gathering' }), false)).toBe('gathering');
    expect(screenOf(session({ status: 'searching' }), true)).toBe('loading');
    expect(screenOf(session({ status: 'results' }), false)).toBe('results');
    expect(screenOf(session({ status: 'results' }), true)).toBe('gathering');
  });

  it('progress: pages of total, indeterminate before the total is known', () => {
    expect(progressOf(participant({ status: 'fetching', pages_fetched: 3, pages_total: 36 }))).toEqual({
      value: 3,
      max: 36,
      label: '3 of 36 pages',
    });
    expect(progressOf(participant({ status: 'fetching', pages_fetched: 0, pages_total: 0 })).value).toBeNull();
    expect(progressOf(participant({ status: 'queued' })).value).toBeNull();
    expect(progressOf(participant({ status: 'ready', films: 60 }))).toEqual({ value: 1, max: 1, label: '60 films' });
    expect(progressOf(participant({ status: 'ready', films: 1 })).label).toBe('1 film');
    expect(progressOf(participant({ status: 'fetching', pages_fetched: 40, pages_total: 36 })).value).toBe(36);
  });

  it('film lists mark vetoed and watched films and count what is left', () => {
    const s = session({
      status: 'results',
      results: { participants: 4, failed: 0, common_count: 2, common: [film(1), film(2)], most: [ranked(3, 3), ranked(4, 2)] },
      vetoed: [2, 4],
      watched: [1],
    });
    const l = filmLists(s);
    expect(l.common.map((e) => [e.film.id, e.vetoed, e.watched, e.lists])).toEqual([
      [1, false, true, null],
      [2, true, false, null],
    ]);
    expect(l.most.map((e) => [e.film.id, e.lists])).toEqual([
      [3, 3],
      [4, 2],
    ]);
    // every common film is struck out or watched: the roll takes the films
    // on the most lists left (3 of 4), not those on fewer
    expect(l.pool.map((f) => f.id)).toEqual([3]);
    expect(l.poolFrom).toBe('most');
    expect(l.left).toBe(1);
    expect(l.lists).toBe(4);
    expect(listsLabel(3, 4)).toBe('on 3 of 4 lists');
  });

  it('film lists are empty without results', () => {
    expect(filmLists(session())).toEqual({ common: [], most: [], pool: [], poolFrom: 'none', left: 0, lists: 0 });
  });

  it('rolls from the common films while any is left, as the server does', () => {
    const s = session({
      status: 'results',
      results: { participants: 4, failed: 0, common_count: 2, common: [film(1), film(2)], most: [ranked(3, 3), ranked(5, 3), ranked(4, 2)] },
      vetoed: [1],
      watched: [],
    });
    expect(filmLists(s).pool.map((f) => f.id)).toEqual([2]);
    expect(filmLists(s).poolFrom).toBe('common');
    const none = session({ ...s, vetoed: [1, 2, 3, 5, 4] });
    expect(filmLists(none)).toMatchObject({ pool: [], poolFrom: 'none', left: 0 });
    const lower = session({ ...s, vetoed: [1, 2, 3, 5] });
    expect(filmLists(lower).pool.map((f) => f.id)).toEqual([4]);
  });

  it('labels a film with its year only when known', () => {
    expect(filmLabel(film(1, 'Ghost', 1927))).toBe('Ghost (1927)');
    expect(filmLabel(film(1, 'Ghost', null))).toBe('Ghost');
  });
});

describe('the roll pool over every common film (issue 7)', () => {
  const results = (over: Partial<import('./types').Results> = {}): import('./types').Results => ({
    participants: 3,
    failed: 0,
    common_count: 800,
    common: Array.from({ length: 100 }, (_, i) => film(i + 1)),
    most: [ranked(9001, 2), ranked(9002, 2)],
    pool: 800,
    ...over,
  });

  it('counts the common films beyond the first page, the struck-out ones out', () => {
    // 5 and 700 are common (700 on a later page), 9001 is a most-lists film
    expect(poolCount(results(), [5, 700, 9001])).toEqual({ left: 798, from: 'common' });
    expect(poolCount(results({ common_count: 2, common: [film(1), film(2)] }), [1, 2])).toEqual({ left: 2, from: 'most' });
    expect(poolCount(results({ common_count: 1, common: [film(1)] }), [1, 9001, 9002])).toEqual({ left: 0, from: 'none' });
  });

  it('the list says the server’s pool, not the films on the page', () => {
    const s = session({ status: 'results', results: results({ pool: 799 }), vetoed: [700] });
    const l = filmLists(s);
    expect(l.left).toBe(799);
    expect(l.poolFrom).toBe('common');
    expect(l.common).toHaveLength(100);
  });

  it('a strike-out changes the pool at once; the server’s answer and events set it', () => {
    const st = reduce([
      { type: 'server', session: session({ status: 'results', version: 5, results: results() }) },
      { type: 'optimistic-veto', film_id: 650, vetoed: true },
    ]);
    expect(st.session?.results?.pool).toBe(799);
    const again = reduce([ev({ type: 'veto', id: 6, data: { film_id: 651, vetoed: true, pool: 798 } })], st);
    expect(again.session?.vetoed).toEqual([650, 651]);
    expect(again.session?.results?.pool).toBe(798);
  });

  it('a film watched on another device leaves the results and the counts', () => {
    const base = reduce([
      { type: 'server', session: session({ status: 'results', version: 5, results: results(), vetoed: [3], rolled: film(3) }) },
    ]);
    const st = reduce([ev({ type: 'watched', id: 6, data: { film_id: 3, pool: 799 } })], base);
    expect(st.session?.watched).toEqual([3]);
    expect(st.session?.vetoed).toEqual([]);
    expect(st.session?.rolled).toBeNull();
    expect(st.session?.results?.common.some((f) => f.id === 3)).toBe(false);
    expect(st.session?.results?.common_count).toBe(799);
    expect(st.session?.results?.pool).toBe(799);
    // one on a later page counts too; a most-lists film leaves `most`
    const later = reduce([ev({ type: 'watched', id: 7, data: { film_id: 650 } }), ev({ type: 'watched', id: 8, data: { film_id: 9001 } })], st);
    expect(later.session?.results?.common_count).toBe(798);
    expect(later.session?.results?.most.map((f) => f.id)).toEqual([9002]);
  });

  it('a film put back elsewhere asks for the session again', () => {
    const base = reduce([{ type: 'server', session: session({ status: 'results', version: 5, results: results(), watched: [42] }) }]);
    const st = reduce([ev({ type: 'unwatched', id: 6, data: { film_id: 42, pool: 801 } })], base);
    expect(st.session?.watched).toEqual([]);
    expect(st.session?.results?.pool).toBe(801);
    expect(st.resync).toBe(base.resync + 1);
    expect(parseEvent('unwatched', '{"film_id":42,"pool":801}', '9')).toEqual({ type: 'unwatched', id: 9, data: { film_id: 42, pool: 801 } });
    expect(parseEvent('veto', '{"film_id":1,"vetoed":true,"pool":-1}', '9')).toEqual({ type: 'veto', id: 9, data: { film_id: 1, vetoed: true } });
  });

  it('counts result sets: a new search drops the pages loaded for the last', () => {
    const a = reduce([{ type: 'server', session: session({ status: 'results', version: 5, results: results() }) }]);
    const g = a.resultsGen;
    const b = reduce([{ type: 'server', session: session({ status: 'results', version: 6, results: results(), vetoed: [1] }) }], a);
    expect(b.resultsGen).toBe(g);
    const c = reduce(
      [
        { type: 'server', session: session({ status: 'searching', version: 7, results: null }) },
        ev({ type: 'results', id: 8, data: results() }),
      ],
      b,
    );
    expect(c.resultsGen).toBe(g + 1);
  });
});
