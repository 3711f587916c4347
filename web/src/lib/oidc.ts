// Sign-in with the OIDC provider the server names (GET /ui/oidc.json): the Authorization
// Code flow with PKCE (S256), run by this page as a public client (no secret).
//
// 1. beginSignIn keeps state, code_verifier and nonce in this tab's sessionStorage and
//    sends the browser to the provider's authorization endpoint.
// 2. The provider sends it back to /ui/auth/callback?code=…&state=…; completeSignIn takes
//    the pending sign-in out of sessionStorage (it is good once), checks the state,
//    exchanges the code and the verifier for tokens at the token endpoint, checks the ID
//    token's nonce, and returns the token the API is to be sent (the server verifies it).
// Every refusal is a SignInError whose message the sign-in page shows.
import { jwtClaims, setCredential, signOut } from "./auth";
import { codeChallenge, newVerifier, randomToken } from "./pkce";

export interface OidcProvider {
  provider: string;
  issuer: string;
  clientId: string;
  scopes: string;
  bearer: "id_token" | "access_token";
  authorizationEndpoint: string;
  tokenEndpoint: string;
}

export interface SignInOptions {
  provider: OidcProvider | null;
  /** Why the provider the server names cannot be offered now. */
  error: string | null;
}

export class SignInError extends Error {}

export const CONFIG_PATH = "/ui/oidc.json";
export const CALLBACK_PATH = "/ui/auth/callback";
const PENDING = "flowsync.oidc.pending";

interface Pending {
  state: string;
  verifier: string;
  nonce: string;
  redirectUri: string;
  returnTo: string;
  provider: OidcProvider;
}

const text = (value: unknown): value is string => typeof value === "string" && value !== "";

function asProvider(value: unknown): OidcProvider | null {
  if (value === null || typeof value !== "object") return null;
  const v = value as Record<string, unknown>;
  const { provider, issuer, clientId, scopes, bearer, authorizationEndpoint, tokenEndpoint } = v;
  if (![provider, issuer, clientId, scopes, authorizationEndpoint, tokenEndpoint].every(text)) return null;
  if (bearer !== "id_token" && bearer !== "access_token") return null;
  return v as unknown as OidcProvider;
}

/** What the sign-in page offers besides pasting a key: the server's provider, if any. */
export async function loadSignInOptions(fetchImpl: typeof fetch = fetch): Promise<SignInOptions> {
  let reply: unknown;
  try {
    const response = await fetchImpl(CONFIG_PATH, { headers: { Accept: "application/json" }, cache: "no-store" });
    reply = await response.json();
  } catch (error) {
    return { provider: null, error: `The server did not say which identity provider to offer: ${String(error)}` };
  }
  const body = (reply ?? {}) as { oidc?: unknown; error?: { message?: unknown } };
  const message = body.error?.message;
  if (typeof message === "string") return { provider: null, error: message };
  return { provider: asProvider(body.oidc), error: null };
}

/** A path of the dashboard to come back to; anything else is the overview. */
export function returnPath(path: string): string {
  const inside = path.startsWith("/ui/") && !path.startsWith("//") && !path.includes("\\");
  return inside && !path.startsWith(CALLBACK_PATH) ? path : "/ui/";
}

/** Start the sign-in: remember it in this tab, then leave for the provider. */
export async function beginSignIn(provider: OidcProvider, returnTo: string, win: Window = window): Promise<void> {
  const verifier = newVerifier();
  const pending: Pending = {
    state: randomToken(),
    verifier,
    nonce: randomToken(),
    redirectUri: win.location.origin + CALLBACK_PATH,
    returnTo: returnPath(returnTo),
    provider,
  };
  const url = new URL(provider.authorizationEndpoint);
  url.searchParams.set("response_type", "code");
  url.searchParams.set("client_id", provider.clientId);
  url.searchParams.set("redirect_uri", pending.redirectUri);
  url.searchParams.set("scope", provider.scopes);
  url.searchParams.set("state", pending.state);
  url.searchParams.set("nonce", pending.nonce);
  url.searchParams.set("code_challenge", await codeChallenge(verifier));
  url.searchParams.set("code_challenge_method", "S256");
  win.sessionStorage.setItem(PENDING, JSON.stringify(pending));
  win.location.assign(url.toString());
}

export function isCallback(location: Location): boolean {
  return location.pathname === CALLBACK_PATH;
}

function takePending(storage: Storage): Pending | null {
  const raw = storage.getItem(PENDING);
  storage.removeItem(PENDING);
  if (raw === null) return null;
  try {
    const pending = JSON.parse(raw) as Pending;
    return text(pending.state) && text(pending.verifier) && asProvider(pending.provider) ? pending : null;
  } catch {
    return null;
  }
}

const detail = (error: unknown, description: unknown) =>
  `${text(error) ? error : "no error code"}${text(description) ? ` (${description})` : ""}`;

/** Finish the sign-in the provider sent this tab back from: the token to send the API, and
 * where to go. Throws SignInError saying what went wrong. */
export async function completeSignIn(
  location: Location,
  storage: Storage = window.sessionStorage,
  fetchImpl: typeof fetch = fetch,
): Promise<{ token: string; returnTo: string }> {
  const params = new URLSearchParams(location.search);
  const pending = takePending(storage);
  const name = pending?.provider.provider ?? "The identity provider";
  if (params.has("error")) {
    throw new SignInError(`${name} did not sign you in: ${detail(params.get("error"), params.get("error_description"))}.`);
  }
  if (pending === null) {
    throw new SignInError(
      "No sign-in was started in this tab (or it was completed already), so this answer from the provider was refused. Sign in again.",
    );
  }
  if (params.get("state") !== pending.state) {
    throw new SignInError(
      `${name}'s answer does not belong to the sign-in started in this tab (its state does not match), so it was refused. Sign in again.`,
    );
  }
  const code = params.get("code");
  if (!code) throw new SignInError(`${name}'s answer holds no authorization code. Sign in again.`);
  const { provider } = pending;
  let response: Response;
  try {
    response = await fetchImpl(provider.tokenEndpoint, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" },
      body: new URLSearchParams({
        grant_type: "authorization_code",
        code,
        redirect_uri: pending.redirectUri,
        client_id: provider.clientId,
        code_verifier: pending.verifier,
      }).toString(),
      credentials: "omit",
      cache: "no-store",
    });
  } catch (error) {
    throw new SignInError(
      `${name}'s token endpoint (${provider.tokenEndpoint}) could not be reached: ${String(error)}. ` +
        "The network, the provider's CORS settings or this page's Content-Security-Policy stopped it.",
    );
  }
  let reply: Record<string, unknown> = {};
  try {
    reply = ((await response.json()) ?? {}) as Record<string, unknown>;
  } catch {
    // described below by the status
  }
  if (!response.ok) {
    throw new SignInError(
      `${name} refused to exchange the sign-in's code for tokens (HTTP ${response.status}): ${detail(reply.error, reply.error_description)}.`,
    );
  }
  const token = reply[provider.bearer];
  if (!text(token) || jwtClaims(token) === null) {
    throw new SignInError(`${name}'s answer holds no ${provider.bearer} that is a JWT, which FlowSync needs.`);
  }
  const idToken = reply.id_token;
  if (text(idToken) && jwtClaims(idToken)?.nonce !== pending.nonce) {
    throw new SignInError(`${name}'s ID token was not issued for this sign-in (its nonce does not match), so it was refused.`);
  }
  return { token, returnTo: returnPath(pending.returnTo) };
}

let finishing: Promise<void> | null = null;

/** Complete the sign-in of this page's callback once (however often it is asked), take
 * the code out of the address bar, and sign the tab in, or out with the reason. */
export function finishSignIn(win: Window = window): Promise<void> {
  finishing ??= (async () => {
    try {
      const { token, returnTo } = await completeSignIn(win.location, win.sessionStorage);
      win.history.replaceState(null, "", returnTo);
      setCredential(token);
    } catch (error) {
      win.history.replaceState(null, "", "/ui/");
      signOut(error instanceof SignInError ? error.message : `The sign-in failed: ${String(error)}`);
    }
  })();
  return finishing;
}
