// The join link of a session: share (the phone's share sheet when there is
// one, else copy), the link itself, and its QR code.
import { useId } from 'react';
import { publicBase } from '../api';
import { copyText } from '../clipboard';
import { Qr } from './Qr';

/** The join link: on the configured public address, else on this page's. */
export function joinLink(joinUrl: string, origin: string, publicUrl: string | null): string {
  return publicUrl ? publicUrl.replace(/\/+$/, '') + joinUrl : new URL(joinUrl, origin).href;
}

/** A link on this computer's own address only opens on this computer. */
export function isLoopback(url: string): boolean {
  const host = new URL(url).hostname;
  return host === 'localhost' || host === '[::1]' || host === '::1' || /^127\./.test(host) || host.endsWith('.localhost');
}

export function Share({ joinUrl, announce }: { joinUrl: string; announce: (t: string) => void }) {
  const url = joinLink(joinUrl, window.location.origin, publicBase());
  const linkId = useId();
  const local = isLoopback(url);

  async function share() {
    const nav = navigator as Navigator & { share?: (d: ShareData) => Promise<void> };
    if (typeof nav.share === 'function') {
      try {
        await nav.share({ title: 'FilmPicker', text: 'Help us pick a film tonight:', url });
        return;
      } catch (e) {
        if (e instanceof DOMException && e.name === 'AbortError') return;
      }
    }
    announce((await copyText(url)) ? 'Link copied: send it to your friends.' : 'Could not copy: select the link and copy it.');
  }

  return (
    <section className="panel share" aria-labelledby="share-title">
      <h2 id="share-title">Invite friends</h2>
      <p>Friends open this link on their phones to add themselves.</p>
      {local && (
        <p className="note" id={`${linkId}-local`}>
          This address only works on this computer. Phones can’t open it: ask whoever runs FilmPicker for its network
          address, and open this page there.
        </p>
      )}
      <div className="share-row">
        <label htmlFor={linkId} className="visually-hidden">
          Join link
        </label>
        <input id={linkId} className="share-link" type="text" readOnly value={url} onFocus={(e) => e.currentTarget.select()} />
        <button type="button" className="btn" onClick={share}>
          Share link
        </button>
      </div>
      <Qr text={url} label="QR code of the join link" />
    </section>
  );
}
