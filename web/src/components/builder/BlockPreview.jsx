// The selected block's first rows as the signed-in user reads them (masked columns marked as
// the product page marks them), its row count, and a profile of each column.
import { useState } from 'preact/hooks';
import { formatNumber, isNumericType, tid } from '../../util.js';
import { ErrorBox, Loading } from '../common.jsx';
import { DataGrid } from '../DataGrid.jsx';
import { Problems } from './fields.jsx';
import { useProfile } from './previews.js';

// Ten bars, as tall as their counts, in a small inline SVG.
export function Histogram({ bins, column }) {
  if (!bins?.length) return null;
  const w = 100;
  const h = 24;
  const max = Math.max(1, ...bins.map((b) => Number(b.count) || 0));
  const bw = w / bins.length;
  const fmt = (v) => (Math.abs(v) >= 1000 ? Math.round(v).toLocaleString() : Number(v.toPrecision(4)).toString());
  return (
    <svg class="histogram" viewBox={`0 0 ${w} ${h}`} width={w} height={h} role="img" aria-label={`Distribution of ${column}`} data-testid={tid('hist', column)}>
      {bins.map((b, i) => {
        const bh = ((Number(b.count) || 0) / max) * (h - 2);
        return (
          <rect key={i} x={i * bw + 0.5} y={h - bh} width={bw - 1} height={bh} class="bar">
            <title>{`${fmt(b.from)} – ${fmt(b.to)}: ${formatNumber(b.count)}`}</title>
          </rect>
        );
      })}
    </svg>
  );
}

function Profile({ data }) {
  const sample = data.profile_sample;
  const from = sample
    ? `Nulls over all ${formatNumber(data.row_count)} rows; distinct values, min, max and distribution over the first ${formatNumber(sample)}.`
    : `Every figure over all ${formatNumber(data.row_count)} rows.`;
  return (
    <div class="table-wrap">
      <p class="muted small" data-testid="profile-sample">
        {from}
      </p>
      <table class="table compact profile" data-testid="preview-profile">
        <caption class="sr-only">Profile of each column. {from}</caption>
        <thead>
          <tr>
            <th scope="col">Column</th>
            <th scope="col">Type</th>
            <th scope="col" class="num">
              Nulls
            </th>
            <th scope="col" class="num">
              Distinct
            </th>
            <th scope="col">Min</th>
            <th scope="col">Max</th>
            <th scope="col">Distribution</th>
          </tr>
        </thead>
        <tbody>
          {(data.profile || []).map((p) => (
            <tr key={p.column} data-testid={tid('profile', p.column)} data-masked={p.masked ? 'true' : 'false'}>
              <th scope="row" class="mono">
                {p.column}
                {p.masked && (
                  <span class="badge badge-mask">
                    <span aria-hidden="true">◐ </span>masked
                  </span>
                )}
              </th>
              <td class="mono small">{p.type}</td>
              <td class="num">
                {formatNumber(p.nulls)}
                {data.row_count > 0 && p.nulls > 0 && <span class="muted small"> ({Math.round((100 * p.nulls) / data.row_count)}%)</span>}
              </td>
              <td class="num">≈{formatNumber(p.distinct)}</td>
              <td class={`mono small${isNumericType(p.type) ? ' num' : ''}`}>{p.min ?? <span class="null">NULL</span>}</td>
              <td class={`mono small${isNumericType(p.type) ? ' num' : ''}`}>{p.max ?? <span class="null">NULL</span>}</td>
              <td>{p.histogram ? <Histogram bins={p.histogram} column={p.column} /> : <span class="muted small">–</span>}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

const TABS = [
  ['rows', 'First rows'],
  ['profile', 'Column profile'],
  ['sql', 'SQL'],
];

// entry: the block's preview (see planPreviews); onRetry asks again after an error.
export function BlockPreview({ blockId, entry, onRetry }) {
  const [tab, setTab] = useState('rows');
  const data = entry?.state === 'ok' ? entry.data : null;
  const profile = useProfile(entry, tab === 'profile');
  const masked = data ? data.columns.filter((c) => c.masked).map((c) => c.name) : [];
  return (
    <section class="card block-preview" aria-labelledby="preview-title" data-testid="block-preview" data-block={blockId} data-state={entry?.state || 'none'}>
      <div class="card-head">
        <h2 id="preview-title">
          Preview of <span class="mono">{blockId}</span>
        </h2>
        {data && (
          <span class="muted small" data-testid="preview-row-count" data-rows={data.row_count}>
            {formatNumber(data.row_count)} rows{data.truncated || data.rows.length < data.row_count ? `, the first ${formatNumber(data.rows.length)} shown` : ''} · {data.duration_ms} ms ·
            read as you
          </span>
        )}
      </div>
      {entry?.state === 'incomplete' && (
        <div class="muted">
          <p>Finish this block to preview it:</p>
          <Problems problems={entry.problems} testid="preview-problems" />
        </div>
      )}
      {entry?.state === 'waiting' && <p class="muted">Previews its input{entry.inputs.length > 1 ? 's' : ''} first ({entry.inputs.join(', ')}); finish {entry.inputs.length > 1 ? 'them' : 'it'} to see this block's rows.</p>}
      {(entry?.state === 'loading' || entry?.state === 'missing') && <Loading label="Reading the first rows…" />}
      {entry?.state === 'error' && (
        <ErrorBox error={entry.error} title={entry.error.status === 403 ? 'Access denied.' : 'The server could not preview this block.'} testid="preview-error">
          <div class="actions">
            <button type="button" class="btn btn-small" onClick={() => onRetry(entry.sig)} data-testid="preview-retry">
              Try again
            </button>
          </div>
        </ErrorBox>
      )}
      {data && (
        <>
          {(data.masked?.length > 0 || data.filtered?.length > 0) && (
            <p class="small governance-note" data-testid="preview-governance">
              {data.masked?.length > 0 && (
                <span data-testid="preview-masked">
                  <span class="badge badge-mask">
                    <span aria-hidden="true">◐ </span>masked for you
                  </span>{' '}
                  {data.masked.join(', ')}.{' '}
                </span>
              )}
              {data.filtered?.length > 0 && <span data-testid="preview-filtered">A row filter applies to {data.filtered.join(', ')}: you see only some rows. </span>}
              <span class="muted">The product is built as its domain, which may see more.</span>
            </p>
          )}
          <div class="tabs tabs-small" role="tablist" aria-label="Preview">
            {TABS.map(([id, label]) => (
              <button
                key={id}
                type="button"
                role="tab"
                id={`preview-tab-${id}`}
                aria-selected={tab === id}
                aria-controls="preview-panel"
                class={`tab${tab === id ? ' tab-active' : ''}`}
                onClick={() => setTab(id)}
                data-testid={`preview-tab-${id}`}
              >
                {label}
              </button>
            ))}
          </div>
          <div role="tabpanel" id="preview-panel" aria-labelledby={`preview-tab-${tab}`}>
            {tab === 'rows' && <DataGrid result={{ columns: data.columns, rows: data.rows, masked }} testid="preview-grid" caption={`First rows of ${blockId}`} />}
            {tab === 'profile' && profile.state === 'ok' && <Profile data={{ ...data, profile: profile.profile, profile_sample: profile.sample }} />}
            {tab === 'profile' && profile.state === 'loading' && <Loading label="Profiling every column…" />}
            {tab === 'profile' && profile.state === 'error' && <ErrorBox error={profile.error} title="The server could not profile this block." testid="profile-error" />}
            {tab === 'sql' && (
              <>
                <p class="muted small">What the builder wrote for this block and those it reads; it ran through the governed query path as you.</p>
                <pre class="code" data-testid="preview-sql">
                  {data.sql}
                </pre>
              </>
            )}
          </div>
        </>
      )}
    </section>
  );
}
