// Queries and mutations over HTTP POST /graphql with the session's credential.
import type { DocumentTypeDecoration } from "@graphql-typed-document-node/core";
import { getCredential, signOut } from "./auth";

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

const AUTH_CODES = new Set(["UNAUTHENTICATED", "unauthenticated", "FORBIDDEN", "forbidden"]);

export async function request<TResult, TVariables>(
  document: DocumentTypeDecoration<TResult, TVariables>,
  variables: TVariables,
  signal?: AbortSignal,
): Promise<TResult> {
  const credential = getCredential();
  const response = await fetch("/graphql", {
    method: "POST",
    headers: {
      "Content-Type": "application/json",
      Accept: "application/json",
      ...(credential ? { Authorization: `Bearer ${credential}` } : {}),
    },
    body: JSON.stringify({ query: document.toString(), variables }),
    signal: signal ?? null,
  });
  let reply: GraphQLReply<TResult>;
  try {
    reply = (await response.json()) as GraphQLReply<TResult>;
  } catch {
    throw new ApiError(`The server answered ${response.status} without JSON.`, null, response.status);
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
