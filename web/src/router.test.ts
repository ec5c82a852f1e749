import { describe, expect, it } from 'vitest';
import { routeOf } from './router';

describe('routeOf', () => {
  it.each([
    ['/', { page: 'start' }],
    ['/index.html', { page: 'start' }],
    ['/s/0123456789abcdef0123456789abcdef', { page: 'session', id: '0123456789abcdef0123456789abcdef' }],
    ['/s/0123456789abcdef0123456789abcdef/', { page: 'session', id: '0123456789abcdef0123456789abcdef' }],
    ['/s/0123456789ABCDEF0123456789abcdef', { page: 'missing' }],
    ['/s/short', { page: 'missing' }],
    ['/s/', { page: 'missing' }],
    ['/elsewhere', { page: 'missing' }],
  ] as const)('%s', (path, route) => {
    expect(routeOf(path)).toEqual(route);
  });
});
