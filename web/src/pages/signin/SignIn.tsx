import { useEffect, useState, type FormEvent } from "react";
import { setCredential, signOutReason } from "../../lib/auth";
import { beginSignIn, loadSignInOptions, type SignInOptions } from "../../lib/oidc";
import { useTheme } from "../../components/Layout";

export function SignIn() {
  useTheme();
  const [value, setValue] = useState("");
  const [options, setOptions] = useState<SignInOptions | null>(null);
  const [leaving, setLeaving] = useState(false);
  const [startError, setStartError] = useState<string | null>(null);
  const reason = signOutReason();
  useEffect(() => {
    let live = true;
    void loadSignInOptions().then((found) => {
      if (live) setOptions(found);
    });
    return () => {
      live = false;
    };
  }, []);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (value.trim()) setCredential(value.trim());
  };
  const provider = options?.provider ?? null;
  const start = () => {
    if (!provider) return;
    setLeaving(true);
    setStartError(null);
    beginSignIn(provider, window.location.pathname + window.location.search).catch((error: unknown) => {
      setLeaving(false);
      setStartError(error instanceof Error ? error.message : String(error));
    });
  };
  return (
    <main className="signin" id="main">
      <div className="card signin-card" data-testid="signin">
        <h1 id="signin-title">Sign in to FlowSync</h1>
        {reason && (
          <div className="error-box" role="alert" data-testid="signin-reason">
            {reason}
          </div>
        )}
        {provider && (
          <div className="signin-provider">
            <button type="button" className="primary" onClick={start} disabled={leaving} data-testid="signin-provider">
              Sign in with {provider.provider}
            </button>
            {startError && (
              <div className="error-box" role="alert">
                {startError}
              </div>
            )}
            <p className="muted signin-or">or paste a key or token</p>
          </div>
        )}
        {options?.error && (
          <p className="muted" role="status" data-testid="signin-provider-error">
            {options.error}
          </p>
        )}
        <form onSubmit={submit} aria-labelledby="signin-title">
          <p className="muted">
            Paste an API key (<code>fsk_…</code>) or a JWT from your identity provider. It is kept for this browser tab
            only.
            <br />
            <code>flowsync dev</code> prints a sign-in link; <code>flowsync api-keys create --owner NAME</code> makes a
            key.
          </p>
          <label htmlFor="credential">API key or token</label>
          <input
            id="credential"
            name="credential"
            type="password"
            autoComplete="off"
            value={value}
            onChange={(e) => setValue(e.target.value)}
            autoFocus={!provider}
          />
          <button type="submit" className={provider ? "" : "primary"} disabled={!value.trim()}>
            Sign in
          </button>
        </form>
      </div>
    </main>
  );
}
