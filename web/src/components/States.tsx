import type { ReactNode } from "react";
import type { UserErrorLike } from "../lib/userError";

export function Loading({ what }: { what: string }) {
  return (
    <div className="state" role="status" aria-live="polite">
      Loading {what}…
    </div>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <div className="state empty">{children}</div>;
}

export function ErrorBox({ error }: { error: Error | string }) {
  const message = typeof error === "string" ? error : error.message;
  return (
    <div className="error-box" role="alert">
      {message}
    </div>
  );
}

export function UserErrorBox({ error }: { error: UserErrorLike }) {
  return (
    <div className="error-box" role="alert">
      <strong>{error.message ?? error.__typename}</strong>
      {error.retryAfter !== undefined && <span> Retry after {Math.ceil(error.retryAfter)} s.</span>}
      {error.problems && error.problems.length > 0 && (
        <ul className="problems">
          {error.problems.map((p, i) => (
            <li key={i}>
              <code>{p.path}</code>
              {p.nodeId ? ` (node ${p.nodeId})` : ""}: {p.message}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
