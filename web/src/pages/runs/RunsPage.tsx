// All runs, newest first: filters in the URL, live status changes and new runs,
// cursor pagination, bulk cancel and retry; the list is virtualised.
import { useInfiniteQuery, useQueryClient } from "@tanstack/react-query";
import { useVirtualizer } from "@tanstack/react-virtual";
import { memo, useCallback, useEffect, useMemo, useRef, useState } from "react";
import { Link } from "react-router";
import { Empty, ErrorBox, Loading } from "../../components/States";
import { StatusBadge } from "../../components/Status";
import { Time } from "../../components/Time";
import {
  CancelRunDocument,
  RetryRunDocument,
  RunsDocument,
  RunsFeedDocument,
  WorkflowNamesDocument,
  type ExecutionStatus,
  type ExecutionSummaryFragment,
} from "../../gql/graphql";
import { request } from "../../lib/api";
import { useSearchState } from "../../lib/searchState";
import { duration } from "../../lib/format";
import { useConnectionCount } from "../../lib/hooks";
import { subscribe } from "../../lib/live";
import { useGraphQL } from "../../lib/query";
import { asUserError } from "../../lib/userError";
import { shortId } from "../../lib/ids";
import { Id } from "../../components/Id";

export const STATUSES: ExecutionStatus[] = ["PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED"];
const PAGE = 100;
const ROW_HEIGHT = 44;

// One listed run. Memoised: the list re-renders on every scroll event and every live
// event, and a row whose run, place and checkbox are unchanged need not render again.
const RunRow = memo(function RunRow({
  run: r,
  start,
  checked,
  onCheck,
}: {
  run: ExecutionSummaryFragment;
  start: number;
  checked: boolean;
  onCheck: (id: string, on: boolean) => void;
}) {
  return (
    <div
      role="row"
      className="vrow"
      data-run-id={r.id}
      data-status={r.status}
      style={{ position: "absolute", top: 0, left: 0, right: 0, height: ROW_HEIGHT, transform: `translateY(${start}px)` }}
    >
      <span role="cell" className="c-check">
        <input type="checkbox" aria-label={`Select run ${shortId(r.id)}`} checked={checked} onChange={(e) => onCheck(r.id, e.target.checked)} />
      </span>
      <span role="cell" className="c-id">
        <Link to={`/runs/${r.id}`}>
          <Id id={r.id} />
        </Link>
      </span>
      <span role="cell" className="c-wf">
        {r.workflow ? <Link to={`/workflows/${r.workflowId}`}>{r.workflow.name}</Link> : <span className="muted">deleted</span>} <span className="muted">v{r.workflowVersion}</span>
      </span>
      <span role="cell" className="c-status">
        <StatusBadge status={r.status} />
      </span>
      <span role="cell" className="c-time">
        <Time iso={r.createdAt} />
      </span>
      <span role="cell" className="c-dur">{duration(r.durationMs)}</span>
    </div>
  );
});

export function RunsList({ workflowId, showFilters = true }: { workflowId?: string | null; showFilters?: boolean }) {
  const [params, setFilter, setFilters] = useSearchState();
  const status = (params.get("status") as ExecutionStatus | null) ?? null;
  const wf = workflowId ?? params.get("workflow");
  const trigger = params.get("trigger");
  const since = params.get("since");
  // Filters the person chose (a workflow page's own workflow is not one).
  const filtered = Boolean(status || trigger || since || (!workflowId && params.get("workflow")));
  const client = useQueryClient();
  const names = useGraphQL(["workflow-names"], WorkflowNamesDocument, {}, { enabled: showFilters });
  const key = useMemo(() => ["runs", wf, status, trigger], [wf, status, trigger]);
  const runs = useInfiniteQuery({
    queryKey: key,
    queryFn: ({ pageParam, signal }) =>
      request(RunsDocument, { workflowId: wf, triggerId: trigger, status, first: PAGE, after: pageParam }, signal),
    initialPageParam: null as string | null,
    // Keep showing the previous rows while a changed filter loads (no flash, no lost focus).
    placeholderData: (previous) => previous,
    getNextPageParam: (last) => (last.executions.pageInfo.hasNextPage ? last.executions.pageInfo.endCursor : null),
  });
  // Live: status changes of listed runs, and new runs on top.
  const [live, setLive] = useState<Map<string, ExecutionSummaryFragment>>(new Map());
  const [fresh, setFresh] = useState<ExecutionSummaryFragment[]>([]);
  const connections = useConnectionCount();
  useEffect(() => {
    setLive(new Map());
    setFresh([]);
  }, [wf, status, trigger]);
  useEffect(() => {
    // After a reconnect the feed's snapshots cover running runs only: refetch the list.
    if (connections > 1) void client.invalidateQueries({ queryKey: key });
  }, [connections, client, key]);
  const known = useRef(new Set<string>());
  // The live feed does not say which trigger started a run: with a trigger filter, new
  // runs come with the next refetch, not live.
  const triggerRef = useRef(trigger);
  useEffect(() => {
    triggerRef.current = trigger;
  }, [trigger]);
  const [resubscribe, setResubscribe] = useState(0);
  useEffect(() => {
    const stop = subscribe(RunsFeedDocument, { workflowId: wf }, {
      next: (data) => {
        const ev = data.executionEvents;
        const execution = ev.execution;
        if (!execution) return;
        const current = { ...execution, status: (ev.kind.startsWith("execution.") || ev.kind === "snapshot" ? ev.status : execution.status) as ExecutionStatus };
        setLive((prev) => {
          const next = new Map(prev);
          const before = next.get(current.id);
          if (!before || before.lastSequence <= ev.sequence) next.set(current.id, { ...current, lastSequence: ev.sequence });
          return next;
        });
        if (!known.current.has(current.id) && !triggerRef.current) {
          known.current.add(current.id);
          setFresh((prev) => (prev.some((r) => r.id === current.id) ? prev : [current, ...prev]));
        }
      },
      error: (_message, code) => {
        if (code === "subscriber_too_slow") {
          void client.invalidateQueries({ queryKey: key });
          setResubscribe((n) => n + 1);
        }
      },
    });
    return stop;
  }, [wf, client, key, resubscribe]);

  const rows = useMemo(() => {
    const listed = runs.data?.pages.flatMap((p) => p.executions.edges.map((e) => e.node)) ?? [];
    const ids = new Set(listed.map((r) => r.id));
    for (const r of listed) known.current.add(r.id);
    const newer = fresh.filter((r) => !ids.has(r.id) && (!runs.data || Date.parse(r.createdAt) >= Date.parse(listed[0]?.createdAt ?? "1970-01-01")));
    const merged = [...newer, ...listed].map((r) => {
      const update = live.get(r.id);
      return update && update.lastSequence >= r.lastSequence ? { ...r, ...update, workflow: update.workflow ?? r.workflow } : r;
    });
    return merged.filter((r) => (!status || r.status === status) && (!since || Date.parse(r.createdAt) >= Date.parse(since)));
  }, [runs.data, fresh, live, status, since]);

  const [checked, setChecked] = useState<Set<string>>(new Set());
  const onCheck = useCallback((id: string, on: boolean) => {
    setChecked((prev) => {
      const next = new Set(prev);
      if (on) next.add(id);
      else next.delete(id);
      return next;
    });
  }, []);
  const [bulkMessage, setBulkMessage] = useState<string | null>(null);
  const bulk = async (action: "cancel" | "retry") => {
    const n = checked.size;
    const runsText = n === 1 ? "1 run" : `${n} runs`;
    const ask =
      action === "cancel"
        ? `Cancel ${runsText}? Their running steps are stopped.`
        : `Retry ${runsText}? Each retry is a new run that repeats the steps that did not complete.`;
    if (!window.confirm(ask)) return;
    let ok = 0;
    const failures: string[] = [];
    for (const id of checked) {
      try {
        const data = action === "cancel" ? await request(CancelRunDocument, { id }) : await request(RetryRunDocument, { id });
        const result = "cancelExecution" in data ? data.cancelExecution : data.retryExecution;
        const err = asUserError(result);
        if (err) failures.push(`${shortId(id)}: ${err.message ?? err.__typename}`);
        else ok += 1;
      } catch (e) {
        failures.push(`${shortId(id)}: ${(e as Error).message}`);
      }
    }
    setBulkMessage(`${action === "cancel" ? "Cancelled" : "Retried"} ${ok} of ${checked.size}.${failures.length ? " " + failures.join("; ") : ""}`);
    setChecked(new Set());
    void client.invalidateQueries({ queryKey: ["runs"] });
  };

  const parent = useRef<HTMLDivElement>(null);
  // eslint-disable-next-line react-hooks/incompatible-library -- the virtualiser's own memo
  const virtual = useVirtualizer({
    count: rows.length,
    getScrollElement: () => parent.current,
    estimateSize: () => ROW_HEIGHT,
    overscan: 12,
  });
  const items = virtual.getVirtualItems();
  const last = items.at(-1);
  useEffect(() => {
    if (last && last.index >= rows.length - 20 && runs.hasNextPage && !runs.isFetchingNextPage) void runs.fetchNextPage();
  }, [last, rows.length, runs]);


  return (
    <section className="runs" aria-label="Runs">
      {showFilters && (
        <div className="filters">
          <label>
            Status{" "}
            <select value={status ?? ""} onChange={(e) => setFilter("status", e.target.value)}>
              <option value="">All</option>
              {STATUSES.map((s) => (
                <option key={s} value={s}>
                  {s.toLowerCase()}
                </option>
              ))}
            </select>
          </label>
          {!workflowId && (
            <label>
              Workflow{" "}
              <select value={wf ?? ""} onChange={(e) => setFilter("workflow", e.target.value)}>
                <option value="">All</option>
                {(names.data?.workflows.edges ?? []).map(({ node }) => (
                  <option key={node.id} value={node.id}>
                    {node.name}
                  </option>
                ))}
              </select>
            </label>
          )}
          {(() => {
            const triggers = (names.data?.workflows.edges ?? []).flatMap(({ node }) =>
              (wf ? node.id === wf : true) ? node.triggers.map((t) => ({ ...t, workflow: node.name })) : [],
            );
            return triggers.length > 0 || trigger ? (
              <label>
                Trigger{" "}
                <select value={trigger ?? ""} onChange={(e) => setFilter("trigger", e.target.value)}>
                  <option value="">Any</option>
                  {triggers.map((t) => (
                    <option key={t.id} value={t.id}>
                      {t.workflow}: {t.type.toLowerCase()} {shortId(t.id)}
                    </option>
                  ))}
                </select>
              </label>
            ) : null;
          })()}
          <label>
            Since{" "}
            <input type="datetime-local" value={since ? since.slice(0, 16) : ""} onChange={(e) => setFilter("since", e.target.value ? new Date(e.target.value).toISOString() : "")} />
          </label>
        </div>
      )}
      <div className="bulk" aria-live="polite">
        <span>{checked.size} selected</span>
        <button type="button" disabled={checked.size === 0} onClick={() => void bulk("cancel")}>
          Cancel selected
        </button>
        <button type="button" disabled={checked.size === 0} onClick={() => void bulk("retry")}>
          Retry selected
        </button>
        {bulkMessage && <span className="muted">{bulkMessage}</span>}
      </div>
      {runs.isPending ? (
        <Loading what="runs" />
      ) : runs.error ? (
        <ErrorBox error={runs.error} />
      ) : rows.length === 0 && filtered ? (
        // Runs there may be: the filters hide them all (it used to say "No runs yet").
        <Empty>
          <span data-testid="runs-empty">No run matches these filters.</span>{" "}
          <button type="button" className="link" onClick={() => setFilters({ status: null, workflow: null, trigger: null, since: null })}>
            Clear filters
          </button>
        </Empty>
      ) : rows.length === 0 ? (
        <Empty>
          <span data-testid="runs-empty">No runs yet. Start one from {workflowId ? "this" : "a"} workflow's page.</span>
        </Empty>
      ) : (
        <div className="vtable" role="table" aria-label="Runs" aria-rowcount={rows.length + 1}>
          <div className="vrow vhead" role="row">
            <span role="columnheader" className="c-check">
              <input
                type="checkbox"
                aria-label="Select all runs shown"
                checked={checked.size > 0 && checked.size === rows.length}
                onChange={(e) => setChecked(e.target.checked ? new Set(rows.map((r) => r.id)) : new Set())}
              />
            </span>
            <span role="columnheader" className="c-id">Run</span>
            <span role="columnheader" className="c-wf">Workflow</span>
            <span role="columnheader" className="c-status">Status</span>
            <span role="columnheader" className="c-time">Created</span>
            <span role="columnheader" className="c-dur">Duration</span>
          </div>
          <div ref={parent} className="vbody" data-testid="runs-list">
            <div style={{ height: virtual.getTotalSize(), position: "relative" }}>
              {items.map((item) => {
                const r = rows[item.index]!;
                return <RunRow key={r.id} run={r} start={item.start} checked={checked.has(r.id)} onCheck={onCheck} />;
              })}
            </div>
          </div>
        </div>
      )}
    </section>
  );
}

export function RunsPage() {
  return (
    <div>
      <div className="page-head">
        <h1>Runs</h1>
      </div>
      <RunsList />
    </div>
  );
}
