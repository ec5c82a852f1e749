// Loading: every person's watchlist being read, with real progress (pages
// fetched of all pages) from the live events.
import type { RefObject } from 'react';
import { PersonProblem } from '../components/PersonProblem';
import { progressOf } from '../state/session';
import type { UploadReport } from '../state/gathering';
import type { Session } from '../state/types';

interface Props {
  session: Session;
  headingRef: RefObject<HTMLHeadingElement | null>;
  /** An export was uploaded for someone Letterboxd refused: search again
   * once this search is over (one cannot start while it runs). */
  onUploaded: (name: string, report: UploadReport) => Promise<void>;
}

export function Loading({ session, headingRef, onUploaded }: Props) {
  const people = session.participants;
  const ready = people.filter((p) => p.status === 'ready' || p.status === 'failed').length;
  return (
    <section className="loading" aria-labelledby="loading-title">
      <div className="reel" aria-hidden="true">
        <span className="reel-hole" />
        <span className="reel-hole" />
        <span className="reel-hole" />
        <span className="reel-hole" />
        <span className="reel-hole" />
      </div>
      <h1 id="loading-title" ref={headingRef} tabIndex={-1}>
        Reading watchlists…
      </h1>
      <p className="lead" role="status">
        {ready} of {people.length} ready. Big watchlists take a little while: grab the popcorn.
      </p>
      <ul className="progress-list">
        {people.map((p) => {
          const pr = progressOf(p);
          return (
            <li key={p.id} className={`progress-item status-${p.status}`}>
              <div className="progress-head">
                <span className="person-name">{p.name}</span>
                <span className="progress-label">{pr.label}</span>
              </div>
              {pr.value === null ? (
                <progress aria-label={`${p.name}: ${pr.label}`} max={pr.max} />
              ) : (
                <progress aria-label={`${p.name}: ${pr.label}`} value={pr.value} max={pr.max} />
              )}
              <div aria-live="polite">
                <PersonProblem p={p} onUploaded={(report) => onUploaded(p.name, report)} />
              </div>
            </li>
          );
        })}
      </ul>
    </section>
  );
}
