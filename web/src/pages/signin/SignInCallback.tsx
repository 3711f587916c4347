import { useEffect } from "react";
import { useTheme } from "../../components/Layout";
import { finishSignIn } from "../../lib/oidc";

/** /ui/auth/callback: where the identity provider sends the tab back with a code. */
export function SignInCallback({ onDone }: { onDone: () => void }) {
  useTheme();
  useEffect(() => {
    let live = true;
    void finishSignIn().then(() => {
      if (live) onDone();
    });
    return () => {
      live = false;
    };
  }, [onDone]);
  return (
    <main className="signin" id="main">
      <div className="card signin-card" data-testid="signin-callback" aria-busy="true">
        <h1>Signing in…</h1>
        <p className="muted">Exchanging the identity provider's answer for a token.</p>
      </div>
    </main>
  );
}
