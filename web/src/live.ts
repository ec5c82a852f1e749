// The live connection of one device to its session: an EventSource on
// /api/v1/sessions/{id}/events whose events go through parseEvent into the
// session reducer. The browser reconnects by itself after a dropped
// connection (sending Last-Event-ID, so the server replays what we missed);
// when the browser gives up (the answer was not an event stream, e.g. a 503
// during a restart) we open a new one after a growing delay, and the server
// starts that one with a fresh `session` event. A stream the server ends of
// old age (stream-max-life) says `reconnect` first: the reconnection that
// follows is planned, so it does not show "reconnecting".

import type { SessionAction } from './state/session';
import { parseEvent } from './state/session';
import { SESSION_EVENT_TYPES } from './state/types';

export interface EventSourceLike {
  readonly readyState: number;
  addEventListener(type: string, listener: (ev: MessageEvent<string>) => void): void;
  onerror: ((ev: Event) => void) | null;
  onopen: ((ev: Event) => void) | null;
  close(): void;
}

export type EventSourceFactory = (url: string) => EventSourceLike;

const CLOSED = 2;
export const RETRY_DELAYS_MS = [1000, 2000, 4000, 8000, 15000] as const;

export interface Subscription {
  close(): void;
}

export function subscribe(
  url: string,
  dispatch: (a: SessionAction) => void,
  make: EventSourceFactory = (u) => new EventSource(u) as unknown as EventSourceLike,
  setTimer: (fn: () => void, ms: number) => unknown = (fn, ms) => setTimeout(fn, ms),
  clearTimer: (t: unknown) => void = (t) => clearTimeout(t as ReturnType<typeof setTimeout>),
  /** Called each time the browser gave up on a connection (the answer was
   * not an event stream: a restart, or a session that ended). */
  onGaveUp: () => void = () => {},
): Subscription {
  let es: EventSourceLike | null = null;
  let timer: unknown = null;
  let failures = 0;
  let closed = false;
  let planned = false;

  const open = (): void => {
    timer = null;
    if (closed) return;
    const source = make(url);
    es = source;
    source.onopen = () => {
      failures = 0;
      planned = false;
      // A reconnection that missed nothing gets no event: say we are live.
      if (!closed && es === source) dispatch({ type: 'connection', connection: 'live' });
    };
    source.onerror = () => {
      if (closed || es !== source) return;
      if (!planned || source.readyState === CLOSED) dispatch({ type: 'connection', connection: 'reconnecting' });
      if (source.readyState === CLOSED) {
        source.close();
        es = null;
        const delay = RETRY_DELAYS_MS[Math.min(failures, RETRY_DELAYS_MS.length - 1)] ?? 15000;
        failures++;
        timer = setTimer(open, delay);
        onGaveUp();
      }
    };
    source.addEventListener('reconnect', () => {
      if (!closed && es === source) planned = true;
    });
    for (const type of SESSION_EVENT_TYPES) {
      source.addEventListener(type, (msg) => {
        if (closed || es !== source) return;
        const ev = parseEvent(type, msg.data, msg.lastEventId);
        if (ev) dispatch({ type: 'event', event: ev });
      });
    }
  };

  open();
  return {
    close() {
      closed = true;
      if (timer !== null) clearTimer(timer);
      es?.close();
      es = null;
    },
  };
}
