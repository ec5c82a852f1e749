// The rolled film, full screen: a short shuffle through the films left (none
// when the person prefers reduced motion), then the pick, big, with
// "We will watch it!", "Copy title", "Roll again" and "Back to the list".
import { useEffect, useRef, useState } from 'react';
import type { ReactNode } from 'react';
import { markWatched, roll } from '../api';
import { copyText } from '../clipboard';
import { Poster } from '../components/Poster';
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
}

export const SHUFFLE_STEPS = 14;

function prefersReducedMotion(): boolean {
  return typeof window.matchMedia === 'function' && window.matchMedia('(prefers-reduced-motion: reduce)').matches;
}

export function Rolled({ session, film, actions, onClose, toast }: Props) {
  const dialog = useRef<HTMLDialogElement>(null);
  const [shuffleTitle, setShuffleTitle] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  // "We will watch it!" changes every participant's stored list: one more tap.
  const [confirming, setConfirming] = useState(false);
  const confirmButton = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    if (confirming) confirmButton.current?.focus();
  }, [confirming]);
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
    if (prefersReducedMotion()) return;
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

  // Once it lands, the first thing to do is in reach of the keyboard.
  const firstAction = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    if (!shuffling) firstAction.current?.focus();
  }, [shuffling]);

  return (
    <dialog
      ref={dialog}
      className="rolled"
      aria-labelledby={shuffling ? 'rolled-kicker' : 'rolled-title'}
      onCancel={(e) => {
        e.preventDefault();
        onClose();
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
            {watched ? (
              <p className="lead">It is off everyone’s watchlist now, so next time starts fresh.</p>
            ) : null}
          </>
        )}
        {confirming && !watched && (
          <div className="rolled-confirm" role="group" aria-labelledby="confirm-text">
            <p id="confirm-text" className="lead">
              Take “{film.title}” off everyone’s watchlist here, so it does not come up next time?
            </p>
            <div className="actions rolled-actions">
              <button
                ref={confirmButton}
                type="button"
                className="btn btn-primary btn-big"
                disabled={busy}
                onClick={async () => {
                  setBusy(true);
                  await actions.run(() => markWatched(session.id, film.id));
                  setBusy(false);
                  setConfirming(false);
                }}
              >
                Yes, take it off
              </button>
              <button
                type="button"
                className="btn"
                disabled={busy}
                onClick={() => {
                  setConfirming(false);
                  firstAction.current?.focus();
                }}
              >
                Not yet
              </button>
            </div>
          </div>
        )}
        <div className="actions rolled-actions" hidden={shuffling || (confirming && !watched)}>
          {!watched && (
            <button
              ref={firstAction}
              type="button"
              className="btn btn-primary btn-big"
              disabled={busy}
              onClick={() => setConfirming(true)}
            >
              We will watch it!
            </button>
          )}
          <button
            ref={watched ? firstAction : undefined}
            type="button"
            className="btn"
            onClick={async () => actions.announce((await copyText(film.title)) ? `Copied “${film.title}”.` : 'Could not copy the title.')}
          >
            Copy title
          </button>
          {!watched && (
            <button
              type="button"
              className="btn"
              disabled={busy}
              onClick={async () => {
                setBusy(true);
                await actions.run(() => roll(session.id));
                setBusy(false);
              }}
            >
              Roll again
            </button>
          )}
          <button type="button" className="btn btn-quiet" onClick={onClose}>
            Back to the list
          </button>
        </div>
      </div>
      {toast}
    </dialog>
  );
}
