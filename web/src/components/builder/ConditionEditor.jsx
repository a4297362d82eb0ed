// A filter's conditions: comparisons of a column with values, in AND/OR groups (nested).
import { LIST_OPS, NULLARY, emptyCondition } from '../../flow.js';
import { cellText } from '../../util.js';
import { ColumnSelect, TextField } from './fields.jsx';

const MAX_DEPTH = 3;

const splitList = (t) => t.split(',').map((s) => s.trim());
const joinList = (v) => (v || []).join(', ');

function ValueFields({ cond, path, onChange, suggestions, listId }) {
  const values = cond.values || [];
  if (NULLARY.has(cond.op)) return null;
  if (cond.op === 'between') {
    return (
      <span class="between">
        <input
          type="text"
          aria-label={`${cond.column || 'value'} from`}
          value={values[0] ?? ''}
          list={listId}
          onInput={(e) => onChange({ ...cond, values: [e.currentTarget.value, values[1] ?? ''] })}
          data-testid={`cond-value-${path}`}
        />
        <span class="muted">and</span>
        <input
          type="text"
          aria-label={`${cond.column || 'value'} to`}
          value={values[1] ?? ''}
          list={listId}
          onInput={(e) => onChange({ ...cond, values: [values[0] ?? '', e.currentTarget.value] })}
          data-testid={`cond-value2-${path}`}
        />
      </span>
    );
  }
  if (LIST_OPS.has(cond.op)) {
    return (
      <TextField
        aria-label={`${cond.column || 'values'}, separated by commas`}
        placeholder="a, b, c"
        value={values}
        parse={splitList}
        format={joinList}
        onChange={(v) => onChange({ ...cond, values: v })}
        data-testid={`cond-value-${path}`}
      />
    );
  }
  return (
    <>
      <input
        type="text"
        aria-label={`${cond.column || 'value'} value`}
        value={values[0] ?? ''}
        list={suggestions.length ? listId : undefined}
        onInput={(e) => onChange({ ...cond, values: [e.currentTarget.value] })}
        data-testid={`cond-value-${path}`}
      />
    </>
  );
}

function ConditionRow({ cond, path, columns, operators, onChange, onRemove, sampleValues, blockId }) {
  const suggestions = sampleValues(cond.column);
  const listId = `values-${blockId}-${path}`;
  return (
    <div class="cond-row" data-testid={`cond-${path}`}>
      <ColumnSelect columns={columns} value={cond.column} label="Column" onChange={(column) => onChange({ ...cond, column })} testid={`cond-column-${path}`} />
      <select
        aria-label="Operator"
        value={cond.op}
        onChange={(e) => {
          const op = e.currentTarget.value;
          const values = NULLARY.has(op) ? [] : op === 'between' ? [cond.values?.[0] ?? '', cond.values?.[1] ?? ''] : cond.values?.length ? cond.values : [''];
          onChange({ ...cond, op, values });
        }}
        data-testid={`cond-op-${path}`}
      >
        {operators.map((op) => (
          <option key={op} value={op}>
            {op.replace(/_/g, ' ')}
          </option>
        ))}
      </select>
      <ValueFields cond={cond} path={path} onChange={onChange} suggestions={suggestions} listId={listId} />
      {suggestions.length > 0 && (
        <datalist id={listId}>
          {suggestions.map((v) => (
            <option key={v} value={v} />
          ))}
        </datalist>
      )}
      <button type="button" class="btn btn-small btn-icon" onClick={onRemove} aria-label="Remove this condition" data-testid={`cond-remove-${path}`}>
        ×
      </button>
    </div>
  );
}

function ConditionGroup({ group, path, depth, onChange, onRemove, ...rest }) {
  const set = (i, c) => onChange({ ...group, conditions: group.conditions.map((x, j) => (j === i ? c : x)) });
  const drop = (i) => onChange({ ...group, conditions: group.conditions.filter((_, j) => j !== i) });
  return (
    <fieldset class={`cond-group depth-${depth}`} data-testid={`cond-group-${path}`}>
      <legend>
        <label class="field-inline">
          <span>Rows must match</span>
          <select value={group.group} onChange={(e) => onChange({ ...group, group: e.currentTarget.value })} data-testid={`group-op-${path}`}>
            <option value="and">all of these (AND)</option>
            <option value="or">any of these (OR)</option>
          </select>
        </label>
        {onRemove && (
          <button type="button" class="btn btn-small btn-link" onClick={onRemove} data-testid={`group-remove-${path}`}>
            Remove group
          </button>
        )}
      </legend>
      {!group.conditions.length && <p class="muted small">No conditions: every row is kept.</p>}
      {group.conditions.map((c, i) =>
        c.group !== undefined ? (
          <ConditionGroup key={i} group={c} path={`${path}-${i}`} depth={depth + 1} onChange={(x) => set(i, x)} onRemove={() => drop(i)} {...rest} />
        ) : (
          <ConditionRow key={i} cond={c} path={`${path}-${i}`} onChange={(x) => set(i, x)} onRemove={() => drop(i)} {...rest} />
        ),
      )}
      <div class="actions">
        <button type="button" class="btn btn-small" onClick={() => onChange({ ...group, conditions: [...group.conditions, emptyCondition()] })} data-testid={`add-condition-${path}`}>
          + Condition
        </button>
        {depth < MAX_DEPTH && (
          <button
            type="button"
            class="btn btn-small"
            onClick={() => onChange({ ...group, conditions: [...group.conditions, { group: group.group === 'and' ? 'or' : 'and', conditions: [emptyCondition()] }] })}
            data-testid={`add-group-${path}`}
          >
            + Group
          </button>
        )}
      </div>
    </fieldset>
  );
}

// where: the filter's root group; columns: the input's [{name, type}] (null until previewed);
// rows: the input's preview ({columns, rows}) for suggesting values.
export function ConditionEditor({ where, onChange, columns, operators, preview, blockId }) {
  const sampleValues = (column) => {
    if (!preview || !column) return [];
    const i = preview.columns.findIndex((c) => c.name === column);
    if (i < 0 || preview.columns[i].masked) return [];
    const seen = new Set();
    for (const r of preview.rows) {
      const t = cellText(r[i]);
      if (t !== null) seen.add(t);
      if (seen.size >= 30) break;
    }
    return [...seen].sort();
  };
  return (
    <ConditionGroup
      group={where}
      path="c"
      depth={0}
      onChange={onChange}
      columns={columns}
      operators={operators}
      sampleValues={sampleValues}
      blockId={blockId}
    />
  );
}
