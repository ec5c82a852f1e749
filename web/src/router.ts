// A tiny router: the app has two pages, / and /s/<session id>. Links use
// the History API so the session page's state survives nothing it should not.

export type Route = { page: 'start' } | { page: 'session'; id: string } | { page: 'missing' };

export function routeOf(pathname: string): Route {
  if (pathname === '/' || pathname === '/index.html') return { page: 'start' };
  const m = /^\/s\/([0-9a-f]{32})\/?$/.exec(pathname);
  if (m && m[1]) return { page: 'session', id: m[1] };
  return { page: 'missing' };
}

const listeners = new Set<() => void>();

export function navigate(path: string): void {
  if (path !== window.location.pathname) window.history.pushState(null, '', path);
  listeners.forEach((fn) => fn());
}

export function onNavigate(fn: () => void): () => void {
  listeners.add(fn);
  window.addEventListener('popstate', fn);
  return () => {
    listeners.delete(fn);
    window.removeEventListener('popstate', fn);
  };
}
