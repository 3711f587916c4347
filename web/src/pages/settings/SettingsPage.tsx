import { useMutation } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { ErrorBox, UserErrorBox } from "../../components/States";
import { CreateApiKeyDocument, RevokeApiKeyDocument, type Role } from "../../gql/graphql";
import { request } from "../../lib/api";
import { asUserError, type UserErrorLike } from "../../lib/userError";
import { ApiKeyList } from "./ApiKeyList";

/** The roles a key may have (README, Teams and roles); the API refuses one above the
 * creator's own, and gives the creator's own when none is chosen. */
const ROLES: [Role, string][] = [
  ["VIEWER", "viewer: reads and subscribes"],
  ["OPERATOR", "operator: also starts, cancels, retries and redrives runs"],
  ["EDITOR", "editor: also changes workflows and triggers"],
  ["ADMIN", "admin: also members and API keys"],
];

export function SettingsPage() {
  const [name, setName] = useState("");
  const [role, setRole] = useState<Role | "">("");
  const [secret, setSecret] = useState<string | null>(null);
  const [error, setError] = useState<UserErrorLike | Error | null>(null);
  const [version, setVersion] = useState(0);
  const create = useMutation({
    mutationFn: () => request(CreateApiKeyDocument, { name, role: role || null }),
    onSuccess: (data) => {
      const result = data.createApiKey;
      const err = asUserError(result);
      if (err) return setError(err);
      if (result.__typename === "CreateApiKeyPayload") setSecret(result.secret);
      setError(null);
      setName("");
      setRole("");
      setVersion((v) => v + 1);
    },
    onError: (e) => setError(e),
  });
  const revoke = useMutation({
    mutationFn: (id: string) => request(RevokeApiKeyDocument, { id }),
    onSuccess: (data) => {
      setError(asUserError(data.revokeApiKey));
      setVersion((v) => v + 1);
    },
    onError: (e) => setError(e),
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (name.trim()) create.mutate();
  };
  return (
    <div>
      <div className="page-head">
        <h1>API keys</h1>
      </div>
      {error && (error instanceof Error ? <ErrorBox error={error} /> : <UserErrorBox error={error} />)}
      {secret && (
        <div className="notice" role="status" data-testid="new-key">
          Your new key, shown this once: <code>{secret}</code>
          <button type="button" className="ghost" onClick={() => setSecret(null)}>
            I have saved it
          </button>
        </div>
      )}
      <form className="card inline-form" onSubmit={submit}>
        <label htmlFor="key-name">Name</label>
        <input id="key-name" value={name} onChange={(e) => setName(e.target.value)} placeholder="ci-deploy" />
        <label htmlFor="key-role">Role</label>
        <select id="key-role" value={role} onChange={(e) => setRole(e.target.value as Role | "")}>
          <option value="">your own role (the default)</option>
          {ROLES.map(([r, text]) => (
            <option key={r} value={r}>
              {text}
            </option>
          ))}
        </select>
        <button type="submit" className="primary" disabled={!name.trim() || create.isPending}>
          Create key
        </button>
      </form>
      <ApiKeyList version={version} onRevoke={(id) => window.confirm("Revoke this key? Everything using it stops working.") && revoke.mutate(id)} />
    </div>
  );
}
