import { describe, expect, it } from "vitest";
import { describeDiff, diffDefinitions } from "./diff";

const def = (nodes: object[], edges: object[] = []) => ({ nodes, edges });

describe("diffDefinitions", () => {
  it("names added, removed and changed nodes", () => {
    const d = diffDefinitions(
      def([{ id: "start", type: "start" }, { id: "a", type: "transform", data: { output: 1 } }, { id: "old", type: "end" }]),
      def([{ id: "start", type: "start" }, { id: "a", type: "transform", data: { output: 2 } }, { id: "new", type: "end" }]),
    );
    expect(d).toMatchObject({ added: ["new"], removed: ["old"], changed: ["a"], layoutOnly: false });
    expect(d.fields).toEqual({ a: ["data.output"] });
    expect(describeDiff(d)).toBe("added new; removed old; changed a (data.output)");
  });

  it("calls a version that only moved nodes layout only", () => {
    const d = diffDefinitions(
      def([{ id: "a", type: "start", position: { x: 0, y: 0 } }]),
      def([{ id: "a", type: "start", position: { x: 10, y: 0 } }]),
    );
    expect(describeDiff(d)).toBe("layout only");
  });
});
