// The dashboard's operations as the server knows them. Codegen's persistedDocuments makes
// each document its hash in the bundle (`__meta__.hash`, the hex SHA-256 of its body) and
// writes the bodies to src/gql/persisted-documents.json; the web build ships them as the
// manifest FlowSync loads at start (flowsync/web/dist/persisted-operations.json), so the
// server knows every dashboard operation by hash, also in safelist mode.
import type { DocumentTypeDecoration } from "@graphql-typed-document-node/core";
import bodies from "../gql/persisted-documents.json";

const BODIES: Readonly<Record<string, string>> = bodies;

/** The document's id: what `extensions.persistedQuery.sha256Hash` carries. */
export function documentHash<TResult, TVariables>(document: DocumentTypeDecoration<TResult, TVariables>): string {
  const hash = (document as { __meta__?: { hash?: unknown } }).__meta__?.hash;
  if (typeof hash !== "string") throw new Error("A GraphQL document without its hash: run `npm run codegen`.");
  return hash;
}

/** The document's text, exactly as hashed (sent where the server does not know the hash). */
export function documentBody<TResult, TVariables>(document: DocumentTypeDecoration<TResult, TVariables>): string {
  const body = BODIES[documentHash(document)];
  if (body === undefined) throw new Error("A GraphQL document missing from persisted-documents.json: run `npm run codegen`.");
  return body;
}

/** APQ's extension naming the document by its hash. */
export function persistedQuery<TResult, TVariables>(
  document: DocumentTypeDecoration<TResult, TVariables>,
): { persistedQuery: { version: 1; sha256Hash: string } } {
  return { persistedQuery: { version: 1, sha256Hash: documentHash(document) } };
}
