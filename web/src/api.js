// The one place that talks to the Canopy REST API (/api/v1, JSON, bearer token).
import { useEffect, useRef, useState } from 'preact/hooks';

const TOKEN_KEY = 'canopy.token';

// The token lives only in sessionStorage: it is gone when the tab closes.
export const session = {
  token() {
    try {
      return sessionStorage.getItem(TOKEN_KEY);
    } catch {
      return null;
    }
  },
  save(token) {
    sessionStorage.setItem(TOKEN_KEY, token);
  },
  clear() {
    try {
      sessionStorage.removeItem(TOKEN_KEY);
    } catch {
      /* storage disabled: nothing to clear */
    }
  },
};

export class ApiError extends Error {
  constructor(status, code, message, hint) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.hint = hint || '';
  }
}

let unauthorizedHandler = () => {};
// Called when a request made with the session token comes back 401.
export function onUnauthorized(fn) {
  unauthorizedHandler = fn;
}

export const enc = encodeURIComponent;

// api('/api/v1/products') → parsed JSON; throws ApiError with the server's {error:{code,message}}.
// Pass `token` to try a token that is not (yet) the session's (sign-in).
export async function api(path, { method = 'GET', body, signal, token } = {}) {
  const headers = { Accept: 'application/json' };
  const bearer = token ?? session.token();
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      cache: 'no-store',
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network', `Cannot reach the Canopy server (${e.message}).`);
  }
  const text = await res.text();
  let data = null;
  let parsed = false;
  if (text) {
    try {
      data = JSON.parse(text);
      parsed = true;
    } catch {
      parsed = false;
    }
  }
  if (!res.ok) {
    const code = (parsed && data?.error?.code) || String(res.status);
    let message = parsed && data?.error?.message;
    if (!message) message = text && !parsed ? text.slice(0, 300) : `${res.status} ${res.statusText}`;
    const err = new ApiError(res.status, code, message, parsed ? data?.error?.hint : '');
    if (res.status === 401 && token === undefined) unauthorizedHandler(err);
    throw err;
  }
  if (text && !parsed) {
    throw new ApiError(res.status, 'bad_response', `The server answered ${path} with something that is not JSON.`);
  }
  return data;
}

// GET a path and follow it: {data, error, loading, reload}. A null path fetches nothing.
export function useApi(path) {
  const [state, setState] = useState({ data: undefined, error: null, loading: !!path });
  const [tick, setTick] = useState(0);
  const current = useRef(path);
  current.current = path;
  useEffect(() => {
    if (!path) {
      setState({ data: undefined, error: null, loading: false });
      return undefined;
    }
    const ctrl = new AbortController();
    setState((s) => ({ ...s, loading: true, error: null }));
    api(path, { signal: ctrl.signal }).then(
      (data) => {
        if (current.current === path) setState({ data, error: null, loading: false });
      },
      (error) => {
        if (error.name === 'AbortError') return;
        if (current.current === path) setState({ data: undefined, error, loading: false });
      },
    );
    return () => ctrl.abort();
  }, [path, tick]);
  return { ...state, reload: () => setTick((t) => t + 1) };
}

export function useDebounced(value, ms) {
  const [v, setV] = useState(value);
  useEffect(() => {
    const id = setTimeout(() => setV(value), ms);
    return () => clearTimeout(id);
  }, [value, ms]);
  return v;
}
