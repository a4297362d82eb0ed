// A refused save: the server's message and hint, and its diagnostics (file:line: message, hint)
// when the mesh would not validate with the change.
import { ErrorBox } from './common.jsx';

// Diagnostics as the server gives them: file:line:column, severity, message, hint.
export function DiagnosticList({ items, testid, itemPrefix }) {
  if (!items?.length) return null;
  return (
    <ul class="diagnostics" data-testid={testid}>
      {items.map((d, i) => (
        <li key={i} class={`diag-${d.severity}`} data-testid={`${itemPrefix}-${i}`}>
          <span class="mono">
            {d.file || '(mesh)'}
            {d.line ? `:${d.line}` : ''}
            {d.column ? `:${d.column}` : ''}
          </span>
          : <strong>{d.severity}</strong> {d.message}
          {d.hint && <div class="hint small">{d.hint}</div>}
        </li>
      ))}
    </ul>
  );
}

export function SaveProblem({ error, testid = 'save-error' }) {
  if (!error) return null;
  const diagnostics = error.diagnostics || [];
  const title =
    error.status === 403 ? 'You may not save here.' : diagnostics.length ? 'Not saved: it would not validate.' : 'Not saved.';
  return (
    <ErrorBox error={error} title={title} testid={testid}>
      <DiagnosticList items={diagnostics} testid={`${testid}-diagnostics`} itemPrefix={`${testid}-diagnostic`} />
    </ErrorBox>
  );
}
