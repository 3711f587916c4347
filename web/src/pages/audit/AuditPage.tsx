import { useInfiniteQuery } from "@tanstack/react-query";
import { Empty, ErrorBox, Loading } from "../../components/States";
import { Time } from "../../components/Time";
import { AuditDocument } from "../../gql/graphql";
import { request } from "../../lib/api";
import { useSearchState } from "../../lib/searchState";
import { shortId } from "../../lib/ids";
import { TableScroll } from "../../components/TableScroll";

const FILTERS: [string, string][] = [
  ["action", "Action"],
  ["entityType", "Object type"],
  ["entityId", "Object id"],
  ["actor", "Actor (exact)"],
];

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
          <label key={k}>
            {label} <input defaultValue={params.get(k) ?? ""} onBlur={(e) => set(k, e.target.value.trim())} onKeyDown={(e) => e.key === "Enter" && set(k, e.currentTarget.value.trim())} />
          </label>
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
                <td>{r.actor}</td>
                <td>{r.action}</td>
                <td className="mono">
                  {r.entityType} {shortId(r.entityId)}
                </td>
                <td className="mono small">{JSON.stringify(r.data).slice(0, 160)}</td>
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
