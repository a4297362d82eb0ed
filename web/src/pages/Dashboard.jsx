// One dashboard: its header, filters, and tiles in the layout grid, each run as the viewer.
// Members of the dashboard's domain can retitle, move, resize and remove tiles, change its
// description, tags, status, visibility and filters, then save.
import { useCallback, useMemo, useState } from 'preact/hooks';
import { useApi } from '../api.js';
import { ErrorBox, Loading, Notice, StatusBadge } from '../components/common.jsx';
import { DashboardTile, ROW_PX } from '../components/DashboardTile.jsx';
import { SaveProblem } from '../components/SaveProblem.jsx';
import { dashboardBody, dashboardPath, draftChanges, overlaps, positionOf, saveDashboard } from '../dashboards.js';
import { tid } from '../util.js';

const byPosition = (a, b) => {
  const p = positionOf(a);
  const q = positionOf(b);
  return p.y - q.y || p.x - q.x;
};

function Filters({ filters, values, setValues, applied, onApply, seen }) {
  if (!filters?.length) return null;
  const dirty = JSON.stringify(values) !== JSON.stringify(applied);
  return (
    <form
      class="search-bar dash-filters"
      onSubmit={(e) => {
        e.preventDefault();
        onApply(values);
      }}
      aria-label="Dashboard filters"
      data-testid="dashboard-filters"
    >
      {filters.map((f) => {
        const options = [...(seen[f.column] || [])].sort();
        const id = tid('filter', f.name);
        return (
          <label key={f.name} class="field" for={id}>
            <span>{f.label || f.name}</span>
            {options.length > 0 && options.length <= 50 ? (
              <select
                id={id}
                value={values[f.name] || ''}
                onChange={(e) => setValues({ ...values, [f.name]: e.currentTarget.value })}
                data-testid={id}
              >
                <option value="">All</option>
                {options.map((o) => (
                  <option key={o} value={o}>
                    {o}
                  </option>
                ))}
              </select>
            ) : (
              <input
                id={id}
                type="text"
                value={values[f.name] || ''}
                onInput={(e) => setValues({ ...values, [f.name]: e.currentTarget.value })}
                placeholder="All"
                data-testid={id}
              />
            )}
          </label>
        );
      })}
      <button type="submit" class={`btn${dirty ? ' btn-primary' : ''}`} data-testid="filters-apply">
        Apply
      </button>
      {Object.values(applied).some(Boolean) && (
        <button
          type="button"
          class="btn btn-link"
          onClick={() => {
            setValues({});
            onApply({});
          }}
          data-testid="filters-clear"
        >
          Clear filters
        </button>
      )}
      <span class="small muted">Tiles whose result has the filter's column show only the matching rows.</span>
    </form>
  );
}

const STATUSES = ['draft', 'active', 'deprecated', 'retired'];
const VISIBILITIES = ['public', 'internal', 'private'];

// The dashboard's description, tags, status, visibility and filters, while editing.
function DetailsEditor({ draft, setDraft, columnsSeen }) {
  const set = (patch) => setDraft((dr) => ({ ...dr, ...patch }));
  const setFilter = (i, patch) => setDraft((dr) => ({ ...dr, filters: dr.filters.map((f, j) => (j === i ? { ...f, ...patch } : f)) }));
  const text = (key, label, rows = 2) => (
    <label class="field" for={`dash-${key}`}>
      <span>{label}</span>
      <textarea id={`dash-${key}`} rows={rows} value={draft[key]} onInput={(e) => set({ [key]: e.currentTarget.value })} data-testid={`dashboard-${key}`} />
    </label>
  );
  const choice = (key, label, values) => (
    <label class="field field-inline" for={`dash-${key}`}>
      <span>{label}</span>
      <select id={`dash-${key}`} value={draft[key]} onChange={(e) => set({ [key]: e.currentTarget.value })} data-testid={`dashboard-${key}`}>
        {values.map((v) => (
          <option key={v} value={v}>
            {v}
          </option>
        ))}
      </select>
    </label>
  );
  return (
    <div class="dash-details" data-testid="dashboard-details">
      {text('purpose', 'Purpose')}
      {text('usage', 'Usage')}
      {text('limitations', 'Limitations')}
      <div class="toolbar">
        <label class="field field-inline" for="dash-tags">
          <span>Tags</span>
          <input id="dash-tags" type="text" value={draft.tags} placeholder="sales, weekly-review" onInput={(e) => set({ tags: e.currentTarget.value })} data-testid="dashboard-tags" />
        </label>
        {choice('status', 'Status', STATUSES)}
        {choice('visibility', 'Visibility', VISIBILITIES)}
      </div>
      <fieldset class="dash-filter-edit" data-testid="dashboard-filter-editor">
        <legend>Filters</legend>
        <p class="small muted">
          A viewer picks a value; each tile whose result has the column shows only the matching rows. To apply one before a chart's own grouping or limit, place it in the chart's SQL:{' '}
          <code>{'[[ where region = {{region}} ]]'}</code> (left out while no value is picked).
        </p>
        <datalist id="dash-filter-columns">
          {[...columnsSeen].sort().map((c) => (
            <option key={c} value={c} />
          ))}
        </datalist>
        {draft.filters.map((f, i) => (
          <div key={i} class="toolbar" data-testid={tid('dashboard-filter-row', i)}>
            <label class="field field-inline" for={`dash-filter-column-${i}`}>
              <span>Column</span>
              <input
                id={`dash-filter-column-${i}`}
                type="text"
                list="dash-filter-columns"
                value={f.column}
                onInput={(e) => {
                  const column = e.currentTarget.value;
                  // The filter's name follows its column until it is given one of its own.
                  setFilter(i, f.name === f.column ? { column, name: column } : { column });
                }}
                data-testid={tid('dashboard-filter-column', i)}
              />
            </label>
            <label class="field field-inline" for={`dash-filter-label-${i}`}>
              <span>Label</span>
              <input id={`dash-filter-label-${i}`} type="text" value={f.label} onInput={(e) => setFilter(i, { label: e.currentTarget.value })} data-testid={tid('dashboard-filter-label', i)} />
            </label>
            <label class="field field-inline" for={`dash-filter-name-${i}`}>
              <span>Name</span>
              <input id={`dash-filter-name-${i}`} type="text" value={f.name} onInput={(e) => setFilter(i, { name: e.currentTarget.value })} data-testid={tid('dashboard-filter-name', i)} />
            </label>
            <button type="button" class="btn btn-small" onClick={() => set({ filters: draft.filters.filter((_, j) => j !== i) })} data-testid={tid('dashboard-filter-remove', i)}>
              Remove
            </button>
          </div>
        ))}
        <button type="button" class="btn btn-small" onClick={() => set({ filters: [...draft.filters, { name: '', column: '', label: '' }] })} data-testid="dashboard-filter-add">
          Add a filter
        </button>
      </fieldset>
    </div>
  );
}

export function Dashboard({ domain, name, me }) {
  const { data: detail, error, loading, reload } = useApi(dashboardPath(domain, name));
  // The viewer's pending requests: a denied tile says the product was asked for already.
  const requests = useApi('/api/v1/access-requests');
  const [values, setValues] = useState({});
  const [applied, setApplied] = useState({});
  const [run, setRun] = useState(0);
  const [seen, setSeen] = useState({});
  const [columnsSeen, setColumnsSeen] = useState(new Set()); // every tile's result columns
  const [draft, setDraft] = useState(null); // {columns, charts} while editing
  const [save, setSave] = useState(null); // {state: saving|ok|error, error, data}
  const [openRequest, setOpenRequest] = useState(null);
  const [sent, setSent] = useState({});

  const request = useMemo(
    () => ({
      open: openRequest,
      setOpen: setOpenRequest,
      sent: {
        ...Object.fromEntries(
          (requests.data || [])
            .filter((r) => r.status === 'pending' && r.requester === me?.principal)
            .map((r) => [r.product, r]),
        ),
        ...sent,
      },
      onSent: (product, r) => {
        setSent((s) => ({ ...s, [product]: r }));
        setOpenRequest(null);
      },
    }),
    [openRequest, sent, requests.data, me],
  );

  // The values each filter's column took in the tiles: the choices of its select.
  const onResult = useCallback(
    (_chart, result) => {
      setColumnsSeen((prev) => {
        const names = (result.columns || []).map((c) => c.name);
        return names.every((n) => prev.has(n)) ? prev : new Set([...prev, ...names]);
      });
      const columns = new Set((detail?.filters || []).map((f) => f.column));
      if (!columns.size) return;
      setSeen((prev) => {
        let next = prev;
        (result.columns || []).forEach((c, i) => {
          if (!columns.has(c.name) || c.masked) return;
          const have = new Set(prev[c.name] || []);
          const before = have.size;
          for (const r of result.rows || []) if (r[i] !== null && r[i] !== '') have.add(String(r[i]));
          if (have.size !== before) next = { ...next, [c.name]: have };
        });
        return next;
      });
    },
    [detail],
  );

  if (loading && !detail) return <Loading label="Loading dashboard…" />;
  if (error) {
    return (
      <div class="page">
        <p class="crumbs">
          <a href="#/" data-testid="back-to-marketplace">
            ← Marketplace
          </a>
        </p>
        <ErrorBox error={error} title={error.status === 404 ? `No dashboard ${domain}.${name} you may see.` : 'Could not load the dashboard.'} testid="dashboard-error" />
      </div>
    );
  }
  if (!detail) return null;

  const d = detail.description || {};
  const editing = !!draft;
  const columns = editing ? draft.columns : detail.layout?.columns || 2;
  const charts = [...(editing ? draft.charts : detail.charts || [])].sort(byPosition);
  const ports = [...new Set((detail.charts || []).flatMap((c) => c.ports || []))].sort();
  const clash = editing ? overlaps(draft.charts) : [];

  const startEdit = () => {
    setSave(null);
    setDraft({
      columns: detail.layout?.columns || 2,
      charts: detail.charts.map((c) => ({ ...c, position: positionOf(c) })),
      purpose: d.purpose || '',
      usage: d.usage || '',
      limitations: d.limitations || '',
      tags: (detail.tags || []).join(', '),
      status: detail.status || 'active',
      visibility: detail.visibility || 'internal',
      filters: (detail.filters || []).map(({ name, column, label }) => ({ name, column, label: label || '' })),
    });
  };
  const change = (chartName, fn) =>
    setDraft((dr) => ({ ...dr, charts: dr.charts.map((c) => (c.name === chartName ? fn(c) : c)) }));
  const editOf = (chart) => ({
    columns,
    setTitle: (title) => change(chart.name, (c) => ({ ...c, title })),
    move: (dx, dy) =>
      change(chart.name, (c) => {
        const p = positionOf(c);
        return {
          ...c,
          position: { ...p, x: Math.min(Math.max(0, p.x + dx), columns - p.width), y: Math.min(Math.max(0, p.y + dy), 99) },
        };
      }),
    resize: (dw, dh) =>
      change(chart.name, (c) => {
        const p = positionOf(c);
        return {
          ...c,
          position: { ...p, width: Math.min(Math.max(1, p.width + dw), columns - p.x), height: Math.min(Math.max(1, p.height + dh), 4) },
        };
      }),
    remove: () => setDraft((dr) => ({ ...dr, charts: dr.charts.filter((c) => c.name !== chart.name) })),
  });
  const setColumns = (n) =>
    setDraft((dr) => ({
      ...dr,
      columns: n,
      charts: dr.charts.map((c) => {
        const p = positionOf(c);
        const width = Math.min(p.width, n);
        return { ...c, position: { ...p, width, x: Math.min(p.x, n - width) } };
      }),
    }));
  const doSave = async () => {
    setSave({ state: 'saving' });
    try {
      const data = await saveDashboard(detail.domain, detail.name, dashboardBody(detail, draftChanges(draft)));
      setSave({ state: 'ok', data });
      setDraft(null);
      reload();
    } catch (err) {
      setSave({ state: 'error', error: err });
    }
  };

  return (
    <div class="page page-wide" data-testid="page-dashboard" data-dashboard={`${detail.domain}.${detail.name}`} data-editing={editing ? 'true' : 'false'}>
      <p class="crumbs">
        <a href="#/" data-testid="back-to-marketplace">
          ← Marketplace
        </a>
      </p>
      <header class="page-head product-head">
        <div>
          <h1>
            <span class="muted">{detail.domain}.</span>
            <span data-testid="dashboard-name">{detail.name}</span> <span class="chip chip-dashboard">Dashboard</span>
          </h1>
          <p class="muted">
            {detail.visibility} · owned by <strong data-testid="dashboard-owner">{detail.owner}</strong> in <strong>{detail.domain}</strong> ·{' '}
            {(detail.charts || []).length} {(detail.charts || []).length === 1 ? 'chart' : 'charts'}
          </p>
        </div>
        <div class="badges">
          <StatusBadge status={detail.status} />
          <button type="button" class="btn btn-small" onClick={() => setRun((r) => r + 1)} disabled={editing} data-testid="dashboard-refresh">
            Refresh
          </button>
          {detail.can_edit && !editing && (
            <button type="button" class="btn btn-small" onClick={startEdit} data-testid="dashboard-edit">
              Edit
            </button>
          )}
        </div>
      </header>
      <section class="card dash-about" aria-label="About this dashboard">
        <p data-testid="dashboard-purpose">{d.purpose || <span class="muted">No purpose written.</span>}</p>
        {d.usage && (
          <p class="small">
            <strong>Usage.</strong> {d.usage}
          </p>
        )}
        {d.limitations && (
          <p class="small">
            <strong>Limitations.</strong> {d.limitations}
          </p>
        )}
        <div class="badges">
          {!!detail.tags?.length && (
            <ul class="tags" aria-label="Tags">
              {detail.tags.map((t) => (
                <li key={t} class="chip">
                  {t}
                </li>
              ))}
            </ul>
          )}
          {ports.length > 0 && (
            <p class="small muted dash-ports" data-testid="dashboard-ports">
              Reads {ports.map((p) => <code key={p}>{p}</code>)} — each tile runs as you: your grants, masks and row filters.
            </p>
          )}
        </div>
      </section>

      {editing && (
        <section class="card dash-editbar" aria-label="Edit the dashboard" data-testid="dashboard-editbar">
          <div class="toolbar">
            <label class="field field-inline" for="dash-columns">
              <span>Columns</span>
              <select id="dash-columns" value={String(columns)} onChange={(e) => setColumns(Number(e.currentTarget.value))} data-testid="dashboard-columns">
                {[1, 2, 3, 4].map((n) => (
                  <option key={n} value={String(n)}>
                    {n}
                  </option>
                ))}
              </select>
            </label>
            <span class="small muted">Change the details here and retitle, move, resize or remove tiles below, then save: the dashboard's file is rewritten.</span>
            <span class="spacer" />
            <button type="button" class="btn btn-primary" onClick={doSave} disabled={save?.state === 'saving'} data-testid="dashboard-save">
              {save?.state === 'saving' ? 'Saving…' : 'Save dashboard'}
            </button>
            <button
              type="button"
              class="btn"
              onClick={() => {
                setDraft(null);
                setSave(null);
              }}
              data-testid="dashboard-cancel"
            >
              Cancel
            </button>
          </div>
          <DetailsEditor draft={draft} setDraft={setDraft} columnsSeen={columnsSeen} />
          {clash.length > 0 && (
            <p class="small alert alert-warn" data-testid="dashboard-overlap">
              Tiles overlap: {clash.join(', ')}. Move one of them.
            </p>
          )}
          {!draft.charts.length && <p class="small alert alert-warn">A dashboard needs at least one chart: the server will refuse to save it empty.</p>}
        </section>
      )}
      {save?.state === 'error' && <SaveProblem error={save.error} testid="dashboard-save-error" />}
      {save?.state === 'ok' && (
        <Notice kind="success" testid="dashboard-saved">
          Saved <span class="mono">{save.data?.file}</span>.
        </Notice>
      )}

      <Filters
        filters={detail.filters}
        values={values}
        setValues={setValues}
        applied={applied}
        onApply={(v) => setApplied(Object.fromEntries(Object.entries(v).filter(([, x]) => x)))}
        seen={seen}
      />

      <div
        class="dash-grid"
        style={{ gridTemplateColumns: `repeat(${columns}, minmax(0, 1fr))`, gridAutoRows: editing ? `minmax(${ROW_PX}px, auto)` : `${ROW_PX}px` }}
        data-testid="dashboard-grid"
        data-columns={columns}
      >
        {charts.map((chart) => (
          <DashboardTile
            key={chart.name}
            dashboard={detail}
            chart={chart}
            filters={applied}
            run={run}
            request={request}
            onResult={onResult}
            edit={editing ? editOf(chart) : null}
          />
        ))}
      </div>
      {!charts.length && <p class="empty">No charts.</p>}
    </div>
  );
}
