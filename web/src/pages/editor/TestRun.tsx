// A test run started from the editor, its steps' statuses coloured on the canvas live.
import { useEffect, useState, type FormEvent } from "react";
import { Link } from "react-router";
import { StatusBadge } from "../../components/Status";
import { RunDocument } from "../../gql/graphql";
import { useGraphQL } from "../../lib/query";
import { useRunLive } from "../run/useRunLive";
import { shortId } from "../../lib/ids";

function Watch({ runId, onStatuses }: { runId: string; onStatuses: (s: Record<string, string>) => void }) {
  const run = useGraphQL(["run", runId], RunDocument, { id: runId });
  const { state } = useRunLive(runId, run.data?.execution, () => void run.refetch());
  useEffect(() => {
    if (state) onStatuses(Object.fromEntries(Object.values(state.steps).map((s) => [s.nodeId, s.status])));
  }, [state, onStatuses]);
  const status = state?.execution.status ?? run.data?.execution?.status;
  return (
    <p>
      Test run <Link to={`/runs/${runId}`}>{shortId(runId)}</Link> {status && <StatusBadge status={status} testId="test-run-status" />}
    </p>
  );
}

export function TestRun({
  workflowId,
  dirty,
  runId,
  onStart,
  onStatuses,
}: {
  workflowId: string;
  dirty: boolean;
  runId: string | null;
  onStart: (input: unknown) => Promise<void>;
  onStatuses: (s: Record<string, string>) => void;
}) {
  const [text, setText] = useState("{}");
  const [error, setError] = useState<string | null>(null);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    let input: unknown;
    try {
      input = text.trim() ? JSON.parse(text) : null;
    } catch (err) {
      setError(`The input is not JSON: ${(err as Error).message}`);
      return;
    }
    setError(null);
    onStart(input).catch((err: Error) => setError(err.message));
  };
  return (
    <section>
      <h2>Test run</h2>
      <form onSubmit={submit} data-workflow={workflowId}>
        <label htmlFor="test-input">Input (JSON)</label>
        <textarea id="test-input" className="mono" rows={3} value={text} onChange={(e) => setText(e.target.value)} />
        {error && <p className="field-error">{error}</p>}
        {dirty && <p className="muted small">Runs the last saved version: save your changes first to test them.</p>}
        <button type="submit">Start test run</button>
      </form>
      {runId && <Watch key={runId} runId={runId} onStatuses={onStatuses} />}
    </section>
  );
}
