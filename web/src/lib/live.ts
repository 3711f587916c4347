// One graphql-ws client per tab: lazy, keep-alive, retrying forever, reporting its state.
import { createClient, type Client } from "graphql-ws";
import type { DocumentTypeDecoration } from "@graphql-typed-document-node/core";
import { getCredential, onCredentialChange, signOut } from "./auth";
import { documentBody } from "./documents";

export type LinkState = "idle" | "connecting" | "connected" | "reconnecting";

type Listener = () => void;
let state: LinkState = "idle";
let everConnected = false;
let connectedCount = 0;
const stateListeners = new Set<Listener>();

function setState(next: LinkState): void {
  if (next === state) return;
  state = next;
  stateListeners.forEach((l) => l());
}

export function linkState(): LinkState {
  return state;
}

/** How many times the socket (re)connected: pages resync when it grows. */
export function connectionCount(): number {
  return connectedCount;
}

export function onLinkState(listener: Listener): () => void {
  stateListeners.add(listener);
  return () => stateListeners.delete(listener);
}

// Close codes the server uses for a credential that is no longer valid.
const AUTH_CLOSE = new Set([4401, 4403]);

let client: Client | null = null;
// Subscriptions open now: a lazy client closes its socket when the last one ends, which
// is idleness, not a lost connection.
let active = 0;

function wsUrl(): string {
  const proto = window.location.protocol === "https:" ? "wss:" : "ws:";
  return `${proto}//${window.location.host}/graphql`;
}

function build(): Client {
  return createClient({
    url: wsUrl(),
    lazy: true,
    keepAlive: 10_000,
    retryAttempts: Number.POSITIVE_INFINITY,
    retryWait: async (retries) => {
      const wait = Math.min(5_000, 250 * 2 ** Math.min(retries, 5));
      await new Promise((resolve) => setTimeout(resolve, wait * (0.5 + Math.random() / 2)));
    },
    shouldRetry: (event) => {
      const code = (event as { code?: number } | null)?.code;
      return !(code !== undefined && AUTH_CLOSE.has(code));
    },
    connectionParams: () => {
      const credential = getCredential();
      return credential ? { Authorization: `Bearer ${credential}` } : {};
    },
    on: {
      connecting: () => setState(everConnected ? "reconnecting" : "connecting"),
      connected: () => {
        everConnected = true;
        connectedCount += 1;
        setState("connected");
      },
      closed: (event) => {
        const closeEvent = event as { code?: number; reason?: string } | null;
        if (closeEvent?.code !== undefined && AUTH_CLOSE.has(closeEvent.code)) {
          signOut(closeEvent.reason || "The key is no longer valid.");
          return;
        }
        if (active === 0) setState("idle");
        else setState(everConnected ? "reconnecting" : "connecting");
      },
    },
  });
}

function getClient(): Client {
  if (client === null) client = build();
  return client;
}

onCredentialChange(() => {
  // A new or removed credential: drop the socket so the next subscription connects anew.
  if (client !== null) {
    void client.dispose();
    client = null;
    everConnected = false;
    setState("idle");
  }
});

export interface SubscribeHandlers<T> {
  next: (data: T) => void;
  error?: (message: string, code: string | null) => void;
  complete?: () => void;
}

interface WsError {
  message?: string;
  extensions?: { code?: string };
}

/** Subscribe; returns the function that ends the subscription. */
export function subscribe<TResult, TVariables>(
  document: DocumentTypeDecoration<TResult, TVariables>,
  variables: TVariables,
  handlers: SubscribeHandlers<TResult>,
): () => void {
  active += 1;
  let ended = false;
  const end = () => {
    if (!ended) {
      ended = true;
      active -= 1;
    }
  };
  const unsubscribe = getClient().subscribe<TResult>(
    // The whole document (graphql-ws requires `query`): its SHA-256 is the hash the server
    // knows, so it runs in safelist mode too.
    { query: documentBody(document), variables: variables as Record<string, unknown> },
    {
      next: (value) => {
        if (value.errors?.length) {
          const first = value.errors[0] as WsError;
          handlers.error?.(first.message ?? "Subscription error", first.extensions?.code ?? null);
          return;
        }
        if (value.data) handlers.next(value.data);
      },
      error: (err) => {
        end();
        if (Array.isArray(err)) {
          const first = err[0] as WsError | undefined;
          handlers.error?.(first?.message ?? "Subscription error", first?.extensions?.code ?? null);
        } else if (err instanceof Error) {
          handlers.error?.(err.message, null);
        } else {
          const closeEvent = err as { code?: number; reason?: string };
          if (closeEvent.code !== undefined && AUTH_CLOSE.has(closeEvent.code)) {
            signOut(closeEvent.reason || "The key is no longer valid.");
          }
          handlers.error?.(closeEvent.reason || "The connection was closed.", null);
        }
      },
      complete: () => {
        end();
        handlers.complete?.();
      },
    },
  );
  return () => {
    end();
    unsubscribe();
  };
}
