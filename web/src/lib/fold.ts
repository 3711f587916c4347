// The run page's live state: a fold over `executionUpdated` events keyed by sequence.
// A snapshot (which starts every (re)subscription) replaces the state unless it is older;
// an event at or below the last applied sequence is a repeat and is dropped; an event
// past the next expected sequence means something was missed: the caller resubscribes.
// Each event's own `status` and `attempt` win over the (possibly newer) step it carries.

export interface StepLike {
  id: string;
  nodeId: string;
  nodeType: string;
  status: string;
  attempt: number;
}

export interface ExecutionLike<S extends StepLike> {
  id: string;
  status: string;
  lastSequence: number;
  steps?: S[] | null;
}

export interface LiveEvent<S extends StepLike, E extends ExecutionLike<S>> {
  sequence: number;
  kind: string;
  at: string;
  status: string;
  nodeId?: string | null;
  attempt?: number | null;
  data?: unknown;
  step?: S | null;
  /** A snapshot's steps as of its sequence (null for other kinds). */
  steps?: S[] | null;
  execution?: E | null;
}

export interface EventRow {
  sequence: number;
  kind: string;
  at: string;
  status: string;
  nodeId: string | null;
  attempt: number | null;
  data: unknown;
}

export interface RunState<S extends StepLike, E extends ExecutionLike<S>> {
  sequence: number;
  execution: E;
  steps: Record<string, S>;
  events: EventRow[];
}

export type FoldResult<S extends StepLike, E extends ExecutionLike<S>> =
  | { kind: "applied"; state: RunState<S, E> }
  | { kind: "dropped"; state: RunState<S, E> }
  | { kind: "gap"; state: RunState<S, E>; expected: number; got: number };

const MAX_EVENTS = 5_000;

function stepsByNode<S extends StepLike>(steps: readonly S[] | null | undefined): Record<string, S> {
  const out: Record<string, S> = {};
  for (const s of steps ?? []) out[s.nodeId] = s;
  return out;
}

function row<S extends StepLike, E extends ExecutionLike<S>>(event: LiveEvent<S, E>): EventRow {
  return {
    sequence: event.sequence,
    kind: event.kind,
    at: event.at,
    status: event.status,
    nodeId: event.nodeId ?? null,
    attempt: event.attempt ?? null,
    data: event.data ?? null,
  };
}

/** The state a snapshot (or an initial query) describes, with the events already known. */
export function fromSnapshot<S extends StepLike, E extends ExecutionLike<S>>(
  execution: E,
  sequence: number,
  events: EventRow[] = [],
): RunState<S, E> {
  return {
    sequence,
    execution,
    steps: stepsByNode(execution.steps),
    events: events.filter((e) => e.sequence <= sequence),
  };
}

export function fold<S extends StepLike, E extends ExecutionLike<S>>(
  state: RunState<S, E> | null,
  event: LiveEvent<S, E>,
): FoldResult<S, E> {
  if (event.kind === "snapshot") {
    if (state !== null && event.sequence < state.sequence) return { kind: "dropped", state };
    // A snapshot may carry the execution, or only its status and steps (a lean feed):
    // then the execution's other fields stay as the state had them.
    const base = event.execution ?? (state ? { ...state.execution } : null);
    if (base === null) throw new Error("a snapshot without its execution, before any state");
    const execution = {
      ...base,
      status: event.status,
      lastSequence: event.sequence,
      steps: event.steps ?? base.steps,
    };
    return { kind: "applied", state: fromSnapshot(execution, event.sequence, state?.events ?? []) };
  }
  if (state === null) throw new Error("an event before any snapshot");
  if (event.sequence <= state.sequence) return { kind: "dropped", state };
  if (event.sequence > state.sequence + 1) {
    return { kind: "gap", state, expected: state.sequence + 1, got: event.sequence };
  }
  let { steps, execution } = state;
  if (event.kind.startsWith("step.") && event.nodeId) {
    const current = steps[event.nodeId];
    const base = event.step ?? current;
    if (base) {
      steps = {
        ...steps,
        [event.nodeId]: {
          ...base,
          status: event.status,
          attempt: event.attempt ?? base.attempt,
        },
      };
    }
  } else if (event.kind.startsWith("execution.")) {
    const fresh = event.execution ? { ...event.execution, steps: execution.steps } : execution;
    execution = { ...fresh, status: event.status, lastSequence: event.sequence };
  }
  const events = state.events.length >= MAX_EVENTS ? state.events.slice(1) : state.events.slice();
  events.push(row(event));
  return {
    kind: "applied",
    state: { sequence: event.sequence, execution: { ...execution, lastSequence: event.sequence }, steps, events },
  };
}
