// Upstream/downstream lineage as an SVG; layout by dagre (left → right).
import dagre from '@dagrejs/dagre';
import { useMemo } from 'preact/hooks';
import { dashboardHref, productHref } from '../router.js';
import { tid } from '../util.js';

const NODE_H = 46;
const FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif';
let measureCtx;

// Text width in px as the SVG will draw it (the labels' font), or an estimate without canvas.
function textWidth(text, font, fallbackCharW) {
  measureCtx ??= document.createElement('canvas').getContext('2d');
  if (!measureCtx) return text.length * fallbackCharW;
  measureCtx.font = font;
  return measureCtx.measureText(text).width;
}

function nodeSize(n) {
  const label = n.label || n.id;
  const sub = [n.kind, n.domain].filter(Boolean).join(' · ');
  const w = Math.max(textWidth(label, `600 13px ${FONT}`, 7.8), textWidth(sub, `11px ${FONT}`, 6.2));
  return { width: Math.max(110, Math.ceil(w) + 28), height: NODE_H };
}

// Where a node links to: a product node is its product; a port node links to its product when the
// API names it (node.product = "domain.product"); a dashboard node (id "dashboard:domain.name")
// to its dashboard page.
function nodeHref(n) {
  let address = n.product;
  if (!address && n.kind === 'product') address = String(n.id).replace(/^product:/, '');
  if (!address && n.kind === 'dashboard') address = String(n.id).replace(/^dashboard:/, '');
  if (!address) return null;
  const dot = address.indexOf('.');
  if (dot < 0) return null;
  const [domain, name] = [address.slice(0, dot), address.slice(dot + 1)];
  return n.kind === 'dashboard' ? dashboardHref(domain, name) : productHref(domain, name);
}

function layout(graph) {
  const g = new dagre.graphlib.Graph({ multigraph: false });
  g.setGraph({ rankdir: 'LR', nodesep: 18, ranksep: 70, marginx: 12, marginy: 12 });
  g.setDefaultEdgeLabel(() => ({}));
  const known = new Map();
  for (const n of graph.nodes || []) known.set(n.id, n);
  for (const e of graph.edges || []) {
    for (const id of [e.from, e.to]) if (!known.has(id)) known.set(id, { id, kind: 'unknown', label: id });
  }
  for (const n of known.values()) g.setNode(n.id, { ...nodeSize(n), node: n });
  for (const e of graph.edges || []) if (e.from !== e.to) g.setEdge(e.from, e.to);
  dagre.layout(g);
  const nodes = g.nodes().map((id) => {
    const v = g.node(id);
    return { ...v.node, x: v.x, y: v.y, width: v.width, height: v.height };
  });
  const edges = g.edges().map((e) => ({ from: e.v, to: e.w, points: g.edge(e).points || [] }));
  const { width, height } = g.graph();
  return { nodes, edges, width: width || 0, height: height || 0 };
}

export function pathOf(points) {
  if (!points.length) return '';
  const [first, ...rest] = points;
  if (rest.length === 0) return `M${first.x},${first.y}`;
  // A smooth curve through dagre's control points.
  let d = `M${first.x},${first.y}`;
  for (let i = 0; i < rest.length - 1; i++) {
    const p = rest[i];
    const q = rest[i + 1];
    d += ` Q${p.x},${p.y} ${(p.x + q.x) / 2},${(p.y + q.y) / 2}`;
  }
  const last = rest[rest.length - 1];
  d += ` L${last.x},${last.y}`;
  return d;
}

// product: the address (domain.product) being shown; ports: its output ports' SQL names. Both are highlighted.
export function LineageGraph({ graph, product, ports = [], testid = 'lineage-graph' }) {
  const focus = [...ports.filter(Boolean), `product:${product}`];
  const focused = new Set(focus);
  const laid = useMemo(() => layout(graph), [graph]);
  if (!laid.nodes.length) return <p class="empty">No lineage recorded yet.</p>;
  return (
    <div class="lineage" data-testid={testid}>
      <svg
        width={laid.width}
        height={laid.height}
        viewBox={`0 0 ${laid.width} ${laid.height}`}
        role="img"
        aria-label={`Lineage graph with ${laid.nodes.length} nodes and ${laid.edges.length} edges`}
      >
        <defs>
          <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
            <path d="M0,0 L10,5 L0,10 z" class="edge-arrow" />
          </marker>
        </defs>
        {laid.edges.map((e) => (
          <path key={`${e.from}->${e.to}`} d={pathOf(e.points)} class="edge" marker-end="url(#arrow)" />
        ))}
        {laid.nodes.map((n) => {
          const x = n.x - n.width / 2;
          const y = n.y - n.height / 2;
          const isFocus = focused.has(n.id) || (n.kind === 'product' && n.id === product);
          const body = (
            <g class={`node node-${n.kind || 'unknown'}${isFocus ? ' node-focus' : ''}`} data-testid={tid('lineage-node', n.id)}>
              <title>{`${n.kind || 'node'} ${n.id}`}</title>
              <rect x={x} y={y} width={n.width} height={n.height} rx={n.kind === 'dashboard' ? 3 : 8} />
              <text x={n.x} y={n.y - 4} text-anchor="middle" class="node-label">
                {n.label || n.id}
              </text>
              <text x={n.x} y={n.y + 13} text-anchor="middle" class="node-sub">
                {[n.kind, n.domain].filter(Boolean).join(' · ')}
              </text>
            </g>
          );
          const target = isFocus ? null : nodeHref(n);
          return target ? (
            <a key={n.id} href={target} data-testid={tid('lineage-link', n.id)}>
              {body}
            </a>
          ) : (
            <g key={n.id}>{body}</g>
          );
        })}
      </svg>
      <p class="legend small muted">
        <span class="legend-item legend-product" /> product <span class="legend-item legend-port" /> output port{' '}
        <span class="legend-item legend-file" /> source file
        {laid.nodes.some((n) => n.kind === 'dashboard') && (
          <>
            {' '}
            <span class="legend-item legend-dashboard" /> dashboard
          </>
        )}{' '}
        · highlighted: this product · arrows point downstream.
      </p>
    </div>
  );
}
