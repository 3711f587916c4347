// The credential the dashboard sends: kept for this browser tab's session only
// (sessionStorage), never in localStorage, never in a URL that reaches the server.

import { fromBase64url } from "./pkce";

const KEY = "flowsync.credential";
type Listener = () => void;
const listeners = new Set<Listener>();
let reason: string | null = null;
let expiryTimer: ReturnType<typeof setTimeout> | undefined;
// setTimeout's longest delay; a token valid for longer is left to the server to refuse.
const LONGEST_TIMER_MS = 2 ** 31 - 1;

/** The claims of a JWT, read without verifying it (the server verifies); null when the
 * value is no JWT (an API key). */
export function jwtClaims(token: string): Record<string, unknown> | null {
  const parts = token.split(".");
  if (parts.length !== 3 || !parts[1]) return null;
  try {
    const claims: unknown = JSON.parse(new TextDecoder().decode(fromBase64url(parts[1])));
    return claims !== null && typeof claims === "object" && !Array.isArray(claims)
      ? (claims as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}

/** When a JWT expires (its `exp`, in ms since the epoch); null for an API key. */
export function tokenExpiry(token: string): number | null {
  const exp = jwtClaims(token)?.exp;
  return typeof exp === "number" && Number.isFinite(exp) ? exp * 1000 : null;
}

/** Back to sign-in, saying why, when the tab's JWT expires (the server would refuse it on
 * the next request anyway; this says so while the page is idle too). */
function watchExpiry(token: string | null): void {
  clearTimeout(expiryTimer);
  expiryTimer = undefined;
  const expires = token === null ? null : tokenExpiry(token);
  if (expires === null) return;
  const end = () =>
    signOut(`Your sign-in expired at ${new Date(expires).toLocaleTimeString()}. Sign in again.`);
  const left = expires - Date.now();
  if (left <= 0) end();
  else if (left <= LONGEST_TIMER_MS) expiryTimer = setTimeout(end, left);
}

export function getCredential(): string | null {
  try {
    return window.sessionStorage.getItem(KEY);
  } catch {
    return null;
  }
}

export function setCredential(value: string): void {
  window.sessionStorage.setItem(KEY, value.trim());
  reason = null;
  listeners.forEach((l) => l());
  watchExpiry(value.trim());
}

/** Forget the credential; `why` is shown on the sign-in page. */
export function signOut(why: string | null = null): void {
  clearTimeout(expiryTimer);
  expiryTimer = undefined;
  window.sessionStorage.removeItem(KEY);
  reason = why;
  listeners.forEach((l) => l());
}

export function signOutReason(): string | null {
  return reason;
}

export function onCredentialChange(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/**
 * `flowsync dev` prints `/ui/#key=<key>`: the fragment never reaches the server or its
 * logs. Move the key to sessionStorage and clear it from the address bar.
 */
export function consumeFragmentKey(location: Location, history: History): boolean {
  const hash = location.hash.startsWith("#") ? location.hash.slice(1) : location.hash;
  const params = new URLSearchParams(hash);
  const key = params.get("key");
  if (!key) return false;
  setCredential(key);
  params.delete("key");
  const rest = params.toString();
  history.replaceState(history.state, "", location.pathname + location.search + (rest ? `#${rest}` : ""));
  return true;
}

// A JWT kept from before a reload is watched too.
watchExpiry(getCredential());
