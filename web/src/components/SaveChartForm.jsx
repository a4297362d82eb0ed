// "Save chart" in the query console: the drawn chart (its Vega-Lite spec without the data, and the
// query that produced it) added to a dashboard of one of the user's domains, or to a new one.
// Adding to an existing dashboard GETs it, appends the chart at the first free cell and PUTs the
// whole dashboard back; the server validates (the guard checks the query) before it writes.
import { useState } from 'preact/hooks';
import { api, useApi } from '../api.js';
import { dashboardBody, dashboardPath, freeSpot, isSqlName, saveDashboard, sqlNameOf } from '../dashboards.js';
import { dashboardHref } from '../router.js';
import { specWithoutData } from './Chart.jsx';
import { Loading, Notice } from './common.jsx';
import { SaveProblem } from './SaveProblem.jsx';

const TARGET_KEY = 'canopy.query.dashboard';
const NEW = '__new__';

function rememberedTarget() {
  try {
    return sessionStorage.getItem(TARGET_KEY) || '';
  } catch {
    return '';
  }
}

function remember(address) {
  try {
    sessionStorage.setItem(TARGET_KEY, address);
  } catch {
    /* storage disabled */
  }
}

function defaultTitle(spec) {
  const x = spec?.encoding?.x?.title;
  const y = spec?.encoding?.y?.title;
  return x && y ? `${y} by ${x}` : '';
}

export function SaveChartForm({ me, sql, spec, onClose }) {
  const domains = me?.domains || [];
  const list = useApi(domains.length ? '/api/v1/dashboards' : null);
  const mine = (list.data || []).filter((d) => domains.includes(d.domain));
  const [title, setTitle] = useState(defaultTitle(spec));
  const [name, setName] = useState(sqlNameOf(defaultTitle(spec)));
  const [nameEdited, setNameEdited] = useState(false);
  const [picked, setPicked] = useState('');
  const [newName, setNewName] = useState('');
  const [newDomain, setNewDomain] = useState(domains[0] || '');
  const [purpose, setPurpose] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const [done, setDone] = useState(null);

  // Until the user picks: the dashboard saved to last, else the first of the user's, else a new one.
  let target = picked;
  if (!target && list.data) {
    const last = rememberedTarget();
    target = mine.some((d) => `${d.domain}.${d.name}` === last) ? last : mine[0] ? `${mine[0].domain}.${mine[0].name}` : NEW;
  }
  const setTarget = setPicked;

  if (!domains.length) {
    return (
      <section class="card save-chart" data-testid="save-chart-form" aria-label="Save chart">
        <p data-testid="save-chart-no-domain">
          Dashboards are saved in a domain by its members, and you are a member of none. Ask a domain's owners to add the chart, or to add
          you.
        </p>
        <button type="button" class="btn btn-small" onClick={onClose} data-testid="save-chart-close">
          Close
        </button>
      </section>
    );
  }

  const onTitle = (t) => {
    setTitle(t);
    if (!nameEdited) setName(sqlNameOf(t));
  };

  const submit = async (e) => {
    e.preventDefault();
    setError(null);
    setDone(null);
    if (!title.trim()) return setError('Give the chart a title.');
    if (!isSqlName(name)) return setError('The chart name must be a SQL name: lower-case letters, digits and _, starting with a letter.');
    if (!spec) return setError('Draw the chart first.');
    const chart = { name, title: title.trim(), sql: sql.trim(), vegaLite: specWithoutData(spec) };
    let domain;
    let dashboard;
    let body;
    setBusy(true);
    try {
      if (target === NEW) {
        domain = newDomain;
        dashboard = newName.trim();
        if (!isSqlName(dashboard)) throw new Error('Name the new dashboard with a SQL name: lower-case letters, digits and _.');
        if ((list.data || []).some((d) => d.domain === domain && d.name === dashboard)) {
          throw new Error(`${domain}.${dashboard} exists already: pick it in the list to add the chart to it.`);
        }
        body = {
          description: { purpose: purpose.trim() || `${title.trim()}, saved from the query console.` },
          status: 'active',
          visibility: 'internal',
          tags: [],
          layout: { columns: 2 },
          charts: [{ ...chart, position: { x: 0, y: 0, width: 1, height: 1 } }],
          create: true, // refused (409) if someone made one of that name meanwhile
        };
      } else {
        const dot = target.indexOf('.');
        domain = target.slice(0, dot);
        dashboard = target.slice(dot + 1);
        const detail = await api(dashboardPath(domain, dashboard));
        if ((detail.charts || []).some((c) => c.name === name)) {
          throw new Error(`${target} already has a chart named ${name}: give this one another name.`);
        }
        const columns = detail.layout?.columns || 2;
        body = dashboardBody(detail, { charts: [...detail.charts, { ...chart, position: freeSpot(detail.charts, columns) }] });
      }
      const saved = await saveDashboard(domain, dashboard, body);
      remember(`${domain}.${dashboard}`);
      setTarget(`${domain}.${dashboard}`);
      setDone({ domain, name: dashboard, created: target === NEW, file: saved?.file });
      list.reload();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  const id = (s) => `save-chart-${s}`;
  return (
    <form class="card save-chart" onSubmit={submit} data-testid="save-chart-form" aria-labelledby={id('heading')}>
      <div class="card-head">
        <h2 id={id('heading')}>Save chart to a dashboard</h2>
        <button type="button" class="btn btn-small" onClick={onClose} data-testid="save-chart-close">
          Close
        </button>
      </div>
      <p class="small muted">
        The dashboard keeps the query and the chart, not the rows: each viewer's tile runs the query as them.
      </p>
      <div class="form-row">
        <label class="field grow" for={id('title')}>
          <span>Title</span>
          <input id={id('title')} type="text" value={title} onInput={(e) => onTitle(e.currentTarget.value)} data-testid="save-chart-title" />
        </label>
        <label class="field save-chart-name" for={id('name')}>
          <span>Chart name (SQL name)</span>
          <input
            id={id('name')}
            type="text"
            class="mono"
            value={name}
            onInput={(e) => {
              setName(e.currentTarget.value);
              setNameEdited(true);
            }}
            aria-invalid={name && !isSqlName(name) ? 'true' : undefined}
            data-testid="save-chart-name"
          />
        </label>
      </div>
      <div class="form-row">
        <label class="field" for={id('target')}>
          <span>Dashboard</span>
          {list.loading && !list.data ? (
            <Loading label="Loading your dashboards…" />
          ) : (
            <select id={id('target')} value={target} onChange={(e) => setTarget(e.currentTarget.value)} data-testid="save-chart-dashboard">
              {mine.map((d) => (
                <option key={`${d.domain}.${d.name}`} value={`${d.domain}.${d.name}`}>
                  {d.domain}.{d.name} ({d.charts} {d.charts === 1 ? 'chart' : 'charts'})
                </option>
              ))}
              <option value={NEW}>New dashboard…</option>
            </select>
          )}
        </label>
        {target === NEW && (
          <>
            <label class="field" for={id('new-name')}>
              <span>New dashboard name</span>
              <input
                id={id('new-name')}
                type="text"
                class="mono"
                value={newName}
                onInput={(e) => setNewName(e.currentTarget.value)}
                placeholder="e.g. weekly_sales"
                data-testid="save-chart-new-name"
              />
            </label>
            <label class="field" for={id('new-domain')}>
              <span>Domain</span>
              <select id={id('new-domain')} value={newDomain} onChange={(e) => setNewDomain(e.currentTarget.value)} data-testid="save-chart-new-domain">
                {domains.map((d) => (
                  <option key={d} value={d}>
                    {d}
                  </option>
                ))}
              </select>
            </label>
            <label class="field grow" for={id('purpose')}>
              <span>Purpose</span>
              <input
                id={id('purpose')}
                type="text"
                value={purpose}
                onInput={(e) => setPurpose(e.currentTarget.value)}
                placeholder="What is the dashboard for? e.g. Weekly sales review"
                data-testid="save-chart-purpose"
              />
            </label>
          </>
        )}
      </div>
      <SaveProblem error={error} testid="save-chart-error" />
      {done && (
        <Notice kind="success" testid="save-chart-saved">
          {done.created ? 'Created' : 'Added to'} <strong>{done.domain}.{done.name}</strong>
          {done.file && <span class="small muted"> ({done.file})</span>}.{' '}
          <a href={dashboardHref(done.domain, done.name)} data-testid="save-chart-open">
            Open the dashboard
          </a>
        </Notice>
      )}
      <div class="actions">
        <button type="submit" class="btn btn-primary" disabled={busy || !target} data-testid="save-chart-submit">
          {busy ? 'Saving…' : 'Add to dashboard'}
        </button>
      </div>
    </form>
  );
}
