// Gathering people: "Add person" (a Letterboxd profile, checked as you type,
// or an uploaded export with a display name), the people so far with what is
// known of their list (read as soon as they are added), the films watched
// here lately, the join link, and "Suggest a film!".
import { useEffect, useId, useReducer, useRef, useState } from 'react';
import type { FormEvent, RefObject } from 'react';
import { addParticipant, checkProfile, removeParticipant, startSearch } from '../api';
import { PersonStatus } from '../components/PersonStatus';
import { RecentlyWatched } from '../components/RecentlyWatched';
import { Share } from '../components/Share';
import { UploadExport } from '../components/UploadExport';
import { MAX_NAME, alreadyAdded, alreadyAddedText, displayName, personStatus } from '../state/gathering';
import { CHECK_DELAY_MS, canAdd, checkMessage, checkReducer, initialCheck } from '../state/profileInput';
import type { UploadReport } from '../state/gathering';
import type { Participant, Session } from '../state/types';
import type { SessionActions } from './SessionPage';

interface Props {
  session: Session;
  actions: SessionActions;
  headingRef: RefObject<HTMLHeadingElement | null>;
  /** Set when the group is being changed after results: back to them. */
  onDone: (() => void) | null;
}

export function Gathering({ session, actions, headingRef, onDone }: Props) {
  const [busy, setBusy] = useState(false);
  const [removing, setRemoving] = useState<string | null>(null);
  const peopleHeading = useRef<HTMLHeadingElement>(null);
  const people = session.participants;
  const heard = useStatusNews(people);

  async function remove(pid: string, name: string) {
    setRemoving(pid);
    const ok = await actions.run(() => removeParticipant(session.id, pid));
    setRemoving(null);
    if (ok) {
      // the button is gone: keep the keyboard in the list, not on the page
      peopleHeading.current?.focus();
      actions.announce(`${name} removed.`);
    }
  }

  // Their export is now their stored list: add them again, so it is read.
  async function readAgain(p: Participant, report: UploadReport) {
    actions.uploaded(p.name, report);
    const ok = await actions.run(() => removeParticipant(session.id, p.id));
    if (ok && (await actions.run(() => addParticipant(session.id, { profile: p.name })))) {
      actions.announce(`${p.name}’s export uploaded.`);
    }
  }

  async function suggest() {
    setBusy(true);
    // Lists read as people were added make a search quick: its results may
    // be in the answer already (no 'searching' on the way), so leave
    // "change the group" here rather than wait for it.
    if (await actions.run(() => startSearch(session.id, false))) onDone?.();
    setBusy(false);
  }

  return (
    <div className="gathering">
      <h1 ref={headingRef} tabIndex={-1}>
        Who is watching?
      </h1>
      <div className="columns">
        <div className="column">
          <AddPerson session={session} actions={actions} />
          <section className="panel" aria-labelledby="people-title">
            <h2 id="people-title" ref={peopleHeading} tabIndex={-1}>
              People <span className="count">({people.length})</span>
            </h2>
            <p className="visually-hidden" aria-live="polite">
              {heard}
            </p>
            {people.length === 0 ? (
              <p className="muted">Nobody yet. Add yourself first, then your friends.</p>
            ) : (
              <ul className="people">
                {people.map((p) => (
                  <li key={p.id} className="person">
                    <span className="avatar" aria-hidden="true">
                      {p.name.slice(0, 1).toUpperCase()}
                    </span>
                    <span className="person-who">
                      <span className="person-name">{p.name}</span>
                      <span className="person-source">{p.source === 'import' ? 'uploaded list' : 'Letterboxd'}</span>
                    </span>
                    <button
                      type="button"
                      className="btn btn-small btn-quiet"
                      aria-label={`Remove ${p.name}`}
                      disabled={removing !== null}
                      onClick={() => void remove(p.id, p.name)}
                    >
                      Remove
                    </button>
                    <PersonStatus p={p} onUploaded={p.source === 'import' ? null : (report) => readAgain(p, report)} />
                  </li>
                ))}
              </ul>
            )}
            <div className="actions">
              <button
                type="button"
                className="btn btn-primary btn-big"
                onClick={suggest}
                disabled={busy || people.length === 0}
                aria-describedby={people.length === 0 ? 'suggest-hint' : undefined}
              >
                {busy ? 'Starting…' : 'Suggest a film!'}
              </button>
              {people.length === 0 && (
                <p id="suggest-hint" className="hint">
                  Add at least one person first.
                </p>
              )}
              {onDone && session.results && (
                <button type="button" className="btn" onClick={onDone}>
                  Back to the films
                </button>
              )}
            </div>
          </section>
          <RecentlyWatched session={session} actions={actions} />
        </div>
        <div className="column">
          <Share joinUrl={session.join_url} announce={actions.announce} />
        </div>
      </div>
    </div>
  );
}

/** The latest person whose list was read (or failed), for screen readers:
 * "alice: Found, 1,000 films". Page counts are not news. */
function useStatusNews(people: Participant[]): string {
  const last = useRef(new Map<string, string>());
  const started = useRef(false);
  const [news, setNews] = useState('');
  useEffect(() => {
    const seen = last.current;
    const first = !started.current;
    started.current = true;
    const lines: string[] = [];
    for (const p of people) {
      const done = p.status === 'ready' || p.status === 'failed';
      if (!first && done && seen.get(p.id) !== p.status) lines.push(`${p.name}: ${personStatus(p).text}`);
      seen.set(p.id, p.status);
    }
    if (lines.length > 0) setNews(lines.join('. '));
  }, [people]);
  return news;
}

function AddPerson({ session, actions }: { session: Session; actions: SessionActions }) {
  const [check, dispatch] = useReducer(checkReducer, initialCheck);
  const [input, setInput] = useState('');
  const [adding, setAdding] = useState(false);
  const [uploadName, setUploadName] = useState('');
  // Set when a file came without a name: the upload waits for one.
  const [nameMissing, setNameMissing] = useState(false);
  const nameInput = useRef<HTMLInputElement>(null);
  const nameRef = useRef('');
  nameRef.current = uploadName;
  const seq = useRef(0);
  const fieldId = useId();
  const msgId = useId();
  const nameId = useId();
  const nameHintId = useId();
  const nameErrorId = useId();
  // Well formed, but already one of the group: say so, do not send it.
  const dup = check.phase === 'valid' ? alreadyAdded(session, check.username) : null;

  // Debounced server check of what was typed; a newer keystroke aborts it.
  useEffect(() => {
    if (check.phase !== 'checking') return;
    const mySeq = check.seq;
    const ctl = new AbortController();
    const timer = setTimeout(() => {
      checkProfile(check.input.trim(), ctl.signal)
        .then((answer) => dispatch({ type: 'answer', seq: mySeq, answer }))
        .catch((e: unknown) => {
          if (!(e instanceof DOMException && e.name === 'AbortError')) dispatch({ type: 'check-failed', seq: mySeq });
        });
    }, CHECK_DELAY_MS);
    return () => {
      clearTimeout(timer);
      ctl.abort();
    };
  }, [check]);

  async function add(e: FormEvent) {
    e.preventDefault();
    const profile = input.trim();
    if (!profile || !canAdd(check) || dup) return;
    setAdding(true);
    const ok = await actions.run(() => addParticipant(session.id, { profile }));
    setAdding(false);
    if (ok) {
      setInput('');
      dispatch({ type: 'reset' });
      actions.announce(`${check.phase === 'valid' ? check.username : profile} added.`);
    }
  }

  const msg = dup ? { text: alreadyAddedText(dup.name), tone: 'bad' as const } : checkMessage(check);
  return (
    <section className="panel" aria-labelledby="add-title">
      <h2 id="add-title">Add person</h2>
      <form onSubmit={add} className="add-form" noValidate>
        <label htmlFor={fieldId}>Letterboxd profile link or username</label>
        <div className="add-row">
          <input
            id={fieldId}
            type="text"
            inputMode="url"
            autoComplete="off"
            autoCapitalize="none"
            spellCheck={false}
            placeholder="https://letterboxd.com/alice/ or alice"
            value={input}
            aria-describedby={msgId}
            aria-invalid={check.phase === 'invalid' || dup !== null}
            onChange={(e) => {
              setInput(e.currentTarget.value);
              seq.current++;
              dispatch({ type: 'typed', input: e.currentTarget.value, seq: seq.current });
            }}
          />
          <button type="submit" className="btn btn-primary" disabled={adding || !input.trim() || !canAdd(check) || dup !== null}>
            {adding ? 'Adding…' : 'Add'}
          </button>
        </div>
        <p id={msgId} className={`field-msg ${msg ? 'tone-' + msg.tone : ''}`} aria-live="polite">
          {msg?.text ?? ''}
        </p>
      </form>
      <details className="alt-source">
        <summary>No Letterboxd profile to link? Upload an export instead</summary>
        <div className="upload-name">
          <label htmlFor={nameId}>Their name</label>
          <input
            id={nameId}
            type="text"
            autoComplete="off"
            maxLength={MAX_NAME}
            placeholder="Dana"
            value={uploadName}
            ref={nameInput}
            required
            aria-required="true"
            aria-invalid={nameMissing}
            aria-describedby={nameMissing ? `${nameErrorId} ${nameHintId}` : nameHintId}
            onChange={(e) => {
              setUploadName(e.currentTarget.value);
              if (displayName(e.currentTarget.value)) setNameMissing(false);
            }}
          />
          {nameMissing && (
            <p id={nameErrorId} className="field-msg tone-bad" role="alert">
              Give this person a name first, then upload their file.
            </p>
          )}
          <p id={nameHintId} className="hint">
            How the group sees them; kept in this session only.
          </p>
        </div>
        <UploadExport
          label="Letterboxd export file"
          ready={() => {
            const ok = displayName(nameRef.current) !== null;
            setNameMissing(!ok);
            if (!ok) nameInput.current?.focus();
            return ok;
          }}
          onUploaded={async (answer) => {
            const who = answer.import.participant;
            const name = displayName(nameRef.current) ?? undefined;
            const ok = await actions.run(() =>
              addParticipant(
                session.id,
                'import' in who ? { import: who.import, ...(name ? { name } : {}) } : { profile: who.profile },
              ),
            );
            if (ok) {
              setUploadName('');
              actions.announce(`${name ?? 'Uploaded list'} added.`);
            }
          }}
        />
      </details>
    </section>
  );
}
