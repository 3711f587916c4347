// The workflow definition as the API stores it (see docs/workflow-definition.md).

export interface DefNode {
  id: string;
  type: string;
  label?: string;
  position?: { x: number; y: number };
  data?: Record<string, unknown>;
}

export interface DefEdge {
  source: string;
  target: string;
  sourceHandle?: string | null;
}

export interface Definition {
  nodes: DefNode[];
  edges: DefEdge[];
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Read a definition from the API's JSON, keeping only what the UI uses. */
export function readDefinition(value: unknown): Definition {
  if (!isRecord(value)) return { nodes: [], edges: [] };
  const nodes: DefNode[] = [];
  for (const raw of Array.isArray(value.nodes) ? value.nodes : []) {
    if (!isRecord(raw) || typeof raw.id !== "string" || typeof raw.type !== "string") continue;
    const node: DefNode = { id: raw.id, type: raw.type };
    if (typeof raw.label === "string") node.label = raw.label;
    const p = raw.position;
    if (isRecord(p) && typeof p.x === "number" && typeof p.y === "number" && Number.isFinite(p.x) && Number.isFinite(p.y)) {
      node.position = { x: p.x, y: p.y };
    }
    if (isRecord(raw.data)) node.data = raw.data;
    nodes.push(node);
  }
  const edges: DefEdge[] = [];
  for (const raw of Array.isArray(value.edges) ? value.edges : []) {
    if (!isRecord(raw) || typeof raw.source !== "string" || typeof raw.target !== "string") continue;
    edges.push({
      source: raw.source,
      target: raw.target,
      sourceHandle: typeof raw.sourceHandle === "string" ? raw.sourceHandle : null,
    });
  }
  return { nodes, edges };
}

/** A short stable hash of a definition's structure (for memoising layouts). */
export function structureKey(def: Definition): string {
  let h = 2166136261;
  const text = def.nodes.map((n) => `${n.id}:${n.type}`).join("|") + "#" + def.edges.map((e) => `${e.source}>${e.target}:${e.sourceHandle ?? ""}`).join("|");
  for (let i = 0; i < text.length; i += 1) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  return (h >>> 0).toString(36) + ":" + def.nodes.length;
}
