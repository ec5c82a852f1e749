// Plain-words messages: what a person sees for a participant whose list
// could not be read, and for a request of ours the server refused. The
// wording of the participant messages is the product's (issue 4); the
// server's own message is used for codes we have no better words for.

import type { ApiErrorBody, Participant } from './types';

export type ParticipantProblem =
  | { kind: 'not_found'; text: string }
  | { kind: 'empty'; text: string }
  | { kind: 'unavailable'; text: string }
  | { kind: 'blocked'; text: string; offerUpload: true }
  | { kind: 'other'; text: string; offerUpload: boolean };

const UNAVAILABLE = new Set(['source_unavailable', 'source_timeout', 'source_rate_limited']);

/**
 * The message for a participant's error (or, while still fetching, for a
 * warning that the site is not answering). null when there is nothing wrong.
 */
export function participantProblem(p: Participant): ParticipantProblem | null {
  const stillTrying = p.status === 'queued' || p.status === 'fetching';
  // A warning on a list that is ready is a note (participantNote), not a problem.
  const e = p.error ?? (stillTrying ? p.warning : null);
  if (!e) {
    if (p.status === 'failed') return { kind: 'other', text: 'This watchlist could not be read', offerUpload: true };
    return null;
  }
  if (e.code === 'user_not_found') return { kind: 'not_found', text: `No Letterboxd user called “${p.name}”` };
  if (e.code === 'empty_watchlist') return { kind: 'empty', text: 'This watchlist is private or empty' };
  if (UNAVAILABLE.has(e.code)) {
    return {
      kind: 'unavailable',
      text: stillTrying ? 'Letterboxd is not answering, retrying…' : 'Letterboxd is not answering, try again in a while',
    };
  }
  if (e.code === 'source_blocked') {
    return { kind: 'blocked', text: 'Letterboxd refused the request: upload your export instead', offerUpload: true };
  }
  if (e.code === 'page_format_not_recognized') {
    return {
      kind: 'other',
      text: 'Letterboxd’s page looked unfamiliar: upload your export instead',
      offerUpload: true,
    };
  }
  return { kind: 'other', text: e.message || 'This watchlist could not be read', offerUpload: false };
}

/** A warning on a list that was read anyway (an old stored copy was used). */
export function participantNote(p: Participant): string | null {
  if (p.status !== 'ready' || !p.warning) return null;
  if (UNAVAILABLE.has(p.warning.code)) return 'Letterboxd is not answering: using the copy saved earlier';
  return `Using the copy saved earlier (${p.warning.message})`;
}

/** The words for a failed request of ours. status 0 means no answer at all. */
export function requestErrorText(status: number, err: ApiErrorBody | null): string {
  if (status === 0) return 'FilmPicker is not answering. Check your connection and try again.';
  const code = err?.code ?? '';
  switch (code) {
    case 'csrf_failed':
      return 'Your page got out of date. Reload it and try again.';
    case 'invalid_username':
      return 'That is not a Letterboxd username or profile link (like alice or https://letterboxd.com/alice/).';
    case 'too_many_participants':
      return err?.message ? `Too many people: ${err.message}.` : 'Too many people in this session.';
    case 'rate_limited':
      return 'Too many requests just now. Wait a moment and try again.';
    case 'conflict':
      return err?.message ? capitalize(err.message) : 'That cannot be done right now.';
    case 'not_found':
      return 'This session has ended or the link is wrong.';
    case 'payload_too_large':
      return 'That file is too large.';
    case 'invalid_import_file':
      return NOT_AN_EXPORT;
    case 'already_added':
      return err?.message ? sentence(err.message) : 'That person is already in the group.';
    case 'invalid_name':
      return 'A name has 1 to 40 characters.';
    case 'empty_watchlist':
      return 'That file holds no films.';
    case 'service_unavailable':
      return 'FilmPicker is busy or restarting. Try again in a moment.';
  }
  if (status === 409) return 'Someone else changed the session just now. Try again.';
  if (status === 429) return 'Too many requests just now. Wait a moment and try again.';
  if (status >= 500) return 'Something went wrong on the server. Try again in a moment.';
  return err?.message ? capitalize(err.message) : `The request failed (${status}).`;
}

/** One plain sentence for a file the server could not read as an export:
 * its own detail (CSV headers, zip errors) is for developers, not people. */
export const NOT_AN_EXPORT =
  'That file is not a Letterboxd export: upload the .zip from letterboxd.com/settings/data or the watchlist.csv inside it.';

/** The server's message as a sentence: a full stop at the end, the name at
 * its start left as typed ("alice is already in the group."). */
function sentence(s: string): string {
  const t = s.trim();
  return /[.!?]$/.test(t) ? t : `${t}.`;
}

function capitalize(s: string): string {
  return s.length > 0 ? s.charAt(0).toUpperCase() + s.slice(1) : s;
}
