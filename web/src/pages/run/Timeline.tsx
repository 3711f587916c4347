import { useMemo, useState } from "react";
import type { EventRow } from "../../lib/fold";
import { duration } from "../../lib/format";
import { timelineRows, type StepTimes } from "./timeline";

type Mode = "waterfall" | "flat";

export function Timeline({
  steps,
  events,
  order,
  onSelect,
}: {
  steps: StepTimes[];
  events: EventRow[];
  order: string[];
  onSelect: (nodeId: string) => void;
}) {
  const [mode, setMode] = useState<Mode>("waterfall");
  // eslint-disable-next-line react-hooks/purity -- a running bar grows to "now" on each render
  const now = Date.now();
  const rows = useMemo(() => {
    const list = timelineRows(steps, events, now);
    if (mode === "waterfall") return list.sort((a, b) => a.first - b.first);
    const index = new Map(order.map((id, i) => [id, i]));
    return list.sort((a, b) => (index.get(a.nodeId) ?? 0) - (index.get(b.nodeId) ?? 0));
  }, [steps, events, now, mode, order]);
  if (rows.length === 0) return <p className="muted">No step has been queued yet.</p>;
  const start = Math.min(...rows.map((r) => r.first));
  const end = Math.max(...rows.flatMap((r) => r.bars.map((b) => b.end)), start + 1);
  const span = end - start;
  return (
    <div className="timeline">
      <div className="timeline-head">
        <fieldset className="segmented">
          <legend className="sr-only">Timeline order</legend>
          {(["waterfall", "flat"] as const).map((m) => (
            <label key={m}>
              <input type="radio" name="timeline-mode" value={m} checked={mode === m} onChange={() => setMode(m)} />
              {m === "waterfall" ? "By start time" : "By graph order"}
            </label>
          ))}
        </fieldset>
        <span className="muted">
          Total {duration(span)} · <span className="legend-wait" /> queue wait <span className="legend-run" /> run time
        </span>
      </div>
      <ol className="timeline-rows" aria-label="Step timeline">
        {rows.map((row) => (
          <li key={row.nodeId} className="timeline-row">
            <button type="button" className="timeline-label link" onClick={() => onSelect(row.nodeId)}>
              {row.nodeId}
            </button>
            <div className="timeline-track">
              {row.bars.map((bar, i) => {
                const left = ((bar.start - start) / span) * 100;
                const width = Math.max(0.4, ((bar.end - bar.start) / span) * 100);
                const label =
                  bar.kind === "wait"
                    ? `${row.nodeId}: queued ${duration(bar.end - bar.start)}`
                    : `${row.nodeId}: attempt ${bar.attempt}, ${duration(bar.end - bar.start)}, ${bar.outcome.toLowerCase()}`;
                return (
                  <span
                    key={i}
                    className={`bar bar-${bar.kind}`}
                    data-status={bar.kind === "run" ? bar.outcome : undefined}
                    style={{ left: `${left}%`, width: `${width}%` }}
                    title={label}
                    aria-label={label}
                    role="img"
                  />
                );
              })}
            </div>
          </li>
        ))}
      </ol>
    </div>
  );
}
