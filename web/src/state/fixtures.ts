// Test data builders shared by the unit tests (not part of the app bundle:
// only *.test.ts import it).
import type { Film, Participant, RankedFilm, Session } from './types';

export function participant(over: Partial<Participant> = {}): Participant {
  return {
    id: 'p1',
    name: 'alice',
    source: 'letterboxd',
    status: 'waiting',
    pages_fetched: 0,
    pages_total: 0,
    films: 0,
    error: null,
    warning: null,
    ...over,
  };
}

export function film(id: number, title = `Film ${id}`, year: number | null = 2000): Film {
  return { id, title, year, slug: `film-${id}`, letterboxd_id: 100000 + id, url: null, poster: null };
}

export function ranked(id: number, lists: number): RankedFilm {
  return { ...film(id), lists };
}

export function session(over: Partial<Session> = {}): Session {
  return {
    id: '0123456789abcdef0123456789abcdef',
    join_url: '/s/0123456789abcdef0123456789abcdef',
    status: 'gathering',
    version: 1,
    created_at: '2026-11-25T12:00:00Z',
    expires_at: '2026-11-25T18:00:00Z',
    participants: [],
    results: null,
    vetoed: [],
    rolled: null,
    watched: [],
    ...over,
  };
}
