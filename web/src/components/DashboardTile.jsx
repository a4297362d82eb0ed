// One tile of a dashboard: its chart run as the viewer (grants, masks, row filters), drawn with
// its Vega-Lite spec or as a table; or, when the viewer may not read a port it needs, why not and
// how to ask for access.
import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, enc } from '../api.js';
import { dashboardPath, positionOf, tileSpec } from '../dashboards.js';
import { RequestAccessForm } from '../pages/Product.jsx';
import { href, productHref } from '../router.js';
import { deniedProduct, tid } from '../util.js';
import { VegaView } from './Chart.jsx';
import { ErrorBox, Loading, LockIcon, Notice } from './common.jsx';
import { DataGrid } from './DataGrid.jsx';

export const ROW_PX = 360;
export const GAP_PX = 16;
const CHROME_PX = 112; // the tile's head and badges above the chart

function productLink(address) {
  const dot = (address || '').indexOf('.');
  return dot > 0 ? productHref(address.slice(0, dot), address.slice(dot + 1)) : '#/';
}

// Why the tile is empty and what to do: the access message, its hint, a request form.
function Denied({ chart, access, request }) {
  const product = access.product;
  const sent = request.sent[product];
  const open = request.open === `${chart.name}:${product}`;
  return (
    <div class="tile-denied" data-testid={tid('tile-denied', chart.name)} data-product={product}>
      <p class="tile-denied-message">
        <LockIcon /> <span data-testid={tid('tile-denied-message', chart.name)}>{access.message}</span>
      </p>
      {access.hint && (
        <p class="hint small" data-testid={tid('tile-denied-hint', chart.name)}>
          How to get access: {access.hint}
        </p>
      )}
      {product && !sent && !open && (
        <div class="actions">
          <button
            type="button"
            class="btn btn-primary btn-small"
            onClick={() => request.setOpen(`${chart.name}:${product}`)}
            data-testid={tid('tile-request-access', chart.name)}
          >
            Request access to {product}
          </button>
          <a class="btn btn-link btn-small" href={productLink(product)} data-testid={tid('tile-product-link', chart.name)}>
            Open {product}
          </a>
        </div>
      )}
      {open && !sent && (
        <RequestAccessForm product={product} onDone={(r) => request.onSent(product, r)} onCancel={() => request.setOpen(null)} />
      )}
      {sent && (
        <Notice kind="success" testid={tid('tile-request-sent', chart.name)}>
          You asked for {sent.product}: request #{sent.id} is <strong>{sent.status}</strong>; its owners decide. Follow it
          under{' '}
          <a href={href('/access', { product })} data-testid={tid('tile-request-status', chart.name)}>
            Access
          </a>
          .
        </Notice>
      )}
    </div>
  );
}

// chart: {name, title, sql, vegaLite, position, ports, access}; filters: the applied filter values;
// run: bumps to run again; edit: the editing controls (null when not editing).
export function DashboardTile({ dashboard, chart, filters, run, request, onResult, edit }) {
  const access = chart.access || { can_read: true };
  const [state, setState] = useState({ status: access.can_read ? 'loading' : 'denied' });
  const [view, setView] = useState(chart.vegaLite ? 'chart' : 'table');
  const filterKey = JSON.stringify(filters || {});
  const pos = positionOf(chart);

  useEffect(() => {
    if (!access.can_read) {
      setState({ status: 'denied' });
      return undefined;
    }
    const ctrl = new AbortController();
    setState((s) => ({ ...s, status: 'loading', error: null }));
    api(`${dashboardPath(dashboard.domain, dashboard.name)}/charts/${enc(chart.name)}`, {
      method: 'POST',
      body: { filters: filters || {} },
      signal: ctrl.signal,
    }).then(
      (result) => {
        setState({ status: 'ok', result });
        onResult?.(chart.name, result);
      },
      (error) => {
        if (error.name === 'AbortError') return;
        setState({ status: error.status === 403 ? 'refused' : 'error', error });
      },
    );
    return () => ctrl.abort();
  }, [dashboard.domain, dashboard.name, chart.name, access.can_read, filterKey, run]);

  const result = state.result;
  const masked = useMemo(() => (result?.columns || []).filter((c) => c.masked).map((c) => c.name), [result]);
  const gridResult = useMemo(() => (result ? { ...result, masked } : null), [result, masked]);
  const chartHeight = Math.max(120, ROW_PX * pos.height + GAP_PX * (pos.height - 1) - CHROME_PX);
  const spec = useMemo(
    () => (result && chart.vegaLite ? tileSpec(chart.vegaLite, result, chartHeight) : null),
    [result, chart.vegaLite, chartHeight],
  );
  const appliedHere = (dashboard.filters || []).filter(
    (f) => filters?.[f.name] && (result?.columns || []).some((c) => c.name === f.column),
  );
  // A 403 while running (the grants changed since the page loaded): the same explanation.
  const refusal =
    state.status === 'refused'
      ? { can_read: false, message: state.error.message, hint: state.error.hint, product: deniedProduct(state.error) }
      : null;

  return (
    <article
      class={`dash-tile card${edit ? ' dash-tile-editing' : ''}`}
      style={{ gridColumn: `${pos.x + 1} / span ${pos.width}`, gridRow: `${pos.y + 1} / span ${pos.height}` }}
      data-testid={tid('tile', chart.name)}
      data-state={state.status}
      data-masked={masked.length ? 'true' : 'false'}
      data-rows={result ? (result.rows || []).length : undefined}
      data-x={pos.x}
      data-y={pos.y}
      data-width={pos.width}
      data-height={pos.height}
      aria-labelledby={tid('tile-title', chart.name)}
    >
      <header class="dash-tile-head">
        {edit ? (
          <label class="field field-inline grow" for={tid('tile-title-input', chart.name)}>
            <span class="sr-only">Title of {chart.name}</span>
            <input
              id={tid('tile-title-input', chart.name)}
              type="text"
              value={chart.title}
              onInput={(e) => edit.setTitle(e.currentTarget.value)}
              data-testid={tid('tile-title-input', chart.name)}
            />
          </label>
        ) : (
          <h2 class="dash-tile-title" id={tid('tile-title', chart.name)} data-testid={tid('tile-title', chart.name)}>
            {chart.title || chart.name}
          </h2>
        )}
        {!edit && state.status === 'ok' && (
          <div class="dash-tile-tools">
            {chart.vegaLite && (
              <button
                type="button"
                class="btn btn-small btn-link"
                onClick={() => setView((v) => (v === 'chart' ? 'table' : 'chart'))}
                aria-pressed={view === 'table'}
                data-testid={tid('tile-toggle', chart.name)}
              >
                {view === 'chart' ? 'Data' : 'Chart'}
              </button>
            )}
            <a class="btn btn-small btn-link" href={href('/query', { sql: chart.sql })} data-testid={tid('tile-sql', chart.name)} title="Open this chart's query in the console">
              SQL
            </a>
          </div>
        )}
      </header>
      {edit && (
        <div class="dash-tile-edit" role="group" aria-label={`Move or resize ${chart.title || chart.name}`}>
          <span class="small muted mono" data-testid={tid('tile-position', chart.name)}>
            x {pos.x} · y {pos.y} · {pos.width}×{pos.height}
          </span>
          <button type="button" class="btn btn-small" onClick={() => edit.move(-1, 0)} disabled={pos.x === 0} aria-label="Move left" data-testid={tid('tile-left', chart.name)}>
            ←
          </button>
          <button type="button" class="btn btn-small" onClick={() => edit.move(0, -1)} disabled={pos.y === 0} aria-label="Move up" data-testid={tid('tile-up', chart.name)}>
            ↑
          </button>
          <button type="button" class="btn btn-small" onClick={() => edit.move(0, 1)} disabled={pos.y >= 99} aria-label="Move down" data-testid={tid('tile-down', chart.name)}>
            ↓
          </button>
          <button
            type="button"
            class="btn btn-small"
            onClick={() => edit.move(1, 0)}
            disabled={pos.x + pos.width >= edit.columns}
            aria-label="Move right"
            data-testid={tid('tile-right', chart.name)}
          >
            →
          </button>
          <span class="small muted">width</span>
          <button type="button" class="btn btn-small" onClick={() => edit.resize(-1, 0)} disabled={pos.width <= 1} aria-label="Narrower" data-testid={tid('tile-narrower', chart.name)}>
            −
          </button>
          <button
            type="button"
            class="btn btn-small"
            onClick={() => edit.resize(1, 0)}
            disabled={pos.x + pos.width >= edit.columns}
            aria-label="Wider"
            data-testid={tid('tile-wider', chart.name)}
          >
            +
          </button>
          <span class="small muted">height</span>
          <button type="button" class="btn btn-small" onClick={() => edit.resize(0, -1)} disabled={pos.height <= 1} aria-label="Shorter" data-testid={tid('tile-shorter', chart.name)}>
            −
          </button>
          <button type="button" class="btn btn-small" onClick={() => edit.resize(0, 1)} disabled={pos.height >= 4} aria-label="Taller" data-testid={tid('tile-taller', chart.name)}>
            +
          </button>
          <span class="spacer" />
          <button type="button" class="btn btn-small btn-danger" onClick={edit.remove} data-testid={tid('tile-remove', chart.name)}>
            Remove
          </button>
        </div>
      )}
      <div class="badges dash-tile-badges">
        {masked.length > 0 && (
          <span
            class="badge badge-mask"
            data-testid={tid('tile-masked', chart.name)}
            title="Masked for you by governance policy: you see hashes or blanks instead of the values"
          >
            <span aria-hidden="true">◐ </span>masked for you: {masked.join(', ')}
          </span>
        )}
        {!!result?.filtered?.length && (
          <span class="badge badge-warn" data-testid={tid('tile-row-filter', chart.name)} title={`Row filters apply on ${result.filtered.join(', ')}`}>
            row filter: you see some rows
          </span>
        )}
        {appliedHere.map((f) => (
          <span key={f.name} class="badge badge-muted" data-testid={tid('tile-filter', chart.name, f.name)}>
            {f.label || f.name} = {filters[f.name]}
          </span>
        ))}
        {result?.truncated && <span class="badge badge-warn">truncated</span>}
        {(chart.ports || []).map((p) => (
          <span key={p} class="chip mono" title="Reads this port">
            {p}
          </span>
        ))}
      </div>
      <div class="dash-tile-body">
        {state.status === 'denied' && <Denied chart={chart} access={access} request={request} />}
        {refusal && <Denied chart={chart} access={refusal} request={request} />}
        {state.status === 'error' && <ErrorBox error={state.error} title="The chart's query failed." testid={tid('tile-error', chart.name)} />}
        {state.status === 'loading' && !result && <Loading label="Running as you…" />}
        {result && state.status !== 'refused' && state.status !== 'error' && (
          <>
            {spec && view === 'chart' ? (
              <VegaView spec={spec} testid={tid('tile-chart', chart.name)} label={`${chart.title || chart.name}: chart of ${result.rows.length} rows`} />
            ) : (
              <DataGrid result={gridResult} testid={tid('tile-grid', chart.name)} caption={chart.title || chart.name} />
            )}
          </>
        )}
      </div>
    </article>
  );
}
