// The start page: what the app does, "Watch together!" (creates a session
// and opens it) and "How it works?"; "Return to your session" while the
// last session this browser opened is still alive.
import { useEffect, useRef, useState } from 'react';
import { ApiError, createSession, getSession } from '../api';
import { navigate } from '../router';
import { forgetSession, lastSession } from '../state/history';
import type { Session } from '../state/types';

export function Start() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const how = useRef<HTMLDialogElement>(null);
  const [last, setLast] = useState<Session | null>(null);

  useEffect(() => {
    const id = lastSession();
    if (!id) return;
    let cancelled = false;
    getSession(id).then(
      (s) => {
        if (!cancelled) setLast(s);
      },
      (e: unknown) => {
        if (e instanceof ApiError && e.status === 404) forgetSession(id);
      },
    );
    return () => {
      cancelled = true;
    };
  }, []);

  async function start() {
    setBusy(true);
    setError(null);
    try {
      const s = await createSession();
      navigate(/^\/s\/[0-9a-f]{32}$/.test(s.join_url) ? s.join_url : `/s/${s.id}`);
    } catch (e) {
      setError(e instanceof ApiError ? e.message : 'Could not start a session. Try again.');
      setBusy(false);
    }
  }

  return (
    <section className="hero" aria-labelledby="start-title">
      <h1 id="start-title">Pick a film your whole group wants to see.</h1>
      <p className="lead">
        Everyone adds their Letterboxd watchlist, FilmPicker finds the films you all want to watch, and rolls one.
      </p>
      <button type="button" className="btn btn-primary btn-huge" onClick={start} disabled={busy}>
        {busy ? 'Starting…' : 'Watch together!'}
      </button>
      {last && (
        <p className="return">
          <a
            className="btn"
            href={`/s/${last.id}`}
            onClick={(e) => {
              if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey) return;
              e.preventDefault();
              navigate(`/s/${last.id}`);
            }}
          >
            Return to your session
          </a>
          {last.participants.length > 0 && (
            <span className="muted return-who"> with {last.participants.map((p) => p.name).join(', ')}</span>
          )}
        </p>
      )}
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <p>
        <button type="button" className="link-button" onClick={() => how.current?.showModal()}>
          How it works?
        </button>
      </p>
      <dialog ref={how} className="dialog" aria-labelledby="how-title">
        <h2 id="how-title">How it works</h2>
        <ol className="steps">
          <li>Start a session and share its link: friends open it on their own phones.</li>
          <li>Everyone adds their Letterboxd watchlist (a profile link, a username, or their Letterboxd export file).</li>
          <li>FilmPicker reads every watchlist and lists the films that are on all of them, then those on most lists.</li>
          <li>Tap or click a film nobody is in the mood for to strike it out (again to bring it back).</li>
          <li>Press “Roll!” and FilmPicker picks one of the films left, at random.</li>
          <li>“We will watch it!” takes that film off everyone’s watchlist here in FilmPicker, so next time starts fresh. Your Letterboxd watchlists are not changed.</li>
        </ol>
        <form method="dialog">
          <button type="submit" className="btn">
            Got it
          </button>
        </form>
      </dialog>
    </section>
  );
}
