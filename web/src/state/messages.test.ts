import { describe, expect, it } from 'vitest';
import { participantNote, participantProblem, requestErrorText } from './messages';
import { participant } from './fixtures';

const err = (code: string, message = 'server words') => ({ code, message });

describe('participantProblem', () => {
  it.each([
    ['user_not_found', 'notfound_x', 'failed', 'not_found', 'No Letterboxd user called “notfound_x”'],
    ['empty_watchlist', 'empty_x', 'failed', 'empty', 'This watchlist is private or empty'],
    ['source_unavailable', 'down_x', 'failed', 'unavailable', 'Letterboxd is not answering, try again in a while'],
    ['source_timeout', 'down_x', 'failed', 'unavailable', 'Letterboxd is not answering, try again in a while'],
    ['source_rate_limited', 'down_x', 'failed', 'unavailable', 'Letterboxd is not answering, try again in a while'],
    ['source_unavailable', 'down_x', 'fetching', 'unavailable', 'Letterboxd is not answering, retrying…'],
    ['source_blocked', 'blocked_x', 'failed', 'blocked', 'Letterboxd refused the request: upload your export instead'],
    ['page_format_not_recognized', 'garbage_x', 'failed', 'other', 'Letterboxd’s page looked unfamiliar: upload your export instead'],
    ['not_found', 'import:abcd1234', 'failed', 'other', 'server words'],
  ] as const)('%s for %s (%s)', (code, name, status, kind, text) => {
    const p = participant({ name, status, error: status === 'failed' ? err(code) : null, warning: status === 'failed' ? null : err(code) });
    expect(participantProblem(p)).toMatchObject({ kind, text });
  });

  it('offers the upload only where it helps', () => {
    const blocked = participantProblem(participant({ status: 'failed', error: err('source_blocked') }));
    expect(blocked && 'offerUpload' in blocked && blocked.offerUpload).toBe(true);
    const nf = participantProblem(participant({ status: 'failed', error: err('user_not_found') }));
    expect(nf && 'offerUpload' in nf).toBe(false);
  });

  it('nothing is wrong with a ready or fetching participant without errors', () => {
    expect(participantProblem(participant({ status: 'ready', films: 10 }))).toBeNull();
    expect(participantProblem(participant({ status: 'fetching' }))).toBeNull();
  });

  it('a failed participant without an error object still says so', () => {
    expect(participantProblem(participant({ status: 'failed' }))?.text).toBe('This watchlist could not be read');
  });

  it('a ready participant with a warning gets a note, not a problem', () => {
    const p = participant({ status: 'ready', films: 10, warning: err('source_unavailable') });
    expect(participantProblem(p)).toBeNull();
    expect(participantNote(p)).toBe('Letterboxd is not answering: using the copy saved earlier');
    expect(participantNote(participant({ status: 'ready' }))).toBeNull();
  });
});

describe('requestErrorText', () => {
  it.each([
    [0, null, 'FilmPicker is not answering. Check your connection and try again.'],
    [403, err('csrf_failed'), 'Your page got out of date. Reload it and try again.'],
    [422, err('invalid_username'), 'That is not a Letterboxd username or profile link (like alice or https://letterboxd.com/alice/).'],
    [422, err('too_many_participants', '17 participants; at most 16 are allowed'), 'Too many people: 17 participants; at most 16 are allowed.'],
    [409, err('conflict', 'nothing left to roll: every film was struck out'), 'Nothing left to roll: every film was struck out'],
    [409, null, 'Someone else changed the session just now. Try again.'],
    [404, err('not_found'), 'This session has ended or the link is wrong.'],
    [429, err('rate_limited'), 'Too many requests just now. Wait a moment and try again.'],
    [413, err('payload_too_large'), 'That file is too large.'],
    [422, err('empty_watchlist'), 'That file holds no films.'],
    [502, null, 'Something went wrong on the server. Try again in a moment.'],
    [400, err('invalid_request', 'the body must be a JSON object'), 'The body must be a JSON object'],
    [418, null, 'The request failed (418).'],
    // issue 7: one sentence each, never the same words twice
    [409, err('already_added', 'alice is already in the group'), 'alice is already in the group.'],
    [409, err('already_added', ''), 'That person is already in the group.'],
    [422, err('invalid_name', 'name: 1 to 40 characters'), 'A name has 1 to 40 characters.'],
    // one plain sentence, never the server's detail (CSV headers, zip errors)
    [422, err('invalid_import_file', 'not a Letterboxd export: no watchlist.csv in the zip'), 'That file is not a Letterboxd export: upload the .zip from letterboxd.com/settings/data or the watchlist.csv inside it.'],
    [422, err('invalid_import_file', 'not a Letterboxd export: expected a header with Name, Year'), 'That file is not a Letterboxd export: upload the .zip from letterboxd.com/settings/data or the watchlist.csv inside it.'],
    [422, err('invalid_import_file', ''), 'That file is not a Letterboxd export: upload the .zip from letterboxd.com/settings/data or the watchlist.csv inside it.'],
  ] as const)('%i %j', (status, body, text) => {
    expect(requestErrorText(status, body)).toBe(text);
  });
});

describe('no doubled words', () => {
  it('an import refusal says "not a Letterboxd export" once', () => {
    const t = requestErrorText(422, err('invalid_import_file', 'not a Letterboxd export: expected the export .zip or a CSV from it'));
    expect(t.match(/not a Letterboxd export/gi)).toHaveLength(1);
    expect(t).toBe('That file is not a Letterboxd export: upload the .zip from letterboxd.com/settings/data or the watchlist.csv inside it.');
  });
});
