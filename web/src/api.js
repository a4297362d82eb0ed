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
  // diagnostics: the server's error.diagnostics when it sends them ({severity, file, line, column,
  // message, hint}: a save the mesh would not validate).
  constructor(status, code, message, hint, diagnostics) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.hint = hint || '';
    this.diagnostics = Array.isArray(diagnostics) ? diagnostics : [];
  }
}

let unauthorizedHandler = () => {};
// Called when a request made with the session token comes back 401.
export function onUnauthorized(fn) {
  unauthorizedHandler = fn;
}

export const enc = encodeURIComponent;

// One fetch with the session's bearer token (or `token`); a network failure is an ApiError.
function request(path, { method = 'GET', body, signal, token, accept = 'application/json' }) {
  const headers = { Accept: accept };
  const bearer = token ?? session.token();
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  return fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
    cache: 'no-store',
  }).catch((e) => {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network', `Cannot reach the Canopy server (${e.message}).`);
  });
}

function parseJson(text) {
  if (!text) return { data: null, parsed: false };
  try {
    return { data: JSON.parse(text), parsed: true };
  } catch {
    return { data: null, parsed: false };
  }
}

// The ApiError of a response that is not ok, from its {error:{code,message,hint,diagnostics}}.
function failure(res, text, token) {
  const { data, parsed } = parseJson(text);
  const code = (parsed && data?.error?.code) || String(res.status);
  let message = parsed && data?.error?.message;
  if (!message) message = text && !parsed ? text.slice(0, 300) : `${res.status} ${res.statusText}`;
  const err = new ApiError(res.status, code, message, parsed ? data?.error?.hint : '', parsed ? data?.error?.diagnostics : null);
  if (res.status === 401 && token === undefined) unauthorizedHandler(err);
  return err;
}

// api('/api/v1/products') → parsed JSON; throws ApiError with the server's {error:{code,message}}.
// Pass `token` to try a token that is not (yet) the session's (sign-in).
export async function api(path, { method = 'GET', body, signal, token } = {}) {
  const res = await request(path, { method, body, signal, token });
  const text = await res.text();
  if (!res.ok) throw failure(res, text, token);
  const { data, parsed } = parseJson(text);
  if (text && !parsed) {
    throw new ApiError(res.status, 'bad_response', `The server answered ${path} with something that is not JSON.`);
  }
  return data;
}

// POST a file's raw bytes (application/octet-stream) → parsed JSON; throws ApiError as `api` does.
export async function upload(path, file, { signal } = {}) {
  const headers = { Accept: 'application/json', 'Content-Type': 'application/octet-stream' };
  const bearer = session.token();
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  const res = await fetch(path, { method: 'POST', headers, body: file, signal, cache: 'no-store' }).catch((e) => {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network', `Cannot reach the Canopy server (${e.message}).`);
  });
  const text = await res.text();
  if (!res.ok) throw failure(res, text);
  const { data, parsed } = parseJson(text);
  if (text && !parsed) throw new ApiError(res.status, 'bad_response', `The server answered ${path} with something that is not JSON.`);
  return data;
}

// A streamed answer of JSON lines (application/x-ndjson): `onEvent` gets each object as its
// line arrives. A refusal before the stream starts throws ApiError, as `api` does.
export async function apiStream(path, { method = 'POST', body, signal, onEvent }) {
  const res = await request(path, { method, body, signal, accept: 'application/x-ndjson' });
  if (!res.ok) throw failure(res, await res.text());
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let pending = '';
  const emit = (line) => {
    if (!line.trim()) return;
    let event;
    try {
      event = JSON.parse(line);
    } catch {
      throw new ApiError(res.status, 'bad_response', `The server sent a line that is not JSON: ${line.slice(0, 200)}`);
    }
    onEvent(event);
  };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    pending += decoder.decode(value, { stream: true });
    let nl;
    while ((nl = pending.indexOf('\n')) >= 0) {
      emit(pending.slice(0, nl));
      pending = pending.slice(nl + 1);
    }
  }
  emit(pending + decoder.decode());
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
