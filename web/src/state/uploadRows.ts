// The title and year of the rows an export upload could not use, read from
// the uploaded CSV itself when the server's answer does not carry them (a
// server without them in `row_errors`; issue 7 asks the report to show
// title, year and reason). Only for a CSV: a .zip stays as the server said.
// Pure; the line numbers are the server's (1-based, the header included, a
// record's first line).

import type { ImportAnswer } from './types';

/** The fields of one CSV line (RFC 4180 quotes; a line, not a whole record). */
export function csvFields(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (quoted) {
      if (ch === '"') {
        if (line[i + 1] === '"') {
          cur += '"';
          i++;
        } else quoted = false;
      } else cur += ch;
    } else if (ch === '"' && cur === '') quoted = true;
    else if (ch === ',') {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out;
}

interface Header {
  name: number;
  year: number;
}

function headerOf(fields: string[]): Header | null {
  const norm = fields.map((f) => f.trim().toLowerCase());
  const name = norm.indexOf('name');
  const year = norm.indexOf('year');
  return name >= 0 ? { name, year } : null;
}

/** {title, year} of the given lines of a CSV text, where it can tell. */
export function rowsFromCsv(text: string, wanted: number[]): Map<number, { title: string | null; year: number | null }> {
  const lines = text.replace(/^\uFEFF/, '').split(/\r\n|\n|\r/);
  const want = new Set(wanted);
  const out = new Map<number, { title: string | null; year: number | null }>();
  let header: Header | null = null;
  const last = Math.max(0, ...wanted);
  for (let n = 1; n <= Math.min(last, lines.length); n++) {
    const fields = csvFields(lines[n - 1] ?? '');
    if (want.has(n) && header) {
      const title = (fields[header.name] ?? '').trim();
      const y = header.year >= 0 ? (fields[header.year] ?? '').trim() : '';
      out.set(n, { title: title === '' ? null : title, year: /^\d{4}$/.test(y) ? Number(y) : null });
    } else {
      header = headerOf(fields) ?? header;
    }
  }
  return out;
}

/** The answer with the title and year of its unusable rows filled from the file, where the server left them out. */
export function withRowsFromCsv(answer: ImportAnswer, text: string): ImportAnswer {
  const errs = answer.import.row_errors ?? [];
  const missing = errs.filter((r) => r.title === undefined && r.year === undefined).map((r) => r.line);
  if (missing.length === 0) return answer;
  const found = rowsFromCsv(text, missing);
  return {
    ...answer,
    import: {
      ...answer.import,
      row_errors: errs.map((r) => {
        const f = r.title === undefined && r.year === undefined ? found.get(r.line) : undefined;
        return f ? { ...r, ...f } : r;
      }),
    },
  };
}

/** Whether the server's answer left the rows without title and year, and the file is a CSV we can read. */
export function needsRowsFromFile(answer: ImportAnswer, fileName: string): boolean {
  return /\.(csv|txt)$/i.test(fileName) && (answer.import.row_errors ?? []).some((r) => r.title === undefined && r.year === undefined);
}
