// SQL console: run a governed query, see masked columns, download CSV, chart it, and save the chart
// to a dashboard.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api } from '../api.js';
import { ChartPanel } from '../components/Chart.jsx';
import { ErrorBox, Loading } from '../components/common.jsx';
import { DataGrid } from '../components/DataGrid.jsx';
import { SaveChartForm } from '../components/SaveChartForm.jsx';
import { href } from '../router.js';
import { deniedProduct, downloadText, toCsv } from '../util.js';

const SQL_KEY = 'canopy.query.sql';
const EXAMPLES = [
  ['Delivery performance', 'select * from logistics.delivery_performance order by month desc limit 100'],
  ['Product catalog', 'select * from sales.products limit 100'],
];

export function Query({ query, me }) {
  const initial = query.get('sql') || sessionStorage.getItem(SQL_KEY) || EXAMPLES[0][1];
  const [sql, setSql] = useState(initial);
  const [limit, setLimit] = useState(1000);
  const [result, setResult] = useState(null);
  const [error, setError] = useState(null);
  const [running, setRunning] = useState(false);
  const [elapsed, setElapsed] = useState(null);
  const [showChart, setShowChart] = useState(false);
  const [ranSql, setRanSql] = useState('');
  const [spec, setSpec] = useState(null);
  const [saving, setSaving] = useState(false);
  const ctrl = useRef(null);

  useEffect(() => {
    const s = query.get('sql');
    if (s) setSql(s);
  }, [query.get('sql')]);
  useEffect(() => {
    try {
      sessionStorage.setItem(SQL_KEY, sql);
    } catch {
      /* ignore */
    }
  }, [sql]);

  const run = async () => {
    if (!sql.trim() || running) return;
    ctrl.current?.abort();
    ctrl.current = new AbortController();
    setRunning(true);
    setError(null);
    const t0 = performance.now();
    try {
      const r = await api('/api/v1/query', { method: 'POST', body: { sql, limit: Number(limit) || 1000 }, signal: ctrl.current.signal });
      setResult(r);
      setRanSql(sql);
      setShowChart(false);
      setSaving(false);
      setSpec(null);
      setElapsed(performance.now() - t0);
    } catch (err) {
      if (err.name !== 'AbortError') {
        setError(err);
        setResult(null);
      }
    } finally {
      setRunning(false);
    }
  };

  const onKeyDown = (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      run();
    }
  };

  const target = error?.status === 403 ? deniedProduct(error) : null;
  const errorTitle =
    error?.status === 403 ? 'Access denied.' : error?.status === 400 ? 'Query refused.' : error?.status === 413 ? 'Too large.' : 'The query failed.';

  return (
    <div class="page" data-testid="page-query">
      <header class="page-head">
        <h1>Query</h1>
        <p class="muted">
          Read-only SQL over the ports you may read, addressed <code>domain.port</code>. Masks and row filters apply as
          everywhere.
        </p>
      </header>
      <section class="card">
        <label class="field" for="sql">
          <span>SQL</span>
          <textarea
            id="sql"
            class="sql"
            rows="7"
            spellcheck={false}
            value={sql}
            onInput={(e) => setSql(e.currentTarget.value)}
            onKeyDown={onKeyDown}
            data-testid="sql-input"
            aria-describedby="sql-help"
          />
        </label>
        <div class="toolbar">
          <button type="button" class="btn btn-primary" onClick={run} disabled={running} data-testid="run-query">
            {running ? 'Running…' : 'Run'}
          </button>
          <span id="sql-help" class="small muted">
            Ctrl+Enter (⌘+Enter) runs
          </span>
          <label class="field field-inline" for="limit">
            <span>Row limit</span>
            <input
              id="limit"
              type="number"
              min="1"
              max="100000"
              value={limit}
              onInput={(e) => setLimit(e.currentTarget.value)}
              data-testid="query-limit"
            />
          </label>
          <span class="spacer" />
          <span class="small muted">Examples:</span>
          {EXAMPLES.map(([label, s], i) => (
            <button key={label} type="button" class="btn btn-small btn-link" onClick={() => setSql(s)} data-testid={`example-${i}`}>
              {label}
            </button>
          ))}
        </div>
      </section>
      {running && <Loading label="Running query…" />}
      <ErrorBox error={error} title={errorTitle} testid="query-error">
        {target && (
          <div class="actions">
            <a class="btn btn-primary" href={href('/access', { product: target })} data-testid="query-request-access">
              Request access to {target}
            </a>
          </div>
        )}
      </ErrorBox>
      {result && (
        <section class="card" aria-label="Result" data-testid="query-result">
          <div class="toolbar">
            <strong data-testid="row-count">
              {result.rows.length.toLocaleString()} {result.rows.length === 1 ? 'row' : 'rows'}
            </strong>
            {result.truncated && (
              <span class="badge badge-warn" data-testid="truncated">
                truncated at the row limit
              </span>
            )}
            {!!result.masked?.length && (
              <span class="badge badge-mask" data-testid="masked-summary">
                masked: {result.masked.join(', ')}
              </span>
            )}
            {elapsed != null && <span class="small muted">{Math.round(elapsed)} ms</span>}
            <span class="spacer" />
            <button
              type="button"
              class="btn btn-small"
              onClick={() => downloadText('canopy-query.csv', toCsv(result.columns, result.rows))}
              data-testid="download-csv"
            >
              Download CSV
            </button>
            <button
              type="button"
              class={`btn btn-small${showChart ? ' btn-selected' : ''}`}
              aria-pressed={showChart}
              onClick={() => setShowChart((v) => !v)}
              disabled={!result.columns.length || !result.rows.length}
              data-testid="make-chart"
            >
              {showChart ? 'Hide chart' : 'Chart'}
            </button>
            {showChart && (
              <button
                type="button"
                class={`btn btn-small${saving ? ' btn-selected' : ''}`}
                aria-pressed={saving}
                onClick={() => setSaving((v) => !v)}
                disabled={!spec}
                data-testid="save-chart"
              >
                Save chart
              </button>
            )}
          </div>
          {showChart && <ChartPanel result={result} onSpec={setSpec} />}
          {showChart && saving && spec && <SaveChartForm me={me} sql={ranSql} spec={spec} onClose={() => setSaving(false)} />}
          <DataGrid result={result} testid="result-grid" caption="Query result" />
        </section>
      )}
    </div>
  );
}
