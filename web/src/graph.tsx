// Directed graph pictures (lineage, assets) laid out by dagre, drawn as SVG.
import dagre from "@dagrejs/dagre";
import { useMemo } from "preact/hooks";
import { useNarrow } from "./util";

export interface GraphNode {
  id: string;
  label: string;
  sublabel?: string;
  /** CSS class for colouring: root, upstream, downstream, fresh, stale, never, failed… */
  kind?: string;
}
export interface GraphEdge {
  source: string;
  target: string;
  dashed?: boolean;
}

const NODE_H = 40;
const CHAR_W = 7.7;
const SUB_CHAR_W = 6.4;

export function Graph(props: {
  nodes: GraphNode[];
  edges: GraphEdge[];
  onSelect?: (id: string) => void;
  selected?: string | null;
  testid?: string;
  /** What the picture shows, for screen readers ("Lineage of raw.orders"). */
  label: string;
  direction?: "LR" | "TB";
}) {
  // A phone is tall and narrow: lay the layers out top to bottom there.
  const narrow = useNarrow();
  const direction = props.direction ?? (narrow ? "TB" : "LR");
  const layout = useMemo(() => {
    const g = new dagre.graphlib.Graph();
    g.setGraph({ rankdir: direction, nodesep: 18, ranksep: direction === "TB" ? 44 : 70, marginx: 12, marginy: 12 });
    g.setDefaultEdgeLabel(() => ({}));
    const ids = new Set(props.nodes.map((n) => n.id));
    for (const n of props.nodes) {
      const text = Math.max(n.label.length * CHAR_W, (n.sublabel ?? "").length * SUB_CHAR_W);
      g.setNode(n.id, { width: Math.max(90, Math.min(480, text + 28)), height: NODE_H });
    }
    for (const e of props.edges) if (ids.has(e.source) && ids.has(e.target)) g.setEdge(e.source, e.target);
    dagre.layout(g);
    const info = g.graph();
    return { g, width: info.width ?? 0, height: info.height ?? 0 };
  }, [props.nodes, props.edges, direction]);

  if (!props.nodes.length) return <p class="muted">Nothing to draw.</p>;
  const { g, width, height } = layout;
  const byId = new Map(props.nodes.map((n) => [n.id, n]));
  const truncate = (s: string, w: number, charW = CHAR_W) => {
    const max = Math.floor((w - 20) / charW);
    return s.length > max ? s.slice(0, Math.max(1, max - 1)) + "…" : s;
  };
  return (
    <div class="graph" data-testid={props.testid} data-direction={direction}>
      <svg width={width} height={height} viewBox={`0 0 ${width} ${height}`} role="group" aria-label={props.label}>
        <defs>
          <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
            <path d="M 0 0 L 10 5 L 0 10 z" class="arrowhead" />
          </marker>
        </defs>
        {g.edges().map((e) => {
          const pts = g.edge(e).points ?? [];
          const d = pts.map((p, i) => `${i ? "L" : "M"}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(" ");
          const dashed = props.edges.find((x) => x.source === e.v && x.target === e.w)?.dashed;
          return <path key={`${e.v}->${e.w}`} d={d} class={"edge" + (dashed ? " dashed" : "")} marker-end="url(#arrow)" data-edge={`${e.v}->${e.w}`} />;
        })}
        {g.nodes().map((id) => {
          const box = g.node(id);
          const node = byId.get(id)!;
          const x = box.x - box.width / 2;
          const y = box.y - box.height / 2;
          return (
            <g
              key={id}
              class={`node ${node.kind ?? ""} ${props.selected === id ? "selected" : ""}`}
              transform={`translate(${x},${y})`}
              data-node={id}
              onClick={() => props.onSelect?.(id)}
              // Lower-case: on SVG elements Preact sets attributes verbatim, and "tabIndex"
              // is not the "tabindex" attribute (the nodes were not focusable).
              tabindex={props.onSelect ? 0 : undefined}
              role={props.onSelect ? "button" : undefined}
              aria-pressed={props.onSelect ? props.selected === id : undefined}
              onKeyDown={(e) => {
                if (e.key === "Enter" || e.key === " ") {
                  e.preventDefault();
                  props.onSelect?.(id);
                }
              }}
            >
              {/* The accessible name and tooltip: the full name even when the label is cut. */}
              <title>{node.sublabel ? `${id} (${node.sublabel})` : id}</title>
              <rect width={box.width} height={box.height} rx="7" />
              <text x="10" y={node.sublabel ? 16 : 24} class="label">
                {truncate(node.label, box.width)}
              </text>
              {node.sublabel && (
                <text x="10" y="31" class="sublabel">
                  {truncate(node.sublabel, box.width, SUB_CHAR_W)}
                </text>
              )}
            </g>
          );
        })}
      </svg>
    </div>
  );
}
