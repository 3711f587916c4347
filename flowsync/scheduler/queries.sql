-- The cron scheduler's SQL. Loaded by flowsync/scheduler/scheduler.py; each query starts
-- with a "-- name:" line.
--
-- Exactly once per tick: a scheduler locks the due triggers it handles (others skip them),
-- and each firing is a row keyed by (trigger, fire time) inserted in the transaction that
-- starts its execution and moves the trigger's next_run_at on. A second scheduler's insert
-- of the same firing is a no-op, so it starts nothing.

-- name: claim_due
-- Up to $2 enabled CRON triggers due at $1, locked for this transaction; an index-ordered
-- LIMIT over ix_triggers_due. NO KEY UPDATE: foreign-key checks of new firings and
-- executions (KEY SHARE) never wait on it.
SELECT id, owner_id, workflow_id, config, next_run_at
  FROM triggers
 WHERE enabled AND type = 'CRON' AND next_run_at <= $1
 ORDER BY next_run_at
 LIMIT $2
   FOR NO KEY UPDATE SKIP LOCKED;

-- name: insert_firing
-- Claim one fire time; no row back: it was fired already.
INSERT INTO trigger_firings (trigger_id, fire_at) VALUES ($1, $2)
ON CONFLICT (trigger_id, fire_at) DO NOTHING
RETURNING trigger_id;

-- name: set_firing_execution
UPDATE trigger_firings SET execution_id = $3 WHERE trigger_id = $1 AND fire_at = $2;

-- name: advance_trigger
-- The next fire time ($2, NULL: the config no longer parses) and the newest time fired.
UPDATE triggers
   SET next_run_at = $2,
       last_fired_at = greatest(last_fired_at, $3)
 WHERE id = $1;

-- name: next_due
-- When the next tick is due (the partial index answers it).
SELECT min(next_run_at) FROM triggers WHERE enabled AND type = 'CRON';

-- name: prune_lock
-- Only one scheduler prunes at a time; the others skip it.
SELECT pg_try_advisory_xact_lock(hashtext('flowsync.scheduler.prune'));

-- name: prune_firings
-- Forget firings older than $1, at most $2 per trigger per call, by primary-key ranges.
-- Fire times before a trigger's next_run_at are never fired again, so the history can
-- go without weakening the uniqueness of future firings.
DELETE FROM trigger_firings d
 USING (SELECT f.trigger_id, f.fire_at
          FROM triggers t
         CROSS JOIN LATERAL (SELECT trigger_id, fire_at FROM trigger_firings
                              WHERE trigger_id = t.id AND fire_at < $1
                              ORDER BY fire_at
                              LIMIT $2) f) old
 WHERE d.trigger_id = old.trigger_id AND d.fire_at = old.fire_at;

-- name: status_schedulers
-- Running schedulers: each holds one connection named after it, whose last statement
-- started at its last tick. A dead process's connection is gone at once.
SELECT substr(application_name, length('flowsync-scheduler ') + 1) AS id,
       backend_start, query_start, now() AS now
  FROM pg_stat_activity
 WHERE datname = current_database()
   AND application_name LIKE 'flowsync-scheduler %'
 ORDER BY backend_start, pid;

-- name: status_triggers
-- The owner's enabled CRON triggers: how many are due (waiting for a scheduler) and the
-- next fire time.
SELECT count(*) FILTER (WHERE next_run_at <= now()) AS due,
       count(*) AS enabled,
       min(next_run_at) AS next_run_at
  FROM triggers
 WHERE owner_id = $1 AND enabled AND type = 'CRON';

-- name: status_firings
-- The owner's newest $2 firings, newest first; each trigger's by its primary key.
SELECT f.trigger_id, t.workflow_id, f.fire_at, f.created_at, f.execution_id
  FROM triggers t
 CROSS JOIN LATERAL (SELECT fire_at, created_at, execution_id, trigger_id
                       FROM trigger_firings
                      WHERE trigger_id = t.id
                      ORDER BY fire_at DESC
                      LIMIT $2) f
 WHERE t.owner_id = $1 AND t.type = 'CRON'
 ORDER BY f.fire_at DESC, f.trigger_id
 LIMIT $2;
