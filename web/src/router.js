// Hash routing: #/, #/products/{domain}/{name}, #/dashboards/{domain}/{name}, #/access, #/query,
// #/builder[/{domain}/{name}], #/governance.
// The server only has to serve index.html at `/`; no history fallback is needed.
import { useEffect, useState } from 'preact/hooks';

export function parseHash(hash = location.hash) {
  const raw = hash.replace(/^#/, '') || '/';
  const q = raw.indexOf('?');
  const path = q >= 0 ? raw.slice(0, q) : raw;
  const query = new URLSearchParams(q >= 0 ? raw.slice(q + 1) : '');
  let parts;
  try {
    parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  } catch {
    parts = [];
  }
  return { path, parts, query };
}

export function useRoute() {
  const [route, setRoute] = useState(parseHash());
  useEffect(() => {
    const on = () => setRoute(parseHash());
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return route;
}

export function href(path, params) {
  const qs = params ? new URLSearchParams(Object.entries(params).filter(([, v]) => v != null && v !== '')).toString() : '';
  return `#${path}${qs ? `?${qs}` : ''}`;
}

export function productHref(domain, name) {
  return `#/products/${encodeURIComponent(domain)}/${encodeURIComponent(name)}`;
}

export function dashboardHref(domain, name) {
  return `#/dashboards/${encodeURIComponent(domain)}/${encodeURIComponent(name)}`;
}

export function navigate(path, params) {
  location.hash = href(path, params);
}
