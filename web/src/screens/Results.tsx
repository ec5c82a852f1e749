// Results: the films on everyone's list, then those on most lists; strike
// out, copy titles, roll.
import { useRef, useState } from 'react';
import type { Dispatch, RefObject } from 'react';
import { roll, setVeto, startSearch } from '../api';
import { copyText } from '../clipboard';
import { FilmCard } from '../components/FilmCard';
import { MissingLists, useMissingGate } from '../components/MissingLists';
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
  const gate = useMissingGate(session);
  const lists = filmLists(session);
  const r = session.results;
  const failed = session.participants.filter((p) => p.status === 'failed');
  const noted = session.participants.filter((p) => p.status === 'ready' && p.warning);
  const total = lists.common.length + lists.most.length;

  // Vetoes still on their way: a roll waits for them, so a film just struck
  // out cannot be the one rolled.
  const inFlight = useRef(new Set<Promise<unknown>>());

  function toggle(filmId: number, vetoed: boolean) {
    dispatch({ type: 'optimistic-veto', film_id: filmId, vetoed });
    const sent = actions.run(() => setVeto(session.id, filmId, vetoed)).then(async (ok) => {
      // Whether the server applied it is unknown (or another device changed
      // it meanwhile): take the server's word rather than flipping back.
      if (!ok) await actions.refresh();
    });
    inFlight.current.add(sent);
    void sent.finally(() => inFlight.current.delete(sent));
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
    await Promise.all([...inFlight.current]);
    await actions.run(() => roll(session.id));
    setRolling(false);
  }

  let headline: string;
  if (!r) headline = 'Nobody’s watchlist could be read';
  else if (r.common_count === 0) headline = total > 0 ? 'No film is on every list' : 'No films in common';
  else if (r.failed > 0) headline = r.common_count === 1 ? '1 film on every list we could read' : `${r.common_count} films on every list we could read`;
  else headline = r.common_count === 1 ? '1 film you all want to see' : `${r.common_count} films you all want to see`;

  const n = lists.left;
  let pool: string;
  if (lists.poolFrom === 'common')
    pool = n === 1 ? 'One film on everyone’s list is left to roll.' : `${n} films on everyone’s list are left to roll from.`;
  else if (lists.poolFrom === 'most')
    pool = `Every film on everyone’s list is struck out, so Roll! picks from the ${n === 1 ? 'one film' : `${n} films`} left on the most lists.`;
  else pool = 'Every film is struck out: bring one back to roll.';

  return (
    <div className="results">
      <div className="results-head">
        <h1 ref={headingRef} tabIndex={-1}>
          {headline}
        </h1>
        {r && total > 0 && (
          <p className="lead">
            Tap a film to strike it out, tap again to bring it back. {pool}
          </p>
        )}
        <MissingLists session={session} actions={actions} gate={gate} />
        <div className="actions sticky-actions">
          <button type="button" className="btn btn-primary btn-big" onClick={doRoll} disabled={rolling || lists.left === 0 || gate.blocked}>
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
          {lists.poolFrom === 'common' && (
            <p className="muted">“Roll!” picks from these once every film on everyone’s list is struck out.</p>
          )}
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
