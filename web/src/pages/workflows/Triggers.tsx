import { useMutation } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { ErrorBox, UserErrorBox } from "../../components/States";
import { Time } from "../../components/Time";
import {
  CreateTriggerDocument,
  DeleteTriggerDocument,
  RotateTriggerSecretDocument,
  UpdateTriggerDocument,
  type TriggerKind,
  type WorkflowPageQuery,
} from "../../gql/graphql";
import { request } from "../../lib/api";
import { exact } from "../../lib/format";
import { asUserError, type UserErrorLike } from "../../lib/userError";
import { shortId } from "../../lib/ids";
import { TableScroll } from "../../components/TableScroll";

type TriggerRow = NonNullable<WorkflowPageQuery["workflow"]>["triggers"][number];

const TEMPLATES: Record<TriggerKind, string> = {
  WEBHOOK: JSON.stringify({ mode: "async" }, null, 2),
  CRON: JSON.stringify({ expression: "*/5 * * * *", timezone: Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC" }, null, 2),
  MANUAL: "{}",
};

export function Triggers({ workflowId, triggers, onChange }: { workflowId: string; triggers: TriggerRow[]; onChange: () => void }) {
  const [kind, setKind] = useState<TriggerKind>("WEBHOOK");
  const [config, setConfig] = useState(TEMPLATES.WEBHOOK);
  const [error, setError] = useState<UserErrorLike | Error | string | null>(null);
  const [secret, setSecret] = useState<{ id: string; secret: string } | null>(null);
  const create = useMutation({
    mutationFn: (cfg: unknown) => request(CreateTriggerDocument, { workflowId, type: kind, config: cfg, enabled: true }),
    onSuccess: (data) => {
      const result = data.createTrigger;
      const err = asUserError(result);
      if (err) return setError(err);
      if (result.__typename === "CreateTriggerPayload" && result.secret) setSecret({ id: result.trigger.id, secret: result.secret });
      setError(null);
      onChange();
    },
    onError: (e) => setError(e),
  });
  const [editing, setEditing] = useState<{ id: string; text: string } | null>(null);
  const rotate = useMutation({
    mutationFn: (id: string) => request(RotateTriggerSecretDocument, { id }),
    onSuccess: (data) => {
      const result = data.rotateTriggerSecret;
      const err = asUserError(result);
      if (err) return setError(err);
      if (result.__typename === "CreateTriggerPayload" && result.secret) setSecret({ id: result.trigger.id, secret: result.secret });
    },
    onError: (e) => setError(e),
  });
  const update = useMutation({
    mutationFn: (v: { id: string; enabled?: boolean; config?: unknown }) => request(UpdateTriggerDocument, v),
    onSuccess: (data) => {
      const err = asUserError(data.updateTrigger);
      setError(err);
      if (!err) setEditing(null);
      onChange();
    },
    onError: (e) => setError(e),
  });
  const remove = useMutation({
    mutationFn: (id: string) => request(DeleteTriggerDocument, { id }),
    onSuccess: (data) => {
      setError(asUserError(data.deleteTrigger));
      onChange();
    },
    onError: (e) => setError(e),
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    let cfg: unknown;
    try {
      cfg = JSON.parse(config);
    } catch (e) {
      setError(`The config is not JSON: ${(e as Error).message}`);
      return;
    }
    create.mutate(cfg);
  };
  return (
    <div>
      {error && (typeof error === "string" || error instanceof Error ? <ErrorBox error={error} /> : <UserErrorBox error={error} />)}
      {secret && (
        <div className="notice" role="status" data-testid="trigger-secret">
          Signing secret of trigger <span className="mono">{shortId(secret.id)}</span>, shown this once: <code>{secret.secret}</code>
          <button type="button" className="ghost" onClick={() => setSecret(null)}>
            I have saved it
          </button>
        </div>
      )}
      {triggers.length === 0 ? (
        <p className="muted">No triggers: this workflow starts only when asked through the API or this page.</p>
      ) : (
        <TableScroll label="Triggers">
        <table className="table" aria-label="Triggers">
          <thead>
            <tr>
              <th scope="col">Type</th>
              <th scope="col">Config</th>
              <th scope="col">Next / last</th>
              <th scope="col">Enabled</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {triggers.map((t) => (
              <tr key={t.id}>
                <td>{t.type.toLowerCase()}</td>
                <td>
                  <div className="cell-wide">
                  {t.webhookUrl && (
                    <div>
                      URL: <code>{t.webhookUrl}</code>
                    </div>
                  )}
                  <code className="small">{JSON.stringify(t.config)}</code>
                  </div>
                </td>
                <td>
                  {t.nextFireTimes.length > 0 ? (
                    <ol className="fire-times" aria-label="Next fire times (your time zone)">
                      {t.nextFireTimes.map((at) => (
                        <li key={at}>{exact(at)}</li>
                      ))}
                    </ol>
                  ) : (
                    t.nextRunAt && <div>next {exact(t.nextRunAt)}</div>
                  )}
                  {t.lastFiredAt && (
                    <div className="muted">
                      last <Time iso={t.lastFiredAt} />
                    </div>
                  )}
                </td>
                <td>
                  <label>
                    <input type="checkbox" checked={t.enabled} onChange={(e) => update.mutate({ id: t.id, enabled: e.target.checked })} /> {t.enabled ? "on" : "off"}
                  </label>
                </td>
                <td className="row-actions">
                  <button type="button" className="ghost" onClick={() => setEditing({ id: t.id, text: JSON.stringify(t.config, null, 2) })}>
                    Edit
                  </button>
                  {t.type === "WEBHOOK" && (
                    <button type="button" className="ghost" onClick={() => window.confirm("Rotate the signing secret? Senders need the new one.") && rotate.mutate(t.id)}>
                      Rotate secret
                    </button>
                  )}
                  <button type="button" className="ghost" onClick={() => window.confirm("Delete this trigger?") && remove.mutate(t.id)}>
                    Delete
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        </TableScroll>
      )}
      {editing && (
        <form
          className="card"
          aria-labelledby="edit-trigger"
          onSubmit={(e) => {
            e.preventDefault();
            try {
              update.mutate({ id: editing.id, config: JSON.parse(editing.text) as unknown });
            } catch (err) {
              setError(`The config is not JSON: ${(err as Error).message}`);
            }
          }}
        >
          <h3 id="edit-trigger">Edit trigger {shortId(editing.id)}</h3>
          <label htmlFor="edit-trigger-config">Config (JSON)</label>
          <textarea id="edit-trigger-config" className="mono" rows={4} value={editing.text} onChange={(e) => setEditing({ ...editing, text: e.target.value })} />
          <button type="submit" className="primary">
            Save trigger
          </button>{" "}
          <button type="button" onClick={() => setEditing(null)}>
            Cancel
          </button>
        </form>
      )}
      <form className="card" onSubmit={submit} aria-labelledby="new-trigger">
        <h3 id="new-trigger">New trigger</h3>
        <label>
          Type{" "}
          <select
            value={kind}
            onChange={(e) => {
              const k = e.target.value as TriggerKind;
              setKind(k);
              setConfig(TEMPLATES[k]);
            }}
          >
            <option value="WEBHOOK">webhook</option>
            <option value="CRON">cron</option>
            <option value="MANUAL">manual</option>
          </select>
        </label>
        <label htmlFor="trigger-config">Config (JSON)</label>
        <textarea id="trigger-config" className="mono" rows={4} value={config} onChange={(e) => setConfig(e.target.value)} />
        <button type="submit" className="primary" disabled={create.isPending}>
          Create trigger
        </button>
      </form>
    </div>
  );
}
