import { describe, expect, it } from 'vitest';
import { initialPages, mergeFilms, pagesReducer, pagesView } from './filmPages';
import type { PagesAction, PagesState } from './filmPages';
import { film } from './fixtures';
import type { Film, Results } from './types';

const range = (from: number, to: number): Film[] => Array.from({ length: to - from + 1 }, (_, i) => film(from + i));
const results = (common: Film[], count: number): Results => ({ participants: 2, failed: 0, common_count: count, common, most: [], pool: count });
const reduce = (actions: PagesAction[], from: PagesState = initialPages(1)) => actions.reduce(pagesReducer, from);

describe('film pages', () => {
  it('shows the first page from the session and says how many more there are', () => {
    const v = pagesView(initialPages(1), results(range(1, 100), 800), []);
    expect(v.films).toHaveLength(100);
    expect(v).toMatchObject({ total: 800, nextOffset: 100, hasMore: true, searching: false });
  });

  it('appends later pages in order, without duplicates, up to the last film', () => {
    const r = results(range(1, 100), 800);
    let st = initialPages(1);
    for (let offset = 100; offset < 800; offset += 100) {
      const v = pagesView(st, r, []);
      expect(v.nextOffset).toBe(offset);
      // the server may repeat a film at a page's edge: it is shown once
      st = pagesReducer(st, { type: 'loaded', gen: 1, q: '', page: { total: 800, offset, films: range(offset, offset + 100) } });
    }
    const v = pagesView(st, r, []);
    expect(v.films.map((f) => f.id)).toEqual(range(1, 800).map((f) => f.id));
    expect(v.hasMore).toBe(false);
  });

  it('drops answers for older results or another search', () => {
    const st = reduce([{ type: 'search', q: 'heat' }]);
    expect(st.status).toBe('loading');
    const page = { total: 1, offset: 0, films: [film(7, 'Heat')] };
    expect(pagesReducer(st, { type: 'loaded', gen: 1, q: 'hea', page })).toBe(st);
    expect(pagesReducer(st, { type: 'loaded', gen: 0, q: 'heat', page })).toBe(st);
    const done = pagesReducer(st, { type: 'loaded', gen: 1, q: 'heat', page });
    expect(pagesView(done, results(range(1, 100), 800), [])).toMatchObject({ total: 1, hasMore: false, searching: true });
  });

  it('a search replaces the list; clearing it brings back the pages loaded before', () => {
    const r = results(range(1, 100), 300);
    const st = reduce([
      { type: 'loaded', gen: 1, q: '', page: { total: 300, offset: 100, films: range(101, 200) } },
      { type: 'search', q: '  film 2 ' },
      { type: 'loaded', gen: 1, q: 'film 2', page: { total: 111, offset: 0, films: [film(2), ...range(20, 29)] } },
    ]);
    expect(st.q).toBe('film 2');
    const v = pagesView(st, r, []);
    expect(v.films.map((f) => f.id)).toEqual([2, ...range(20, 29).map((f) => f.id)]);
    expect(v).toMatchObject({ total: 111, nextOffset: 11, hasMore: true });
    const back = pagesReducer(st, { type: 'search', q: '' });
    expect(pagesView(back, r, []).films).toHaveLength(200);
  });

  it('a film watched here leaves the list and the offsets, as on the server', () => {
    const st = reduce([{ type: 'loaded', gen: 1, q: '', page: { total: 300, offset: 100, films: range(101, 200) } }]);
    // film 150 was watched: the server's list is one shorter and page 1 is unchanged
    const v = pagesView(st, results(range(1, 100), 299), [150]);
    expect(v.films.some((f) => f.id === 150)).toBe(false);
    expect(v).toMatchObject({ total: 299, nextOffset: 199, hasMore: true });
  });

  it('a new result set starts over', () => {
    const st = reduce([
      { type: 'loaded', gen: 1, q: '', page: { total: 300, offset: 100, films: range(101, 200) } },
      { type: 'reset', gen: 2 },
    ]);
    expect(st).toEqual(initialPages(2));
    expect(pagesReducer(st, { type: 'reset', gen: 2 })).toBe(st);
  });

  it('a failed request is said, and only for the list shown', () => {
    const st = reduce([{ type: 'search', q: 'x' }]);
    expect(pagesReducer(st, { type: 'failed', gen: 1, q: 'y' })).toBe(st);
    expect(pagesReducer(st, { type: 'failed', gen: 1, q: 'x' }).status).toBe('error');
  });

  it('mergeFilms keeps the first of each id, in order', () => {
    expect(mergeFilms([film(1), film(2)], [film(2), film(3), film(1), film(4)]).map((f) => f.id)).toEqual([1, 2, 3, 4]);
  });
});
