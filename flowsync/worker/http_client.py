"""The HTTP call of an `action` step: one request, redirects followed by hand, every
connection checked by the SSRF guard and made to the very address the guard checked.

What callers may rely on (`send`):

- Every TCP connection, for the first URL and for each redirect hop, goes through
  `resolve_checked` and then to one of the addresses it returned. A refused URL raises
  `UrlRefused` before any socket is opened. Proxies and `*_PROXY`/`SSL_*` variables are
  ignored (`trust_env=False`); there is no cookie jar, so one step never sees another's
  cookies.
- HTTPS certificates are verified against the URL's host name (certifi's roots unless an
  `ssl_context` is given to `GuardedClient`).
- Redirects (301, 302, 303, 307, 308) are followed up to `max_redirects`; one more raises
  `StepFailed`. 303, and 301/302 after a POST, continue as a GET without a body (RFC 9110
  §15.4, as browsers do); 307/308 repeat the method and body. `Idempotency-Key` is kept on
  every hop; `Authorization`, `Proxy-Authorization` and `Cookie` are dropped when a hop
  leaves the origin (scheme, host and port).
- `timeout` bounds the whole call: every hop and the whole body. Exceeding it, and network
  errors (refused, reset, a broken reply), raise a retryable `StepFailed`; a certificate
  that does not verify, a malformed request and too many redirects raise a final one.
- A body larger than `max_response_bytes` (counted after content decoding, which is done
  a bounded piece at a time, so a gzip bomb never inflates past the limit; a larger
  declared Content-Length is refused before reading) raises `ResponseTooLarge`. Only
  `gzip` and `deflate` are asked for and decoded (stacked ones too).
- Error messages show the URL without its query or user info, which may hold secrets.

How the address is pinned: `GuardedClient` sends through `GuardedTransport`, an httpx
transport over an httpcore connection pool whose network backend is `_GuardedBackend`.
httpcore asks that backend for a TCP stream to the URL's (host, port); the backend makes
the one DNS lookup (`resolve_checked`) and opens the socket to a checked address by IP.
Everything above the socket is untouched, so the Host header, TLS SNI and certificate
verification all still use the real host name, and no second lookup exists that a
rebinding DNS server could answer differently. It fails closed: a pooled connection was
checked when it was opened, and a refusal inside the backend propagates as `UrlRefused`.
"""

from __future__ import annotations

import asyncio
import codecs
import dataclasses
import functools
import json
import os
import select
import socket
import ssl
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import httpcore
import httpx
from pydantic import JsonValue

from flowsync import tracing
from flowsync.errors import ResponseTooLarge, StepFailed, UrlRefused
from flowsync.worker.content_coding import ACCEPT_ENCODING, BoundedDecoder
from flowsync.worker.netguard import NetworkPolicy, Resolver, check_scheme, resolve_checked
from flowsync.worker.retry import parse_retry_after

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "METHODS",
    "GuardedClient",
    "GuardedTransport",
    "HttpRequest",
    "HttpResponse",
    "decode_body",
    "send",
]

DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CREDENTIAL_HEADERS = ("authorization", "proxy-authorization", "cookie")
_BODY_HEADERS = ("content-type", "content-length", "content-encoding", "transfer-encoding")


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """One `action` call. `query` values are added to any query already in `url`; a list
    value repeats the name. `body`: None sends nothing, a string is sent as
    text/plain UTF-8, any other JSON value as application/json (unless `headers` sets a
    Content-Type). `idempotency_key` is sent as `Idempotency-Key` on every hop. A JSON
    reply over `max_json_bytes` is kept as its text, not parsed (see decode_body)."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    query: dict[str, str | list[str]] = field(default_factory=dict)
    body: JsonValue = None
    idempotency_key: str | None = None
    max_json_bytes: int | None = None

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {sorted(METHODS)}, not {self.method!r}")


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """The final reply. `headers` has lower-case names, repeated ones joined with ", ".
    `body` is the parsed JSON for a JSON content type that parses, else decoded text.
    `duration_ms` runs from the first byte sent to the last byte read, over all hops.
    `retry_after_seconds` is the `Retry-After` header in seconds, whatever the status."""

    status: int
    headers: dict[str, str]
    body: JsonValue
    duration_ms: float
    retry_after_seconds: float | None = None
    url: str = ""

    def as_output(self) -> dict[str, JsonValue]:
        """The step output of the spec: `{"status", "headers", "body", "durationMs"}`."""
        headers: dict[str, JsonValue] = dict(self.headers)
        return {
            "status": self.status,
            "headers": headers,
            "body": self.body,
            "durationMs": self.duration_ms,
        }


def _readable(sock: socket.socket) -> bool:
    """Whether an idle connection's socket has something to read: the server closed it
    (or broke the protocol), so it must not be reused. As httpcore's own check."""
    fd = sock.fileno()
    if fd == -1:
        return True
    if not hasattr(select, "poll"):  # Windows
        return bool(select.select([fd], [], [], 0)[0])
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


class _Stream(httpcore.AsyncNetworkStream):
    """httpcore's anyio stream, with the question httpcore's pool asks most answered
    directly: before every request it checks each idle pooled connection for
    `is_readable` (did the server close it?), and anyio builds a dictionary of every
    socket attribute for each such lookup: a sixth of a worker's CPU per action step with
    a few dozen connections. The socket is fetched once; everything else is delegated."""

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner
        self._socket = inner.get_extra_info("socket")

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable" and self._socket is not None:
            return _readable(self._socket)
        if info == "socket":
            return self._socket
        return self._inner.get_extra_info(info)


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Opens TCP streams only to addresses `resolve_checked` returned for the host."""

    def __init__(
        self, policy: NetworkPolicy, resolver: Resolver | None, inner: httpcore.AsyncNetworkBackend
    ) -> None:
        self._policy = policy
        self._resolver = resolver
        self._inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await resolve_checked(host, port, self._policy, resolver=self._resolver)
        failure: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in addresses:  # in resolver order (RFC 6724), next one on failure
            try:
                return _Stream(
                    await self._inner.connect_tcp(
                        str(address), port, timeout, local_address, socket_options
                    )
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None  # resolve_checked never returns an empty list
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise UrlRefused("unix sockets are never used for actions")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


# httpcore's errors as httpx's, most specific first, so the transport behaves like httpx's.
_ERRORS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


@contextmanager
def _httpx_errors() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        for core, mapped in _ERRORS:
            if isinstance(exc, core):
                raise mapped(str(exc)) from exc
        raise


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, stream: AsyncIterable[bytes]) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _httpx_errors():
            async for part in self._stream:
                yield part

    async def aclose(self) -> None:
        close = getattr(self._stream, "aclose", None)
        if close is not None:
            with _httpx_errors():
                await close()


@functools.cache
def _default_ssl_context() -> ssl.SSLContext:
    # Loading certifi's bundle takes milliseconds; a context is safe to share.
    return httpx.create_ssl_context(trust_env=False)


class _Pool(httpcore.AsyncConnectionPool):
    """httpcore's connection pool with its bookkeeping in time linear in its connections.
    On every request's arrival and end, httpcore 1.0 counts all connections once per idle
    one (`len([c.is_idle() for c in connections])`: their number, built as a list) and
    builds two lists over all connections per queued request. With a worker's 32 steps in
    flight that was about a quarter of its time on HTTP action steps
    (bench/profile_actions.py: over a million `is_idle` calls for 1,500 steps). The same
    decisions in the same order; tests/unit/test_http_pool.py holds it to httpcore's."""

    def _assign_requests_to_connections(self) -> list[httpcore.AsyncConnectionInterface]:
        closing: list[httpcore.AsyncConnectionInterface] = []
        connections = self._connections
        # Closed, expired and surplus idle connections leave the pool first.
        for connection in list(connections):
            if connection.is_closed():
                connections.remove(connection)
            elif connection.has_expired() or (
                connection.is_idle() and len(connections) > self._max_keepalive_connections
            ):
                connections.remove(connection)
                closing.append(connection)
        # Then each queued request, oldest first: a connection to its origin that is free,
        # else a new one while there is room, else a new one in place of an idle one.
        for pool_request in [r for r in self._requests if r.is_queued()]:
            origin = pool_request.request.url.origin
            free = next(
                (c for c in connections if c.can_handle_request(origin) and c.is_available()),
                None,
            )
            if free is not None:
                pool_request.assign_to_connection(free)
                continue
            if len(connections) >= self._max_connections:
                idle = next((c for c in connections if c.is_idle()), None)
                if idle is None:
                    continue
                connections.remove(idle)
                closing.append(idle)
            connection = self.create_connection(origin)
            connections.append(connection)
            pool_request.assign_to_connection(connection)
        return closing


class GuardedTransport(httpx.AsyncBaseTransport):
    """An httpx transport (HTTP/1.1, pooled) whose every connection goes through the SSRF
    guard and to the checked address. `network_backend` replaces the socket layer under
    the guard (tests record connection attempts with it)."""

    def __init__(
        self,
        policy: NetworkPolicy,
        *,
        resolver: Resolver | None = None,
        ssl_context: ssl.SSLContext | None = None,
        network_backend: httpcore.AsyncNetworkBackend | None = None,
        limits: httpx.Limits | None = None,
    ) -> None:
        # As many kept alive as may be open: httpcore closes an idle connection whenever
        # the pool holds more connections than `max_keepalive_connections` (it counts all
        # of them, not the idle ones), so with more steps in flight than that, every
        # finished request closed a connection and the next one opened a new one.
        limits = limits or httpx.Limits(max_connections=100, max_keepalive_connections=100)
        backend = _GuardedBackend(policy, resolver, network_backend or httpcore.AnyIOBackend())
        self._pool = _Pool(
            ssl_context=ssl_context or _default_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not isinstance(request.stream, httpx.AsyncByteStream):
            raise TypeError("GuardedTransport needs an async request body")
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _httpx_errors():
            reply = await self._pool.handle_async_request(core_request)
        if not isinstance(reply.stream, AsyncIterable):
            raise TypeError("httpcore returned a synchronous stream")
        return httpx.Response(
            status_code=reply.status,
            headers=reply.headers,
            stream=_ResponseStream(reply.stream),
            extensions=reply.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


class GuardedClient(httpx.AsyncClient):
    """An httpx client for actions: guarded and pinned connections (`GuardedTransport`),
    no environment proxies, no redirects of its own, no timeout of its own (`send` bounds
    the whole call), no cookie jar. Share one between calls with the same `policy` to reuse
    connections; close it with `aclose()` or `async with`."""

    def __init__(
        self,
        policy: NetworkPolicy,
        *,
        resolver: Resolver | None = None,
        ssl_context: ssl.SSLContext | None = None,
        network_backend: httpcore.AsyncNetworkBackend | None = None,
        limits: httpx.Limits | None = None,
    ) -> None:
        transport = GuardedTransport(
            policy,
            resolver=resolver,
            ssl_context=ssl_context,
            network_backend=network_backend,
            limits=limits,
        )
        # An empty allowed_domains list blocks every cookie: with a shared client, one
        # workflow's target must never receive cookies another workflow's target set.
        jar = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
        super().__init__(
            transport=transport,
            trust_env=False,
            follow_redirects=False,
            timeout=None,
            cookies=jar,
            headers={"User-Agent": "FlowSync", "Accept-Encoding": ACCEPT_ENCODING},
        )
        self.policy = policy


async def send(
    request: HttpRequest,
    *,
    policy: NetworkPolicy,
    client: GuardedClient | None = None,
    max_redirects: int = 5,
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    timeout: float,
) -> HttpResponse:
    """Make the call and return the final reply, whatever its status (the caller
    classifies it). Without `client` a fresh `GuardedClient(policy)` is used and closed;
    a given client must have been built with the same policy (else `ValueError`)."""
    if client is not None and client.policy != policy:
        raise ValueError("the client was built for a different NetworkPolicy")
    shown = _describe(request.url)
    traced = tracing.http_call(request.method, shown) if tracing.enabled() else None
    if traced is None:
        return await _send(
            request, shown, policy, client, max_redirects, max_response_bytes, timeout
        )
    # A traced step's call: a client span, whose context the target receives.
    headers = {k: v for k, v in request.headers.items() if k.lower() != "traceparent"}
    headers["traceparent"] = traced.traceparent()
    try:
        reply = await _send(
            dataclasses.replace(request, headers=headers), shown, policy, client, max_redirects,
            max_response_bytes, timeout,
        )  # fmt: skip
    except Exception as exc:
        traced.end(None, str(getattr(exc, "message", None) or type(exc).__name__))
        raise
    traced.end(reply.status, None)
    return reply


async def _send(
    request: HttpRequest,
    shown: str,
    policy: NetworkPolicy,
    client: GuardedClient | None,
    max_redirects: int,
    max_response_bytes: int,
    timeout: float,
) -> HttpResponse:
    try:
        async with asyncio.timeout(timeout):
            if client is not None:
                return await _exchange(client, request, max_redirects, max_response_bytes)
            async with GuardedClient(policy) as own:
                return await _exchange(own, request, max_redirects, max_response_bytes)
    except (TimeoutError, httpx.TimeoutException) as exc:
        message = f"{request.method} {shown} timed out after {timeout:g} s"
        raise StepFailed(message, retryable=True) from exc
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        raise UrlRefused(f"{shown} is not a usable URL: {exc}") from exc
    except httpx.LocalProtocolError as exc:
        raise StepFailed(f"could not send {request.method} {shown}: {exc}") from exc
    except httpx.ConnectError as exc:
        if _certificate_error(exc):
            raise StepFailed(f"TLS certificate check failed for {shown}: {exc}") from exc
        reason = _os_reason(exc) or str(exc)
        raise StepFailed(f"could not connect to {shown}: {reason}", retryable=True) from exc
    except (httpx.TransportError, httpx.DecodingError) as exc:
        # A broken or cut reply (or a corrupt Content-Encoding) may well not happen again.
        reason = str(exc) or type(exc).__name__
        raise StepFailed(f"{request.method} {shown} failed: {reason}", retryable=True) from exc


# httpcore's words for a server that closed the connection after the request and before
# any byte of a reply: what a kept-alive connection does when the server's idle timeout
# closes it just as it is reused (Node's and Apache's default is 5 s, httpx's too).
_DROPPED_UNANSWERED = "Server disconnected without sending a response."


async def _sent(client: GuardedClient, outgoing: httpx.Request) -> httpx.Response:
    """`outgoing` sent; once more, at once, when the server closed the connection
    without answering (the pool has dropped that connection: another one carries it).
    Found by QA: that race with a server's keep-alive timeout failed the attempt, and
    a step of one attempt. Sending it again is what a step may do anyway (it runs at
    least once, with its Idempotency-Key); a server that closes every connection
    unanswered still fails the attempt."""
    try:
        return await client.send(outgoing, stream=True)
    except httpx.RemoteProtocolError as exc:
        if str(exc) != _DROPPED_UNANSWERED:
            raise
    return await client.send(outgoing, stream=True)


async def _exchange(
    client: GuardedClient, request: HttpRequest, max_redirects: int, max_bytes: int
) -> HttpResponse:
    started = time.perf_counter()
    method = request.method
    headers = _headers(request.headers)
    if request.idempotency_key is not None:
        headers["Idempotency-Key"] = request.idempotency_key
    content = _encode_body(request.body, headers)
    url = httpx.URL(request.url)
    if request.query:
        url = url.copy_merge_params(request.query)
    for hop in range(max_redirects + 1):
        try:
            check_scheme(url.scheme)
            outgoing = client.build_request(method, url, headers=headers, content=content)
            reply = await _sent(client, outgoing)
        except UrlRefused as exc:
            if hop == 0:
                raise
            # Name the hop: the URL in the step's definition was fine, its target was not.
            where = _describe(str(url))
            raise UrlRefused(f"the redirect to {where} was refused: {exc.message}") from exc
        location = reply.headers.get("location")
        if reply.status_code in _REDIRECTS and location is not None:
            await reply.aclose()
            if hop == max_redirects:
                start = _describe(request.url)
                raise StepFailed(f"too many redirects: more than {max_redirects} from {start}")
            try:
                target = url.join(location).copy_with(fragment=None)
            except httpx.InvalidURL as exc:
                raise UrlRefused(f"the redirect to {location!r} is not a usable URL") from exc
            if reply.status_code == 303 or (reply.status_code in (301, 302) and method == "POST"):
                method, content = "GET", None
                for name in _BODY_HEADERS:
                    headers.pop(name, None)
            if _origin(target) != _origin(url):
                for name in _CREDENTIAL_HEADERS:
                    headers.pop(name, None)
            url = target
            continue
        try:
            raw = await _read_limited(reply, max_bytes)
        finally:
            await reply.aclose()
        return _response(reply, raw, started, url, request.max_json_bytes)
    raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover


def _headers(given: dict[str, str]) -> httpx.Headers:
    # Values go out as UTF-8 (httpx would refuse anything but ASCII): templates produce
    # text, and servers that read header values as Latin-1 still get every ASCII byte right.
    try:
        return httpx.Headers(
            {name.encode("ascii"): value.encode() for name, value in given.items()}
        )
    except UnicodeEncodeError as exc:
        raise StepFailed(f"a header name is not ASCII: {exc.object!r}") from exc


def _encode_body(body: JsonValue, headers: httpx.Headers) -> bytes | None:
    if body is None:
        return None
    if isinstance(body, str):
        headers.setdefault("Content-Type", "text/plain; charset=utf-8")
        return body.encode()
    try:
        text = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise StepFailed(f"the request body cannot be sent as JSON: {exc}") from exc
    headers.setdefault("Content-Type", "application/json")
    return text.encode()


async def _read_limited(reply: httpx.Response, max_bytes: int) -> bytes:
    declared = reply.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise ResponseTooLarge(
            f"the reply declares {declared} bytes; the limit is {max_bytes} bytes"
        )
    # Decoded here, not by httpx, a bounded piece at a time: a compressed bomb counts in
    # full and is stopped at the limit instead of being inflated first (content_coding.py).
    decoder = BoundedDecoder(reply.headers.get("content-encoding"), max_bytes)
    chunks: list[bytes] = []
    size = 0
    async for raw in reply.aiter_raw():
        for chunk in decoder.feed(raw):
            size += len(chunk)
            if size > max_bytes:
                raise ResponseTooLarge(
                    f"the reply body is larger than the limit of {max_bytes} bytes"
                )
            chunks.append(chunk)
    for chunk in decoder.finish():
        size += len(chunk)
        if size > max_bytes:
            raise ResponseTooLarge(f"the reply body is larger than the limit of {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _response(
    reply: httpx.Response, raw: bytes, started: float, url: httpx.URL, max_json_bytes: int | None
) -> HttpResponse:
    headers: dict[str, str] = {}
    for name, value in reply.headers.multi_items():
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    retry_after = headers.get("retry-after")
    return HttpResponse(
        status=reply.status_code,
        headers=headers,
        body=decode_body(raw, headers.get("content-type"), max_json_bytes),
        duration_ms=(time.perf_counter() - started) * 1000,
        retry_after_seconds=(
            None if retry_after is None else parse_retry_after(retry_after, now=datetime.now(UTC))
        ),
        url=str(url),
    )


def decode_body(
    raw: bytes, content_type: str | None, max_json_bytes: int | None = None
) -> JsonValue:
    """The reply body as the step output shows it: parsed JSON when the content type is
    JSON (`application/json`, `*/*+json`) and the bytes parse (NaN and Infinity do not),
    else text decoded with the declared charset (UTF-8 if none, unknown, or one of
    Python's own codecs that is no charset, such as `unicode_escape` or `idna`),
    undecodable bytes replaced by U+FFFD. JSON over `max_json_bytes` (an action's: the most a step
    may output) stays text: parsed, a few MB of small objects take hundreds of MB of
    the worker's memory, for an output that is refused as too large anyway."""
    mime, _, params = (content_type or "").partition(";")
    mime = mime.strip().lower()
    fits = max_json_bytes is None or len(raw) <= max_json_bytes
    if fits and (mime == "application/json" or mime.endswith("+json")):
        try:
            value: JsonValue = json.loads(raw, parse_constant=_reject_constant)
        except (ValueError, RecursionError):
            pass  # the caller still sees the text, and the status decides the outcome
        else:
            return value
    charset = _charset(params)
    try:
        return raw.decode(charset, errors="replace")
    except (LookupError, UnicodeError):  # not a text encoding ("base64"), or strict only
        return raw.decode("utf-8", errors="replace")


def _reject_constant(name: str) -> JsonValue:
    raise ValueError(f"{name} is not JSON")


# Python's codecs that no server means by a charset: they read backslash escapes as
# characters (so "\\x00" in a reply became a NUL) or refuse to decode at all. Found by QA:
# `charset=idna` or `undefined` failed the step as an internal error.
_NOT_CHARSETS = frozenset(
    {"unicode-escape", "raw-unicode-escape", "idna", "punycode", "undefined", "mbcs", "oem"}
)


def _charset(params: str) -> str:
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            name = value.strip().strip('"')
            try:
                found = codecs.lookup(name).name
            except LookupError:
                break
            return "utf-8" if found in _NOT_CHARSETS else found
    return "utf-8"


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    default = {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host, url.port or default


def _describe(url: str) -> str:
    """The URL for messages: no user info and no query, which may carry secrets."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return "the URL"
    port = f":{parsed.port}" if parsed.port else ""
    host = f"[{parsed.host}]" if ":" in parsed.host else parsed.host
    return f"{parsed.scheme}://{host}{port}{parsed.path}"


def _os_reason(exc: BaseException) -> str | None:
    """The operating system's words ("Connection refused") from the cause chain, which
    anyio hides behind "All connection attempts failed"."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno:
            return os.strerror(seen.errno)
        seen = seen.__cause__ or seen.__context__
    return None


def _certificate_error(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
