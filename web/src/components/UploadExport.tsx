// Upload of a Letterboxd export (the .zip or watchlist.csv): the way in for
// someone whose profile Letterboxd will not let us read.
import { useId, useState } from 'react';
import { ApiError, uploadExport } from '../api';
import type { ImportAnswer } from '../state/types';

interface Props {
  /** With a username, the file becomes that user's stored watchlist. */
  username?: string;
  label: string;
  onUploaded: (answer: ImportAnswer) => Promise<void> | void;
}

export function UploadExport({ username, label, onUploaded }: Props) {
  const inputId = useId();
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState<{ text: string; bad: boolean } | null>(null);

  async function upload(file: File) {
    setBusy(true);
    setMessage(null);
    try {
      const answer = await uploadExport(file, username);
      const skipped = answer.import.row_errors_total;
      setMessage({
        text:
          `${answer.import.films} films read from ${file.name}` +
          (skipped > 0 ? ` (${skipped} unreadable ${skipped === 1 ? 'row' : 'rows'} skipped)` : ''),
        bad: false,
      });
      await onUploaded(answer);
    } catch (e) {
      setMessage({ text: e instanceof ApiError ? e.message : 'The upload failed. Try again.', bad: true });
    } finally {
      setBusy(false);
    }
  }

  return (
    <div className="upload">
      <label htmlFor={inputId} className="upload-label">
        {label}
      </label>
      <input
        id={inputId}
        type="file"
        accept=".csv,.zip,text/csv,application/zip"
        disabled={busy}
        onChange={(e) => {
          const file = e.currentTarget.files?.[0];
          e.currentTarget.value = '';
          if (file) void upload(file);
        }}
      />
      <p className="hint">The .zip from letterboxd.com/settings/data, or the watchlist.csv inside it.</p>
      {busy && <p role="status">Uploading…</p>}
      {message && (
        <p className={message.bad ? 'error' : 'ok'} role={message.bad ? 'alert' : 'status'}>
          {message.text}
        </p>
      )}
    </div>
  );
}
