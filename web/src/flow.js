// The builder's flows (version 1): what the canvas edits, the checks the server makes of them
// (mirrored so a user sees a problem before saving), and the pieces sent for previews.
//
// Inside the page a flow keeps its JSON shape with one difference: a filter condition holds its
// values as the texts typed, in `values` (a list, whatever the operator). `wireFlow` turns them
// into what the server reads — one `value` or a `values` list, numbers as numbers where the
// column is numeric — and drops what was left empty.
import { isNumericType } from './util.js';

export const BLOCK_TYPES = [
  { type: 'source', label: 'Source', short: 'Source', help: 'A port you may read, or a file in the domain’s own folder' },
  { type: 'filter', label: 'Filter', short: 'Filter', help: 'Keep the rows that match conditions' },
  { type: 'select', label: 'Select', short: 'Select', help: 'Keep, rename and reorder columns' },
  { type: 'derive', label: 'Derived column', short: 'Derive', help: 'A new column from an expression' },
  { type: 'join', label: 'Join', short: 'Join', help: 'Combine two inputs on keys' },
  { type: 'aggregate', label: 'Aggregate', short: 'Aggregate', help: 'Group rows and compute measures' },
  { type: 'union', label: 'Union', short: 'Union', help: 'Stack two inputs or more, by column name' },
  { type: 'sort', label: 'Sort / limit', short: 'Sort', help: 'Order the rows, keep the first N' },
  { type: 'distinct', label: 'Deduplicate', short: 'Dedupe', help: 'Whole rows, or the first row per key' },
  { type: 'output', label: 'Output port', short: 'Output', help: 'A port the product publishes' },
];

export function blockLabel(type, short = false) {
  const t = BLOCK_TYPES.find((b) => b.type === type);
  return (short ? t?.short : t?.label) || type;
}

// The fallback when the server does not say: the order of the example mesh's
// `governance.classifications`, weakest first (the API gives it to admins only).
export const CLASSIFICATIONS = ['public', 'internal', 'confidential', 'pii'];
export const QUALITY_OPS = ['mustBe', 'mustNotBe', 'mustBeGreaterThan', 'mustBeGreaterOrEqualTo', 'mustBeLessThan', 'mustBeLessOrEqualTo'];
export const NULLARY = new Set(['is null', 'is not null']);
export const LIST_OPS = new Set(['in', 'not in']);

const SQL_NAME = /^[a-z_][a-z0-9_]{0,62}$/;
export function isSqlName(name) {
  return SQL_NAME.test(name || '');
}

// SQL's reserved words a column may be named like (the server quotes those too).
const RESERVED = new Set(
  ('all and any as asc between by case cast check column create cross default desc distinct else end except ' +
    'exclude false fetch for from full group having in inner intersect into is join lateral left like limit ' +
    'natural not null offset on or order outer qualify replace right select table then to true union using when ' +
    'where window with').split(' '),
);

// A column name as it is written in an expression: bare when it can be, quoted otherwise.
export function sqlColumn(name) {
  if (isSqlName(name) && !RESERVED.has(name)) return name;
  return `"${String(name).replace(/"/g, '""')}"`;
}

export function blockInputs(block) {
  if (!block) return [];
  if (block.type === 'source') return [];
  if (block.type === 'join' || block.type === 'union') return block.inputs || [];
  return block.input ? [block.input] : [];
}

export function emptyFlow() {
  return {
    version: 1,
    product: {
      name: '',
      purpose: '',
      usage: '',
      limitations: '',
      tags: [],
      visibility: 'internal',
      type: 'consumerAligned',
      version: '0.1.0',
      status: 'draft',
    },
    blocks: [],
  };
}

const DEFAULT_IDS = {
  filter: 'filtered',
  select: 'selected',
  derive: 'derived',
  join: 'joined',
  aggregate: 'aggregated',
  union: 'combined',
  sort: 'sorted',
  distinct: 'deduplicated',
  output: 'output',
  source: 'source',
};

export function freeId(flow, base) {
  const taken = new Set(flow.blocks.map((b) => b.id));
  const stem = isSqlName(base) ? base.slice(0, 58) : 'block';
  if (!taken.has(stem)) return stem;
  for (let i = 2; ; i++) if (!taken.has(`${stem}_${i}`)) return `${stem}_${i}`;
}

// A file a source may read: data/<name>.csv|json|parquet in the product's domain. The same
// rule as the server's for an uploaded file's name.
export const FILE_FORMATS = ['csv', 'json', 'parquet'];
const FILE_NAME = /^[a-z][a-z0-9_]*\.(csv|json|parquet)$/;
export function isFileName(name) {
  return FILE_NAME.test(name || '');
}

// What a source block reads: {kind: 'port'|'file', name}.
export function sourceOf(block) {
  if (block?.file !== undefined) return { kind: 'file', name: block.file || '' };
  return { kind: 'port', name: block?.port || '' };
}

// The name a source is given from what it reads: sales.orders → orders,
// data/regions_targets.csv → regions_targets.
export function sourceBase(name) {
  const s = name || '';
  if (s.includes('/')) return s.split('/').pop().replace(/\.[a-z]+$/, '');
  return s.split('.').pop();
}

// The id a source gets from its port or file.
export function sourceId(flow, port, exceptId) {
  const base = sourceBase(port) || 'source';
  const others = { ...flow, blocks: flow.blocks.filter((b) => b.id !== exceptId) };
  return freeId(others, base);
}

export function emptyCondition() {
  return { column: '', op: '=', values: [''] };
}

// A new block of `type`, reading `from` (a block id) where it reads one.
export function newBlock(flow, type, from) {
  const id = freeId(flow, type === 'output' && isSqlName(flow.product.name) ? 'output' : DEFAULT_IDS[type]);
  const input = from || '';
  switch (type) {
    case 'source':
      return { id, type, port: '' };
    case 'filter':
      return { id, type, input, where: { group: 'and', conditions: [emptyCondition()] } };
    case 'select':
      return { id, type, input, columns: [] };
    case 'derive':
      return { id, type, input, name: '', expression: '' };
    case 'join':
      return { id, type, inputs: [input, ''], how: 'inner', on: [] };
    case 'aggregate':
      return { id, type, input, group_by: [], measures: [] };
    case 'union':
      return { id, type, inputs: [input, ''] };
    case 'sort':
      return { id, type, input, by: [{ column: '', descending: false }], limit: null };
    case 'distinct':
      return { id, type, input, keys: [] };
    case 'output': {
      const taken = new Set(flow.blocks.filter((b) => b.type === 'output').map((b) => b.name));
      let name = isSqlName(flow.product.name) ? flow.product.name : 'output';
      for (let i = 2; taken.has(name); i++) name = `${flow.product.name || 'output'}_${i}`;
      return { id, type, input, name, description: '', columns: {}, quality: [] };
    }
    default:
      throw new Error(`unknown block type ${type}`);
  }
}

// Renames a block and every reference to it.
export function renameBlock(flow, from, to) {
  const swap = (id) => (id === from ? to : id);
  return {
    ...flow,
    blocks: flow.blocks.map((b) => {
      const next = b.id === from ? { ...b, id: to } : { ...b };
      if ('input' in next) next.input = swap(next.input);
      if (Array.isArray(next.inputs)) next.inputs = next.inputs.map(swap);
      return next;
    }),
  };
}

// Removes a block; the blocks that read it are left with that input empty (their editors ask).
export function removeBlock(flow, id) {
  const clear = (x) => (x === id ? '' : x);
  return {
    ...flow,
    blocks: flow.blocks
      .filter((b) => b.id !== id)
      .map((b) => {
        const next = { ...b };
        if ('input' in next) next.input = clear(next.input);
        if (Array.isArray(next.inputs)) next.inputs = next.inputs.map(clear);
        return next;
      }),
  };
}

// The blocks ordered inputs first (unknown inputs and cycles are left to `flowProblems`).
export function topoOrder(blocks) {
  const byId = new Map(blocks.map((b) => [b.id, b]));
  const state = new Map();
  const out = [];
  const visit = (b) => {
    if (state.get(b.id)) return;
    state.set(b.id, 1);
    for (const i of blockInputs(b)) {
      const input = byId.get(i);
      if (input && !state.get(i)) visit(input);
    }
    state.set(b.id, 2);
    out.push(b);
  };
  for (const b of blocks) visit(b);
  return out;
}

// `id` and every block it reads, directly or not.
export function ancestors(flow, id) {
  const byId = new Map(flow.blocks.map((b) => [b.id, b]));
  const seen = new Set();
  const walk = (x) => {
    if (seen.has(x) || !byId.has(x)) return;
    seen.add(x);
    for (const i of blockInputs(byId.get(x))) walk(i);
  };
  walk(id);
  return seen;
}

// Every block that reads `id`, directly or not (a block may not read these: a cycle).
export function descendants(flow, id) {
  const out = new Set([id]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const b of flow.blocks) {
      if (!out.has(b.id) && blockInputs(b).some((i) => out.has(i))) {
        out.add(b.id);
        grew = true;
      }
    }
  }
  return out;
}

// The blocks `block` may read: not outputs, not itself, nothing that reads it.
export function inputChoices(flow, block) {
  const below = descendants(flow, block.id);
  return flow.blocks.filter((b) => b.type !== 'output' && !below.has(b.id));
}

// ---- checks (the server's rules, in the user's words) ----

export function expressionProblem(expression) {
  const e = expression || '';
  if (!e.trim()) return 'Write an expression, or pick a function below.';
  if (e.length > 4000) return 'The expression is longer than 4000 characters.';
  let depth = 0;
  for (let i = 0; i < e.length; i++) {
    const c = e[i];
    if (c === "'" || c === '"') {
      const end = e.indexOf(c, i + 1);
      if (end < 0) return 'A quote in the expression is not closed.';
      i = end;
      continue;
    }
    const next = e[i + 1];
    if ((c === '-' && next === '-') || (c === '/' && next === '*')) return 'The expression may not hold a comment; describe the column in the output instead.';
    if (c === ';') return "The expression may not hold ';': it is one expression.";
    if (c === '$') return "The expression may not hold '$'.";
    if (c === '(') depth++;
    if (c === ')' && --depth < 0) return "A ')' closes nothing.";
  }
  if (depth !== 0) return "A '(' is not closed.";
  return null;
}

function conditionProblems(c, out) {
  if (c.group !== undefined) {
    for (const m of c.conditions || []) conditionProblems(m, out);
    return;
  }
  if (!c.column) {
    out.push('Pick a column for each condition.');
    return;
  }
  const values = (c.values || []).filter((v) => String(v).trim() !== '');
  if (NULLARY.has(c.op)) return;
  if (c.op === 'between' && values.length !== 2) out.push(`Give two values for “${c.column} between”.`);
  else if (LIST_OPS.has(c.op) && values.length === 0) out.push(`Give one value or more for “${c.column} ${c.op}”.`);
  else if (!LIST_OPS.has(c.op) && c.op !== 'between' && values.length !== 1) out.push(`Give a value for “${c.column} ${c.op}”.`);
}

// What is wrong with one block by itself (its inputs are checked by `flowProblems`).
export function blockProblems(flow, block) {
  const out = [];
  if (!isSqlName(block.id)) out.push('The step name is a SQL name: lower-case letters, digits and _, starting with a letter (at most 63).');
  if (flow.blocks.filter((b) => b.id === block.id).length > 1) out.push(`Two blocks are named ${block.id}.`);
  const inputs = blockInputs(block);
  if (block.type !== 'source') {
    if (inputs.length === 0 || inputs.some((i) => !i)) out.push(block.type === 'join' || block.type === 'union' ? 'Pick every input.' : 'Pick the input.');
    for (const i of inputs.filter(Boolean)) {
      const b = flow.blocks.find((x) => x.id === i);
      if (!b) out.push(`Its input ${i} is not a block of the flow.`);
      else if (b.type === 'output') out.push(`It reads the output block ${i}; read the block before the output instead.`);
    }
  }
  switch (block.type) {
    case 'source':
      if (block.file !== undefined) {
        if (!block.file) out.push('Pick a file to read.');
      } else if (!block.port) out.push('Pick a port to read.');
      break;
    case 'filter':
      conditionProblems(block.where || { group: 'and', conditions: [] }, out);
      break;
    case 'select':
      if (!block.columns?.length) out.push('Keep at least one column.');
      if ((block.columns || []).some((c) => !c.column)) out.push('Pick each column.');
      break;
    case 'derive': {
      if (!block.name) out.push('Name the new column.');
      const p = expressionProblem(block.expression);
      if (p) out.push(p);
      break;
    }
    case 'join':
      if ((block.inputs || []).length !== 2) out.push('A join reads two inputs, left and right.');
      if (!block.on?.length) out.push('Pick at least one key: a column on each side.');
      if ((block.on || []).some((k) => !k.left || !k.right)) out.push('Pick both columns of each key.');
      break;
    case 'aggregate': {
      if (!block.group_by?.length && !block.measures?.length) out.push('Group by a column or add a measure.');
      const names = new Set(block.group_by || []);
      for (const m of block.measures || []) {
        if (!m.function) out.push('Pick each measure’s function.');
        else if (m.function !== 'count' && !m.column) out.push(`${m.function} needs a column.`);
        const as = measureName(m);
        if (names.has(as)) out.push(`Two columns would be named ${as}.`);
        names.add(as);
      }
      break;
    }
    case 'union':
      if ((block.inputs || []).length < 2) out.push('A union reads two inputs or more.');
      break;
    case 'sort':
      if (!(block.by || []).some((k) => k.column) && (block.limit === null || block.limit === undefined || block.limit === '')) out.push('Sort by a column or give a limit.');
      if ((block.by || []).some((k) => !k.column) && (block.by || []).length > 1) out.push('Pick each sort column (or remove it).');
      if (block.limit !== null && block.limit !== undefined && block.limit !== '' && !(Number.isInteger(Number(block.limit)) && Number(block.limit) >= 0))
        out.push('The limit is a whole number, 0 or more.');
      break;
    case 'output': {
      if (!isSqlName(block.name)) out.push('The port’s name is a SQL name: lower-case letters, digits and _, starting with a letter.');
      if (flow.blocks.filter((b) => b.type === 'output' && b.name === block.name).length > 1) out.push(`Two output blocks publish a port named ${block.name}.`);
      for (const [col, info] of Object.entries(block.columns || {})) {
        if (info.declassifying && !String(info.declassified || '').trim()) out.push(`Say why ${col} may be published as ${info.classification}.`);
      }
      for (const q of block.quality || []) {
        if (q.metric !== 'rowCount' && !q.column) out.push(`The ${q.metric} check needs a column.`);
        if (!Number.isFinite(Number(q.value))) out.push('Each check compares with a number.');
      }
      break;
    }
    default:
      break;
  }
  return [...new Set(out)];
}

export function measureName(m) {
  if (m.as) return m.as;
  return m.column ? `${m.function}_${m.column}` : 'count';
}

// What stops the whole flow from saving: every block's problems, cycles, no output, the product.
export function flowProblems(flow) {
  const out = [];
  if (!isSqlName(flow.product.name)) out.push({ block: null, message: 'Name the product with a SQL name: lower-case letters, digits and _, starting with a letter.' });
  if (!String(flow.product.purpose || '').trim()) out.push({ block: null, message: 'Say what the product is for (its purpose).' });
  if (!flow.blocks.some((b) => b.type === 'output')) out.push({ block: null, message: 'Add an output block: it is the port the product publishes.' });
  for (const b of flow.blocks) for (const m of blockProblems(flow, b)) out.push({ block: b.id, message: m });
  for (const b of flow.blocks) {
    if (blockInputs(b).some((i) => i && descendants(flow, b.id).has(i))) out.push({ block: b.id, message: 'The flow has a cycle through this block.' });
  }
  return out;
}

// ---- what is sent ----

const NUMBER = /^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;

function wireValue(text, numeric) {
  const t = String(text).trim();
  if (numeric && NUMBER.test(t)) return Number(t);
  return String(text);
}

function wireCondition(c, typeOf) {
  if (c.group !== undefined) return { group: c.group, conditions: (c.conditions || []).map((m) => wireCondition(m, typeOf)) };
  const numeric = isNumericType(typeOf(c.column));
  const values = (c.values || []).filter((v) => String(v).trim() !== '').map((v) => wireValue(v, numeric));
  if (NULLARY.has(c.op)) return { column: c.column, op: c.op };
  if (c.op === 'between' || LIST_OPS.has(c.op)) return { column: c.column, op: c.op, values };
  return { column: c.column, op: c.op, value: values[0] ?? '' };
}

// One block as the server reads it. `typeOf(column)` is the type of a column of its input.
export function wireBlock(block, typeOf = () => '') {
  switch (block.type) {
    case 'source':
      // A port or a file, never both.
      return block.file !== undefined ? { id: block.id, type: block.type, file: block.file } : { id: block.id, type: block.type, port: block.port };
    case 'filter':
      return { id: block.id, type: block.type, input: block.input, where: wireCondition(block.where, typeOf) };
    case 'select':
      return { id: block.id, type: block.type, input: block.input, columns: block.columns.map((c) => (c.as && c.as !== c.column ? { column: c.column, as: c.as } : { column: c.column })) };
    case 'aggregate':
      return {
        id: block.id,
        type: block.type,
        input: block.input,
        group_by: block.group_by,
        measures: block.measures.map((m) => {
          const w = { function: m.function };
          if (m.column) w.column = m.column;
          if (m.as) w.as = m.as;
          return w;
        }),
      };
    case 'sort': {
      const w = { id: block.id, type: block.type, input: block.input, by: (block.by || []).filter((k) => k.column) };
      if (block.limit !== null && block.limit !== undefined && block.limit !== '') w.limit = Number(block.limit);
      return w;
    }
    case 'output': {
      const columns = {};
      for (const [name, info] of Object.entries(block.columns || {})) {
        const w = {};
        if (info.description) w.description = info.description;
        if (info.required) w.required = true;
        if (info.unique) w.unique = true;
        if (info.classification) w.classification = info.classification;
        if (info.declassifying && info.declassified) w.declassified = info.declassified;
        if (Object.keys(w).length) columns[name] = w;
      }
      const w = { id: block.id, type: block.type, input: block.input, name: block.name };
      if (block.description) w.description = block.description;
      if (Object.keys(columns).length) w.columns = columns;
      const quality = (block.quality || []).map((q) => {
        const x = { metric: q.metric, op: q.op, value: Number(q.value) };
        if (q.metric !== 'rowCount' && q.column) x.column = q.column;
        return x;
      });
      if (quality.length) w.quality = quality;
      return w;
    }
    default:
      return { ...block };
  }
}

export function wireProduct(product) {
  const p = {};
  for (const [k, v] of Object.entries(product)) {
    if (k === 'tags') p.tags = (v || []).filter(Boolean);
    else if (v !== '' && v !== null && v !== undefined) p[k] = v;
  }
  return p;
}

// The whole flow as saved. `typesOf(blockId)` maps a block's input columns to their types.
export function wireFlow(flow, typesOf = () => ({})) {
  return {
    version: 1,
    product: wireProduct(flow.product),
    blocks: topoOrder(flow.blocks).map((b) => wireBlock(b, (col) => typesOf(b.id)[col] || '')),
  };
}

// The smallest flow the server will preview `id` from: the block, what it reads, and an output
// reading it when it is not one. The server parses the whole flow it is given, so the rest of
// the canvas (an unfinished block, no output yet) stays out of it.
export function previewFlow(flow, id, typesOf) {
  const keep = ancestors(flow, id);
  const blocks = topoOrder(flow.blocks.filter((b) => keep.has(b.id))).map((b) => {
    if (b.type === 'output') return { id: b.id, type: 'output', input: b.input, name: 'preview' };
    return wireBlock(b, (col) => typesOf(b.id)[col] || '');
  });
  const target = flow.blocks.find((b) => b.id === id);
  if (target && target.type !== 'output') {
    let out = 'preview_output';
    while (keep.has(out)) out += '_';
    blocks.push({ id: out, type: 'output', input: id, name: 'preview' });
  }
  return { version: 1, product: { name: 'builder_preview' }, blocks };
}

// A flow read from the server, in the page's form (condition values as typed texts).
export function fromWire(wire) {
  const flow = emptyFlow();
  flow.product = { ...flow.product, ...(wire?.product || {}) };
  flow.product.tags = Array.isArray(flow.product.tags) ? flow.product.tags : [];
  const cond = (c) => {
    if (c.group !== undefined) return { group: c.group, conditions: (c.conditions || []).map(cond) };
    const values = Array.isArray(c.values) ? c.values : c.value !== undefined && c.value !== null ? [c.value] : [];
    return { column: c.column || '', op: c.op || '=', values: values.map((v) => String(v)) };
  };
  flow.blocks = (wire?.blocks || []).map((b) => {
    switch (b.type) {
      case 'filter':
        return { ...b, where: cond(b.where || { group: 'and', conditions: [] }) };
      case 'select':
        return { ...b, columns: (b.columns || []).map((c) => ({ column: c.column, as: c.as || '' })) };
      case 'aggregate':
        return { ...b, group_by: b.group_by || [], measures: (b.measures || []).map((m) => ({ function: m.function, column: m.column || '', as: m.as || '' })) };
      case 'sort':
        return { ...b, by: b.by || [], limit: b.limit ?? null };
      case 'distinct':
        return { ...b, keys: b.keys || [] };
      case 'join':
        return { ...b, how: b.how || 'inner', on: b.on || [] };
      case 'output': {
        const columns = {};
        for (const [k, v] of Object.entries(b.columns || {})) columns[k] = { ...v, declassifying: !!v.declassified };
        return { ...b, description: b.description || '', columns, quality: (b.quality || []).map((q) => ({ column: '', ...q })) };
      }
      default:
        return { ...b };
    }
  });
  return flow;
}

// One line that says what a block does, for its box on the canvas.
export function blockSummary(block) {
  switch (block.type) {
    case 'source':
      return block.file !== undefined ? block.file || 'pick a file' : block.port || 'pick a port';
    case 'filter': {
      const flat = [];
      const walk = (c) => (c.group !== undefined ? (c.conditions || []).forEach(walk) : flat.push(c));
      walk(block.where || { conditions: [] });
      if (!flat.length) return 'no conditions';
      const c = flat[0];
      const v = NULLARY.has(c.op) ? '' : ` ${(c.values || []).join(', ')}`;
      return `${c.column || '?'} ${c.op}${v}${flat.length > 1 ? ` ${block.where.group} ${flat.length - 1} more` : ''}`;
    }
    case 'select':
      return `${block.columns.length} column${block.columns.length === 1 ? '' : 's'}`;
    case 'derive':
      return `${block.name || '?'} = ${block.expression || '…'}`;
    case 'join':
      return `${block.how} on ${(block.on || []).map((k) => (k.left === k.right ? k.left : `${k.left}=${k.right}`)).join(', ') || '?'}`;
    case 'aggregate':
      return `${block.group_by.length ? `by ${block.group_by.join(', ')}` : 'all rows'} · ${block.measures.length} measure${block.measures.length === 1 ? '' : 's'}`;
    case 'union':
      return `${(block.inputs || []).length} inputs`;
    case 'sort': {
      const by = (block.by || []).filter((k) => k.column).map((k) => `${k.column}${k.descending ? ' ↓' : ''}`);
      return [by.length ? `by ${by.join(', ')}` : '', block.limit !== null && block.limit !== '' && block.limit !== undefined ? `limit ${block.limit}` : '']
        .filter(Boolean)
        .join(' · ');
    }
    case 'distinct':
      return block.keys?.length ? `first per ${block.keys.join(', ')}` : 'whole rows';
    case 'output':
      return `port ${block.name || '?'}`;
    default:
      return '';
  }
}

// Functions offered by the derive block's picker. `args`: a column of the input (of a kind of
// type), a number, or a choice; `sql` writes the call from the arguments' texts.
export const FUNCTIONS = [
  { name: 'upper', signature: 'upper(text)', help: 'The text in capitals', args: [{ kind: 'column', type: 'text', label: 'text' }], sql: ([a]) => `upper(${a})` },
  { name: 'lower', signature: 'lower(text)', help: 'The text in small letters', args: [{ kind: 'column', type: 'text', label: 'text' }], sql: ([a]) => `lower(${a})` },
  { name: 'trim', signature: 'trim(text)', help: 'The text without leading and trailing spaces', args: [{ kind: 'column', type: 'text', label: 'text' }], sql: ([a]) => `trim(${a})` },
  { name: 'length', signature: 'length(text)', help: 'How many characters', args: [{ kind: 'column', type: 'text', label: 'text' }], sql: ([a]) => `length(${a})` },
  {
    name: 'concat',
    signature: 'concat(a, b)',
    help: 'Two values as one text',
    args: [
      { kind: 'column', type: 'any', label: 'a' },
      { kind: 'column', type: 'any', label: 'b' },
    ],
    sql: ([a, b]) => `concat(${a}, ${b})`,
  },
  {
    name: 'coalesce',
    signature: 'coalesce(a, b)',
    help: 'a, or b where a is NULL',
    args: [
      { kind: 'column', type: 'any', label: 'a' },
      { kind: 'column', type: 'any', label: 'b' },
    ],
    sql: ([a, b]) => `coalesce(${a}, ${b})`,
  },
  {
    name: 'round',
    signature: 'round(number, digits)',
    help: 'The number rounded to some decimal digits',
    args: [
      { kind: 'column', type: 'number', label: 'number' },
      { kind: 'number', label: 'digits', default: 2 },
    ],
    sql: ([a, d]) => `round(${a}, ${d})`,
  },
  { name: 'abs', signature: 'abs(number)', help: 'The number without its sign', args: [{ kind: 'column', type: 'number', label: 'number' }], sql: ([a]) => `abs(${a})` },
  { name: 'year', signature: 'year(date)', help: 'The year of a date', args: [{ kind: 'column', type: 'date', label: 'date' }], sql: ([a]) => `year(${a})` },
  { name: 'month', signature: 'month(date)', help: 'The month (1–12) of a date', args: [{ kind: 'column', type: 'date', label: 'date' }], sql: ([a]) => `month(${a})` },
  {
    name: 'date_trunc',
    signature: "date_trunc('month', date)",
    help: 'The date cut to the start of its day, week, month, quarter or year',
    args: [
      { kind: 'choice', label: 'part', options: ['day', 'week', 'month', 'quarter', 'year'], default: 'month' },
      { kind: 'column', type: 'date', label: 'date' },
    ],
    sql: ([p, a]) => `date_trunc('${p}', ${a})`,
  },
  {
    name: 'cast',
    signature: 'cast(x as integer)',
    help: 'The value as another type',
    args: [
      { kind: 'column', type: 'any', label: 'x' },
      { kind: 'choice', label: 'type', options: ['integer', 'bigint', 'double', 'decimal(12,2)', 'varchar', 'date', 'boolean'], default: 'integer' },
    ],
    sql: ([a, t]) => `cast(${a} as ${t})`,
  },
  {
    name: 'nullif',
    signature: 'nullif(a, b)',
    help: 'NULL where a equals b, else a',
    args: [
      { kind: 'column', type: 'any', label: 'a' },
      { kind: 'column', type: 'any', label: 'b' },
    ],
    sql: ([a, b]) => `nullif(${a}, ${b})`,
  },
];

const TEXT_TYPE = /^(VARCHAR|TEXT|STRING|CHAR|UUID|ENUM)/i;
const DATE_TYPE = /^(DATE|TIMESTAMP)/i;

// Whether a column of `type` fits an argument of kind `want` (text, number, date, any).
export function typeFits(want, type) {
  if (want === 'any') return true;
  if (want === 'text') return TEXT_TYPE.test(type || '');
  if (want === 'number') return isNumericType(type);
  if (want === 'date') return DATE_TYPE.test(type || '');
  return true;
}
