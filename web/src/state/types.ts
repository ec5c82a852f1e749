// The shapes the FilmPicker API sends (docs/sessions.md, api/openapi.json).
// Everything in here came from outside: it is data to show as text, never
// markup.

export interface ApiErrorBody {
  code: string;
  message: string;
}

export type ParticipantStatus = 'waiting' | 'queued' | 'fetching' | 'ready' | 'failed';

export interface Participant {
  id: string;
  name: string;
  source: string;
  status: ParticipantStatus;
  pages_fetched: number;
  pages_total: number;
  films: number;
  error: ApiErrorBody | null;
  warning: ApiErrorBody | null;
  /** Films this person marked watched here lately, newest first (once their list was read). */
  recently_watched?: RecentlyWatched[];
}

export interface RecentlyWatched {
  film: Film;
  watched_at: string;
}

export interface Film {
  id: number;
  title: string;
  year: number | null;
  slug: string | null;
  letterboxd_id: number | null;
  url: string | null;
  /** This server's URL of the poster image, when a page gave one. */
  poster: string | null;
}

export interface RankedFilm extends Film {
  lists: number;
}

export interface Results {
  participants: number;
  failed: number;
  common_count: number;
  /** The first page of the common films (ordered by title); the rest come
   * from GET /sessions/{id}/films. */
  common: Film[];
  most: RankedFilm[];
  /** How many films Roll! draws from now (the server keeps it current). */
  pool?: number;
}

/** GET /api/v1/sessions/{id}/films: one page of the common films. */
export interface FilmPage {
  total: number;
  offset: number;
  films: Film[];
}

export type SessionStatus = 'gathering' | 'searching' | 'results';

export interface Session {
  id: string;
  join_url: string;
  status: SessionStatus;
  version: number;
  created_at: string;
  expires_at: string;
  participants: Participant[];
  results: Results | null;
  vetoed: number[];
  rolled: Film | null;
  watched: number[];
  /** The Film objects of `watched`. */
  watched_films?: Film[];
}

/** One Server-Sent Event of /api/v1/sessions/{id}/events, parsed. `id` is
 * the session version after the change (null when the event had none). */
export type SessionEvent =
  | { type: 'session'; id: number | null; data: Session }
  | { type: 'participant'; id: number | null; data: Participant }
  | { type: 'participant_removed'; id: number | null; data: { id: string } }
  | { type: 'results'; id: number | null; data: Results }
  | { type: 'veto'; id: number | null; data: { film_id: number; vetoed: boolean; pool?: number } }
  | { type: 'rolled'; id: number | null; data: { film: Film } }
  | { type: 'watched'; id: number | null; data: { film_id: number; pool?: number } }
  | { type: 'unwatched'; id: number | null; data: { film_id: number; pool?: number } };

export type SessionEventType = SessionEvent['type'];

export const SESSION_EVENT_TYPES: readonly SessionEventType[] = [
  'session',
  'participant',
  'participant_removed',
  'results',
  'veto',
  'rolled',
  'watched',
  'unwatched',
];

export interface ImportAnswer {
  import: {
    id: string | null;
    participant: { import: string } | { source: string; profile: string };
    format: string;
    films: number;
    row_errors: { line: number; reason: string; title?: string | null; year?: number | null }[];
    row_errors_total: number;
  };
}

export interface ProfileCheckAnswer {
  valid: boolean;
  source?: string;
  username?: string;
  error?: ApiErrorBody;
}
