// Results: the films on everyone's list, then those on most lists; strike
// out, copy titles, roll.
import { useState } from 'react';
import type { Dispatch, RefObject } from 'react';
import { roll, setVeto, startSearch } from '../api';
import { copyText } from '../clipboard';
import { FilmCard } from '../components/FilmCard';
import { PersonProblem } from '../components/PersonProblem';
import type { FilmEntry, SessionAction } from '../state/session';
import { filmLists } from '../state/session';
import type { Session } from '../state/types';
import type { SessionActions } from './SessionPage';

interface Props {
  session: Session;
  actions: SessionActions;
  headingRef: RefObject<HTMLHeadingElement | null>;
  onEdit: () => void;
  dispatch: Dispatch<SessionAction>;
}

export function Results({ session, actions, headingRef, onEdit, dispatch }: Props) {
  const [rolling, setRolling] = useState(false);
  const lists = filmLists(session);
  const r = session.results;
  const failed = session.participants.filter((p) => p.status === 'failed');
  const noted = session.participants.filter((p) => p.status === 'ready' && p.warning);
  const total = lists.common.length + lists.most.length;

  function toggle(filmId: number, vetoed: boolean) {
    dispatch({ type: 'optimistic-veto', film_id: filmId, vetoed });
    void actions.run(() => setVeto(session.id, filmId, vetoed)).then((ok) => {
      if (!ok) dispatch({ type: 'optimistic-veto', film_id: filmId, vetoed: !vetoed });
    });
  }

  async function copy(title: string) {
    actions.announce((await copyText(title)) ? `Copied “${title}”.` : 'Could not copy the title.');
  }

  function grid(entries: FilmEntry[]) {
    return (
      <ul className="films">
        {entries.map((e) => (
          <FilmCard
            key={e.film.id}
            entry={e}
            of={lists.lists}
            onToggle={() => toggle(e.film.id, !e.vetoed)}
            onCopy={() => void copy(e.film.title)}
          />
        ))}
      </ul>
    );
  }

  async function doRoll() {
    setRolling(true);
    await actions.run(() => roll(session.id));
    setRolling(false);
  }

  let headline: string;
  if (!r) headline = 'Nobody’s watchlist could be read';
  else if (r.common_count === 0) headline = total > 0 ? 'No film is on every list' : 'No films in common';
  else headline = r.common_count === 1 ? '1 film you all want to see' : `${r.common_count} films you all want to see`;

  return (
    <div className="results">
      <div className="results-head">
        <h1 ref={headingRef} tabIndex={-1}>
          {headline}
        </h1>
        {r && total > 0 && (
          <p className="lead">
            Tap a film to strike it out, tap again to bring it back. {lists.left} left to roll from.
          </p>
        )}
        <div className="actions sticky-actions">
          <button type="button" className="btn btn-primary btn-big" onClick={doRoll} disabled={rolling || lists.left === 0}>
            Roll!
          </button>
          <button type="button" className="btn" onClick={onEdit}>
            Change the group
          </button>
          <button type="button" className="btn btn-quiet" onClick={() => void actions.run(() => startSearch(session.id, true))}>
            Fetch lists again
          </button>
        </div>
      </div>

      {(failed.length > 0 || noted.length > 0) && (
        <section className="panel problems" aria-labelledby="problems-title">
          <h2 id="problems-title">{failed.length > 0 ? 'Left out' : 'Good to know'}</h2>
          <ul className="people">
            {[...failed, ...noted].map((p) => (
              <li key={p.id} className="person person-problem">
                <span className="person-name">{p.name}</span>
                <PersonProblem
                  p={p}
                  onUploaded={async () => {
                    await actions.run(() => startSearch(session.id, false));
                  }}
                />
              </li>
            ))}
          </ul>
        </section>
      )}

      {r && lists.common.length > 0 && (
        <section aria-labelledby="common-title">
          <h2 id="common-title">On everyone’s list</h2>
          {r.common_count > lists.common.length && (
            <p className="muted">Showing {lists.common.length} of {r.common_count}.</p>
          )}
          {grid(lists.common)}
        </section>
      )}
      {r && lists.most.length > 0 && (
        <section aria-labelledby="most-title">
          <h2 id="most-title">On most lists</h2>
          {grid(lists.most)}
        </section>
      )}
      {r && total === 0 && (
        <p className="panel">
          Your watchlists have no film in common. Add more people, or change the group and try again.
        </p>
      )}
    </div>
  );
}
