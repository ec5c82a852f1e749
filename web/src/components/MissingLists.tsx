// The top of the results when some lists could not be read: whose lists are
// missing and why, with the ways to fix it (the upload offered below, remove
// them and search again, try again when the site did not answer, or change
// the group), and "Go on anyway". Until the group goes on,
// Roll! waits (useMissingGate, which the results screen asks).
import { useState } from 'react';
import { removeParticipant, startSearch } from '../api';
import type { MissingLists as Missing } from '../state/gathering';
import { joinNames, missingLists, missingText, rollBlocked } from '../state/gathering';
import type { UploadReport } from '../state/gathering';
import { participantProblem } from '../state/messages';
import type { Participant, Session } from '../state/types';
import { PersonProblem } from './PersonProblem';
import type { SessionActions } from '../screens/SessionPage';

export interface MissingGate {
  missing: Missing;
  /** Roll! waits: some lists are missing and the group has not chosen to go on. */
  blocked: boolean;
  goOn: () => void;
}

/** Whether the full notice is on show (names, reasons, fixes), not only the short note. */
export function noticeShown(gate: MissingGate): boolean {
  return gate.missing.missing.length > 0 && (gate.blocked || gate.missing.readable.length === 0);
}

/** Kept by the results screen, so a new search (a new results screen) asks again. */
export function useMissingGate(session: Session): MissingGate {
  const [acknowledged, setAcknowledged] = useState<ReadonlySet<string>>(() => new Set());
  const missing = missingLists(session);
  return {
    missing,
    blocked: rollBlocked(missing, acknowledged),
    goOn: () => setAcknowledged(new Set(missing.missing.map((p) => p.id))),
  };
}

interface Props {
  session: Session;
  actions: SessionActions;
  gate: MissingGate;
  /** An export was uploaded for one of them (offered in the notice). */
  onUploaded: (p: Participant, report: UploadReport) => Promise<void>;
}

export function MissingLists({ session, actions, gate, onUploaded }: Props) {
  const [busy, setBusy] = useState(false);
  const words = missingText(gate.missing);
  if (!words) return null;
  const { missing, readable } = gate.missing;
  const names = joinNames(missing.map((p) => p.name));
  // Worth another try: the site did not answer, or something else went wrong.
  const retry = missing.some((p) => {
    const k = participantProblem(p)?.kind;
    return k === 'unavailable' || k === 'other';
  });

  if (!noticeShown(gate)) {
    return (
      <p className="missing-note" role="status">
        Going on without {missing.length === 1 ? `${names}’s list` : `the lists of ${names}`}.
      </p>
    );
  }

  async function removeAndSearch() {
    setBusy(true);
    for (const p of missing) {
      if (!(await actions.run(() => removeParticipant(session.id, p.id)))) {
        setBusy(false);
        return;
      }
    }
    await actions.run(() => startSearch(session.id, false));
    setBusy(false);
  }

  async function tryAgain() {
    setBusy(true);
    await actions.run(() => startSearch(session.id, false));
    setBusy(false);
  }

  return (
    <section className="panel missing-lists" aria-labelledby="missing-title">
      <h2 id="missing-title">{words.heading}</h2>
      <p>{words.body}</p>
      <ul className="missing-people">
        {missing.map((p) => (
          <li key={p.id}>
            <span className="person-name">{p.name}</span>
            <PersonProblem p={p} onUploaded={(report) => onUploaded(p, report)} />
          </li>
        ))}
      </ul>
      <p>Fix or remove {missing.length === 1 ? 'it' : 'them'} before you roll, so the pick suits everyone.</p>
      <div className="actions">
        <button type="button" className="btn btn-primary" disabled={busy} onClick={() => void removeAndSearch()}>
          {missing.length === 1 ? `Remove ${names} and search again` : 'Remove them and search again'}
        </button>
        {retry && (
          <button type="button" className="btn" disabled={busy} onClick={() => void tryAgain()}>
            Try again
          </button>
        )}
        {readable.length > 0 && (
          <button type="button" className="btn btn-quiet" disabled={busy} onClick={gate.goOn}>
            Go on anyway
          </button>
        )}
      </div>
    </section>
  );
}
