import { describe, expect, it } from 'vitest';
import { csvFields, needsRowsFromFile, rowsFromCsv, withRowsFromCsv } from './uploadRows';
import type { ImportAnswer } from './types';

const CSV = [
  'Date,Name,Year,Letterboxd URI',
  '2024-01-05,Hotel & Prophet,1935,https://boxd.it/zqA1',
  '2024-01-08,"The ""Quiet"" Dancer, Part 2",19x5,https://boxd.it/zqA4',
  '2024-01-15,,2001,https://boxd.it/zqB2',
  '2024-01-16,Too Many Fields,2001,https://boxd.it/zqB3,extra',
].join('\r\n');

describe('the unusable rows, read from the CSV', () => {
  it('splits quoted fields', () => {
    expect(csvFields('a,"b, ""c""",d')).toEqual(['a', 'b, "c"', 'd']);
    expect(csvFields('')).toEqual(['']);
  });

  it('title and year of the lines the server named', () => {
    const rows = rowsFromCsv(CSV, [3, 4, 5]);
    expect(rows.get(3)).toEqual({ title: 'The "Quiet" Dancer, Part 2', year: null });
    expect(rows.get(4)).toEqual({ title: null, year: 2001 });
    expect(rows.get(5)).toEqual({ title: 'Too Many Fields', year: 2001 });
    expect(rows.has(2)).toBe(false);
  });

  it('a list export: the header after the list’s own lines', () => {
    const list = ['Letterboxd list export v7', 'Date,Name,Tags,URL,Description', '2024-01-01,My list,,https://x,', '', 'Position,Name,Year,URL,Description', '1,Heat,1995,https://x,', '2,Alien,nineteen,https://y,'].join('\n');
    expect(rowsFromCsv(list, [7]).get(7)).toEqual({ title: 'Alien', year: null });
  });

  it('fills only what the server left out', () => {
    const answer: ImportAnswer = {
      import: {
        id: 'x',
        participant: { import: 'x' },
        format: 'letterboxd-csv',
        films: 1,
        row_errors: [
          { line: 3, reason: "Year '19x5' is not a year" },
          { line: 4, reason: 'missing Name', title: 'From the server', year: 1999 },
        ],
        row_errors_total: 2,
      },
    };
    expect(needsRowsFromFile(answer, 'watchlist.csv')).toBe(true);
    expect(needsRowsFromFile(answer, 'export.zip')).toBe(false);
    expect(withRowsFromCsv(answer, CSV).import.row_errors).toEqual([
      { line: 3, reason: "Year '19x5' is not a year", title: 'The "Quiet" Dancer, Part 2', year: null },
      { line: 4, reason: 'missing Name', title: 'From the server', year: 1999 },
    ]);
    const done = withRowsFromCsv(answer, CSV);
    expect(needsRowsFromFile(done, 'watchlist.csv')).toBe(false);
  });
});
