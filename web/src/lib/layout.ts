// Positions for a graph: stored positions when every node has one, else dagre
// (top to bottom). Pure: runs on the main thread or in the layout worker.
import dagre from "@dagrejs/dagre";
import type { Definition } from "./definition";

export const NODE_WIDTH = 180;
export const NODE_HEIGHT = 56;

export type Positions = Record<string, { x: number; y: number }>;

export function storedPositions(def: Definition): Positions | null {
  const out: Positions = {};
  for (const node of def.nodes) {
    if (!node.position) return null;
    out[node.id] = node.position;
  }
  return out;
}

export function dagreLayout(def: Definition): Positions {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: "TB", nodesep: 40, ranksep: 60, marginx: 20, marginy: 20 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const node of def.nodes) g.setNode(node.id, { width: NODE_WIDTH, height: NODE_HEIGHT });
  for (const edge of def.edges) {
    if (g.hasNode(edge.source) && g.hasNode(edge.target)) g.setEdge(edge.source, edge.target);
  }
  dagre.layout(g);
  const out: Positions = {};
  for (const node of def.nodes) {
    const placed = g.node(node.id) as { x: number; y: number } | undefined;
    out[node.id] = placed ? { x: placed.x - NODE_WIDTH / 2, y: placed.y - NODE_HEIGHT / 2 } : { x: 0, y: 0 };
  }
  return out;
}

export function layout(def: Definition): Positions {
  return storedPositions(def) ?? dagreLayout(def);
}
