import { describe, expect, it } from "vitest";
import { reconcile, withParam } from "./searchState";

describe("search state", () => {
  it("keeps typing that outran the router", () => {
    // Typed "a" then "ab"; the router then reports "a" (its first write) and later "ab".
    const typed = { url: "", local: "q=ab", pending: ["q=a", "q=ab"] };
    const first = reconcile(typed, "q=a");
    expect(first).toEqual({ url: "q=a", local: "q=ab", pending: ["q=ab"] });
    expect(reconcile(first, "q=ab")).toEqual({ url: "q=ab", local: "q=ab", pending: [] });
  });

  it("skips writes the router folded together", () => {
    const typed = { url: "", local: "q=abc", pending: ["q=a", "q=ab", "q=abc"] };
    expect(reconcile(typed, "q=abc")).toEqual({ url: "q=abc", local: "q=abc", pending: [] });
  });

  it("takes a URL changed from elsewhere", () => {
    const typed = { url: "redriven=1", local: "redriven=1", pending: [] };
    expect(reconcile(typed, "")).toEqual({ url: "", local: "", pending: [] });
  });

  it("sets and removes one parameter, keeping the others", () => {
    expect(withParam("a=1&b=2", "b", "3")).toBe("a=1&b=3");
    expect(withParam("a=1&b=2", "a", null)).toBe("b=2");
    expect(withParam("a=1", "a", "")).toBe("");
  });
});
