import { describe, expect, it } from "vitest";
import { redo, push, start, undo } from "./history";
import { connectionProblem, duplicate, fromDefinition, newNodeId, toDefinition, type Draft, type NodeRules } from "./model";

const rule = (type: string, extra: Partial<NodeRules> = {}): NodeRules => ({
  type,
  label: type,
  description: "",
  dataSchema: null,
  hasTarget: type !== "start",
  hasSource: type !== "end",
  sourceHandles: type === "condition" ? ["true", "false"] : type === "approval" ? ["approved", "rejected"] : [],
  optionalHandles: type === "wait" || type === "approval" ? ["timeout"] : [],
  maxOutgoing: type === "fork" || type === "end" ? null : type === "condition" || type === "wait" ? 2 : type === "approval" ? 3 : 1,
  ...extra,
});
const rules = Object.fromEntries(["start", "end", "action", "condition", "fork", "wait", "approval"].map((t) => [t, rule(t)]));
const draft = (): Draft =>
  fromDefinition(
    {
      nodes: [
        { id: "start", type: "start" },
        { id: "check", type: "condition", data: { expression: "true" } },
        { id: "a", type: "action" },
        { id: "end", type: "end" },
      ],
      edges: [{ source: "start", target: "check" }],
    },
    {},
  );

describe("the editor model", () => {
  it("refuses a connection that closes a cycle, naming its nodes", () => {
    const d = draft();
    d.edges.push({ id: "check->a:true", source: "check", target: "a", sourceHandle: "true" });
    expect(connectionProblem(d, rules, { source: "a", target: "start", sourceHandle: null })).toMatch(/no incoming/);
    expect(connectionProblem(d, rules, { source: "a", target: "check", sourceHandle: null })).toBe(
      "Connecting a to check would make a cycle: check → a → check.",
    );
    expect(connectionProblem(d, rules, { source: "a", target: "end", sourceHandle: null })).toBeNull();
  });

  it("round-trips a definition with positions", () => {
    const d = draft();
    const def = toDefinition(d);
    expect(def.edges).toEqual([{ source: "start", target: "check" }]);
    expect(def.nodes[1]).toEqual({ id: "check", type: "condition", position: { x: 0, y: 0 }, data: { expression: "true" } });
    expect(def.nodes[0]).not.toHaveProperty("data");
  });

  it("names new nodes <type>_<n>, unused", () => {
    expect(newNodeId("action", ["action_1", "action_2"])).toBe("action_3");
  });

  it("refuses what the contract does not allow", () => {
    const d = draft();
    expect(connectionProblem(d, rules, { source: "a", target: "a", sourceHandle: null })).toMatch(/itself/);
    expect(connectionProblem(d, rules, { source: "end", target: "a", sourceHandle: null })).toMatch(/no outgoing/);
    expect(connectionProblem(d, rules, { source: "a", target: "start", sourceHandle: null })).toMatch(/no incoming/);
    expect(connectionProblem(d, rules, { source: "start", target: "a", sourceHandle: null })).toMatch(/at most 1/);
    expect(connectionProblem(d, rules, { source: "check", target: "a", sourceHandle: null })).toMatch(/true, false/);
    expect(connectionProblem(d, rules, { source: "check", target: "a", sourceHandle: "true" })).toBeNull();
  });

  it("draws a wait's timeout edge beside its one plain edge, each once", () => {
    const d = fromDefinition(
      {
        nodes: [
          { id: "start", type: "start" },
          { id: "w", type: "wait", data: { signal: "go", timeoutSeconds: 60 } },
          { id: "ok", type: "end" },
          { id: "late", type: "end" },
          { id: "ask", type: "approval" },
        ],
        edges: [
          { source: "start", target: "w" },
          { source: "w", target: "ok" },
        ],
      },
      {},
    );
    expect(connectionProblem(d, rules, { source: "w", target: "late", sourceHandle: "timeout" })).toBeNull();
    expect(connectionProblem(d, rules, { source: "w", target: "late", sourceHandle: null })).toMatch(/at most 1 outgoing edge besides timeout/);
    const timed = { ...d, edges: [...d.edges, { id: "w-timeout", source: "w", target: "late", sourceHandle: "timeout" }] };
    expect(connectionProblem(timed, rules, { source: "w", target: "ok", sourceHandle: "timeout" })).toMatch(/timeout side of w is already connected/);
    expect(connectionProblem(d, rules, { source: "ask", target: "late", sourceHandle: "timeout" })).toBeNull();
    expect(connectionProblem(d, rules, { source: "ask", target: "late", sourceHandle: null })).toMatch(/approved, rejected, timeout/);
  });

  it("duplicates nodes with fresh ids and their inner edges", () => {
    const d = draft();
    const copy = duplicate(d, ["start", "check"]);
    expect(copy.nodes.map((n) => n.id)).toEqual(["start_1", "condition_1"]);
    expect(copy.edges).toEqual([{ id: "start_1->condition_1", source: "start_1", target: "condition_1", sourceHandle: null }]);
  });

  it("undoes and redoes", () => {
    let h = start(1);
    h = push(h, 2);
    h = push(h, 3);
    h = undo(h);
    expect(h.present).toBe(2);
    h = redo(h);
    expect(h.present).toBe(3);
    h = undo(undo(h));
    h = push(h, 9);
    expect(h.future).toEqual([]);
    expect(undo(h).present).toBe(1);
  });
});
