// Results: the films on everyone's list (a page at a time, with a search
// over the titles when the list is long), then those on most lists; strike
// out, roll. The Roll! bar stays in view at the bottom of the screen.
import { useEffect, useId, useReducer, useRef, useState } from 'react';
import type { Dispatch, RefObject } from 'react';
import { ApiError, getFilms, roll, setVeto, startSearch } from '../api';
import { FilmCard } from '../components/FilmCard';
import { MissingLists, noticeShown, useMissingGate } from '../components/MissingLists';
import { PersonProblem } from '../components/PersonProblem';
import { PAGE_SIZE, SEARCH_FROM, initialPages, pagesReducer, pagesView } from '../state/filmPages';
import type { FilmEntry, SessionAction } from '../state/session';
import { filmLists } from '../state/session';
import type { UploadReport } from '../state/gathering';
import type { Film, Participant, Session } from '../state/types';
import type { SessionActions } from './SessionPage';

interface Props {
  session: Session;
  actions: SessionActions;
  headingRef: RefObject<HTMLHeadingElement | null>;
  onEdit: () => void;
  dispatch: Dispatch<SessionAction>;
  /** SessionState.resultsGen: a new one drops the pages loaded for the last. */
  gen: number;
}

const SEARCH_DELAY_MS = 250;

export function Results({ session, actions, headingRef, onEdit, dispatch, gen }: Props) {
  const [rolling, setRolling] = useState(false);
  const gate = useMissingGate(session);
  const lists = filmLists(session);
  const r = session.results;
  // Named with their reasons in the notice above while it is on show: not again below.
  const failed = noticeShown(gate) ? [] : session.participants.filter((p) => p.status === 'failed');
  const noted = session.participants.filter((p) => p.status === 'ready' && p.warning);
  const commonCount = r ? Math.max(r.common_count, r.common.length) : 0;
  const total = commonCount + lists.most.length;
  const searchId = useId();

  // The common films: the first page from the session, more on demand, or
  // the films matching the search.
  const [pages, dispatchPages] = useReducer(pagesReducer, gen, initialPages);
  const [typed, setTyped] = useState('');
  const [retry, setRetry] = useState(0);
  useEffect(() => {
    dispatchPages({ type: 'reset', gen });
    setTyped('');
  }, [gen]);
  useEffect(() => {
    const q = typed.trim();
    const t = setTimeout(() => dispatchPages({ type: 'search', q }), q ? SEARCH_DELAY_MS : 0);
    return () => clearTimeout(t);
  }, [typed]);
  useEffect(() => {
    const q = pages.q;
    if (!q) return;
    const ctl = new AbortController();
    const g = pages.gen;
    dispatchPages({ type: 'loading' });
    getFilms(session.id, { offset: 0, limit: PAGE_SIZE, q }, ctl.signal).then(
      (page) => dispatchPages({ type: 'loaded', gen: g, q, page }),
      () => {
        if (!ctl.signal.aborted) dispatchPages({ type: 'failed', gen: g, q });
      },
    );
    return () => ctl.abort();
  }, [pages.q, pages.gen, session.id, retry]);
  const view = r ? pagesView(pages, r, session.watched) : null;

  const commonList = useRef<HTMLElement>(null);
  // After the last page the button is gone: focus goes on to the first film
  // it brought, not back to the top of the page.
  const [focusFrom, setFocusFrom] = useState<number | null>(null);
  useEffect(() => {
    if (focusFrom === null || pages.status === 'loading') return;
    setFocusFrom(null);
    if (commonList.current?.querySelector('.more button')) return;
    commonList.current?.querySelectorAll<HTMLButtonElement>('.film-toggle')[focusFrom]?.focus();
  }, [focusFrom, pages.status]);

  async function showMore() {
    if (!view || pages.status === 'loading') return;
    const { q, gen: g } = pages;
    dispatchPages({ type: 'loading' });
    try {
      const page = await getFilms(session.id, { offset: view.nextOffset, limit: PAGE_SIZE, q });
      dispatchPages({ type: 'loaded', gen: g, q, page });
      setFocusFrom(view.films.length);
    } catch (e) {
      dispatchPages({ type: 'failed', gen: g, q });
      actions.announce(e instanceof ApiError ? e.message : 'Could not load more films. Try again.');
    }
  }

  const vetoed = new Set(session.vetoed);
  const watchedSet = new Set(session.watched);
  const entryOf = (film: Film): FilmEntry => ({ film, lists: null, vetoed: vetoed.has(film.id), watched: watchedSet.has(film.id) });

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

  function grid(entries: FilmEntry[]) {
    return (
      <ul className="films">
        {entries.map((e) => (
          <FilmCard
            key={e.film.id}
            entry={e}
            of={lists.lists}
            onToggle={() => toggle(e.film.id, !e.vetoed)}
          />
        ))}
      </ul>
    );
  }

  // An export uploaded for someone left out: their list now, search again.
  async function uploaded(p: Participant, report: UploadReport) {
    actions.uploaded(p.name, report);
    await actions.run(() => startSearch(session.id, false));
  }

  async function doRoll() {
    setRolling(true);
    await Promise.all([...inFlight.current]);
    await actions.run(() => roll(session.id));
    setRolling(false);
  }

  let headline: string;
  if (!r) headline = 'Nobody’s watchlist could be read';
  else if (commonCount === 0) headline = total > 0 ? 'No film is on every list' : 'No films in common';
  else if (r.failed > 0) headline = commonCount === 1 ? '1 film on every list we could read' : `${count(commonCount)} films on every list we could read`;
  else headline = commonCount === 1 ? '1 film you all want to see' : `${count(commonCount)} films you all want to see`;

  const n = lists.left;
  let pool: string;
  if (lists.poolFrom === 'common')
    pool = n === 1 ? 'One film on everyone’s list is left to roll.' : `${count(n)} films on everyone’s list are left to roll from.`;
  else if (lists.poolFrom === 'most')
    pool = `Every film on everyone’s list is struck out, so Roll! picks from the ${n === 1 ? 'one film' : `${count(n)} films`} left on the most lists.`;
  else pool = 'Every film is struck out: bring one back to roll.';

  return (
    <div className="results">
      <div className="results-head">
        <h1 ref={headingRef} tabIndex={-1}>
          {headline}
        </h1>
        {r && total > 0 && (
          <p className="lead">
            Tap or click a film to strike it out, and again to bring it back. {pool}
          </p>
        )}
        <MissingLists session={session} actions={actions} gate={gate} onUploaded={uploaded} />
        <div className="actions">
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
                  onUploaded={(report) => uploaded(p, report)}
                />
              </li>
            ))}
          </ul>
        </section>
      )}

      {r && view && commonCount > 0 && (
        <section aria-labelledby="common-title" ref={commonList}>
          <h2 id="common-title">On everyone’s list</h2>
          {commonCount >= SEARCH_FROM && (
            <div className="film-search" role="search">
              <label htmlFor={searchId}>Find a film by its title</label>
              <input
                id={searchId}
                type="search"
                autoComplete="off"
                enterKeyHint="search"
                value={typed}
                onChange={(e) => setTyped(e.currentTarget.value)}
              />
            </div>
          )}
          <p className="muted list-status" role="status">
            {listStatus(view, pages.q, pages.status)}
            {view.searching && pages.status === 'error' && (
              <>
                {' '}
                <button type="button" className="link-button" onClick={() => setRetry((n) => n + 1)}>
                  Try again
                </button>
              </>
            )}
          </p>
          {view.films.length > 0 && grid(view.films.map(entryOf))}
          {view.hasMore && (pages.status !== 'loading' || !view.searching || view.films.length > 0) && (
            <p className="more">
              <button type="button" className="btn" onClick={() => void showMore()} aria-disabled={pages.status === 'loading'}>
                {pages.status === 'loading' ? 'Loading…' : `Show ${Math.min(PAGE_SIZE, view.total - view.films.length)} more`}
              </button>
            </p>
          )}
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

      {r && total > 0 && (
        <div className="action-bar">
          <button
            type="button"
            className="btn btn-primary btn-big"
            onClick={doRoll}
            disabled={rolling || lists.left === 0 || gate.blocked}
            aria-describedby={gate.blocked ? 'roll-why' : undefined}
          >
            Roll!
          </button>
          <span className="action-left">{n === 1 ? '1 film left' : `${count(n)} films left`}</span>
          {gate.blocked && (
            <p id="roll-why" className="action-why">
              Fix or remove the missing lists first, or go on anyway.
            </p>
          )}
        </div>
      )}
    </div>
  );
}

function count(n: number): string {
  return n.toLocaleString('en-US');
}

function listStatus(v: { films: { length: number }; total: number; searching: boolean }, q: string, status: string): string {
  if (v.searching) {
    if (status === 'error') return `Could not search for “${q}”.`;
    if (status === 'loading' && v.films.length === 0) return `Looking for “${q}”…`;
    if (v.total === 0) return `No film on everyone’s list matches “${q}”.`;
    const m = v.total === 1 ? '1 film matches' : `${count(v.total)} films match`;
    return v.films.length < v.total ? `${m} “${q}”, showing ${count(v.films.length)}.` : `${m} “${q}”.`;
  }
  return v.films.length < v.total ? `Showing ${count(v.films.length)} of ${count(v.total)}.` : '';
}
