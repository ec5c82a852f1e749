import { describe, expect, it } from 'vitest';
import { initials, posterClass } from './FilmCard';

describe('poster placeholder', () => {
  it.each([
    ['Bridge 2: The Northern Funeral', 'B2'],
    ['Frontier & Orchard', 'FO'],
    ['“Quoted” title', 'QT'],
    ['Ghost', 'G'],
    ['Сталкер', 'С'],
    ['<img src=x onerror=alert(1)>', 'IS'],
    ['', ''],
  ])('%s -> %s', (title, want) => {
    expect(initials(title)).toBe(want);
  });

  it('gives the same colour to the same title, one of eight', () => {
    expect(posterClass('Ghost')).toBe(posterClass('Ghost'));
    expect(posterClass('Ghost')).toMatch(/^poster poster-[0-7]$/);
  });
});
