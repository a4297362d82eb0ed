// One-click chart of a query result with Vega-Lite (vega-embed, loaded on first use).
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { isNumericType, isTemporalType } from '../util.js';
import { ErrorBox, Loading } from './common.jsx';

let embedModules;
function loadEmbed() {
  embedModules ??= Promise.all([import('vega-embed'), import('vega-interpreter')]).then(([e, i]) => ({
    embed: e.default,
    interpreter: i.expressionInterpreter,
  }));
  return embedModules;
}

// Vega-Lite reads "." and "[" in field names as paths; escape them.
const escapeField = (name) => name.replace(/([.[\]\\])/g, '\\$1');

function encodingType(col) {
  if (isTemporalType(col.type)) return 'temporal';
  if (isNumericType(col.type)) return 'quantitative';
  return 'nominal';
}

export function buildSpec(result, { x, y, mark, aggregate }) {
  const cols = result.columns;
  const xi = cols.findIndex((c) => c.name === x);
  const yi = cols.findIndex((c) => c.name === y);
  if (xi < 0 || yi < 0) return null;
  const xType = encodingType(cols[xi]);
  const values = result.rows.map((r) => {
    const yv = r[yi];
    const xv = r[xi];
    return {
      [cols[xi].name]: xType === 'quantitative' && xv !== null ? Number(xv) : xv,
      [cols[yi].name]: yv === null ? null : Number(yv),
    };
  });
  const yEnc = {
    field: escapeField(cols[yi].name),
    type: 'quantitative',
    title: aggregate === 'none' ? cols[yi].name : `${aggregate} of ${cols[yi].name}`,
  };
  if (aggregate !== 'none') yEnc.aggregate = aggregate;
  const xEnc = { field: escapeField(cols[xi].name), type: xType, title: cols[xi].name };
  if (mark === 'bar' && xType === 'temporal') {
    // Bars on a continuous time axis are hair-thin; one band per distinct date reads better.
    Object.assign(xEnc, { type: 'ordinal', timeUnit: /^DATE$/i.test(cols[xi].type) ? 'yearmonthdate' : 'yearmonthdatehoursminutes' });
  } else if (mark === 'bar' && xType === 'quantitative') {
    xEnc.type = 'ordinal';
  } else if (xType === 'nominal' && mark === 'bar') {
    xEnc.sort = '-y';
  }
  return {
    width: 'container',
    height: 320,
    data: { values },
    mark: mark === 'line' ? { type: 'line', point: true, tooltip: true } : { type: 'bar', tooltip: true },
    encoding: {
      x: xEnc,
      y: yEnc,
    },
    config: {
      font: 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif',
      mark: { color: '#0f6b61' },
      axis: { labelColor: '#37474f', titleColor: '#263238', gridColor: '#e3e8ea' },
      view: { stroke: null },
    },
  };
}

// Draws a Vega-Lite spec (with its data) as SVG. ast + interpreter: no eval, so the page's
// strict Content-Security-Policy holds. `label` names the chart for screen readers.
export function VegaView({ spec, testid = 'chart', label, attrs }) {
  const [error, setError] = useState(null);
  const [rendering, setRendering] = useState(true);
  const target = useRef(null);

  useEffect(() => {
    if (!spec || !target.current) {
      setRendering(false);
      return undefined;
    }
    let view;
    let cancelled = false;
    setRendering(true);
    setError(null);
    loadEmbed()
      .then(({ embed, interpreter }) =>
        embed(target.current, spec, { mode: 'vega-lite', actions: false, renderer: 'svg', ast: true, expr: interpreter, defaultStyle: false }),
      )
      .then((res) => {
        if (cancelled) res.finalize();
        else view = res;
        setRendering(false);
      })
      .catch((e) => {
        if (!cancelled) {
          setError(e);
          setRendering(false);
        }
      });
    return () => {
      cancelled = true;
      view?.finalize();
    };
  }, [spec]);

  return (
    <>
      {rendering && <Loading label="Drawing chart…" />}
      <ErrorBox error={error} title="The chart could not be drawn." testid={`${testid}-error`} />
      <div
        class="chart"
        ref={target}
        data-testid={testid}
        data-drawn={!rendering && !error ? 'true' : 'false'}
        role={label ? 'img' : undefined}
        aria-label={label}
        {...attrs}
      />
    </>
  );
}

// The spec without its data: what a dashboard stores (each viewer's rows are added when drawn).
export function specWithoutData(spec) {
  if (!spec) return null;
  const { data, ...rest } = spec;
  return rest;
}

export function ChartPanel({ result, onSpec }) {
  const cols = result.columns;
  const numeric = cols.filter((c) => isNumericType(c.type));
  const defaultX = (cols.find((c) => isTemporalType(c.type)) || cols.find((c) => !isNumericType(c.type)) || cols[0])?.name;
  const defaultY = (numeric.find((c) => c.name !== defaultX) || numeric[0] || cols[1] || cols[0])?.name;
  const [x, setX] = useState(defaultX);
  const [y, setY] = useState(defaultY);
  const [mark, setMark] = useState(cols.some((c) => c.name === defaultX && isTemporalType(c.type)) ? 'line' : 'bar');
  const [aggregate, setAggregate] = useState('sum');
  const spec = useMemo(() => buildSpec(result, { x, y, mark, aggregate }), [result, x, y, mark, aggregate]);
  useEffect(() => {
    onSpec?.(spec);
  }, [spec]);

  const select = (id, label, value, set, options) => (
    <label class="field field-inline" for={id}>
      <span>{label}</span>
      <select id={id} value={value} onChange={(e) => set(e.currentTarget.value)} data-testid={id}>
        {options.map((o) => (
          <option key={o.value} value={o.value}>
            {o.label}
          </option>
        ))}
      </select>
    </label>
  );
  const colOptions = cols.map((c) => ({ value: c.name, label: `${c.name} (${c.type})` }));

  return (
    <section class="chart-panel" aria-label="Chart" data-testid="chart-panel">
      <div class="toolbar">
        {select('chart-x', 'X axis', x, setX, colOptions)}
        {select('chart-y', 'Y axis', y, setY, colOptions)}
        {select('chart-aggregate', 'Y as', aggregate, setAggregate, [
          { value: 'sum', label: 'sum' },
          { value: 'mean', label: 'average' },
          { value: 'max', label: 'maximum' },
          { value: 'min', label: 'minimum' },
          { value: 'none', label: 'value (no aggregation)' },
        ])}
        <fieldset class="segmented" aria-label="Chart type">
          {['bar', 'line'].map((m) => (
            <button
              key={m}
              type="button"
              class={`btn btn-small${mark === m ? ' btn-selected' : ''}`}
              aria-pressed={mark === m}
              onClick={() => setMark(m)}
              data-testid={`chart-mark-${m}`}
            >
              {m === 'bar' ? 'Bar' : 'Line'}
            </button>
          ))}
        </fieldset>
      </div>
      {!numeric.length && <p class="muted small">No numeric column in the result; the Y axis will plot nothing useful.</p>}
      <VegaView spec={spec} testid="chart" attrs={{ 'data-mark': mark }} />
    </section>
  );
}
