import { useState, type FormEvent } from "react";
import { setCredential, signOutReason } from "../../lib/auth";
import { useTheme } from "../../components/Layout";

export function SignIn() {
  useTheme();
  const [value, setValue] = useState("");
  const reason = signOutReason();
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (value.trim()) setCredential(value.trim());
  };
  return (
    <main className="signin" id="main">
      <form className="card signin-card" onSubmit={submit} aria-labelledby="signin-title" data-testid="signin">
        <h1 id="signin-title">Sign in to FlowSync</h1>
        {reason && (
          <div className="error-box" role="alert" data-testid="signin-reason">
            {reason}
          </div>
        )}
        <p className="muted">
          Paste an API key (<code>fsk_…</code>) or a JWT from your identity provider. It is kept for this browser tab only.
          <br />
          <code>flowsync dev</code> prints a sign-in link; <code>flowsync api-keys create --owner NAME</code> makes a key.
        </p>
        <label htmlFor="credential">API key or token</label>
        <input
          id="credential"
          name="credential"
          type="password"
          autoComplete="off"
          value={value}
          onChange={(e) => setValue(e.target.value)}
          autoFocus
        />
        <button type="submit" className="primary" disabled={!value.trim()}>
          Sign in
        </button>
      </form>
    </main>
  );
}
