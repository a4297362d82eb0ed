// One data product: description, contract, quality, freshness, sample rows, lineage, how to use.
import { useState } from 'preact/hooks';
import { api, enc, useApi } from '../api.js';
import {
  AccessBadge,
  ClassificationBadge,
  CopyButton,
  Empty,
  ErrorBox,
  FreshnessBadge,
  Loading,
  Notice,
  QualityBadge,
  StatusBadge,
} from '../components/common.jsx';
import { DataGrid } from '../components/DataGrid.jsx';
import { LineageGraph } from '../components/LineageGraph.jsx';
import { href } from '../router.js';
import { formatAge, formatNumber, formatTime, tid } from '../util.js';

const TABS = [
  ['overview', 'Overview'],
  ['contract', 'Contract'],
  ['quality', 'Quality'],
  ['sample', 'Sample data'],
  ['lineage', 'Lineage'],
  ['use', 'How to use'],
];

export function RequestAccessForm({ product, onDone, onCancel }) {
  const [purpose, setPurpose] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    if (purpose.trim().length < 5) {
      setError('Say in a sentence what you need the data for; the owners read it to decide.');
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const req = await api('/api/v1/access-requests', { method: 'POST', body: { product, purpose: purpose.trim() } });
      onDone(req);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="card request-form" onSubmit={submit} data-testid="request-access-form">
      <h3>Request access to {product}</h3>
      <label class="field" for="request-purpose">
        <span>Purpose</span>
        <textarea
          id="request-purpose"
          rows="3"
          value={purpose}
          onInput={(e) => setPurpose(e.currentTarget.value)}
          placeholder="What will you use it for? e.g. Weekly APAC sales report for the regional leads"
          data-testid="request-purpose"
        />
      </label>
      <ErrorBox error={error} testid="request-error" />
      <div class="actions">
        <button type="submit" class="btn btn-primary" disabled={busy} data-testid="request-submit">
          {busy ? 'Sending…' : 'Send request'}
        </button>
        {onCancel && (
          <button type="button" class="btn" onClick={onCancel} data-testid="request-cancel">
            Cancel
          </button>
        )}
      </div>
    </form>
  );
}

function AccessPanel({ detail, me }) {
  const key = `${detail.domain}.${detail.name}`;
  const [open, setOpen] = useState(false);
  const [sent, setSent] = useState(null);
  const access = detail.access || {};
  if (access.can_read ?? detail.can_read) {
    const masked = access.masked || [];
    return (
      <Notice kind="success" testid="access-granted-notice">
        <strong>You can read this product.</strong> {access.reason}
        {masked.length > 0 && (
          <span>
            {' '}
            Masked for you: <span data-testid="masked-columns">{masked.join(', ')}</span>.
          </span>
        )}
        {access.row_filter && <span> A row filter applies: you see only some rows.</span>}
      </Notice>
    );
  }
  return (
    <div class="access-denied" data-testid="access-denied-notice">
      <Notice kind="warn">
        <strong>You cannot read this product's data yet.</strong> {access.reason}
        <div class="actions">
          {!open && !sent && (
            <button type="button" class="btn btn-primary" onClick={() => setOpen(true)} data-testid="request-access">
              Request access
            </button>
          )}
          <a class="btn btn-link" href={href('/access', { product: key })} data-testid="access-page-link">
            See your requests
          </a>
        </div>
      </Notice>
      {open && !sent && (
        <RequestAccessForm
          product={key}
          onDone={(r) => {
            setSent(r);
            setOpen(false);
          }}
          onCancel={() => setOpen(false)}
        />
      )}
      {sent && (
        <Notice kind="success" testid="request-sent">
          Request #{sent.id} for {sent.product} is <strong>{sent.status}</strong>. The owners of {detail.domain} decide it;
          you will see the result under <a href="#/access" data-testid="request-sent-access-link">
            Access
          </a>.
          {me && <span class="small muted"> Requested as {me.principal}.</span>}
        </Notice>
      )}
    </div>
  );
}

function Overview({ detail }) {
  const d = detail.description || {};
  return (
    <div class="two-col">
      <div>
        <section class="card">
          <h2>Purpose</h2>
          <p data-testid="purpose">{d.purpose || detail.purpose || <span class="muted">Not written.</span>}</p>
          <h2>Usage</h2>
          <p>{d.usage || <span class="muted">Not written.</span>}</p>
          <h2>Limitations</h2>
          <p>{d.limitations || <span class="muted">Not written.</span>}</p>
        </section>
        <section class="card">
          <h2>Freshness and SLA</h2>
          <p>
            <FreshnessBadge freshness={detail.freshness} testid="product-freshness" />{' '}
            {detail.published_at ? (
              <span>
                Published {formatTime(detail.published_at)}
                {detail.freshness?.age_seconds != null && ` (${formatAge(detail.freshness.age_seconds)} ago)`}
                {detail.freshness?.frequency && `; expected every ${detail.freshness.frequency}.`}
              </span>
            ) : (
              <span class="muted">Never published.</span>
            )}
          </p>
          {(detail.outputs || []).some((o) => o.sla?.length) && (
            <table class="table compact">
              <thead>
                <tr>
                  <th scope="col">Port</th>
                  <th scope="col">Property</th>
                  <th scope="col">Value</th>
                </tr>
              </thead>
              <tbody>
                {(detail.outputs || []).flatMap((o) =>
                  (o.sla || []).map((s) => (
                    <tr key={`${o.name}-${s.property}`}>
                      <td>{o.name}</td>
                      <td>{s.property}</td>
                      <td>
                        {s.value} {s.unit}
                      </td>
                    </tr>
                  )),
                )}
              </tbody>
            </table>
          )}
        </section>
      </div>
      <div>
        <section class="card">
          <h2>Ownership</h2>
          <dl class="facts">
            <dt>Owner</dt>
            <dd data-testid="product-owner">{detail.owner || '–'}</dd>
            <dt>Domain</dt>
            <dd>{detail.domain}</dd>
            <dt>Type</dt>
            <dd>{detail.type}</dd>
            <dt>Visibility</dt>
            <dd>{detail.visibility}</dd>
            <dt>Live build</dt>
            <dd class="mono small">{detail.build_id || '–'}</dd>
          </dl>
          {!!detail.tags?.length && (
            <ul class="tags" aria-label="Tags">
              {detail.tags.map((t) => (
                <li key={t} class="chip">
                  {t}
                </li>
              ))}
            </ul>
          )}
        </section>
        <section class="card">
          <h2>Version history</h2>
          {detail.history?.length ? (
            <table class="table compact" data-testid="history">
              <thead>
                <tr>
                  <th scope="col">Version</th>
                  <th scope="col">Published</th>
                  <th scope="col">Build</th>
                </tr>
              </thead>
              <tbody>
                {detail.history.map((h) => (
                    <tr key={`${h.version}-${h.build_id}`}>
                      <td>
                        {h.version}
                        {h.build_id === detail.build_id && <span class="badge badge-ok">live</span>}
                      </td>
                      <td>{formatTime(h.published_at)}</td>
                      <td class="mono small">{h.build_id}</td>
                    </tr>
                  ))}
              </tbody>
            </table>
          ) : (
            <Empty>No version has been published.</Empty>
          )}
        </section>
      </div>
    </div>
  );
}

function Contract({ detail }) {
  const masked = new Set(detail.access?.masked || []);
  if (!detail.outputs?.length) return <Empty>No output ports.</Empty>;
  return (
    <div>
      {detail.outputs.map((o) => (
        <section class="card" key={o.name} data-testid={tid('contract', o.name)}>
          <div class="card-head">
            <h2>
              Port <span class="mono">{o.name}</span>
            </h2>
            <span class="muted small">
              SQL name <code>{o.sql_name}</code> · {o.rows == null ? 'not published' : `${formatNumber(o.rows)} rows`}
            </span>
          </div>
          {o.description && <p>{o.description}</p>}
          <div class="table-wrap">
            <table class="table">
              <thead>
                <tr>
                  <th scope="col">Column</th>
                  <th scope="col">Type</th>
                  <th scope="col">Classification</th>
                  <th scope="col">Constraints</th>
                  <th scope="col">Description</th>
                </tr>
              </thead>
              <tbody>
                {o.columns.map((c) => {
                  const sensitive = c.classification === 'pii' || c.classification === 'confidential';
                  return (
                    <tr key={c.name} class={sensitive ? 'row-sensitive' : undefined} data-testid={tid('column', o.name, c.name)}>
                      <th scope="row" class="mono">
                        {c.name}
                        {masked.has(`${o.name}.${c.name}`) && (
                          <span class="badge badge-mask" title="Masked for you">
                            masked for you
                          </span>
                        )}
                      </th>
                      <td class="mono small">{c.type}</td>
                      <td>
                        <ClassificationBadge value={c.classification} />
                      </td>
                      <td class="marks">
                        {c.primary_key && (
                          <span class="mark mark-pk" title="Primary key">
                            PK
                          </span>
                        )}
                        {c.required && (
                          <span class="mark" title="Required: never NULL">
                            required
                          </span>
                        )}
                        {c.unique && (
                          <span class="mark" title="Unique values">
                            unique
                          </span>
                        )}
                      </td>
                      <td>{c.description || <span class="muted">–</span>}</td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        </section>
      ))}
    </div>
  );
}

function Quality({ detail }) {
  const rows = detail.quality || [];
  if (!rows.length) return <Empty>No quality results recorded (the product has not been published, or has no checks).</Empty>;
  const passed = rows.filter((r) => r.passed).length;
  return (
    <section class="card">
      <div class="card-head">
        <h2>Quality checks at the last publish</h2>
        <QualityBadge quality={{ passed, total: rows.length }} testid="quality-summary" />
      </div>
      <div class="table-wrap">
        <table class="table" data-testid="quality-table">
          <thead>
            <tr>
              <th scope="col">Port</th>
              <th scope="col">Column</th>
              <th scope="col">Rule</th>
              <th scope="col">Severity</th>
              <th scope="col">Observed</th>
              <th scope="col">Expected</th>
              <th scope="col">Result</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r, i) => (
              <tr key={i} class={r.passed ? undefined : 'row-fail'}>
                <td>{r.port}</td>
                <td class="mono">{r.column || <span class="muted">(port)</span>}</td>
                <td class="rule">{r.rule}</td>
                <td>{r.severity}</td>
                <td class="num">{r.observed}</td>
                <td class="num">{r.threshold}</td>
                <td>
                  {r.passed ? <span class="badge badge-ok">✓ pass</span> : <span class="badge badge-error">✗ fail</span>}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}

function Sample({ detail }) {
  const ports = detail.outputs || [];
  const [port, setPort] = useState(ports[0]?.name);
  const base = `/api/v1/products/${enc(detail.domain)}/${enc(detail.name)}/sample`;
  const sample = useApi(port ? `${base}?port=${enc(port)}&limit=20` : null);
  return (
    <section class="card">
      <div class="card-head">
        <h2>Sample rows</h2>
        {ports.length > 1 && (
          <label class="field field-inline" for="sample-port">
            <span>Port</span>
            <select id="sample-port" value={port} onChange={(e) => setPort(e.currentTarget.value)} data-testid="sample-port">
              {ports.map((o) => (
                <option key={o.name} value={o.name}>
                  {o.name}
                </option>
              ))}
            </select>
          </label>
        )}
      </div>
      <p class="muted small">
        Read through governance exactly as a query by you would be: masked columns are marked, row filters apply.
      </p>
      {sample.loading && <Loading label="Reading sample…" />}
      <ErrorBox error={sample.error} title={sample.error?.status === 403 ? 'Access denied.' : 'Could not read the sample.'} testid="sample-error" />
      {sample.data && <DataGrid result={sample.data} testid="sample-grid" caption={`Sample of ${port}`} />}
    </section>
  );
}

function Lineage({ detail }) {
  const lineage = useApi(`/api/v1/lineage/${enc(detail.domain)}/${enc(detail.name)}`);
  return (
    <section class="card">
      <h2>Upstream and downstream</h2>
      {lineage.loading && <Loading label="Loading lineage…" />}
      <ErrorBox error={lineage.error} title="Could not load lineage." testid="lineage-error" />
      {lineage.data && (
        <LineageGraph
          graph={lineage.data}
          product={`${detail.domain}.${detail.name}`}
          ports={(detail.outputs || []).map((o) => o.sql_name)}
        />
      )}
      {lineage.data && (
        <ColumnLineage data={lineage.data} ports={(detail.outputs || []).map((o) => o.sql_name)} />
      )}
    </section>
  );
}

// Where each column of the product's ports comes from (value-level edges; the row-level
// ones — filters, joins, grouping — are listed once per port).
function ColumnLineage({ data, ports }) {
  const own = new Set(ports);
  const edges = (data.column_edges || []).filter((e) => own.has(e.port));
  const notAnalysed = (data.port_lineage || []).filter((p) => own.has(p.port) && !p.analysed);
  if (!edges.length && !notAnalysed.length) return null;
  const rows = new Map();
  // Columns first, in the order of the edges; the row-level effects after them.
  const ordered = [...edges.filter((e) => !e.dataset), ...edges.filter((e) => e.dataset)];
  for (const e of ordered) {
    const key = `${e.port}.${e.dataset ? '(every row)' : e.column}`;
    if (!rows.has(key)) rows.set(key, []);
    const source = `${e.source}.${e.source_column} (${e.subtype.toLowerCase()})`;
    if (!rows.get(key).includes(source)) rows.get(key).push(source);
  }
  return (
    <div data-testid="column-lineage">
      <h3>Column lineage</h3>
      {notAnalysed.map((p) => (
        <p class="muted" key={p.port}>
          {p.port}: not analysed — {p.reason}
        </p>
      ))}
      {rows.size > 0 && (
        <table class="table compact">
          <thead>
            <tr>
              <th scope="col">Column</th>
              <th scope="col">Comes from</th>
            </tr>
          </thead>
          <tbody>
            {[...rows.entries()].map(([column, sources]) => (
              <tr key={column} data-testid={tid('column-lineage', column)}>
                <td>
                  <code>{column}</code>
                </td>
                <td>
                  {sources.map((s) => (
                    <div key={s}>
                      <code>{s}</code>
                    </div>
                  ))}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

function HowToUse({ detail, me }) {
  const user = me?.name || 'YOU';
  return (
    <div>
      {(detail.outputs || []).map((o) => {
        const sql = `select * from ${o.sql_name} limit 100`;
        const cli = `canopy query --as ${user} "${sql}"`;
        return (
          <section class="card" key={o.name} data-testid={tid('howto', o.name)}>
            <h2>
              Port <span class="mono">{o.name}</span>
            </h2>
            <dl class="facts">
              <dt>SQL name</dt>
              <dd>
                <code data-testid={tid('sql-name', o.name)}>{o.sql_name}</code>
              </dd>
            </dl>
            <h3>Query it</h3>
            <div class="code-row">
              <pre class="code">{sql}</pre>
              <CopyButton text={sql} testid={tid('copy-sql', o.name)} />
              <a class="btn btn-small btn-primary" href={href('/query', { sql })} data-testid={tid('open-in-console', o.name)}>
                Open in query console
              </a>
            </div>
            <h3>From the command line</h3>
            <div class="code-row">
              <pre class="code">{cli}</pre>
              <CopyButton text={cli} testid={tid('copy-cli', o.name)} />
            </div>
          </section>
        );
      })}
      <p class="muted small">
        Every read is governed and audited: masks and row filters apply the same way in the console, the CLI and the API.
      </p>
    </div>
  );
}

export function Product({ domain, name, me, query }) {
  const path = `/api/v1/products/${enc(domain)}/${enc(name)}`;
  const { data: detail, error, loading } = useApi(path);
  const initialTab = TABS.some(([t]) => t === query?.get('tab')) ? query.get('tab') : 'overview';
  const [tab, setTab] = useState(initialTab); // the page is keyed by product, so this starts afresh

  if (loading && !detail) return <Loading label="Loading product…" />;
  if (error) {
    return (
      <div class="page">
        <p>
          <a href="#/" data-testid="back-to-marketplace">
            ← All products
          </a>
        </p>
        <ErrorBox error={error} title={error.status === 404 ? `No product ${domain}.${name}.` : 'Could not load the product.'} testid="product-error" />
      </div>
    );
  }
  if (!detail) return null;
  const canRead = detail.access?.can_read ?? detail.can_read;
  const qualityRows = detail.quality || [];
  const quality = Array.isArray(qualityRows)
    ? { passed: qualityRows.filter((r) => r.passed).length, total: qualityRows.length }
    : qualityRows;

  return (
    <div class="page" data-testid="page-product" data-product={`${detail.domain}.${detail.name}`}>
      <p class="crumbs">
        <a href="#/" data-testid="back-to-marketplace">
          ← All products
        </a>
      </p>
      <header class="page-head product-head">
        <div>
          <h1>
            <span class="muted">{detail.domain}.</span>
            {detail.name}
          </h1>
          <p class="muted">
            v{detail.version} · {detail.type} · {detail.visibility} · owned by <strong>{detail.owner}</strong> in{' '}
            <strong>{detail.domain}</strong>
          </p>
        </div>
        <div class="badges">
          {(me?.domains || []).includes(detail.domain) && (
            <a class="btn btn-small" href={`#/builder/${enc(detail.domain)}/${enc(detail.name)}`} data-testid="open-in-builder">
              Open in builder
            </a>
          )}
          <StatusBadge status={detail.status} />
          <FreshnessBadge freshness={detail.freshness} testid="header-freshness" />
          <QualityBadge quality={quality} testid="header-quality" />
          <AccessBadge canRead={canRead} testid="header-access" />
        </div>
      </header>
      <AccessPanel detail={detail} me={me} />
      <div class="tabs" role="tablist" aria-label="Product sections">
        {TABS.map(([id, label]) => (
          <button
            key={id}
            type="button"
            role="tab"
            id={`tab-${id}`}
            aria-selected={tab === id}
            aria-controls={`panel-${id}`}
            class={`tab${tab === id ? ' tab-active' : ''}`}
            onClick={() => setTab(id)}
            data-testid={`tab-${id}`}
          >
            {label}
          </button>
        ))}
      </div>
      <div role="tabpanel" id={`panel-${tab}`} aria-labelledby={`tab-${tab}`} class="tab-panel">
        {tab === 'overview' && <Overview detail={detail} />}
        {tab === 'contract' && <Contract detail={detail} />}
        {tab === 'quality' && <Quality detail={detail} />}
        {tab === 'sample' && <Sample detail={detail} />}
        {tab === 'lineage' && <Lineage detail={detail} />}
        {tab === 'use' && <HowToUse detail={detail} me={me} />}
      </div>
    </div>
  );
}
