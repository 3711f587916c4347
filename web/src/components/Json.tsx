import { json } from "../lib/format";

export function Json({ value, label }: { value: unknown; label: string }) {
  if (value === null || value === undefined) return <p className="muted">No {label.toLowerCase()}.</p>;
  return (
    <pre className="json" aria-label={label} tabIndex={0}>
      {json(value)}
    </pre>
  );
}
