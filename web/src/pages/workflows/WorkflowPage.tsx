import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { RunGraph } from "../../components/RunGraph";
import { ErrorBox, Loading, UserErrorBox } from "../../components/States";
import { Time } from "../../components/Time";
import { StartRunDocument, WorkflowPageDocument } from "../../gql/graphql";
import { request } from "../../lib/api";
import { readDefinition } from "../../lib/definition";
import { useGraphQL } from "../../lib/query";
import { asUserError, type UserErrorLike } from "../../lib/userError";
import { RunsList } from "../runs/RunsPage";
import { describeDiff, diffDefinitions } from "./diff";
import { Triggers } from "./Triggers";
import { TableScroll } from "../../components/TableScroll";
import { Id } from "../../components/Id";

function StartRun({ workflowId }: { workflowId: string }) {
  const navigate = useNavigate();
  const client = useQueryClient();
  const [text, setText] = useState("{}");
  const [parseError, setParseError] = useState<string | null>(null);
  const [error, setError] = useState<UserErrorLike | Error | null>(null);
  const start = useMutation({
    mutationFn: (input: unknown) => request(StartRunDocument, { workflowId, input }),
    onSuccess: (data) => {
      const result = data.startExecution;
      const err = asUserError(result);
      if (err) setError(err);
      else if (result.__typename === "StartExecutionPayload") {
        void client.invalidateQueries({ queryKey: ["runs"] });
        void navigate(`/runs/${result.execution.id}`);
      }
    },
    onError: (e) => setError(e),
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    let input: unknown;
    try {
      input = text.trim() ? JSON.parse(text) : null;
    } catch (e) {
      setParseError(`The input is not JSON: ${(e as Error).message}`);
      return;
    }
    setParseError(null);
    start.mutate(input);
  };
  return (
    <form className="card" onSubmit={submit} aria-labelledby="start-title">
      <h2 id="start-title">Start a run</h2>
      <label htmlFor="run-input">Input (JSON)</label>
      <textarea
        id="run-input"
        className="mono"
        rows={6}
        value={text}
        onChange={(e) => {
          setText(e.target.value);
          try {
            if (e.target.value.trim()) JSON.parse(e.target.value);
            setParseError(null);
          } catch (err) {
            setParseError(`The input is not JSON: ${(err as Error).message}`);
          }
        }}
        aria-invalid={parseError !== null}
        aria-describedby={parseError ? "run-input-error" : undefined}
      />
      {parseError && (
        <p id="run-input-error" className="field-error">
          {parseError}
        </p>
      )}
      {error && (error instanceof Error ? <ErrorBox error={error} /> : <UserErrorBox error={error} />)}
      <button type="submit" className="primary" disabled={start.isPending || parseError !== null}>
        Start run
      </button>
    </form>
  );
}

export function WorkflowPage() {
  const { id = "" } = useParams();
  const page = useGraphQL(["workflow", id], WorkflowPageDocument, { id });
  const [tab, setTab] = useState<"runs" | "graph" | "versions" | "triggers">("runs");
  if (page.isPending) return <Loading what="the workflow" />;
  if (page.error) return <ErrorBox error={page.error} />;
  const wf = page.data.workflow;
  if (!wf) return <ErrorBox error={`No workflow ${id}: it does not exist or is not yours.`} />;
  const versions = page.data.workflowVersions?.edges.map((e) => e.node) ?? [];
  const theme = document.documentElement.dataset.theme === "dark" ? "dark" : "light";
  return (
    <div>
      <div className="page-head">
        <div>
          <p className="crumbs">
            <Link to="/workflows">Workflows</Link>
          </p>
          <h1>
            {wf.name} <span className="muted">v{wf.version}</span>
          </h1>
          {wf.description && <p className="muted">{wf.description}</p>}
          <p className="muted small">
            Updated <Time iso={wf.updatedAt} /> · {wf.maxConcurrency ? `at most ${wf.maxConcurrency} running at once` : "no concurrency limit"} ·{" "}
            <Id id={wf.id} full />
          </p>
        </div>
        <div className="actions">
          <Link className="button-like" to={`/workflows/${wf.id}/edit`}>
            Edit in the editor
          </Link>
        </div>
      </div>
      <div className="workflow-grid">
        <StartRun workflowId={wf.id} />
        <div>
          <div className="tabs" role="tablist" aria-label="Workflow views">
            {(["runs", "graph", "versions", "triggers"] as const).map((t) => (
              <button key={t} type="button" role="tab" aria-selected={tab === t} className={tab === t ? "tab active" : "tab"} onClick={() => setTab(t)}>
                {t === "runs" ? "Runs" : t === "graph" ? "Graph" : t === "versions" ? `Versions (${versions.length})` : `Triggers (${wf.triggers.length})`}
              </button>
            ))}
          </div>
          <div role="tabpanel">
            {tab === "runs" && <RunsList workflowId={wf.id} />}
            {tab === "graph" && (
              <RunGraph definition={readDefinition(wf.definition)} steps={{}} selected={null} onSelect={() => undefined} colorMode={theme} />
            )}
            {tab === "versions" && (
              <TableScroll label="Versions">
              <table className="table" aria-label="Versions">
                <thead>
                  <tr>
                    <th scope="col">Version</th>
                    <th scope="col">Saved</th>
                    <th scope="col">Change from the version before</th>
                  </tr>
                </thead>
                <tbody>
                  {versions.map((v, i) => {
                    const previous = versions[i + 1];
                    return (
                      <tr key={v.id}>
                        <td>v{v.version}</td>
                        <td>
                          <Time iso={v.createdAt} />
                        </td>
                        <td>{previous ? describeDiff(diffDefinitions(previous.definition, v.definition)) : "first version"}</td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
              </TableScroll>
            )}
            {tab === "triggers" && <Triggers workflowId={wf.id} triggers={wf.triggers} onChange={() => void page.refetch()} />}
          </div>
        </div>
      </div>
    </div>
  );
}
