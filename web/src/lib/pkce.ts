// PKCE (RFC 7636) for the dashboard's OIDC sign-in: a random code_verifier and its S256
// code_challenge, base64url(sha256(verifier)) without padding; and random state / nonce.

/** base64url without padding (RFC 4648, section 5). */
export function base64url(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** The bytes of a base64url string (padding optional); throws on other characters. */
export function fromBase64url(text: string): Uint8Array {
  if (!/^[A-Za-z0-9_-]*={0,2}$/.test(text)) throw new Error("not base64url");
  const plain = text.replace(/=+$/, "").replace(/-/g, "+").replace(/_/g, "/");
  const binary = atob(plain + "=".repeat((4 - (plain.length % 4)) % 4));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

/** `bytes` random bytes from the platform's CSPRNG, base64url: 32 bytes give 43 characters. */
export function randomToken(bytes = 32): string {
  const buffer = new Uint8Array(bytes);
  crypto.getRandomValues(buffer);
  return base64url(buffer);
}

// RFC 7636, 4.1: 43 to 128 characters of [A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~".
const VERIFIER = /^[A-Za-z0-9\-._~]{43,128}$/;

export function isVerifier(value: string): boolean {
  return VERIFIER.test(value);
}

/** A new code_verifier: 32 random bytes, base64url (43 characters). */
export function newVerifier(): string {
  return randomToken(32);
}

/** The S256 code_challenge of a verifier. Needs WebCrypto, which browsers offer on secure
 * origins only (https, or http://localhost and 127.0.0.1). */
export async function codeChallenge(verifier: string): Promise<string> {
  if (!isVerifier(verifier)) {
    throw new Error("A PKCE code_verifier is 43 to 128 characters of A-Z a-z 0-9 - . _ ~.");
  }
  if (typeof crypto === "undefined" || !crypto.subtle) {
    throw new Error(
      "This page cannot compute the sign-in's PKCE challenge: the browser offers WebCrypto " +
        "on secure origins only (https://, or http://localhost).",
    );
  }
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}
