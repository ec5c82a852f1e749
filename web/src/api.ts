// The HTTP client of the web app. Same-origin only: cookies go along
// (credentials 'same-origin'), and every state-changing request carries the
// CSRF token that GET /api/v1/client hands out (docs/sessions.md). A 403
// csrf_failed (say, the server forgot us after a restart) fetches a new token
// and tries once more.

import type { ApiErrorBody, FilmPage, ImportAnswer, ProfileCheckAnswer, Session } from './state/types';
import { isFilmPage, isSession, normalizeSession } from './state/session';
import { requestErrorText } from './state/messages';

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly body: ApiErrorBody | null;
  constructor(status: number, body: ApiErrorBody | null) {
    super(requestErrorText(status, body));
    this.name = 'ApiError';
    this.status = status;
    this.code = body?.code ?? (status === 0 ? 'network' : 'http_' + status);
    this.body = body;
  }
}

let tokenPromise: Promise<string> | null = null;
let publicUrl: string | null = null;

/** The address phones reach the server at, when the server was told one. */
export function publicBase(): string | null {
  return publicUrl;
}

async function fetchToken(): Promise<string> {
  const res = await send('GET', '/api/v1/client');
  const v: unknown = await res.json().catch(() => null);
  if (typeof v === 'object' && v !== null && typeof (v as { csrf_token?: unknown }).csrf_token === 'string') {
    const pub = (v as { public_url?: unknown }).public_url;
    publicUrl = typeof pub === 'string' && /^https?:\/\/[^/?#\s]+/.test(pub) ? pub : null;
    return (v as { csrf_token: string }).csrf_token;
  }
  throw new ApiError(res.status, { code: 'invalid_answer', message: 'no csrf_token in the answer' });
}

/** The CSRF token, fetched once (again after a failure). */
export function csrfToken(): Promise<string> {
  if (!tokenPromise) {
    tokenPromise = fetchToken().catch((e: unknown) => {
      tokenPromise = null;
      throw e;
    });
  }
  return tokenPromise;
}

export function forgetToken(): void {
  tokenPromise = null;
}

async function send(method: string, path: string, init: RequestInit = {}, signal?: AbortSignal): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(path, {
      ...init,
      method,
      credentials: 'same-origin',
      cache: 'no-store',
      ...(signal ? { signal } : {}),
    });
  } catch (e) {
    if (e instanceof DOMException && e.name === 'AbortError') throw e;
    throw new ApiError(0, null);
  }
  if (!res.ok) throw new ApiError(res.status, await errorBody(res));
  return res;
}

async function errorBody(res: Response): Promise<ApiErrorBody | null> {
  const v: unknown = await res.json().catch(() => null);
  if (typeof v === 'object' && v !== null) {
    const e = (v as { error?: unknown }).error;
    if (typeof e === 'object' && e !== null) {
      const { code, message } = e as { code?: unknown; message?: unknown };
      if (typeof code === 'string') return { code, message: typeof message === 'string' ? message : '' };
    }
  }
  return null;
}

async function mutate(method: 'POST' | 'DELETE', path: string, body: BodyInit | null, json: boolean): Promise<Response> {
  for (let attempt = 0; ; attempt++) {
    const headers: Record<string, string> = { 'X-CSRF-Token': await csrfToken(), Accept: 'application/json' };
    if (json) headers['Content-Type'] = 'application/json';
    try {
      return await send(method, path, { headers, body });
    } catch (e) {
      if (attempt === 0 && e instanceof ApiError && e.status === 403 && e.code === 'csrf_failed') {
        forgetToken();
        continue;
      }
      throw e;
    }
  }
}

async function sessionFrom(res: Response): Promise<Session> {
  const v: unknown = await res.json().catch(() => null);
  if (!isSession(v)) throw new ApiError(res.status, { code: 'invalid_answer', message: 'the server sent no session' });
  return normalizeSession(v);
}

const base = (id: string): string => `/api/v1/sessions/${encodeURIComponent(id)}`;

export async function createSession(): Promise<Session> {
  return sessionFrom(await mutate('POST', '/api/v1/sessions', '{}', true));
}

export async function getSession(id: string): Promise<Session> {
  return sessionFrom(await send('GET', base(id), { headers: { Accept: 'application/json' } }));
}

export type NewParticipant = { profile: string } | { import: string; name?: string };

export async function addParticipant(id: string, who: NewParticipant): Promise<Session> {
  return sessionFrom(await mutate('POST', `${base(id)}/participants`, JSON.stringify(who), true));
}

export async function removeParticipant(id: string, pid: string): Promise<Session> {
  return sessionFrom(await mutate('DELETE', `${base(id)}/participants/${encodeURIComponent(pid)}`, null, false));
}

export async function startSearch(id: string, refresh = false): Promise<Session> {
  return sessionFrom(await mutate('POST', `${base(id)}/search`, JSON.stringify({ refresh }), true));
}

export async function setVeto(id: string, filmId: number, vetoed: boolean): Promise<Session> {
  return sessionFrom(await mutate('POST', `${base(id)}/veto`, JSON.stringify({ film_id: filmId, vetoed }), true));
}

export async function roll(id: string): Promise<Session> {
  return sessionFrom(await mutate('POST', `${base(id)}/roll`, '{}', true));
}

export async function markWatched(id: string, filmId: number): Promise<Session> {
  return sessionFrom(await mutate('POST', `${base(id)}/watched`, JSON.stringify({ film_id: filmId }), true));
}

/** "Put it back": the film leaves the watched set of everyone here and returns to their lists. */
export async function putBackWatched(id: string, filmId: number): Promise<Session> {
  return sessionFrom(await mutate('DELETE', `${base(id)}/watched/${encodeURIComponent(String(filmId))}`, null, false));
}

/** Uploads a Letterboxd export; with `username` it becomes that user's stored list. */
export async function uploadExport(file: File, username?: string): Promise<ImportAnswer> {
  const form = new FormData();
  form.append('file', file, file.name);
  if (username) form.append('username', username);
  const res = await mutate('POST', '/api/v1/imports', form, false);
  const v: unknown = await res.json().catch(() => null);
  if (typeof v !== 'object' || v === null || typeof (v as { import?: unknown }).import !== 'object') {
    throw new ApiError(res.status, { code: 'invalid_answer', message: 'the server sent no import' });
  }
  return v as ImportAnswer;
}

export async function checkProfile(input: string, signal: AbortSignal): Promise<ProfileCheckAnswer> {
  const res = await send(
    'GET',
    `/api/v1/profiles/check?input=${encodeURIComponent(input)}`,
    { headers: { Accept: 'application/json' } },
    signal,
  );
  return (await res.json()) as ProfileCheckAnswer;
}

export function eventsUrl(id: string): string {
  return `${base(id)}/events`;
}

/** One page of the session's common films (those matching `q` in the title). */
export async function getFilms(
  id: string,
  page: { offset: number; limit: number; q: string },
  signal?: AbortSignal,
): Promise<FilmPage> {
  const qs = new URLSearchParams({ offset: String(page.offset), limit: String(page.limit) });
  if (page.q) qs.set('q', page.q);
  const res = await send('GET', `${base(id)}/films?${qs.toString()}`, { headers: { Accept: 'application/json' } }, signal);
  const v: unknown = await res.json().catch(() => null);
  if (!isFilmPage(v)) throw new ApiError(res.status, { code: 'invalid_answer', message: 'the server sent no films' });
  return v;
}
