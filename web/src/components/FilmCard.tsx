// One film of the results: click (or Enter/Space) strikes it out and back;
// a link next to it opens the film's Letterboxd page in a new tab.
import type { FilmEntry } from '../state/session';
import { listsLabel } from '../state/session';
import { Poster } from './Poster';

interface Props {
  entry: FilmEntry;
  of: number;
  onToggle: () => void;
}

export function FilmCard({ entry, of, onToggle }: Props) {
  const { film, vetoed, watched, lists } = entry;
  return (
    <li className={`film${vetoed ? ' film-vetoed' : ''}${watched ? ' film-watched' : ''}`}>
      <button
        type="button"
        className="film-toggle"
        aria-pressed={vetoed}
        disabled={watched}
        title={vetoed ? 'Bring it back' : 'Strike it out'}
        onClick={onToggle}
      >
        <Poster film={film} />
        <span className="film-text">
          <span className="visually-hidden">Strike out: </span>
          <span className="film-title">{film.title}</span>
          <span className="film-meta">
            {film.year !== null && <span className="film-year">{film.year}</span>}
            {lists !== null && <span className="film-lists">{listsLabel(lists, of)}</span>}
            {vetoed && <span className="film-state">struck out</span>}
            {watched && <span className="film-state">watched</span>}
          </span>
        </span>
      </button>
      {film.url && <FilmLink url={film.url} title={film.title} className="film-link" />}
    </li>
  );
}

/** The film's page on Letterboxd, in a new tab that cannot reach back to us. */
export function FilmLink({ url, title, className }: { url: string; title: string; className: string }) {
  if (!/^https?:\/\//i.test(url)) return null;
  return (
    <a className={className} href={url} target="_blank" rel="noopener noreferrer" aria-label={`${title} on Letterboxd (opens in a new tab)`}>
      Letterboxd
      <span aria-hidden="true"> ↗</span>
    </a>
  );
}
