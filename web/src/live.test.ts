import { describe, expect, it } from 'vitest';
import type { EventSourceLike } from './live';
import { RETRY_DELAYS_MS, subscribe } from './live';
import type { SessionAction } from './state/session';
import { initialSessionState, sessionReducer } from './state/session';
import { participant, session } from './state/fixtures';

class FakeEventSource implements EventSourceLike {
  readyState = 0;
  onerror: ((ev: Event) => void) | null = null;
  onopen: ((ev: Event) => void) | null = null;
  closed = false;
  listeners = new Map<string, ((ev: MessageEvent<string>) => void)[]>();
  constructor(readonly url: string) {}
  addEventListener(type: string, fn: (ev: MessageEvent<string>) => void) {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), fn]);
  }
  close() {
    this.closed = true;
    this.readyState = 2;
  }
  open() {
    this.readyState = 1;
    this.onopen?.(new Event('open'));
  }
  emit(type: string, data: unknown, id: string) {
    const msg = { data: typeof data === 'string' ? data : JSON.stringify(data), lastEventId: id } as MessageEvent<string>;
    for (const fn of this.listeners.get(type) ?? []) fn(msg);
  }
  fail(readyState: number) {
    this.readyState = readyState;
    this.onerror?.(new Event('error'));
  }
}

function harness() {
  const gaveUp: number[] = [];
  const sources: FakeEventSource[] = [];
  const timers: { fn: () => void; ms: number; cleared: boolean }[] = [];
  const actions: SessionAction[] = [];
  const sub = subscribe(
    '/api/v1/sessions/x/events',
    (a) => actions.push(a),
    (url) => {
      const es = new FakeEventSource(url);
      sources.push(es);
      return es;
    },
    (fn, ms) => {
      const t = { fn, ms, cleared: false };
      timers.push(t);
      return t;
    },
    (t) => {
      (t as { cleared: boolean }).cleared = true;
    },
    () => gaveUp.push(sources.length),
  );
  const state = () => actions.reduce(sessionReducer, initialSessionState);
  return { sources, timers, actions, sub, state, gaveUp };
}

describe('subscribe', () => {
  it('feeds parsed events into the reducer, in order', () => {
    const h = harness();
    const es = h.sources[0]!;
    es.open();
    es.emit('session', session({ version: 1 }), '1');
    es.emit('participant', participant({ id: 'p1', status: 'fetching', pages_fetched: 2, pages_total: 5 }), '2');
    es.emit('participant', '{broken', '3');
    es.emit('unknown_event', {}, '4');
    expect(h.actions.map((a) => (a.type === 'event' ? a.event.type : a.type))).toEqual(['connection', 'session', 'participant']);
    expect(h.state().session?.participants[0]?.pages_fetched).toBe(2);
    expect(es.url).toBe('/api/v1/sessions/x/events');
  });

  it('does not say "reconnecting" when the server ends a stream of old age', () => {
    const h = harness();
    const es = h.sources[0]!;
    es.open();
    es.emit('reconnect', {}, '');
    es.fail(0); // the planned end: EventSource reconnects by itself
    expect(h.actions).toEqual([{ type: 'connection', connection: 'live' }]);
    es.open();
    // a later, unplanned drop is said again
    es.fail(0);
    expect(h.actions.at(-1)).toEqual({ type: 'connection', connection: 'reconnecting' });
  });

  it('lets the browser reconnect by itself while it is trying', () => {
    const h = harness();
    h.sources[0]!.fail(0); // CONNECTING: EventSource retries with Last-Event-ID
    expect(h.actions).toEqual([{ type: 'connection', connection: 'reconnecting' }]);
    expect(h.sources).toHaveLength(1);
    expect(h.timers).toHaveLength(0);
  });

  it('is live again once a reconnection opens, even when it missed nothing', () => {
    const h = harness();
    h.sources[0]!.open();
    h.sources[0]!.emit('session', session({ version: 1 }), '1');
    h.sources[0]!.fail(0);
    expect(h.state().connection).toBe('reconnecting');
    h.sources[0]!.open(); // the server replays nothing: Last-Event-ID was current
    expect(h.state().connection).toBe('live');
    expect(h.gaveUp).toEqual([]);
  });

  it('opens a new connection after a growing delay when the browser gave up', () => {
    const h = harness();
    h.sources[0]!.fail(2);
    expect(h.sources[0]!.closed).toBe(true);
    expect(h.timers.map((t) => t.ms)).toEqual([RETRY_DELAYS_MS[0]]);
    expect(h.gaveUp).toEqual([1]); // told, so the page can check the session still exists
    h.timers[0]!.fn();
    expect(h.sources).toHaveLength(2);
    h.sources[1]!.fail(2);
    expect(h.timers.map((t) => t.ms)).toEqual([RETRY_DELAYS_MS[0], RETRY_DELAYS_MS[1]]);
    h.timers[1]!.fn();
    h.sources[2]!.open(); // success resets the delay
    h.sources[2]!.fail(2);
    expect(h.timers[2]!.ms).toBe(RETRY_DELAYS_MS[0]);
  });

  it('the delay stops growing at the last step', () => {
    const h = harness();
    for (let i = 0; i < RETRY_DELAYS_MS.length + 3; i++) {
      h.sources[i]!.fail(2);
      h.timers[i]!.fn();
    }
    expect(h.timers.at(-1)!.ms).toBe(RETRY_DELAYS_MS[RETRY_DELAYS_MS.length - 1]);
  });

  it('close stops everything, including a pending reconnect and late events', () => {
    const h = harness();
    h.sources[0]!.fail(2);
    h.sub.close();
    expect(h.timers[0]!.cleared).toBe(true);
    h.timers[0]!.fn();
    expect(h.sources).toHaveLength(1);

    const g = harness();
    g.sub.close();
    expect(g.sources[0]!.closed).toBe(true);
    g.sources[0]!.emit('session', session(), '1');
    expect(g.actions).toEqual([]);
  });
});
