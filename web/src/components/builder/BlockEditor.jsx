// The editor of the selected block. The columns it offers come from its input's preview (what
// the server says the input gives this user), so a pick is always a column that exists.
import { useRef, useState } from 'preact/hooks';
import { BLOCK_TYPES, CLASSIFICATIONS, QUALITY_OPS, blockProblems, expressionProblem, inputChoices, isSqlName, measureName, sourceId, sourceOf } from '../../flow.js';
import { formatBytes, tid } from '../../util.js';
import { ClassificationBadge, ErrorBox, Loading } from '../common.jsx';
import { ConditionEditor } from './ConditionEditor.jsx';
import { FunctionPicker } from './FunctionPicker.jsx';
import { ColumnChecks, ColumnSelect, InputSelect, Problems } from './fields.jsx';
import { FileBadge, FileIcon } from './SourcePalette.jsx';

const FALLBACK_OPERATORS = ['=', '!=', '<', '>', '<=', '>=', 'contains', 'starts_with', 'ends_with', 'in', 'not in', 'between', 'is null', 'is not null'];
const FALLBACK_MEASURES = ['count', 'count_distinct', 'sum', 'avg', 'min', 'max', 'median'];
const FALLBACK_QUALITY = ['nullValues', 'missingValues', 'duplicateValues', 'rowCount'];

// A source reads a port this user may read, or a file of the product's domain (its data/
// folder). A name the builder gave follows what it reads; one the user wrote stays.
function SourceEditor({ flow, block, onChange, sources, files, domain }) {
  const { kind, name } = sourceOf(block);
  const source = kind === 'port' ? sources.find((s) => s.port === block.port) : null;
  const file = kind === 'file' ? files.find((f) => f.file === block.file) : null;
  const domains = [...new Set(sources.map((s) => s.port.split('.')[0]))];
  const autoId = !name || block.id === sourceId(flow, name, block.id) || /^source(_\d+)?$/.test(block.id);
  const pick = (patch) => {
    const next = { id: block.id, type: 'source', ...patch };
    const picked = next.port ?? next.file ?? '';
    onChange({ ...next, id: autoId && picked ? sourceId(flow, picked, block.id) : block.id });
  };
  return (
    <div>
      <div class="form-row source-kind">
        <span class="field-label">Reads</span>
        <fieldset class="segmented" aria-label="What the source reads">
          <button type="button" class={`btn btn-small${kind === 'port' ? ' btn-selected' : ''}`} aria-pressed={kind === 'port'} onClick={() => kind !== 'port' && pick({ port: '' })} data-testid="source-kind-port">
            A port you may read
          </button>
          <button type="button" class={`btn btn-small${kind === 'file' ? ' btn-selected' : ''}`} aria-pressed={kind === 'file'} onClick={() => kind !== 'file' && pick({ file: '' })} data-testid="source-kind-file">
            <FileIcon /> A file of {domain || 'the domain'}
          </button>
        </fieldset>
      </div>
      {kind === 'port' && (
        <label class="field">
          <span>Port to read</span>
          <select value={block.port} onChange={(e) => pick({ port: e.currentTarget.value })} data-testid="source-port">
            <option value="" disabled>
              Pick one of the ports you may read
            </option>
            {block.port && !source && <option value={block.port}>{block.port} (you may not read it)</option>}
            {domains.map((d) => (
              <optgroup key={d} label={d}>
                {sources
                  .filter((s) => s.port.startsWith(`${d}.`))
                  .map((s) => (
                    <option key={s.port} value={s.port}>
                      {s.port}
                      {s.published ? '' : ' (not published)'}
                    </option>
                  ))}
              </optgroup>
            ))}
          </select>
        </label>
      )}
      {kind === 'file' && (
        <>
          <label class="field">
            <span>File to read (in {domain || 'the domain'}'s data/ folder)</span>
            <select value={block.file} onChange={(e) => pick({ file: e.currentTarget.value })} data-testid="source-file">
              <option value="" disabled>
                {files.length ? `Pick one of the files of ${domain}` : `${domain || 'The domain'} has no file yet`}
              </option>
              {block.file && !file && <option value={block.file}>{block.file} (not a file of {domain || 'the domain'})</option>}
              {files.map((f) => (
                <option key={f.file} value={f.file}>
                  {f.file} ({String(f.format || '').toUpperCase()})
                </option>
              ))}
            </select>
          </label>
          {!files.length && <p class="muted small">Upload one with “Upload a file” under Sources, above the canvas.</p>}
          {block.file && !file && files.length > 0 && (
            <p class="alert alert-warn small" data-testid="source-file-missing">
              {block.file} is not among the files of {domain}: a product reads files of its own domain only.
            </p>
          )}
        </>
      )}
      {file && (
        <div data-testid="source-details" data-kind="file">
          <p class="small">
            <FileBadge format={file.format} /> <span class="mono">{domain}/{file.file}</span>
            {file.rows != null ? ` · ${file.rows} row${file.rows === 1 ? '' : 's'}` : ''}
            {file.bytes != null ? ` · ${formatBytes(file.bytes)}` : ''}. Previews read it as you; the product's build reads it as {domain}.
          </p>
          <div class="table-wrap">
            <table class="table compact" data-testid="source-columns">
              <thead>
                <tr>
                  <th scope="col">Column</th>
                  <th scope="col">Type</th>
                </tr>
              </thead>
              <tbody>
                {(file.columns || []).map((c) => (
                  <tr key={c.name} data-testid={tid('source-column', c.name)} data-masked="false">
                    <th scope="row" class="mono">
                      {c.name}
                    </th>
                    <td class="mono small">{c.type}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </div>
      )}
      {source && (
        <div data-testid="source-details">
          <p class="small">{source.description}</p>
          {!source.published && <p class="alert alert-warn small">Not published yet: it has no rows to preview or build from.</p>}
          {source.row_filter && <p class="alert alert-info small" data-testid="source-row-filter">A row filter applies to you: you see only some of its rows.</p>}
          <div class="table-wrap">
            <table class="table compact" data-testid="source-columns">
              <thead>
                <tr>
                  <th scope="col">Column</th>
                  <th scope="col">Type</th>
                  <th scope="col">Classification</th>
                </tr>
              </thead>
              <tbody>
                {source.columns.map((c) => (
                  <tr key={c.name} data-testid={tid('source-column', c.name)} data-masked={c.masked ? 'true' : 'false'} title={c.description}>
                    <th scope="row" class="mono">
                      {c.name}
                      {c.masked && (
                        <span class="badge badge-mask" title="Masked for you by governance policy">
                          <span aria-hidden="true">◐ </span>masked for you
                        </span>
                      )}
                    </th>
                    <td class="mono small">{c.type}</td>
                    <td>
                      <ClassificationBadge value={c.classification} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </div>
      )}
    </div>
  );
}

function InputField({ flow, block, onChange, label = 'Input' }) {
  return (
    <label class="field">
      <span>{label}</span>
      <InputSelect choices={inputChoices(flow, block)} value={block.input} label={label} onChange={(input) => onChange({ ...block, input })} testid="block-input" />
    </label>
  );
}

function SelectEditor({ block, onChange, columns }) {
  const kept = block.columns;
  const move = (i, d) => {
    const next = [...kept];
    [next[i], next[i + d]] = [next[i + d], next[i]];
    onChange({ ...block, columns: next });
  };
  const left = (columns || []).filter((c) => !kept.some((k) => k.column === c.name));
  return (
    <div>
      {kept.length > 0 && (
        <table class="table compact" data-testid="select-columns">
          <thead>
            <tr>
              <th scope="col">Column</th>
              <th scope="col">Named</th>
              <th scope="col">
                <span class="sr-only">Order</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {kept.map((k, i) => (
              <tr key={k.column}>
                <th scope="row" class="mono">
                  {k.column}
                </th>
                <td>
                  <input
                    type="text"
                    aria-label={`New name of ${k.column}`}
                    placeholder={k.column}
                    value={k.as || ''}
                    onInput={(e) => onChange({ ...block, columns: kept.map((x, j) => (j === i ? { ...x, as: e.currentTarget.value } : x)) })}
                    data-testid={tid('select-as', k.column)}
                  />
                </td>
                <td class="nowrap">
                  <button type="button" class="btn btn-small btn-icon" disabled={i === 0} onClick={() => move(i, -1)} aria-label={`Move ${k.column} up`} data-testid={tid('select-up', k.column)}>
                    ↑
                  </button>
                  <button type="button" class="btn btn-small btn-icon" disabled={i === kept.length - 1} onClick={() => move(i, 1)} aria-label={`Move ${k.column} down`} data-testid={tid('select-down', k.column)}>
                    ↓
                  </button>
                  <button type="button" class="btn btn-small btn-icon" onClick={() => onChange({ ...block, columns: kept.filter((_, j) => j !== i) })} aria-label={`Drop ${k.column}`} data-testid={tid('select-remove', k.column)}>
                    ×
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <div class="form-row">
        <label class="field">
          <span>Keep a column</span>
          <ColumnSelect columns={left} value="" label="Keep a column" onChange={(c) => c && onChange({ ...block, columns: [...kept, { column: c, as: '' }] })} testid="select-add" />
        </label>
        <button type="button" class="btn" disabled={!left.length} onClick={() => onChange({ ...block, columns: [...kept, ...left.map((c) => ({ column: c.name, as: '' }))] })} data-testid="select-add-all">
          Keep all
        </button>
      </div>
    </div>
  );
}

function DeriveEditor({ block, onChange, columns, entry }) {
  const field = useRef(null);
  const local = expressionProblem(block.expression);
  const server = entry?.state === 'error' ? entry.error : null;
  const insert = (text) => {
    const el = field.current;
    const value = block.expression || '';
    const start = el && document.activeElement === el ? el.selectionStart : el?.dataset.caret ? Number(el.dataset.caret) : value.length;
    const end = el && document.activeElement === el ? el.selectionEnd : start;
    const next = value.slice(0, start) + text + value.slice(end);
    onChange({ ...block, expression: next });
    requestAnimationFrame(() => {
      if (!field.current) return;
      field.current.focus();
      const caret = start + text.length;
      field.current.setSelectionRange(caret, caret);
    });
  };
  return (
    <div>
      <label class="field">
        <span>New column's name</span>
        <input type="text" value={block.name} onInput={(e) => onChange({ ...block, name: e.currentTarget.value })} data-testid="derive-name" autocomplete="off" />
      </label>
      <label class="field">
        <span>Expression</span>
        <input
          type="text"
          class="mono"
          ref={field}
          value={block.expression}
          placeholder="upper(email)"
          onInput={(e) => onChange({ ...block, expression: e.currentTarget.value })}
          onBlur={(e) => (e.currentTarget.dataset.caret = String(e.currentTarget.selectionStart ?? ''))}
          aria-invalid={local || server ? 'true' : 'false'}
          aria-describedby="derive-check"
          data-testid="derive-expression"
          autocomplete="off"
          spellcheck={false}
        />
      </label>
      <div id="derive-check" aria-live="polite">
        {block.expression && local && (
          <p class="field-error" data-testid="derive-error">
            {local}
          </p>
        )}
        {!local && server && (
          <p class="field-error" data-testid="derive-error">
            {server.message}
            {server.hint && <span class="hint"> {server.hint}</span>}
          </p>
        )}
        {!local && entry?.state === 'ok' && (
          <p class="field-ok small" data-testid="derive-ok">
            ✓ The server reads it: {entry.data.columns.find((c) => c.name === block.name)?.type?.toLowerCase() || 'a new column'}.
          </p>
        )}
        {!local && (entry?.state === 'loading' || entry?.state === 'missing') && <p class="muted small">Checking the expression…</p>}
      </div>
      <FunctionPicker columns={columns} onInsert={insert} />
      <label class="field">
        <span>Insert a column</span>
        <ColumnSelect columns={columns} value="" label="Insert a column" onChange={(c) => c && insert(c)} testid="insert-column" />
      </label>
    </div>
  );
}

function JoinEditor({ flow, block, onChange, columnsOf }) {
  const [left, right] = block.inputs;
  const leftCols = columnsOf(left);
  const rightCols = columnsOf(right);
  const choices = inputChoices(flow, block);
  const common = leftCols && rightCols ? leftCols.filter((c) => rightCols.some((r) => r.name === c.name)).map((c) => c.name) : [];
  const setKey = (i, k) => onChange({ ...block, on: block.on.map((x, j) => (j === i ? k : x)) });
  return (
    <div>
      <div class="form-row">
        <label class="field">
          <span>Left input</span>
          <InputSelect choices={choices} value={left} label="Left input" onChange={(v) => onChange({ ...block, inputs: [v, right] })} testid="join-left" />
        </label>
        <label class="field">
          <span>Right input</span>
          <InputSelect choices={choices} value={right} label="Right input" onChange={(v) => onChange({ ...block, inputs: [left, v] })} testid="join-right" />
        </label>
        <label class="field">
          <span>Keep</span>
          <select value={block.how} onChange={(e) => onChange({ ...block, how: e.currentTarget.value })} data-testid="join-how">
            <option value="inner">rows matched on both sides (inner)</option>
            <option value="left">every left row (left)</option>
          </select>
        </label>
      </div>
      <fieldset class="plain">
        <legend>Match rows where</legend>
        {block.on.map((k, i) => (
          <div class="form-row" key={i}>
            <ColumnSelect columns={leftCols} value={k.left} label={`Key ${i + 1}, left column`} onChange={(v) => setKey(i, { ...k, left: v })} testid={`join-key-left-${i}`} />
            <span aria-hidden="true">=</span>
            <ColumnSelect columns={rightCols} value={k.right} label={`Key ${i + 1}, right column`} onChange={(v) => setKey(i, { ...k, right: v })} testid={`join-key-right-${i}`} />
            <button type="button" class="btn btn-small btn-icon" onClick={() => onChange({ ...block, on: block.on.filter((_, j) => j !== i) })} aria-label={`Remove key ${i + 1}`} data-testid={`join-key-remove-${i}`}>
              ×
            </button>
          </div>
        ))}
        <div class="actions">
          <button type="button" class="btn btn-small" onClick={() => onChange({ ...block, on: [...block.on, { left: '', right: '' }] })} data-testid="join-add-key">
            + Key
          </button>
          {!block.on.length &&
            common.slice(0, 3).map((c) => (
              <button type="button" class="btn btn-small btn-selected" key={c} onClick={() => onChange({ ...block, on: [{ left: c, right: c }] })} data-testid={tid('join-suggest', c)}>
                Match on {c}
              </button>
            ))}
        </div>
        <p class="muted small">A right column named like its left key is not repeated.</p>
      </fieldset>
    </div>
  );
}

function AggregateEditor({ block, onChange, columns, measures }) {
  const setMeasure = (i, m) => onChange({ ...block, measures: block.measures.map((x, j) => (j === i ? m : x)) });
  return (
    <div>
      <h4>Group by</h4>
      <ColumnChecks columns={columns} picked={block.group_by} onChange={(group_by) => onChange({ ...block, group_by })} testidPrefix="group-by" legend="Group by" />
      <h4>Measures</h4>
      {block.measures.map((m, i) => (
        <div class="form-row measure" key={i} data-testid={`measure-${i}`}>
          <select aria-label={`Measure ${i + 1} function`} value={m.function} onChange={(e) => setMeasure(i, { ...m, function: e.currentTarget.value })} data-testid={`measure-fn-${i}`}>
            {measures.map((f) => (
              <option key={f} value={f}>
                {f.replace('_', ' ')}
              </option>
            ))}
          </select>
          <span class="muted">of</span>
          <ColumnSelect
            columns={columns}
            value={m.column}
            label={`Measure ${i + 1} column`}
            allowEmpty={m.function === 'count'}
            emptyLabel="(every row)"
            onChange={(v) => setMeasure(i, { ...m, column: v })}
            testid={`measure-col-${i}`}
          />
          <span class="muted">as</span>
          <input type="text" aria-label={`Measure ${i + 1} name`} placeholder={measureName({ ...m, as: '' })} value={m.as} onInput={(e) => setMeasure(i, { ...m, as: e.currentTarget.value })} data-testid={`measure-as-${i}`} />
          <button type="button" class="btn btn-small btn-icon" onClick={() => onChange({ ...block, measures: block.measures.filter((_, j) => j !== i) })} aria-label={`Remove measure ${i + 1}`} data-testid={`measure-remove-${i}`}>
            ×
          </button>
        </div>
      ))}
      <button type="button" class="btn btn-small" onClick={() => onChange({ ...block, measures: [...block.measures, { function: 'sum', column: '', as: '' }] })} data-testid="add-measure">
        + Measure
      </button>
    </div>
  );
}

function UnionEditor({ flow, block, onChange }) {
  const choices = inputChoices(flow, block);
  return (
    <div>
      {block.inputs.map((input, i) => (
        <div class="form-row" key={i}>
          <label class="field">
            <span>Input {i + 1}</span>
            <InputSelect choices={choices} value={input} label={`Input ${i + 1}`} onChange={(v) => onChange({ ...block, inputs: block.inputs.map((x, j) => (j === i ? v : x)) })} testid={`union-input-${i}`} />
          </label>
          {block.inputs.length > 2 && (
            <button type="button" class="btn btn-small btn-icon" onClick={() => onChange({ ...block, inputs: block.inputs.filter((_, j) => j !== i) })} aria-label={`Remove input ${i + 1}`} data-testid={`union-remove-${i}`}>
              ×
            </button>
          )}
        </div>
      ))}
      <button type="button" class="btn btn-small" onClick={() => onChange({ ...block, inputs: [...block.inputs, ''] })} data-testid="union-add-input">
        + Input
      </button>
      <p class="muted small">Rows of every input, one after the other, matched by column name.</p>
    </div>
  );
}

function SortEditor({ block, onChange, columns }) {
  const setKey = (i, k) => onChange({ ...block, by: block.by.map((x, j) => (j === i ? k : x)) });
  return (
    <div>
      {block.by.map((k, i) => (
        <div class="form-row" key={i}>
          <ColumnSelect columns={columns} value={k.column} label={`Sort key ${i + 1}`} onChange={(v) => setKey(i, { ...k, column: v })} testid={`sort-col-${i}`} />
          <select aria-label={`Sort key ${i + 1} direction`} value={k.descending ? 'desc' : 'asc'} onChange={(e) => setKey(i, { ...k, descending: e.currentTarget.value === 'desc' })} data-testid={`sort-dir-${i}`}>
            <option value="asc">smallest first</option>
            <option value="desc">largest first</option>
          </select>
          <button type="button" class="btn btn-small btn-icon" onClick={() => onChange({ ...block, by: block.by.filter((_, j) => j !== i) })} aria-label={`Remove sort key ${i + 1}`} data-testid={`sort-remove-${i}`}>
            ×
          </button>
        </div>
      ))}
      <button type="button" class="btn btn-small" onClick={() => onChange({ ...block, by: [...block.by, { column: '', descending: false }] })} data-testid="sort-add">
        + Sort key
      </button>
      <label class="field">
        <span>Keep the first (rows; empty: all)</span>
        <input
          type="number"
          min="0"
          step="1"
          value={block.limit ?? ''}
          onInput={(e) => onChange({ ...block, limit: e.currentTarget.value === '' ? null : e.currentTarget.value })}
          data-testid="sort-limit"
        />
      </label>
    </div>
  );
}

function DistinctEditor({ block, onChange, columns }) {
  return (
    <div>
      <p class="muted small">No keys: identical rows are kept once. With keys: the first row of each key.</p>
      <ColumnChecks columns={columns} picked={block.keys} onChange={(keys) => onChange({ ...block, keys })} testidPrefix="distinct-key" legend="Keys" />
    </div>
  );
}

const rank = (c) => CLASSIFICATIONS.indexOf(c);

// One column of the output port: where its classification comes from, and what is published.
// maskedSources: the source columns ("domain.port.column") masked for this user.
function OutputColumn({ column, info, lineage, maskedSources, onChange }) {
  const from = lineage?.classification || null;
  const chosen = info.classification || '';
  const weaker = chosen && from && rank(chosen) >= 0 && rank(from) >= 0 && rank(chosen) < rank(from);
  const fromMasked = (lineage?.sources || []).filter((x) => maskedSources.has(x));
  const set = (patch) => onChange({ ...info, ...patch });
  return (
    <fieldset class="out-col" data-testid={tid('out-col', column.name)} data-classification={chosen || from || ''}>
      <legend>
        <span class="mono">{column.name}</span> <span class="col-type">{column.type?.toLowerCase()}</span>
      </legend>
      <p class="out-lineage small" data-testid={tid('out-lineage', column.name)} data-classification={from || ''}>
        {lineage === undefined ? (
          <span class="muted">Classification from lineage: …</span>
        ) : from ? (
          <>
            <ClassificationBadge value={from} /> — from {(lineage.sources || []).join(', ') || 'its inputs'}
          </>
        ) : (
          <span class="muted">{lineage?.sources?.length ? `From ${lineage.sources.join(', ')}` : 'Reads no classified value'}: the mesh's default classification.</span>
        )}
        {fromMasked.length > 0 && (
          <span class="badge badge-mask" title={`Computed from ${fromMasked.join(', ')}, masked for you: your previews show masked values; the build reads as the domain.`}>
            <span aria-hidden="true">◐ </span>from masked values
          </span>
        )}
      </p>
      <div class="form-row">
        <label class="field">
          <span>Publish as</span>
          <select
            value={chosen}
            onChange={(e) => {
              const classification = e.currentTarget.value;
              const declassifying = !!(classification && from && rank(classification) < rank(from));
              set({ classification, declassifying, declassified: declassifying ? info.declassified || '' : '' });
            }}
            data-testid={tid('out-class', column.name)}
          >
            <option value="">{from ? `${from}, as its lineage gives` : 'the mesh default'}</option>
            {CLASSIFICATIONS.map((c) => (
              <option key={c} value={c}>
                {c}
                {from && rank(c) < rank(from) ? ' — declassify, with a reason' : ''}
              </option>
            ))}
          </select>
        </label>
        <label class="field grow">
          <span>Description</span>
          <input type="text" value={info.description || ''} onInput={(e) => set({ description: e.currentTarget.value })} data-testid={tid('out-desc', column.name)} />
        </label>
        <label class="check">
          <input type="checkbox" checked={!!info.required} onChange={(e) => set({ required: e.currentTarget.checked })} data-testid={tid('out-required', column.name)} />
          required
        </label>
        <label class="check">
          <input type="checkbox" checked={!!info.unique} onChange={(e) => set({ unique: e.currentTarget.checked })} data-testid={tid('out-unique', column.name)} />
          unique
        </label>
      </div>
      {weaker && (
        <label class="field declassify">
          <span>
            Why may it be published as {chosen}, not {from}? (kept in the contract and audited)
          </span>
          <input type="text" value={info.declassified || ''} onInput={(e) => set({ declassified: e.currentTarget.value })} data-testid={tid('out-declassified', column.name)} />
        </label>
      )}
    </fieldset>
  );
}

function OutputEditor({ block, onChange, columns, dryRun, quality, sources }) {
  const maskedSources = new Set(sources.flatMap((src) => src.columns.filter((c) => c.masked).map((c) => `${src.port}.${c.name}`)));
  const lineageData = dryRun.state === 'ok' ? dryRun.data : dryRun.previous;
  const lineageCols = lineageData?.columns?.[block.name];
  const lineageOf = (name) => (lineageCols ? lineageCols.find((c) => c.name === name) || null : undefined);
  const setQuality = (i, q) => onChange({ ...block, quality: block.quality.map((x, j) => (j === i ? q : x)) });
  return (
    <div>
      <div class="form-row">
        <label class="field">
          <span>Port name</span>
          <input type="text" value={block.name} onInput={(e) => onChange({ ...block, name: e.currentTarget.value })} aria-invalid={isSqlName(block.name) ? 'false' : 'true'} data-testid="output-name" />
        </label>
        <label class="field grow">
          <span>Description</span>
          <input type="text" value={block.description} onInput={(e) => onChange({ ...block, description: e.currentTarget.value })} data-testid="output-description" />
        </label>
      </div>
      <h4>Columns</h4>
      <div class="lineage-state" aria-live="polite">
        {dryRun.state === 'loading' && (dryRun.previous ? <p class="muted small">Updating the lineage…</p> : <Loading label="Reading where each column comes from…" />)}
        {dryRun.state === 'incomplete' && <p class="muted small">Finish the flow to see the classification each column gets from its sources.</p>}
        {dryRun.state === 'nodomain' && <p class="muted small">Choose a domain to see the classification each column gets from its sources.</p>}
        {dryRun.state === 'error' && <ErrorBox error={dryRun.error} title="Could not read the columns' lineage." testid="lineage-error" />}
      </div>
      {!columns && <p class="muted small">Waiting for the input's columns…</p>}
      {columns && (
        <div data-testid="output-columns">
          {columns.map((c) => (
            <OutputColumn
              key={c.name}
              column={c}
              info={block.columns[c.name] || {}}
              lineage={lineageOf(c.name)}
              maskedSources={maskedSources}
              onChange={(info) => onChange({ ...block, columns: { ...block.columns, [c.name]: info } })}
            />
          ))}
        </div>
      )}
      <h4>Quality checks</h4>
      {block.quality.map((q, i) => (
        <div class="form-row" key={i} data-testid={`quality-${i}`}>
          <select aria-label={`Check ${i + 1} metric`} value={q.metric} onChange={(e) => setQuality(i, { ...q, metric: e.currentTarget.value, column: e.currentTarget.value === 'rowCount' ? '' : q.column })} data-testid={`quality-metric-${i}`}>
            {quality.map((m) => (
              <option key={m} value={m}>
                {m}
              </option>
            ))}
          </select>
          {q.metric !== 'rowCount' && <ColumnSelect columns={columns} value={q.column} label={`Check ${i + 1} column`} onChange={(v) => setQuality(i, { ...q, column: v })} testid={`quality-column-${i}`} />}
          <select aria-label={`Check ${i + 1} operator`} value={q.op} onChange={(e) => setQuality(i, { ...q, op: e.currentTarget.value })} data-testid={`quality-op-${i}`}>
            {QUALITY_OPS.map((o) => (
              <option key={o} value={o}>
                {o}
              </option>
            ))}
          </select>
          <input type="number" aria-label={`Check ${i + 1} value`} value={q.value} onInput={(e) => setQuality(i, { ...q, value: e.currentTarget.value })} data-testid={`quality-value-${i}`} />
          <button type="button" class="btn btn-small btn-icon" onClick={() => onChange({ ...block, quality: block.quality.filter((_, j) => j !== i) })} aria-label={`Remove check ${i + 1}`} data-testid={`quality-remove-${i}`}>
            ×
          </button>
        </div>
      ))}
      <button type="button" class="btn btn-small" onClick={() => onChange({ ...block, quality: [...block.quality, { metric: 'rowCount', column: '', op: 'mustBeGreaterThan', value: 0 }] })} data-testid="quality-add">
        + Check
      </button>
    </div>
  );
}

// plan: the previews (Map id → entry); dryRun: the output's lineage (see useDryRun).
export function BlockEditor({ flow, block, onChange, onRemove, sources, files = [], domain = '', vocabulary, plan, dryRun }) {
  const columnsOf = (id) => {
    const e = plan.get(id);
    if (e?.state === 'ok') return e.data.columns;
    const b = flow.blocks.find((x) => x.id === id);
    if (b?.type === 'source' && b.file !== undefined) return files.find((f) => f.file === b.file)?.columns || null;
    if (b?.type === 'source') return sources.find((s) => s.port === b.port)?.columns || null;
    return null;
  };
  const input = block.input;
  const columns = input ? columnsOf(input) : null;
  const inputPreview = input && plan.get(input)?.state === 'ok' ? plan.get(input).data : null;
  const entry = plan.get(block.id);
  const help = BLOCK_TYPES.find((t) => t.type === block.type)?.help;
  const problems = blockProblems(flow, block);
  const typed = { flow, block, onChange, columns };
  const [idError, setIdError] = useState('');
  return (
    <section class="card block-editor" aria-labelledby="block-editor-title" data-testid="block-editor" data-block={block.id} data-type={block.type}>
      <div class="card-head">
        <h2 id="block-editor-title">
          {BLOCK_TYPES.find((t) => t.type === block.type)?.label} <span class="mono muted">{block.id}</span>
        </h2>
        <button type="button" class="btn btn-small btn-danger" onClick={onRemove} data-testid="remove-block">
          Remove block
        </button>
      </div>
      <p class="muted small">{help}.</p>
      <label class="field">
        <span>Step name (names its SQL model)</span>
        <input
          type="text"
          class="mono"
          defaultValue={block.id}
          onChange={(e) => {
            const id = e.currentTarget.value.trim();
            const taken = id !== block.id && flow.blocks.some((b) => b.id === id);
            if (!id || taken) {
              e.currentTarget.value = block.id;
              setIdError(id ? `Another block is named ${id}.` : 'A step needs a name.');
              return;
            }
            setIdError('');
            onChange({ ...block, id });
          }}
          aria-invalid={isSqlName(block.id) && !idError ? 'false' : 'true'}
          data-testid="block-id"
        />
      </label>
      {idError && (
        <p class="field-error" role="alert">
          {idError}
        </p>
      )}
      {block.type !== 'source' && block.type !== 'join' && block.type !== 'union' && <InputField flow={flow} block={block} onChange={onChange} />}
      {block.type === 'source' && <SourceEditor flow={flow} block={block} onChange={onChange} sources={sources} files={files} domain={domain} />}
      {block.type === 'filter' && (
        <ConditionEditor
          where={block.where}
          onChange={(where) => onChange({ ...block, where })}
          columns={columns}
          operators={vocabulary?.operators || FALLBACK_OPERATORS}
          preview={inputPreview}
          blockId={block.id}
        />
      )}
      {block.type === 'select' && <SelectEditor {...typed} />}
      {block.type === 'derive' && <DeriveEditor {...typed} entry={entry} />}
      {block.type === 'join' && <JoinEditor {...typed} columnsOf={columnsOf} />}
      {block.type === 'aggregate' && <AggregateEditor {...typed} measures={vocabulary?.measures || FALLBACK_MEASURES} />}
      {block.type === 'union' && <UnionEditor {...typed} />}
      {block.type === 'sort' && <SortEditor {...typed} />}
      {block.type === 'distinct' && <DistinctEditor {...typed} />}
      {block.type === 'output' && <OutputEditor {...typed} columns={columnsOf(block.id) || columns} dryRun={dryRun} quality={vocabulary?.quality || FALLBACK_QUALITY} sources={sources} />}
      <Problems problems={problems} />
    </section>
  );
}
