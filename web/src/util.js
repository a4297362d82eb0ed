// Small formatting helpers shared by the pages.

export function formatAge(seconds) {
  if (seconds == null || !Number.isFinite(seconds)) return '';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  if (s < 86400 * 2) return `${Math.round(s / 3600)} h`;
  if (s < 86400 * 60) return `${Math.round(s / 86400)} d`;
  return `${Math.round(s / (86400 * 30))} mo`;
}

export function formatTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toLocaleString(undefined, {
    year: 'numeric',
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
  });
}

export function formatNumber(n) {
  if (n == null) return '–';
  return Number(n).toLocaleString();
}

// 1536 → "1.5 KB" (binary units, as a file manager shows them).
export function formatBytes(n) {
  if (n == null || !Number.isFinite(Number(n))) return '';
  const units = ['bytes', 'KB', 'MB', 'GB'];
  let v = Number(n);
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  if (i === 0) return `${v} byte${v === 1 ? '' : 's'}`;
  return `${v >= 10 ? Math.round(v) : Math.round(v * 10) / 10} ${units[i]}`;
}

// "…kept [orders] (cancelled…" → [{text, match}]
export function splitSnippet(snippet) {
  const out = [];
  const re = /\[([^\]]*)\]/g;
  let last = 0;
  let m;
  while ((m = re.exec(snippet || '')) !== null) {
    if (m.index > last) out.push({ text: snippet.slice(last, m.index), match: false });
    out.push({ text: m[1], match: true });
    last = m.index + m[0].length;
  }
  if (last < (snippet || '').length) out.push({ text: snippet.slice(last), match: false });
  return out;
}

const NUMERIC = /^(TINYINT|SMALLINT|INTEGER|INT|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|FLOAT|REAL|DOUBLE|DECIMAL|NUMERIC)/i;
const TEMPORAL = /^(DATE|TIMESTAMP|TIME)/i;

export function isNumericType(type) {
  return NUMERIC.test(type || '');
}

export function isTemporalType(type) {
  return TEMPORAL.test(type || '') && !/^TIME($|\s)/i.test(type || '');
}

export function cellText(v) {
  if (v === null || v === undefined) return null;
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

// RFC 4180 CSV from a query result; NULL is an empty field.
export function toCsv(columns, rows) {
  const field = (v) => {
    const s = cellText(v);
    if (s === null) return '';
    return /[",\r\n]/.test(s) || /^\s|\s$/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  const lines = [columns.map((c) => field(c.name)).join(',')];
  for (const r of rows) lines.push(r.map(field).join(','));
  return `${lines.join('\r\n')}\r\n`;
}

export function downloadText(filename, text, type = 'text/csv;charset=utf-8') {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

// A stable, attribute-safe piece of a data-testid.
export function tid(...parts) {
  return parts
    .map((p) => String(p ?? '').replace(/[^A-Za-z0-9_.:-]+/g, '_'))
    .join('-');
}

export function productKey(p) {
  return `${p.domain}.${p.name}`;
}

// The product to ask for after a denial: the hint names it ("canopy access request D.P …"),
// else the message ("… has no grant on D.P …").
export function deniedProduct(error) {
  const m =
    /access request ([A-Za-z0-9_]+\.[A-Za-z0-9_]+)/.exec(error?.hint || '') ||
    /no grant on ([A-Za-z0-9_]+\.[A-Za-z0-9_]+)/.exec(error?.message || '');
  return m ? m[1] : null;
}
