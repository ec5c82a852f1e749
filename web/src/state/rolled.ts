// What the rolled-film screen offers in each of its states. The screen
// renders exactly these buttons (nothing hidden behind CSS), so what the
// tests see is what a person can press.
import type { Film } from './types';

export type RolledPhase = 'shuffling' | 'landed' | 'confirming' | 'watched';

export type RolledAction = 'watch' | 'confirm' | 'cancel' | 'copy' | 'share' | 'again' | 'back' | 'unwatch';

export function rolledPhase(p: { shuffling: boolean; confirming: boolean; watched: boolean }): RolledPhase {
  if (p.shuffling) return 'shuffling';
  if (p.watched) return 'watched';
  return p.confirming ? 'confirming' : 'landed';
}

const ACTIONS: Record<RolledPhase, readonly RolledAction[]> = {
  // mid-shuffle nothing can be pressed: the film is not known yet
  shuffling: [],
  landed: ['watch', 'copy', 'share', 'again', 'back'],
  // one question, two answers: no second "We will watch it!" under them
  confirming: ['confirm', 'cancel'],
  watched: ['unwatch', 'copy', 'share', 'back'],
};

export function rolledActions(phase: RolledPhase): readonly RolledAction[] {
  return ACTIONS[phase];
}

export const ACTION_LABEL: Record<RolledAction, string> = {
  watch: 'We will watch it!',
  confirm: 'Yes, take it off',
  cancel: 'Not yet',
  copy: 'Copy title',
  share: 'Share',
  again: 'Roll again',
  back: 'Back to the list',
  unwatch: 'Put it back',
};

/** The line shared or copied: "Tonight: Title (Year) — link". */
export function tonightLine(film: Film): string {
  const name = film.year === null ? film.title : `${film.title} (${film.year})`;
  return film.url ? `Tonight: ${name} — ${film.url}` : `Tonight: ${name}`;
}
