import { describe, expect, it } from "vitest";
import { timelineRows } from "./timeline";

const t = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString();

describe("timelineRows", () => {
  it("splits queue wait from run time and draws one bar per attempt", () => {
    const rows = timelineRows(
      [{ nodeId: "a", status: "COMPLETED", attempt: 2, queuedAt: t(0), startedAt: t(1), finishedAt: t(6) }],
      [
        { sequence: 1, kind: "step.started", at: t(1), status: "RUNNING", nodeId: "a", attempt: 1, data: null },
        { sequence: 2, kind: "step.retrying", at: t(2), status: "QUEUED", nodeId: "a", attempt: 1, data: null },
        { sequence: 3, kind: "step.started", at: t(4), status: "RUNNING", nodeId: "a", attempt: 2, data: null },
        { sequence: 4, kind: "step.completed", at: t(6), status: "COMPLETED", nodeId: "a", attempt: 2, data: null },
      ],
      0,
    );
    expect(rows).toHaveLength(1);
    const bars = rows[0]!.bars;
    expect(bars.map((b) => [b.kind, b.attempt, b.outcome])).toEqual([
      ["wait", 0, "QUEUED"],
      ["run", 1, "QUEUED"],
      ["run", 2, "COMPLETED"],
    ]);
    expect(bars[0]!.end - bars[0]!.start).toBe(1000);
  });

  it("falls back to the step's own times without events, and runs to now while running", () => {
    const now = Date.parse(t(10));
    const rows = timelineRows(
      [{ nodeId: "b", status: "RUNNING", attempt: 1, queuedAt: t(2), startedAt: t(3), finishedAt: null }],
      [],
      now,
    );
    expect(rows[0]!.bars.at(-1)).toMatchObject({ kind: "run", end: now });
  });

  it("leaves out steps that never ran or queued", () => {
    expect(
      timelineRows([{ nodeId: "c", status: "PENDING", attempt: 0, queuedAt: null, startedAt: null, finishedAt: null }], [], 0),
    ).toEqual([]);
  });
});
