import { exact, relative } from "../lib/format";

export function Time({ iso }: { iso: string | null | undefined }) {
  if (!iso) return <span className="muted">–</span>;
  return (
    <time dateTime={iso} title={exact(iso)}>
      {relative(iso)}
    </time>
  );
}
