import { useInfiniteQuery } from "@tanstack/react-query";
import { Link } from "react-router";
import { Empty, ErrorBox, Loading } from "../../components/States";
import { StatusBadge } from "../../components/Status";
import { Time } from "../../components/Time";
import { WorkflowsDocument } from "../../gql/graphql";
import { request } from "../../lib/api";
import { useSearchState } from "../../lib/searchState";
import { TableScroll } from "../../components/TableScroll";

export function WorkflowsPage() {
  const [params, setParam] = useSearchState();
  const search = params.get("q") ?? "";
  const list = useInfiniteQuery({
    queryKey: ["workflows"],
    queryFn: ({ pageParam, signal }) => request(WorkflowsDocument, { first: 100, after: pageParam }, signal),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => (last.workflows.pageInfo.hasNextPage ? last.workflows.pageInfo.endCursor : null),
  });
  const rows = (list.data?.pages.flatMap((p) => p.workflows.edges.map((e) => e.node)) ?? []).filter(
    (w) => !search || w.name.toLowerCase().includes(search.toLowerCase()) || (w.description ?? "").toLowerCase().includes(search.toLowerCase()),
  );
  return (
    <div>
      <div className="page-head">
        <h1>Workflows</h1>
        <Link className="button-like" to="/workflows/new">
          New workflow
        </Link>
      </div>
      <div className="filters">
        <label>
          Search{" "}
          <input
            type="search"
            value={search}
            onChange={(e) => setParam("q", e.target.value)}
            placeholder="name or description"
          />
        </label>
      </div>
      {list.isPending ? (
        <Loading what="workflows" />
      ) : list.error ? (
        <ErrorBox error={list.error} />
      ) : rows.length === 0 ? (
        <Empty>{search ? "No workflow matches." : "No workflows yet: create one with New workflow, or through the API (createWorkflow, POST /api/workflows)."}</Empty>
      ) : (
        <TableScroll label="Workflows">
        <table className="table" aria-label="Workflows">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Version</th>
              <th scope="col">Triggers</th>
              <th scope="col">Last run</th>
              <th scope="col">Success (last 20)</th>
              <th scope="col">Updated</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((w) => {
              const runs = w.executions.edges.map((e) => e.node);
              const ended = runs.filter((r) => r.status === "COMPLETED" || r.status === "FAILED" || r.status === "CANCELLED");
              const ok = ended.filter((r) => r.status === "COMPLETED").length;
              const last = runs[0];
              return (
                <tr key={w.id}>
                  <td>
                    <Link to={`/workflows/${w.id}`}>{w.name}</Link>
                    {w.description && <div className="muted small">{w.description}</div>}
                  </td>
                  <td>v{w.version}</td>
                  <td>
                    {w.triggers.length === 0
                      ? "manual"
                      : w.triggers.map((t) => `${t.type.toLowerCase()}${t.enabled ? "" : " (off)"}`).join(", ")}
                  </td>
                  <td>
                    {last ? (
                      <Link to={`/runs/${last.id}`}>
                        <StatusBadge status={last.status} /> <Time iso={last.createdAt} />
                      </Link>
                    ) : (
                      <span className="muted">never</span>
                    )}
                  </td>
                  <td>{ended.length ? `${Math.round((ok / ended.length) * 100)} %` : "–"}</td>
                  <td>
                    <Time iso={w.updatedAt} />
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
        </TableScroll>
      )}
      {list.hasNextPage && (
        <button type="button" onClick={() => void list.fetchNextPage()}>
          Load more
        </button>
      )}
    </div>
  );
}
