// What changed between two versions of a definition, node by node.
import { readDefinition } from "../../lib/definition";

export interface VersionDiff {
  added: string[];
  removed: string[];
  changed: string[];
  /** For each changed node, what changed: its type, label or data keys. */
  fields: Record<string, string[]>;
  edgesAdded: number;
  edgesRemoved: number;
  layoutOnly: boolean;
}

export function diffDefinitions(before: unknown, after: unknown): VersionDiff {
  const a = readDefinition(before);
  const b = readDefinition(after);
  const aNodes = new Map(a.nodes.map((n) => [n.id, n]));
  const bNodes = new Map(b.nodes.map((n) => [n.id, n]));
  const added = [...bNodes.keys()].filter((id) => !aNodes.has(id));
  const removed = [...aNodes.keys()].filter((id) => !bNodes.has(id));
  const changed: string[] = [];
  const fields: Record<string, string[]> = {};
  let moved = false;
  for (const [id, node] of bNodes) {
    const old = aNodes.get(id);
    if (!old) continue;
    const { position: p1, ...rest1 } = old;
    const { position: p2, ...rest2 } = node;
    if (JSON.stringify(rest1) !== JSON.stringify(rest2)) {
      changed.push(id);
      const what: string[] = [];
      if (old.type !== node.type) what.push("type");
      if ((old.label ?? "") !== (node.label ?? "")) what.push("label");
      const d1 = old.data ?? {};
      const d2 = node.data ?? {};
      for (const key of [...new Set([...Object.keys(d1), ...Object.keys(d2)])].sort()) {
        if (JSON.stringify(d1[key]) !== JSON.stringify(d2[key])) what.push(`data.${key}`);
      }
      fields[id] = what;
    } else if (JSON.stringify(p1) !== JSON.stringify(p2)) moved = true;
  }
  const key = (e: { source: string; target: string; sourceHandle?: string | null }) => `${e.source}>${e.target}:${e.sourceHandle ?? ""}`;
  const aEdges = new Set(a.edges.map(key));
  const bEdges = new Set(b.edges.map(key));
  const edgesAdded = [...bEdges].filter((k) => !aEdges.has(k)).length;
  const edgesRemoved = [...aEdges].filter((k) => !bEdges.has(k)).length;
  const structural = added.length + removed.length + changed.length + edgesAdded + edgesRemoved > 0;
  return { added, removed, changed, fields, edgesAdded, edgesRemoved, layoutOnly: moved && !structural };
}

export function describeDiff(d: VersionDiff): string {
  if (d.layoutOnly) return "layout only";
  const parts: string[] = [];
  if (d.added.length) parts.push(`added ${d.added.join(", ")}`);
  if (d.removed.length) parts.push(`removed ${d.removed.join(", ")}`);
  if (d.changed.length) parts.push(`changed ${d.changed.map((id) => (d.fields[id]?.length ? `${id} (${d.fields[id].join(", ")})` : id)).join(", ")}`);
  if (d.edgesAdded || d.edgesRemoved) parts.push(`edges +${d.edgesAdded} −${d.edgesRemoved}`);
  return parts.join("; ") || "no change in the graph";
}
