// The list of common films on the results screen, page by page. The
// session's `results.common` is the first page; "Show more" loads the next
// ones from GET /sessions/{id}/films, and the search box asks the same route
// with `q` (the server matches titles). Only what was loaded is rendered, a
// page at a time, so a phone stays fast with thousands of common films.
// Pure (no I/O): unit-tested in filmPages.test.ts.
import type { Film, FilmPage, Results } from './types';

export const PAGE_SIZE = 100;
/** From this many common films on, the results get a search box. */
export const SEARCH_FROM = 24;

export interface PagesState {
  /** The result set (SessionState.resultsGen) the loaded pages belong to. */
  gen: number;
  /** Common films loaded after the first page, in the server's order. */
  more: Film[];
  /** The search being shown ('' = none), its films and match count. */
  q: string;
  found: Film[];
  foundTotal: number;
  /** A request in flight for the list shown, or the last one failed. */
  status: 'idle' | 'loading' | 'error';
}

export type PagesAction =
  | { type: 'reset'; gen: number }
  | { type: 'search'; q: string }
  | { type: 'loading' }
  | { type: 'loaded'; gen: number; q: string; page: FilmPage }
  | { type: 'failed'; gen: number; q: string };

export const initialPages = (gen: number): PagesState => ({
  gen,
  more: [],
  q: '',
  found: [],
  foundTotal: 0,
  status: 'idle',
});

/** a then the films of b not in a, in order. */
export function mergeFilms(a: Film[], b: Film[]): Film[] {
  const seen = new Set(a.map((f) => f.id));
  const out = a.slice();
  for (const f of b) {
    if (!seen.has(f.id)) {
      seen.add(f.id);
      out.push(f);
    }
  }
  return out;
}

export function pagesReducer(state: PagesState, action: PagesAction): PagesState {
  switch (action.type) {
    case 'reset':
      return action.gen === state.gen ? state : initialPages(action.gen);
    case 'search': {
      const q = action.q.trim();
      if (q === state.q) return state;
      return { ...state, q, found: [], foundTotal: 0, status: q ? 'loading' : 'idle' };
    }
    case 'loading':
      return state.status === 'loading' ? state : { ...state, status: 'loading' };
    case 'loaded': {
      // An answer for older results or another search is no longer wanted.
      if (action.gen !== state.gen || action.q !== state.q) return state;
      if (action.q) {
        const found = action.page.offset === 0 ? action.page.films : mergeFilms(state.found, action.page.films);
        return { ...state, found, foundTotal: action.page.total, status: 'idle' };
      }
      return { ...state, more: mergeFilms(state.more, action.page.films), status: 'idle' };
    }
    case 'failed':
      if (action.gen !== state.gen || action.q !== state.q) return state;
      return { ...state, status: 'error' };
  }
}

export interface PagesView {
  /** The films to render, in order (never one marked watched here: it has
   * left the results, as on the server). */
  films: Film[];
  /** How many there are in all (common films, or those matching the search). */
  total: number;
  /** Where the next page starts (the server's offsets count the same films). */
  nextOffset: number;
  hasMore: boolean;
  searching: boolean;
}

export function pagesView(state: PagesState, r: Results, watched: number[]): PagesView {
  const gone = new Set(watched);
  const open = (f: Film) => !gone.has(f.id);
  if (state.q) {
    const films = state.found.filter(open);
    const total = Math.max(films.length, state.foundTotal - (state.found.length - films.length));
    return { films, total, nextOffset: films.length, hasMore: films.length < total, searching: true };
  }
  const films = mergeFilms(r.common, state.more).filter(open);
  const total = Math.max(films.length, r.common_count);
  return { films, total, nextOffset: films.length, hasMore: films.length < total, searching: false };
}
