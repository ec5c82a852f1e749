// A QR code of a link, drawn as SVG by React (no markup strings, no canvas).
// The generator is loaded on demand so the start page does not carry it.
import { useEffect, useState } from 'react';

export function Qr({ text, label }: { text: string; label: string }) {
  const [drawing, setDrawing] = useState<{ size: number; path: string } | null>(null);

  useEffect(() => {
    let cancelled = false;
    import('qrcode')
      .then((mod) => {
        const qr = (mod.default ?? mod).create(text, { errorCorrectionLevel: 'M' });
        const size = qr.modules.size;
        let path = '';
        for (let r = 0; r < size; r++) {
          for (let c = 0; c < size; c++) {
            if (qr.modules.get(r, c)) path += `M${c + 4} ${r + 4}h1v1h-1z`;
          }
        }
        if (!cancelled) setDrawing({ size: size + 8, path });
      })
      .catch(() => {
        if (!cancelled) setDrawing(null);
      });
    return () => {
      cancelled = true;
    };
  }, [text]);

  if (!drawing) return <div className="qr qr-empty" aria-hidden="true" />;
  return (
    <svg className="qr" viewBox={`0 0 ${drawing.size} ${drawing.size}`} role="img" aria-label={label} shapeRendering="crispEdges">
      <rect width={drawing.size} height={drawing.size} fill="#fff" />
      <path d={drawing.path} fill="#000" />
    </svg>
  );
}
