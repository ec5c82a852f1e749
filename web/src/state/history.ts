// Browser history for the screens of one session: gathering, results (the
// loading screen shares its entry) and the rolled film each get an entry, so
// Back on the rolled film returns to the list and Back on the list to the
// people. The entry's state says which screen it is and which one it was
// pushed from; going to that one again is a Back, not one more entry, so
// "Back to the list" and the browser's Back leave the same history.
// Pure: unit-tested in history.test.ts.
import type { Screen } from './session';

export type View = 'gathering' | 'results' | 'rolled';

export interface HistoryEntry {
  fpSession: string;
  fpView: View;
  fpPrev?: View;
}

export type HistoryStep =
  | { op: 'replace'; state: HistoryEntry }
  | { op: 'push'; state: HistoryEntry }
  | { op: 'back' };

export function viewOf(screen: Screen, rolledOpen: boolean): View {
  if (rolledOpen) return 'rolled';
  return screen === 'gathering' ? 'gathering' : 'results';
}

const VIEWS: readonly string[] = ['gathering', 'results', 'rolled'];

/** The entry's state when it is one of this session's, else null. */
export function entryOf(state: unknown, session: string): HistoryEntry | null {
  if (typeof state !== 'object' || state === null) return null;
  const e = state as Record<string, unknown>;
  if (e.fpSession !== session || typeof e.fpView !== 'string' || !VIEWS.includes(e.fpView)) return null;
  const prev = typeof e.fpPrev === 'string' && VIEWS.includes(e.fpPrev) ? (e.fpPrev as View) : undefined;
  return { fpSession: session, fpView: e.fpView as View, ...(prev ? { fpPrev: prev } : {}) };
}

/** What to do with the history when the screen shown becomes `next`. */
export function stepsTo(state: unknown, session: string, next: View): HistoryStep[] {
  const cur = entryOf(state, session);
  if (!cur) {
    // The first screen of this page: the rolled film still gets the list
    // under it, so that Back closes it.
    if (next === 'rolled') {
      return [
        { op: 'replace', state: { fpSession: session, fpView: 'results' } },
        { op: 'push', state: { fpSession: session, fpView: 'rolled', fpPrev: 'results' } },
      ];
    }
    return [{ op: 'replace', state: { fpSession: session, fpView: next } }];
  }
  if (cur.fpView === next) return [];
  if (cur.fpPrev === next) return [{ op: 'back' }];
  return [{ op: 'push', state: { fpSession: session, fpView: next, fpPrev: cur.fpView } }];
}

// ---- "Return to your session" ---------------------------------------------

const LAST_KEY = 'filmpicker.lastSession';

export function rememberSession(id: string, store: Pick<Storage, 'setItem'> | null = safeStorage()): void {
  try {
    store?.setItem(LAST_KEY, id);
  } catch {
    // private mode, storage full: only the shortcut is lost
  }
}

export function lastSession(store: Pick<Storage, 'getItem'> | null = safeStorage()): string | null {
  try {
    const v = store?.getItem(LAST_KEY) ?? null;
    return v !== null && /^[0-9a-f]{32}$/.test(v) ? v : null;
  } catch {
    return null;
  }
}

export function forgetSession(id: string, store: Pick<Storage, 'getItem' | 'removeItem'> | null = safeStorage()): void {
  try {
    if (store?.getItem(LAST_KEY) === id) store.removeItem(LAST_KEY);
  } catch {
    // as above
  }
}

// The rolled film this browser last closed, so that coming back to the
// session does not put it full screen again (a new roll still does).
const SEEN_KEY = 'filmpicker.seenRoll';

export function rememberSeenRoll(id: string, filmId: number, store: Pick<Storage, 'setItem'> | null = safeStorage()): void {
  try {
    store?.setItem(SEEN_KEY, `${id}:${filmId}`);
  } catch {
    // as above
  }
}

export function seenRoll(id: string, filmId: number, store: Pick<Storage, 'getItem'> | null = safeStorage()): boolean {
  try {
    return store?.getItem(SEEN_KEY) === `${id}:${filmId}`;
  } catch {
    return false;
  }
}

function safeStorage(): Storage | null {
  try {
    return typeof localStorage === 'undefined' ? null : localStorage;
  } catch {
    return null;
  }
}
