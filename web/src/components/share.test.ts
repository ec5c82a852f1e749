import { describe, expect, it } from 'vitest';
import { isLoopback, joinLink } from './Share';

describe('join link', () => {
  it('uses the configured public address when there is one', () => {
    expect(joinLink('/s/abc', 'http://127.0.0.1:8080', 'https://films.example.org/fp')).toBe('https://films.example.org/fp/s/abc');
    expect(joinLink('/s/abc', 'http://127.0.0.1:8080', 'https://films.example.org/')).toBe('https://films.example.org/s/abc');
  });

  it('else the address of this page', () => {
    expect(joinLink('/s/abc', 'http://192.168.1.20:8080', null)).toBe('http://192.168.1.20:8080/s/abc');
  });

  it('knows an address only this computer can open', () => {
    for (const u of ['http://127.0.0.1:8080/s/a', 'http://localhost:8080/s/a', 'http://[::1]:8080/s/a', 'http://app.localhost/s/a']) {
      expect(isLoopback(u)).toBe(true);
    }
    for (const u of ['http://192.168.1.20:8080/s/a', 'https://films.example.org/s/a', 'http://localhost.example.org/s/a']) {
      expect(isLoopback(u)).toBe(false);
    }
  });
});
