// Vite build of the FilmPicker web app into web/dist: index.html at the top,
// content-hashed JS and CSS under dist/assets/ (served with long-lived
// caching). Absolute base '/' because the app is also served at /s/<id>.
// No inline scripts or styles end up in the output (the server's CSP forbids
// them): the module preload polyfill is off and every style is a CSS file.
import { defineConfig } from 'vitest/config';
import react from '@vitejs/plugin-react';

export default defineConfig({
  base: '/',
  plugins: [react()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    assetsDir: 'assets',
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    sourcemap: false,
    target: 'es2020',
  },
  server: {
    // `npm run dev` next to a running `filmpicker serve` on :8080.
    proxy: { '/api': 'http://127.0.0.1:8080' },
  },
  test: {
    environment: 'node',
    include: ['src/**/*.test.ts'],
  },
});
