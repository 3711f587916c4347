import { useInfiniteQuery } from "@tanstack/react-query";
import { useEffect, useRef, useState } from "react";
import { Empty, ErrorBox, Loading } from "../../components/States";
import { Time } from "../../components/Time";
import { AuditDocument } from "../../gql/graphql";
import { request } from "../../lib/api";
import { useSearchState } from "../../lib/searchState";
import { TableScroll } from "../../components/TableScroll";
import { Id } from "../../components/Id";

const FILTERS: [string, string][] = [
  ["action", "Action"],
  ["entityType", "Object type"],
  ["entityId", "Object id"],
  ["actor", "Actor (exact)"],
];

/** How long typing pauses before a filter applies (Enter applies at once). */
const DEBOUNCE_MS = 300;

/** One filter: applied as one types, once typing pauses (it used to wait for Enter or
 * leaving the field), or at once on Enter. */
function FilterInput({ label, value, onApply }: { label: string; value: string; onApply: (v: string) => void }) {
  const [text, setText] = useState(value);
  // The URL changed from elsewhere (a link, back and forward): show its value, unless it
  // is what is typed here (applied trimmed: a space being typed stays).
  const [shown, setShown] = useState(value);
  if (value !== shown) {
    setShown(value);
    if (value !== text.trim()) setText(value);
  }
  const apply = useRef(onApply);
  useEffect(() => {
    apply.current = onApply;
  });
  useEffect(() => {
    if (text.trim() === value) return;
    const timer = window.setTimeout(() => apply.current(text.trim()), DEBOUNCE_MS);
    return () => window.clearTimeout(timer);
  }, [text, value]);
  return (
    <label>
      {label}{" "}
      <input
        value={text}
        onChange={(e) => setText(e.target.value)}
        onKeyDown={(e) => e.key === "Enter" && onApply(text.trim())}
        onBlur={() => text.trim() !== value && onApply(text.trim())}
      />
    </label>
  );
}

export function AuditPage() {
  const [params, set] = useSearchState();
  const get = (k: string) => params.get(k) || null;
  const vars = { actor: get("actor"), action: get("action"), entityType: get("entityType"), entityId: get("entityId") };
  const audit = useInfiniteQuery({
    queryKey: ["audit", vars],
    queryFn: ({ pageParam, signal }) => request(AuditDocument, { ...vars, first: 100, after: pageParam }, signal),
    initialPageParam: null as string | null,
    // Keep showing the previous rows while a changed filter loads (no flash, no lost focus).
    placeholderData: (previous) => previous,
    getNextPageParam: (last) => (last.auditLog.pageInfo.hasNextPage ? last.auditLog.pageInfo.endCursor : null),
  });
  const rows = audit.data?.pages.flatMap((p) => p.auditLog.edges.map((e) => e.node)) ?? [];
  return (
    <div>
      <div className="page-head">
        <h1>Audit log</h1>
      </div>
      <form className="filters" onSubmit={(e) => e.preventDefault()}>
        {FILTERS.map(([k, label]) => (
          <FilterInput key={k} label={label} value={params.get(k) ?? ""} onApply={(v) => set(k, v)} />
        ))}
      </form>
      {audit.isPending ? (
        <Loading what="the audit log" />
      ) : audit.error ? (
        <ErrorBox error={audit.error} />
      ) : rows.length === 0 ? (
        <Empty>No audit entries match.</Empty>
      ) : (
        <TableScroll label="Audit log">
        <table className="table" aria-label="Audit log">
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">Actor</th>
              <th scope="col">Action</th>
              <th scope="col">Object</th>
              <th scope="col">Data</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr key={r.id}>
                <td>
                  <Time iso={r.at} />
                </td>
                <td>
                  <Id id={r.actor} full />
                </td>
                <td>{r.action}</td>
                <td className="nowrap">
                  {r.entityType} <Id id={r.entityId} />
                </td>
                <td className="mono small audit-data" title={JSON.stringify(r.data)}>
                  {JSON.stringify(r.data).slice(0, 160)}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        </TableScroll>
      )}
      {audit.hasNextPage && (
        <button type="button" onClick={() => void audit.fetchNextPage()}>
          Load more
        </button>
      )}
    </div>
  );
}
