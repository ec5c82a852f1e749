#!/usr/bin/env node
// The web app's first screen, as the test browser gets it: the JavaScript it
// loads (gzipped size of each file, against the 120 KB budget) and how fast
// the first screen renders on loopback (first contentful paint, and the
// "Watch together!" button visible), over RUNS fresh browser contexts.
//
//   node bench/bench_web.mjs [RUNS]        (default 20; needs ./scripts/build.sh)
//
// Uses the e2e suite's helpers: Debian's Chromium through playwright-core,
// the real `filmpicker serve` (FP_BUILD_DIR, default build/) and web/dist.
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { launch, DESKTOP, PHONE } from '../tests/e2e/lib.mjs';
import { startFake, startServer, WEB_DIST } from '../tests/e2e/servers.mjs';

const RUNS = Number(process.argv[2] || 20);
const BUDGET_KB = 120;

function quantile(xs, q) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

const fake = await startFake({ markup: 'react2025' });
const fp = await startServer(fake, { FILMPICKER_LOG_LEVEL: 'warn' });
const browser = await launch();
try {
  // What the first screen loads: every script response of a cold visit.
  const scripts = new Map();
  {
    const context = await browser.newContext({ baseURL: fp.url, viewport: DESKTOP });
    const page = await context.newPage();
    page.on('response', (r) => {
      const url = new URL(r.url());
      if (url.pathname.endsWith('.js')) scripts.set(url.pathname, r.headers()['content-encoding'] || 'identity');
    });
    await page.goto('/');
    await page.getByRole('button', { name: 'Watch together!' }).waitFor({ state: 'visible' });
    await page.waitForLoadState('networkidle');
    await context.close();
  }
  let totalGz = 0;
  console.log('first screen JavaScript (as served; gzip -9 size computed from web/dist):');
  for (const [path, enc] of scripts) {
    const file = join(WEB_DIST, path);
    const raw = statSync(file).size;
    const gz = gzipSync(readFileSync(file), { level: 9 }).length;
    totalGz += gz;
    console.log(`  ${path}: ${(raw / 1024).toFixed(1)} KB, gzipped ${(gz / 1024).toFixed(1)} KB, sent as ${enc}`);
  }
  console.log(`  total gzipped ${(totalGz / 1024).toFixed(1)} KB (budget ${BUDGET_KB} KB): ${totalGz <= BUDGET_KB * 1024 ? 'within' : 'OVER'}`);

  for (const viewport of [PHONE, DESKTOP]) {
    const fcps = [];
    const walls = [];
    for (let i = 0; i < RUNS; i++) {
      const context = await browser.newContext({ baseURL: fp.url, viewport });
      const page = await context.newPage();
      const t0 = Date.now();
      await page.goto('/');
      await page.getByRole('button', { name: 'Watch together!' }).waitFor({ state: 'visible' });
      walls.push(Date.now() - t0);
      // The paint entry can come a moment after the button is there: wait for it (bounded).
      const fcp = await page.evaluate(
        () =>
          new Promise((res) => {
            new PerformanceObserver((list) => {
              for (const e of list.getEntries()) if (e.name === 'first-contentful-paint') res(e.startTime);
            }).observe({ type: 'paint', buffered: true });
            setTimeout(() => res(null), 5000);
          }),
      );
      if (fcp === null) throw new Error('no first-contentful-paint entry within 5 s');
      fcps.push(fcp);
      await context.close();
    }
    const f = (xs) => `median ${Math.round(quantile(xs, 0.5))} ms, p90 ${Math.round(quantile(xs, 0.9))} ms, max ${Math.round(Math.max(...xs))} ms`;
    console.log(`first screen ${viewport.width}x${viewport.height}, ${RUNS} fresh contexts:`);
    console.log(`  first contentful paint: ${f(fcps)}`);
    console.log(`  button visible after goto: ${f(walls)}`);
  }
} finally {
  await browser.close();
  await fp.stop();
  await fake.stop();
}
