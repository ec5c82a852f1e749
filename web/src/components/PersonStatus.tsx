// What is known of one person's list on the session screen, before the
// search: looked up, found with how many films, being read (pages), or what
// went wrong (with the export upload offered where it helps).
import type { UploadReport } from '../state/gathering';
import type { Participant } from '../state/types';
import { personStatus } from '../state/gathering';
import { participantNote } from '../state/messages';
import { PersonProblem } from './PersonProblem';

export function PersonStatus({ p, onUploaded }: { p: Participant; onUploaded: ((report: UploadReport) => Promise<void>) | null }) {
  const st = personStatus(p);
  const note = participantNote(p);
  return (
    <div className={`person-status status-${p.status}`}>
      {p.status === 'failed' ? (
        <PersonProblem p={p} onUploaded={onUploaded} />
      ) : (
        <p className={`person-status-text tone-${st.tone}`}>{st.text}</p>
      )}
      {st.pages && <progress aria-label={`${p.name}: ${st.text}`} value={st.pages.done} max={st.pages.of} />}
      {note && <p className="note">{note}</p>}
    </div>
  );
}
