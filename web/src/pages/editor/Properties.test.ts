import { describe, expect, it } from "vitest";
import { problemsByField } from "./Properties";

describe("problemsByField", () => {
  it("puts a problem at a data path on its field, nested fields joined by -", () => {
    const { byField, general } = problemsByField([
      { path: "$.definition.nodes[1].data.url", message: "is required" },
      { path: "$.nodes[3].data.retry.maxAttempts", message: "must be an integer" },
      { path: "$.definition.nodes[1].data", message: "exactly one of seconds or until" },
      { path: "$.definition.edges[0]", message: "would make a cycle" },
    ]);
    expect(byField).toEqual({ url: ["is required"], "retry-maxAttempts": ["must be an integer"] });
    expect(general).toEqual(["exactly one of seconds or until", "would make a cycle"]);
  });
});
