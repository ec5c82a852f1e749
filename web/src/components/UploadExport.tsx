// Upload of a Letterboxd export (the .zip or watchlist.csv): the way in for
// someone whose profile Letterboxd will not let us read. A styled file
// picker that also takes a dropped file, the three steps to get the export,
// and after the upload how many films were matched and which rows could not
// be used.
import { useId, useState } from 'react';
import type { DragEvent } from 'react';
import { ApiError, uploadExport } from '../api';
import type { UploadReport } from '../state/gathering';
import { uploadReport } from '../state/gathering';
import type { ImportAnswer } from '../state/types';
import { needsRowsFromFile, withRowsFromCsv } from '../state/uploadRows';

export const EXPORT_PAGE = 'https://letterboxd.com/settings/data/';

interface Props {
  /** With a username, the file becomes that user's stored watchlist. */
  username?: string;
  label: string;
  onUploaded: (answer: ImportAnswer, report: UploadReport) => Promise<void> | void;
  /** Asked before the file is sent: false keeps it back (the caller says why). */
  ready?: () => boolean;
}

export function UploadExport({ username, label, onUploaded, ready }: Props) {
  const inputId = useId();
  const stepsId = useId();
  const [busy, setBusy] = useState(false);
  const [over, setOver] = useState(false);
  const [report, setReport] = useState<UploadReport | null>(null);
  const [error, setError] = useState<string | null>(null);

  async function upload(file: File) {
    setReport(null);
    setError(null);
    if (ready && !ready()) return;
    setBusy(true);
    try {
      let answer = await uploadExport(file, username);
      if (needsRowsFromFile(answer, file.name)) {
        answer = withRowsFromCsv(answer, await file.text().catch(() => ''));
      }
      const done = uploadReport(answer, file.name);
      setReport(done);
      await onUploaded(answer, done);
    } catch (e) {
      setError(e instanceof ApiError ? e.message : 'The upload failed. Try again.');
    } finally {
      setBusy(false);
    }
  }

  function dragging(e: DragEvent<HTMLDivElement>, on: boolean) {
    e.preventDefault();
    if (!busy && on) e.dataTransfer.dropEffect = 'copy';
    setOver(on && !busy);
  }

  return (
    <div className="upload">
      <ol className="upload-steps" id={stepsId}>
        <li>
          Open{' '}
          <a href={EXPORT_PAGE} target="_blank" rel="noopener noreferrer">
            letterboxd.com/settings/data
          </a>{' '}
          and sign in.
        </li>
        <li>Press “Export your data” and save the .zip file.</li>
        <li>Drop that .zip here, or the watchlist.csv inside it.</li>
      </ol>
      <div
        className={`dropzone${over ? ' dropzone-over' : ''}${busy ? ' dropzone-busy' : ''}`}
        onDragEnter={(e) => dragging(e, true)}
        onDragOver={(e) => dragging(e, true)}
        onDragLeave={(e) => dragging(e, false)}
        onDrop={(e) => {
          dragging(e, false);
          const file = e.dataTransfer.files[0];
          if (file && !busy) void upload(file);
        }}
      >
        <input
          id={inputId}
          className="visually-hidden dropzone-input"
          type="file"
          accept=".csv,.zip,text/csv,application/zip"
          disabled={busy}
          aria-describedby={stepsId}
          onChange={(e) => {
            const file = e.currentTarget.files?.[0];
            e.currentTarget.value = '';
            if (file) void upload(file);
          }}
        />
        <label htmlFor={inputId} className="dropzone-label">
          <span className="upload-label">{label}</span>
          <span className="btn btn-small dropzone-button" aria-hidden="true">
            {busy ? 'Uploading…' : 'Choose file'}
          </span>
          <span className="dropzone-or" aria-hidden="true">
            or drop it here
          </span>
        </label>
      </div>
      {busy && (
        <p role="status" className="muted">
          Uploading…
        </p>
      )}
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {report && <Report report={report} />}
    </div>
  );
}

/** The report of an upload: how many films were matched, the rows that could not be used. */
export function Report({ report }: { report: UploadReport }) {
  return (
    <div className="upload-report" role="status">
      <p className="ok">{report.summary}</p>
      {report.rowsHeading && (
        <>
          <p className="upload-rows-title">{report.rowsHeading}</p>
          <div className="upload-rows-wrap">
            <table className="upload-rows">
              <thead>
                <tr>
                  <th scope="col">Line</th>
                  <th scope="col">Title</th>
                  <th scope="col">Year</th>
                  <th scope="col">Why</th>
                </tr>
              </thead>
              <tbody>
                {report.rows.map((r, i) => (
                  <tr key={`${r.line}-${i}`}>
                    <td>{r.line}</td>
                    <td>{r.title}</td>
                    <td>{r.year}</td>
                    <td>{r.reason}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {report.more > 0 && <p className="muted">…and {report.more} more.</p>}
        </>
      )}
    </div>
  );
}
