import { Json } from "../../components/Json";
import { StatusBadge } from "../../components/Status";
import { Time } from "../../components/Time";
import type { StepFieldsFragment } from "../../gql/graphql";
import type { EventRow } from "../../lib/fold";
import { duration, errorText } from "../../lib/format";

/** An action's request as defined (templates unrendered) and the status it got back,
 * from its output (a reply) or its error (a refused reply). */
function httpSummary(data: Record<string, unknown> | undefined, output: unknown, error: unknown): string | null {
  if (!data || typeof data.url !== "string") return null;
  const method = typeof data.method === "string" ? data.method : "GET";
  const statusOf = (v: unknown) => (typeof v === "object" && v !== null && typeof (v as { status?: unknown }).status === "number" ? (v as { status: number }).status : null);
  const status = statusOf(output) ?? statusOf(error);
  return `${method} ${data.url}${status !== null ? ` → HTTP ${status}` : ""}`;
}

export function StepPanel({
  nodeId,
  nodeType,
  nodeData,
  step,
  events,
  onClose,
}: {
  nodeId: string;
  nodeType: string;
  nodeData?: Record<string, unknown>;
  step: StepFieldsFragment | undefined;
  events: EventRow[];
  onClose: () => void;
}) {
  const own = events.filter((e) => e.nodeId === nodeId);
  const summary = step && nodeType === "action" ? httpSummary(nodeData, step.output, step.error) : null;
  return (
    <aside className="panel" aria-labelledby="step-panel-title" data-testid="step-panel">
      <div className="panel-head">
        <h2 id="step-panel-title">
          {nodeId} <span className="muted">({nodeType})</span>
        </h2>
        <button type="button" className="ghost" onClick={onClose} aria-label="Close step details">
          Close
        </button>
      </div>
      {!step ? (
        <p className="muted">This step has not been reached.</p>
      ) : (
        <>
          <dl className="facts">
            <dt>Status</dt>
            <dd>
              <StatusBadge status={step.status} />
            </dd>
            <dt>Attempts</dt>
            <dd>{step.attempt}</dd>
            <dt>Queued</dt>
            <dd>
              <Time iso={step.queuedAt} />
            </dd>
            <dt>Started</dt>
            <dd>
              <Time iso={step.startedAt} />
            </dd>
            <dt>Finished</dt>
            <dd>
              <Time iso={step.finishedAt} />
            </dd>
            <dt>Run time</dt>
            <dd>{duration(step.durationMs)}</dd>
            {summary && (
              <>
                <dt>HTTP</dt>
                <dd className="mono small">{summary}</dd>
              </>
            )}
          </dl>
          {step.error != null && (
            <section>
              <h3>Error</h3>
              <p className="error-text">{errorText(step.error)}</p>
              <Json value={step.error} label="Error details" />
            </section>
          )}
          <section>
            <h3>Input</h3>
            <Json value={step.input} label="Input" />
          </section>
          <section>
            <h3>Output</h3>
            <Json value={step.output} label="Output" />
          </section>
        </>
      )}
      <section>
        <h3>Events</h3>
        {own.length === 0 ? (
          <p className="muted">No events yet.</p>
        ) : (
          <ol className="event-list">
            {own.map((e) => (
              <li key={e.sequence}>
                <span className="mono">#{e.sequence}</span> <strong>{e.kind}</strong> <Time iso={e.at} />
                {e.attempt != null && <span className="muted"> attempt {e.attempt}</span>}
                {e.data != null && (
                  <pre className="json small" tabIndex={0} aria-label={`Event ${e.sequence} data`}>
                    {JSON.stringify(e.data, null, 2)}
                  </pre>
                )}
              </li>
            ))}
          </ol>
        )}
      </section>
    </aside>
  );
}
