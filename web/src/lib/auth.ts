// The credential the dashboard sends: kept for this browser tab's session only
// (sessionStorage), never in localStorage, never in a URL that reaches the server.

const KEY = "flowsync.credential";
type Listener = () => void;
const listeners = new Set<Listener>();
let reason: string | null = null;

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
}

/** Forget the credential; `why` is shown on the sign-in page. */
export function signOut(why: string | null = null): void {
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
