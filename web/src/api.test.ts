import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ApiError, addParticipant, checkProfile, createSession, forgetToken, putBackWatched, removeParticipant, setVeto, uploadExport } from './api';
import { session } from './state/fixtures';

interface Call {
  url: string;
  init: RequestInit;
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
}

let calls: Call[];
let answers: ((c: Call) => Response | Promise<Response>)[];

beforeEach(() => {
  forgetToken();
  calls = [];
  answers = [];
  vi.stubGlobal('fetch', async (url: string, init: RequestInit) => {
    const c = { url, init };
    calls.push(c);
    const next = answers.shift();
    if (!next) throw new Error('unexpected fetch ' + url);
    return next(c);
  });
});

afterEach(() => {
  vi.unstubAllGlobals();
});

const header = (c: Call, name: string) => new Headers(c.init.headers).get(name);

describe('api', () => {
  it('fetches the CSRF token once and sends it on every change', async () => {
    const s = session({ version: 2 });
    answers.push(
      () => json(200, { csrf_token: 'tok-1' }),
      () => json(201, s),
      () => json(201, s),
      () => json(200, s),
    );
    expect(await createSession()).toEqual(s);
    await addParticipant(s.id, { profile: 'alice' });
    await removeParticipant(s.id, 'p1');
    expect(calls.map((c) => `${c.init.method} ${c.url}`)).toEqual([
      'GET /api/v1/client',
      'POST /api/v1/sessions',
      `POST /api/v1/sessions/${s.id}/participants`,
      `DELETE /api/v1/sessions/${s.id}/participants/p1`,
    ]);
    for (const c of calls.slice(1)) {
      expect(header(c, 'X-CSRF-Token')).toBe('tok-1');
      expect(c.init.credentials).toBe('same-origin');
    }
    expect(calls[2]!.init.body).toBe('{"profile":"alice"}');
    expect(header(calls[2]!, 'Content-Type')).toBe('application/json');
    expect(header(calls[3]!, 'Content-Type')).toBeNull();
  });

  it('gets a new token and retries once after 403 csrf_failed', async () => {
    const s = session();
    answers.push(
      () => json(200, { csrf_token: 'old' }),
      () => json(403, { error: { code: 'csrf_failed', message: 'bad token' } }),
      () => json(200, { csrf_token: 'new' }),
      () => json(200, s),
    );
    await setVeto(s.id, 12, true);
    expect(header(calls[1]!, 'X-CSRF-Token')).toBe('old');
    expect(header(calls[3]!, 'X-CSRF-Token')).toBe('new');
    expect(calls[3]!.init.body).toBe('{"film_id":12,"vetoed":true}');
  });

  it('gives up after a second csrf_failed', async () => {
    answers.push(
      () => json(200, { csrf_token: 'a' }),
      () => json(403, { error: { code: 'csrf_failed', message: 'x' } }),
      () => json(200, { csrf_token: 'b' }),
      () => json(403, { error: { code: 'csrf_failed', message: 'x' } }),
    );
    await expect(createSession()).rejects.toMatchObject({ status: 403, code: 'csrf_failed' });
  });

  it('turns error answers into ApiError with plain words', async () => {
    answers.push(
      () => json(200, { csrf_token: 't' }),
      () => json(422, { error: { code: 'invalid_username', message: "'x y' is not..." } }),
    );
    const e = await addParticipant('id', { profile: 'x y' }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ApiError);
    expect((e as ApiError).status).toBe(422);
    expect((e as ApiError).message).toBe(
      'That is not a Letterboxd username or profile link (like alice or https://letterboxd.com/alice/).',
    );
  });

  it('a network failure is status 0', async () => {
    answers.push(() => {
      throw new TypeError('Failed to fetch');
    });
    await expect(createSession()).rejects.toMatchObject({ status: 0, code: 'network' });
  });

  it('refuses an answer that is not a Session', async () => {
    answers.push(
      () => json(200, { csrf_token: 't' }),
      () => json(201, { hello: 1 }),
    );
    await expect(createSession()).rejects.toMatchObject({ code: 'invalid_answer' });
  });

  it('uploads an export as multipart with the username', async () => {
    answers.push(
      () => json(200, { csrf_token: 't' }),
      () =>
        json(201, {
          import: { id: null, participant: { source: 'letterboxd', profile: 'bob' }, format: 'letterboxd-csv', films: 3, row_errors: [], row_errors_total: 0 },
        }),
    );
    const file = new File(['Date,Name,Year,Letterboxd URI\n'], 'watchlist.csv', { type: 'text/csv' });
    const a = await uploadExport(file, 'bob');
    expect(a.import.films).toBe(3);
    const body = calls[1]!.init.body as FormData;
    expect(body).toBeInstanceOf(FormData);
    expect((body.get('file') as File).name).toBe('watchlist.csv');
    expect(body.get('username')).toBe('bob');
    expect(header(calls[1]!, 'Content-Type')).toBeNull(); // the browser sets the boundary
  });

  it('checks a profile with the input encoded', async () => {
    answers.push(() => json(200, { valid: true, source: 'letterboxd', username: 'alice' }));
    const a = await checkProfile('https://letterboxd.com/Alice/?a=1&b', new AbortController().signal);
    expect(a.username).toBe('alice');
    expect(calls[0]!.url).toBe('/api/v1/profiles/check?input=https%3A%2F%2Fletterboxd.com%2FAlice%2F%3Fa%3D1%26b');
  });

  it('an upload joins under its display name; Put it back is a DELETE of the watched film', async () => {
    const s = session({ version: 3 });
    answers.push(
      () => json(200, { csrf_token: 'tok-9' }),
      () => json(201, s),
      () => json(200, s),
    );
    await addParticipant(s.id, { import: 'imp1', name: 'Dana' });
    expect(await putBackWatched(s.id, 42)).toEqual(s);
    expect(calls.map((c) => `${c.init.method} ${c.url}`)).toEqual([
      'GET /api/v1/client',
      `POST /api/v1/sessions/${s.id}/participants`,
      `DELETE /api/v1/sessions/${s.id}/watched/42`,
    ]);
    expect(calls[1]!.init.body).toBe('{"import":"imp1","name":"Dana"}');
    expect(header(calls[2]!, 'X-CSRF-Token')).toBe('tok-9');
  });

  it('a name typed twice: the 409 already_added in one sentence', async () => {
    answers.push(
      () => json(200, { csrf_token: 't' }),
      () => json(409, { error: { code: 'already_added', message: 'alice is already in the group' } }),
    );
    const e = await addParticipant('s1', { profile: 'alice' }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ApiError);
    expect((e as ApiError).code).toBe('already_added');
    expect((e as ApiError).message).toBe('alice is already in the group.');
  });
});
