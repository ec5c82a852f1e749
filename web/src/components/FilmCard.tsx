// One film of the results: click (or Enter/Space) strikes it out and back;
// "Copy title" copies it for a streaming site's search.
import type { FilmEntry } from '../state/session';
import { listsLabel } from '../state/session';
import { Poster } from './Poster';

interface Props {
  entry: FilmEntry;
  of: number;
  onToggle: () => void;
  onCopy: () => void;
}

export function FilmCard({ entry, of, onToggle, onCopy }: Props) {
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
      <button type="button" className="btn btn-small btn-quiet film-copy" onClick={onCopy} aria-label={`Copy title: ${film.title}`}>
        Copy title
      </button>
    </li>
  );
}
