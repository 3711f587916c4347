import { describe, expect, it } from "vitest";
import { fold, fromSnapshot, type LiveEvent, type RunState } from "./fold";

interface S {
  id: string;
  nodeId: string;
  nodeType: string;
  status: string;
  attempt: number;
}
interface E {
  id: string;
  status: string;
  lastSequence: number;
  steps?: S[] | null;
}

const step = (nodeId: string, status: string, attempt = 1): S => ({
  id: `s-${nodeId}`,
  nodeId,
  nodeType: "transform",
  status,
  attempt,
});

const snapshot = (sequence: number, steps: S[], status = "RUNNING"): LiveEvent<S, E> => ({
  sequence,
  kind: "snapshot",
  at: "2026-01-01T00:00:00Z",
  status,
  execution: { id: "x", status, lastSequence: sequence, steps },
});

const stepEvent = (sequence: number, nodeId: string, status: string, attempt = 1, carried?: S): LiveEvent<S, E> => ({
  sequence,
  kind: `step.${status.toLowerCase()}`,
  at: "2026-01-01T00:00:01Z",
  status,
  nodeId,
  attempt,
  step: carried ?? step(nodeId, status, attempt),
});

function applied(result: ReturnType<typeof fold<S, E>>): RunState<S, E> {
  if (result.kind !== "applied") throw new Error(`expected applied, got ${result.kind}`);
  return result.state;
}

describe("fold", () => {
  it("applies events in order on top of a snapshot", () => {
    let state = applied(fold<S, E>(null, snapshot(3, [step("a", "QUEUED")])));
    state = applied(fold(state, stepEvent(4, "a", "RUNNING")));
    state = applied(fold(state, stepEvent(5, "a", "COMPLETED")));
    expect(state.sequence).toBe(5);
    expect(state.steps.a?.status).toBe("COMPLETED");
    expect(state.events.map((e) => e.sequence)).toEqual([4, 5]);
  });

  it("drops repeats, so a replay after a reconnect adds nothing twice", () => {
    let state = applied(fold<S, E>(null, snapshot(3, [step("a", "QUEUED")])));
    state = applied(fold(state, stepEvent(4, "a", "RUNNING")));
    const again = fold(state, stepEvent(4, "a", "RUNNING"));
    expect(again.kind).toBe("dropped");
    expect(again.state.events).toHaveLength(1);
  });

  it("reports a gap instead of applying past a missed event", () => {
    const state = applied(fold<S, E>(null, snapshot(3, [step("a", "QUEUED")])));
    const result = fold(state, stepEvent(6, "a", "COMPLETED"));
    expect(result).toMatchObject({ kind: "gap", expected: 4, got: 6 });
    expect(result.state.steps.a?.status).toBe("QUEUED");
  });

  it("replaces state with a newer snapshot but ignores an older one", () => {
    let state = applied(fold<S, E>(null, snapshot(3, [step("a", "QUEUED")])));
    state = applied(fold(state, stepEvent(4, "a", "RUNNING")));
    expect(fold(state, snapshot(2, [step("a", "PENDING")])).kind).toBe("dropped");
    state = applied(fold(state, snapshot(9, [step("a", "COMPLETED"), step("b", "RUNNING")])));
    expect(state.sequence).toBe(9);
    expect(state.steps.b?.status).toBe("RUNNING");
    // The events already shown stay; later ones continue from the snapshot.
    expect(state.events.map((e) => e.sequence)).toEqual([4]);
  });

  it("uses the event's own status and attempt, not the newer step it carries", () => {
    let state = applied(fold<S, E>(null, snapshot(1, [step("a", "QUEUED")])));
    state = applied(fold(state, stepEvent(2, "a", "RUNNING", 1, step("a", "COMPLETED", 2))));
    expect(state.steps.a?.status).toBe("RUNNING");
    expect(state.steps.a?.attempt).toBe(1);
  });

  it("takes the execution's status from execution events", () => {
    let state = applied(fold<S, E>(null, snapshot(1, [])));
    state = applied(
      fold(state, { sequence: 2, kind: "execution.completed", at: "t", status: "COMPLETED" }),
    );
    expect(state.execution.status).toBe("COMPLETED");
    expect(state.execution.lastSequence).toBe(2);
  });

  it("takes a snapshot's steps from the event when the execution does not carry them", () => {
    const state = applied(
      fold<S, E>(null, {
        sequence: 4,
        kind: "snapshot",
        at: "t",
        status: "RUNNING",
        steps: [step("a", "RUNNING")],
        execution: { id: "x", status: "RUNNING", lastSequence: 4 },
      }),
    );
    expect(state.steps.a?.status).toBe("RUNNING");
  });

  it("applies a lean snapshot (status and steps only) over the state it has", () => {
    let state = applied(fold<S, E>(null, snapshot(2, [step("a", "QUEUED")])));
    state = applied(
      fold(state, { sequence: 5, kind: "snapshot", at: "t", status: "COMPLETED", steps: [step("a", "COMPLETED")] }),
    );
    expect(state.execution).toMatchObject({ id: "x", status: "COMPLETED", lastSequence: 5 });
    expect(state.steps.a?.status).toBe("COMPLETED");
  });

  it("builds an initial state from a query result", () => {
    const state = fromSnapshot<S, E>({ id: "x", status: "RUNNING", lastSequence: 7, steps: [step("a", "RUNNING")] }, 7);
    expect(state.steps.a?.status).toBe("RUNNING");
  });
});
