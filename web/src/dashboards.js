// Dashboards: the API calls and the pure helpers the dashboard page and the query console share.
import { api, enc } from './api.js';
import { isNumericType } from './util.js';

export const dashboardPath = (domain, name) => `/api/v1/dashboards/${enc(domain)}/${enc(name)}`;

// A chart's name from its title: a SQL name ([a-z_][a-z0-9_]*), at most 60 characters.
export function sqlNameOf(title) {
  let s = String(title || '')
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .slice(0, 60)
    .replace(/_+$/g, '');
  if (/^[0-9]/.test(s)) s = `c_${s}`;
  return s;
}

export const isSqlName = (s) => /^[a-z_][a-z0-9_]*$/.test(s || '');

export function positionOf(chart) {
  const p = chart.position || {};
  return { x: p.x ?? 0, y: p.y ?? 0, width: p.width ?? 1, height: p.height ?? 1 };
}

// The first free cell (rows top to bottom, then left to right) for a tile of width × height.
export function freeSpot(charts, columns, width = 1, height = 1) {
  const w = Math.min(width, columns);
  const taken = new Set();
  let bottom = 0;
  for (const c of charts) {
    const p = positionOf(c);
    bottom = Math.max(bottom, p.y + p.height);
    for (let dy = 0; dy < p.height; dy++) for (let dx = 0; dx < p.width; dx++) taken.add(`${p.x + dx},${p.y + dy}`);
  }
  for (let y = 0; y <= bottom; y++) {
    for (let x = 0; x + w <= columns; x++) {
      let free = true;
      for (let dy = 0; dy < height && free; dy++) for (let dx = 0; dx < w && free; dx++) free = !taken.has(`${x + dx},${y + dy}`);
      if (free) return { x, y, width: w, height };
    }
  }
  return { x: 0, y: bottom, width: w, height };
}

// Pairs of tiles that share a cell (the server allows it; the editor warns).
export function overlaps(charts) {
  const owner = new Map();
  const out = new Set();
  for (const c of charts) {
    const p = positionOf(c);
    for (let dy = 0; dy < p.height; dy++) {
      for (let dx = 0; dx < p.width; dx++) {
        const k = `${p.x + dx},${p.y + dy}`;
        if (owner.has(k) && owner.get(k) !== c.name) out.add(`${owner.get(k)} / ${c.name}`);
        else owner.set(k, c.name);
      }
    }
  }
  return [...out];
}

// The dashboard as PUT takes it, from GET's answer and what was edited (each part optional).
export function dashboardBody(
  detail,
  {
    charts = detail.charts,
    columns = detail.layout?.columns,
    description = detail.description,
    tags = detail.tags || [],
    status = detail.status,
    visibility = detail.visibility,
    filters = detail.filters || [],
  } = {},
) {
  const body = { owner: detail.owner, description, status, tags, visibility, layout: { columns: columns || 2 } };
  if (filters.length) {
    body.filters = filters.map(({ name, column, label }) => (label ? { name, column, label } : { name, column }));
  }
  body.charts = charts.map((c) => {
    const item = { name: c.name, title: c.title, sql: c.sql };
    if (c.vegaLite) item.vegaLite = c.vegaLite;
    item.position = positionOf(c);
    return item;
  });
  return body;
}

// What the dashboard editor's draft changes, in dashboardBody's terms: empty description
// parts left out, tags split at commas, blank filter rows dropped.
export function draftChanges(draft) {
  const description = {};
  for (const key of ['purpose', 'usage', 'limitations']) {
    const text = (draft[key] || '').trim();
    if (text) description[key] = text;
  }
  const tags = (draft.tags || '')
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  const filters = (draft.filters || [])
    .map((f) => ({ name: (f.name || '').trim(), column: (f.column || '').trim(), label: (f.label || '').trim() }))
    .filter((f) => f.name || f.column || f.label);
  return { charts: draft.charts, columns: draft.columns, description, tags: [...new Set(tags)], status: draft.status, visibility: draft.visibility, filters };
}

export function saveDashboard(domain, name, body) {
  return api(`/api/v1/domains/${enc(domain)}/dashboards/${enc(name)}`, { method: 'PUT', body });
}

// Rows as Vega-Lite data: one object per row; numbers of numeric columns as numbers (DECIMAL
// arrives as text). Masked values stay as the server sent them.
export function chartValues(result) {
  const cols = result.columns || [];
  const numeric = cols.map((c) => isNumericType(c.type) && !c.masked);
  return (result.rows || []).map((r) => {
    const o = {};
    cols.forEach((c, i) => {
      let v = r[i];
      if (numeric[i] && v !== null && v !== '' && Number.isFinite(Number(v))) v = Number(v);
      o[c.name] = v;
    });
    return o;
  });
}

const TILE_THEME = {
  font: 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif',
  mark: { color: '#0f6b61' },
  axis: { labelColor: '#37474f', titleColor: '#263238', gridColor: '#e3e8ea' },
  view: { stroke: null },
};

// The stored spec with this viewer's rows, sized to its tile.
export function tileSpec(vegaLite, result, height) {
  const { data, width, height: _h, autosize, ...rest } = vegaLite || {};
  return {
    ...rest,
    config: { ...TILE_THEME, ...(rest.config || {}) },
    width: 'container',
    height,
    autosize: { type: 'fit', contains: 'padding' },
    data: { values: chartValues(result) },
  };
}
