// Queries and mutations over HTTP POST /graphql with the session's credential, each
// document sent by its hash (see documents.ts).
import type { DocumentTypeDecoration } from "@graphql-typed-document-node/core";
import { getCredential, signOut } from "./auth";
import { documentBody, persistedQuery } from "./documents";

export class ApiError extends Error {
  readonly code: string | null;
  readonly status: number;
  constructor(message: string, code: string | null, status: number) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

interface GraphQLReply<T> {
  data?: T | null;
  errors?: { message: string; extensions?: { code?: string } }[];
}

// A refused credential signs out. `forbidden` does not: the credential is good, its role
// in the team is below what the action needs, and the message says so where it was tried.
const AUTH_CODES = new Set(["UNAUTHENTICATED", "unauthenticated"]);

// The server answers this to a hash it does not know: APQ's cue to send the document.
const NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND";

async function post<TResult>(body: object, signal?: AbortSignal): Promise<[Response, GraphQLReply<TResult>]> {
  const credential = getCredential();
  const response = await fetch("/graphql", {
    method: "POST",
    headers: {
      "Content-Type": "application/json",
      Accept: "application/json",
      ...(credential ? { Authorization: `Bearer ${credential}` } : {}),
    },
    body: JSON.stringify(body),
    signal: signal ?? null,
  });
  try {
    return [response, (await response.json()) as GraphQLReply<TResult>];
  } catch {
    throw new ApiError(`The server answered ${response.status} without JSON.`, null, response.status);
  }
}

/** Run a query or mutation. The document goes by its hash alone (Apollo's APQ), which the
 * server that serves the dashboard knows, in safelist mode too; a server that does not
 * (a dev server behind Vite's proxy) is sent the document with its hash once. */
export async function request<TResult, TVariables>(
  document: DocumentTypeDecoration<TResult, TVariables>,
  variables: TVariables,
  signal?: AbortSignal,
): Promise<TResult> {
  if (getCredential() === null) {
    // Signed out: nothing goes out. A query still mounted for a moment after "Sign out"
    // (or refetched on its interval) went without a key, was answered 401, and put a
    // refusal in place of the sign-out's own message on the sign-in page.
    throw new ApiError("Not signed in.", "UNAUTHENTICATED", 401);
  }
  const extensions = persistedQuery(document);
  let [response, reply] = await post<TResult>({ variables, extensions }, signal);
  if (reply.errors?.[0]?.extensions?.code === NOT_FOUND) {
    [response, reply] = await post<TResult>({ query: documentBody(document), variables, extensions }, signal);
  }
  const first = reply.errors?.[0];
  if (response.status === 401 || (first?.extensions?.code && AUTH_CODES.has(first.extensions.code))) {
    const message = first?.message ?? "The key was refused.";
    signOut(message);
    throw new ApiError(message, first?.extensions?.code ?? "UNAUTHENTICATED", response.status);
  }
  if (first) throw new ApiError(first.message, first.extensions?.code ?? null, response.status);
  if (!response.ok || reply.data == null) {
    throw new ApiError(`The server answered ${response.status}.`, null, response.status);
  }
  return reply.data;
}
