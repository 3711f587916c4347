// The editor's model: the canvas's nodes and edges and the stored definition are one
// format (docs/workflow-definition.md), so converting is renaming, not translating.
import type { Definition, DefEdge, DefNode } from "../../lib/definition";

export interface NodeRules {
  type: string;
  label: string;
  description: string;
  dataSchema: unknown;
  hasTarget: boolean;
  hasSource: boolean;
  sourceHandles: string[];
  /** Handles an edge may also carry, at most once each (a wait's "timeout"). */
  optionalHandles: string[];
  maxOutgoing: number | null;
}

export interface EditorNode {
  id: string;
  type: string;
  label?: string;
  position: { x: number; y: number };
  data: Record<string, unknown>;
}

export interface EditorEdge {
  id: string;
  source: string;
  target: string;
  sourceHandle: string | null;
}

export interface Draft {
  nodes: EditorNode[];
  edges: EditorEdge[];
}

const ID_PATTERN = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/;

export function edgeId(e: { source: string; target: string; sourceHandle?: string | null }): string {
  return `${e.source}->${e.target}${e.sourceHandle ? `:${e.sourceHandle}` : ""}`;
}

export function fromDefinition(def: Definition, positions: Record<string, { x: number; y: number }>): Draft {
  return {
    nodes: def.nodes.map((n) => ({
      id: n.id,
      type: n.type,
      ...(n.label ? { label: n.label } : {}),
      position: n.position ?? positions[n.id] ?? { x: 0, y: 0 },
      data: n.data ?? {},
    })),
    edges: def.edges.map((e) => ({ id: edgeId(e), source: e.source, target: e.target, sourceHandle: e.sourceHandle ?? null })),
  };
}

/** The definition to validate or save: positions rounded, empty data left out. */
export function toDefinition(draft: Draft): Definition {
  const nodes: DefNode[] = draft.nodes.map((n) => {
    const out: DefNode = { id: n.id, type: n.type, position: { x: Math.round(n.position.x), y: Math.round(n.position.y) } };
    if (n.label) out.label = n.label;
    if (Object.keys(n.data).length > 0) out.data = n.data;
    return out;
  });
  const edges: DefEdge[] = draft.edges.map((e) => (e.sourceHandle ? { source: e.source, target: e.target, sourceHandle: e.sourceHandle } : { source: e.source, target: e.target }));
  return { nodes, edges };
}

/** A new node id `<type>_<n>`, valid and unused. */
export function newNodeId(type: string, taken: Iterable<string>): string {
  const used = new Set(taken);
  const base = ID_PATTERN.test(type) ? type : "node";
  for (let n = 1; ; n += 1) {
    const id = `${base}_${n}`;
    if (!used.has(id)) return id;
  }
}

export function isValidNodeId(id: string): boolean {
  return ID_PATTERN.test(id);
}

/** The nodes of a path of edges from `from` to `to` (both included), or null. */
export function pathBetween(draft: Draft, from: string, to: string): string[] | null {
  const out = new Map<string, string[]>();
  for (const e of draft.edges) out.set(e.source, [...(out.get(e.source) ?? []), e.target]);
  const previous = new Map<string, string>([[from, from]]);
  const queue = [from];
  while (queue.length) {
    const id = queue.shift()!;
    if (id === to) {
      const path = [to];
      for (let at = to; at !== from; ) {
        at = previous.get(at)!;
        path.unshift(at);
      }
      return path;
    }
    for (const next of out.get(id) ?? []) {
      if (!previous.has(next)) {
        previous.set(next, id);
        queue.push(next);
      }
    }
  }
  return null;
}

/** Why a connection may not be made (null: it may). Mirrors the server's rules; the
 * server still decides on save. */
export function connectionProblem(
  draft: Draft,
  rules: Record<string, NodeRules>,
  c: { source: string; target: string; sourceHandle: string | null },
): string | null {
  if (c.source === c.target) return "A node cannot connect to itself.";
  const source = draft.nodes.find((n) => n.id === c.source);
  const target = draft.nodes.find((n) => n.id === c.target);
  if (!source || !target) return "Both ends must be nodes.";
  const sr = rules[source.type];
  const tr = rules[target.type];
  if (sr && !sr.hasSource) return `A ${source.type} node has no outgoing edge.`;
  if (tr && !tr.hasTarget) return `A ${target.type} node has no incoming edge.`;
  if (draft.edges.some((e) => e.source === c.source && e.target === c.target && (e.sourceHandle ?? null) === c.sourceHandle)) {
    return "These nodes are already connected.";
  }
  // A workflow has no cycle (the server refuses one): refused here, when it is drawn,
  // rather than accepted and flagged afterwards.
  const loop = pathBetween(draft, c.target, c.source);
  if (loop) return `Connecting ${c.source} to ${c.target} would make a cycle: ${[...loop, c.target].join(" → ")}.`;
  const optional = sr?.optionalHandles ?? [];
  if (sr && c.sourceHandle && optional.includes(c.sourceHandle)) {
    if (draft.edges.some((e) => e.source === c.source && e.sourceHandle === c.sourceHandle)) {
      return `The ${c.sourceHandle} side of ${c.source} is already connected.`;
    }
  } else if (sr && sr.sourceHandles.length > 0) {
    const all = [...sr.sourceHandles, ...optional];
    if (!c.sourceHandle || !sr.sourceHandles.includes(c.sourceHandle)) return `Connect from one of ${all.join(", ")}.`;
    if (draft.edges.some((e) => e.source === c.source && e.sourceHandle === c.sourceHandle)) {
      return `The ${c.sourceHandle} side of ${c.source} is already connected.`;
    }
  } else if (sr && sr.maxOutgoing !== null) {
    // Edges from the plain handle: the optional ones (a wait's timeout) count apart.
    const limit = sr.maxOutgoing - optional.length;
    const out = draft.edges.filter((e) => e.source === c.source && !optional.includes(e.sourceHandle ?? "")).length;
    const besides = optional.length > 0 ? ` besides ${optional.join(", ")}` : "";
    if (out >= limit) return `A ${source.type} node has at most ${limit} outgoing edge${limit === 1 ? "" : "s"}${besides}.`;
  }
  return null;
}

/** Copies of `ids` (and the edges among them) with fresh ids, moved by `offset`. */
export function duplicate(draft: Draft, ids: string[], offset = 40): Draft {
  const chosen = new Set(ids);
  const taken = new Set(draft.nodes.map((n) => n.id));
  const renamed = new Map<string, string>();
  const nodes: EditorNode[] = [];
  for (const n of draft.nodes) {
    if (!chosen.has(n.id)) continue;
    const id = newNodeId(n.type, taken);
    taken.add(id);
    renamed.set(n.id, id);
    nodes.push({ ...n, id, position: { x: n.position.x + offset, y: n.position.y + offset }, data: structuredClone(n.data) });
  }
  const edges = draft.edges
    .filter((e) => renamed.has(e.source) && renamed.has(e.target))
    .map((e) => {
      const copy = { source: renamed.get(e.source)!, target: renamed.get(e.target)!, sourceHandle: e.sourceHandle };
      return { ...copy, id: edgeId(copy) };
    });
  return { nodes, edges };
}
