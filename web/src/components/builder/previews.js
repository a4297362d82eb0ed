// Live previews of a flow's blocks, and the dry run that tells the output block where its
// columns come from. Both ask the server only after the user pauses (debounced) and keep what
// they got by what they asked, so an edit re-runs only the blocks it changes and those after.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, enc, useDebounced } from '../../api.js';
import { blockInputs, blockProblems, flowProblems, previewFlow, topoOrder, wireFlow } from '../../flow.js';

const PREVIEW_ROWS = 50;
const KEPT = 300;

// The columns (name → type) a block reads: its inputs' previewed columns.
function inputTypes(flow, plan, id) {
  const block = flow.blocks.find((b) => b.id === id);
  const types = {};
  for (const i of blockInputs(block)) {
    const e = plan.get(i);
    if (e?.state === 'ok') for (const c of e.data.columns) types[c.name] ??= c.type;
  }
  return types;
}

// Per block, in flow order: what its preview is (`state`: incomplete — the block has problems;
// waiting — an input has no preview; missing — not asked yet; loading; ok — `data`; error).
// `domain`: the product's, sent with each preview (a file source reads that domain's files, so
// a preview that reads a file is kept by domain too, and by `filesVersion`, which changes when a
// file is uploaded: a replaced file has new rows).
export function planPreviews(flow, cache, domain = '', filesVersion = 0) {
  const plan = new Map();
  for (const b of topoOrder(flow.blocks)) {
    // What an output says of its columns is not previewed (see previewFlow): it may be unfinished.
    const problems = blockProblems(flow, b.type === 'output' ? { ...b, columns: {}, quality: [] } : b);
    if (problems.length) {
      plan.set(b.id, { state: 'incomplete', problems });
      continue;
    }
    const notReady = blockInputs(b).filter((i) => plan.get(i)?.state !== 'ok');
    if (notReady.length) {
      plan.set(b.id, { state: 'waiting', inputs: notReady });
      continue;
    }
    const sub = previewFlow(flow, b.id, (id) => inputTypes(flow, plan, id));
    const readsFile = sub.blocks.some((x) => x.type === 'source' && x.file !== undefined);
    const sig = `${b.id}\n${readsFile ? `${domain}#${filesVersion}\n` : ''}${JSON.stringify(sub)}`;
    const hit = cache.get(sig);
    plan.set(b.id, hit ? { ...hit, sig, sub, domain } : { state: 'missing', sig, sub, domain });
  }
  return plan;
}

// The types of every block's input columns, as the last previews found them.
export function typesFromPlan(flow, plan) {
  return (id) => inputTypes(flow, plan, id);
}

// The body of a preview request; `domain` is sent whenever the builder has one.
function previewBody(sub, block, domain, extra) {
  const body = { flow: sub, block, ...extra };
  if (domain) body.domain = domain;
  return body;
}

export function usePreviews(flow, domain = '', filesVersion = 0) {
  const cache = useRef(new Map());
  const [version, setVersion] = useState(0);
  const [retries, setRetries] = useState(0);
  const plan = useMemo(() => planPreviews(flow, cache.current, domain, filesVersion), [flow, version, domain, filesVersion]);
  const settled = useDebounced(flow, 300);

  useEffect(() => {
    const ctrl = new AbortController();
    (async () => {
      // One block at a time, inputs first: a block's preview needs its inputs' column types.
      for (let guard = 0; guard < 500; guard++) {
        const next = [...planPreviews(settled, cache.current, domain, filesVersion).values()].find((e) => e.state === 'missing');
        if (!next) return;
        const block = next.sig.slice(0, next.sig.indexOf('\n'));
        cache.current.set(next.sig, { state: 'loading' });
        setVersion((v) => v + 1);
        try {
          const data = await api('/api/v1/builder/preview', {
            method: 'POST',
            // The rows and their count; the column profile (every column over every row,
            // the costly part) is asked for when its tab is opened (useProfile).
            body: previewBody(next.sub, block, domain, { limit: PREVIEW_ROWS, profile: false }),
            signal: ctrl.signal,
          });
          cache.current.set(next.sig, { state: 'ok', data });
        } catch (error) {
          if (error.name === 'AbortError') {
            cache.current.delete(next.sig);
            return;
          }
          cache.current.set(next.sig, { state: 'error', error });
        }
        while (cache.current.size > KEPT) cache.current.delete(cache.current.keys().next().value);
        setVersion((v) => v + 1);
      }
    })();
    return () => ctrl.abort();
  }, [settled, retries, domain, filesVersion]);

  const retry = (sig) => {
    cache.current.delete(sig);
    setVersion((v) => v + 1);
    setRetries((r) => r + 1);
  };
  return { plan, retry };
}

// Where a flow is saved: a new product is POSTed to its domain, one opened from the server is
// PUT in its place.
export function savePath(domain, existing) {
  const base = `/api/v1/domains/${enc(domain)}/products`;
  return existing ? { method: 'PUT', path: `${base}/${enc(existing)}` } : { method: 'POST', path: base };
}

// A dry run of the whole flow when `wanted` (the output block is open), for the columns of each
// port with their classification from lineage. {state: idle|incomplete|loading|ok|error, data, error}.
export function useDryRun({ flow, plan, domain, existing, wanted }) {
  const [result, setResult] = useState({ key: '', state: 'idle' });
  // What is said of the ports' columns (classifications, descriptions, checks) changes nothing
  // of their lineage, and may be unfinished while the lineage is read for it.
  const bare = { ...flow, blocks: flow.blocks.map((b) => (b.type === 'output' ? { ...b, columns: {}, quality: [] } : b)) };
  const problems = flowProblems(bare);
  const ready = wanted && domain && !problems.length;
  const body = ready ? { flow: wireFlow(bare, typesFromPlan(flow, plan)), dry_run: true } : null;
  const key = body ? JSON.stringify({ domain, existing: existing || '', body }) : '';
  const settled = useDebounced(key, 500);

  useEffect(() => {
    if (!settled) return undefined;
    const asked = JSON.parse(settled);
    const ctrl = new AbortController();
    const { method, path } = savePath(asked.domain, asked.existing);
    setResult((r) => ({ key: settled, state: 'loading', last: r.data || r.last }));
    api(path, { method, body: asked.body, signal: ctrl.signal }).then(
      (data) => setResult({ key: settled, state: 'ok', data }),
      (error) => {
        if (error.name !== 'AbortError') setResult((r) => ({ key: settled, state: 'error', error, last: r.last }));
      },
    );
    return () => ctrl.abort();
  }, [settled]);

  // `previous`: the last lineage read, shown while a newer one is on its way.
  const previous = result.data || result.last;
  if (!wanted) return { state: 'idle' };
  if (!domain) return { state: 'nodomain' };
  if (problems.length) return { state: 'incomplete', problems, previous };
  if (result.key !== key) return { state: 'loading', previous };
  return { ...result, previous };
}

// The column profile of a previewed block, asked for once `wanted` (its tab is open) and kept
// until the block's preview changes. {state: idle|loading|ok|error, profile, sample, error}:
// sample, when set: the distinct counts, min, max and histograms are from that many first rows.
export function useProfile(entry, wanted) {
  const [result, setResult] = useState({ sig: '', state: 'idle' });
  const sig = entry?.state === 'ok' ? entry.sig : '';
  useEffect(() => {
    if (!wanted || !sig || (result.sig === sig && result.state !== 'idle')) return undefined;
    const ctrl = new AbortController();
    const block = sig.slice(0, sig.indexOf('\n'));
    setResult({ sig, state: 'loading' });
    api('/api/v1/builder/preview', {
      method: 'POST',
      body: previewBody(entry.sub, block, entry.domain, { limit: 0, profile: true }),
      signal: ctrl.signal,
    }).then(
      (data) => setResult({ sig, state: 'ok', profile: data.profile, sample: data.profile_sample }),
      (error) => {
        // Left before it came: asked again when the tab is opened again.
        setResult(error.name === 'AbortError' ? { sig: '', state: 'idle' } : { sig, state: 'error', error });
      },
    );
    return () => ctrl.abort();
  }, [sig, wanted]);
  if (!wanted || result.sig !== sig) return { state: wanted ? 'loading' : 'idle' };
  return result;
}
