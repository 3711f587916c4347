import { useSyncExternalStore } from "react";
import { getCredential, onCredentialChange } from "./auth";
import { connectionCount, linkState, onLinkState, type LinkState } from "./live";

export function useCredential(): string | null {
  return useSyncExternalStore(onCredentialChange, getCredential);
}

export function useLinkState(): LinkState {
  return useSyncExternalStore(onLinkState, linkState);
}

/** Grows by one each time the live socket (re)connects. */
export function useConnectionCount(): number {
  return useSyncExternalStore(onLinkState, connectionCount);
}
