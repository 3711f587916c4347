import { useMemo, useState } from "react";
import { useLocation, useSearchParams } from "react-router";

/** What this page has typed into its filters since it last took them from the URL. */
export type Typed = {
  /** The filters as the page shows them (a search string). */
  local: string;
  /** Which of our writes count: one more each time the URL changed from elsewhere. */
  epoch: number;
  /** The history entry the filters were taken from (its location key). */
  base: string;
};

/** The mark each of our writes leaves on its history entry (the location's state). */
type Mark = { searchState: { page: string; epoch: number } };

function markOf(state: unknown): Mark["searchState"] | null {
  if (typeof state !== "object" || state === null || !("searchState" in state)) return null;
  const mark = (state as Mark).searchState;
  return typeof mark?.page === "string" && typeof mark.epoch === "number" ? mark : null;
}

/**
 * Whether the location is one of ours: the entry the filters were taken from, or one we
 * wrote since (marked with this page and epoch). The router may show such an entry late
 * (typing outruns it), and a render of another priority may still show an earlier one of
 * them; the page's own copy is newer than any of them. Anything else (a link, back and
 * forward past an entry from elsewhere) is a URL changed from elsewhere.
 */
export function isOurs(typed: Typed, page: string, location: { key: string; state: unknown }): boolean {
  if (location.key === typed.base) return true;
  const mark = markOf(location.state);
  return mark !== null && mark.page === page && mark.epoch === typed.epoch;
}

/** `local` with `name` set to `value` (removed when empty), as a search string. */
export function withParam(local: string, name: string, value: string | null): string {
  const next = new URLSearchParams(local);
  if (value) next.set(name, value);
  else next.delete(name);
  return next.toString();
}

let pages = 0;

/**
 * The page's search params (its filters) as state that changes at once.
 *
 * react-router applies a navigation in a transition, a moment after the event, so an input
 * controlled by the URL alone is first put back to its old value: a checkbox's click seems
 * lost and fast typing drops characters. Here the page reads a local copy, updated in the
 * event itself, and the URL follows (replace, so filters do not fill the history); a URL
 * changed from elsewhere (a link, back and forward) replaces the copy.
 *
 * Which URL is ours is told by the history entry (isOurs), never by comparing URLs seen in
 * renders: renders of different priorities may see the router's state out of order (one
 * at the default priority, say a query's data arriving, shows the last committed location
 * while a transition already showed a newer one), and a copy that followed the URL seen
 * last was put back by such a render, dropping what was typed in between.
 */
export function useSearchState(): [
  URLSearchParams,
  (name: string, value: string | null) => void,
  (changes: Record<string, string | null>) => void,
] {
  const [params, setParams] = useSearchParams();
  const location = useLocation();
  const [page] = useState(() => `p${++pages}`);
  const url = params.toString();
  const [typed, setTyped] = useState<Typed>(() => ({ local: url, epoch: 0, base: location.key }));
  const ours = isOurs(typed, page, location);
  const local = ours ? typed.local : url;
  const shown = useMemo(() => new URLSearchParams(local), [local]);
  /** Several filters at once (as one write: two calls of `set` in one event would each
   * start from the same copy). */
  const setMany = (changes: Record<string, string | null>) => {
    const next = Object.entries(changes).reduce((acc, [name, value]) => withParam(acc, name, value), local);
    if (next === local) return;
    // Typing after the URL changed from elsewhere starts from that entry, in a new epoch:
    // our writes from before it no longer count.
    const now = ours ? { ...typed, local: next } : { local: next, epoch: typed.epoch + 1, base: location.key };
    setTyped(now);
    const mark: Mark = { searchState: { page, epoch: now.epoch } };
    setParams(new URLSearchParams(next), { replace: true, state: mark });
  };
  const set = (name: string, value: string | null) => setMany({ [name]: value });
  return [shown, set, setMany];
}
