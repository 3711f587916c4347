"""An OIDC provider's JWKS for tests: RSA keys made in the test, served over HTTP on
127.0.0.1 by a tiny server in a thread, and tokens signed with them."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

ISSUER = "https://issuer.test/"
AUDIENCE = "flowsync-api"


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class Provider:
    """Signs tokens with `key` (published as kid `k1`)."""

    key: rsa.RSAPrivateKey
    url: str
    requests: list[str]

    def token(
        self,
        sub: str = "user-1",
        *,
        iss: str = ISSUER,
        aud: str | None = AUDIENCE,
        expires_in: float = 300,
        key: rsa.RSAPrivateKey | None = None,
        kid: str = "k1",
        **extra: Any,
    ) -> str:
        claims: dict[str, Any] = {"sub": sub, "iss": iss, "exp": int(time.time() + expires_in)}
        claims["iat"] = int(time.time())
        if aud is not None:
            claims["aud"] = aud
        claims.update(extra)
        return jwt.encode(claims, key or self.key, algorithm="RS256", headers={"kid": kid})


@contextmanager
def jwks_server() -> Iterator[Provider]:
    key = rsa_key()
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    body = json.dumps({"keys": [{**public, "kid": "k1", "use": "sig", "alg": "RS256"}]}).encode()
    requests: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Provider(key, f"http://127.0.0.1:{server.server_address[1]}/jwks.json", requests)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
