import { shortId } from "../lib/ids";

/** An id as a table shows it: on one line (never broken mid-word), cut with an ellipsis
 * where there is no room, the full id in its title. `full` shows all of it, else its short
 * name (lib/ids.ts). */
export function Id({ id, full = false }: { id: string; full?: boolean }) {
  return (
    <span className="id" title={id}>
      {full ? id : shortId(id)}
    </span>
  );
}
