// Validation as you type for the "Add person" field. The server is the
// authority (GET /api/v1/profiles/check); this state machine decides what to
// show meanwhile and drops answers to inputs the person has already changed.
// Pure: the component owns the debounce timer and the fetch.

import type { ProfileCheckAnswer } from './types';

export const CHECK_DELAY_MS = 300;
export const MAX_INPUT = 300;

export type CheckState =
  | { phase: 'idle'; input: string }
  | { phase: 'checking'; input: string; seq: number }
  | { phase: 'valid'; input: string; username: string }
  | { phase: 'invalid'; input: string; message: string }
  /** The check itself failed (network): let the person try adding anyway. */
  | { phase: 'unknown'; input: string };

export type CheckAction =
  | { type: 'typed'; input: string; seq: number }
  | { type: 'answer'; seq: number; answer: ProfileCheckAnswer }
  | { type: 'check-failed'; seq: number }
  | { type: 'reset' };

export const initialCheck: CheckState = { phase: 'idle', input: '' };

/** What can be said without asking the server; null: ask it. */
export function localCheck(input: string): CheckState | null {
  const t = input.trim();
  if (t === '') return { phase: 'idle', input };
  if (t.length > MAX_INPUT) return { phase: 'invalid', input, message: 'That is far too long for a username or profile link.' };
  if (/\s/.test(t)) return { phase: 'invalid', input, message: 'A username has no spaces: try alice or https://letterboxd.com/alice/.' };
  return null;
}

export function checkReducer(state: CheckState, action: CheckAction): CheckState {
  switch (action.type) {
    case 'reset':
      return initialCheck;
    case 'typed':
      return localCheck(action.input) ?? { phase: 'checking', input: action.input, seq: action.seq };
    case 'answer':
      if (state.phase !== 'checking' || state.seq !== action.seq) return state;
      if (action.answer.valid && typeof action.answer.username === 'string') {
        return { phase: 'valid', input: state.input, username: action.answer.username };
      }
      return {
        phase: 'invalid',
        input: state.input,
        message: friendlyInvalid(state.input),
      };
    case 'check-failed':
      if (state.phase !== 'checking' || state.seq !== action.seq) return state;
      return { phase: 'unknown', input: state.input };
  }
}

function friendlyInvalid(input: string): string {
  const t = input.trim();
  const shown = t.length > 60 ? `${t.slice(0, 57)}…` : t;
  return `“${shown}” is not a Letterboxd username or profile link (try alice or https://letterboxd.com/alice/).`;
}

/** Whether the "Add" button may send the input. */
export function canAdd(state: CheckState): boolean {
  return state.phase === 'valid' || state.phase === 'unknown' || state.phase === 'checking';
}

/** The line under the field. */
export function checkMessage(state: CheckState): { text: string; tone: 'neutral' | 'ok' | 'bad' } | null {
  switch (state.phase) {
    case 'idle':
      return null;
    case 'checking':
      return { text: 'Checking…', tone: 'neutral' };
    case 'valid':
      // Well formed is not the same as found: whether Letterboxd knows the
      // name shows once they are added (their list is read at once).
      return { text: validText(state.username), tone: 'neutral' };
    case 'invalid':
      return { text: state.message, tone: 'bad' };
    case 'unknown':
      return { text: 'Could not check that just now; you can still add it.', tone: 'neutral' };
  }
}

/** What the field says of a well-formed username (never that it exists). */
export function validText(username: string): string {
  return `Add “${username}” to look them up on Letterboxd.`;
}
