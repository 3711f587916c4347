import { describe, expect, it } from "vitest";
import { shortId } from "./ids";

describe("shortId", () => {
  it("names ids made in the same millisecond apart", () => {
    const a = "019b0a3c-5e10-7a2b-9c3d-4e5f6a7b8c9d";
    const b = "019b0a3c-5e10-7f00-8123-0a1b2c3d4e5f";
    expect(shortId(a)).toBe("6a7b8c9d");
    expect(shortId(b)).toBe("2c3d4e5f");
    expect(shortId(a)).not.toBe(shortId(b));
  });
});
