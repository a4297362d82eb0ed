// What a source block may read, beside the canvas: the ports this user may read (any domain's)
// and the files in the product's own domain's data/ folder (uploaded ones and those that were
// there), each with its columns; "+ Add" puts a source block on it. Members of the domain may
// upload a file here too.
import { useEffect, useRef } from 'preact/hooks';
import { formatAge, formatBytes, formatNumber, tid } from '../../util.js';
import { Loading } from '../common.jsx';
import { UploadFile } from './UploadFile.jsx';

export function FileIcon() {
  return (
    <svg class="icon file-icon" viewBox="0 0 16 16" width="13" height="13" aria-hidden="true" focusable="false">
      <path d="M4 1.5h5.2L13 5.3V14a.5.5 0 0 1-.5.5h-8.5A.5.5 0 0 1 3.5 14V2a.5.5 0 0 1 .5-.5z" fill="none" stroke="currentColor" stroke-width="1.3" />
      <path d="M9 1.7V5.5h3.8" fill="none" stroke="currentColor" stroke-width="1.3" />
    </svg>
  );
}

export function FileBadge({ format }) {
  return (
    <span class="badge badge-file" title={`A ${String(format || '').toUpperCase()} file in the domain's data/ folder`}>
      <FileIcon />
      {String(format || 'file').toUpperCase()} file
    </span>
  );
}

function columnList(columns) {
  return (columns || []).map((c) => `${c.name} ${String(c.type || '').toLowerCase()}`).join(' · ');
}

function ageOf(iso) {
  const t = Date.parse(iso || '');
  return Number.isNaN(t) ? '' : formatAge((Date.now() - t) / 1000);
}

function PortItem({ source, onAdd, disabled }) {
  const masked = source.columns.filter((c) => c.masked).length;
  return (
    <li class="src-item" data-testid={tid('palette-port', source.port)}>
      <div class="src-text">
        <span class="src-name mono">{source.port}</span>
        {!source.published && <span class="badge badge-muted">not published</span>}
        {masked > 0 && (
          <span class="badge badge-mask" title="Some columns are masked for you">
            <span aria-hidden="true">◐ </span>
            {masked} masked
          </span>
        )}
        <span class="src-cols small muted mono" title={columnList(source.columns)}>
          {columnList(source.columns)}
        </span>
      </div>
      <button type="button" class="btn btn-small" onClick={onAdd} disabled={disabled} aria-label={`Add a source reading ${source.port}`} data-testid={tid('palette-add-port', source.port)}>
        + Add
      </button>
    </li>
  );
}

function FileItem({ file, fresh, onAdd, disabled }) {
  const age = ageOf(file.modified);
  const item = useRef(null);
  // The file just uploaded is shown where the list has it.
  useEffect(() => {
    if (fresh) item.current?.scrollIntoView({ block: 'nearest' });
  }, [fresh]);
  return (
    <li ref={item} class={`src-item src-file${fresh ? ' src-fresh' : ''}`} data-testid={tid('palette-file', file.file)} data-file={file.file} data-fresh={fresh ? 'true' : undefined}>
      <div class="src-text">
        <FileBadge format={file.format} />
        <span class="src-name mono">{file.file}</span>
        <span class="muted small">
          {[
            file.rows != null ? `${formatNumber(file.rows)} row${file.rows === 1 ? '' : 's'}` : '',
            file.bytes != null ? formatBytes(file.bytes) : '',
            age ? `changed ${age} ago` : '',
          ]
            .filter(Boolean)
            .join(' · ')}
        </span>
        {file.error ? (
          <span class="src-cols small field-error" title={file.error} data-testid={tid('palette-file-error', file.file)}>
            Cannot be read: {file.error}
          </span>
        ) : (
          <span class="src-cols small muted mono" title={columnList(file.columns)} data-testid={tid('palette-file-columns', file.file)}>
            {file.columns?.length ? columnList(file.columns) : 'columns unknown'}
          </span>
        )}
      </div>
      <button
        type="button"
        class="btn btn-small"
        onClick={onAdd}
        disabled={disabled || !!file.error}
        aria-label={`Add a source reading ${file.file}`}
        data-testid={tid('palette-add-file', file.file)}
      >
        + Add
      </button>
    </li>
  );
}

// sources: GET /builder/sources ({sources, files}); uploads: GET /domains/{d}/uploads (members);
// member: the user may save (and upload) in `domain`; fresh: the file uploaded last.
export function SourcePalette({ domain, member, sources, uploads, files, fresh, readOnly, onAdd, onUploaded }) {
  const ports = sources.data?.sources || [];
  const byDomain = [...new Set(ports.map((s) => s.port.split('.')[0]))];
  return (
    <details class="card source-palette" open data-testid="source-palette">
      <summary>
        <h2>Sources</h2>
        <span class="muted small">
          {sources.data ? `${ports.length} port${ports.length === 1 ? '' : 's'} you may read` : '…'}
          {domain ? ` · ${files.length} file${files.length === 1 ? '' : 's'} of ${domain}` : ''}
        </span>
      </summary>
      <div class="source-cols">
        <section aria-labelledby="palette-ports-title">
          <h3 id="palette-ports-title">Ports you may read</h3>
          {sources.loading && !sources.data && <Loading label="Listing the ports you may read…" />}
          {sources.data && !ports.length && <p class="muted small">You may read no port yet: request access from a product's page.</p>}
          <div class="src-list-wrap">
            {byDomain.map((d) => (
              <div key={d}>
                <h4 class="src-group">{d}</h4>
                <ul class="src-list" data-testid={tid('palette-ports', d)}>
                  {ports
                    .filter((s) => s.port.startsWith(`${d}.`))
                    .map((s) => (
                      <PortItem key={s.port} source={s} disabled={readOnly} onAdd={() => onAdd({ port: s.port })} />
                    ))}
                </ul>
              </div>
            ))}
          </div>
        </section>
        <section aria-labelledby="palette-files-title" data-testid="palette-files">
          <h3 id="palette-files-title">
            Files of {domain || 'the domain'} <span class="muted small">(its own data/ folder)</span>
          </h3>
          {!domain && <p class="muted small">A product reads the files of its own domain only; its members upload them.</p>}
          {domain && !member && <p class="muted small">Only the members of {domain} may read and upload its files.</p>}
          {domain && member && (
            <>
              {!readOnly && (
                <UploadFile
                  domain={domain}
                  maxBytes={uploads.data?.max_bytes}
                  onUploaded={onUploaded}
                  onAdd={(file) => onAdd({ file })}
                />
              )}
              {uploads.error && uploads.error.status !== 404 && <p class="field-error small">Could not list the files of {domain}: {uploads.error.message}</p>}
              {!files.length && sources.data && <p class="muted small" data-testid="palette-no-files">No file yet. Upload a CSV, JSON or Parquet file to read it in a flow.</p>}
              <div class="src-list-wrap">
                <ul class="src-list" data-testid="palette-file-list">
                  {files.map((f) => (
                    <FileItem key={f.file} file={f} fresh={f.file === fresh} disabled={readOnly} onAdd={() => onAdd({ file: f.file })} />
                  ))}
                </ul>
              </div>
            </>
          )}
        </section>
      </div>
    </details>
  );
}
