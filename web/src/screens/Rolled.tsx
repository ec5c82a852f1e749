// The rolled film, full screen: a short shuffle through the films left (none
// when the person prefers reduced motion), then the pick, big, with a link to
// its Letterboxd page and the actions of state/rolled.ts: "We will watch it!"
// (asks once more), "Copy title", "Share", "Roll again", "Back to the list";
// once watched, "Put it back".
import { useEffect, useRef, useState } from 'react';
import type { ReactNode } from 'react';
import { markWatched, putBackWatched, roll } from '../api';
import { copyText } from '../clipboard';
import { FilmLink } from '../components/FilmCard';
import { Poster } from '../components/Poster';
import type { RolledAction } from '../state/rolled';
import { ACTION_LABEL, rolledActions, rolledPhase, tonightLine } from '../state/rolled';
import { filmLists } from '../state/session';
import type { Film, Session } from '../state/types';
import type { SessionActions } from './SessionPage';

interface Props {
  session: Session;
  film: Film;
  actions: SessionActions;
  onClose: () => void;
  /** The page's notice area, shown inside the dialog (the page behind is inert). */
  toast: ReactNode;
  /** false: shown again (history Forward), straight to the pick. */
  shuffle?: boolean;
}

export const SHUFFLE_STEPS = 14;

function prefersReducedMotion(): boolean {
  return typeof window.matchMedia === 'function' && window.matchMedia('(prefers-reduced-motion: reduce)').matches;
}

export function Rolled({ session, film, actions, onClose, toast, shuffle = true }: Props) {
  const dialog = useRef<HTMLDialogElement>(null);
  const [shuffleTitle, setShuffleTitle] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  // "We will watch it!" changes every participant's stored list: one more tap.
  const [confirming, setConfirming] = useState(false);
  const watched = session.watched.includes(film.id);

  useEffect(() => {
    const d = dialog.current;
    if (d && !d.open) d.showModal();
    return () => {
      if (d?.open) d.close();
    };
  }, []);

  // The shuffle: titles of the films left, slowing down, then the pick.
  useEffect(() => {
    if (!shuffle || prefersReducedMotion()) return;
    const pool = filmLists(session).pool.map((f) => f.title);
    if (pool.length < 2) return;
    let step = 0;
    let timer: ReturnType<typeof setTimeout>;
    const tick = () => {
      if (step >= SHUFFLE_STEPS) {
        setShuffleTitle(null);
        return;
      }
      setShuffleTitle(pool[Math.floor(Math.random() * pool.length)] ?? null);
      step++;
      timer = setTimeout(tick, 40 + step * step * 2);
    };
    tick();
    return () => clearTimeout(timer);
    // Only once per roll: the dialog is re-mounted for each roll.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  const shuffling = shuffleTitle !== null;
  const phase = rolledPhase({ shuffling, confirming, watched });

  // Once it lands (or the question is asked or answered), the first thing to
  // do is in reach of the keyboard.
  const firstAction = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    if (phase !== 'shuffling') firstAction.current?.focus();
  }, [phase]);

  async function busyWhile(what: () => Promise<unknown>) {
    setBusy(true);
    await what();
    setBusy(false);
  }

  async function share() {
    const line = tonightLine(film);
    const nav = navigator as Navigator & { share?: (d: ShareData) => Promise<void> };
    if (typeof nav.share === 'function') {
      try {
        const name = film.year === null ? film.title : `${film.title} (${film.year})`;
        await nav.share({ title: name, text: `Tonight: ${name}`, ...(film.url ? { url: film.url } : {}) });
        return;
      } catch (e) {
        if (e instanceof DOMException && e.name === 'AbortError') return;
      }
    }
    actions.announce((await copyText(line)) ? `Copied: ${line}` : 'Could not copy.');
  }

  const run: Record<RolledAction, () => void> = {
    watch: () => setConfirming(true),
    confirm: () =>
      void busyWhile(async () => {
        if (await actions.run(() => markWatched(session.id, film.id))) setConfirming(false);
      }),
    cancel: () => setConfirming(false),
    copy: () =>
      void copyText(film.title).then((ok) => actions.announce(ok ? `Copied “${film.title}”.` : 'Could not copy the title.')),
    share: () => void share(),
    again: () => void busyWhile(() => actions.run(() => roll(session.id))),
    back: onClose,
    unwatch: () =>
      void busyWhile(async () => {
        if (await actions.run(() => putBackWatched(session.id, film.id))) {
          actions.announce(`“${film.title}” is back on everyone’s watchlist.`);
        }
      }),
  };
  const primary = new Set<RolledAction>(['watch', 'confirm']);
  const canBusy = new Set<RolledAction>(['watch', 'confirm', 'cancel', 'again', 'unwatch']);

  const buttons = rolledActions(phase).map((a, i) => (
    <button
      key={a}
      ref={i === 0 ? firstAction : undefined}
      type="button"
      className={primary.has(a) ? 'btn btn-primary btn-big' : a === 'back' ? 'btn btn-quiet' : 'btn'}
      disabled={busy && canBusy.has(a)}
      onClick={run[a]}
    >
      {ACTION_LABEL[a]}
    </button>
  ));

  return (
    <dialog
      ref={dialog}
      className="rolled"
      aria-labelledby={shuffling ? 'rolled-kicker' : 'rolled-title'}
      onCancel={(e) => {
        e.preventDefault();
        if (phase === 'confirming') setConfirming(false);
        else onClose();
      }}
    >
      <div className={shuffling ? 'rolled-inner shuffling' : 'rolled-inner landed'}>
        <p className="rolled-kicker" id="rolled-kicker">
          {shuffling ? 'Rolling…' : watched ? 'Enjoy the film!' : 'Tonight you are watching'}
        </p>
        {shuffling ? (
          <p className="rolled-title rolled-shuffle" aria-hidden="true">
            {shuffleTitle}
          </p>
        ) : (
          <>
            <Poster film={film} big />
            <h2 className="rolled-title" id="rolled-title" aria-live="polite">
              {film.title}
              {film.year !== null && <span className="rolled-year"> ({film.year})</span>}
            </h2>
            {film.url && (
              <p className="rolled-link">
                <FilmLink url={film.url} title={film.title} className="rolled-lb" />
              </p>
            )}
            {watched ? <p className="lead">It is off everyone’s watchlist here in FilmPicker, so next time starts fresh. Your Letterboxd watchlists are unchanged.</p> : null}
          </>
        )}
        {phase === 'confirming' ? (
          <div className="rolled-confirm" role="group" aria-labelledby="confirm-text">
            <p id="confirm-text" className="lead">
              Take “{film.title}” off everyone’s watchlist here, so it does not come up next time?
            </p>
            <div className="actions rolled-actions">{buttons}</div>
          </div>
        ) : (
          buttons.length > 0 && <div className="actions rolled-actions">{buttons}</div>
        )}
      </div>
      {toast}
    </dialog>
  );
}
