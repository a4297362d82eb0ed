// Home: every data product, searchable and filterable.
import { useMemo, useState } from 'preact/hooks';
import { enc, useApi, useDebounced } from '../api.js';
import { AccessBadge, Empty, ErrorBox, FreshnessBadge, Loading, QualityBadge, StatusBadge } from '../components/common.jsx';
import { productHref } from '../router.js';
import { productKey, splitSnippet, tid } from '../util.js';

// Kept across page changes so "back" returns to the same search.
const remembered = { q: '', domain: '', tag: '', status: '', readable: false };

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

export function Marketplace() {
  const [q, setQ] = useState(remembered.q);
  const [domain, setDomain] = useState(remembered.domain);
  const [tag, setTag] = useState(remembered.tag);
  const [status, setStatus] = useState(remembered.status);
  const [readable, setReadable] = useState(remembered.readable);
  Object.assign(remembered, { q, domain, tag, status, readable });

  const products = useApi('/api/v1/products');
  const dq = useDebounced(q.trim(), 200);
  const search = useApi(dq ? `/api/v1/search?q=${enc(dq)}` : null);

  const all = products.data || [];
  const facets = useMemo(() => {
    const uniq = (xs) => [...new Set(xs.filter(Boolean))].sort();
    return {
      domains: uniq(all.map((p) => p.domain)),
      tags: uniq(all.flatMap((p) => p.tags || [])),
      statuses: uniq(all.map((p) => p.status)),
    };
  }, [all]);

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
    return items.filter(
      ({ p }) =>
        (!domain || p.domain === domain) &&
        (!tag || (p.tags || []).includes(tag)) &&
        (!status || p.status === status) &&
        (!readable || p.can_read),
    );
  }, [all, dq, search.data, domain, tag, status, readable]);

  const filtering = domain || tag || status || readable;
  const searching = dq && (search.loading || dq !== q.trim());

  return (
    <div class="page" data-testid="page-marketplace">
      <header class="page-head">
        <h1>Data products</h1>
        <p class="muted">Find a product, check that it is fresh and trustworthy, and see whether you can read it.</p>
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
          {products.loading ? '' : `${list.length} ${list.length === 1 ? 'product' : 'products'}`}
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
            }}
            data-testid="clear-filters"
          >
            Clear search and filters
          </button>
        )}
      </div>
      <ErrorBox error={products.error} title="Could not load products." testid="products-error" />
      <ErrorBox error={search.error} title="Search failed." testid="search-error" />
      {products.loading && !products.data ? (
        <Loading label="Loading products…" />
      ) : list.length ? (
        <ul class="cards" data-testid="product-list">
          {list.map(({ p, hit }) => (
            <ProductCard key={productKey(p)} p={p} hit={hit} />
          ))}
        </ul>
      ) : (
        !searching && <Empty testid="no-results">No product matches. Try fewer words or clear the filters.</Empty>
      )}
    </div>
  );
}
