import { describe, expect, it } from "vitest";
import { isOurs, withParam } from "./searchState";

const mark = (page: string, epoch: number) => ({ searchState: { page, epoch } });

describe("search state", () => {
  const typed = { local: "q=abc", epoch: 2, base: "k0" };

  it("keeps the typed copy while the router shows the entry it was taken from", () => {
    // The router has not reached the first write yet, or a render shows it late.
    expect(isOurs(typed, "p1", { key: "k0", state: null })).toBe(true);
  });

  it("keeps the typed copy for any of this epoch's writes, in any order", () => {
    expect(isOurs(typed, "p1", { key: "k2", state: mark("p1", 2) })).toBe(true);
    expect(isOurs(typed, "p1", { key: "k1", state: mark("p1", 2) })).toBe(true);
  });

  it("takes a URL changed from elsewhere", () => {
    // A link (no mark), an entry written before the URL last changed from elsewhere, and
    // one written by another page (or an earlier mount of this one).
    expect(isOurs(typed, "p1", { key: "k9", state: null })).toBe(false);
    expect(isOurs(typed, "p1", { key: "k3", state: mark("p1", 1) })).toBe(false);
    expect(isOurs(typed, "p1", { key: "k4", state: mark("p2", 2) })).toBe(false);
    expect(isOurs(typed, "p1", { key: "k5", state: { searchState: "x" } })).toBe(false);
  });

  it("sets and removes one parameter, keeping the others", () => {
    expect(withParam("a=1&b=2", "b", "3")).toBe("a=1&b=3");
    expect(withParam("a=1&b=2", "a", null)).toBe("b=2");
    expect(withParam("a=1", "a", "")).toBe("");
  });
});
