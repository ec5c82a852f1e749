// Session state of one device: the last Session the server sent, kept up to
// date by the live events (Server-Sent Events) and by the answers to this
// device's own requests. Everything here is pure (no I/O), so the rules for
// ordering and merging are unit-tested in session.test.ts.
//
// Ordering: every event carries the session version after its change (the
// SSE id) and every Session carries `version`. A whole Session replaces the
// state unless it is older than what we have; a partial event older than the
// state is dropped (its change is already inside a newer Session), one of the
// same version is applied again (each partial change is idempotent: upsert,
// set add/remove), which keeps working when a server sends several events
// with one version.

import type {
  Film,
  FilmPage,
  Participant,
  RankedFilm,
  Results,
  Session,
  SessionEvent,
  SessionEventType,
} from './types';
import { SESSION_EVENT_TYPES } from './types';

export type Connection = 'connecting' | 'live' | 'reconnecting';

export interface SessionState {
  session: Session | null;
  connection: Connection;
  /** Counts the rolls seen (each one shows the rolled film full screen once). */
  rolls: number;
  /** The version at which the current `rolled` was last counted. */
  rolledVersion: number;
  /** Counts the result sets seen (a new search): the later pages of the
   * common films loaded for older results are dropped when it changes. */
  resultsGen: number;
  /** Counts the changes this state cannot apply by itself (a film put back
   * by another device goes back into a list at a place only the server
   * knows): the page loads the session again when it changes. */
  resync: number;
}

export type SessionAction =
  | { type: 'event'; event: SessionEvent }
  /** A Session from the answer to one of our own requests. */
  | { type: 'server'; session: Session }
  /** Shown at once on click; the server's answer or event confirms it. */
  | { type: 'optimistic-veto'; film_id: number; vetoed: boolean }
  | { type: 'connection'; connection: Connection };

export const initialSessionState: SessionState = {
  session: null,
  connection: 'connecting',
  rolls: 0,
  rolledVersion: -1,
  resultsGen: 0,
  resync: 0,
};

function upsertParticipant(list: Participant[], p: Participant): Participant[] {
  const at = list.findIndex((q) => q.id === p.id);
  if (at < 0) return [...list, p];
  const copy = list.slice();
  copy[at] = p;
  return copy;
}

function setMember(list: number[], id: number, member: boolean): number[] {
  const has = list.includes(id);
  if (member === has) return list;
  return member ? [...list, id] : list.filter((x) => x !== id);
}

function replaceWhole(state: SessionState, next: Session): SessionState {
  const prev = state.session;
  if (prev && prev.id === next.id && next.version < prev.version) return state;
  if (next.results && (!prev || !prev.results || prev.status !== 'results')) state = { ...state, resultsGen: state.resultsGen + 1 };
  // A whole Session counts as a new roll only when the rolled film changed:
  // the same film in a later Session is the same roll (a veto after it, say).
  if (next.rolled && (!prev || !prev.rolled || prev.rolled.id !== next.rolled.id)) {
    return { ...state, session: next, rolls: state.rolls + 1, rolledVersion: next.version };
  }
  return { ...state, session: next };
}

/** Applies one partial event to a session (no version checks). */
export function applyEventData(s: Session, ev: SessionEvent): Session {
  switch (ev.type) {
    case 'session':
      return ev.data;
    case 'participant':
      return { ...s, participants: upsertParticipant(s.participants, ev.data) };
    case 'participant_removed':
      return { ...s, participants: s.participants.filter((p) => p.id !== ev.data.id) };
    case 'results':
      return { ...s, results: ev.data, status: 'results' };
    case 'veto':
      return withPool({ ...s, vetoed: setMember(s.vetoed, ev.data.film_id, ev.data.vetoed) }, ev.data.pool);
    case 'rolled':
      return { ...s, rolled: ev.data.film };
    case 'watched':
      return withPool(watchedApplied(s, ev.data.film_id), ev.data.pool);
    case 'unwatched':
      return withPool({ ...s, watched: setMember(s.watched, ev.data.film_id, false) }, ev.data.pool);
  }
}

function withPool(s: Session, pool: number | undefined): Session {
  if (pool === undefined || !s.results) return s;
  return { ...s, results: { ...s.results, pool } };
}

/** A film marked watched leaves the results, as on the server: out of the
 * list it was on (a film not among the most-lists films is a common one,
 * maybe on a later page), out of the struck-out set and off the screen. */
function watchedApplied(s: Session, filmId: number): Session {
  const out: Session = { ...s, watched: setMember(s.watched, filmId, true), vetoed: setMember(s.vetoed, filmId, false) };
  if (s.rolled && s.rolled.id === filmId) out.rolled = null;
  const r = s.results;
  if (r && !s.watched.includes(filmId)) {
    if (r.most.some((f) => f.id === filmId)) {
      out.results = { ...r, most: r.most.filter((f) => f.id !== filmId) };
    } else {
      out.results = { ...r, common: r.common.filter((f) => f.id !== filmId), common_count: Math.max(0, r.common_count - 1) };
    }
  }
  return out;
}

export function sessionReducer(state: SessionState, action: SessionAction): SessionState {
  switch (action.type) {
    case 'connection':
      return state.connection === action.connection ? state : { ...state, connection: action.connection };
    case 'server':
      return replaceWhole(state, action.session);
    case 'optimistic-veto': {
      const s = state.session;
      if (!s) return state;
      const vetoed = setMember(s.vetoed, action.film_id, action.vetoed);
      const r = s.results;
      // The pool changes at once too (the server's answer confirms it).
      const results = r && r.pool !== undefined ? { ...r, pool: poolCount(r, vetoed).left } : r;
      return { ...state, session: { ...s, vetoed, results } };
    }
    case 'event': {
      const ev = action.event;
      if (ev.type === 'session') return { ...replaceWhole(state, ev.data), connection: 'live' };
      const s = state.session;
      if (!s) return state; // the first event on a connection is always `session`
      if (ev.id !== null && ev.id < s.version) return state;
      const next = applyEventData(s, ev);
      const version = ev.id !== null && ev.id > s.version ? ev.id : s.version;
      let { rolls, rolledVersion, resultsGen, resync } = state;
      if (ev.type === 'results') resultsGen++;
      if (ev.type === 'unwatched' && s.watched.includes(ev.data.film_id)) resync++;
      if (ev.type === 'rolled') {
        // A rolled event is a new roll unless it is the one we already
        // counted (the answer to our own POST carried it first).
        const sameFilm = s.rolled !== null && s.rolled.id === ev.data.film.id;
        const newer = ev.id === null || ev.id > state.rolledVersion;
        if (!sameFilm || newer) {
          rolls++;
          rolledVersion = ev.id ?? version;
        }
      }
      return { ...state, session: { ...next, version }, connection: 'live', rolls, rolledVersion, resultsGen, resync };
    }
  }
}

// ---- parsing what arrives on the wire --------------------------------------

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isFilm(v: unknown): v is Film {
  return isObj(v) && typeof v.id === 'number' && typeof v.title === 'string';
}

function isParticipant(v: unknown): v is Participant {
  return isObj(v) && typeof v.id === 'string' && typeof v.name === 'string' && typeof v.status === 'string';
}

function isResults(v: unknown): v is Results {
  return isObj(v) && Array.isArray(v.common) && v.common.every(isFilm) && Array.isArray(v.most) && v.most.every(isFilm);
}

export function isFilmPage(v: unknown): v is FilmPage {
  return (
    isObj(v) &&
    typeof v.total === 'number' &&
    typeof v.offset === 'number' &&
    Array.isArray(v.films) &&
    v.films.every(isFilm)
  );
}

export function isSession(v: unknown): v is Session {
  return (
    isObj(v) &&
    typeof v.id === 'string' &&
    typeof v.status === 'string' &&
    typeof v.version === 'number' &&
    Array.isArray(v.participants) &&
    v.participants.every(isParticipant) &&
    (v.results === null || v.results === undefined || isResults(v.results)) &&
    Array.isArray(v.vetoed) &&
    (v.rolled === null || v.rolled === undefined || isFilm(v.rolled))
  );
}

/** Fills the optional arrays a Session may leave out, so the views can rely on them. */
export function normalizeSession(s: Session): Session {
  return {
    ...s,
    results: s.results ?? null,
    rolled: s.rolled ?? null,
    vetoed: s.vetoed ?? [],
    watched: Array.isArray(s.watched) ? s.watched : [],
  };
}

/**
 * Turns one SSE message (event name, data line, lastEventId) into an event,
 * or null when it is not one we know or its data does not have the right
 * shape (a bad message must not break the page).
 */
export function parseEvent(type: string, data: string, lastEventId: string): SessionEvent | null {
  if (!(SESSION_EVENT_TYPES as readonly string[]).includes(type)) return null;
  let v: unknown;
  try {
    v = JSON.parse(data);
  } catch {
    return null;
  }
  const n = /^\d{1,15}$/.test(lastEventId) ? Number(lastEventId) : null;
  const t = type as SessionEventType;
  switch (t) {
    case 'session':
      return isSession(v) ? { type: t, id: n, data: normalizeSession(v) } : null;
    case 'participant':
      return isParticipant(v) ? { type: t, id: n, data: v } : null;
    case 'participant_removed':
      return isObj(v) && typeof v.id === 'string' ? { type: t, id: n, data: { id: v.id } } : null;
    case 'results':
      return isResults(v) ? { type: t, id: n, data: v } : null;
    case 'veto':
      return isObj(v) && typeof v.film_id === 'number' && typeof v.vetoed === 'boolean'
        ? { type: t, id: n, data: { film_id: v.film_id, vetoed: v.vetoed, ...poolOf(v) } }
        : null;
    case 'rolled':
      return isObj(v) && isFilm(v.film) ? { type: t, id: n, data: { film: v.film } } : null;
    case 'watched':
    case 'unwatched':
      return isObj(v) && typeof v.film_id === 'number' ? { type: t, id: n, data: { film_id: v.film_id, ...poolOf(v) } } : null;
  }
}

function poolOf(v: Record<string, unknown>): { pool?: number } {
  return typeof v.pool === 'number' && Number.isInteger(v.pool) && v.pool >= 0 ? { pool: v.pool } : {};
}

// ---- what the screens show ---------------------------------------------------

export type Screen = 'gathering' | 'loading' | 'results';

/** Which screen a session is on; `editing` is this device's "change the group". */
export function screenOf(s: Session, editing: boolean): Screen {
  if (s.status === 'searching') return 'loading';
  if (s.status === 'results' && !editing) return 'results';
  return 'gathering';
}

export interface Progress {
  /** null: indeterminate (the total is not known yet). */
  value: number | null;
  max: number;
  label: string;
}

export function progressOf(p: Participant): Progress {
  switch (p.status) {
    case 'ready':
      return { value: 1, max: 1, label: p.films === 1 ? '1 film' : `${p.films} films` };
    case 'failed':
      return { value: 0, max: 1, label: 'could not be read' };
    case 'fetching':
      if (p.pages_total > 0) {
        const done = Math.min(p.pages_fetched, p.pages_total);
        return { value: done, max: p.pages_total, label: `${done} of ${p.pages_total} pages` };
      }
      return { value: null, max: 1, label: 'starting…' };
    case 'queued':
      return { value: null, max: 1, label: 'waiting in line…' };
    case 'waiting':
      return { value: 0, max: 1, label: 'not started' };
  }
  return { value: null, max: 1, label: '' };
}

export interface FilmEntry {
  film: Film;
  /** Lists it is on; null for a film common to all. */
  lists: number | null;
  vetoed: boolean;
  watched: boolean;
}

export interface FilmLists {
  common: FilmEntry[];
  most: FilmEntry[];
  /** What "Roll!" picks from, the server's rule (see rollPool). */
  pool: Film[];
  /** Where the pool comes from: the common films, or (once every common
   * film is struck out) the films on the most lists. */
  poolFrom: 'common' | 'most' | 'none';
  /** pool.length. */
  left: number;
  /** How many lists took part (for "on 3 of 4 lists"). */
  lists: number;
}

export function filmLists(s: Session): FilmLists {
  const r = s.results;
  if (!r) return { common: [], most: [], pool: [], poolFrom: 'none', left: 0, lists: 0 };
  const vetoed = new Set(s.vetoed);
  const watched = new Set(s.watched);
  const entry = (film: Film, lists: number | null): FilmEntry => ({
    film,
    lists,
    vetoed: vetoed.has(film.id),
    watched: watched.has(film.id),
  });
  const common = r.common.map((f) => entry(f, null));
  const most = r.most.map((f: RankedFilm) => entry(f, f.lists));
  const { pool, from } = rollPool(common, most);
  if (r.pool === undefined) return { common, most, pool, poolFrom: from, left: pool.length, lists: r.participants };
  // The server counts the pool over every common film, not only the page
  // here; `pool` (for the shuffle) holds the films of it this device has.
  const counted = poolCount(r, s.vetoed);
  const poolFrom = r.pool === 0 ? 'none' : counted.from === 'none' ? from : counted.from;
  return { common, most, pool, poolFrom, left: r.pool, lists: r.participants };
}

/**
 * The size of Roll!'s pool by the server's rule, from what a device knows:
 * the common films not struck out (`common_count` less the struck-out films
 * that are not among the most-lists ones: every struck-out film is one of the
 * two); when none is left, the films at the top "on N lists" level still
 * having one, not struck out.
 */
export function poolCount(r: Results, vetoed: number[]): { left: number; from: FilmLists['poolFrom'] } {
  const mostIds = new Set(r.most.map((f) => f.id));
  const struck = new Set(vetoed);
  let commonStruck = 0;
  for (const id of struck) if (!mostIds.has(id)) commonStruck++;
  const commonLeft = Math.max(0, r.common_count - commonStruck);
  if (commonLeft > 0) return { left: commonLeft, from: 'common' };
  const open = r.most.filter((f) => !struck.has(f.id));
  const top = open.reduce((m, f) => Math.max(m, f.lists), 0);
  const n = open.filter((f) => f.lists === top).length;
  return n > 0 ? { left: n, from: 'most' } : { left: 0, from: 'none' };
}

/**
 * The films a roll picks from, as the server does: the common films not
 * struck out; when none is left, the films on the most lists (the highest
 * "on N lists" still having one) not struck out.
 */
export function rollPool(common: FilmEntry[], most: FilmEntry[]): { pool: Film[]; from: FilmLists['poolFrom'] } {
  const open = (e: FilmEntry) => !e.vetoed && !e.watched;
  const c = common.filter(open).map((e) => e.film);
  if (c.length > 0) return { pool: c, from: 'common' };
  const rest = most.filter(open);
  const top = rest.reduce((m, e) => Math.max(m, e.lists ?? 0), 0);
  const m = rest.filter((e) => e.lists === top).map((e) => e.film);
  return m.length > 0 ? { pool: m, from: 'most' } : { pool: [], from: 'none' };
}

/** "on 3 of 4 lists". */
export function listsLabel(lists: number, of: number): string {
  return `on ${lists} of ${of} lists`;
}

export function filmLabel(f: Film): string {
  return f.year === null ? f.title : `${f.title} (${f.year})`;
}
