// The builder's canvas: the flow's blocks as boxes laid out left → right by dagre, the wires
// between them as SVG paths. Each box is a button (Tab reaches it, Enter or a click selects it).
import dagre from '@dagrejs/dagre';
import { useMemo } from 'preact/hooks';
import { blockInputs, blockLabel, blockSummary } from '../../flow.js';
import { formatNumber } from '../../util.js';
import { pathOf } from '../LineageGraph.jsx';
import { FileIcon } from './SourcePalette.jsx';

const BOX_W = 184;
const BOX_H = 74;

function layout(blocks) {
  const g = new dagre.graphlib.Graph({ multigraph: false });
  g.setGraph({ rankdir: 'LR', nodesep: 18, ranksep: 44, marginx: 12, marginy: 12 });
  g.setDefaultEdgeLabel(() => ({}));
  const ids = new Set(blocks.map((b) => b.id));
  for (const id of ids) g.setNode(id, { width: BOX_W, height: BOX_H });
  for (const b of blocks) {
    for (const input of new Set(blockInputs(b))) if (input && input !== b.id && ids.has(input)) g.setEdge(input, b.id);
  }
  dagre.layout(g);
  const nodes = g
    .nodes()
    .map((id) => {
      const v = g.node(id);
      return { id, x: v.x - BOX_W / 2, y: v.y - BOX_H / 2 };
    })
    // Tab order follows the flow: left to right, then top to bottom.
    .sort((a, b) => a.x - b.x || a.y - b.y);
  const edges = g.edges().map((e) => ({ from: e.v, to: e.w, points: g.edge(e).points || [] }));
  const { width, height } = g.graph();
  return { nodes, edges, width: Math.max(width || 0, BOX_W + 28), height: Math.max(height || 0, BOX_H + 28) };
}

// What a block's preview says, in a few words for its box.
function statusOf(entry) {
  if (!entry) return { text: '', kind: 'none' };
  switch (entry.state) {
    case 'ok':
      return { text: `${formatNumber(entry.data.row_count)} rows`, kind: 'ok' };
    case 'error':
      return { text: 'error', kind: 'error' };
    case 'incomplete':
      return { text: 'unfinished', kind: 'warn' };
    case 'waiting':
      return { text: 'waiting for input', kind: 'none' };
    default:
      return { text: 'previewing…', kind: 'busy' };
  }
}

// blocks: the flow's blocks; previews: Map id → preview entry; selected: the selected id.
export function FlowCanvas({ blocks, previews, selected, onSelect }) {
  // The layout depends on the blocks' ids and wires only.
  const shape = JSON.stringify(blocks.map((b) => [b.id, blockInputs(b)]));
  const laid = useMemo(() => layout(blocks), [shape]);
  const byId = new Map(blocks.map((b) => [b.id, b]));
  if (!blocks.length) {
    return (
      <div class="flow-canvas flow-empty" data-testid="flow-canvas" data-blocks="0">
        <p class="empty">Nothing drawn yet. Start with a source: a port you may read or a file of your domain — “+ Add” under Sources.</p>
      </div>
    );
  }
  return (
    <div class="flow-canvas" data-testid="flow-canvas" data-blocks={blocks.length} role="group" aria-label={`Flow of ${blocks.length} blocks`}>
      <div class="flow-stage" style={{ width: `${laid.width}px`, height: `${laid.height}px` }}>
        <svg class="flow-edges" width={laid.width} height={laid.height} aria-hidden="true" focusable="false">
          <defs>
            <marker id="flow-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerUnits="userSpaceOnUse" markerWidth="10" markerHeight="10" orient="auto-start-reverse">
              <path d="M0,0 L10,5 L0,10 z" class="edge-arrow" />
            </marker>
          </defs>
          {laid.edges.map((e) => (
            <path
              key={`${e.from}->${e.to}`}
              d={pathOf(e.points)}
              class={`edge${e.to === selected || e.from === selected ? ' edge-active' : ''}`}
              marker-end="url(#flow-arrow)"
              data-testid={`edge-${e.from}-${e.to}`}
            />
          ))}
        </svg>
        {laid.nodes.map((n) => {
          const b = byId.get(n.id);
          if (!b) return null;
          const status = statusOf(previews.get(n.id));
          const isSelected = n.id === selected;
          const isFile = b.type === 'source' && b.file !== undefined;
          const label = isFile ? 'File source' : blockLabel(b.type);
          return (
            <button
              type="button"
              key={n.id}
              class={`flow-block flow-${b.type}${isFile ? ' flow-file' : ''}${isSelected ? ' selected' : ''} status-${status.kind}`}
              style={{ left: `${n.x}px`, top: `${n.y}px`, width: `${BOX_W}px`, height: `${BOX_H}px` }}
              aria-pressed={isSelected}
              aria-label={`${label} ${b.id}: ${blockSummary(b)}. ${status.text}`}
              onClick={() => onSelect(n.id)}
              data-testid={`block-${n.id}`}
              data-type={b.type}
              data-reads={isFile ? 'file' : undefined}
              data-selected={isSelected ? 'true' : 'false'}
              data-state={previews.get(n.id)?.state || 'none'}
              data-rows={previews.get(n.id)?.state === 'ok' ? previews.get(n.id).data.row_count : undefined}
            >
              <span class="fb-head">
                <span class="fb-type">
                  {isFile ? (
                    <>
                      <FileIcon /> File
                    </>
                  ) : (
                    blockLabel(b.type, true)
                  )}
                </span>
                <span class={`fb-status fb-${status.kind}`}>{status.text}</span>
              </span>
              <span class="fb-id">{b.id}</span>
              <span class="fb-sum" title={blockSummary(b)}>
                {blockSummary(b)}
              </span>
            </button>
          );
        })}
      </div>
    </div>
  );
}
