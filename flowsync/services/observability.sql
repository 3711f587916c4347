-- The observability service's reads. Each is bounded by an index range and a LIMIT, so
-- that a metrics snapshot costs the same however long an owner's history is. Each query
-- starts with a "-- name:" line.

-- name: executions_by_status
-- The caller's executions created in the window ($2 seconds), newest first, at most $3 of
-- them (ix_executions_owner_page), counted by status.
SELECT status, count(*)::int AS n
  FROM (SELECT status
          FROM executions
         WHERE owner_id = $1 AND created_at >= now() - make_interval(secs => $2)
         ORDER BY created_at DESC
         LIMIT $3) recent
 GROUP BY status;

-- name: step_latency
-- Run time (started → finished) and queue wait (queued → started) percentiles per node
-- type, over the completed steps of the caller's newest executions created in the window
-- (at most $3 executions through ix_executions_owner_page, at most $4 steps through
-- uq_step_executions_node). Steps reused by a retry ran in another execution: left out.
SELECT node_type,
       count(*)::int AS n,
       percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY run_ms) AS run,
       max(run_ms) AS run_max,
       percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY wait_ms)
           FILTER (WHERE wait_ms IS NOT NULL) AS wait
  FROM (SELECT s.node_type,
               extract(epoch FROM s.finished_at - s.started_at) * 1000 AS run_ms,
               extract(epoch FROM s.started_at - s.queued_at) * 1000 AS wait_ms
          FROM (SELECT id
                  FROM executions
                 WHERE owner_id = $1 AND created_at >= now() - make_interval(secs => $2)
                 ORDER BY created_at DESC
                 LIMIT $3) e
          JOIN step_executions s ON s.execution_id = e.id
         WHERE s.status = 'COMPLETED'
           AND s.started_at IS NOT NULL
           AND s.finished_at IS NOT NULL
           AND s.reused_from_id IS NULL
         LIMIT $4) steps
 GROUP BY node_type
 ORDER BY node_type;

-- name: steps_completed_since
-- The caller's steps completed in the last $2 seconds, from the event log. The inner
-- lookup walks ix_execution_events_owner backwards from the newest event and stops at the
-- first one older than the window, so both scans read only the window's events.
SELECT count(*)::int
  FROM execution_events
 WHERE owner_id = $1
   AND kind = 'step.completed'
   AND id > coalesce((SELECT id
                        FROM execution_events
                       WHERE owner_id = $1 AND at < now() - make_interval(secs => $2)
                       ORDER BY id DESC
                       LIMIT 1), 0);

-- name: global_depth
-- Jobs due now and not claimed, all owners, counted up to $1: queue_depth_bounded of
-- flowsync/worker/queries.sql (per priority, so that the timers are never read).
WITH RECURSIVE p(priority) AS (
    SELECT min(priority) FROM jobs WHERE lease_token IS NULL
    UNION ALL
    SELECT (SELECT min(j.priority) FROM jobs j
             WHERE j.lease_token IS NULL AND j.priority > p.priority)
      FROM p WHERE p.priority IS NOT NULL
)
SELECT count(*)::int FROM (
    SELECT 1 FROM p CROSS JOIN LATERAL (
        SELECT 1 FROM jobs j
         WHERE j.lease_token IS NULL AND j.priority = p.priority AND j.run_at <= now()
         LIMIT $1
    ) t
     LIMIT $1
) due;

-- name: schema_revision
-- Where the database's schema is, and its compatibility mark (flowsync.db.compat), for
-- the health check's readiness probe.
SELECT version_num,
       obj_description('alembic_version'::regclass, 'pg_class') AS mark
  FROM alembic_version;

-- name: metrics_series
-- The caller's executions created since $2 (the first bucket's start), newest first, at
-- most $4 of them (ix_executions_owner_page), and their completed steps, at most $5
-- (uq_step_executions_node), counted per bucket of $3 seconds from $2: executions by
-- creation (started), by finish (completed, failed); steps by finish, with run-time
-- percentiles. Steps reused by a retry ran in another execution: left out.
WITH recent AS (
    SELECT id, status, created_at, finished_at
      FROM executions
     WHERE owner_id = $1 AND created_at >= $2
     ORDER BY created_at DESC
     LIMIT $4
), done AS (
    SELECT s.finished_at, extract(epoch FROM s.finished_at - s.started_at) * 1000 AS run_ms
      FROM recent e
      JOIN step_executions s ON s.execution_id = e.id
     WHERE s.status = 'COMPLETED'
       AND s.started_at IS NOT NULL
       AND s.finished_at IS NOT NULL
       AND s.reused_from_id IS NULL
     LIMIT $5
), marks AS (
    SELECT created_at AS at, 1 AS started, 0 AS completed, 0 AS failed, NULL::float8 AS run_ms
      FROM recent
    UNION ALL
    SELECT finished_at, 0, (status = 'COMPLETED')::int, (status = 'FAILED')::int, NULL
      FROM recent
     WHERE status IN ('COMPLETED', 'FAILED') AND finished_at IS NOT NULL
    UNION ALL
    SELECT finished_at, 0, 0, 0, run_ms
      FROM done
)
SELECT floor(extract(epoch FROM at - $2) / $3)::int AS bucket,
       sum(started)::int AS started,
       sum(completed)::int AS completed,
       sum(failed)::int AS failed,
       count(run_ms)::int AS steps,
       percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (ORDER BY run_ms)
           FILTER (WHERE run_ms IS NOT NULL) AS run
  FROM marks
 GROUP BY 1
 ORDER BY 1;
