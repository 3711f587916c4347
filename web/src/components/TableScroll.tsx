import type { ReactNode } from "react";

/** A table's own box that scrolls sideways when the table is wider than the window (a
 * phone), so that the page never does. Focusable: a box that scrolls must be reachable by
 * keyboard. */
export function TableScroll({ label, children }: { label: string; children: ReactNode }) {
  return (
    <div className="table-scroll" role="region" aria-label={label} tabIndex={0}>
      {children}
    </div>
  );
}
