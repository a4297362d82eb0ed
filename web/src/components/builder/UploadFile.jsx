// "Upload a file": a CSV, JSON or Parquet file from the user's machine into the domain's own
// data/ folder, where a source block may read it. What can be told before sending is told
// before sending (the extension, the size limit, the name's rule); the rest is the server's
// word, shown as it says it (message and hint). A name already taken asks before replacing.
import { useRef, useState } from 'preact/hooks';
import { enc, upload } from '../../api.js';
import { FILE_FORMATS, isFileName } from '../../flow.js';
import { formatBytes, formatNumber } from '../../util.js';
import { ErrorBox, Loading, Notice } from '../common.jsx';

// "Regions Targets (2025).CSV" → {stem: "regions_targets_2025", ext: "csv"}.
export function suggestName(original) {
  const dot = original.lastIndexOf('.');
  const ext = dot > 0 ? original.slice(dot + 1).toLowerCase() : '';
  let stem = (dot > 0 ? original.slice(0, dot) : original)
    .toLowerCase()
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/[^a-z0-9_]+/g, '_')
    .replace(/_+/g, '_')
    .replace(/^_+|_+$/g, '');
  if (!/^[a-z]/.test(stem)) stem = `file_${stem}`.replace(/_+$/, '');
  return { stem: stem.slice(0, 60), ext };
}

// What is wrong with a picked file before anything is sent, or null.
export function pickedProblem(file, maxBytes) {
  const { ext } = suggestName(file.name);
  if (!FILE_FORMATS.includes(ext)) {
    return `${file.name} is ${ext ? `a .${ext} file` : 'a file without an extension'}: a source reads CSV (.csv), JSON (.json) or Parquet (.parquet) files only.`;
  }
  if (maxBytes && file.size > maxBytes) return `${file.name} is ${formatBytes(file.size)}: files of at most ${formatBytes(maxBytes)} can be uploaded.`;
  if (file.size === 0) return `${file.name} is empty.`;
  return null;
}

function columnsText(columns) {
  return (columns || []).map((c) => `${c.name} (${String(c.type || '').toLowerCase()})`).join(', ');
}

// domain: where the file goes; maxBytes: the server's limit (GET …/uploads), when known;
// onUploaded(result): after a 201; onAdd(file): "Add as a source" on the file just uploaded.
export function UploadFile({ domain, maxBytes, onUploaded, onAdd, disabled }) {
  const [state, setState] = useState({ step: 'idle' });
  const input = useRef(null);
  const reset = () => {
    if (input.current) input.current.value = '';
  };

  const pick = (file) => {
    reset();
    if (!file) return;
    const problem = pickedProblem(file, maxBytes);
    if (problem) {
      setState({ step: 'refused', file, problem });
      return;
    }
    const { stem, ext } = suggestName(file.name);
    setState({ step: 'picked', file, stem, ext });
  };

  const send = async (file, name, replace) => {
    setState({ step: 'uploading', file, name });
    const path = `/api/v1/domains/${enc(domain)}/uploads?name=${enc(name)}${replace ? '&replace=true' : ''}`;
    try {
      const result = await upload(path, file);
      setState({ step: 'done', result });
      onUploaded?.(result);
    } catch (error) {
      if (error.status === 409 && !replace) setState({ step: 'conflict', file, name, error });
      else setState({ step: 'error', file, name, error });
    }
  };

  const s = state;
  const name = s.step === 'picked' ? `${s.stem}.${s.ext}` : '';
  const nameOk = s.step !== 'picked' || isFileName(name);
  const busy = s.step === 'uploading';
  const limit = maxBytes ? `up to ${formatBytes(maxBytes)}` : '';

  return (
    <div class="upload" data-testid="upload" data-step={s.step}>
      <div class="upload-pick">
        <label class={`btn btn-small upload-button${disabled || busy ? ' disabled' : ''}`}>
          <input
            ref={input}
            type="file"
            class="sr-only"
            accept=".csv,.json,.parquet,text/csv,application/json"
            disabled={disabled || busy}
            onChange={(e) => pick(e.currentTarget.files?.[0])}
            data-testid="upload-input"
          />
          <span aria-hidden="true">⇪</span> Upload a file
        </label>
        <span class="muted small" data-testid="upload-limit">
          CSV, JSON or Parquet{limit ? `, ${limit}` : ''} · into <span class="mono">{domain}/data/</span>
        </span>
      </div>

      {s.step === 'refused' && (
        <p class="field-error" role="alert" data-testid="upload-refused">
          {s.problem} Nothing was sent.
        </p>
      )}

      {s.step === 'picked' && (
        <form
          class="upload-confirm"
          onSubmit={(e) => {
            e.preventDefault();
            if (nameOk) send(s.file, name, false);
          }}
          data-testid="upload-confirm"
        >
          <p class="small">
            <span class="mono">{s.file.name}</span> · {formatBytes(s.file.size)}
          </p>
          <label class="field">
            <span>Save it as</span>
            <span class="upload-name">
              <span class="mono muted">data/</span>
              <input
                type="text"
                class="mono"
                value={s.stem}
                onInput={(e) => setState({ ...s, stem: e.currentTarget.value })}
                aria-invalid={nameOk ? 'false' : 'true'}
                aria-label="File name, without its extension"
                data-testid="upload-name"
                autocomplete="off"
                spellcheck={false}
              />
              <span class="mono muted">.{s.ext}</span>
            </span>
          </label>
          {!nameOk && <p class="field-error">A file name is lower-case letters, digits and _, starting with a letter.</p>}
          <div class="actions">
            <button type="submit" class="btn btn-primary btn-small" disabled={!nameOk} data-testid="upload-send">
              Upload
            </button>
            <button type="button" class="btn btn-small" onClick={() => setState({ step: 'idle' })} data-testid="upload-cancel">
              Cancel
            </button>
          </div>
        </form>
      )}

      {busy && <Loading label={`Uploading ${s.name} (${formatBytes(s.file.size)})…`} />}

      {s.step === 'conflict' && (
        <Notice kind="warn" testid="upload-conflict">
          <p>
            <strong>
              <span class="mono">data/{s.name}</span> is already in {domain}.
            </strong>{' '}
            Replace it with <span class="mono">{s.file.name}</span>? Products that read it read the new rows at their next build.
          </p>
          <div class="actions">
            <button type="button" class="btn btn-small btn-danger" onClick={() => send(s.file, s.name, true)} data-testid="upload-replace">
              Replace it
            </button>
            <button type="button" class="btn btn-small" onClick={() => setState({ step: 'idle' })} data-testid="upload-keep">
              Keep the one there
            </button>
          </div>
        </Notice>
      )}

      {s.step === 'error' && (
        <ErrorBox error={s.error} title={s.error.status === 403 ? 'You may not upload here.' : `${s.name} was not uploaded.`} testid="upload-error" />
      )}

      {s.step === 'done' && (
        <Notice kind="success" testid="upload-ok">
          <p>
            <strong>
              {s.result.replaced ? 'Replaced' : 'Uploaded'} <span class="mono">{s.result.file}</span>
            </strong>
            : {formatNumber(s.result.rows)} row{s.result.rows === 1 ? '' : 's'}, {formatBytes(s.result.bytes)}, read as {String(s.result.format).toUpperCase()}.
          </p>
          <p class="small" data-testid="upload-columns">
            Columns: <span class="mono">{columnsText(s.result.columns)}</span>
          </p>
          {onAdd && (
            <div class="actions">
              <button type="button" class="btn btn-small btn-primary" onClick={() => onAdd(s.result.file)} data-testid="upload-add">
                + Add it as a source
              </button>
              <button type="button" class="btn btn-small" onClick={() => setState({ step: 'idle' })} data-testid="upload-dismiss">
                Close
              </button>
            </div>
          )}
        </Notice>
      )}
    </div>
  );
}
