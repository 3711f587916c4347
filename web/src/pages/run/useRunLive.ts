// The run's live state: the page's query gives a first state, then `executionUpdated`
// folds events in by sequence; a gap resubscribes (its snapshot brings the state back).
import { useEffect, useRef, useState } from "react";
import { RunLiveDocument, type ExecutionSummaryFragment, type StepFieldsFragment } from "../../gql/graphql";
import { fold, fromSnapshot, type LiveEvent, type RunState } from "../../lib/fold";
import { subscribe } from "../../lib/live";

export type LiveExecution = ExecutionSummaryFragment & { output?: unknown; steps?: StepFieldsFragment[] | null };
export type LiveState = RunState<StepFieldsFragment, LiveExecution>;

/**
 * `initial` is the Run query's execution; the subscription starts once it is there, so
 * that a lean snapshot always has a state to apply to. `onExecutionEvent` is called for
 * snapshots and execution.* events (the page re-reads the execution and its log then).
 */
export function useRunLive(
  id: string,
  initial: LiveExecution | null | undefined,
  onExecutionEvent: () => void,
) {
  const [state, setState] = useState<LiveState | null>(null);
  const [generation, setGeneration] = useState(0);
  const [error, setError] = useState<string | null>(null);
  const ref = useRef<LiveState | null>(null);

  // Seed from the query once, if the subscription has not delivered yet.
  useEffect(() => {
    if (initial && ref.current === null) {
      ref.current = fromSnapshot<StepFieldsFragment, LiveExecution>(initial, initial.lastSequence);
      setState(ref.current);
    }
  }, [initial]);

  const ready = initial != null;
  const onExecution = useRef(onExecutionEvent);
  useEffect(() => {
    onExecution.current = onExecutionEvent;
  }, [onExecutionEvent]);

  useEffect(() => {
    if (!ready) return;
    const stop = subscribe(RunLiveDocument, { id }, {
      next: (data) => {
        const event = data.executionUpdated as LiveEvent<StepFieldsFragment, LiveExecution>;
        const result = fold(ref.current, event);
        if (result.kind === "gap") {
          setGeneration((g) => g + 1);
          return;
        }
        if (result.kind === "applied") {
          ref.current = result.state;
          setState(result.state);
          setError(null);
          // A snapshot (every (re)subscription starts with one) may skip events the page
          // never saw, as may an execution.* event change the execution's own fields:
          // the page reads both again.
          if (event.kind === "snapshot" || event.kind.startsWith("execution.")) onExecution.current();
        }
      },
      error: (message) => setError(message),
    });
    return stop;
  }, [id, generation, ready]);

  return { state, error };
}
