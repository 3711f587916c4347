import { describe, expect, it } from "vitest";
import type { Definition } from "../../lib/definition";
import { shortValue, union } from "./compare";

const v1: Definition = {
  nodes: [
    { id: "start", type: "start" },
    { id: "fetch", type: "action", data: { url: "http://a", method: "GET" } },
    { id: "old", type: "transform", data: { output: 1 } },
    { id: "end", type: "end" },
  ],
  edges: [
    { source: "start", target: "fetch" },
    { source: "fetch", target: "old" },
    { source: "old", target: "end" },
  ],
};
const v2: Definition = {
  nodes: [
    { id: "start", type: "start" },
    { id: "fetch", type: "action", label: "Fetch", data: { url: "http://b", method: "GET" } },
    { id: "new", type: "delay", data: { seconds: 1 } },
    { id: "end", type: "end" },
  ],
  edges: [
    { source: "start", target: "fetch" },
    { source: "fetch", target: "new" },
    { source: "new", target: "end" },
  ],
};

describe("union", () => {
  it("holds both versions' nodes, each marked", () => {
    const u = union(v1, v2);
    expect(u.nodes.map((n) => [n.node.id, n.mark])).toEqual([
      ["start", "same"],
      ["fetch", "changed"],
      ["new", "added"],
      ["end", "same"],
      ["old", "removed"],
    ]);
    // A removed node is drawn as it was.
    expect(u.nodes.find((n) => n.node.id === "old")?.node.data).toEqual({ output: 1 });
  });

  it("holds both versions' edges, each marked", () => {
    const u = union(v1, v2);
    expect(u.edges.map((e) => [`${e.edge.source}->${e.edge.target}`, e.mark])).toEqual([
      ["start->fetch", "same"],
      ["fetch->new", "added"],
      ["new->end", "added"],
      ["fetch->old", "removed"],
      ["old->end", "removed"],
    ]);
  });

  it("tells an edge by its handle too", () => {
    const a: Definition = { nodes: [], edges: [{ source: "c", target: "x", sourceHandle: "true" }] };
    const b: Definition = { nodes: [], edges: [{ source: "c", target: "x", sourceHandle: "false" }] };
    expect(union(a, b).edges.map((e) => e.mark)).toEqual(["added", "removed"]);
  });

  it("lists each changed field with its values before and after", () => {
    expect(union(v1, v2).changes).toEqual([
      { nodeId: "fetch", field: "label", before: undefined, after: "Fetch" },
      { nodeId: "fetch", field: "data.url", before: "http://a", after: "http://b" },
    ]);
  });

  it("marks nothing when only positions moved", () => {
    const moved: Definition = { ...v1, nodes: v1.nodes.map((n) => ({ ...n, position: { x: 5, y: 5 } })) };
    const u = union(v1, moved);
    expect(new Set(u.nodes.map((n) => n.mark))).toEqual(new Set(["same"]));
    expect(u.changes).toEqual([]);
  });
});

describe("shortValue", () => {
  it("shows JSON, cut short", () => {
    expect(shortValue(undefined)).toBe("(none)");
    expect(shortValue({ a: 1 })).toBe('{"a":1}');
    expect(shortValue("x".repeat(100), 10)).toBe(`"${"x".repeat(8)}…`);
  });
});
