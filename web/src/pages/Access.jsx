// Access: request access, decide requests you own, follow your requests, see and manage grants.
import { useMemo, useState } from 'preact/hooks';
import { api, enc, useApi } from '../api.js';
import { Empty, ErrorBox, Loading, Notice } from '../components/common.jsx';
import { productHref } from '../router.js';
import { formatTime, productKey, tid } from '../util.js';

function StatusPill({ status }) {
  const cls = { pending: 'badge-warn', approved: 'badge-ok', denied: 'badge-error' }[status] || 'badge-muted';
  return (
    <span class={`badge ${cls}`} data-status={status}>
      {status}
    </span>
  );
}

function ProductLink({ product, context }) {
  const dot = product.indexOf('.');
  if (dot < 0) return <span>{product}</span>;
  return (
    <a href={productHref(product.slice(0, dot), product.slice(dot + 1))} data-testid={tid('product-link', context, product)}>
      {product}
    </a>
  );
}

function RequestForm({ products, initial, onSent }) {
  const [product, setProduct] = useState(initial || '');
  const [purpose, setPurpose] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const [sent, setSent] = useState(null);
  const options = [...products].sort((a, b) => productKey(a).localeCompare(productKey(b)));
  const chosen = options.find((p) => productKey(p) === product);
  const submit = async (e) => {
    e.preventDefault();
    setError(null);
    setSent(null);
    if (!product) return setError('Choose the product you need.');
    if (purpose.trim().length < 5) return setError('Say in a sentence what you need the data for; the owners read it to decide.');
    setBusy(true);
    try {
      const r = await api('/api/v1/access-requests', { method: 'POST', body: { product, purpose: purpose.trim() } });
      setSent(r);
      setPurpose('');
      onSent();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="card" onSubmit={submit} data-testid="access-request-form">
      <h2>Request access</h2>
      <div class="form-row">
        <label class="field grow" for="access-product">
          <span>Product</span>
          <select id="access-product" value={product} onChange={(e) => setProduct(e.currentTarget.value)} data-testid="access-product">
            <option value="">Choose a product…</option>
            {options.map((p) => (
              <option key={productKey(p)} value={productKey(p)}>
                {productKey(p)}
                {p.can_read ? ' (you can read it)' : ''}
              </option>
            ))}
          </select>
        </label>
      </div>
      {chosen?.can_read && <p class="small muted">You can already read {product}.</p>}
      {chosen && <p class="small muted">Owners of the {chosen.domain} domain (owner: {chosen.owner}) decide it.</p>}
      <label class="field" for="access-purpose">
        <span>Purpose</span>
        <textarea
          id="access-purpose"
          rows="3"
          value={purpose}
          onInput={(e) => setPurpose(e.currentTarget.value)}
          placeholder="What will you use it for?"
          data-testid="access-purpose"
        />
      </label>
      <ErrorBox error={error} testid="access-request-error" />
      {sent && (
        <Notice kind="success" testid="access-request-sent">
          Request #{sent.id} for {sent.product} is {sent.status}.
        </Notice>
      )}
      <div class="actions">
        <button type="submit" class="btn btn-primary" disabled={busy} data-testid="access-request-submit">
          {busy ? 'Sending…' : 'Send request'}
        </button>
      </div>
    </form>
  );
}

function InboxRow({ r, onDecided }) {
  const [note, setNote] = useState('');
  const [busy, setBusy] = useState(null);
  const [error, setError] = useState(null);
  const decide = async (verb) => {
    setBusy(verb);
    setError(null);
    try {
      await api(`/api/v1/access-requests/${enc(r.id)}/${verb}`, { method: 'POST', body: { note: note.trim() } });
      onDecided();
    } catch (err) {
      setError(err);
      setBusy(null);
    }
  };
  return (
    <li class="inbox-row card" data-testid={tid('inbox-row', r.id)} data-product={r.product} data-requester={r.requester}>
      <div class="inbox-main">
        <p>
          <strong>{r.requester}</strong> asks to read <ProductLink product={r.product} context={`inbox-${r.id}`} />
          <span class="muted small"> · #{r.id} · {formatTime(r.created_at)}</span>
        </p>
        <blockquote class="purpose-quote">{r.purpose}</blockquote>
        <label class="field" for={`note-${r.id}`}>
          <span>Note (optional, kept with the decision)</span>
          <input
            id={`note-${r.id}`}
            type="text"
            value={note}
            onInput={(e) => setNote(e.currentTarget.value)}
            data-testid={tid('note', r.id)}
            placeholder="e.g. Approved for the APAC report; review in 6 months"
          />
        </label>
        <ErrorBox error={error} testid={tid('decide-error', r.id)} />
      </div>
      <div class="inbox-actions">
        <button type="button" class="btn btn-primary" disabled={!!busy} onClick={() => decide('approve')} data-testid={tid('approve', r.id)}>
          {busy === 'approve' ? 'Approving…' : 'Approve'}
        </button>
        <button type="button" class="btn btn-danger" disabled={!!busy} onClick={() => decide('deny')} data-testid={tid('deny', r.id)}>
          {busy === 'deny' ? 'Denying…' : 'Deny'}
        </button>
      </div>
    </li>
  );
}

function RequestsTable({ rows, testid, showRequester }) {
  if (!rows.length) return <Empty testid={`${testid}-empty`}>None.</Empty>;
  return (
    <div class="table-wrap">
      <table class="table" data-testid={testid}>
        <thead>
          <tr>
            <th scope="col">#</th>
            <th scope="col">Product</th>
            {showRequester && <th scope="col">Requester</th>}
            <th scope="col">Purpose</th>
            <th scope="col">Status</th>
            <th scope="col">Asked</th>
            <th scope="col">Decided</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={r.id} data-testid={tid('request-row', r.id)} data-product={r.product} data-status={r.status}>
              <td>{r.id}</td>
              <td>
                <ProductLink product={r.product} context={`request-${r.id}`} />
              </td>
              {showRequester && <td>{r.requester}</td>}
              <td class="wrap">{r.purpose}</td>
              <td>
                <StatusPill status={r.status} />
              </td>
              <td class="nowrap">{formatTime(r.created_at)}</td>
              <td class="small">
                {r.decided_by ? (
                  <span>
                    {r.decided_by}, {formatTime(r.decided_at)}
                    {r.note && <span class="muted"> — “{r.note}”</span>}
                  </span>
                ) : (
                  <span class="muted">–</span>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function Grants({ me, products, grants, reload }) {
  const [error, setError] = useState(null);
  const [product, setProduct] = useState('');
  const [grantee, setGrantee] = useState('');
  const [busy, setBusy] = useState(false);
  const manageable = (key) => me.admin || (me.domains || []).includes(key.split('.')[0]);
  const ownProducts = products.filter((p) => manageable(productKey(p)));
  const revoke = async (g) => {
    setError(null);
    try {
      await api(`/api/v1/grants?product=${enc(g.product)}&grantee=${enc(g.grantee)}`, { method: 'DELETE' });
      reload();
    } catch (err) {
      setError(err);
    }
  };
  const grant = async (e) => {
    e.preventDefault();
    setError(null);
    if (!product || !/^(user|group|domain):\S+$/.test(grantee.trim())) {
      setError('Choose a product and name the grantee as user:NAME, group:NAME or domain:NAME.');
      return;
    }
    setBusy(true);
    try {
      await api('/api/v1/grants', { method: 'POST', body: { product, grantee: grantee.trim() } });
      setGrantee('');
      reload();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <section class="card" aria-labelledby="grants-h">
      <h2 id="grants-h">Grants</h2>
      <p class="muted small">Who may read which internal product, besides its own domain and admins.</p>
      <ErrorBox error={error} testid="grants-error" />
      {grants.length ? (
        <div class="table-wrap">
          <table class="table" data-testid="grants-table">
            <thead>
              <tr>
                <th scope="col">Product</th>
                <th scope="col">Grantee</th>
                <th scope="col">Granted by</th>
                <th scope="col">Since</th>
                <th scope="col">
                  <span class="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {grants.map((g) => (
                <tr key={`${g.product}|${g.grantee}|${g.id}`} data-testid={tid('grant-row', g.product, g.grantee)}>
                  <td>
                    <ProductLink product={g.product} context={`grant-${g.grantee}`} />
                  </td>
                  <td>{g.grantee}</td>
                  <td class="wrap">
                    {g.standing ? (
                      <span>
                        <span class="badge badge-muted" title="Declared in the product's spec; change it there">
                          standing
                        </span>{' '}
                        <span class="small muted mono">{g.granted_by}</span>
                      </span>
                    ) : (
                      g.granted_by || <span class="muted">–</span>
                    )}
                  </td>
                  <td class="nowrap">{g.granted_at ? formatTime(g.granted_at) : <span class="muted">–</span>}</td>
                  <td>
                    {manageable(g.product) && !g.standing && (
                      <button type="button" class="btn btn-small" onClick={() => revoke(g)} data-testid={tid('revoke', g.product, g.grantee)}>
                        Revoke
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : (
        <Empty testid="grants-empty">No grants you can see.</Empty>
      )}
      {ownProducts.length > 0 && (
        <form class="form-row grant-form" onSubmit={grant} data-testid="grant-form">
          <label class="field" for="grant-product">
            <span>Grant read access to</span>
            <select id="grant-product" value={product} onChange={(e) => setProduct(e.currentTarget.value)} data-testid="grant-product">
              <option value="">Choose a product…</option>
              {ownProducts.map((p) => (
                <option key={productKey(p)} value={productKey(p)}>
                  {productKey(p)}
                </option>
              ))}
            </select>
          </label>
          <label class="field grow" for="grant-grantee">
            <span>Grantee</span>
            <input
              id="grant-grantee"
              type="text"
              value={grantee}
              onInput={(e) => setGrantee(e.currentTarget.value)}
              placeholder="user:bob, group:analysts or domain:finance"
              data-testid="grant-grantee"
            />
          </label>
          <button type="submit" class="btn" disabled={busy} data-testid="grant-submit">
            Grant
          </button>
        </form>
      )}
    </section>
  );
}

export function Access({ me, query, onChanged }) {
  const requests = useApi('/api/v1/access-requests');
  const grants = useApi('/api/v1/grants');
  const products = useApi('/api/v1/products');
  const reload = () => {
    requests.reload();
    grants.reload();
    products.reload();
    onChanged?.();
  };
  const all = requests.data || [];
  const inbox = useMemo(() => all.filter((r) => r.can_decide && r.status === 'pending'), [all]);
  const mine = useMemo(() => all.filter((r) => r.requester === me.principal), [all, me]);
  const others = useMemo(() => all.filter((r) => r.requester !== me.principal && !(r.can_decide && r.status === 'pending')), [all, me]);

  return (
    <div class="page" data-testid="page-access">
      <header class="page-head">
        <h1>Access</h1>
        <p class="muted">Ask for data you need, decide what others ask of your domain, and see who holds which grant.</p>
      </header>
      <div class="two-col">
        <div>
          <section class="card" aria-labelledby="inbox-h" data-testid="inbox">
            <div class="card-head">
              <h2 id="inbox-h">Inbox</h2>
              <span class="badge badge-muted" data-testid="inbox-count">
                {inbox.length} to decide
              </span>
            </div>
            {requests.loading && !requests.data && <Loading />}
            <ErrorBox error={requests.error} title="Could not load requests." testid="requests-error" />
            {requests.data &&
              (inbox.length ? (
                <ul class="inbox">
                  {inbox.map((r) => (
                    <InboxRow key={r.id} r={r} onDecided={reload} />
                  ))}
                </ul>
              ) : (
                <Empty testid="inbox-empty">Nothing waits for your decision.</Empty>
              ))}
          </section>
          <section class="card" aria-labelledby="mine-h">
            <h2 id="mine-h">Your requests</h2>
            {requests.data && <RequestsTable rows={mine} testid="my-requests" />}
          </section>
        </div>
        <div>
          <RequestForm products={products.data || []} initial={query.get('product') || ''} onSent={reload} />
        </div>
      </div>
      {others.length > 0 && (
        <section class="card" aria-labelledby="others-h">
          <h2 id="others-h">Other requests you can see</h2>
          <RequestsTable rows={others} testid="other-requests" showRequester />
        </section>
      )}
      <ErrorBox error={grants.error} title="Could not load grants." testid="grants-load-error" />
      {grants.data && <Grants me={me} products={products.data || []} grants={grants.data} reload={reload} />}
    </div>
  );
}
