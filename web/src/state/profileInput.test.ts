import { describe, expect, it } from 'vitest';
import type { CheckAction, CheckState } from './profileInput';
import { canAdd, checkMessage, checkReducer, initialCheck, localCheck } from './profileInput';

const run = (actions: CheckAction[]): CheckState => actions.reduce(checkReducer, initialCheck);

describe('validation as you type', () => {
  it('empty input is idle, with no message', () => {
    const st = run([{ type: 'typed', input: '   ', seq: 1 }]);
    expect(st).toEqual({ phase: 'idle', input: '   ' });
    expect(checkMessage(st)).toBeNull();
    expect(canAdd(st)).toBe(false);
  });

  it('spaces inside are refused at once, without asking the server', () => {
    const st = run([{ type: 'typed', input: 'alice smith', seq: 1 }]);
    expect(st.phase).toBe('invalid');
    expect(checkMessage(st)?.tone).toBe('bad');
  });

  it('very long input is refused at once', () => {
    expect(localCheck('a'.repeat(301))?.phase).toBe('invalid');
    expect(localCheck('a'.repeat(300))).toBeNull();
  });

  it('a valid answer shows the canonical username', () => {
    const st = run([
      { type: 'typed', input: 'letterboxd.com/Alice/', seq: 1 },
      { type: 'answer', seq: 1, answer: { valid: true, source: 'letterboxd', username: 'alice' } },
    ]);
    expect(st).toEqual({ phase: 'valid', input: 'letterboxd.com/Alice/', username: 'alice' });
    // well formed is not "found": no green, no claim that the user exists
    expect(checkMessage(st)).toEqual({ text: 'Add “alice” to look them up on Letterboxd.', tone: 'neutral' });
    expect(canAdd(st)).toBe(true);
  });

  it('an invalid answer is one sentence naming what was typed (not the server words again)', () => {
    const st = run([
      { type: 'typed', input: 'https://evil.example/alice/', seq: 1 },
      {
        type: 'answer',
        seq: 1,
        answer: { valid: false, error: { code: 'invalid_username', message: "participant 1: 'x' is not a Letterboxd username" } },
      },
    ]);
    expect(st.phase).toBe('invalid');
    expect(checkMessage(st)?.text).toBe(
      '“https://evil.example/alice/” is not a Letterboxd username or profile link (try alice or https://letterboxd.com/alice/).',
    );
    expect(checkMessage(st)?.text.match(/not a Letterboxd username/g)).toHaveLength(1);
    expect(checkMessage(st)?.tone).toBe('bad');
    expect(canAdd(st)).toBe(false);
  });

  it('drops the answer to an input that has since changed', () => {
    const st = run([
      { type: 'typed', input: 'ali', seq: 1 },
      { type: 'typed', input: 'alice', seq: 2 },
      { type: 'answer', seq: 1, answer: { valid: false, error: { code: 'invalid_username', message: 'no' } } },
    ]);
    expect(st).toEqual({ phase: 'checking', input: 'alice', seq: 2 });
    expect(checkMessage(st)).toEqual({ text: 'Checking…', tone: 'neutral' });
  });

  it('a failed check lets the person add anyway', () => {
    const st = run([
      { type: 'typed', input: 'alice', seq: 1 },
      { type: 'check-failed', seq: 1 },
    ]);
    expect(st.phase).toBe('unknown');
    expect(canAdd(st)).toBe(true);
    const stale = checkReducer({ phase: 'checking', input: 'bob', seq: 3 }, { type: 'check-failed', seq: 2 });
    expect(stale.phase).toBe('checking');
  });

  it('reset clears everything', () => {
    expect(checkReducer({ phase: 'valid', input: 'a', username: 'a' }, { type: 'reset' })).toEqual(initialCheck);
  });
});
