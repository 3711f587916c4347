import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { WorkflowNamesDocument } from "../gql/graphql";
import bodies from "../gql/persisted-documents.json";
import { request } from "./api";
import { setCredential, signOut, signOutReason } from "./auth";
import { documentBody, documentHash } from "./documents";

type Sent = { query?: string; variables?: unknown; extensions?: { persistedQuery?: { sha256Hash?: string } } };

function server(replies: object[]): Sent[] {
  const sent: Sent[] = [];
  vi.stubGlobal("fetch", async (_url: string, init: RequestInit) => {
    sent.push(JSON.parse(String(init.body)) as Sent);
    const reply = replies[sent.length - 1] ?? { errors: [{ message: "unexpected request" }] };
    return new Response(JSON.stringify(reply), { status: 200, headers: { "Content-Type": "application/json" } });
  });
  return sent;
}

beforeEach(() => {
  setCredential("fsk_test");
});

afterEach(() => {
  vi.unstubAllGlobals();
  window.sessionStorage.clear();
});

describe("request", () => {
  const data = { workflows: { edges: [] } };

  it("sends a document by its hash alone", async () => {
    const sent = server([{ data }]);
    await expect(request(WorkflowNamesDocument, {})).resolves.toEqual(data);
    expect(sent).toHaveLength(1);
    expect(sent[0]?.query).toBeUndefined();
    expect(sent[0]?.extensions?.persistedQuery?.sha256Hash).toBe(documentHash(WorkflowNamesDocument));
  });

  it("sends the document with its hash once when the server does not know it", async () => {
    const miss = { errors: [{ message: "PersistedQueryNotFound", extensions: { code: "PERSISTED_QUERY_NOT_FOUND" } }] };
    const sent = server([miss, { data }]);
    await expect(request(WorkflowNamesDocument, {})).resolves.toEqual(data);
    expect(sent).toHaveLength(2);
    expect(sent[1]?.query).toBe(documentBody(WorkflowNamesDocument));
    expect(sent[1]?.extensions?.persistedQuery?.sha256Hash).toBe(documentHash(WorkflowNamesDocument));
  });

  it("sends nothing once signed out, and leaves the sign-out's message alone", async () => {
    const sent = server([{ data }]);
    signOut(null);
    await expect(request(WorkflowNamesDocument, {})).rejects.toMatchObject({ code: "UNAUTHENTICATED", status: 401 });
    expect(sent).toHaveLength(0);
    expect(signOutReason()).toBeNull();
  });

  it("reports a refusal of the safelist as an error, without resending", async () => {
    const refused = { data: null, errors: [{ message: "not on the safelist", extensions: { code: "operation_not_allowed" } }] };
    const sent = server([refused]);
    await expect(request(WorkflowNamesDocument, {})).rejects.toMatchObject({ code: "operation_not_allowed" });
    expect(sent).toHaveLength(1);
  });
});

describe("persisted documents", () => {
  it("hash every body to its key", async () => {
    const entries = Object.entries(bodies as Record<string, string>);
    expect(entries.length).toBeGreaterThan(0);
    for (const [hash, body] of entries) {
      const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(body));
      const hex = Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
      expect(hex).toBe(hash);
    }
  });
});
