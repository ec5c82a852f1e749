// The page frame and the choice of page by URL.
import { Suspense, lazy, useEffect, useState } from 'react';
import { navigate, onNavigate, routeOf } from './router';
import { Start } from './screens/Start';

const SessionPage = lazy(() => import('./screens/SessionPage'));

export function App() {
  const [path, setPath] = useState(() => window.location.pathname);
  useEffect(() => onNavigate(() => setPath(window.location.pathname)), []);
  const route = routeOf(path);

  return (
    <>
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <a
          className="brand"
          href="/"
          onClick={(e) => {
            if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey) return;
            e.preventDefault();
            navigate('/');
          }}
        >
          <span className="brand-mark" aria-hidden="true" />
          FilmPicker
        </a>
      </header>
      <main id="main" tabIndex={-1}>
        {route.page === 'start' && <Start />}
        {route.page === 'session' && (
          <Suspense fallback={<p className="page-loading">Opening the session…</p>}>
            <SessionPage key={route.id} id={route.id} />
          </Suspense>
        )}
        {route.page === 'missing' && (
          <section className="panel narrow" aria-labelledby="missing-title">
            <h1 id="missing-title">Page not found</h1>
            <p>There is no page at this address. Maybe the link was cut short?</p>
            <p>
              <a href="/">Go to the start page</a>
            </p>
          </section>
        )}
      </main>
    </>
  );
}
