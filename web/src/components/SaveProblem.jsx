// A refused save: the server's message and hint, and its diagnostics (file:line: message, hint)
// when the mesh would not validate with the change.
import { ErrorBox } from './common.jsx';

export function SaveProblem({ error, testid = 'save-error' }) {
  if (!error) return null;
  const diagnostics = error.diagnostics || [];
  const title =
    error.status === 403 ? 'You may not save here.' : diagnostics.length ? 'Not saved: it would not validate.' : 'Not saved.';
  return (
    <ErrorBox error={error} title={title} testid={testid}>
      {diagnostics.length > 0 && (
        <ul class="diagnostics" data-testid={`${testid}-diagnostics`}>
          {diagnostics.map((d, i) => (
            <li key={i} class={`diag-${d.severity}`} data-testid={`${testid}-diagnostic-${i}`}>
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
      )}
    </ErrorBox>
  );
}
