import { useMemo, useState } from "react";
import { useSearchParams } from "react-router";

type State = { url: string; local: string; pending: string[] };

/** What the page shows for a URL that moved: a URL we wrote ourselves keeps the local copy
 * (which may already be newer: typing outruns the router), any other URL replaces it. */
export function reconcile(state: State, url: string): State {
  if (url === state.url) return state;
  const i = state.pending.indexOf(url);
  if (i >= 0) return { url, local: state.local, pending: state.pending.slice(i + 1) };
  return { url, local: url, pending: [] };
}

/** `local` with `name` set to `value` (removed when empty), as a search string. */
export function withParam(local: string, name: string, value: string | null): string {
  const next = new URLSearchParams(local);
  if (value) next.set(name, value);
  else next.delete(name);
  return next.toString();
}

/**
 * The page's search params (its filters) as state that changes at once.
 *
 * react-router applies a navigation in a transition, a moment after the event, so an input
 * controlled by the URL alone is first put back to its old value: a checkbox's click seems
 * lost and fast typing drops characters. Here the page reads a local copy, updated in the
 * event itself, and the URL follows (replace, so filters do not fill the history); a URL
 * changed from elsewhere (a link, back and forward) replaces the copy.
 */
export function useSearchState(): [URLSearchParams, (name: string, value: string | null) => void] {
  const [params, setParams] = useSearchParams();
  const url = params.toString();
  const [state, setState] = useState<State>({ url, local: url, pending: [] });
  let current = state;
  if (url !== state.url) {
    // Adjusting state during render, as React documents for state that follows a prop.
    current = reconcile(state, url);
    setState(current);
  }
  const { local } = current;
  const shown = useMemo(() => new URLSearchParams(local), [local]);
  const set = (name: string, value: string | null) => {
    const next = withParam(local, name, value);
    if (next === local) return;
    setState((s) => ({ ...s, local: next, pending: [...s.pending, next] }));
    setParams(new URLSearchParams(next), { replace: true });
  };
  return [shown, set];
}
