// The derive block's function list: pick a function and its arguments from the input's columns,
// and the call is written into the expression at the cursor — no SQL to type.
import { useState } from 'preact/hooks';
import { FUNCTIONS, sqlColumn, typeFits } from '../../flow.js';
import { ColumnSelect } from './fields.jsx';

function defaults(fn) {
  return fn.args.map((a) => (a.kind === 'column' ? '' : String(a.default ?? '')));
}

export function FunctionPicker({ columns, onInsert }) {
  const [name, setName] = useState(FUNCTIONS[0].name);
  const fn = FUNCTIONS.find((f) => f.name === name);
  const [args, setArgs] = useState(defaults(fn));
  const ready = fn.args.every((a, i) => String(args[i] ?? '').trim() !== '');
  const insert = () => {
    const texts = fn.args.map((a, i) => (a.kind === 'column' ? sqlColumn(args[i]) : a.kind === 'number' ? String(Number(args[i]) || 0) : args[i]));
    onInsert(fn.sql(texts));
  };
  return (
    <fieldset class="fn-picker" data-testid="fn-picker">
      <legend>Insert a function</legend>
      <div class="form-row">
        <label class="field">
          <span>Function</span>
          <select
            value={name}
            onChange={(e) => {
              const next = FUNCTIONS.find((f) => f.name === e.currentTarget.value);
              setName(next.name);
              setArgs(defaults(next));
            }}
            data-testid="fn-select"
          >
            {FUNCTIONS.map((f) => (
              <option key={f.name} value={f.name}>
                {f.signature}
              </option>
            ))}
          </select>
        </label>
        {fn.args.map((a, i) => (
          <label class="field" key={`${fn.name}-${i}`}>
            <span>{a.label}</span>
            {a.kind === 'column' && (
              <ColumnSelect
                columns={columns}
                value={args[i]}
                label={`${fn.name}: ${a.label}`}
                filter={(c) => typeFits(a.type, c.type)}
                onChange={(v) => setArgs(args.map((x, j) => (j === i ? v : x)))}
                testid={`fn-arg-${i}`}
              />
            )}
            {a.kind === 'number' && (
              <input type="number" value={args[i]} onInput={(e) => setArgs(args.map((x, j) => (j === i ? e.currentTarget.value : x)))} data-testid={`fn-arg-${i}`} />
            )}
            {a.kind === 'choice' && (
              <select value={args[i]} onChange={(e) => setArgs(args.map((x, j) => (j === i ? e.currentTarget.value : x)))} data-testid={`fn-arg-${i}`}>
                {a.options.map((o) => (
                  <option key={o} value={o}>
                    {o}
                  </option>
                ))}
              </select>
            )}
          </label>
        ))}
        <button type="button" class="btn" disabled={!ready} onClick={insert} data-testid="fn-insert">
          Insert
        </button>
      </div>
      <p class="muted small">{fn.help}.</p>
    </fieldset>
  );
}
