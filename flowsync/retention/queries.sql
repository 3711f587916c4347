-- Retention's SQL. Loaded by flowsync/retention/prune.py; each query starts with a
-- "-- name:" line.
--
-- Every delete takes at most $2 rows, oldest first, through an index on its age; each
-- call is one short transaction. Only finished runs are touched, and a run whose row is
-- locked (being retried, redriven or read for update) is skipped, never waited for.

-- name: lock
-- One pruner at a time, for the whole pass (a session lock: the pass is many short
-- transactions). false: another process prunes now.
SELECT pg_try_advisory_lock(hashtext('flowsync.retention'));

-- name: unlock
SELECT pg_advisory_unlock(hashtext('flowsync.retention'));

-- name: lock_in_transaction
-- The same lock, held by a transaction left open on a guard connection for the pass:
-- behind a transaction pooler a session lock could be taken on one server connection
-- and released on another (and never released). It conflicts with the session lock.
SELECT pg_try_advisory_xact_lock(hashtext('flowsync.retention'));

-- name: now
SELECT now();

-- name: prune_executions
-- Up to $2 runs that finished before $1, with everything that cascades from them (steps,
-- events, dead letters), and how many of each went. A run is kept while it still has a
-- job (a cancel's jobs not swept yet: deleting it would lock queue rows) or a dead letter
-- that its own window keeps (made at or after $3; $3 NULL: dead letters are kept forever).
-- The counts read the statement's snapshot, taken before the cascades ran.
WITH doomed AS (
    SELECT e.id
      FROM executions e
     WHERE e.status IN ('COMPLETED', 'FAILED', 'CANCELLED') AND e.finished_at < $1
       AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.execution_id = e.id)
       AND NOT EXISTS (SELECT 1 FROM dead_letters d
                        WHERE d.execution_id = e.id
                          AND ($3::timestamptz IS NULL OR d.created_at >= $3))
     ORDER BY e.finished_at
     LIMIT $2
       FOR UPDATE OF e SKIP LOCKED
), gone AS (
    DELETE FROM executions WHERE id IN (SELECT id FROM doomed) RETURNING id
)
SELECT (SELECT count(*) FROM gone) AS executions,
       (SELECT count(*) FROM step_executions
         WHERE execution_id IN (SELECT id FROM gone)) AS steps,
       (SELECT count(*) FROM execution_events
         WHERE execution_id IN (SELECT id FROM gone)) AS events,
       (SELECT count(*) FROM dead_letters
         WHERE execution_id IN (SELECT id FROM gone)) AS dead_letters;

-- name: count_executions
-- What prune_executions would delete with $1 and $3 there as $1 and $2 here, all
-- batches together.
WITH doomed AS (
    SELECT e.id
      FROM executions e
     WHERE e.status IN ('COMPLETED', 'FAILED', 'CANCELLED') AND e.finished_at < $1
       AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.execution_id = e.id)
       AND NOT EXISTS (SELECT 1 FROM dead_letters d
                        WHERE d.execution_id = e.id
                          AND ($2::timestamptz IS NULL OR d.created_at >= $2))
)
SELECT (SELECT count(*) FROM doomed) AS executions,
       (SELECT count(*) FROM step_executions
         WHERE execution_id IN (SELECT id FROM doomed)) AS steps,
       (SELECT count(*) FROM execution_events
         WHERE execution_id IN (SELECT id FROM doomed)) AS events,
       (SELECT count(*) FROM dead_letters
         WHERE execution_id IN (SELECT id FROM doomed)) AS dead_letters;

-- name: prune_dead_letters
-- Up to $2 dead letters made before $1 (a row being redriven is skipped).
DELETE FROM dead_letters
 WHERE id IN (SELECT id FROM dead_letters WHERE created_at < $1
               ORDER BY created_at LIMIT $2
                 FOR UPDATE SKIP LOCKED);

-- name: count_dead_letters
SELECT count(*) FROM dead_letters WHERE created_at < $1;

-- name: prune_audit
-- Up to $2 audit entries written before $1.
DELETE FROM audit_log
 WHERE id IN (SELECT id FROM audit_log WHERE at < $1 ORDER BY at LIMIT $2);

-- name: count_audit
SELECT count(*) FROM audit_log WHERE at < $1;

-- name: prune_signatures
-- Up to $2 remembered webhook signatures that expired before $1 (a replay of one would
-- be refused as stale anyway; see services/webhooks.py).
DELETE FROM webhook_signatures w
 USING (SELECT trigger_id, signature FROM webhook_signatures
         WHERE expires_at < $1 ORDER BY expires_at LIMIT $2) old
 WHERE w.trigger_id = old.trigger_id AND w.signature = old.signature;

-- name: count_signatures
SELECT count(*) FROM webhook_signatures WHERE expires_at < $1;
