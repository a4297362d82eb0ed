// Governance (admins): classifications, masks, publish gates and their last results, the audit log.
import { useState } from 'preact/hooks';
import { enc, useApi } from '../api.js';
import { ClassificationBadge, Empty, ErrorBox, Loading, Notice } from '../components/common.jsx';
import { formatTime, tid } from '../util.js';

const OUTCOMES = ['ok', 'denied', 'failed', 'error'];
const ACTIONS = ['query', 'grant', 'revoke', 'request', 'approve', 'deny', 'publish', 'token'];

function detailText(v) {
  if (Array.isArray(v)) return v.join(', ');
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

function Details({ details }) {
  const entries = Object.entries(details || {}).filter(([, v]) => v !== '' && v != null && !(Array.isArray(v) && !v.length));
  if (!entries.length) return <span class="muted">–</span>;
  return (
    <ul class="details">
      {entries.map(([k, v]) => {
        const text = detailText(v);
        const short = text.length > 140 ? `${text.slice(0, 140)}…` : text;
        return (
          <li key={k} title={text.length > 140 ? text : undefined}>
            <span class="muted">{k}</span> <span class={k === 'sql' ? 'mono' : undefined}>{short}</span>
          </li>
        );
      })}
    </ul>
  );
}

function Audit() {
  const [form, setForm] = useState({ principal: '', action: '', outcome: '', limit: '50' });
  const [applied, setApplied] = useState(form);
  const qs = Object.entries(applied)
    .filter(([, v]) => v !== '')
    .map(([k, v]) => `${k}=${enc(v)}`)
    .join('&');
  const audit = useApi(`/api/v1/audit${qs ? `?${qs}` : ''}`);
  const set = (k) => (e) => setForm({ ...form, [k]: e.currentTarget.value });
  const entries = audit.data?.entries || [];
  return (
    <section class="card" aria-labelledby="audit-h" data-testid="audit">
      <div class="card-head">
        <h2 id="audit-h">Audit log</h2>
        {audit.data &&
          (audit.data.verified ? (
            <span class="badge badge-ok" data-testid="audit-verified" title="The hash chain of the log checks out">
              ✓ chain verified
            </span>
          ) : (
            <span class="badge badge-error" data-testid="audit-verified" title="An entry was changed, inserted or removed">
              ✗ chain broken
            </span>
          ))}
      </div>
      <form
        class="form-row"
        onSubmit={(e) => {
          e.preventDefault();
          setApplied(form);
        }}
        data-testid="audit-filters"
      >
        <label class="field" for="audit-principal">
          <span>Principal</span>
          <input id="audit-principal" type="text" value={form.principal} onInput={set('principal')} placeholder="user:zoe" data-testid="audit-principal" />
        </label>
        <label class="field" for="audit-action">
          <span>Action</span>
          <input id="audit-action" type="text" list="audit-actions" value={form.action} onInput={set('action')} placeholder="any" data-testid="audit-action" />
          <datalist id="audit-actions">
            {ACTIONS.map((a) => (
              <option key={a} value={a} />
            ))}
          </datalist>
        </label>
        <label class="field" for="audit-outcome">
          <span>Outcome</span>
          <select id="audit-outcome" value={form.outcome} onChange={set('outcome')} data-testid="audit-outcome">
            <option value="">any</option>
            {OUTCOMES.map((o) => (
              <option key={o} value={o}>
                {o}
              </option>
            ))}
          </select>
        </label>
        <label class="field" for="audit-limit">
          <span>Last</span>
          <select id="audit-limit" value={form.limit} onChange={set('limit')} data-testid="audit-limit">
            {['50', '200', '1000'].map((n) => (
              <option key={n} value={n}>
                {n} entries
              </option>
            ))}
          </select>
        </label>
        <button type="submit" class="btn btn-primary" data-testid="audit-apply">
          Apply
        </button>
        <button
          type="button"
          class="btn"
          onClick={() => {
            const cleared = { principal: '', action: '', outcome: '', limit: '50' };
            setForm(cleared);
            setApplied(cleared);
          }}
          data-testid="audit-reset"
        >
          Reset
        </button>
      </form>
      {audit.loading && <Loading />}
      <ErrorBox error={audit.error} title="Could not load the audit log." testid="audit-error" />
      {audit.data &&
        (entries.length ? (
          <div class="table-wrap">
            <table class="table" data-testid="audit-table">
              <thead>
                <tr>
                  <th scope="col">#</th>
                  <th scope="col">When</th>
                  <th scope="col">Principal</th>
                  <th scope="col">Action</th>
                  <th scope="col">Target</th>
                  <th scope="col">Outcome</th>
                  <th scope="col">Details</th>
                </tr>
              </thead>
              <tbody>
                {entries.map((e) => (
                  <tr key={e.seq} data-testid={tid('audit-row', e.seq)}>
                    <td>{e.seq}</td>
                    <td class="nowrap">{formatTime(e.at)}</td>
                    <td>{e.principal}</td>
                    <td>{e.action}</td>
                    <td class="mono small">{e.target}</td>
                    <td>
                      <span class={`badge ${e.outcome === 'ok' ? 'badge-ok' : e.outcome === 'denied' ? 'badge-lock' : 'badge-error'}`}>{e.outcome}</span>
                    </td>
                    <td class="wrap">
                      <Details details={e.details} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ) : (
          <Empty testid="audit-empty">No entries match.</Empty>
        ))}
    </section>
  );
}

function Policies() {
  const gov = useApi('/api/v1/governance');
  if (gov.loading && !gov.data) return <Loading />;
  if (gov.error) return <ErrorBox error={gov.error} title="Could not load governance." testid="governance-error" />;
  const g = gov.data || {};
  return (
    <div class="two-col">
      <section class="card" aria-labelledby="class-h" data-testid="classifications">
        <h2 id="class-h">Classifications and masks</h2>
        <p class="muted small">Domains classify their columns; masks are set centrally and applied by the engine on every read.</p>
        <table class="table compact">
          <thead>
            <tr>
              <th scope="col">Classification</th>
              <th scope="col">Mask for readers without clearance</th>
            </tr>
          </thead>
          <tbody>
            {(g.classifications || []).map((c) => {
              const mask = (g.masks || []).find((m) => m.classification === c);
              return (
                <tr key={c}>
                  <td>
                    <ClassificationBadge value={c} />
                    {c === g.default_classification && <span class="small muted"> (default)</span>}
                  </td>
                  <td>{mask ? <code>{mask.method}</code> : <span class="muted">not masked</span>}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </section>
      <section class="card" aria-labelledby="rules-h" data-testid="rules">
        <h2 id="rules-h">Publish gates</h2>
        <p class="muted small">SQL over the catalog's metadata; an error row blocks a publish.</p>
        {(g.rules || []).length ? (
          <ul class="rules">
            {g.rules.map((r) => (
              <li key={r.name} class="rule-item" data-testid={tid('rule', r.name)}>
                <div class="card-head">
                  <strong class="mono">{r.name}</strong>
                  <span class={`badge ${r.severity === 'error' ? 'badge-error-soft' : 'badge-warn'}`}>{r.severity}</span>
                  {r.violations?.length ? (
                    <span class={`badge ${r.severity === 'error' ? 'badge-error' : 'badge-warn'}`}>
                      {r.violations.length} violation{r.violations.length === 1 ? '' : 's'}
                    </span>
                  ) : (
                    <span class="badge badge-ok">✓ passing</span>
                  )}
                </div>
                <p>{r.description}</p>
                <details>
                  <summary>SQL</summary>
                  <pre class="code">{r.sql}</pre>
                </details>
                {!!r.violations?.length && (
                  <ul class="violations small">
                    {r.violations.map((v, i) => (
                      <li key={i}>
                        {[v.domain, v.product].filter(Boolean).join('.') || '(mesh)'}
                        {v.row != null && <span class="muted"> — {typeof v.row === 'object' ? JSON.stringify(v.row) : String(v.row)}</span>}
                      </li>
                    ))}
                  </ul>
                )}
              </li>
            ))}
          </ul>
        ) : (
          <Empty>No publish gates.</Empty>
        )}
      </section>
    </div>
  );
}

export function Governance({ me }) {
  if (!me.admin) {
    return (
      <div class="page" data-testid="page-governance">
        <h1>Governance</h1>
        <Notice kind="warn" testid="admins-only">
          This page is for platform admins. Ask the platform team if you need to see the policies or the audit log.
        </Notice>
      </div>
    );
  }
  return (
    <div class="page" data-testid="page-governance">
      <header class="page-head">
        <h1>Governance</h1>
        <p class="muted">Global policies written once, enforced on every read and every publish, and the tamper-evident audit log.</p>
      </header>
      <Policies />
      <Audit />
    </div>
  );
}
