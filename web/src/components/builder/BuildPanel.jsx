// Validate & build: POST /api/v1/builds streams the build as JSON lines; each product's steps
// show as they happen, then its contract checks and, once published, a link to its page.
import { useEffect, useRef, useState } from 'preact/hooks';
import { apiStream } from '../../api.js';
import { productHref } from '../../router.js';
import { formatNumber, tid } from '../../util.js';
import { ErrorBox } from '../common.jsx';

const STATUS_BADGE = { published: 'badge-ok', skipped: 'badge-muted', failed: 'badge-error', running: 'badge-warn', waiting: 'badge-muted' };

function apply(state, e) {
  const products = { ...state.products };
  const at = (name) => (products[name] = { ...(products[name] || { name, steps: [], status: 'waiting' }) });
  switch (e.event) {
    case 'planned':
      return { ...state, total: e.total };
    case 'step': {
      const p = at(e.product);
      p.status = 'running';
      p.steps = [...p.steps, e.step];
      return { ...state, products };
    }
    case 'finished': {
      const p = at(e.product);
      Object.assign(p, e, { steps: p.steps });
      return { ...state, products };
    }
    case 'done':
      return { ...state, done: e, running: false };
    default:
      return state;
  }
}

function Checks({ product }) {
  if (!product) return null;
  if (!product.checks?.length) {
    return product.checks_total ? (
      <p data-testid="build-checks-summary">
        {product.checks_passed} of {product.checks_total} contract checks passed {product.status === 'skipped' ? 'at the build it is unchanged since' : ''}.
      </p>
    ) : (
      <p class="muted" data-testid="build-checks-summary">
        The port's contract declares no quality checks beyond its columns and types.
      </p>
    );
  }
  return (
    <div class="table-wrap">
      <table class="table compact" data-testid="build-checks">
        <caption class="sr-only">Contract checks of {product.name}</caption>
        <thead>
          <tr>
            <th scope="col">Column</th>
            <th scope="col">Rule</th>
            <th scope="col">Severity</th>
            <th scope="col">Observed</th>
            <th scope="col">Result</th>
          </tr>
        </thead>
        <tbody>
          {product.checks.map((c, i) => (
            <tr key={i} class={c.passed ? undefined : 'row-fail'} data-testid={`build-check-${i}`} data-passed={c.passed ? 'true' : 'false'}>
              <td class="mono">{c.column || <span class="muted">(port)</span>}</td>
              <td class="rule">{c.rule}</td>
              <td>{c.severity}</td>
              <td class="num">{String(c.observed ?? '')}</td>
              <td>
                {c.passed ? <span class="badge badge-ok">✓ pass</span> : <span class="badge badge-error">✗ fail</span>}
                {c.message && <div class="small">{c.message}</div>}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

// target: "domain.product"; blocked: why it cannot build now (unsaved changes…), or ''.
export function BuildPanel({ target, blocked }) {
  const [state, setState] = useState(null);
  const [error, setError] = useState(null);
  const ctrl = useRef(null);
  useEffect(() => () => ctrl.current?.abort(), []);

  const start = async () => {
    ctrl.current?.abort();
    ctrl.current = new AbortController();
    setError(null);
    let s = { running: true, total: 0, products: {}, done: null };
    setState(s);
    try {
      await apiStream('/api/v1/builds', {
        body: { targets: [target] },
        signal: ctrl.current.signal,
        onEvent: (e) => {
          s = apply(s, e);
          setState(s);
        },
      });
      if (!s.done) setError(new Error('The build stream ended before the build said it was done; look at the product page for its state.'));
    } catch (err) {
      if (err.name !== 'AbortError') setError(err);
    } finally {
      setState((x) => (x ? { ...x, running: false } : x));
    }
  };

  const products = state ? Object.values(state.products) : [];
  const finished = products.filter((p) => ['published', 'skipped', 'failed'].includes(p.status)).length;
  const mine = state?.products[target];
  const live = mine && (mine.status === 'published' || mine.status === 'skipped');
  const [domain, name] = target.split('.');
  return (
    <section class="card build" aria-labelledby="build-title" data-testid="build-panel">
      <div class="card-head">
        <h2 id="build-title">
          Validate &amp; build <span class="mono muted">{target}</span>
        </h2>
        <button type="button" class="btn btn-primary" onClick={start} disabled={!!blocked || state?.running} data-testid="build-product">
          {state?.running ? 'Building…' : state ? 'Build again' : 'Validate & build'}
        </button>
      </div>
      {blocked && <p class="muted">{blocked}</p>}
      {!state && !blocked && <p class="muted">Builds the product as its domain: reads its inputs' published versions, runs its models, checks its contract and publishes it.</p>}
      <ErrorBox error={error} title={error?.status === 403 ? 'You may not build this product.' : 'The build could not run.'} testid="build-error" />
      {state && (
        <div data-testid="build-progress" data-running={state.running ? 'true' : 'false'} aria-live="polite">
          <progress max={state.total || 1} value={finished} aria-label="Products finished">
            {finished} of {state.total}
          </progress>
          <span class="small muted">
            {' '}
            {finished} of {state.total || '?'} products finished
          </span>
          <ul class="build-list">
            {products.map((p) => (
              <li key={p.name} data-testid={tid('build-row', p.name)} data-status={p.status} class={p.name === target ? 'build-target' : undefined}>
                <span class="mono">{p.name}</span> <span class={`badge ${STATUS_BADGE[p.status] || 'badge-muted'}`}>{p.status}</span>{' '}
                {p.status === 'running' && (
                  <span class="small" data-testid={tid('build-step', p.name)}>
                    <span class="spinner inline" aria-hidden="true" /> {p.steps[p.steps.length - 1]}
                  </span>
                )}
                {p.status !== 'running' && p.status !== 'waiting' && (
                  <span class="small muted">
                    {p.message}
                    {p.rows != null && ` · ${formatNumber(p.rows)} rows`}
                    {p.duration_ms != null && ` · ${p.duration_ms} ms`}
                    {p.checks_total > 0 && ` · checks ${p.checks_passed}/${p.checks_total}`}
                  </span>
                )}
                {p.name === target && p.steps.length > 0 && (
                  <ol class="build-steps small" data-testid="build-steps">
                    {p.steps.map((s, i) => (
                      <li key={i}>{s}</li>
                    ))}
                  </ol>
                )}
                {p.error && <div class="field-error">{p.error}</div>}
                {(p.warnings || []).length > 0 && (
                  <ul class="small">
                    {p.warnings.map((w, i) => (
                      <li key={i}>{w}</li>
                    ))}
                  </ul>
                )}
              </li>
            ))}
          </ul>
          {state.done && (
            <div data-testid="build-done" data-ok={state.done.ok ? 'true' : 'false'}>
              {state.done.ok ? (
                <p class="alert alert-success">
                  Build <span class="mono">{state.done.build_id}</span> finished in {Number(state.done.seconds || 0).toFixed(2)} s.
                </p>
              ) : (
                <div class="alert alert-error" role="alert">
                  <strong>The build failed.</strong> {state.done.error || (mine?.status === 'failed' ? mine.message : '')}
                  {state.done.hint && <p class="hint small">{state.done.hint}</p>}
                </div>
              )}
              {(state.done.warnings || []).length > 0 && (
                <details class="small">
                  <summary>{state.done.warnings.length} publish-gate warnings</summary>
                  <ul>
                    {state.done.warnings.map((w, i) => (
                      <li key={i}>{w}</li>
                    ))}
                  </ul>
                </details>
              )}
            </div>
          )}
          {mine?.status && mine.status !== 'running' && mine.status !== 'waiting' && (
            <>
              <h3>Contract results</h3>
              <Checks product={mine} />
            </>
          )}
          {state.done && live && (
            <p>
              <a class="btn btn-primary" href={productHref(domain, name)} data-testid="build-product-link">
                Open {target} in the marketplace →
              </a>
            </p>
          )}
        </div>
      )}
    </section>
  );
}
