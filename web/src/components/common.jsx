import { useState } from 'preact/hooks';
import { formatAge } from '../util.js';

export function Loading({ label = 'Loading…' }) {
  return (
    <p class="muted loading" role="status" aria-live="polite">
      <span class="spinner" aria-hidden="true" />
      {label}
    </p>
  );
}

export function ErrorBox({ error, title, testid = 'error', children }) {
  if (!error) return null;
  const message = typeof error === 'string' ? error : error.message;
  return (
    <div class="alert alert-error" role="alert" data-testid={testid}>
      {title && <strong>{title} </strong>}
      <span class="pre-wrap">{message}</span>
      {error.hint && (
        <p class="hint small" data-testid={`${testid}-hint`}>
          {error.hint}
        </p>
      )}
      {children}
    </div>
  );
}

export function Notice({ kind = 'info', testid, children }) {
  return (
    <div class={`alert alert-${kind}`} data-testid={testid} role={kind === 'success' ? 'status' : undefined}>
      {children}
    </div>
  );
}

export function CopyButton({ text, testid, label = 'Copy' }) {
  const [done, setDone] = useState(false);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      // Clipboard is unavailable over plain http on some browsers; select a hidden textarea instead.
      const ta = document.createElement('textarea');
      ta.value = text;
      document.body.appendChild(ta);
      ta.select();
      try {
        document.execCommand('copy');
      } catch {
        /* nothing more to try */
      }
      ta.remove();
    }
    setDone(true);
    setTimeout(() => setDone(false), 1500);
  };
  return (
    <button type="button" class="btn btn-small" onClick={copy} data-testid={testid}>
      {done ? 'Copied' : label}
    </button>
  );
}

export function FreshnessBadge({ freshness, testid }) {
  const f = freshness || { status: 'never' };
  const age = formatAge(f.age_seconds);
  let text;
  let title;
  if (f.status === 'never') {
    text = 'Never published';
    title = 'No version of this product has been published yet.';
  } else if (f.status === 'stale') {
    text = `Stale${age ? ` · ${age} old` : ''}`;
    title = f.frequency ? `Older than its SLA frequency of ${f.frequency}.` : 'Older than its SLA frequency.';
  } else {
    text = `Fresh${age ? ` · ${age} old` : ''}`;
    title = f.frequency ? `Within its SLA frequency of ${f.frequency}.` : 'Published; no SLA frequency is declared.';
  }
  const cls = { fresh: 'badge-ok', stale: 'badge-warn', never: 'badge-muted' }[f.status] || 'badge-muted';
  return (
    <span class={`badge ${cls}`} title={title} data-testid={testid} data-status={f.status}>
      <span class="dot" aria-hidden="true" />
      {text}
    </span>
  );
}

export function QualityBadge({ quality, testid }) {
  const q = quality || { passed: 0, total: 0 };
  if (!q.total) {
    return (
      <span class="badge badge-muted" data-testid={testid} title="No quality checks recorded">
        No checks
      </span>
    );
  }
  const ok = q.passed === q.total;
  return (
    <span
      class={`badge ${ok ? 'badge-ok' : 'badge-error'}`}
      data-testid={testid}
      title={ok ? 'All quality checks passed at the last publish' : `${q.total - q.passed} quality checks failed`}
    >
      {ok ? '✓' : '!'} Quality {q.passed}/{q.total}
    </span>
  );
}

export function LockIcon() {
  return (
    <svg class="icon" viewBox="0 0 16 16" width="12" height="12" aria-hidden="true" focusable="false">
      <path d="M4.5 7V5a3.5 3.5 0 0 1 7 0v2h.5A1 1 0 0 1 13 8v6a1 1 0 0 1-1 1H4a1 1 0 0 1-1-1V8a1 1 0 0 1 1-1h.5zm1.5 0h4V5a2 2 0 0 0-4 0v2z" fill="currentColor" />
    </svg>
  );
}

export function AccessBadge({ canRead, testid }) {
  return canRead ? (
    <span class="badge badge-ok" data-testid={testid} data-can-read="true">
      You can read
    </span>
  ) : (
    <span class="badge badge-lock" data-testid={testid} data-can-read="false">
      <LockIcon />
      No access
    </span>
  );
}

export function ClassificationBadge({ value }) {
  const v = value || 'internal';
  const cls = v === 'pii' ? 'badge-pii' : v === 'confidential' ? 'badge-conf' : v === 'public' ? 'badge-ok' : 'badge-muted';
  return (
    <span class={`badge ${cls}`} data-classification={v}>
      {v}
    </span>
  );
}

export function StatusBadge({ status }) {
  const cls = status === 'active' ? 'badge-ok' : status === 'deprecated' || status === 'retired' ? 'badge-warn' : 'badge-muted';
  return <span class={`badge ${cls}`}>{status || 'unknown'}</span>;
}

export function Empty({ children, testid }) {
  return (
    <p class="empty" data-testid={testid}>
      {children}
    </p>
  );
}
