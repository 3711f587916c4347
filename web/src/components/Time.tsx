import { TICK_MS, useNow } from "../lib/clock";
import { exact, relative } from "../lib/format";

export function Time({ iso }: { iso: string | null | undefined }) {
  const now = useNow();
  if (!iso) return <span className="muted">–</span>;
  // The clock is up to a tick old: a time that new is "now", not "in 3 seconds".
  const at = Date.parse(iso);
  const reference = at > now && at - now <= 2 * TICK_MS ? at : now;
  return (
    <time dateTime={iso} title={exact(iso)}>
      {relative(iso, reference)}
    </time>
  );
}
