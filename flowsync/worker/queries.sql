-- FlowSync's queue and step-transition SQL: every statement the engine sends.
-- Loaded by flowsync/worker/queue.py; each query starts with a "-- name:" line.
--
-- Rules kept by every statement here:
--  * a job row exists only while its step is queued, waiting on a timer, or running;
--  * claiming sets lease_token; anything that finishes a job presents that token;
--  * locks are taken in one order: jobs, then executions, then step_executions, so that
--    a claim, a completion and a cancel never wait on each other in a circle.

-- name: claim_jobs
-- Claim up to $1 due jobs for worker $3 with a lease of $2 seconds, with what their steps
-- need to run, in one statement. Only the jobs are written: no lock on a run, so a claim
-- never waits for another transition of the same run. The step's start (RUNNING, its
-- attempt and a step.started event, at `claimed_at`) is written by its worker with the
-- step's outcome, or by itself (start_step) once the step has run for a moment.
-- A job that is its run's only one (so its step is the only one queued or running: a
-- chain's first step, a join's, a timer's) comes with the run's newest sequence and its
-- steps, read in this statement's snapshot: its worker can then finish it with one
-- guarded statement instead of a transaction under the run's lock (see complete).
-- Its cost does not grow with the backlog: the due jobs are read per priority (the
-- priorities in use found by a loose scan of ix_jobs_claim, as next_due does), so that
-- run_at bounds each index scan and a claim that finds too few due jobs stops at the first
-- timer instead of reading every one; the picked rows are handed to the update as an
-- array of their addresses (ctid: a Tid Scan, no descent of the primary key per job,
-- which a backlog of a million jobs makes a level deeper), whatever the planner guesses
-- of LIMIT $1 (a generic plan guesses a tenth of the table, and joined the picked rows
-- to every job by hash). The rows stay locked from the pick to the update, so their
-- addresses cannot change in between; the ids are matched too, as a guard.
WITH RECURSIVE p(priority) AS (
    SELECT min(priority) FROM jobs WHERE lease_token IS NULL
    UNION ALL
    SELECT (SELECT min(j.priority) FROM jobs j
             WHERE j.lease_token IS NULL AND j.priority > p.priority)
      FROM p WHERE p.priority IS NOT NULL
), picked AS (
    -- The nested loop reads the priorities in order, and each one's jobs only as far as
    -- the limit needs them: only the jobs handed on are locked.
    SELECT t.id, t.ctid FROM p CROSS JOIN LATERAL (
        SELECT j.id, j.ctid FROM jobs j
         WHERE j.lease_token IS NULL AND j.priority = p.priority AND j.run_at <= now()
         ORDER BY j.run_at, j.id
         LIMIT $1
           FOR UPDATE SKIP LOCKED
    ) t
     LIMIT $1
), claimed AS (
    UPDATE jobs AS j
       SET lease_token = gen_random_uuid(),
           lease_expires_at = now() + make_interval(secs => $2),
           attempts = j.attempts + 1,
           worker_id = $3
     WHERE j.ctid = ANY(ARRAY(SELECT ctid FROM picked)) AND j.id = ANY(ARRAY(SELECT id FROM picked))
    RETURNING j.id, j.execution_id, j.step_id, j.lease_token, j.attempts, j.max_attempts,
              j.run_at
)
SELECT c.id AS job_id, c.lease_token, c.attempts, c.max_attempts, c.execution_id, c.step_id,
       s.node_id, s.node_type, s.input AS step_input,
       e.owner_id, e.workflow_id, e.workflow_version_id, e.version,
       e.input AS execution_input, e.trigger_type, e.trigger_data,
       e.started_at AS execution_started_at, now() AS claimed_at,
       e.trace_context, c.run_at AS available_at,
       e.last_sequence AS known_sequence, k.ids, k.node_ids, k.statuses, k.branches
  FROM claimed c
  JOIN step_executions s ON s.id = c.step_id
  JOIN executions e ON e.id = c.execution_id
  CROSS JOIN LATERAL (
      SELECT array_agg(x.id) AS ids, array_agg(x.node_id) AS node_ids,
             array_agg(x.status) AS statuses, array_agg(CASE WHEN x.node_type IN ('wait', 'approval') THEN x.input -> 'outcome' ELSE x.output -> 'result' END) AS branches
        FROM step_executions x
       WHERE x.execution_id = c.execution_id AND e.status = 'RUNNING'
         AND NOT EXISTS (SELECT 1 FROM jobs o
                          WHERE o.execution_id = c.execution_id AND o.id <> c.id)
  ) k
 ORDER BY c.id;

-- name: start_step
-- A claimed step that is still running is marked RUNNING, with its attempt ($5) and its
-- start ($6, the claim's time) by worker $7 on host $8 (on the step, and as the data of
-- its step.started event), if job $1 is still leased with token $2 for step $3 of
-- execution $4. Job, then run, then step: the lock order of every transition. No row
-- written (started = 0): the lease was lost or the run was cancelled.
-- `sequence`: the run's newest sequence, this event's.
WITH j AS (
    SELECT id FROM jobs WHERE id = $1 AND lease_token = $2 AND step_id = $3
       FOR NO KEY UPDATE
), e AS (
    UPDATE executions SET last_sequence = last_sequence + 1
     WHERE id = $4 AND status = 'RUNNING' AND EXISTS (SELECT 1 FROM j)
    RETURNING id, owner_id, workflow_id, last_sequence
), s AS (
    UPDATE step_executions
       SET status = 'RUNNING', attempt = $5, started_at = $6, error = NULL,
           queued_at = coalesce(queued_at, $6),
           worker_id = coalesce($7, worker_id), worker_host = coalesce($8, worker_host)
     WHERE id = $3 AND EXISTS (SELECT 1 FROM e)
    RETURNING node_id
), ev AS (
    INSERT INTO execution_events
           (execution_id, owner_id, workflow_id, sequence, kind, status, step_id, node_id,
            attempt, data, at)
    SELECT e.id, e.owner_id, e.workflow_id, e.last_sequence, 'step.started', 'RUNNING', $3,
           s.node_id, $5, CASE WHEN $7::text IS NOT NULL
                THEN jsonb_build_object('workerId', $7::text, 'workerHost', $8::text) END, $6
      FROM e, s
    RETURNING execution_id, sequence, owner_id
)
SELECT (SELECT count(*) FROM ev) AS started, (SELECT max(sequence) FROM ev) AS sequence,
       (SELECT count(pg_notify('flowsync_events', ev.execution_id::text || ':' || ev.sequence))
          FROM ev
         WHERE EXISTS (SELECT 1 FROM event_watchers w
                        WHERE w.owner_id = ev.owner_id AND w.expires_at > now())) AS notified;

-- name: release_jobs
-- Give back jobs $1 (leases $2) unfinished: a worker's steps stopped by its shutdown, or
-- kept in its backlog and never started (see runner.Backlog). They are claimable at
-- once, the attempt they used is returned, their steps are QUEUED again (a kept step's
-- still is) and idle workers are woken. Returns how many were given back.
WITH j AS (
    UPDATE jobs SET lease_token = NULL, lease_expires_at = NULL, worker_id = NULL,
                    attempts = greatest(attempts - 1, 0)
     WHERE (id, lease_token) IN (SELECT * FROM unnest($1::bigint[], $2::uuid[]))
    RETURNING id, step_id
), s AS (
    UPDATE step_executions SET status = 'QUEUED', started_at = NULL
     WHERE id IN (SELECT step_id FROM j) AND (status <> 'QUEUED' OR started_at IS NOT NULL)
)
SELECT count(*) AS released,
       CASE WHEN count(*) > 0 THEN pg_notify('flowsync_jobs', '') END AS notified
  FROM j;

-- name: extend_leases
-- Heartbeat: extend the leases a worker still holds; returns the tokens still valid.
-- It never waits for a row lock: a job whose row is locked (its outcome being written,
-- perhaps waiting on a run another session holds) is skipped, not extended this time,
-- and returned as still valid if its token was there when the statement began (a lost
-- lease is noticed by the next heartbeat, or by the write itself). One job held up
-- thus holds up no other job's lease.
WITH extended AS (
    UPDATE jobs SET lease_expires_at = now() + make_interval(secs => $2)
     WHERE id IN (SELECT id FROM jobs WHERE lease_token = ANY($1::uuid[])
                     FOR NO KEY UPDATE SKIP LOCKED)
    RETURNING id, lease_token
)
SELECT lease_token FROM extended
UNION ALL
SELECT lease_token FROM jobs
 WHERE lease_token = ANY($1::uuid[]) AND id NOT IN (SELECT id FROM extended);

-- name: reclaim_expired
-- Jobs whose lease ran out (their worker died or hung) become claimable again; the
-- next claim counts another attempt. A job of a run that has ended is removed instead
-- (one that Orchestrator.sweep missed, its connection lost).
WITH expired AS (
    SELECT j.id, e.status = 'RUNNING' AS live
      FROM jobs j JOIN executions e ON e.id = j.execution_id
     WHERE j.lease_token IS NOT NULL AND j.lease_expires_at < now()
     ORDER BY j.lease_expires_at
     LIMIT 1000
       FOR UPDATE OF j SKIP LOCKED
), gone AS (
    DELETE FROM jobs WHERE id IN (SELECT id FROM expired WHERE NOT live)
)
UPDATE jobs SET lease_token = NULL, lease_expires_at = NULL, worker_id = NULL
 WHERE id IN (SELECT id FROM expired WHERE live)
RETURNING id, execution_id, step_id, attempts;

-- name: take_job
-- First statement of a step transition: remove the job if the lease is still ours, lock
-- its execution, and read every step's state. No row: the lease was lost (expired and
-- taken over, or the run was cancelled), and the caller must write nothing. A job of a
-- run that has ended is never finished (one a cancel could not remove yet, see
-- Orchestrator.sweep).
-- The steps are read with the statement's snapshot; if another transition of the run
-- committed while this one waited for the lock, `seen_sequence` (snapshot) differs from
-- `last_sequence` (locked row) and the caller reads the steps again (step_states).
WITH j AS (
    DELETE FROM jobs WHERE id = $1 AND lease_token = $2 AND step_id = $3
    RETURNING execution_id, step_id
)
SELECT e.id, e.status, e.last_sequence, e.owner_id, e.workflow_id, e.workflow_version_id,
       (SELECT step_id FROM j) AS step_id,
       (SELECT x.last_sequence FROM executions x WHERE x.id = e.id) AS seen_sequence,
       s.ids, s.node_ids, s.statuses, s.branches
  FROM executions e,
       LATERAL (SELECT array_agg(id) AS ids, array_agg(node_id) AS node_ids,
                       array_agg(status) AS statuses, array_agg(CASE WHEN node_type IN ('wait', 'approval') THEN input -> 'outcome' ELSE output -> 'result' END)
                         AS branches
                  FROM step_executions WHERE execution_id = e.id) s
 WHERE e.id = (SELECT execution_id FROM j) AND e.status = 'RUNNING'
   FOR NO KEY UPDATE OF e;

-- name: hold_job
-- Like take_job, but the job row is locked, not deleted: write_plan then either hands
-- it on to the next step of a chain (one in-place update instead of a delete and an
-- insert) or deletes it. Every statement that finishes a job also checks its step ($3):
-- when a commit's reply was lost and the worker retries, a job already handed on to the
-- next step must not be finished a second time (the retry gets no row: lease lost).
-- The steps are read with the statement's snapshot; if another transition of the run
-- committed while this one waited for the lock, `seen_sequence` (snapshot) differs from
-- `last_sequence` (locked row) and the caller reads the steps again (step_states).
WITH j AS (
    SELECT execution_id, step_id FROM jobs WHERE id = $1 AND lease_token = $2 AND step_id = $3
       FOR NO KEY UPDATE
)
SELECT e.id, e.status, e.last_sequence, e.owner_id, e.workflow_id, e.workflow_version_id,
       (SELECT step_id FROM j) AS step_id,
       (SELECT x.last_sequence FROM executions x WHERE x.id = e.id) AS seen_sequence,
       s.ids, s.node_ids, s.statuses, s.branches
  FROM executions e,
       LATERAL (SELECT array_agg(id) AS ids, array_agg(node_id) AS node_ids,
                       array_agg(status) AS statuses, array_agg(CASE WHEN node_type IN ('wait', 'approval') THEN input -> 'outcome' ELSE output -> 'result' END)
                         AS branches
                  FROM step_executions WHERE execution_id = e.id) s
 WHERE e.id = (SELECT execution_id FROM j) AND e.status = 'RUNNING'
   FOR NO KEY UPDATE OF e;

-- name: lock_job
-- Like take_job, but keeps the job (a timer or a retry will run it again).
WITH j AS (
    SELECT execution_id, step_id FROM jobs
     WHERE id = $1 AND lease_token = $2 AND step_id = $3
       FOR NO KEY UPDATE
)
SELECT e.id, e.status, e.last_sequence, e.owner_id, e.workflow_id, e.workflow_version_id,
       (SELECT step_id FROM j) AS step_id
  FROM executions e
 WHERE e.id = (SELECT execution_id FROM j) AND e.status = 'RUNNING'
   FOR NO KEY UPDATE OF e;

-- name: run_steps
-- A run's newest sequence and its steps, read in one snapshot without a lock: what a
-- worker that does not know the run (or knew it before another worker's write) plans
-- completions from, to write them guarded (write_plan checks under its locks that the
-- sequence is still this one, so a plan from a snapshot is as safe as one made under
-- hold_job). No row: the run is not RUNNING.
SELECT e.last_sequence, s.ids, s.node_ids, s.statuses, s.branches
  FROM executions e,
       LATERAL (SELECT array_agg(id) AS ids, array_agg(node_id) AS node_ids,
                       array_agg(status) AS statuses, array_agg(CASE WHEN node_type IN ('wait', 'approval') THEN input -> 'outcome' ELSE output -> 'result' END)
                         AS branches
                  FROM step_executions WHERE execution_id = e.id) s
 WHERE e.id = $1 AND e.status = 'RUNNING';

-- name: lock_execution
-- Lock an execution for a transition that is not a job's (start, cancel).
SELECT id, status, last_sequence, owner_id, workflow_id, workflow_version_id,
       concurrency_key, concurrency_key_limit
  FROM executions WHERE id = $1 FOR NO KEY UPDATE;

-- name: step_states
-- Every step of an execution with what the graph rules need (a condition's result).
SELECT id, node_id, status,
       CASE WHEN node_type IN ('wait', 'approval') THEN input -> 'outcome' ELSE output -> 'result' END AS branch
  FROM step_executions WHERE execution_id = $1;

-- name: step_outputs
-- The context of expressions: each completed step's output.
SELECT node_id, status, output
  FROM step_executions WHERE execution_id = $1 AND status = 'COMPLETED';

-- name: step_outputs_of
-- The outputs of execution $1's completed steps that a step reads (nodes $2), and the
-- others' while small ($3 bytes stored at most; `loaded` says which came): a run of
-- small outputs is read whole, so that they travel on to the next step (a chain reads
-- once), and a large one that the step does not read is not read at all.
SELECT node_id, status,
       CASE WHEN node_id = ANY($2::text[]) OR coalesce(pg_column_size(output), 0) <= $3
            THEN output END AS output,
       node_id = ANY($2::text[]) OR coalesce(pg_column_size(output), 0) <= $3 AS loaded
  FROM step_executions
 WHERE execution_id = $1 AND status = 'COMPLETED';

-- name: write_plan
-- Write one transition of execution $1 (its newest sequence number is $2) in one round
-- trip: step changes, new jobs, events with consecutive numbers and the execution's
-- status. NOTIFY is delivered at commit, never on rollback. Arrays by position:
--   steps  $5..$9:   id, status, output, error, input; $31, $32: start time and attempt
--                    (NULL: now, and the next attempt, when RUNNING; else unchanged)
--   jobs   $10..$13: step id, run_at, max_attempts, lease token (set: handed to worker $20)
--   events $14..$19: kind, status, step id, node id, attempt, data; $33: time (NULL: now)
-- (JSON arrays come as text[], each element encoded by json_texts: given as jsonb[],
-- asyncpg would take a JSON list for one more dimension of the array)
-- then $21..$23: the execution's new status, output and error (status NULL: unchanged),
-- $24: whether to wake idle workers for new unleased jobs, which are due now (a job
-- for later is parked by requeue_job, whose notification says when), $25: lease seconds,
-- $26: the jobs this transition holds (hold_job, lock_jobs), each handed on to the step
-- at the same place of $27 with the attempts allowed at that place of $28, or deleted
-- where $27 has NULL.
-- $29, $30: set when the transition was planned from what the writer knew rather than
-- read under hold_job's locks (the run as this worker's own last write of it left it):
-- each job of $26 must still be leased with the token at the same place of $29 for the
-- step at the same place of $30, and the run's newest sequence must still be $2. The
-- rows are locked here (jobs in id order, then the run); when a check fails, nothing is
-- written (last_sequence is NULL) and the caller plans again under hold_job.
-- $34: the transition ends a run planned that way, believed to be of a workflow without
-- a concurrency limit (no run can wait behind it): the workflow is locked shared, and
-- nothing is written if it has a limit after all (see Orchestrator._limited), or if the
-- run's trigger has one (maxConcurrentRuns: see trigger_limit_of_run), or the run has a
-- concurrency key (runs of its key may wait behind it).
-- New jobs carry the run's priority, negated (the claim takes the lowest first).
-- $35, $36: the worker writing the transition and its host (NULL: not a worker, e.g. an
-- API process): the steps it ran or takes (RUNNING, COMPLETED, FAILED or WAITING in this
-- transition) record them, and so does the data of their step.started events.
-- A child workflow's run that ends wakes its parent's `workflow` step in the same
-- transaction (parent_wake: the step's parked job falls due now), so that the parent
-- never misses the end. Its job row is locked after this run's: nothing holds a
-- parent's job while it waits for a child's run (Orchestrator.cancel locks the children
-- first).
WITH held AS (
    SELECT id FROM jobs
     WHERE $29::uuid[] IS NOT NULL AND id = ANY($26::bigint[])
       AND (id, lease_token, step_id) IN
           (SELECT * FROM unnest($26::bigint[], $29::uuid[], $30::uuid[]))
     ORDER BY id
       FOR NO KEY UPDATE
), wf AS (
    SELECT max_concurrency FROM workflows WHERE id = $4 AND $34 FOR SHARE
), trig AS (
    SELECT t.max_concurrent_runs
      FROM executions x JOIN triggers t ON t.id = x.trigger_id
     WHERE x.id = $1 AND $34
       FOR KEY SHARE OF t
), guard AS (
    SELECT id, priority FROM executions
     WHERE id = $1
       AND ($29::uuid[] IS NULL
            OR (last_sequence = $2 AND (SELECT count(*) FROM held) = cardinality($26)))
       AND NOT EXISTS (SELECT 1 FROM wf WHERE max_concurrency IS NOT NULL)
       AND NOT EXISTS (SELECT 1 FROM trig WHERE max_concurrent_runs IS NOT NULL)
       AND NOT ($34 AND concurrency_key IS NOT NULL)
       FOR NO KEY UPDATE
), steps AS (
    UPDATE step_executions AS s
       SET status = u.status,
           output = coalesce(u.output, s.output),
           error = u.error,
           input = coalesce(u.input, s.input),
           queued_at = CASE WHEN u.status = 'QUEUED' THEN now()
                            WHEN u.status = 'RUNNING' THEN coalesce(s.queued_at, now())
                            ELSE coalesce(s.queued_at, u.started_at) END,
           started_at = CASE WHEN u.status = 'RUNNING' THEN coalesce(u.started_at, now())
                             WHEN u.status IN ('QUEUED','PENDING') THEN NULL
                             ELSE coalesce(u.started_at, s.started_at) END,
           attempt = CASE WHEN u.attempt IS NOT NULL THEN u.attempt
                          WHEN u.status = 'RUNNING' THEN s.attempt + 1
                          ELSE s.attempt END,
           finished_at = CASE WHEN u.status IN ('COMPLETED','FAILED','SKIPPED','CANCELLED')
                              THEN now()
                              WHEN u.status = 'PENDING' THEN NULL
                              ELSE s.finished_at END,
           worker_id = CASE WHEN $35::text IS NOT NULL
                             AND u.status IN ('RUNNING','COMPLETED','FAILED','WAITING')
                            THEN $35::text ELSE s.worker_id END,
           worker_host = CASE WHEN $35::text IS NOT NULL
                               AND u.status IN ('RUNNING','COMPLETED','FAILED','WAITING')
                              THEN $36::text ELSE s.worker_host END
      FROM unnest($5::uuid[], $6::text[], $7::text[]::jsonb[], $8::text[]::jsonb[],
                  $9::text[]::jsonb[],
                  $31::timestamptz[], $32::int[])
           AS u(id, status, output, error, input, started_at, attempt)
     WHERE s.id = u.id AND EXISTS (SELECT 1 FROM guard)
    RETURNING s.id
), new_jobs AS (
    INSERT INTO jobs (execution_id, step_id, run_at, max_attempts, lease_token,
                      lease_expires_at, attempts, worker_id, priority)
    SELECT $1, u.step_id, coalesce(u.run_at, now()), u.max_attempts, u.lease_token,
           CASE WHEN u.lease_token IS NULL THEN NULL
                ELSE now() + make_interval(secs => $25) END,
           CASE WHEN u.lease_token IS NULL THEN 0 ELSE 1 END,
           CASE WHEN u.lease_token IS NULL THEN NULL ELSE $20 END,
           -g.priority
      FROM unnest($10::uuid[], $11::timestamptz[], $12::int[], $13::uuid[])
           AS u(step_id, run_at, max_attempts, lease_token)
     CROSS JOIN guard g
    RETURNING id, step_id
), handed_on AS (
    -- A held job goes on to a step this worker takes next, under the same lease: only
    -- columns outside every index change, so the update is HOT.
    UPDATE jobs AS j SET step_id = u.step_id, attempts = 1, max_attempts = u.max_attempts
      FROM unnest($26::bigint[], $27::uuid[], $28::int[]) AS u(id, step_id, max_attempts)
     WHERE j.id = u.id AND u.step_id IS NOT NULL AND EXISTS (SELECT 1 FROM guard)
    RETURNING j.id, j.step_id
), finished_job AS (
    DELETE FROM jobs
     WHERE id IN (SELECT u.id FROM unnest($26::bigint[], $27::uuid[]) AS u(id, step_id)
                   WHERE u.step_id IS NULL)
       AND EXISTS (SELECT 1 FROM guard)
), events AS (
    INSERT INTO execution_events
           (execution_id, owner_id, workflow_id, sequence, kind, status, step_id, node_id,
            attempt, data, at)
    SELECT $1, $3, $4, $2 + u.ord, u.kind, u.status, u.step_id, u.node_id, u.attempt,
           CASE WHEN $35::text IS NOT NULL AND u.kind = 'step.started'
                THEN coalesce(u.data, '{}'::jsonb)
                     || jsonb_build_object('workerId', $35::text, 'workerHost', $36::text)
                ELSE u.data END,
           coalesce(u.at, now())
      FROM unnest($14::text[], $15::text[], $16::uuid[], $17::text[], $18::int[],
                  $19::text[]::jsonb[], $33::timestamptz[])
           WITH ORDINALITY AS u(kind, status, step_id, node_id, attempt, data, at, ord)
     WHERE EXISTS (SELECT 1 FROM guard)
    RETURNING sequence
), execution AS (
    UPDATE executions
       SET last_sequence = $2 + cardinality($14::text[]),
           status = coalesce($21, status),
           output = CASE WHEN $21 IS NULL THEN output ELSE $22::jsonb END,
           error = CASE WHEN $21 IS NULL THEN error ELSE $23::jsonb END,
           started_at = CASE WHEN $21 = 'RUNNING' THEN coalesce(started_at, now())
                             ELSE started_at END,
           finished_at = CASE WHEN $21 IN ('COMPLETED','FAILED','CANCELLED') THEN now()
                              WHEN $21 IN ('RUNNING','PENDING') THEN NULL
                              ELSE finished_at END
     WHERE id = $1 AND EXISTS (SELECT 1 FROM guard)
    RETURNING last_sequence
), parent_wake AS (
    -- Found by the parent run (ix_jobs_execution): a child's end costs an index probe.
    UPDATE jobs AS j SET run_at = now()
      FROM executions AS c
     WHERE $21 IN ('COMPLETED','FAILED','CANCELLED')
       AND c.id = $1 AND c.parent_execution_id IS NOT NULL
       AND j.execution_id = c.parent_execution_id AND j.step_id = c.parent_step_id
       AND EXISTS (SELECT 1 FROM guard)
    RETURNING j.id
)
-- One row: the jobs written (new or handed on) by step; the run's newest sequence, NULL
-- when the guard refused the write; NOTIFY of watchers and of idle workers.
SELECT o.job_steps, o.job_ids, x.last_sequence,
       CASE WHEN EXISTS (SELECT 1 FROM parent_wake) THEN pg_notify('flowsync_jobs', '') END
           AS parent_woken,
       CASE WHEN x.last_sequence IS NOT NULL
             AND EXISTS (SELECT 1 FROM event_watchers w
                          WHERE w.owner_id = $3 AND w.expires_at > now())
            THEN pg_notify('flowsync_events', $1::text || ':' || x.last_sequence) END
           AS events_notified,
       CASE WHEN $24 AND x.last_sequence IS NOT NULL THEN pg_notify('flowsync_jobs', '') END
           AS jobs_notified
  FROM (SELECT array_agg(j.step_id) AS job_steps, array_agg(j.id) AS job_ids
          FROM (SELECT step_id, id FROM new_jobs
                UNION ALL SELECT step_id, id FROM handed_on) j) o
  LEFT JOIN execution x ON true;

-- name: hand_on
-- The commonest transition, written lean, for several runs at once (the hops that a
-- worker's chains made while its previous such write was in flight): in each run, which
-- this worker wrote last, step $7 completed with output $8 in attempt $9 and its job $5
-- (lease $6) goes on, under the same lease, to the next step $10 (node $13, $11 attempts
-- allowed), which this worker runs at once; events step.completed and step.started.
-- $14: the completed step's start, when it was not written before (its claim wrote only
-- its job): its start time and attempt are written too, with a step.started event first.
-- What write_plan does for such a plan with its guard, with far fewer plan nodes (every
-- node's executor start-up is paid on each call) and one commit for all. Arrays by
-- position, one entry per run: $1 run, $2 its newest sequence, $3 owner, $4 workflow,
-- $12 the completed step's node. A run is written only if its job is still leased for
-- step $7 and its newest sequence is still $2; `written` lists the runs written, and
-- the callers of the others plan again under hold_job. Every job is locked before any
-- run, and runs in id order: two such writes never wait on each other in a cycle.
-- $15, $16: this worker's id and host, recorded on both steps and in the data of the
-- step.started events.
WITH u AS (
    SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::uuid[], $4::uuid[], $5::bigint[],
                         $7::uuid[], $8::text[]::jsonb[], $9::int[], $10::uuid[], $11::int[],
                         $12::text[], $13::text[], $14::timestamptz[])
           AS u(eid, seq, owner_id, workflow_id, job_id, done_step, output, attempt,
                next_step, max_attempts, done_node, next_node, started)
), w AS (
    SELECT CASE WHEN $15::text IS NOT NULL
                THEN jsonb_build_object('workerId', $15::text, 'workerHost', $16::text) END AS data
), held AS (
    SELECT id FROM jobs
     WHERE id = ANY($5::bigint[])
       AND (id, lease_token, step_id) IN
           (SELECT * FROM unnest($5::bigint[], $6::uuid[], $7::uuid[]))
     ORDER BY id
       FOR NO KEY UPDATE
), runs AS (
    SELECT id FROM executions
     WHERE id = ANY($1::uuid[])
       AND (id, last_sequence) IN
           (SELECT u.eid, u.seq FROM u WHERE u.job_id IN (SELECT id FROM held))
     ORDER BY id
       FOR NO KEY UPDATE
), ok AS (
    -- `late`: 1 when the completed step's start is written here (one event more).
    SELECT u.*, (u.started IS NOT NULL)::int AS late FROM u
     WHERE u.eid IN (SELECT id FROM runs)
), run AS (
    UPDATE executions AS e SET last_sequence = ok.seq + 2 + ok.late
      FROM ok WHERE e.id = ok.eid
), steps AS (
    UPDATE step_executions AS s
       SET status = CASE WHEN c.done THEN 'COMPLETED' ELSE 'RUNNING' END,
           output = CASE WHEN c.done THEN c.output ELSE s.output END,
           error = NULL,
           queued_at = CASE WHEN c.done THEN coalesce(s.queued_at, c.started)
                            ELSE coalesce(s.queued_at, now()) END,
           started_at = CASE WHEN c.done THEN coalesce(c.started, s.started_at) ELSE now() END,
           attempt = CASE WHEN NOT c.done THEN s.attempt + 1
                          WHEN c.started IS NOT NULL THEN c.attempt
                          ELSE s.attempt END,
           finished_at = CASE WHEN c.done THEN now() ELSE s.finished_at END,
           worker_id = coalesce($15::text, s.worker_id),
           worker_host = coalesce($16::text, s.worker_host)
      FROM (SELECT done_step AS id, true AS done, output, started, attempt FROM ok
            UNION ALL SELECT next_step, false, NULL, NULL, NULL FROM ok) c
     WHERE s.id = c.id
), job AS (
    UPDATE jobs AS j SET step_id = ok.next_step, attempts = 1, max_attempts = ok.max_attempts
      FROM ok WHERE j.id = ok.job_id
), events AS (
    INSERT INTO execution_events
           (execution_id, owner_id, workflow_id, sequence, kind, status, step_id, node_id,
            attempt, data, at)
    SELECT eid, owner_id, workflow_id, seq + 1, 'step.started', 'RUNNING', done_step,
           done_node, attempt, w.data, started
      FROM ok, w WHERE late = 1
    UNION ALL
    SELECT eid, owner_id, workflow_id, seq + 1 + late, 'step.completed', 'COMPLETED',
           done_step, done_node, attempt, NULL, now()
      FROM ok
    UNION ALL
    SELECT eid, owner_id, workflow_id, seq + 2 + late, 'step.started', 'RUNNING', next_step,
           next_node, 1, w.data, now()
      FROM ok, w
)
SELECT (SELECT array_agg(eid) FROM ok) AS written,
       (SELECT count(pg_notify('flowsync_events',
                               ok.eid::text || ':' || (ok.seq + 2 + ok.late)))
          FROM ok
         WHERE EXISTS (SELECT 1 FROM event_watchers w
                        WHERE w.owner_id = ok.owner_id AND w.expires_at > now())) AS notified;

-- name: finish_branches
-- Branches of forks completed, for several runs at once (those a worker finished while
-- its previous such write was in flight): completions that only complete steps and
-- leave their join waiting (transitions.still_waiting_on), so that each holds whatever
-- else was written to its run meanwhile. What write_plan does for such a plan, with far
-- fewer plan nodes and one commit for all. Arrays by position, one entry per completed
-- step: $1 run, $2 owner, $3 workflow, $4 its job, $5 the job's lease, $6 the step, $7
-- its output, $8 the attempt, $9 its node, $10 its start when not written before (its
-- claim wrote only its job: start time and attempt written too, with a step.started event
-- first). $11, $12: pairs (run, step) of the join's other sources not done when planned.
-- A run is written only if every one of its jobs here is still leased for its step, and
-- one of its $12 steps is still not done. That is read in this statement's snapshot,
-- taken before the run's lock was: it holds only if no write to the run committed in
-- between, i.e. the run's newest sequence as locked is the one the snapshot shows (every
-- writer of a run's steps holds its lock and moves its sequence on); otherwise the run is
-- not written. So two writes of a join's last branches never both find the other open.
-- Events are numbered from the run's newest sequence. Every job is locked before any run,
-- and runs in id order: two such writes never wait on each other in a cycle. `written`
-- lists the runs written (the callers of the others plan again), and `known`, at the
-- same places, each one's newest sequence if it was still the one given in $15 (the
-- sequence the writer knew, -1 for none) before this write, else -1. $13, $14: this
-- worker's id and host, recorded on the steps and in the data of the step.started events.
WITH u AS (
    SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::bigint[], $6::uuid[],
                         $7::text[]::jsonb[], $8::int[], $9::text[], $10::timestamptz[],
                         $15::bigint[])
           WITH ORDINALITY
           AS u(eid, owner_id, workflow_id, job_id, step, output, attempt, node, started,
                known, ord)
), w AS (
    SELECT CASE WHEN $13::text IS NOT NULL
                THEN jsonb_build_object('workerId', $13::text, 'workerHost', $14::text) END AS data
), held AS (
    SELECT id FROM jobs
     WHERE id = ANY($4::bigint[])
       AND (id, lease_token, step_id) IN (SELECT * FROM unnest($4::bigint[], $5::uuid[], $6::uuid[]))
     ORDER BY id
       FOR NO KEY UPDATE
), runs AS (
    SELECT id, last_sequence FROM executions
     WHERE id = ANY($1::uuid[])
       AND id NOT IN (SELECT u.eid FROM u WHERE u.job_id NOT IN (SELECT id FROM held))
     ORDER BY id
       FOR NO KEY UPDATE
), still_open AS (
    SELECT DISTINCT r.id AS eid, r.last_sequence
      FROM runs r
      JOIN executions seen ON seen.id = r.id AND seen.last_sequence = r.last_sequence
      JOIN unnest($11::uuid[], $12::uuid[]) AS o(eid, step) ON o.eid = r.id
      JOIN step_executions s ON s.id = o.step
     WHERE s.status NOT IN ('COMPLETED','SKIPPED')
), ok AS (
    -- `late`: 1 when the step's start is written here (one event more); `seq`: the
    -- number of the step's last event.
    SELECT u.*, (u.started IS NOT NULL)::int AS late,
           r.last_sequence
             + sum(1 + (u.started IS NOT NULL)::int) OVER (PARTITION BY u.eid ORDER BY u.ord)
             AS seq
      FROM u JOIN still_open r ON r.eid = u.eid
), m AS (
    -- Each run written: its newest sequence, and whether the worker knew the one before
    -- this write (`known`, $15: -1 when it did not), i.e. now knows the run exactly.
    SELECT ok.eid, ok.owner_id, max(ok.seq) AS seq, bool_and(ok.known = r.last_sequence) AS exact
      FROM ok JOIN still_open r ON r.eid = ok.eid
     GROUP BY ok.eid, ok.owner_id
), run AS (
    UPDATE executions AS e SET last_sequence = m.seq FROM m WHERE e.id = m.eid
), steps AS (
    UPDATE step_executions AS s
       SET status = 'COMPLETED',
           output = coalesce(ok.output, s.output),
           error = NULL,
           queued_at = coalesce(s.queued_at, ok.started),
           started_at = coalesce(ok.started, s.started_at),
           attempt = CASE WHEN ok.started IS NOT NULL THEN ok.attempt ELSE s.attempt END,
           finished_at = now(),
           worker_id = coalesce($13::text, s.worker_id),
           worker_host = coalesce($14::text, s.worker_host)
      FROM ok
     WHERE s.id = ok.step
), job AS (
    DELETE FROM jobs WHERE id IN (SELECT job_id FROM ok)
), events AS (
    INSERT INTO execution_events
           (execution_id, owner_id, workflow_id, sequence, kind, status, step_id, node_id,
            attempt, data, at)
    SELECT eid, owner_id, workflow_id, seq - 1, 'step.started', 'RUNNING', step, node,
           attempt, w.data, started
      FROM ok, w WHERE late = 1
    UNION ALL
    SELECT eid, owner_id, workflow_id, seq, 'step.completed', 'COMPLETED', step, node,
           attempt, NULL, now()
      FROM ok
)
SELECT (SELECT array_agg(eid ORDER BY eid) FROM m) AS written,
       (SELECT array_agg(CASE WHEN exact THEN seq ELSE -1 END ORDER BY eid) FROM m) AS known,
       (SELECT count(pg_notify('flowsync_events', m.eid::text || ':' || m.seq))
          FROM m
         WHERE EXISTS (SELECT 1 FROM event_watchers w
                        WHERE w.owner_id = m.owner_id AND w.expires_at > now())) AS notified;

-- name: hand_on_one
-- hand_on for one run, with scalar parameters: a hop written while no other is waits for
-- nothing, and this statement's fewer plan nodes make it the quicker for one. The same
-- parameters by number (and $15, $16), and one row: `last_sequence`, NULL when the guard
-- refused.
WITH held AS (
    SELECT id FROM jobs WHERE id = $5 AND lease_token = $6 AND step_id = $7
       FOR NO KEY UPDATE
), run AS (
    UPDATE executions
       SET last_sequence = $2 + 2 + ($14::timestamptz IS NOT NULL)::int
     WHERE id = $1 AND last_sequence = $2 AND EXISTS (SELECT 1 FROM held)
    RETURNING last_sequence
), steps AS (
    UPDATE step_executions AS s
       SET status = CASE WHEN s.id = $7 THEN 'COMPLETED' ELSE 'RUNNING' END,
           output = CASE WHEN s.id = $7 THEN $8::jsonb ELSE s.output END,
           error = NULL,
           queued_at = CASE WHEN s.id = $7 THEN coalesce(s.queued_at, $14)
                            ELSE coalesce(s.queued_at, now()) END,
           started_at = CASE WHEN s.id = $7 THEN coalesce($14, s.started_at) ELSE now() END,
           attempt = CASE WHEN s.id <> $7 THEN s.attempt + 1
                          WHEN $14 IS NOT NULL THEN $9
                          ELSE s.attempt END,
           finished_at = CASE WHEN s.id = $7 THEN now() ELSE s.finished_at END,
           worker_id = coalesce($15::text, s.worker_id),
           worker_host = coalesce($16::text, s.worker_host)
     WHERE s.id IN ($7, $10) AND EXISTS (SELECT 1 FROM run)
), job AS (
    UPDATE jobs SET step_id = $10, attempts = 1, max_attempts = $11
     WHERE id = $5 AND EXISTS (SELECT 1 FROM run)
), events AS (
    INSERT INTO execution_events
           (execution_id, owner_id, workflow_id, sequence, kind, status, step_id, node_id,
            attempt, data, at)
    SELECT $1::uuid, $3::uuid, $4::uuid, $2::bigint + 1, 'step.started', 'RUNNING',
           $7::uuid, $12::text, $9::int,
           CASE WHEN $15::text IS NOT NULL
                THEN jsonb_build_object('workerId', $15::text, 'workerHost', $16::text) END, $14
      FROM run WHERE $14 IS NOT NULL
    UNION ALL
    SELECT $1, $3, $4, run.last_sequence - 1, 'step.completed', 'COMPLETED', $7, $12, $9,
           NULL, now()
      FROM run
    UNION ALL
    SELECT $1, $3, $4, run.last_sequence, 'step.started', 'RUNNING', $10, $13, 1,
           CASE WHEN $15::text IS NOT NULL
                THEN jsonb_build_object('workerId', $15::text, 'workerHost', $16::text) END,
           now()
      FROM run
)
SELECT ARRAY[$10::uuid] AS job_steps, ARRAY[$5::bigint] AS job_ids, run.last_sequence,
       CASE WHEN run.last_sequence IS NOT NULL
             AND EXISTS (SELECT 1 FROM event_watchers w
                          WHERE w.owner_id = $3 AND w.expires_at > now())
            THEN pg_notify('flowsync_events', $1::text || ':' || run.last_sequence) END
           AS events_notified
  FROM (SELECT 1) one LEFT JOIN run ON true;

-- name: notify_jobs
-- Wake idle workers: new jobs are claimable now. An empty payload means now; a job kept
-- for later says in how many seconds (requeue_job). The table is the truth either way.
SELECT pg_notify('flowsync_jobs', '');

-- name: next_due
-- Seconds until the earliest unclaimed job falls due (a timer or a retry), by the
-- database's clock; 0 or less when one is due already (it fell due after the claim that
-- preceded this read, so that claim could not take it); NULL when there is none. Within
-- one priority that is the first entry of ix_jobs_claim; the priorities in use are found by a
-- loose scan of the same index, so the cost is a few index probes per priority, however
-- many jobs wait (a min() over run_at would read every timer).
WITH RECURSIVE p(priority) AS (
    SELECT min(priority) FROM jobs WHERE lease_token IS NULL
    UNION ALL
    SELECT (SELECT min(j.priority) FROM jobs j
             WHERE j.lease_token IS NULL AND j.priority > p.priority)
      FROM p WHERE p.priority IS NOT NULL
)
SELECT extract(epoch FROM min(t.run_at) - clock_timestamp())::float8
  FROM p CROSS JOIN LATERAL (
      SELECT j.run_at FROM jobs j
       WHERE j.lease_token IS NULL AND j.priority = p.priority
       ORDER BY j.run_at
       LIMIT 1
  ) t;

-- name: set_trace_context
-- The trace of new runs ($1: execution ids, $2: the traceparent of each one's execution
-- span), written in the transaction that starts them, only while tracing is on.
UPDATE executions AS e SET trace_context = t.context
  FROM unnest($1::uuid[], $2::text[]) AS t(id, context)
 WHERE e.id = t.id;

-- name: workflow_name
-- The name a retried run's execution span gives its workflow ($1).
SELECT name FROM workflows WHERE id = $1;

-- name: insert_execution
-- A new execution ($11: RUNNING, or PENDING behind a concurrency limit) with one PENDING
-- step row per node ($12, $13: node ids and types), one row per step with the
-- execution's id and the transaction's time; no row when the owner already used this
-- idempotency key. (One statement: the start of a run costs one round trip less.)
-- $14: its priority (-100..100, higher first), $15, $16: its concurrency key and the
-- key's limit (NULL: none).
WITH e AS (
    INSERT INTO executions (owner_id, workflow_id, workflow_version_id, version, status,
                            input, idempotency_key, trigger_id, trigger_type, trigger_data,
                            retry_of_id, started_at, priority, concurrency_key,
                            concurrency_key_limit)
    VALUES ($1, $2, $3, $4, $11, $5, $6, $7, $8, $9, $10,
            CASE WHEN $11 = 'RUNNING' THEN now() END, $14, $15, $16)
    ON CONFLICT (owner_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING id
), s AS (
    INSERT INTO step_executions (execution_id, node_id, node_type)
    SELECT e.id, u.node_id, u.node_type
      FROM e, unnest($12::text[], $13::text[]) AS u(node_id, node_type)
    RETURNING id, node_id, status
)
SELECT e.id AS execution_id, now() AS at, s.id, s.node_id, s.status, NULL::jsonb AS branch
  FROM e, s;

-- name: start_executions
-- A batch of new executions of one workflow version, each with its first transition, in
-- one statement (ExecutionService.start_many). Every new run's first transition is the
-- same but for its step ids and input, so it comes once, as templates, and each row is
-- written as it ends up (no insert, then update):
--   runs   $5..$8:   id (chosen by the caller), input, idempotency key, and whether it
--                    runs now (else PENDING behind a concurrency limit)
--   nodes  $9..$16:  id, type, and a running run's step: status, whether its output is
--                    the run's input, output, input, whether it started at the start,
--                    attempt (NULL: 1 when RUNNING, else 0); a PENDING run's are PENDING
--   events $17..$23: for a running run ($17) or a PENDING one: sequence, kind, status,
--                    node id, attempt, data (all at the transaction's time)
--   jobs   $24..$26: a running run's: node id, max_attempts, run_at (NULL: now)
-- $27, $28: the newest sequence of a running and of a PENDING run; $29: the runs'
-- priority (their jobs carry it negated); $30, $31: each run's concurrency key (NULL:
-- none) and the keys' limit. $32: the steps' ids (chosen by the caller: the server's
-- flowsync_uuid7() cost ~1.9 µs a row), run by run in the batch's order and node by
-- node in $9's order, so that a run's step of the node at place k (from 1) in $9 is
-- $32[(ord - 1) * cardinality($9) + k]; $33, $34: that place of each job's and each
-- event's node (NULL: no node). A run whose key the owner already used is not written. created_at keeps the batch's order (a microsecond
-- apart from the transaction's time), so that PENDING ones are promoted in that order.
-- Returns the executions written, as they are now, in the batch's order (a start reads
-- none back), each with admission_position_many's position and own count of the batch
-- (queue_position, queue_own), and NOTIFY of watchers and idle workers.
WITH u AS (
    SELECT * FROM unnest($5::uuid[], $6::text[]::jsonb[], $7::text[], $8::bool[],
                         $30::text[])
                  WITH ORDINALITY AS u(id, input, key, running, ckey, ord)
), e AS (
    INSERT INTO executions (id, owner_id, workflow_id, workflow_version_id, version, status,
                            input, idempotency_key, trigger_type, trigger_data, started_at,
                            created_at, last_sequence, priority, concurrency_key,
                            concurrency_key_limit)
    SELECT u.id, $1, $2, $3, $4, CASE WHEN u.running THEN 'RUNNING' ELSE 'PENDING' END,
           u.input, u.key, 'MANUAL', '{}'::jsonb, CASE WHEN u.running THEN now() END,
           now() + (u.ord - 1) * interval '1 microsecond',
           CASE WHEN u.running THEN $27::bigint ELSE $28::bigint END,
           $29::smallint, u.ckey, CASE WHEN u.ckey IS NOT NULL THEN $31::int END
      FROM u
     ORDER BY u.ord
    ON CONFLICT (owner_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING *, status = 'RUNNING' AS running
), eu AS (
    -- Each run written, with its place in the batch (its steps' ids follow from it).
    SELECT e.id, e.running, e.input, (u.ord - 1) * cardinality($9::text[]) AS step_base
      FROM e JOIN u ON u.id = e.id
), n AS (
    SELECT * FROM unnest($9::text[], $10::text[], $11::text[], $12::bool[],
                         $13::text[]::jsonb[], $14::text[]::jsonb[], $15::bool[], $16::int[])
                  WITH ORDINALITY
                  AS n(node_id, node_type, status, from_input, output, input, started,
                       attempt, place)
), s AS (
    INSERT INTO step_executions (id, execution_id, node_id, node_type, status, output,
                                 input, queued_at, started_at, finished_at, attempt)
    SELECT ($32::uuid[])[e.step_base + n.place], e.id, n.node_id, n.node_type, x.status,
           CASE WHEN NOT e.running THEN NULL WHEN n.from_input THEN e.input ELSE n.output END,
           CASE WHEN e.running THEN n.input END,
           CASE WHEN x.status IN ('QUEUED', 'RUNNING') OR (x.status <> 'PENDING' AND n.started)
                THEN now() END,
           CASE WHEN x.status = 'RUNNING'
                  OR (x.status NOT IN ('QUEUED', 'PENDING') AND n.started) THEN now() END,
           CASE WHEN x.status IN ('COMPLETED', 'FAILED', 'SKIPPED', 'CANCELLED') THEN now() END,
           CASE WHEN NOT e.running THEN 0
                ELSE coalesce(n.attempt, CASE WHEN x.status = 'RUNNING' THEN 1 ELSE 0 END) END
      FROM eu AS e CROSS JOIN n
           CROSS JOIN LATERAL (SELECT CASE WHEN e.running THEN n.status ELSE 'PENDING' END)
                              AS x(status)
), j AS (
    INSERT INTO jobs (execution_id, step_id, run_at, max_attempts, attempts, priority)
    SELECT e.id, ($32::uuid[])[e.step_base + t.place], coalesce(t.run_at, now()),
           t.max_attempts, 0, -$29::smallint
      FROM eu AS e
           CROSS JOIN unnest($24::text[], $25::int[], $26::timestamptz[], $33::int[])
                      AS t(node_id, max_attempts, run_at, place)
     WHERE e.running
     ORDER BY e.step_base, t.node_id
    RETURNING id
), v AS (
    INSERT INTO execution_events
           (execution_id, owner_id, workflow_id, sequence, kind, status, step_id, node_id,
            attempt, data, at)
    SELECT e.id, $1, $2, t.sequence, t.kind, t.status, ($32::uuid[])[e.step_base + t.place],
           t.node_id, t.attempt, t.data, now()
      FROM eu AS e
      JOIN unnest($17::bool[], $18::int[], $19::text[], $20::text[], $21::text[],
                  $22::int[], $23::text[]::jsonb[], $34::int[])
           AS t(running, sequence, kind, status, node_id, attempt, data, place)
        ON t.running = e.running
), notified AS MATERIALIZED (
    -- Once (a CTE is evaluated at most once), whatever the rows it is joined to below.
    SELECT CASE WHEN EXISTS (SELECT 1 FROM event_watchers w
                              WHERE w.owner_id = $1 AND w.expires_at > now())
                THEN (SELECT count(pg_notify('flowsync_events',
                                             e.id::text || ':' || e.last_sequence))
                        FROM e) END AS events,
           CASE WHEN EXISTS (SELECT 1 FROM j) THEN pg_notify('flowsync_jobs', '') END AS jobs
), queued AS MATERIALIZED (
    -- admission_position_many's figures, from the jobs just written (no second look at
    -- the jobs table, whose plan a cache could keep from when it was small).
    SELECT coalesce(max(id) - count(*),
                    pg_sequence_last_value(pg_get_serial_sequence('jobs', 'id')::regclass),
                    0) AS position,
           count(*) AS own
      FROM j
)
SELECT e.*, notified.events IS NOT NULL AS events_notified,
       queued.position AS queue_position, queued.own AS queue_own
  FROM e JOIN u ON u.id = e.id CROSS JOIN notified CROSS JOIN queued
 ORDER BY u.ord;

-- name: executions_by_ids
-- Executions $1 as they are now (start_many's runs started one at a time).
SELECT * FROM executions WHERE id = ANY($1::uuid[]);

-- name: executions_by_keys
SELECT idempotency_key, id FROM executions
 WHERE owner_id = $1 AND idempotency_key = ANY($2::text[]);

-- name: admission_position_many
-- admission_position for a batch of starts ($1: their executions): where the batch's
-- newest job stands (the jobs with an id up to it, less the batch's own), and how many
-- jobs the batch queued.
SELECT coalesce(max(id) - count(*),
                pg_sequence_last_value(pg_get_serial_sequence('jobs', 'id')::regclass), 0)
           AS position,
       count(*) AS own
  FROM jobs WHERE execution_id = ANY($1::uuid[]);

-- name: execution_by_key
SELECT id FROM executions WHERE owner_id = $1 AND idempotency_key = $2;

-- name: workflow_definition
SELECT definition FROM workflow_versions WHERE id = $1;

-- name: requeue_job
-- Keep a job for later: a durable timer or a retry after backoff. The lease is dropped;
-- a timer ($4 false) gives back the attempt its claim counted. On commit, idle workers
-- are told when it falls due, in seconds from now by the database's clock (so that a
-- worker on a host whose clock is off still wakes on time; see Worker._on_jobs).
WITH j AS (
    UPDATE jobs
       SET run_at = $3, lease_token = NULL, lease_expires_at = NULL, worker_id = NULL,
           attempts = CASE WHEN $4 THEN attempts ELSE greatest(attempts - 1, 0) END
     WHERE id = $1 AND lease_token = $2
    RETURNING run_at
)
SELECT pg_notify('flowsync_jobs',
                 greatest(extract(epoch FROM j.run_at - clock_timestamp()), 0)::text)
  FROM j;

-- name: drop_jobs
-- Remove every job of an execution (cancel, or failure of a step for good; and again
-- after a cancel commits, see Orchestrator.sweep). The rows are locked in id order, as
-- lock_jobs does, so that a cancel and a batch of completions of the same run never wait
-- on each other in a cycle.
DELETE FROM jobs
 WHERE id IN (SELECT id FROM jobs WHERE execution_id = $1 ORDER BY id FOR UPDATE)
RETURNING step_id;

-- name: lock_jobs
-- Lock jobs $1 in id order: the first statement of a batch of completions, so that it
-- takes every job's lock before the execution's (the order every transition keeps).
-- Their leases and steps as they are now: locked, they stay so until the commit.
SELECT id, lease_token, step_id FROM jobs
 WHERE id = ANY($1::bigint[]) ORDER BY id FOR NO KEY UPDATE;

-- name: insert_dead_letter
INSERT INTO dead_letters (owner_id, execution_id, step_id, node_id, attempts, error, payload)
VALUES ($1, $2, $3, $4, $5, $6, $7)
RETURNING id;

-- name: queue_depth_bounded
-- Jobs due now and not claimed, counted up to $1. Read per priority (found by a loose
-- scan of ix_jobs_claim, as next_due does), so that run_at bounds each index scan: the
-- cost is that of the due jobs counted (at most $1), never of the timers behind them.
WITH RECURSIVE p(priority) AS (
    SELECT min(priority) FROM jobs WHERE lease_token IS NULL
    UNION ALL
    SELECT (SELECT min(j.priority) FROM jobs j
             WHERE j.lease_token IS NULL AND j.priority > p.priority)
      FROM p WHERE p.priority IS NOT NULL
)
SELECT count(*) FROM (
    SELECT 1 FROM p CROSS JOIN LATERAL (
        SELECT 1 FROM jobs j
         WHERE j.lease_token IS NULL AND j.priority = p.priority AND j.run_at <= now()
         LIMIT $1
    ) t
     LIMIT $1
) due;

-- Admission (backpressure), exact for starts. Every start holds the admission lock
-- (advisory, keys 'Flow' and 1) shared, from before it queues its jobs until it
-- commits; a count of the due jobs holds it exclusively, so that no start is half done
-- while it counts. Job ids are handed out in order (jobs_id_seq caches one value), so
-- the jobs queued since a count are those with a newer id, and a start counts as queued
-- before it every other job with an id below its own newest: due jobs before a start
-- <= counted + (its position - the newest id when counted). See ExecutionService._admit.

-- name: admission_share
SELECT pg_advisory_xact_lock_shared(1181511543, 1);

-- name: admission_exclusive
SELECT pg_advisory_xact_lock(1181511543, 1);

-- name: newest_job_id
-- The newest job id handed out (0: none yet), whether or not its transaction committed.
SELECT coalesce(pg_sequence_last_value(pg_get_serial_sequence('jobs', 'id')::regclass), 0);

-- name: admission_position
-- Where execution $1's start stands among queued jobs: the jobs with an id up to its
-- newest, less its own (two starts' ids may interleave: each counts the other's jobs
-- below its newest id); when it queued none (PENDING), every id handed out.
SELECT coalesce(max(id) - count(*),
                pg_sequence_last_value(pg_get_serial_sequence('jobs', 'id')::regclass), 0)
  FROM jobs WHERE execution_id = $1;

-- name: lock_workflow_limit
-- A workflow's concurrency limit and its running executions, with the workflow locked so
-- that starts and promotions of one workflow take turns.
SELECT w.max_concurrency,
       (SELECT count(*) FROM executions e
         WHERE e.workflow_id = w.id AND e.status = 'RUNNING') AS running
  FROM workflows w WHERE w.id = $1
   FOR NO KEY UPDATE;

-- name: workflow_limit
-- A workflow's concurrency limit, read without a lock (see Orchestrator._limited).
SELECT max_concurrency FROM workflows WHERE id = $1;

-- name: workflow_limit_shared
-- The same under a shared lock: ends of one workflow take it together, while a change
-- of the limit (an update) waits for them.
SELECT max_concurrency FROM workflows WHERE id = $1 FOR SHARE;

-- name: next_pending
-- The oldest execution of a workflow waiting behind its concurrency limit (among runs
-- made together, a backfill's, the earliest fire time first), passing over
-- those whose trigger is at its own limit (maxConcurrentRuns). Counted, not locked: every
-- start and promotion of a limited trigger's run in a limited workflow also holds the
-- workflow's lock, which the caller holds.
SELECT e.id, e.last_sequence, e.owner_id, e.workflow_id, e.workflow_version_id, e.input,
       now() AS at, e.concurrency_key, e.concurrency_key_limit,
       e.retry_of_id
  FROM executions e
 WHERE e.workflow_id = $1 AND e.status = 'PENDING'
   AND NOT EXISTS (SELECT 1 FROM triggers t
                    WHERE t.id = e.trigger_id
                      AND t.max_concurrent_runs <=
                          (SELECT count(*) FROM executions r
                            WHERE r.trigger_id = t.id AND r.status = 'RUNNING'))
   AND (e.concurrency_key IS NULL
        OR e.concurrency_key_limit > (SELECT count(*) FROM executions r
                                       WHERE r.workflow_id = e.workflow_id
                                         AND r.concurrency_key = e.concurrency_key
                                         AND r.status = 'RUNNING'))
 ORDER BY e.created_at, (e.trigger_data ->> 'scheduledAt'), e.id
 LIMIT 1
   FOR NO KEY UPDATE OF e SKIP LOCKED;

-- Per-trigger limits (maxConcurrentRuns), the same mechanism per trigger: a start of a
-- limited trigger's run locks the trigger (before its workflow, as the scheduler and a
-- backfill do, having claimed the trigger) and counts its running executions; the end of
-- one of its runs starts the oldest waiting one.

-- name: lock_trigger_limit
-- A trigger's concurrency limit and its running executions, with the trigger locked so
-- that starts and promotions of its runs take turns.
SELECT t.max_concurrent_runs,
       (SELECT count(*) FROM executions e
         WHERE e.trigger_id = t.id AND e.status = 'RUNNING') AS running
  FROM triggers t WHERE t.id = $1
   FOR NO KEY UPDATE;

-- name: trigger_limit_of_run
-- The trigger of ending execution $1 and its limit. KEY SHARE: a change of the limit (an
-- update locks the trigger FOR UPDATE) either waits for this end to commit, and promotes
-- after it, or is seen here; starts and the scheduler (NO KEY UPDATE) never wait on it.
SELECT t.id, t.max_concurrent_runs
  FROM executions e JOIN triggers t ON t.id = e.trigger_id
 WHERE e.id = $1
   FOR KEY SHARE OF t;

-- name: next_pending_of_trigger
-- The oldest execution of trigger $1 waiting behind a limit, if its workflow's limit (if
-- any) has room; among runs made together (a backfill's), the earliest fire time first
-- (ix_executions_trigger_pending).
SELECT e.id, e.last_sequence, e.owner_id, e.workflow_id, e.workflow_version_id, e.input,
       now() AS at, w.max_concurrency, e.concurrency_key, e.concurrency_key_limit,
       e.retry_of_id
  FROM executions e
  JOIN workflows w ON w.id = e.workflow_id
 WHERE e.trigger_id = $1 AND e.status = 'PENDING'
   AND (w.max_concurrency IS NULL
        OR w.max_concurrency > (SELECT count(*) FROM executions r
                                 WHERE r.workflow_id = w.id AND r.status = 'RUNNING'))
   AND (e.concurrency_key IS NULL
        OR e.concurrency_key_limit > (SELECT count(*) FROM executions r
                                       WHERE r.workflow_id = e.workflow_id
                                         AND r.concurrency_key = e.concurrency_key
                                         AND r.status = 'RUNNING'))
 ORDER BY e.created_at, (e.trigger_data ->> 'scheduledAt'), e.id
 LIMIT 1
   FOR NO KEY UPDATE OF e SKIP LOCKED;

-- Concurrency keys (a definition's concurrencyKey): the runs of one workflow that share
-- a key take turns under a transaction advisory lock of (workflow, key), taken after
-- the trigger's and the workflow's locks (the order every start and promotion keeps);
-- at most concurrency_key_limit of them RUNNING, the others PENDING in start order.

-- name: lock_key
-- Lock key $2 of workflow $1 until the transaction ends, and count its running runs.
SELECT pg_advisory_xact_lock(hashtextextended($1::uuid::text || '/' || $2::text, 0))
           AS locked,
       (SELECT count(*) FROM executions e
         WHERE e.workflow_id = $1::uuid AND e.concurrency_key = $2::text
           AND e.status = 'RUNNING') AS running;

-- name: key_of_run
-- Ending execution $1's concurrency key and its limit (NULL: none).
SELECT concurrency_key, concurrency_key_limit FROM executions WHERE id = $1;

-- name: next_pending_key
-- The oldest run of workflow $1 waiting behind key $2 (ix_executions_key_pending),
-- passing over one whose workflow or trigger is at its own limit (counted: see
-- Orchestrator._promote_key), with its workflow's limit.
SELECT e.id, e.last_sequence, e.owner_id, e.workflow_id, e.workflow_version_id, e.input,
       now() AS at, w.max_concurrency, e.concurrency_key, e.concurrency_key_limit,
       e.retry_of_id
  FROM executions e
  JOIN workflows w ON w.id = e.workflow_id
 WHERE e.workflow_id = $1 AND e.concurrency_key = $2 AND e.status = 'PENDING'
   AND (w.max_concurrency IS NULL
        OR w.max_concurrency > (SELECT count(*) FROM executions r
                                 WHERE r.workflow_id = w.id AND r.status = 'RUNNING'))
   AND NOT EXISTS (SELECT 1 FROM triggers t
                    WHERE t.id = e.trigger_id
                      AND t.max_concurrent_runs <=
                          (SELECT count(*) FROM executions r
                            WHERE r.trigger_id = t.id AND r.status = 'RUNNING'))
 ORDER BY e.created_at, e.id
 LIMIT 1
   FOR NO KEY UPDATE OF e SKIP LOCKED;

-- name: execution_steps_full
-- Every step of an execution with its output (a retry reuses the completed ones).
SELECT id, node_id, node_type, status, output,
       CASE WHEN node_type IN ('wait', 'approval') THEN input -> 'outcome' ELSE output -> 'result' END AS branch
  FROM step_executions WHERE execution_id = $1;

-- name: execution_for_rerun
-- With its workflow held FOR KEY SHARE, as every start holds the workflow it runs: a
-- deletion of the workflow waits for the new run and then takes it (migration 0021). The
-- run is locked as a redrive locks it (lock_execution): two retries of it, or a retry and
-- a redrive, take turns, so the second sees the first's run (retried_as) or status. Its
-- deletion waits, then clears the retry's retry_of_id and reused_from_ids (migration 0022).
SELECT e.owner_id, e.workflow_id, e.workflow_version_id, e.version, e.input,
       e.trigger_type, e.trigger_data, e.status, e.priority, e.concurrency_key,
       e.concurrency_key_limit
  FROM executions e JOIN workflows w ON w.id = e.workflow_id
 WHERE e.id = $1
   FOR NO KEY UPDATE OF e FOR KEY SHARE OF w;

-- name: retried_as
-- The first retry of execution $1 (through ix_executions_retry_of), or none.
SELECT id FROM executions WHERE retry_of_id = $1 ORDER BY created_at, id LIMIT 1;

-- name: retry_by_key
-- The execution owner $1 started with idempotency key $2, and what it retries (if any).
SELECT id, retry_of_id FROM executions WHERE owner_id = $1 AND idempotency_key = $2;

-- name: mark_reused
-- Record which old step each reused step's output came from.
UPDATE step_executions AS n SET reused_from_id = o.id
  FROM step_executions o
 WHERE n.execution_id = $1 AND o.execution_id = $2 AND o.node_id = n.node_id
   AND o.status = 'COMPLETED';

-- name: child_workflow
-- The version of workflow $1 of owner $2 a `workflow` step starts: $3, else the newest;
-- with its concurrency limit. Holds the admission lock shared and the workflow FOR KEY
-- SHARE, as every start does (see _LOCKED_WORKFLOW_SQL in services/executions.py).
SELECT w.id, w.name, w.max_concurrency, v.id AS version_id, v.version,
       pg_advisory_xact_lock_shared(1181511543, 1)
  FROM workflows w
  JOIN workflow_versions v ON v.workflow_id = w.id AND v.version = coalesce($3, w.version)
 WHERE w.id = $1 AND w.owner_id = $2 AND w.deleted_at IS NULL
   FOR KEY SHARE OF w;

-- name: execution_depth
SELECT workflow_depth FROM executions WHERE id = $1;

-- name: link_child
-- A new run ($1) is the child of run $2, started by its step $3, at depth $4.
UPDATE executions SET parent_execution_id = $2, parent_step_id = $3, workflow_depth = $4
 WHERE id = $1;

-- name: child_state
SELECT status, output, error FROM executions WHERE id = $1;

-- name: active_children
-- The runs a run started that have not ended (a cancel ends them), in id order.
SELECT id FROM executions
 WHERE parent_execution_id = $1 AND status IN ('PENDING', 'RUNNING')
 ORDER BY id;

-- name: forget_child
-- A `workflow` step whose child failed keeps no child id as its input.
UPDATE step_executions SET input = NULL WHERE id = $1;
-- name: take_kept_signal
-- The oldest kept signal $2 of execution $1, taken by step $3 (its node id): in the
-- transaction that parks or completes that step, which holds the execution's lock.
UPDATE signals SET taken_at = now(), node_id = $3
 WHERE id = (SELECT id FROM signals
              WHERE execution_id = $1 AND name = $2 AND taken_at IS NULL
              ORDER BY id LIMIT 1 FOR UPDATE)
RETURNING id, payload, actor;

-- name: waiting_for_signal
-- The job of the step of execution $1 that waits for signal $2 (the oldest, should two),
-- locked; under the execution's lock. A job locked by a worker (its timeout being
-- written) is skipped: the timeout wins, and the signal is kept.
SELECT j.id AS job_id, s.id AS step_id, s.node_id
  FROM step_executions s JOIN jobs j ON j.step_id = s.id
 WHERE s.execution_id = $1 AND s.status = 'WAITING' AND s.node_type IN ('wait', 'approval')
   AND s.input ->> 'signal' = $2
 ORDER BY j.id
 LIMIT 1
   FOR UPDATE OF j SKIP LOCKED;

-- name: delete_job
DELETE FROM jobs WHERE id = $1;

-- name: insert_signal
-- A signal sent to execution $1: taken at once by the step whose node id is $5, or kept
-- ($5 NULL) for a step that waits for it later.
INSERT INTO signals (execution_id, name, payload, actor, taken_at, node_id)
VALUES ($1, $2, $3, $4, CASE WHEN $5::text IS NULL THEN NULL ELSE now() END, $5)
RETURNING id;
