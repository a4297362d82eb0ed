// Home: every data product and dashboard, searchable and filterable.
import { useMemo, useState } from 'preact/hooks';
import { enc, useApi, useDebounced } from '../api.js';
import { AccessBadge, Empty, ErrorBox, FreshnessBadge, Loading, QualityBadge, StatusBadge } from '../components/common.jsx';
import { dashboardHref, productHref } from '../router.js';
import { productKey, splitSnippet, tid } from '../util.js';

// Kept across page changes so "back" returns to the same search.
const remembered = { q: '', domain: '', tag: '', status: '', readable: false, kind: '' };

function Snippet({ text, field }) {
  return (
    <p class="snippet small">
      {field && <span class="snippet-field">{field}: </span>}
      {splitSnippet(text).map((part, i) => (part.match ? <mark key={i}>{part.text}</mark> : <span key={i}>{part.text}</span>))}
    </p>
  );
}

function ProductCard({ p, hit }) {
  const key = productKey(p);
  return (
    <li class="card product-card" data-testid={tid('product-card', key)} data-can-read={p.can_read ? 'true' : 'false'}>
      <div class="card-head">
        <h2 class="card-title">
          <a href={productHref(p.domain, p.name)} data-testid={tid('product-link', key)}>
            {p.name}
          </a>
        </h2>
        <span class="chip chip-domain" title="Domain">
          {p.domain}
        </span>
      </div>
      <p class="small muted">
        Owner <strong>{p.owner || '–'}</strong> · v{p.version} · {p.type} · {p.visibility}
      </p>
      <p class="purpose">{p.purpose || <span class="muted">No purpose written.</span>}</p>
      {hit?.snippet && hit.field !== 'name' && <Snippet text={hit.snippet} field={hit.field} />}
      {!!p.tags?.length && (
        <ul class="tags" aria-label="Tags">
          {p.tags.map((t) => (
            <li key={t} class="chip">
              {t}
            </li>
          ))}
        </ul>
      )}
      <div class="badges">
        <FreshnessBadge freshness={p.freshness} testid={tid('freshness', key)} />
        <QualityBadge quality={p.quality} testid={tid('quality', key)} />
        <AccessBadge canRead={p.can_read} testid={tid('access', key)} />
        {p.status !== 'active' && <StatusBadge status={p.status} />}
      </div>
    </li>
  );
}

// A dashboard: charts over governed queries, listed beside the products it reads.
function DashboardCard({ d }) {
  const key = productKey(d);
  return (
    <li class="card product-card dashboard-card" data-testid={tid('dashboard-card', key)} data-kind="dashboard">
      <div class="card-head">
        <h2 class="card-title">
          <a href={dashboardHref(d.domain, d.name)} data-testid={tid('dashboard-link', key)}>
            {d.name}
          </a>
        </h2>
        <span class="chip chip-dashboard" title="A dashboard: charts over governed queries">
          <DashboardIcon /> Dashboard
        </span>
        <span class="chip chip-domain" title="Domain">
          {d.domain}
        </span>
      </div>
      <p class="small muted">
        Owner <strong>{d.owner || '–'}</strong> · {d.visibility} ·{' '}
        <span data-testid={tid('dashboard-charts', key)}>
          {d.charts} {d.charts === 1 ? 'chart' : 'charts'}
        </span>
      </p>
      <p class="purpose">{d.purpose || <span class="muted">No purpose written.</span>}</p>
      {!!d.tags?.length && (
        <ul class="tags" aria-label="Tags">
          {d.tags.map((t) => (
            <li key={t} class="chip">
              {t}
            </li>
          ))}
        </ul>
      )}
      {!!d.ports?.length && (
        <p class="small muted dash-ports" data-testid={tid('dashboard-ports', key)}>
          Reads {d.ports.map((p) => <code key={p}>{p}</code>)}
        </p>
      )}
      <div class="badges">
        <StatusBadge status={d.status} />
        <span class="small muted">Each viewer sees it through their own grants and masks.</span>
      </div>
    </li>
  );
}

function DashboardIcon() {
  return (
    <svg class="icon" viewBox="0 0 16 16" width="12" height="12" aria-hidden="true" focusable="false">
      <path d="M2 2h5v6H2zM9 2h5v3H9zM9 7h5v7H9zM2 10h5v4H2z" fill="currentColor" />
    </svg>
  );
}

// Whether every word of the search is somewhere in the dashboard's name, purpose, tags, owner or
// ports (the server's search indexes products only).
function dashboardMatches(d, q) {
  const text = [d.domain, d.name, `${d.domain}.${d.name}`, d.purpose, d.owner, ...(d.tags || []), ...(d.ports || []), 'dashboard']
    .join(' ')
    .toLowerCase();
  return q
    .toLowerCase()
    .split(/\s+/)
    .filter(Boolean)
    .every((w) => text.includes(w));
}

export function Marketplace() {
  const [q, setQ] = useState(remembered.q);
  const [domain, setDomain] = useState(remembered.domain);
  const [tag, setTag] = useState(remembered.tag);
  const [status, setStatus] = useState(remembered.status);
  const [readable, setReadable] = useState(remembered.readable);
  const [kind, setKind] = useState(remembered.kind);
  Object.assign(remembered, { q, domain, tag, status, readable, kind });

  const products = useApi('/api/v1/products');
  const dashboards = useApi('/api/v1/dashboards');
  const dq = useDebounced(q.trim(), 200);
  const search = useApi(dq ? `/api/v1/search?q=${enc(dq)}` : null);

  const all = products.data || [];
  const boards = dashboards.data || [];
  const facets = useMemo(() => {
    const uniq = (xs) => [...new Set(xs.filter(Boolean))].sort();
    const every = [...all, ...boards];
    return {
      domains: uniq(every.map((p) => p.domain)),
      tags: uniq(every.flatMap((p) => p.tags || [])),
      statuses: uniq(every.map((p) => p.status)),
    };
  }, [all, boards]);

  const list = useMemo(() => {
    let items;
    if (dq) {
      const byKey = new Map(all.map((p) => [productKey(p), p]));
      const seen = new Map();
      for (const h of search.data || []) {
        const k = `${h.domain}.${h.name}`;
        if (!seen.has(k)) seen.set(k, h);
      }
      items = [...seen.entries()]
        .map(([k, hit]) => ({ p: byKey.get(k) || { domain: hit.domain, name: hit.name, tags: [], freshness: null }, hit }))
        .filter((x) => x.p);
    } else {
      items = [...all].sort((a, b) => productKey(a).localeCompare(productKey(b))).map((p) => ({ p, hit: null }));
    }
    const boardItems = boards.filter((d) => !dq || dashboardMatches(d, dq)).map((d) => ({ d, p: d, hit: null }));
    if (kind === 'dashboard') items = [];
    if (kind !== 'product') {
      // Dashboards among the products, by address; after the search's ranked hits when searching.
      items = dq ? [...items, ...boardItems] : [...items, ...boardItems].sort((a, b) => productKey(a.p).localeCompare(productKey(b.p)));
    }
    return items.filter(
      ({ p, d }) =>
        (!domain || p.domain === domain) &&
        (!tag || (p.tags || []).includes(tag)) &&
        (!status || p.status === status) &&
        // A dashboard has no one answer to "can I read it": its tiles say, each for its ports.
        (!readable || d || p.can_read),
    );
  }, [all, boards, dq, search.data, domain, tag, status, readable, kind]);

  const nBoards = list.filter((x) => x.d).length;
  const nProducts = list.length - nBoards;
  const filtering = domain || tag || status || readable || kind;
  const searching = dq && (search.loading || dq !== q.trim());

  return (
    <div class="page" data-testid="page-marketplace">
      <header class="page-head">
        <h1>Data products</h1>
        <p class="muted">
          Find a product or a dashboard, check that it is fresh and trustworthy, and see whether you can read it.
        </p>
      </header>
      <div class="search-bar" role="search">
        <label class="field grow" for="search">
          <span>Search</span>
          <input
            id="search"
            type="search"
            value={q}
            onInput={(e) => setQ(e.currentTarget.value)}
            placeholder="Search names, descriptions, tags and columns — e.g. revenue, email, orders"
            data-testid="search-input"
            autocomplete="off"
          />
        </label>
        <label class="field" for="filter-domain">
          <span>Domain</span>
          <select id="filter-domain" value={domain} onChange={(e) => setDomain(e.currentTarget.value)} data-testid="filter-domain">
            <option value="">All domains</option>
            {facets.domains.map((d) => (
              <option key={d} value={d}>
                {d}
              </option>
            ))}
          </select>
        </label>
        <label class="field" for="filter-tag">
          <span>Tag</span>
          <select id="filter-tag" value={tag} onChange={(e) => setTag(e.currentTarget.value)} data-testid="filter-tag">
            <option value="">All tags</option>
            {facets.tags.map((t) => (
              <option key={t} value={t}>
                {t}
              </option>
            ))}
          </select>
        </label>
        <label class="field" for="filter-status">
          <span>Status</span>
          <select id="filter-status" value={status} onChange={(e) => setStatus(e.currentTarget.value)} data-testid="filter-status">
            <option value="">Any status</option>
            {facets.statuses.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
        <label class="field" for="filter-kind">
          <span>Kind</span>
          <select id="filter-kind" value={kind} onChange={(e) => setKind(e.currentTarget.value)} data-testid="filter-kind">
            <option value="">Products and dashboards</option>
            <option value="product">Data products</option>
            <option value="dashboard">Dashboards</option>
          </select>
        </label>
        <label class="check" for="filter-readable">
          <input
            id="filter-readable"
            type="checkbox"
            checked={readable}
            onChange={(e) => setReadable(e.currentTarget.checked)}
            data-testid="filter-readable"
          />
          <span>Only what I can read</span>
        </label>
      </div>
      <div class="result-meta" aria-live="polite">
        <span data-testid="result-count">
          {products.loading
            ? ''
            : `${nProducts} ${nProducts === 1 ? 'product' : 'products'}${nBoards ? ` · ${nBoards} ${nBoards === 1 ? 'dashboard' : 'dashboards'}` : ''}`}
          {dq ? ` matching “${dq}”` : ''}
        </span>
        {searching && <span class="muted small"> · searching…</span>}
        {(filtering || q) && (
          <button
            type="button"
            class="btn btn-link"
            onClick={() => {
              setQ('');
              setDomain('');
              setTag('');
              setStatus('');
              setReadable(false);
              setKind('');
            }}
            data-testid="clear-filters"
          >
            Clear search and filters
          </button>
        )}
      </div>
      <ErrorBox error={products.error} title="Could not load products." testid="products-error" />
      <ErrorBox error={search.error} title="Search failed." testid="search-error" />
      <ErrorBox error={dashboards.error} title="Could not load dashboards." testid="dashboards-error" />
      {products.loading && !products.data ? (
        <Loading label="Loading products…" />
      ) : list.length ? (
        <ul class="cards" data-testid="product-list">
          {list.map(({ p, d, hit }) =>
            d ? <DashboardCard key={`dashboard:${productKey(d)}`} d={d} /> : <ProductCard key={productKey(p)} p={p} hit={hit} />,
          )}
        </ul>
      ) : (
        !searching && <Empty testid="no-results">No product matches. Try fewer words or clear the filters.</Empty>
      )}
    </div>
  );
}
