import { useSyncExternalStore } from "react";

// One clock for every relative time on the page ("12 seconds ago"), so that such texts
// stay true in rows that do not otherwise re-render (memoised list rows).
export const TICK_MS = 5_000;
let now = Date.now();
const listeners = new Set<() => void>();
setInterval(() => {
  now = Date.now();
  for (const l of listeners) l();
}, TICK_MS);

function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** The time now, at most TICK_MS old, re-rendering its users at each tick. */
export function useNow(): number {
  return useSyncExternalStore(subscribe, () => now);
}
