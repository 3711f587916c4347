import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { base64url, codeChallenge, fromBase64url, isVerifier, newVerifier, randomToken } from "./pkce";

describe("PKCE", () => {
  it("derives RFC 7636's example challenge from its verifier (Appendix B)", async () => {
    const verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    expect(await codeChallenge(verifier)).toBe("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
  });

  it("makes the challenge base64url(sha256(verifier)) for any verifier", async () => {
    for (let i = 0; i < 20; i++) {
      const verifier = newVerifier();
      const expected = createHash("sha256").update(verifier, "ascii").digest("base64url");
      expect(await codeChallenge(verifier)).toBe(expected);
    }
  });

  it("makes verifiers of 43 unreserved characters, each one new", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 100; i++) {
      const verifier = newVerifier();
      expect(verifier).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(isVerifier(verifier)).toBe(true);
      seen.add(verifier);
    }
    expect(seen.size).toBe(100);
  });

  it("refuses a verifier RFC 7636 does not allow", async () => {
    await expect(codeChallenge("too-short")).rejects.toThrow(/43 to 128 characters/);
    await expect(codeChallenge("a".repeat(129))).rejects.toThrow(/43 to 128 characters/);
    await expect(codeChallenge(`${"a".repeat(42)}+`)).rejects.toThrow(/43 to 128 characters/);
    expect(isVerifier("a".repeat(43))).toBe(true);
    expect(isVerifier("a".repeat(128))).toBe(true);
  });

  it("encodes base64url without padding and reads it back", () => {
    const bytes = Uint8Array.from([251, 255, 191, 0, 1]);
    expect(base64url(bytes)).toBe("-_-_AAE");
    expect(Buffer.from(bytes).toString("base64url")).toBe("-_-_AAE");
    expect(Array.from(fromBase64url("-_-_AAE"))).toEqual(Array.from(bytes));
    expect(Array.from(fromBase64url("-_-_AAE="))).toEqual(Array.from(bytes));
    expect(() => fromBase64url("a+b/")).toThrow();
    expect(randomToken(16)).toMatch(/^[A-Za-z0-9_-]{22}$/);
  });
});
