"""The action HTTP client against real servers on 127.0.0.1 (uvicorn in a thread).

Loopback is reached only through `NetworkPolicy(allow=["127.0.0.1/32"])`. Every other
address in these tests must be refused before a socket is opened: a recording network
backend (injected under the guard) lists each connection attempt, and the servers list
each request they receive, so "refused without connecting" is checked, not assumed.
"""

from __future__ import annotations

import asyncio
import gzip
import ipaddress
import json
import shutil
import socket
import ssl
import struct
import subprocess
import threading
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpcore
import pytest
import uvicorn
from pydantic import JsonValue
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from flowsync.errors import ResponseTooLarge, StepFailed, UrlRefused
from flowsync.worker.http_client import GuardedClient, HttpRequest, HttpResponse, send
from flowsync.worker.netguard import IPAddress, NetworkPolicy, system_resolver
from flowsync.worker.retry import classify

LOCAL = NetworkPolicy(allow=["127.0.0.1/32"])
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
ALL = METHODS


# --- the servers -------------------------------------------------------------------------


async def echo(request: Request) -> Response:
    return JSONResponse(
        {
            "method": request.method,
            "path": request.url.path,
            "query": [list(item) for item in request.query_params.multi_items()],
            "headers": dict(request.headers.items()),
            "body": (await request.body()).decode(),
        }
    )


async def redirect_n(request: Request) -> Response:
    """`n` redirects, then the echo."""
    n = request.path_params["n"]
    if n == 0:
        return await echo(request)
    return RedirectResponse(f"/redirect/{n - 1}", status_code=302)


async def redirect_to(request: Request) -> Response:
    status = int(request.query_params.get("status", "302"))
    return RedirectResponse(request.query_params["url"], status_code=status)


async def slow(request: Request) -> Response:
    for _ in range(100):  # ends soon after the client gives up, so shutdown stays quick
        if await request.is_disconnected():
            break
        await asyncio.sleep(0.05)
    return Response("late")


async def drip(request: Request) -> Response:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(30):
            yield b"."
            await asyncio.sleep(0.1)

    return StreamingResponse(chunks(), media_type="text/plain")


async def big(request: Request) -> Response:
    size = int(request.query_params["size"])

    async def chunks() -> AsyncIterator[bytes]:
        left = size
        while left > 0:
            part = min(left, 64 * 1024)
            left -= part
            yield b"x" * part

    return StreamingResponse(chunks(), media_type="application/octet-stream")


def fixed(
    content: bytes,
    media_type: str | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return Response(content, status_code=status, media_type=media_type, headers=headers)

    return endpoint


async def multi(request: Request) -> Response:
    response = Response("ok", media_type="text/plain")
    response.raw_headers += [(b"x-multi", b"a"), (b"x-multi", b"b")]
    return response


def raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


def _gzip_of_zeros(size: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    zeros = bytes(1024 * 1024)
    return b"".join([*(packer.compress(zeros) for _ in range(size // len(zeros))), packer.flush()])


# 256 MiB of zeros, gzipped twice: a few KiB on the wire.
BOMB = gzip.compress(_gzip_of_zeros(256 * 1024 * 1024), 9)

ROUTES = [
    Route("/echo", echo, methods=ALL),
    Route("/redirect/{n:int}", redirect_n, methods=ALL),
    Route("/to", redirect_to, methods=ALL),
    Route("/slow", slow),
    Route("/drip", drip),
    Route("/big", big),
    Route("/multi", multi),
    Route("/text", fixed("café".encode("latin-1"), "text/plain; charset=iso-8859-1")),
    Route("/bad-utf8", fixed(b"ok \xff", "text/plain; charset=utf-8")),
    *(
        Route(f"/charset/{name}", fixed(b"ok \\x41 \xff", f"text/plain; charset={name}"))
        for name in ("idna", "punycode", "undefined", "unicode_escape", "raw-unicode-escape")
    ),
    Route("/problem", fixed(b'{"title": "nope"}', "application/problem+json", 409)),
    Route("/not-json", fixed(b"{oops", "application/json")),
    Route("/nan", fixed(b'{"x": NaN}', "application/json")),
    Route("/no-type", fixed(b"plain bytes")),
    Route("/retry-after", fixed(b"", None, 503, {"Retry-After": "7"})),
    Route("/declared", fixed(b"x" * 5000, "text/plain")),
    Route(
        "/gzip",
        fixed(gzip.compress(b"a" * 2_000_000), "text/plain", 200, {"Content-Encoding": "gzip"}),
    ),
    Route(
        "/gzip-small",
        fixed(gzip.compress(b"small"), "text/plain", 200, {"Content-Encoding": "x-gzip"}),
    ),
    Route("/bomb", fixed(BOMB, "text/plain", 200, {"Content-Encoding": "gzip, gzip"})),
    Route(
        "/deflate",
        fixed(zlib.compress(b"deflated"), "text/plain", 200, {"Content-Encoding": "deflate"}),
    ),
    Route(
        "/raw-deflate",
        fixed(raw_deflate(b"raw deflated"), "text/plain", 200, {"Content-Encoding": "deflate"}),
    ),
    Route(
        "/corrupt-gzip", fixed(b"not gzip at all", "text/plain", 200, {"Content-Encoding": "gzip"})
    ),
    Route("/cookie", fixed(b"ok", "text/plain", 200, {"Set-Cookie": "session=secret; Path=/"})),
]


class Recorder:
    """ASGI middleware listing every request the server receives."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.requests: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.requests.append(f"{scope['method']} {scope['path']}")
        await self.app(scope, receive, send)


class ServerThread:
    """A uvicorn server on 127.0.0.1 and a free port, in a thread with its own loop."""

    def __init__(self, certfile: Path | None = None, keyfile: Path | None = None) -> None:
        self.app = Recorder(Starlette(routes=ROUTES))
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=0,
            loop="asyncio",
            http="h11",
            ws="none",
            lifespan="off",
            log_level="warning",
            timeout_graceful_shutdown=2,
            ssl_certfile=str(certfile) if certfile else None,
            ssl_keyfile=str(keyfile) if keyfile else None,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    @property
    def port(self) -> int:
        port: int = self.server.servers[0].sockets[0].getsockname()[1]
        return port

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def requests(self) -> list[str]:
        return self.app.requests


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    with ServerThread() as running:
        yield running


@pytest.fixture(scope="module")
def other_server() -> Iterator[ServerThread]:
    """A second origin (another port) for cross-origin redirects."""
    with ServerThread() as running:
        yield running


# --- fakes under the guard ---------------------------------------------------------------


class RecordingBackend(httpcore.AsyncNetworkBackend):
    """The real socket layer, listing every (address, port) a connection is opened to."""

    def __init__(self) -> None:
        self.inner = httpcore.AnyIOBackend()
        self.connects: list[tuple[str, int]] = []

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.connects.append((host, port))
        return await self.inner.connect_tcp(host, port, timeout, local_address, socket_options)

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class TableResolver:
    """Answers names from a table, in turn when a name has several answers; other hosts
    go to the system resolver (for the odd IPv4 spellings). Counts the lookups."""

    def __init__(self, table: dict[str, list[list[str]]]) -> None:
        self.table = table
        self.calls: list[str] = []

    async def __call__(self, host: str, port: int) -> list[IPAddress]:
        self.calls.append(host)
        if host not in self.table:
            return await system_resolver(host, port)
        answers = self.table[host]
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        return [ipaddress.ip_address(a) for a in answer]


@pytest.fixture
def backend() -> RecordingBackend:
    return RecordingBackend()


@pytest.fixture
async def client(backend: RecordingBackend) -> AsyncIterator[GuardedClient]:
    async with GuardedClient(LOCAL, network_backend=backend) as guarded:
        yield guarded


async def call(
    client: GuardedClient,
    request: HttpRequest,
    *,
    timeout: float = 10.0,
    max_redirects: int = 5,
    max_response_bytes: int = 10 * 1024 * 1024,
) -> HttpResponse:
    return await send(
        request,
        policy=client.policy,
        client=client,
        timeout=timeout,
        max_redirects=max_redirects,
        max_response_bytes=max_response_bytes,
    )


def get(url: str, query: dict[str, str | list[str]] | None = None) -> HttpRequest:
    return HttpRequest("GET", url, query=query or {})


def echoed(response: HttpResponse) -> dict[str, Any]:
    """The request as the echo endpoint saw it."""
    assert isinstance(response.body, dict)
    return response.body


# --- requests and replies ----------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
async def test_methods_send_query_headers_and_json_body(
    client: GuardedClient, server: ServerThread, method: str
) -> None:
    body: JsonValue = None if method == "GET" else {"n": 1, "s": "é", "list": [True, None]}
    request = HttpRequest(
        method,
        f"{server.base}/echo?fixed=1",
        headers={"X-Test": "yes"},
        query={"q": "a b&c", "multi": ["1", "2"]},
        body=body,
        idempotency_key="exec-1:fetch",
    )
    response = await call(client, request)

    assert response.status == 200
    assert classify(response.status) == "success"
    assert response.headers["content-type"] == "application/json"
    seen = echoed(response)
    assert seen["method"] == method
    assert seen["query"] == [["fixed", "1"], ["q", "a b&c"], ["multi", "1"], ["multi", "2"]]
    headers = seen["headers"]
    assert headers["x-test"] == "yes"
    assert headers["idempotency-key"] == "exec-1:fetch"
    assert headers["host"] == f"127.0.0.1:{server.port}"
    if body is None:
        assert seen["body"] == ""
        assert "content-type" not in headers
    else:
        assert headers["content-type"] == "application/json"
        assert json.loads(seen["body"]) == body
    assert response.duration_ms > 0
    output = response.as_output()
    assert list(output) == ["status", "headers", "body", "durationMs"]
    assert output["body"] == seen


async def test_a_string_body_is_sent_as_text(client: GuardedClient, server: ServerThread) -> None:
    response = await call(client, HttpRequest("POST", f"{server.base}/echo", body="héllo"))
    seen = echoed(response)
    assert seen["body"] == "héllo"
    assert seen["headers"]["content-type"] == "text/plain; charset=utf-8"


async def test_a_caller_content_type_wins(client: GuardedClient, server: ServerThread) -> None:
    request = HttpRequest(
        "POST",
        f"{server.base}/echo",
        headers={"content-type": "application/vnd.api+json"},
        body={"data": []},
    )
    response = await call(client, request)
    seen = echoed(response)
    assert seen["headers"]["content-type"] == "application/vnd.api+json"


@pytest.mark.parametrize(
    ("path", "status", "body"),
    [
        ("/text", 200, "café"),
        ("/bad-utf8", 200, "ok \ufffd"),
        ("/problem", 409, {"title": "nope"}),
        ("/not-json", 200, "{oops"),
        ("/nan", 200, '{"x": NaN}'),
        ("/no-type", 200, "plain bytes"),
    ],
)
async def test_replies_are_parsed_or_decoded(
    client: GuardedClient, server: ServerThread, path: str, status: int, body: object
) -> None:
    response = await call(client, get(server.base + path))
    assert (response.status, response.body) == (status, body)


@pytest.mark.parametrize(
    "name", ["idna", "punycode", "undefined", "unicode_escape", "raw-unicode-escape"]
)
async def test_a_charset_that_is_only_a_python_codec_is_read_as_utf8(
    client: GuardedClient, server: ServerThread, name: str
) -> None:
    # Found by QA: idna, punycode and undefined raised (the step failed as an internal
    # error); the escape codecs turned "\\x00" in a reply into a NUL.
    reply = await call(client, get(f"{server.base}/charset/{name}"))
    assert reply.body == "ok \\x41 \ufffd"


async def test_json_over_the_parse_limit_is_kept_as_text(
    client: GuardedClient, server: ServerThread
) -> None:
    """An action parses a JSON reply only up to the most a step may output: a larger
    one is its text (refused as too large an output), never millions of parsed objects."""
    at_limit = HttpRequest("GET", server.base + "/problem", max_json_bytes=17)
    assert (await call(client, at_limit)).body == {"title": "nope"}
    over = HttpRequest("GET", server.base + "/problem", max_json_bytes=16)
    assert (await call(client, over)).body == '{"title": "nope"}'


async def test_repeated_reply_headers_are_joined(
    client: GuardedClient, server: ServerThread
) -> None:
    response = await call(client, get(f"{server.base}/multi"))
    assert response.headers["x-multi"] == "a, b"
    assert all(name == name.lower() for name in response.headers)


async def test_retry_after_is_read(client: GuardedClient, server: ServerThread) -> None:
    response = await call(client, get(f"{server.base}/retry-after"))
    assert (response.status, response.retry_after_seconds) == (503, 7.0)
    assert classify(response.status) == "retry"


async def test_cookies_are_never_kept(client: GuardedClient, server: ServerThread) -> None:
    await call(client, get(f"{server.base}/cookie"))
    response = await call(client, get(f"{server.base}/echo"))
    seen = echoed(response)
    assert "cookie" not in seen["headers"]


# --- redirects -----------------------------------------------------------------------------


async def test_a_redirect_chain_is_followed(client: GuardedClient, server: ServerThread) -> None:
    response = await call(client, get(f"{server.base}/redirect/5"))
    assert response.status == 200
    assert response.url == f"{server.base}/redirect/0"
    assert server.requests[-6:] == [f"GET /redirect/{n}" for n in range(5, -1, -1)]


async def test_the_hop_limit_is_enforced(client: GuardedClient, server: ServerThread) -> None:
    with pytest.raises(StepFailed, match="too many redirects: more than 5") as caught:
        await call(client, get(f"{server.base}/redirect/6"))
    assert caught.value.retryable is False
    with pytest.raises(StepFailed, match="more than 2"):
        await call(client, get(f"{server.base}/redirect/3"), max_redirects=2)
    assert (await call(client, get(f"{server.base}/redirect/2"), max_redirects=2)).status == 200


@pytest.mark.parametrize(
    ("method", "status", "after", "keeps_body"),
    [
        ("POST", 303, "GET", False),
        ("PUT", 303, "GET", False),
        ("POST", 302, "GET", False),
        ("POST", 301, "GET", False),
        ("PUT", 302, "PUT", True),
        ("POST", 307, "POST", True),
        ("PATCH", 308, "PATCH", True),
    ],
)
async def test_redirects_switch_to_get_where_browsers_do(
    client: GuardedClient,
    server: ServerThread,
    method: str,
    status: int,
    after: str,
    keeps_body: bool,
) -> None:
    request = HttpRequest(
        method,
        f"{server.base}/to",
        query={"url": "/echo", "status": str(status)},
        body={"a": 1},
        idempotency_key="exec-1:node",
    )
    response = await call(client, request)
    seen = echoed(response)
    headers = seen["headers"]
    assert seen["method"] == after
    assert seen["body"] == ('{"a":1}' if keeps_body else "")
    assert ("content-type" in headers) is keeps_body
    assert headers["idempotency-key"] == "exec-1:node"


async def test_credentials_are_dropped_only_when_leaving_the_origin(
    client: GuardedClient, server: ServerThread, other_server: ServerThread
) -> None:
    secrets = {"Authorization": "Bearer secret", "Cookie": "a=b", "X-Keep": "1"}
    same = HttpRequest("GET", f"{server.base}/to", headers=secrets, query={"url": "/echo"})
    kept = echoed(await call(client, same))
    assert kept["headers"]["authorization"] == "Bearer secret"

    cross = HttpRequest(
        "GET",
        f"{server.base}/to",
        headers=secrets,
        query={"url": f"{other_server.base}/echo"},
        idempotency_key="exec-1:node",
    )
    response = await call(client, cross)
    seen = echoed(response)
    headers = seen["headers"]
    assert "authorization" not in headers
    assert "cookie" not in headers
    assert headers["x-keep"] == "1"
    assert headers["idempotency-key"] == "exec-1:node"
    assert headers["host"] == f"127.0.0.1:{other_server.port}"


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("http://10.0.0.1/", "10.0.0.1 is a private address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is the cloud metadata"),
        ("http://[::1]:{port}/echo", "::1 is a loopback address"),
        ("http://127.0.0.2:{port}/echo", "127.0.0.2 is a loopback address"),
        ("http://localhost:{port}/echo", "localhost is a loopback name"),
        ("http://0x7f.2:{port}/echo", "0x7f.2 resolves to 127.0.0.2, a loopback"),
        ("ftp://127.0.0.1/file", "only http:// and https:// URLs are allowed, not ftp:"),
        ("file:///etc/passwd", "only http:// and https:// URLs are allowed, not file:"),
    ],
)
async def test_a_redirect_to_a_refused_address_is_refused_before_connecting(
    client: GuardedClient,
    backend: RecordingBackend,
    server: ServerThread,
    target: str,
    message: str,
) -> None:
    request = get(f"{server.base}/to", query={"url": target.format(port=server.port)})
    with pytest.raises(UrlRefused, match=message) as caught:
        await call(client, request)
    assert caught.value.retryable is False
    assert caught.value.message.startswith("the redirect to ")
    assert backend.connects == [("127.0.0.1", server.port)]


# --- the default policy --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1:{port}/echo", "127.0.0.1 is a loopback address"),
        ("http://10.0.0.1/", "10.0.0.1 is a private address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is the cloud metadata"),
        ("http://[::1]:{port}/echo", "::1 is a loopback address"),
        ("http://[::ffff:127.0.0.1]:{port}/echo", "IPv4-mapped form of 127.0.0.1"),
        ("http://2130706433:{port}/echo", "2130706433 resolves to 127.0.0.1, a loopback"),
        ("http://0x7f.1:{port}/echo", "0x7f.1 resolves to 127.0.0.1, a loopback"),
        ("http://127.1:{port}/echo", "127.1 resolves to 127.0.0.1, a loopback"),
        # httpx itself rejects a dotted quad with a leading zero, before the guard.
        ("http://0177.0.0.1:{port}/echo", "not a usable URL: Invalid IPv4 address"),
        ("http://localhost:{port}/echo", "localhost is a loopback name"),
        ("http://intranet.test/", "intranet.test resolves to 10.1.2.3, a private address"),
    ],
)
async def test_the_default_policy_refuses_without_connecting(
    backend: RecordingBackend, server: ServerThread, url: str, message: str
) -> None:
    resolver = TableResolver({"intranet.test": [["10.1.2.3"]]})
    seen = len(server.requests)
    async with GuardedClient(NetworkPolicy(), resolver=resolver, network_backend=backend) as c:
        with pytest.raises(UrlRefused, match=message):
            await call(c, get(url.format(port=server.port)))
    assert backend.connects == []
    assert len(server.requests) == seen


@pytest.mark.parametrize("url", ["http://169.254.169.254/", "http://127.0.0.1:{port}/echo"])
async def test_send_without_a_client_is_guarded_too(server: ServerThread, url: str) -> None:
    seen = len(server.requests)
    with pytest.raises(UrlRefused):
        await send(get(url.format(port=server.port)), policy=NetworkPolicy(), timeout=5)
    assert len(server.requests) == seen


async def test_a_client_for_another_policy_is_not_used(client: GuardedClient) -> None:
    with pytest.raises(ValueError, match="different NetworkPolicy"):
        await send(get("http://127.0.0.1/"), policy=NetworkPolicy(), client=client, timeout=1)


# --- pinning -------------------------------------------------------------------------------


async def test_the_connection_goes_to_the_checked_address(
    backend: RecordingBackend, server: ServerThread
) -> None:
    # rebind.test exists only in this resolver, and its second answer is private: the call
    # works only if the socket is opened to the first, checked answer, with no second lookup.
    resolver = TableResolver({"rebind.test": [["127.0.0.1"], ["10.0.0.1"]]})
    url = f"http://rebind.test:{server.port}/echo"
    async with GuardedClient(LOCAL, resolver=resolver, network_backend=backend) as c:
        response = await call(c, get(url))
    seen = echoed(response)
    assert seen["headers"]["host"] == f"rebind.test:{server.port}"
    assert resolver.calls == ["rebind.test"]
    assert backend.connects == [("127.0.0.1", server.port)]

    # A new connection resolves again, and the rebound answer is refused.
    async with GuardedClient(LOCAL, resolver=resolver, network_backend=backend) as c:
        with pytest.raises(UrlRefused, match=r"rebind\.test resolves to 10\.0\.0\.1"):
            await call(c, get(url))
    assert backend.connects == [("127.0.0.1", server.port)]


@dataclass
class Tls:
    ca: Path
    cert: Path
    key: Path


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    """A throwaway CA and a certificate for `pinned.test` only (no IP address in it)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=folder, check=True, capture_output=True)

    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=FlowSync test CA", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    run("req", *ec, "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=pinned.test")
    (folder / "leaf.ext").write_text(
        "subjectAltName=DNS:pinned.test\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
    )
    run("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "leaf.pem", "-days", "2", "-extfile", "leaf.ext")  # fmt: skip
    return Tls(ca=folder / "ca.pem", cert=folder / "leaf.pem", key=folder / "leaf.key")


@pytest.fixture(scope="module")
def tls_server(tls: Tls) -> Iterator[ServerThread]:
    with ServerThread(certfile=tls.cert, keyfile=tls.key) as running:
        yield running


async def test_https_verifies_the_real_host_name_over_the_pinned_address(
    tls: Tls, tls_server: ServerThread, backend: RecordingBackend
) -> None:
    trust = ssl.create_default_context(cafile=str(tls.ca))
    resolver = TableResolver({"pinned.test": [["127.0.0.1"]], "other.test": [["127.0.0.1"]]})
    port = tls_server.port
    async with GuardedClient(
        LOCAL, resolver=resolver, ssl_context=trust, network_backend=backend
    ) as c:
        response = await call(c, get(f"https://pinned.test:{port}/echo"))
        seen = echoed(response)
        assert seen["headers"]["host"] == f"pinned.test:{port}"

        # Same address, names the certificate does not cover: verification fails.
        for url in (f"https://127.0.0.1:{port}/echo", f"https://other.test:{port}/echo"):
            with pytest.raises(StepFailed, match="TLS certificate check failed") as caught:
                await call(c, get(url))
            assert caught.value.retryable is False
    assert backend.connects == [("127.0.0.1", port)] * 3


# --- limits and failures -------------------------------------------------------------------


async def test_a_slow_server_times_out(client: GuardedClient, server: ServerThread) -> None:
    with pytest.raises(
        StepFailed, match=r"GET http://127.0.0.1:\d+/slow timed out after 0.3 s"
    ) as caught:
        await call(client, get(f"{server.base}/slow?token=secret"), timeout=0.3)
    assert caught.value.retryable is True
    assert "secret" not in caught.value.message


async def test_the_timeout_bounds_the_whole_body(
    client: GuardedClient, server: ServerThread
) -> None:
    # Each chunk arrives quickly, so only a whole-call deadline stops this reply.
    with pytest.raises(StepFailed, match=r"timed out after 0\.5 s") as caught:
        await call(client, get(f"{server.base}/drip"), timeout=0.5)
    assert caught.value.retryable is True


async def test_an_oversize_reply_is_refused(client: GuardedClient, server: ServerThread) -> None:
    with pytest.raises(ResponseTooLarge, match="larger than the limit of 10485760 bytes") as caught:
        await call(client, get(f"{server.base}/big", query={"size": str(11 * 1024 * 1024)}))
    assert caught.value.retryable is False


async def test_the_limit_is_inclusive(client: GuardedClient, server: ServerThread) -> None:
    response = await call(
        client, get(f"{server.base}/big", query={"size": "1000"}), max_response_bytes=1000
    )
    assert response.body == "x" * 1000


async def test_a_declared_length_over_the_limit_is_refused_before_reading(
    client: GuardedClient, server: ServerThread
) -> None:
    with pytest.raises(ResponseTooLarge, match="declares 5000 bytes; the limit is 1000"):
        await call(client, get(f"{server.base}/declared"), max_response_bytes=1000)


async def test_the_limit_counts_decompressed_bytes(
    client: GuardedClient, server: ServerThread
) -> None:
    with pytest.raises(ResponseTooLarge):
        await call(client, get(f"{server.base}/gzip"), max_response_bytes=1024 * 1024)


async def test_a_compression_bomb_is_stopped_at_the_limit_without_inflating_it(
    client: GuardedClient, server: ServerThread
) -> None:
    # Found by QA: httpx inflated each network chunk in one call, so these few KiB
    # ("gzip, gzip") became 256 MiB in memory before the limit was looked at (and a third
    # layer, terabytes: the worker was killed, then each worker that took the step over).
    assert len(BOMB) < 64 * 1024
    tracemalloc.start()
    try:
        with pytest.raises(ResponseTooLarge, match="larger than the limit of 1048576 bytes"):
            await call(client, get(f"{server.base}/bomb"), max_response_bytes=1024 * 1024)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024 * 1024


@pytest.mark.parametrize(
    ("path", "text"),
    [("/gzip-small", "small"), ("/deflate", "deflated"), ("/raw-deflate", "raw deflated")],
)
async def test_gzip_and_deflate_replies_are_decoded(
    client: GuardedClient, server: ServerThread, path: str, text: str
) -> None:
    reply = await call(client, get(f"{server.base}{path}"))
    assert reply.body == text


async def test_a_corrupt_encoding_fails_retryably(
    client: GuardedClient, server: ServerThread
) -> None:
    with pytest.raises(StepFailed, match="gzip content is corrupt") as caught:
        await call(client, get(f"{server.base}/corrupt-gzip"))
    assert caught.value.retryable is True


async def test_only_decodable_encodings_are_asked_for(
    client: GuardedClient, server: ServerThread
) -> None:
    assert echoed(await call(client, get(f"{server.base}/echo")))["headers"]["accept-encoding"] == (
        "gzip, deflate"
    )


async def test_a_refused_connection_is_retryable(client: GuardedClient) -> None:
    with socket.socket() as probe:  # a port that nothing listens on any more
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(
        StepFailed, match=f"could not connect to http://127.0.0.1:{port}/: Connection refused"
    ) as caught:
        await call(client, get(f"http://127.0.0.1:{port}/"))
    assert caught.value.retryable is True
    assert not isinstance(caught.value, UrlRefused)


async def test_a_dropped_connection_is_retryable(client: GuardedClient) -> None:
    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        # Linger 0: close with a TCP reset instead of a clean end.
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    dropper = await asyncio.start_server(reset, "127.0.0.1", 0)
    port = dropper.sockets[0].getsockname()[1]
    try:
        with pytest.raises(StepFailed, match=f"GET http://127.0.0.1:{port}/ failed") as caught:
            await call(client, get(f"http://127.0.0.1:{port}/"))
    finally:
        dropper.close()
        await dropper.wait_closed()
    assert caught.value.retryable is True


async def test_header_values_go_out_as_utf8(client: GuardedClient, server: ServerThread) -> None:
    request = HttpRequest("GET", f"{server.base}/echo", headers={"X-Name": "Zoë"})
    headers = echoed(await call(client, request))["headers"]
    # The echo server reads header bytes as Latin-1.
    assert headers["x-name"].encode("latin-1").decode() == "Zoë"


async def test_a_header_that_would_split_the_request_is_refused(
    client: GuardedClient, server: ServerThread
) -> None:
    request = HttpRequest("GET", f"{server.base}/echo", headers={"X-Evil": "a\r\nX-Injected: 1"})
    seen = len(server.requests)
    with pytest.raises(StepFailed, match="could not send GET") as caught:
        await call(client, request)
    assert caught.value.retryable is False
    assert len(server.requests) == seen


async def test_a_pooled_connection_the_server_closed_is_not_reused(
    client: GuardedClient,
) -> None:
    """A server that answers (keep-alive by HTTP/1.1's default) and then hangs up: the
    next request must open a new connection, not fail on the dead one."""
    accepted: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()  # no `Connection: close`: the client learns it from the socket

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        for _ in range(3):
            response = await call(client, HttpRequest("GET", f"http://127.0.0.1:{port}/"))
            assert response.status == 200 and response.body == "ok"
            await asyncio.sleep(0.05)  # the close reaches the client's socket
        assert len(accepted) == 3
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_kept_alive_connection_closed_unanswered_is_retried_once_on_a_new_one(
    client: GuardedClient, method: str
) -> None:
    """Found by QA: a server whose keep-alive timeout closes the connection just as the
    client reuses it (the request read, no reply) failed the attempt. It is sent once
    more, at once, on a new connection; a server that never answers still fails."""
    accepted: list[int] = []
    requests: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        first = len(accepted) == 1
        for n in range(2 if first else 1):
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(next((line.split(b":")[1] for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), b"0"))  # fmt: skip
            requests.append(head.split(b" ")[0] + await reader.readexactly(length))
            if first and n == 1:
                break  # the second request on the first connection: closed unanswered
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}/"
    try:
        for n in range(2):
            request = HttpRequest(method, url, body={"n": n} if method == "POST" else None)
            response = await call(client, request)
            assert response.status == 200 and response.body == "ok"
        assert len(accepted) == 2  # the second request went again, on a new connection
        body = b'{"n":1}' if method == "POST" else b""
        assert requests[1:] == [method.encode() + body] * 2
    finally:
        server.close()
        await server.wait_closed()

    async def never(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    silent = await asyncio.start_server(never, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    try:
        with pytest.raises(StepFailed, match="Server disconnected without") as caught:
            await call(client, HttpRequest("GET", f"http://127.0.0.1:{port}/"))
        assert caught.value.retryable is True
    finally:
        silent.close()
        await silent.wait_closed()


async def test_connections_are_kept_alive_for_as_many_requests_as_run_at_once(
    client: GuardedClient,
) -> None:
    """Thirty requests at once, twice: the second round reuses the first round's thirty
    connections (httpcore closed idle ones beyond its keep-alive limit, which counted
    every connection, so each round opened new ones)."""
    accepted: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                await asyncio.sleep(0.05)  # all thirty are in flight together
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        for _ in range(2):
            replies = await asyncio.gather(
                *(call(client, HttpRequest("GET", f"http://127.0.0.1:{port}/")) for _ in range(30))
            )
            assert all(r.status == 200 for r in replies)
        assert len(accepted) == 30
    finally:
        server.close()
        await server.wait_closed()
