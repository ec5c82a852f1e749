// A film's poster: the image this server serves (fetched from Letterboxd's
// image host, never loaded from there by the browser) over a placeholder of
// the title's initials in a colour of its own, which shows until the image
// has loaded and stays when there is none or it fails.
import { useState } from 'react';
import type { Film } from '../state/types';

export function posterClass(title: string): string {
  let h = 0;
  for (let i = 0; i < title.length; i++) h = (h * 31 + title.charCodeAt(i)) >>> 0;
  return `poster poster-${h % 8}`;
}

export function initials(title: string): string {
  const words = title.split(/\s+/).filter((w) => /\p{L}|\p{N}/u.test(w));
  return words
    .slice(0, 2)
    .map((w) => Array.from(w.replace(/^[^\p{L}\p{N}]+/u, ''))[0] ?? '')
    .join('')
    .toUpperCase();
}

/** Only our own poster route is ever put in an img src. */
export function posterSrc(film: Film): string | null {
  return film.poster && /^\/api\/v1\/films\/[1-9][0-9]*\/poster$/.test(film.poster) ? film.poster : null;
}

export function Poster({ film, big = false }: { film: Film; big?: boolean }) {
  const [failed, setFailed] = useState<string | null>(null);
  const src = posterSrc(film);
  const [loaded, setLoaded] = useState<string | null>(null);
  return (
    <span className={`${posterClass(film.title)}${big ? ' poster-big' : ''}`} aria-hidden="true">
      {initials(film.title)}
      {src && failed !== src && (
        <img
          className={`poster-img${loaded === src ? ' poster-img-loaded' : ''}`}
          src={src}
          alt=""
          loading={big ? 'eager' : 'lazy'}
          decoding="async"
          onLoad={() => setLoaded(src)}
          onError={() => setFailed(src)}
        />
      )}
    </span>
  );
}
