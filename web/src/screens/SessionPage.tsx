// One group session: loads it, follows its live events, and shows the
// screen its status calls for (gathering people, loading, results), with the
// rolled film full screen on top when there is one. Each of those screens
// has its own browser history entry (state/history.ts), and the session is
// remembered for the start page's "Return to your session".
import { useCallback, useEffect, useReducer, useRef, useState } from 'react';
import { ApiError, csrfToken, eventsUrl, getSession, startSearch } from '../api';
import { subscribe } from '../live';
import { entryOf, forgetSession, rememberSeenRoll, rememberSession, seenRoll, stepsTo, viewOf } from '../state/history';
import { initialSessionState, screenOf, sessionReducer } from '../state/session';
import type { Film, Session } from '../state/types';
import { Gathering } from './Gathering';
import { Loading } from './Loading';
import { Results } from './Results';
import { Rolled } from './Rolled';
import { Report } from '../components/UploadExport';
import type { UploadReport } from '../state/gathering';

export interface SessionActions {
  /** Runs a request that answers with a Session; shows its error if it fails. */
  run: (what: () => Promise<Session>) => Promise<boolean>;
  /** Loads the session again (after a request whose outcome is unknown). */
  refresh: () => Promise<void>;
  /** Says something to screen readers (and shows it briefly). */
  announce: (text: string) => void;
  /** An export was uploaded from a person's card: show its report (the card
   * itself goes away once their list is read). */
  uploaded: (name: string, report: UploadReport) => void;
}

const ENDED = 'This session has ended or the link is wrong.';

export default function SessionPage({ id }: { id: string }) {
  const [state, dispatch] = useReducer(sessionReducer, initialSessionState);
  const [fatal, setFatal] = useState<string | null>(null);
  const [notice, setNotice] = useState<{ text: string; bad: boolean } | null>(null);
  const [editing, setEditing] = useState(false);
  // An export was uploaded while the search ran: search again when it ends.
  const [searchAgain, setSearchAgain] = useState(false);
  const [seenRolls, setSeenRolls] = useState(0);
  // The film on show: kept here because the server clears `rolled` once the
  // film is marked watched, and the screen should still say "Enjoy the film!".
  const [onShow, setOnShow] = useState<{ film: Film; roll: number; again?: boolean } | null>(null);
  // The report of the last export uploaded from a person's card.
  const [cardUpload, setCardUpload] = useState<{ name: string; report: UploadReport } | null>(null);
  const noticeTimer = useRef<ReturnType<typeof setTimeout> | null>(null);

  useEffect(() => {
    let cancelled = false;
    let sub: { close(): void } | null = null;
    (async () => {
      try {
        await csrfToken();
        const s = await getSession(id);
        if (cancelled) return;
        rememberSession(id);
        // Opened again on a history entry of "change the group": that screen.
        const entry = entryOf(window.history.state, id);
        if (entry?.fpView === 'gathering' && s.status === 'results') setEditing(true);
        // The rolled film is shown again on its own history entry, or when
        // this browser has not closed it yet.
        if (s.rolled && entry?.fpView !== 'rolled' && (entry !== null || seenRoll(id, s.rolled.id))) setSeenRolls(1);
        dispatch({ type: 'server', session: s });
        // When the browser gives up on the stream, the session may have
        // ended (expired): then say so instead of retrying for ever.
        const check = () => {
          getSession(id).then(
            (fresh) => {
              if (!cancelled) dispatch({ type: 'server', session: fresh });
            },
            (e: unknown) => {
              if (cancelled || !(e instanceof ApiError && e.status === 404)) return;
              sub?.close();
              forgetSession(id);
              setFatal(ENDED);
            },
          );
        };
        sub = subscribe(eventsUrl(id), dispatch, undefined, undefined, undefined, check);
      } catch (e) {
        if (cancelled) return;
        if (e instanceof ApiError && e.status === 404) forgetSession(id);
        setFatal(
          e instanceof ApiError && e.status === 404
            ? ENDED
            : e instanceof ApiError
              ? e.message
              : 'Could not open the session.',
        );
      }
    })();
    return () => {
      cancelled = true;
      sub?.close();
      if (noticeTimer.current) clearTimeout(noticeTimer.current);
    };
  }, [id]);

  const say = useCallback((text: string, bad: boolean) => {
    setNotice({ text, bad });
    if (noticeTimer.current) clearTimeout(noticeTimer.current);
    noticeTimer.current = setTimeout(() => setNotice(null), bad ? 8000 : 3000);
  }, []);

  const refresh = useCallback(async () => {
    try {
      dispatch({ type: 'server', session: await getSession(id) });
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) setFatal(ENDED);
    }
  }, [id]);

  const actions: SessionActions = {
    run: async (what) => {
      try {
        dispatch({ type: 'server', session: await what() });
        return true;
      } catch (e) {
        if (e instanceof ApiError && e.status === 404 && e.code === 'not_found') {
          // The session itself, or only what we acted on (a person or a
          // film another device removed a moment ago)? Ask.
          try {
            dispatch({ type: 'server', session: await getSession(id) });
            say('That was already changed on another device.', false);
          } catch (again) {
            if (again instanceof ApiError && again.status === 404) setFatal(ENDED);
            else say('Something went wrong. Try again.', true);
          }
        } else {
          say(e instanceof ApiError ? e.message : 'Something went wrong. Try again.', true);
        }
        return false;
      }
    },
    refresh,
    announce: (text) => say(text, false),
    uploaded: (name, report) => setCardUpload({ name, report }),
  };

  const s = state.session;
  const screen = s ? screenOf(s, editing) : null;

  // Leave "change the group" once a search starts (from any device).
  useEffect(() => {
    if (s?.status === 'searching') setEditing(false);
  }, [s?.status]);

  useEffect(() => {
    if (!searchAgain || s?.status !== 'results') return;
    setSearchAgain(false);
    void actions.run(() => startSearch(id, false));
    // actions is rebuilt every render; the status change is what matters
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [searchAgain, s?.status, id]);

  const rolledNow = s?.rolled ?? null;
  useEffect(() => {
    if (rolledNow && state.rolls > seenRolls) setOnShow({ film: rolledNow, roll: state.rolls });
  }, [rolledNow, state.rolls, seenRolls]);

  // A film put back by another device: only the server knows where it goes.
  const resync = state.resync;
  useEffect(() => {
    if (resync > 0) void refresh();
  }, [resync, refresh]);

  // History: a new entry per screen; Back and Forward show that screen.
  const view = screen ? viewOf(screen, onShow !== null) : null;
  useEffect(() => {
    if (!view) return;
    for (const step of stepsTo(window.history.state, id, view)) {
      if (step.op === 'back') window.history.back();
      else if (step.op === 'push') window.history.pushState(step.state, '', window.location.href);
      else window.history.replaceState(step.state, '', window.location.href);
    }
  }, [view, id]);
  const shownFilm = onShow?.film.id;
  useEffect(() => {
    if (shownFilm === undefined) return;
    return () => rememberSeenRoll(id, shownFilm);
  }, [shownFilm, id]);
  const latest = useRef({ s, onShow, rolls: state.rolls });
  latest.current = { s, onShow, rolls: state.rolls };
  useEffect(() => {
    const onPop = (e: PopStateEvent) => {
      const entry = entryOf(e.state, id);
      if (!entry) return;
      const { s: now, onShow: shown, rolls } = latest.current;
      if (entry.fpView === 'rolled') {
        setEditing(false);
        if (!shown && now?.rolled) setOnShow({ film: now.rolled, roll: rolls, again: true });
        return;
      }
      if (shown) {
        setSeenRolls(shown.roll);
        setOnShow(null);
      }
      setEditing(entry.fpView === 'gathering' && now?.status === 'results');
    };
    window.addEventListener('popstate', onPop);
    return () => window.removeEventListener('popstate', onPop);
  }, [id]);

  const headingRef = useRef<HTMLHeadingElement>(null);
  // A new screen (or the rolled film) starts without the last screen's notice.
  useEffect(() => {
    headingRef.current?.focus({ preventScroll: true });
    setNotice(null);
  }, [screen, onShow?.roll]);

  if (fatal) {
    return (
      <section className="panel narrow" aria-labelledby="fatal-title">
        <h1 id="fatal-title">Oh no</h1>
        <p role="alert">{fatal}</p>
        <p>
          <a href="/" className="btn">
            Start a new session
          </a>
        </p>
      </section>
    );
  }
  if (!s || !screen) {
    return (
      <p className="page-loading" role="status">
        Opening the session…
      </p>
    );
  }

  const toast = (
    <div className={notice ? (notice.bad ? 'toast toast-bad' : 'toast') : 'toast toast-hidden'} role="status" aria-live="polite">
      {notice?.text ?? ''}
    </div>
  );

  return (
    <div className="session">
      {state.connection === 'reconnecting' && (
        <p className="connection" role="status">
          Connection lost, reconnecting…
        </p>
      )}
      {cardUpload && (
        <section className="panel card-upload" aria-labelledby="card-upload-title">
          <h2 id="card-upload-title">{cardUpload.name}’s export</h2>
          <Report report={cardUpload.report} />
          <button type="button" className="btn btn-small btn-quiet" onClick={() => setCardUpload(null)}>
            Close
          </button>
        </section>
      )}
      {screen === 'gathering' && (
        <Gathering session={s} actions={actions} headingRef={headingRef} onDone={editing ? () => setEditing(false) : null} />
      )}
      {screen === 'loading' && (
        <Loading
          session={s}
          headingRef={headingRef}
          onUploaded={async (name, report) => {
            setCardUpload({ name, report });
            setSearchAgain(true);
            say('Export uploaded: it joins the search as soon as the others are read.', false);
          }}
        />
      )}
      {screen === 'results' && (
        <Results
          session={s}
          actions={actions}
          headingRef={headingRef}
          onEdit={() => setEditing(true)}
          dispatch={dispatch}
          gen={state.resultsGen}
        />
      )}
      {onShow && (
        <Rolled
          key={onShow.roll}
          session={s}
          film={onShow.film}
          actions={actions}
          onClose={() => {
            setSeenRolls(onShow.roll);
            setOnShow(null);
          }}
          toast={toast}
          shuffle={!onShow.again}
        />
      )}
      {!onShow && toast}
    </div>
  );
}
