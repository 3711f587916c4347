-- FlowSync's queue and step-transition SQL: every statement the engine sends.
-- Loaded by flowsync/worker/queue.py; each query starts with a "-- name:" line.
--
-- Rules kept by every statement here:
--  * a job row exists only while its step is queued, waiting on a timer, or running;
--  * claiming sets lease_token; anything that finishes a job presents that token;
--  * locks are taken in one order: jobs, then executions, then step_executions, so that
--    a claim, a completion and a cancel never wait on each other in a circle.

-- name: claim_jobs
-- Claim up to $1 due jobs for worker $3 with a lease of $2 seconds, mark their steps
-- RUNNING and log a step.started event for each, in one statement (one round trip).
WITH picked AS (
    SELECT id FROM jobs
     WHERE lease_token IS NULL AND run_at <= now()
     ORDER BY priority, run_at, id
     LIMIT $1
       FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE jobs AS j
       SET lease_token = gen_random_uuid(),
           lease_expires_at = now() + make_interval(secs => $2),
           attempts = j.attempts + 1,
           worker_id = $3
      FROM picked
     WHERE j.id = picked.id
    RETURNING j.id, j.execution_id, j.step_id, j.lease_token, j.attempts, j.max_attempts
), numbered AS (
    SELECT c.*, row_number() OVER (PARTITION BY c.execution_id ORDER BY c.id) AS n,
           count(*) OVER (PARTITION BY c.execution_id) AS total
      FROM claimed c
), seq AS (
    UPDATE executions AS e
       SET last_sequence = e.last_sequence + t.total,
           status = CASE WHEN e.status = 'PENDING' THEN 'RUNNING' ELSE e.status END,
           started_at = coalesce(e.started_at, now())
      FROM (SELECT DISTINCT execution_id, total FROM numbered) t
     WHERE e.id = t.execution_id
    RETURNING e.id, e.last_sequence - t.total AS base, e.owner_id, e.workflow_id,
              e.workflow_version_id, e.version, e.input, e.trigger_type, e.trigger_data,
              e.started_at, e.status
), steps AS (
    UPDATE step_executions AS s
       SET status = 'RUNNING', attempt = n.attempts, started_at = now(),
           error = NULL
      FROM numbered n
     WHERE s.id = n.step_id
    RETURNING s.id, s.node_id, s.node_type, s.input
), events AS (
    INSERT INTO execution_events
           (execution_id, owner_id, workflow_id, sequence, kind, status, step_id, node_id, attempt)
    SELECT n.execution_id, seq.owner_id, seq.workflow_id, seq.base + n.n, 'step.started',
           'RUNNING', n.step_id, steps.node_id, n.attempts
      FROM numbered n JOIN seq ON seq.id = n.execution_id JOIN steps ON steps.id = n.step_id
    RETURNING execution_id, sequence
)
SELECT n.id AS job_id, n.lease_token, n.attempts, n.max_attempts, n.execution_id, n.step_id,
       steps.node_id, steps.node_type, steps.input AS step_input,
       seq.owner_id, seq.workflow_id, seq.workflow_version_id, seq.version,
       seq.input AS execution_input, seq.trigger_type, seq.trigger_data,
       seq.started_at AS execution_started_at,
       (SELECT count(pg_notify('flowsync_events', ev.execution_id::text || ':' || ev.sequence))
          FROM (SELECT execution_id, max(sequence) AS sequence FROM events
                 GROUP BY execution_id) ev) AS notified
  FROM numbered n JOIN seq ON seq.id = n.execution_id JOIN steps ON steps.id = n.step_id
 ORDER BY n.id;

-- name: release_job
-- Give a job back unfinished (a worker shutting down): it is claimable again at once,
-- and the attempt it used is returned. The step goes back to QUEUED.
WITH j AS (
    UPDATE jobs SET lease_token = NULL, lease_expires_at = NULL, worker_id = NULL,
                    attempts = greatest(attempts - 1, 0)
     WHERE id = $1 AND lease_token = $2
    RETURNING step_id
)
UPDATE step_executions SET status = 'QUEUED', started_at = NULL
 WHERE id = (SELECT step_id FROM j)
RETURNING id;

-- name: extend_leases
-- Heartbeat: extend the leases a worker still holds; returns the tokens still valid.
UPDATE jobs SET lease_expires_at = now() + make_interval(secs => $2)
 WHERE lease_token = ANY($1::uuid[])
RETURNING lease_token;

-- name: reclaim_expired
-- Jobs whose lease ran out (their worker died or hung) become claimable again; the
-- next claim counts another attempt.
UPDATE jobs SET lease_token = NULL, lease_expires_at = NULL, worker_id = NULL
 WHERE id IN (SELECT id FROM jobs
               WHERE lease_token IS NOT NULL AND lease_expires_at < now()
               ORDER BY lease_expires_at
               LIMIT 1000
                 FOR UPDATE SKIP LOCKED)
RETURNING id, execution_id, step_id, attempts;

-- name: take_job
-- First statement of a step transition: remove the job if the lease is still ours, then
-- lock its execution. No row: the lease was lost (expired and taken over, or the run
-- was cancelled), and the caller must not write anything.
WITH j AS (
    DELETE FROM jobs WHERE id = $1 AND lease_token = $2
    RETURNING execution_id, step_id
)
SELECT e.id, e.status, e.last_sequence, e.owner_id, e.workflow_id, e.workflow_version_id,
       (SELECT step_id FROM j) AS step_id
  FROM executions e
 WHERE e.id = (SELECT execution_id FROM j)
   FOR UPDATE OF e;

-- name: lock_job
-- Like take_job, but keeps the job (a timer or a retry will run it again).
WITH j AS (
    SELECT execution_id, step_id FROM jobs WHERE id = $1 AND lease_token = $2 FOR UPDATE
)
SELECT e.id, e.status, e.last_sequence, e.owner_id, e.workflow_id, e.workflow_version_id,
       (SELECT step_id FROM j) AS step_id
  FROM executions e
 WHERE e.id = (SELECT execution_id FROM j)
   FOR UPDATE OF e;

-- name: lock_execution
-- Lock an execution for a transition that is not a job's (start, cancel).
SELECT id, status, last_sequence, owner_id, workflow_id, workflow_version_id
  FROM executions WHERE id = $1 FOR UPDATE;

-- name: step_states
-- Every step of an execution with what the graph rules need (a condition's result).
SELECT id, node_id, status, output -> 'result' AS branch
  FROM step_executions WHERE execution_id = $1;

-- name: step_outputs
-- The context of expressions: each completed step's output.
SELECT node_id, status, output
  FROM step_executions WHERE execution_id = $1 AND status = 'COMPLETED';

-- name: set_steps
-- Apply a batch of step transitions. Arrays, by position: step id, status, output,
-- error, input; timestamps follow the status.
UPDATE step_executions AS s
   SET status = u.status,
       output = coalesce(u.output, s.output),
       error = u.error,
       input = coalesce(u.input, s.input),
       queued_at = CASE WHEN u.status = 'QUEUED' THEN now()
                        WHEN u.status = 'RUNNING' THEN coalesce(s.queued_at, now())
                        ELSE s.queued_at END,
       started_at = CASE WHEN u.status = 'RUNNING' THEN now()
                         WHEN u.status = 'QUEUED' THEN NULL ELSE s.started_at END,
       attempt = CASE WHEN u.status = 'RUNNING' THEN s.attempt + 1 ELSE s.attempt END,
       finished_at = CASE WHEN u.status IN ('COMPLETED','FAILED','SKIPPED','CANCELLED')
                          THEN now() ELSE s.finished_at END
  FROM unnest($1::uuid[], $2::text[], $3::jsonb[], $4::jsonb[], $5::jsonb[])
       AS u(id, status, output, error, input)
 WHERE s.id = u.id;

-- name: insert_jobs
-- Enqueue steps. A row with a lease token is handed to worker $7 already claimed (the
-- worker that finished the previous step runs it without a trip through the queue).
INSERT INTO jobs (execution_id, step_id, run_at, max_attempts, lease_token,
                  lease_expires_at, attempts, worker_id)
SELECT $1, u.step_id, coalesce(u.run_at, now()), u.max_attempts, u.lease_token,
       CASE WHEN u.lease_token IS NULL THEN NULL ELSE now() + make_interval(secs => $6) END,
       CASE WHEN u.lease_token IS NULL THEN 0 ELSE 1 END,
       CASE WHEN u.lease_token IS NULL THEN NULL ELSE $7 END
  FROM unnest($2::uuid[], $3::timestamptz[], $4::int[], $5::uuid[])
       AS u(step_id, run_at, max_attempts, lease_token)
RETURNING id, step_id, lease_token, attempts, max_attempts;

-- name: requeue_job
-- Keep a job for later: a durable timer or a retry after backoff. The lease is dropped;
-- a timer ($4 false) gives back the attempt its claim counted.
UPDATE jobs SET run_at = $3, lease_token = NULL, lease_expires_at = NULL, worker_id = NULL,
                attempts = CASE WHEN $4 THEN attempts ELSE greatest(attempts - 1, 0) END
 WHERE id = $1 AND lease_token = $2;

-- name: drop_jobs
-- Remove every job of an execution (cancel, or failure of a step for good).
DELETE FROM jobs WHERE execution_id = $1 RETURNING step_id;

-- name: append_events
-- Append events with consecutive sequence numbers after $2, bump the execution's
-- counter and apply its status change, then NOTIFY the newest sequence (delivered at
-- commit, never on rollback). Arrays by position: kind, status, step id, node id,
-- attempt, data.
WITH ev AS (
    INSERT INTO execution_events
           (execution_id, owner_id, workflow_id, sequence, kind, status, step_id, node_id,
            attempt, data)
    SELECT $1, $3, $4, $2 + u.ord, u.kind, u.status, u.step_id, u.node_id, u.attempt, u.data
      FROM unnest($5::text[], $6::text[], $7::uuid[], $8::text[], $9::int[], $10::jsonb[])
           WITH ORDINALITY AS u(kind, status, step_id, node_id, attempt, data, ord)
    RETURNING sequence
), ex AS (
    UPDATE executions
       SET last_sequence = $2 + cardinality($5::text[]),
           status = coalesce($11, status),
           output = CASE WHEN $11 IS NULL THEN output ELSE $12::jsonb END,
           error = CASE WHEN $11 IS NULL THEN error ELSE $13::jsonb END,
           started_at = CASE WHEN $11 = 'RUNNING' THEN coalesce(started_at, now())
                             ELSE started_at END,
           finished_at = CASE WHEN $11 IN ('COMPLETED','FAILED','CANCELLED') THEN now()
                              ELSE finished_at END
     WHERE id = $1
    RETURNING last_sequence
)
SELECT pg_notify('flowsync_events', $1::text || ':' || ex.last_sequence) FROM ex;

-- name: notify_jobs
-- Wake idle workers: new jobs are claimable. Payloads carry nothing; the table is the truth.
SELECT pg_notify('flowsync_jobs', '');

-- name: queue_depth
SELECT count(*) FROM jobs WHERE lease_token IS NULL;

-- name: insert_execution
-- A new execution, or nothing when the owner already used this idempotency key.
INSERT INTO executions (owner_id, workflow_id, workflow_version_id, version, status, input,
                        idempotency_key, trigger_id, trigger_type, trigger_data, retry_of_id,
                        started_at)
VALUES ($1, $2, $3, $4, 'RUNNING', $5, $6, $7, $8, $9, $10, now())
ON CONFLICT (owner_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
RETURNING id;

-- name: execution_by_key
SELECT id FROM executions WHERE owner_id = $1 AND idempotency_key = $2;

-- name: insert_steps
-- One PENDING step row per node, created with the execution.
INSERT INTO step_executions (execution_id, node_id, node_type)
SELECT $1, u.node_id, u.node_type FROM unnest($2::text[], $3::text[]) AS u(node_id, node_type)
RETURNING id, node_id, status, NULL::jsonb AS branch;

-- name: workflow_definition
SELECT definition FROM workflow_versions WHERE id = $1;
