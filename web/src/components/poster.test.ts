import { describe, expect, it } from 'vitest';
import { initials, posterClass, posterSrc } from './Poster';
import { film } from '../state/fixtures';

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

  it('puts only this server’s poster route in an img src', () => {
    expect(posterSrc({ ...film(7), poster: '/api/v1/films/7/poster' })).toBe('/api/v1/films/7/poster');
    expect(posterSrc(film(7))).toBeNull();
    for (const bad of ['https://a.ltrbxd.com/x.jpg', '//evil.example/p', 'javascript:alert(1)', '/api/v1/films/0/poster', '/api/v1/films/7/poster?x', '']) {
      expect(posterSrc({ ...film(7), poster: bad })).toBeNull();
    }
  });
});
