"""FlowSync's metrics, recorded with prometheus-client in one registry per process.

Engine metrics are recorded where the work happens (a worker records the steps it ran, an
API process the executions it started); `/metrics` on each process exposes its own.

Label values are bounded by FlowSync itself, never by what tenants create: statuses,
outcomes, node types (the registered handlers), HTTP methods, route templates and status
codes. No workflow, execution or owner id is a label: those grow without bound (one time
series each, kept for the life of the process) and tell whoever scrapes about every
tenant's workflows. `LABELS` lists the label names allowed; a test holds every metric to
it.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

# Every label name a FlowSync metric may carry; each has a small, fixed set of values.
LABELS = frozenset({"status", "node_type", "outcome", "method", "route"})

EXECUTIONS_STARTED = Counter(
    "flowsync_executions_started_total",
    "Executions started.",
    registry=REGISTRY,
)
EXECUTIONS_FINISHED = Counter(
    "flowsync_executions_finished_total",
    "Executions that ended, per final status (COMPLETED, FAILED, CANCELLED).",
    ["status"],
    registry=REGISTRY,
)
STEP_DURATION = Histogram(
    "flowsync_step_duration_seconds",
    "Time a step's handler ran, per node type.",
    ["node_type"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
QUEUE_DEPTH = Gauge(
    "flowsync_queue_depth",
    "Jobs due and waiting to be claimed, as last measured by this process.",
    registry=REGISTRY,
)
JOBS_CLAIMED = Counter(
    "flowsync_jobs_claimed_total", "Jobs claimed from the queue.", registry=REGISTRY
)
JOBS_COMPLETED = Counter(
    "flowsync_jobs_completed_total",
    "Jobs finished, per outcome (completed, waiting, retrying, failed, lease_lost).",
    ["outcome"],
    registry=REGISTRY,
)
RETRIES = Counter(
    "flowsync_step_retries_total", "Failed attempts that will be retried.", registry=REGISTRY
)
DEAD_LETTERS = Counter(
    "flowsync_dead_letters_total", "Jobs moved to the dead-letter queue.", registry=REGISTRY
)
BACKPRESSURE_REFUSALS = Counter(
    "flowsync_backpressure_refusals_total",
    "Executions refused because the queue was deeper than its limit.",
    registry=REGISTRY,
)
