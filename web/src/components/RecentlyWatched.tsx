// The films the people here marked watched lately ("We will watch it!"),
// once per film, each with "Put it back" (it returns to their lists).
import { useState } from 'react';
import { putBackWatched } from '../api';
import { joinNames, recentlyWatched } from '../state/gathering';
import { filmLabel } from '../state/session';
import type { Session } from '../state/types';
import type { SessionActions } from '../screens/SessionPage';

export function RecentlyWatched({ session, actions }: { session: Session; actions: SessionActions }) {
  const [busy, setBusy] = useState<number | null>(null);
  const films = recentlyWatched(session);
  if (films.length === 0) return null;

  async function putBack(filmId: number, label: string) {
    setBusy(filmId);
    const ok = await actions.run(() => putBackWatched(session.id, filmId));
    setBusy(null);
    if (ok) actions.announce(`${label} is back on the watchlists.`);
  }

  return (
    <section className="panel recently-watched" aria-labelledby="recent-title">
      <h2 id="recent-title">Watched recently</h2>
      <p className="muted">Taken off your watchlists here, so they do not come up again.</p>
      <ul className="recent-list">
        {films.map((e) => {
          const label = filmLabel(e.film);
          return (
            <li key={e.film.id} className="recent-film">
              <span className="recent-text">
                <span className="recent-title">{label}</span>
                <span className="muted"> — {joinNames(e.who)}</span>
              </span>
              <button
                type="button"
                className="btn btn-small"
                aria-label={`Put it back: ${label}`}
                disabled={busy !== null}
                onClick={() => void putBack(e.film.id, label)}
              >
                {busy === e.film.id ? 'Putting it back…' : 'Put it back'}
              </button>
            </li>
          );
        })}
      </ul>
    </section>
  );
}
