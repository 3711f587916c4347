import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useCallback, useMemo, useState } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { RunGraph } from "../../components/RunGraph";
import { ErrorBox, Loading, UserErrorBox } from "../../components/States";
import { StatusBadge } from "../../components/Status";
import { Time } from "../../components/Time";
import { CancelRunDocument, RetryRunDocument, RunDocument, RunEventsDocument } from "../../gql/graphql";
import { request } from "../../lib/api";
import { useSearchState } from "../../lib/searchState";
import { readDefinition } from "../../lib/definition";
import type { EventRow } from "../../lib/fold";
import { duration, errorText } from "../../lib/format";
import { useLinkState } from "../../lib/hooks";
import { useGraphQL } from "../../lib/query";
import { asUserError, type UserErrorLike } from "../../lib/userError";
import { EventLog } from "./EventLog";
import { StepPanel } from "./StepPanel";
import { Timeline } from "./Timeline";
import { useRunLive } from "./useRunLive";
import { shortId } from "../../lib/ids";

type Tab = "graph" | "timeline" | "events";

export function RunPage() {
  const { id = "" } = useParams();
  const [params, setParam] = useSearchState();
  const tab = (params.get("tab") as Tab | null) ?? "graph";
  const selected = params.get("step");
  const navigate = useNavigate();
  const client = useQueryClient();
  const link = useLinkState();
  const run = useGraphQL(["run", id], RunDocument, { id });
  const history = useGraphQL(["run-events", id], RunEventsDocument, { id });
  const refetchRun = run.refetch;
  const refetchEvents = history.refetch;
  const onExecutionEvent = useCallback(() => {
    void refetchRun();
    void refetchEvents();
  }, [refetchRun, refetchEvents]);
  const { state, error: liveError } = useRunLive(id, run.data?.execution, onExecutionEvent);
  // Read once per fetched definition, not on every live event: the graph keeps its nodes
  // and edges while the definition is the same object.
  const rawDefinition = run.data?.execution?.definition;
  const definition = useMemo(() => readDefinition(rawDefinition), [rawDefinition]);
  const [actionError, setActionError] = useState<UserErrorLike | Error | null>(null);


  const events: EventRow[] = useMemo(() => {
    const bySeq = new Map<number, EventRow>();
    for (const e of history.data?.execution?.timeline ?? []) {
      if (!state || e.sequence <= state.sequence) bySeq.set(e.sequence, { ...e, nodeId: e.nodeId ?? null, attempt: e.attempt ?? null });
    }
    for (const e of state?.events ?? []) bySeq.set(e.sequence, e);
    return [...bySeq.values()].sort((a, b) => a.sequence - b.sequence);
  }, [history.data, state]);

  const cancel = useMutation({
    mutationFn: () => request(CancelRunDocument, { id }),
    onSuccess: (data) => {
      const err = asUserError(data.cancelExecution);
      setActionError(err);
      void client.invalidateQueries({ queryKey: ["runs"] });
    },
    onError: (e) => setActionError(e),
  });
  const retry = useMutation({
    mutationFn: () => request(RetryRunDocument, { id }),
    onSuccess: (data) => {
      const result = data.retryExecution;
      const err = asUserError(result);
      if (err) setActionError(err);
      else if (result.__typename === "StartExecutionPayload") {
        void client.invalidateQueries({ queryKey: ["runs"] });
        void navigate(`/runs/${result.execution.id}`);
      }
    },
    onError: (e) => setActionError(e),
  });

  if (run.isPending) return <Loading what="the run" />;
  if (run.error) return <ErrorBox error={run.error} />;
  const base = run.data.execution;
  if (!base) return <ErrorBox error={`No run ${id}: it does not exist or is not yours.`} />;
  // The query's fields (times, error), with the live status and sequence.
  const execution = state ? { ...base, status: state.execution.status, lastSequence: state.sequence } : base;
  const steps = state?.steps ?? Object.fromEntries(base.steps.map((s) => [s.nodeId, s]));
  const stepList = Object.values(steps);
  const selectedNode = selected ? definition.nodes.find((n) => n.id === selected) : undefined;
  const counts = stepList.reduce<Record<string, number>>((acc, s) => {
    acc[s.status] = (acc[s.status] ?? 0) + 1;
    return acc;
  }, {});
  const active = execution.status === "RUNNING" || execution.status === "PENDING";
  const theme = document.documentElement.dataset.theme === "dark" ? "dark" : "light";

  return (
    <div className="run-page">
      <div className="page-head">
        <div>
          <p className="crumbs">
            <Link to="/runs">Runs</Link> /{" "}
            {base.workflow ? <Link to={`/workflows/${base.workflowId}`}>{base.workflow.name}</Link> : "deleted workflow"} v
            {base.workflowVersion}
          </p>
          <h1>
            Run <span className="mono">{shortId(id)}</span>{" "}
            <StatusBadge status={execution.status} testId="execution-status" />
          </h1>
          <p className="muted">
            Started <Time iso={execution.startedAt ?? execution.createdAt} /> · {duration(execution.durationMs)} ·{" "}
            {Object.entries(counts)
              .map(([s, n]) => `${n} ${s.toLowerCase()}`)
              .join(", ")}{" "}
            ·{" "}
            <span data-testid="run-sequence" data-sequence={state?.sequence ?? base.lastSequence}>
              event #{state?.sequence ?? base.lastSequence}
            </span>
          </p>
        </div>
        <div className="actions">
          {active && (
            <button
              type="button"
              className="danger"
              onClick={() => window.confirm("Cancel this run? Its running steps are stopped.") && cancel.mutate()}
              disabled={cancel.isPending}
            >
              Cancel run
            </button>
          )}
          {(execution.status === "FAILED" || execution.status === "CANCELLED") && (
            <button type="button" className="primary" onClick={() => retry.mutate()} disabled={retry.isPending}>
              {execution.status === "FAILED" ? "Retry from failed step" : "Retry from where it stopped"}
            </button>
          )}
        </div>
      </div>
      {link === "reconnecting" && (
        <div className="notice" role="status" data-testid="reconnecting">
          Connection lost: reconnecting, then catching up from event #{state?.sequence ?? base.lastSequence}…
        </div>
      )}
      {liveError && <ErrorBox error={`Live updates: ${liveError}`} />}
      {actionError && (actionError instanceof Error ? <ErrorBox error={actionError} /> : <UserErrorBox error={actionError} />)}
      {execution.error != null &&
        (execution.status === "CANCELLED" ? (
          <div className="notice" role="status" data-testid="run-outcome">
            <strong>Run cancelled:</strong> {errorText(execution.error)}
          </div>
        ) : (
          <div className="error-box" role="alert" data-testid="run-outcome">
            <strong>Run failed:</strong> {errorText(execution.error)}
          </div>
        ))}
      <div className="tabs" role="tablist" aria-label="Run views">
        {(["graph", "timeline", "events"] as const).map((t) => (
          <button
            key={t}
            type="button"
            role="tab"
            aria-selected={tab === t}
            className={tab === t ? "tab active" : "tab"}
            onClick={() => setParam("tab", t === "graph" ? null : t)}
          >
            {t === "graph" ? "Graph" : t === "timeline" ? "Timeline" : `Events (${events.length})`}
          </button>
        ))}
      </div>
      <div className={selected ? "run-body with-panel" : "run-body"}>
        <div className="run-main" role="tabpanel">
          {tab === "graph" && (
            <RunGraph
              definition={definition}
              steps={steps}
              selected={selected}
              onSelect={(n) => setParam("step", n)}
              colorMode={theme}
            />
          )}
          {tab === "timeline" && (
            <Timeline
              steps={stepList}
              events={events}
              order={definition.nodes.map((n) => n.id)}
              onSelect={(n) => setParam("step", n)}
            />
          )}
          {tab === "events" && <EventLog events={events} onSelect={(n) => setParam("step", n)} />}
        </div>
        {selected && (
          <StepPanel
            nodeId={selected}
            nodeType={selectedNode?.type ?? steps[selected]?.nodeType ?? ""}
            {...(selectedNode?.data ? { nodeData: selectedNode.data } : {})}
            step={steps[selected]}
            events={events}
            onClose={() => setParam("step", null)}
          />
        )}
      </div>
    </div>
  );
}
