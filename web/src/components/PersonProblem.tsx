// A participant's problem in plain words, with the export upload offered
// right there when Letterboxd will not let us read the list.
import type { UploadReport } from '../state/gathering';
import type { Participant } from '../state/types';
import { participantNote, participantProblem } from '../state/messages';
import { UploadExport } from './UploadExport';

export function PersonProblem({ p, onUploaded }: { p: Participant; onUploaded: ((report: UploadReport) => Promise<void>) | null }) {
  const problem = participantProblem(p);
  const note = participantNote(p);
  if (!problem) return note ? <p className="note">{note}</p> : null;
  const offer = onUploaded !== null && 'offerUpload' in problem && problem.offerUpload && p.source !== 'import';
  return (
    <div className={`problem problem-${problem.kind}`}>
      <p className="problem-text">{problem.text}</p>
      {offer && onUploaded && (
        <UploadExport username={p.name} label={`Upload the Letterboxd export of ${p.name}`} onUploaded={(_answer, report) => onUploaded(report)} />
      )}
    </div>
  );
}
