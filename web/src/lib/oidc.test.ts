import { afterEach, describe, expect, it } from "vitest";
import { base64url } from "./pkce";
import { beginSignIn, completeSignIn, returnPath, SignInError, type OidcProvider } from "./oidc";

const provider: OidcProvider = {
  provider: "Example ID",
  issuer: "https://id.example.com",
  clientId: "dashboard",
  scopes: "openid profile",
  bearer: "id_token",
  authorizationEndpoint: "https://id.example.com/authorize",
  tokenEndpoint: "https://id.example.com/token",
};

const jwt = (claims: object) =>
  ["{}", JSON.stringify(claims), "sig"].map((part) => base64url(new TextEncoder().encode(part))).join(".");

// A window whose location.assign records where the page was sent.
function fakeWindow(): { win: Window; sentTo: () => URL } {
  let target = "";
  const win = {
    location: { origin: "https://flowsync.example.com", assign: (url: string) => (target = url) },
    sessionStorage: window.sessionStorage,
  } as unknown as Window;
  return { win, sentTo: () => new URL(target) };
}

async function begin(): Promise<URL> {
  const { win, sentTo } = fakeWindow();
  await beginSignIn(provider, "/ui/runs?status=FAILED", win);
  return sentTo();
}

const at = (query: Record<string, string>) =>
  ({ search: `?${new URLSearchParams(query).toString()}` }) as Location;

// A token endpoint that answers `reply` and records the form it was sent.
function tokenEndpoint(status: number, reply: object) {
  const forms: URLSearchParams[] = [];
  const fetchImpl = (async (_url: string, init: RequestInit) => {
    forms.push(new URLSearchParams(String(init.body)));
    return new Response(JSON.stringify(reply), { status, headers: { "Content-Type": "application/json" } });
  }) as typeof fetch;
  return { fetchImpl, forms };
}

afterEach(() => window.sessionStorage.clear());

describe("OIDC sign-in", () => {
  it("sends the browser to the provider with S256 PKCE, state and nonce", async () => {
    const url = await begin();
    expect(url.origin + url.pathname).toBe(provider.authorizationEndpoint);
    const q = url.searchParams;
    expect(q.get("response_type")).toBe("code");
    expect(q.get("client_id")).toBe("dashboard");
    expect(q.get("redirect_uri")).toBe("https://flowsync.example.com/ui/auth/callback");
    expect(q.get("scope")).toBe("openid profile");
    expect(q.get("code_challenge_method")).toBe("S256");
    expect(q.get("code_challenge")).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(q.get("state")).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(q.get("nonce")).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(q.get("state")).not.toBe(q.get("nonce"));
  });

  it("exchanges the code with the verifier whose challenge it sent, and returns the ID token", async () => {
    const url = await begin();
    const state = url.searchParams.get("state")!;
    const idToken = jwt({ sub: "alice", nonce: url.searchParams.get("nonce") });
    const { fetchImpl, forms } = tokenEndpoint(200, { id_token: idToken, access_token: "opaque" });
    const done = await completeSignIn(at({ code: "c0de", state }), window.sessionStorage, fetchImpl);
    expect(done).toEqual({ token: idToken, returnTo: "/ui/runs?status=FAILED" });
    const form = forms[0]!;
    expect(form.get("grant_type")).toBe("authorization_code");
    expect(form.get("code")).toBe("c0de");
    expect(form.get("client_id")).toBe("dashboard");
    expect(form.get("redirect_uri")).toBe("https://flowsync.example.com/ui/auth/callback");
    const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(form.get("code_verifier")!));
    expect(base64url(new Uint8Array(digest))).toBe(url.searchParams.get("code_challenge"));
    // The pending sign-in is good once: the same answer again is refused.
    await expect(completeSignIn(at({ code: "c0de", state }), window.sessionStorage, fetchImpl)).rejects.toThrow(
      /No sign-in was started in this tab/,
    );
  });

  it("refuses an answer whose state is not this tab's, without calling the provider", async () => {
    await begin();
    const { fetchImpl, forms } = tokenEndpoint(200, {});
    const done = completeSignIn(at({ code: "c0de", state: "forged" }), window.sessionStorage, fetchImpl);
    await expect(done).rejects.toThrow(/state does not match/);
    expect(forms).toHaveLength(0);
  });

  it("names the provider's own error", async () => {
    const url = await begin();
    const answer = at({ error: "access_denied", error_description: "No.", state: url.searchParams.get("state")! });
    await expect(completeSignIn(answer)).rejects.toThrow("Example ID did not sign you in: access_denied (No.).");
  });

  it("names the token endpoint's refusal", async () => {
    const url = await begin();
    const { fetchImpl } = tokenEndpoint(400, { error: "invalid_grant", error_description: "PKCE failed" });
    const done = completeSignIn(at({ code: "c", state: url.searchParams.get("state")! }), window.sessionStorage, fetchImpl);
    await expect(done).rejects.toThrow(
      "Example ID refused to exchange the sign-in's code for tokens (HTTP 400): invalid_grant (PKCE failed).",
    );
  });

  it("refuses an ID token issued for another sign-in (nonce)", async () => {
    const url = await begin();
    const { fetchImpl } = tokenEndpoint(200, { id_token: jwt({ sub: "alice", nonce: "another" }) });
    const done = completeSignIn(at({ code: "c", state: url.searchParams.get("state")! }), window.sessionStorage, fetchImpl);
    await expect(done).rejects.toBeInstanceOf(SignInError);
  });

  it("comes back to dashboard paths only", () => {
    expect(returnPath("/ui/runs/1")).toBe("/ui/runs/1");
    for (const path of ["https://evil.example/", "//evil.example/ui/", "/api/keys", "/ui/auth/callback?x", "/ui\\..\\"]) {
      expect(returnPath(path)).toBe("/ui/");
    }
  });
});
