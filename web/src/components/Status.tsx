export const STATUS_LABEL: Record<string, string> = {
  PENDING: "Pending",
  QUEUED: "Queued",
  RUNNING: "Running",
  WAITING: "Waiting",
  COMPLETED: "Completed",
  FAILED: "Failed",
  SKIPPED: "Skipped",
  CANCELLED: "Cancelled",
};

export function StatusBadge({ status, testId, label }: { status: string; testId?: string; label?: string }) {
  return (
    <span className="badge" data-status={status} data-testid={testId}>
      <span className="badge-dot" aria-hidden="true" />
      {label ?? STATUS_LABEL[status] ?? status}
    </span>
  );
}
