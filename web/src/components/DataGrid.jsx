// A result grid for query, sample and API results: {columns:[{name,type}], rows:[[…]], masked:[name…]}.
import { cellText, isNumericType, tid } from '../util.js';

const MAX_RENDERED = 2000;

export function DataGrid({ result, testid = 'grid', caption }) {
  const columns = result?.columns || [];
  const rows = result?.rows || [];
  const masked = new Set(result?.masked || []);
  const shown = rows.length > MAX_RENDERED ? rows.slice(0, MAX_RENDERED) : rows;
  return (
    <div class="grid-wrap" data-testid={testid}>
      <table class="grid">
        {caption && <caption class="sr-only">{caption}</caption>}
        <thead>
          <tr>
            {columns.map((c) => {
              const isMasked = masked.has(c.name);
              return (
                <th
                  scope="col"
                  key={c.name}
                  class={isMasked ? 'masked-col' : undefined}
                  data-testid={tid('col', c.name)}
                  data-masked={isMasked ? 'true' : 'false'}
                  title={isMasked ? `${c.name} is masked for you by governance policy` : `${c.name} (${c.type})`}
                >
                  <span class="col-name">{c.name}</span>
                  <span class="col-type">{c.type}</span>
                  {isMasked && (
                    <span class="badge badge-mask" data-testid={tid('masked', c.name)}>
                      <span aria-hidden="true">◐ </span>masked
                    </span>
                  )}
                </th>
              );
            })}
          </tr>
        </thead>
        <tbody>
          {shown.map((r, i) => (
            <tr key={i}>
              {columns.map((c, j) => {
                const t = cellText(r[j]);
                const cls = [isNumericType(c.type) ? 'num' : '', masked.has(c.name) ? 'masked-cell' : '']
                  .filter(Boolean)
                  .join(' ');
                return (
                  <td key={j} class={cls || undefined}>
                    {t === null ? <span class="null">NULL</span> : t}
                  </td>
                );
              })}
            </tr>
          ))}
        </tbody>
      </table>
      {rows.length > shown.length && (
        <p class="muted small">
          Showing the first {MAX_RENDERED.toLocaleString()} of {rows.length.toLocaleString()} rows; download CSV for all.
        </p>
      )}
      {!rows.length && <p class="empty">No rows.</p>}
    </div>
  );
}
