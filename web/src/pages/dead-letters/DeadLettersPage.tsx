import { useInfiniteQuery, useQueryClient } from "@tanstack/react-query";
import { Fragment, useState } from "react";
import { Link } from "react-router";
import { Json } from "../../components/Json";
import { Empty, ErrorBox, Loading } from "../../components/States";
import { Time } from "../../components/Time";
import { DeadLettersDocument, RedriveDocument } from "../../gql/graphql";
import { request } from "../../lib/api";
import { errorText } from "../../lib/format";
import { useSearchState } from "../../lib/searchState";
import { asUserError } from "../../lib/userError";
import { shortId } from "../../lib/ids";
import { TableScroll } from "../../components/TableScroll";
import { Id } from "../../components/Id";

export function DeadLettersPage() {
  const client = useQueryClient();
  const [params, setParam] = useSearchState();
  const includeRedriven = params.get("redriven") === "1";
  const executionId = params.get("run") || null;
  const letters = useInfiniteQuery({
    queryKey: ["dead-letters", includeRedriven, executionId],
    queryFn: ({ pageParam, signal }) =>
      request(DeadLettersDocument, { executionId, includeRedriven, first: 50, after: pageParam }, signal),
    initialPageParam: null as string | null,
    // Keep showing the previous rows while a changed filter loads (no flash, no lost focus).
    placeholderData: (previous) => previous,
    getNextPageParam: (last) => (last.deadLetters.pageInfo.hasNextPage ? last.deadLetters.pageInfo.endCursor : null),
  });
  const [open, setOpen] = useState<string | null>(null);
  const [checked, setChecked] = useState<Set<string>>(new Set());
  const [message, setMessage] = useState<string | null>(null);
  const redrive = async (ids: string[]) => {
    const failures: string[] = [];
    for (const id of ids) {
      try {
        const err = asUserError((await request(RedriveDocument, { id })).redriveDeadLetter);
        if (err) failures.push(`${shortId(id)}: ${err.message ?? err.__typename}`);
      } catch (e) {
        failures.push(`${shortId(id)}: ${(e as Error).message}`);
      }
    }
    setMessage(`Redrove ${ids.length - failures.length} of ${ids.length}.${failures.length ? " " + failures.join("; ") : ""}`);
    setChecked(new Set());
    void client.invalidateQueries({ queryKey: ["dead-letters"] });
  };
  if (letters.isPending) return <Loading what="dead letters" />;
  if (letters.error) return <ErrorBox error={letters.error} />;
  const rows = letters.data.pages.flatMap((p) => p.deadLetters.edges.map((e) => e.node));
  return (
    <div>
      <div className="page-head">
        <h1>Dead letters</h1>
      </div>
      <div className="filters">
        <label>
          <input
            type="checkbox"
            checked={includeRedriven}
            onChange={(e) => setParam("redriven", e.target.checked ? "1" : null)}
          />
          Show redriven ones too
        </label>
        {executionId && (
          <span>
            Of run <Link to={`/runs/${executionId}`} className="mono">{shortId(executionId)}</Link> ·{" "}
            <Link to="/dead-letters">all runs</Link>
          </span>
        )}
      </div>
      <div className="bulk" aria-live="polite">
        <span>{checked.size} selected</span>
        <button type="button" disabled={checked.size === 0} onClick={() => void redrive([...checked])}>
          Redrive selected
        </button>
        {message && <span className="muted" data-testid="redrive-message">{message}</span>}
      </div>
      {rows.length === 0 ? (
        <Empty>No dead letters: every step that failed for good would be here, ready to redrive.</Empty>
      ) : (
        <TableScroll label="Dead letters">
        <table className="table" aria-label="Dead letters">
          <thead>
            <tr>
              <th scope="col">
                <span className="sr-only">Select</span>
              </th>
              <th scope="col">Step</th>
              <th scope="col">Run</th>
              <th scope="col">Attempts</th>
              <th scope="col">Error</th>
              <th scope="col">Failed</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((d) => (
              <Fragment key={d.id}>
                <tr data-dead-letter-id={d.id} data-redriven={d.redrivenAt ? "true" : "false"}>
                  <td>
                    <input
                      type="checkbox"
                      aria-label={`Select dead letter of step ${d.nodeId}`}
                      disabled={d.redrivenAt != null}
                      checked={checked.has(d.id)}
                      onChange={(e) => {
                        const next = new Set(checked);
                        if (e.target.checked) next.add(d.id);
                        else next.delete(d.id);
                        setChecked(next);
                      }}
                    />
                  </td>
                  <td>
                    <Id id={d.nodeId} full />
                  </td>
                  <td>
                    <Link to={`/runs/${d.executionId}`}>
                      <Id id={d.executionId} />
                    </Link>
                  </td>
                  <td>{d.attempts}</td>
                  <td className="error-text">{errorText(d.error)}</td>
                  <td>
                    <Time iso={d.createdAt} />
                  </td>
                  <td className="row-actions">
                    <button type="button" className="ghost" onClick={() => setOpen(open === d.id ? null : d.id)} aria-expanded={open === d.id}>
                      Inspect
                    </button>
                    {d.redrivenAt ? (
                      <span className="muted">
                        redriven <Time iso={d.redrivenAt} />
                      </span>
                    ) : (
                      <button type="button" onClick={() => void redrive([d.id])}>
                        Redrive
                      </button>
                    )}
                  </td>
                </tr>
                {open === d.id && (
                  <tr>
                    <td colSpan={7}>
                      <div className="split">
                        <div>
                          <h3>Error</h3>
                          <Json value={d.error} label="Error" />
                        </div>
                        <div>
                          <h3>Payload</h3>
                          <Json value={d.payload} label="Payload" />
                        </div>
                      </div>
                    </td>
                  </tr>
                )}
              </Fragment>
            ))}
          </tbody>
        </table>
        </TableScroll>
      )}
      {letters.hasNextPage && (
        <button type="button" onClick={() => void letters.fetchNextPage()}>
          Load more
        </button>
      )}
    </div>
  );
}
