import { describe, expect, it } from 'vitest';
import { entryOf, forgetSession, lastSession, rememberSeenRoll, rememberSession, seenRoll, stepsTo, viewOf } from './history';
import type { HistoryEntry, HistoryStep } from './history';

const ID = '0123456789abcdef0123456789abcdef';

/** A browser history the steps are played on (back moves the cursor). */
function play(steps: HistoryStep[], h: { entries: (HistoryEntry | null)[]; at: number }) {
  for (const s of steps) {
    if (s.op === 'back') h.at--;
    else if (s.op === 'push') {
      h.entries = [...h.entries.slice(0, h.at + 1), s.state];
      h.at++;
    } else h.entries[h.at] = s.state;
  }
  return h;
}

describe('session history', () => {
  it('the loading screen shares the results entry', () => {
    expect(viewOf('loading', false)).toBe('results');
    expect(viewOf('results', false)).toBe('results');
    expect(viewOf('gathering', false)).toBe('gathering');
    expect(viewOf('results', true)).toBe('rolled');
  });

  it('gathering -> results -> rolled gets an entry each; closing the film is a Back', () => {
    const h = { entries: [null] as (HistoryEntry | null)[], at: 0 };
    const go = (v: 'gathering' | 'results' | 'rolled') => play(stepsTo(h.entries[h.at], ID, v), h);
    go('gathering');
    expect(h.entries).toEqual([{ fpSession: ID, fpView: 'gathering' }]);
    go('results');
    go('rolled');
    expect(h.entries.map((e) => e?.fpView)).toEqual(['gathering', 'results', 'rolled']);
    expect(h.at).toBe(2);
    go('results'); // "Back to the list"
    expect(h.at).toBe(1);
    go('rolled'); // rolled again: a new entry in place of the old one
    expect(h.entries.map((e) => e?.fpView)).toEqual(['gathering', 'results', 'rolled']);
    go('results');
    go('gathering'); // "Change the group": Back to the people's entry
    expect(h.at).toBe(0);
    expect(stepsTo(h.entries[h.at], ID, 'gathering')).toEqual([]);
  });

  it('a page opened on the rolled film still has the list under it', () => {
    expect(stepsTo(null, ID, 'rolled')).toEqual([
      { op: 'replace', state: { fpSession: ID, fpView: 'results' } },
      { op: 'push', state: { fpSession: ID, fpView: 'rolled', fpPrev: 'results' } },
    ]);
  });

  it('entries of another session or of nobody are not ours', () => {
    expect(entryOf({ fpSession: 'other', fpView: 'results' }, ID)).toBeNull();
    expect(entryOf({ fpSession: ID, fpView: 'nonsense' }, ID)).toBeNull();
    expect(entryOf('x', ID)).toBeNull();
    expect(entryOf({ fpSession: ID, fpView: 'rolled', fpPrev: 'bad' }, ID)).toEqual({ fpSession: ID, fpView: 'rolled' });
    expect(stepsTo({ fpSession: 'other', fpView: 'results' }, ID, 'results')).toEqual([
      { op: 'replace', state: { fpSession: ID, fpView: 'results' } },
    ]);
  });
});

describe('the last session', () => {
  function store() {
    const m = new Map<string, string>();
    return {
      getItem: (k: string) => m.get(k) ?? null,
      setItem: (k: string, v: string) => void m.set(k, v),
      removeItem: (k: string) => void m.delete(k),
    };
  }

  it('is remembered, forgotten only by its own id, and must look like one', () => {
    const st = store();
    expect(lastSession(st)).toBeNull();
    rememberSession(ID, st);
    expect(lastSession(st)).toBe(ID);
    forgetSession('ffffffffffffffffffffffffffffffff', st);
    expect(lastSession(st)).toBe(ID);
    forgetSession(ID, st);
    expect(lastSession(st)).toBeNull();
    st.setItem('filmpicker.lastSession', '<script>');
    expect(lastSession(st)).toBeNull();
  });

  it('storage that throws loses only the shortcut', () => {
    const bad = {
      getItem: () => {
        throw new Error('denied');
      },
      setItem: () => {
        throw new Error('denied');
      },
      removeItem: () => {
        throw new Error('denied');
      },
    };
    expect(() => rememberSession(ID, bad)).not.toThrow();
    expect(lastSession(bad)).toBeNull();
    expect(() => forgetSession(ID, bad)).not.toThrow();
    expect(seenRoll(ID, 1, bad)).toBe(false);
  });

  it('remembers the rolled film closed here', () => {
    const st = store();
    expect(seenRoll(ID, 5, st)).toBe(false);
    rememberSeenRoll(ID, 5, st);
    expect(seenRoll(ID, 5, st)).toBe(true);
    expect(seenRoll(ID, 6, st)).toBe(false);
  });
});
