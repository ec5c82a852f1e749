// What the session screen says about the people gathered so far (issue 7):
// each person's list as it is being read (their list is read as soon as they
// are added), a name typed twice, whose lists are missing from the results,
// the films recently marked watched here (with "Put it back"), and the report
// of an export upload. Pure: the components only render what these say.

import type { Film, ImportAnswer, Participant, RecentlyWatched, Session } from './types';
import { participantProblem } from './messages';
import { filmLabel } from './session';

const count = new Intl.NumberFormat('en-US');

/** "1 film", "1,000 films". */
export function filmsCount(n: number): string {
  return n === 1 ? '1 film' : `${count.format(n)} films`;
}

export type StatusTone = 'ok' | 'bad' | 'busy' | 'neutral';

export interface PersonStatus {
  text: string;
  tone: StatusTone;
  /** While pages are being read: how many of how many (null max: unknown yet). */
  pages: { done: number; of: number } | null;
}

/** The line under a person on the session screen, before the search starts. */
export function personStatus(p: Participant): PersonStatus {
  const upload = p.source === 'import';
  switch (p.status) {
    case 'ready':
      return { text: `${upload ? 'Uploaded' : 'Found'}, ${filmsCount(p.films)}`, tone: 'ok', pages: null };
    case 'failed':
      return { text: participantProblem(p)?.text ?? 'This watchlist could not be read', tone: 'bad', pages: null };
    case 'fetching': {
      const problem = participantProblem(p); // "not answering, retrying…"
      if (problem) return { text: problem.text, tone: 'bad', pages: null };
      if (p.pages_total > 0) {
        const done = Math.min(p.pages_fetched, p.pages_total);
        return {
          text: `Reading their list: ${done} of ${p.pages_total} ${p.pages_total === 1 ? 'page' : 'pages'}`,
          tone: 'busy',
          pages: { done, of: p.pages_total },
        };
      }
      return { text: 'Looking them up…', tone: 'busy', pages: null };
    }
    case 'queued': {
      const problem = participantProblem(p);
      if (problem) return { text: problem.text, tone: 'bad', pages: null };
      return { text: 'Looking them up…', tone: 'busy', pages: null };
    }
    case 'waiting':
      return { text: 'Read when the search starts', tone: 'neutral', pages: null };
  }
  return { text: '', tone: 'neutral', pages: null };
}

/** The Letterboxd participant already in the group under this username, if any. */
export function alreadyAdded(s: Session, username: string): Participant | null {
  const u = username.trim().toLowerCase();
  if (u === '') return null;
  return s.participants.find((p) => p.source !== 'import' && p.name.toLowerCase() === u) ?? null;
}

/** "alice is already in the group." (the server's 409 already_added says the same). */
export function alreadyAddedText(name: string): string {
  return `${name} is already in the group.`;
}

// ---- whose lists are missing from the results ----------------------------------

export interface MissingLists {
  missing: Participant[];
  readable: Participant[];
}

/** The people whose list could not be read, and those whose list was. */
export function missingLists(s: Session): MissingLists {
  return {
    missing: s.participants.filter((p) => p.status === 'failed'),
    readable: s.participants.filter((p) => p.status === 'ready'),
  };
}

/** "alice", "alice and bob", "alice, bob and carol". */
export function joinNames(names: string[]): string {
  if (names.length <= 1) return names[0] ?? '';
  return `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`;
}

function possessive(name: string): string {
  return `${name}’s`;
}

export interface MissingText {
  heading: string;
  body: string;
}

/** The plain words of the missing-lists notice; null when no list is missing. */
export function missingText({ missing, readable }: MissingLists): MissingText | null {
  if (missing.length === 0) return null;
  const names = missing.map((p) => p.name);
  const heading =
    missing.length === 1
      ? `${possessive(names[0] ?? '')} list is missing`
      : `The lists of ${joinNames(names)} are missing`;
  let body: string;
  if (readable.length === 0) body = 'No list could be read, so there is nothing to pick from yet.';
  else if (readable.length === 1) {
    const who = readable[0]?.name ?? '';
    body = `Only ${possessive(who)} list could be read, so these films are just ${possessive(who)} watchlist, not the group’s.`;
  } else {
    body = `These films are only from the lists of ${joinNames(readable.map((p) => p.name))}.`;
  }
  return { heading, body };
}

/**
 * Whether Roll! waits for the group to fix or remove the missing lists.
 * `acknowledged` holds the ids the group chose to go on without.
 */
export function rollBlocked(m: MissingLists, acknowledged: ReadonlySet<string>): boolean {
  return m.readable.length > 0 && m.missing.some((p) => !acknowledged.has(p.id));
}

// ---- recently watched here -------------------------------------------------------

export interface WatchedEntry {
  film: Film;
  /** Who marked it watched here (names, in the order of the group). */
  who: string[];
  /** The latest time it was marked, ISO. */
  watched_at: string;
}

function isRecent(v: unknown): v is RecentlyWatched {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as { film?: unknown; watched_at?: unknown };
  const f = r.film as { id?: unknown; title?: unknown } | null | undefined;
  return typeof f === 'object' && f !== null && typeof f.id === 'number' && typeof f.title === 'string';
}

/** The films the people here marked watched lately, once per film, newest first. */
export function recentlyWatched(s: Session): WatchedEntry[] {
  const byFilm = new Map<number, WatchedEntry>();
  for (const p of s.participants) {
    const list: unknown = p.recently_watched;
    if (!Array.isArray(list)) continue;
    for (const r of list) {
      if (!isRecent(r)) continue;
      const at = typeof r.watched_at === 'string' ? r.watched_at : '';
      const e = byFilm.get(r.film.id);
      if (!e) byFilm.set(r.film.id, { film: r.film, who: [p.name], watched_at: at });
      else {
        if (!e.who.includes(p.name)) e.who.push(p.name);
        if (at > e.watched_at) e.watched_at = at;
      }
    }
  }
  return [...byFilm.values()].sort((a, b) =>
    a.watched_at === b.watched_at ? a.film.title.localeCompare(b.film.title) : a.watched_at < b.watched_at ? 1 : -1,
  );
}

export function watchedLine(e: WatchedEntry): string {
  return `${filmLabel(e.film)}, marked watched by ${joinNames(e.who)}`;
}

// ---- an export upload ------------------------------------------------------------

export interface UploadRow {
  line: number;
  title: string;
  year: string;
  reason: string;
}

export interface UploadReport {
  /** "10 films matched from watchlist.csv." */
  summary: string;
  /** "3 rows could not be used:" or null when every row was. */
  rowsHeading: string | null;
  rows: UploadRow[];
  /** Rows that could not be used beyond those listed (the server lists the first ones). */
  more: number;
}

export function uploadReport(answer: ImportAnswer, fileName: string): UploadReport {
  const imp = answer.import;
  const rows: UploadRow[] = (Array.isArray(imp.row_errors) ? imp.row_errors : []).map((r) => ({
    line: r.line,
    title: typeof r.title === 'string' && r.title.trim() !== '' ? r.title : '(no title)',
    year: typeof r.year === 'number' ? String(r.year) : '—',
    reason: r.reason ? capitalize(r.reason) : 'Unreadable row',
  }));
  const total = Math.max(imp.row_errors_total ?? 0, rows.length);
  const matched = imp.films === 1 ? '1 film matched' : `${count.format(imp.films)} films matched`;
  return {
    summary: `${matched} from ${fileName}.`,
    rowsHeading: total === 0 ? null : total === 1 ? '1 row could not be used:' : `${count.format(total)} rows could not be used:`,
    rows,
    more: total - rows.length,
  };
}

export const MAX_NAME = 40;

/** The display name of an upload participant: trimmed, or null for the server's "Upload 1". */
export function displayName(input: string): string | null {
  const t = input.trim();
  return t === '' ? null : t.slice(0, MAX_NAME);
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
