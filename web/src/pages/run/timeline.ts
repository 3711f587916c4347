// Bars for the run's gantt: queue wait and each attempt's run time, from the steps'
// times and the step events (one `step.started` per attempt).
import type { EventRow } from "../../lib/fold";

export interface StepTimes {
  nodeId: string;
  status: string;
  attempt: number;
  queuedAt: string | null;
  startedAt: string | null;
  finishedAt: string | null;
}

export interface Bar {
  kind: "wait" | "run";
  attempt: number;
  start: number;
  end: number;
  outcome: string;
}

export interface Row {
  nodeId: string;
  status: string;
  bars: Bar[];
  first: number;
}

const ENDS = new Set(["step.completed", "step.failed", "step.retrying", "step.cancelled", "step.skipped"]);

export function timelineRows(steps: StepTimes[], events: EventRow[], now: number): Row[] {
  const byNode = new Map<string, EventRow[]>();
  for (const e of events) {
    if (!e.nodeId || !e.kind.startsWith("step.")) continue;
    const list = byNode.get(e.nodeId) ?? [];
    list.push(e);
    byNode.set(e.nodeId, list);
  }
  const rows: Row[] = [];
  for (const step of steps) {
    const bars: Bar[] = [];
    const queued = step.queuedAt ? Date.parse(step.queuedAt) : null;
    const started = step.startedAt ? Date.parse(step.startedAt) : null;
    const finished = step.finishedAt ? Date.parse(step.finishedAt) : null;
    const own = (byNode.get(step.nodeId) ?? []).slice().sort((a, b) => a.sequence - b.sequence);
    let open: { attempt: number; start: number } | null = null;
    for (const e of own) {
      const at = Date.parse(e.at);
      if (e.kind === "step.started") {
        open = { attempt: e.attempt ?? step.attempt, start: at };
      } else if (ENDS.has(e.kind) && open) {
        bars.push({ kind: "run", attempt: open.attempt, start: open.start, end: at, outcome: e.status });
        open = null;
      }
    }
    if (open) {
      bars.push({ kind: "run", attempt: open.attempt, start: open.start, end: finished ?? now, outcome: step.status });
    }
    if (bars.length === 0 && started !== null) {
      bars.push({ kind: "run", attempt: step.attempt, start: started, end: finished ?? now, outcome: step.status });
    }
    const firstRun = bars.length > 0 ? Math.min(...bars.map((b) => b.start)) : null;
    if (queued !== null && firstRun !== null && firstRun > queued) {
      bars.unshift({ kind: "wait", attempt: 0, start: queued, end: firstRun, outcome: "QUEUED" });
    } else if (queued !== null && firstRun === null && (step.status === "QUEUED" || step.status === "WAITING")) {
      bars.push({ kind: "wait", attempt: 0, start: queued, end: now, outcome: step.status });
    }
    if (bars.length === 0) continue;
    rows.push({ nodeId: step.nodeId, status: step.status, bars, first: Math.min(...bars.map((b) => b.start)) });
  }
  return rows;
}
