// Two versions of a definition drawn as one graph: the union of their nodes and edges,
// each marked added, removed, changed or same, and the data changes listed field by field.
// Pure; the editor draws it.
import type { DefEdge, DefNode, Definition } from "../../lib/definition";
import { diffDefinitions } from "../workflows/diff";

export type NodeMark = "added" | "removed" | "changed" | "same";
export type EdgeMark = "added" | "removed" | "same";

export interface FieldChange {
  nodeId: string;
  /** `type`, `label` or `data.<key>`. */
  field: string;
  before: unknown;
  after: unknown;
}

export interface Union {
  /** The newer side's nodes in its order, then the removed ones (as they were). */
  nodes: { node: DefNode; mark: NodeMark }[];
  edges: { edge: DefEdge; mark: EdgeMark }[];
  changes: FieldChange[];
}

export function edgeKey(e: DefEdge): string {
  return `${e.source}->${e.target}${e.sourceHandle ? `:${e.sourceHandle}` : ""}`;
}

function fieldValue(node: DefNode | undefined, field: string): unknown {
  if (!node) return undefined;
  if (field === "type") return node.type;
  if (field === "label") return node.label;
  return node.data?.[field.slice("data.".length)];
}

export function union(before: Definition, after: Definition): Union {
  const d = diffDefinitions(before, after);
  const added = new Set(d.added);
  const changed = new Set(d.changed);
  const nodes: Union["nodes"] = after.nodes.map((node) => ({
    node,
    mark: added.has(node.id) ? "added" : changed.has(node.id) ? "changed" : "same",
  }));
  const removed = new Set(d.removed);
  for (const node of before.nodes) if (removed.has(node.id)) nodes.push({ node, mark: "removed" });

  const beforeEdges = new Set(before.edges.map(edgeKey));
  const afterEdges = new Set(after.edges.map(edgeKey));
  const edges: Union["edges"] = after.edges.map((edge) => ({ edge, mark: beforeEdges.has(edgeKey(edge)) ? "same" : "added" }));
  for (const edge of before.edges) if (!afterEdges.has(edgeKey(edge))) edges.push({ edge, mark: "removed" });

  const old = new Map(before.nodes.map((n) => [n.id, n]));
  const now = new Map(after.nodes.map((n) => [n.id, n]));
  const changes: FieldChange[] = d.changed.flatMap((id) =>
    (d.fields[id] ?? []).map((field) => ({ nodeId: id, field, before: fieldValue(old.get(id), field), after: fieldValue(now.get(id), field) })),
  );
  return { nodes, edges, changes };
}

/** A value for the changes list: JSON, cut to `max` characters. */
export function shortValue(value: unknown, max = 80): string {
  if (value === undefined) return "(none)";
  const text = JSON.stringify(value);
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
