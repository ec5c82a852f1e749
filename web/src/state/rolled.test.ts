import { describe, expect, it } from 'vitest';
import { ACTION_LABEL, rolledActions, rolledPhase, tonightLine } from './rolled';
import { film } from './fixtures';

const labels = (p: Parameters<typeof rolledPhase>[0]) => rolledActions(rolledPhase(p)).map((a) => ACTION_LABEL[a]);

describe('rolled film screen', () => {
  it('offers nothing mid-shuffle, whatever else is true', () => {
    expect(labels({ shuffling: true, confirming: false, watched: false })).toEqual([]);
    expect(labels({ shuffling: true, confirming: true, watched: true })).toEqual([]);
  });

  it('the pick, the question, after watched', () => {
    expect(labels({ shuffling: false, confirming: false, watched: false })).toEqual([
      'We will watch it!',
      'Copy title',
      'Share',
      'Roll again',
      'Back to the list',
    ]);
    expect(labels({ shuffling: false, confirming: true, watched: false })).toEqual(['Yes, take it off', 'Not yet']);
    expect(labels({ shuffling: false, confirming: true, watched: true })).toEqual(['Put it back', 'Copy title', 'Share', 'Back to the list']);
  });

  it('the shared line names the film and links it', () => {
    expect(tonightLine({ ...film(1, 'Heat', 1995), url: 'https://letterboxd.com/film/heat-1995/' })).toBe(
      'Tonight: Heat (1995) — https://letterboxd.com/film/heat-1995/',
    );
    expect(tonightLine({ ...film(2, 'Untitled', null), url: null })).toBe('Tonight: Untitled');
  });
});
