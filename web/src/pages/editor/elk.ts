// "Tidy up": ELK's layered layout, loaded only when asked for (it is large).
import ELK from "elkjs/lib/elk.bundled.js";
import type { Definition } from "../../lib/definition";
import { NODE_HEIGHT, NODE_WIDTH } from "../../lib/layout";

export async function elkLayout(def: Definition): Promise<Record<string, { x: number; y: number }>> {
  const elk = new ELK();
  const graph = await elk.layout({
    id: "root",
    layoutOptions: {
      "elk.algorithm": "layered",
      "elk.direction": "DOWN",
      "elk.spacing.nodeNode": "40",
      "elk.layered.spacing.nodeNodeBetweenLayers": "60",
    },
    children: def.nodes.map((n) => ({ id: n.id, width: NODE_WIDTH, height: NODE_HEIGHT })),
    edges: def.edges.map((e, i) => ({ id: `e${i}`, sources: [e.source], targets: [e.target] })),
  });
  const out: Record<string, { x: number; y: number }> = {};
  for (const c of graph.children ?? []) out[c.id] = { x: c.x ?? 0, y: c.y ?? 0 };
  return out;
}
