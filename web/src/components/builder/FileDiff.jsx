// One file of a save as a unified diff against what it replaces (a new file: every line added).
import { structuredPatch } from 'diff';
import { useMemo } from 'preact/hooks';
import { tid } from '../../util.js';

export function FileDiff({ path, content, previous }) {
  const patch = useMemo(() => structuredPatch(path, path, previous ?? '', content, '', '', { context: 3 }), [path, content, previous]);
  let added = 0;
  let removed = 0;
  for (const h of patch.hunks) {
    for (const l of h.lines) {
      if (l[0] === '+') added++;
      else if (l[0] === '-') removed++;
    }
  }
  const status = previous === null || previous === undefined ? 'new' : added || removed ? 'changed' : 'unchanged';
  return (
    <details class="file-diff" open={status !== 'unchanged'} data-testid={tid('file', path)} data-path={path} data-status={status} data-added={added} data-removed={removed}>
      <summary>
        <span class="mono">{path}</span>{' '}
        <span class={`badge ${status === 'new' ? 'badge-ok' : status === 'changed' ? 'badge-warn' : 'badge-muted'}`}>{status === 'new' ? 'new file' : status}</span>{' '}
        <span class="diff-count">
          <span class="added">+{added}</span> <span class="removed">−{removed}</span>
        </span>
      </summary>
      {patch.hunks.length > 0 && (
        <table class="diff" aria-label={`Changes to ${path}`}>
          {patch.hunks.map((h, i) => {
            let oldNo = h.oldStart;
            let newNo = h.newStart;
            return (
              <tbody key={i}>
                {status === 'changed' && (
                  <tr class="hunk">
                    <td colSpan={3}>{`@@ −${h.oldStart},${h.oldLines} +${h.newStart},${h.newLines} @@`}</td>
                  </tr>
                )}
                {h.lines
                  .filter((l) => l[0] !== '\\')
                  .map((l, j) => {
                    const kind = l[0] === '+' ? 'add' : l[0] === '-' ? 'del' : 'ctx';
                    const o = kind === 'add' ? '' : oldNo++;
                    const n = kind === 'del' ? '' : newNo++;
                    return (
                      <tr key={j} class={`line-${kind}`}>
                        <td class="ln" aria-hidden="true">
                          {o}
                        </td>
                        <td class="ln" aria-hidden="true">
                          {n}
                        </td>
                        <td class="code-line">
                          <span class="sr-only">{kind === 'add' ? 'added: ' : kind === 'del' ? 'removed: ' : ''}</span>
                          <span aria-hidden="true">{l[0] === ' ' ? ' ' : l[0]}</span>
                          {l.slice(1)}
                        </td>
                      </tr>
                    );
                  })}
              </tbody>
            );
          })}
        </table>
      )}
    </details>
  );
}
