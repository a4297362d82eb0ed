// Review & save: the dry run's files as diffs against what they replace, its warnings, then the
// real save — and, when the mesh would not validate, the diagnostics (file:line: message, hint).
import { ErrorBox, Loading, Notice } from '../common.jsx';
import { DiagnosticList } from '../SaveProblem.jsx';
import { FileDiff } from './FileDiff.jsx';

// open: shown unfolded (the dry run's own warnings); else folded under their count.
function Warnings({ items, testid, open = true }) {
  if (!items?.length) return null;
  return (
    <details class="alert alert-warn warnings" data-testid={testid} open={open}>
      <summary>
        {items.length} warning{items.length === 1 ? '' : 's'}
      </summary>
      <ul class="diagnostics">
        {items.map((w, i) => (
          <li key={i}>
            {w.file && (
              <span class="mono">
                {w.file}
                {w.line ? `:${w.line}` : ''}:{' '}
              </span>
            )}
            {w.message}
            {w.hint && <div class="hint small">{w.hint}</div>}
          </li>
        ))}
      </ul>
    </details>
  );
}

export function Diagnostics({ items }) {
  return <DiagnosticList items={items} testid="save-diagnostics" itemPrefix="diagnostic" />;
}

// review / save: {state: loading|ok|error, data, error}; stale: the flow changed since.
export function ReviewPanel({ review, save, stale, address, onReview, onSave, onClose }) {
  const saved = save?.state === 'ok';
  return (
    <section class="card review" aria-labelledby="review-title" data-testid="review-panel" data-state={review?.state}>
      <div class="card-head">
        <h2 id="review-title">Review &amp; save {address && <span class="mono muted">{address}</span>}</h2>
        <button type="button" class="btn btn-small" onClick={onClose} data-testid="review-close">
          Close
        </button>
      </div>
      {review?.state === 'loading' && <Loading label="Writing the product's files (dry run)…" />}
      {review?.state === 'error' && (
        <ErrorBox error={review.error} title={review.error.status === 403 ? 'You may not save here.' : 'The dry run failed.'} testid="review-error">
          <Diagnostics items={review.error.diagnostics} />
        </ErrorBox>
      )}
      {review?.state === 'ok' && (
        <>
          <p>
            Saving writes these files into the mesh, as a person would have written them; the flow is kept beside them so the builder can open it again.
            Nothing is built until you build it.
          </p>
          <Warnings items={review.data.warnings} testid="review-warnings" />
          <div class="files" data-testid="review-files">
            {review.data.files.map((f) => (
              <FileDiff key={f.path} path={f.removed ? `${f.path} (removed: the product no longer uses it)` : f.path} content={f.removed ? '' : f.content} previous={f.previous} />
            ))}
          </div>
          {stale && !saved && (
            <Notice kind="warn" testid="review-stale">
              The flow changed since this review.{' '}
              <button type="button" class="btn btn-small" onClick={onReview} data-testid="review-again">
                Review again
              </button>
            </Notice>
          )}
          {!saved && (
            <div class="actions">
              <button type="button" class="btn btn-primary" disabled={stale || save?.state === 'saving'} onClick={onSave} data-testid="save-product">
                {save?.state === 'saving' ? 'Saving…' : 'Save'}
              </button>
            </div>
          )}
        </>
      )}
      {save?.state === 'error' && (
        <ErrorBox
          error={save.error}
          title={save.error.status === 403 ? 'You may not save here.' : save.error.diagnostics.length ? 'Not saved: the mesh would not validate.' : 'Not saved.'}
          testid="save-error"
        >
          <Diagnostics items={save.error.diagnostics} />
        </ErrorBox>
      )}
      {saved && (
        <Notice kind="success" testid="save-ok">
          <strong>Saved {save.data.product}.</strong> {save.data.files.length} files written; the mesh validates. Build it to publish this version.
          <Warnings items={save.data.warnings} testid="save-warnings" open={false} />
        </Notice>
      )}
    </section>
  );
}
