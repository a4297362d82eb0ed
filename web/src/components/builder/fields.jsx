// Small form pieces the block editors share.
import { useEffect, useState } from 'preact/hooks';
import { tid } from '../../util.js';

// A select of the input's columns. `columns`: [{name, type}] or null while the input's preview
// is not there (the current value stays selectable).
export function ColumnSelect({ columns, value, onChange, testid, label, placeholder = 'Pick a column', filter, allowEmpty = false, emptyLabel }) {
  const list = (columns || []).filter((c) => !filter || filter(c));
  const known = list.some((c) => c.name === value);
  return (
    <select aria-label={label} value={value || ''} onChange={(e) => onChange(e.currentTarget.value)} data-testid={testid}>
      <option value="" disabled={!allowEmpty}>
        {allowEmpty ? emptyLabel || '(none)' : columns ? placeholder : 'Waiting for the input’s columns…'}
      </option>
      {value && !known && <option value={value}>{value}</option>}
      {list.map((c) => (
        <option key={c.name} value={c.name}>
          {c.name}
          {c.type ? ` · ${c.type.toLowerCase()}` : ''}
          {c.masked ? ' · masked' : ''}
        </option>
      ))}
    </select>
  );
}

// A select of the blocks a block may read.
export function InputSelect({ choices, value, onChange, testid, label }) {
  const known = choices.some((b) => b.id === value);
  return (
    <select aria-label={label} value={value || ''} onChange={(e) => onChange(e.currentTarget.value)} data-testid={testid}>
      <option value="" disabled>
        Pick a block
      </option>
      {value && !known && <option value={value}>{value} (not available)</option>}
      {choices.map((b) => (
        <option key={b.id} value={b.id}>
          {b.id} ({b.type})
        </option>
      ))}
    </select>
  );
}

// A text field that keeps what is typed while the flow holds a normalised form of it
// (a list typed as "a, b"; a number typed as "1.50"): `parse` turns the text into the value,
// `format` the value back into text; the text is replaced only when the value changes elsewhere.
export function TextField({ value, parse = (t) => t, format = (v) => v ?? '', onChange, ...rest }) {
  const [text, setText] = useState(format(value));
  useEffect(() => {
    if (JSON.stringify(parse(text)) !== JSON.stringify(value)) setText(format(value));
  }, [JSON.stringify(value)]);
  return (
    <input
      type="text"
      value={text}
      onInput={(e) => {
        const t = e.currentTarget.value;
        setText(t);
        onChange(parse(t));
      }}
      {...rest}
    />
  );
}

// Checkboxes for picking several columns (group-by, deduplicate keys).
export function ColumnChecks({ columns, picked, onChange, testidPrefix, legend }) {
  const set = new Set(picked);
  const list = columns || [];
  const extra = picked.filter((p) => !list.some((c) => c.name === p));
  return (
    <fieldset class="checks" data-testid={`${testidPrefix}-list`}>
      <legend class="sr-only">{legend}</legend>
      {!columns && <p class="muted small">Waiting for the input’s columns…</p>}
      {[...list.map((c) => c.name), ...extra].map((name) => {
        const col = list.find((c) => c.name === name);
        return (
          <label class="check" key={name}>
            <input
              type="checkbox"
              checked={set.has(name)}
              onChange={(e) => {
                const on = e.currentTarget.checked;
                // Keep the input's column order.
                const order = [...list.map((c) => c.name), ...extra];
                onChange(order.filter((n) => (n === name ? on : set.has(n))));
              }}
              data-testid={tid(testidPrefix, name)}
            />
            <span class="mono">{name}</span>
            {col?.type && <span class="muted small">{col.type.toLowerCase()}</span>}
          </label>
        );
      })}
    </fieldset>
  );
}

export function Problems({ problems, testid = 'block-problems' }) {
  if (!problems?.length) return null;
  return (
    <ul class="problems" data-testid={testid} aria-label="To finish this block">
      {problems.map((p) => (
        <li key={p}>{p}</li>
      ))}
    </ul>
  );
}
