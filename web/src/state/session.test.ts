import { describe, expect, it } from 'vitest';
import type { SessionAction, SessionState } from './session';
import {
  filmLabel,
  filmLists,
  initialSessionState,
  listsLabel,
  parseEvent,
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
