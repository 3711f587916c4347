import { useEffect, useState } from "react";
import { Link } from "react-router";
import { Chart } from "../../components/Chart";
import { Empty, ErrorBox, Loading } from "../../components/States";
import { StatusBadge } from "../../components/Status";
import { Time } from "../../components/Time";
import { OverviewDocument, QueueLiveDocument, type QueueLiveSubscription } from "../../gql/graphql";
import { errorText } from "../../lib/format";
import { subscribe } from "../../lib/live";
import { useGraphQL } from "../../lib/query";
import { shortId } from "../../lib/ids";
import { TableScroll } from "../../components/TableScroll";
import { Id } from "../../components/Id";

type Queue = QueueLiveSubscription["queueStatsUpdated"];

function Gauge({ label, value, testId }: { label: string; value: number | string; testId?: string }) {
  return (
    <div className="gauge" data-testid={testId}>
      <span className="gauge-value">{value}</span>
      <span className="gauge-label">{label}</span>
    </div>
  );
}

export function OverviewPage() {
  const overview = useGraphQL(["overview"], OverviewDocument, {}, { refetchInterval: 10_000 });
  const [queue, setQueue] = useState<Queue | null>(null);
  useEffect(() => subscribe(QueueLiveDocument, {}, { next: (d) => setQueue(d.queueStatsUpdated) }), []);
  if (overview.isPending) return <Loading what="the overview" />;
  if (overview.error) return <ErrorBox error={overview.error} />;
  const data = overview.data;
  const q = queue ?? data.queueStats;
  const metrics = data.metrics;
  const byStatus: Record<string, number> = Object.fromEntries(metrics.executionsByStatus.map((c) => [c.status, c.count]));
  return (
    <div className="overview">
      <div className="page-head">
        <h1>Overview</h1>
        <span className={`health health-${data.health.status}`} data-testid="health">
          Health: {data.health.status} (database {data.health.database}, live events {data.health.eventsListener})
        </span>
      </div>
      <section aria-labelledby="queue-title" className="card">
        <h2 id="queue-title">Queue {q.sheddingLoad && <span className="badge" data-status="FAILED">shedding load</span>}</h2>
        <div className="gauges">
          <Gauge label="queued (due)" value={q.queued} testId="queue-queued" />
          <Gauge label="scheduled" value={q.scheduled} />
          <Gauge label="running" value={q.running} />
          <Gauge label="dead letters" value={q.deadLetters} />
          <Gauge label={`global depth / ${q.maxDepth}`} value={q.globalDepth} />
        </div>
      </section>
      <section aria-labelledby="status-title" className="card">
        <h2 id="status-title">Runs in the last hour</h2>
        <div className="gauges">
          {["PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED"].map((s) => (
            <Link key={s} to={`/runs?status=${s}`} className="gauge-link">
              <Gauge label={s.toLowerCase()} value={byStatus[s] ?? 0} />
            </Link>
          ))}
          <Gauge label="steps in the last minute" value={metrics.stepsCompletedLastMinute} />
        </div>
      </section>
      <section aria-labelledby="trends-title" className="card">
        <h2 id="trends-title">The last hour{data.series.sampled ? " (sampled)" : ""}</h2>
        <div className="charts">
          <Chart
            title={`Throughput per ${data.series.bucketSeconds / 60} min`}
            unit="count"
            times={data.series.buckets.map((b) => b.start)}
            series={[
              { name: "steps completed", color: "var(--st-running)", values: data.series.buckets.map((b) => b.stepsCompleted) },
              { name: "runs completed", color: "var(--st-completed)", values: data.series.buckets.map((b) => b.executionsCompleted) },
              { name: "runs failed", color: "var(--st-failed)", values: data.series.buckets.map((b) => b.executionsFailed) },
            ]}
          />
          <Chart
            title="Step run time"
            unit="ms"
            times={data.series.buckets.map((b) => b.start)}
            series={[
              { name: "p50", color: "var(--st-completed)", values: data.series.buckets.map((b) => b.stepDurationP50Ms ?? null) },
              { name: "p95", color: "var(--st-waiting)", values: data.series.buckets.map((b) => b.stepDurationP95Ms ?? null) },
            ]}
          />
        </div>
      </section>
      <section aria-labelledby="workers-title" className="card">
        <h2 id="workers-title">Workers</h2>
        {data.workers.length === 0 ? (
          <Empty>No worker has reported in the last ten minutes: start one with <code>flowsync worker</code>.</Empty>
        ) : (
          <TableScroll label="Workers">
          <table className="table" aria-label="Workers">
            <thead>
              <tr>
                <th scope="col">Worker</th>
                <th scope="col">State</th>
                <th scope="col">Steps running</th>
                <th scope="col">Last heartbeat</th>
                <th scope="col">Started</th>
              </tr>
            </thead>
            <tbody>
              {data.workers.map((w) => (
                <tr key={w.id} data-alive={w.alive}>
                  <td>
                    <Id id={`${w.hostname}:${w.pid}`} full />
                  </td>
                  <td>
                    <StatusBadge status={w.alive ? "COMPLETED" : "FAILED"} label={w.alive ? "alive" : "gone"} />
                  </td>
                  <td>
                    {w.running} / {w.concurrency}
                  </td>
                  <td>
                    <Time iso={w.lastHeartbeatAt} />
                  </td>
                  <td>
                    <Time iso={w.startedAt} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          </TableScroll>
        )}
      </section>
      <section aria-labelledby="failures-title" className="card">
        <h2 id="failures-title">Recent failures</h2>
        {data.failures.edges.length === 0 ? (
          <Empty>No failed runs.</Empty>
        ) : (
          <ul className="list">
            {data.failures.edges.map(({ node }) => (
              <li key={node.id}>
                <Link to={`/runs/${node.id}`} className="mono">
                  {shortId(node.id)}
                </Link>{" "}
                {node.workflow?.name ?? "deleted workflow"} <StatusBadge status={node.status} /> <Time iso={node.finishedAt ?? node.createdAt} />
                <div className="error-text">{errorText(node.error)}</div>
              </li>
            ))}
          </ul>
        )}
      </section>
    </div>
  );
}
