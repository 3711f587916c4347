"""Authentication: `Authorization: Bearer <token>` → the `Principal` every service call is
scoped to. A token is a FlowSync API key (`fsk_…`, checked by `ApiKeyService`) or an OIDC
JWT verified against the configured JWKS URL, issuer and audience. A JWT's owner (team)
is named by its team claim (`<iss>|org:<org_id>`) or else is its subject's own
(`<iss>|<sub>`), created on first use; its role comes from the claims and the members
table (see `Authenticator._team`). Every refusal is `Unauthenticated` with a message
that says what to fix; nothing here ever answers with a server error for a bad token."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import itertools
import logging
import math
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import jwt
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from flowsync.config import Settings
from flowsync.db.models import ApiKey, among
from flowsync.errors import Unauthenticated
from flowsync.roles import Role
from flowsync.services.api_keys import KEY_PREFIX, ApiKeyService
from flowsync.services.members import MemberService
from flowsync.services.principal import Principal

log = logging.getLogger("flowsync.auth")

_OWNER_CACHE_SIZE = 10_000


# The JWK key type (`kty`) each JWS algorithm family signs with.
_KEY_TYPES = {"HS": "oct", "RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}


def _expiry(exp: object) -> float:
    """A verified `exp` claim as unix time; Unauthenticated when no double holds it
    (PyJWT accepts `10**400` as a time in the far future)."""
    try:
        expires = float(exp)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError) as exc:
        raise Unauthenticated("The JWT's 'exp' claim is not a time.") from exc
    if not math.isfinite(expires):
        raise Unauthenticated("The JWT's 'exp' claim is not a time.")
    return expires


def _claim(claims: dict[str, object], path: str) -> object | None:
    """A claim by name, or by a dotted path into nested claims (`o.id`); None when
    absent or when `path` is empty (the setting turned off)."""
    value: object = claims
    for part in path.split(".") if path.strip() else []:
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return None if value is claims else value


@dataclass(frozen=True, slots=True)
class Credential:
    """A verified caller and what may end its validity: a JWT's expiry (unix time) or
    the API key that can be revoked. Long-lived connections re-check it."""

    principal: Principal
    expires_at: float | None = None
    key_id: uuid.UUID | None = None


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header value."""
    if authorization is None or not authorization.strip():
        raise Unauthenticated(
            "Authentication required: send `Authorization: Bearer <API key or JWT>`."
        )
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("The Authorization header must read `Bearer <API key or JWT>`.")
    return token.strip()


class Authenticator:
    """Turns bearer tokens into credentials. One per process: the JWKS and the owners of
    JWT subjects are cached."""

    def __init__(
        self,
        settings: Settings,
        api_keys: ApiKeyService,
        sessions: async_sessionmaker[AsyncSession],
    ):
        self._settings = settings
        self._api_keys = api_keys
        self._sessions = sessions
        self._algorithms = [a.strip() for a in settings.jwt_algorithms.split(",") if a.strip()]
        self._jwks: jwt.PyJWKClient | None = None
        if settings.jwks_url:
            self._jwks = jwt.PyJWKClient(
                settings.jwks_url,
                cache_jwk_set=True,
                lifespan=settings.jwks_cache_seconds,
                cache_keys=True,
                timeout=10,
            )
        self._owners: OrderedDict[str, uuid.UUID] = OrderedDict()
        self._members = MemberService(sessions)
        self._role_map = settings.role_map()
        self._key_checks: dict[uuid.UUID, tuple[float, bool]] = {}
        self._batch: asyncio.Future[None] | None = None
        self._batch_keys: set[uuid.UUID] = set()
        self._batch_task: asyncio.Task[None] | None = None
        # Keys that long-lived connections re-check, and when they last asked.
        self._asked: dict[uuid.UUID, float] = {}
        self._watch = CredentialWatch(self, settings.credential_check_seconds)

    async def authenticate(self, authorization: str | None) -> Credential:
        """The credential for an Authorization header value; `Unauthenticated` when it is
        missing, malformed, expired, for another audience or issuer, or revoked."""
        token = bearer_token(authorization)
        if token.startswith(KEY_PREFIX):
            principal = await self._api_keys.authenticate(token)
            key_id = uuid.UUID(principal.actor.removeprefix("apikey:"))
            now = time.monotonic()
            self._key_checks[key_id] = (now, True)
            # Counted as asked: the first re-checks of many connections opened one after
            # another then share the refresh-ahead batches instead of one query each.
            self._asked[key_id] = now
            if len(self._asked) > _OWNER_CACHE_SIZE:  # keys used over HTTP only, too
                self._forget_asked(now)
            return Credential(principal, key_id=key_id)
        if token.count(".") == 2:
            return await self._jwt(token)
        raise Unauthenticated("The bearer token is neither a FlowSync API key nor a JWT.")

    async def _jwt(self, token: str) -> Credential:
        if self._jwks is None:
            raise Unauthenticated("This server accepts API keys only (no JWKS URL configured).")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError as exc:
            raise Unauthenticated("The JWT is malformed.") from exc
        if header.get("alg") not in self._algorithms:
            raise Unauthenticated(
                f"The JWT's algorithm {header.get('alg')!r} is not accepted "
                f"(accepted: {', '.join(self._algorithms)})."
            )
        jwks = self._jwks
        try:
            # PyJWKClient fetches with urllib (blocking): off the event loop. It caches the
            # key set, so this is a dictionary lookup except when a new `kid` appears.
            key = await asyncio.to_thread(jwks.get_signing_key_from_jwt, token)
        except jwt.PyJWKClientConnectionError as exc:
            log.warning("JWKS %s unreachable: %s", self._settings.jwks_url, exc)
            raise Unauthenticated(
                "The JWT cannot be verified now: the JWKS is unreachable."
            ) from exc
        except (jwt.PyJWKClientError, jwt.DecodeError) as exc:
            raise Unauthenticated(f"The JWT's signing key is not known: {exc}") from exc
        alg = str(header.get("alg"))
        if _KEY_TYPES.get(alg[:2]) != key.key_type:
            # A JWKS publishes public keys: an HS256 token "signed" with one is the
            # algorithm-confusion attack, refused here before PyJWT sees the pair.
            raise Unauthenticated(
                f"The JWT's algorithm {alg!r} does not fit its signing key (a {key.key_type} key)."
            )
        required = ["exp", "iss", "sub"] + (["aud"] if self._settings.jwt_audience else [])
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=self._algorithms,
                audience=self._settings.jwt_audience,
                issuer=self._settings.jwt_issuer,
                leeway=self._settings.jwt_leeway_seconds,
                options={"require": required},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("The JWT has expired.") from exc
        except jwt.InvalidAudienceError as exc:
            raise Unauthenticated("The JWT is for another audience.") from exc
        except jwt.InvalidIssuerError as exc:
            raise Unauthenticated("The JWT is from another issuer.") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthenticated(f"The JWT lacks the {exc.claim!r} claim.") from exc
        except jwt.InvalidSignatureError as exc:
            raise Unauthenticated("The JWT's signature does not verify.") from exc
        except (jwt.InvalidTokenError, TypeError, ValueError, OverflowError) as exc:
            raise Unauthenticated(f"The JWT is not valid: {exc}") from exc
        issuer, subject, name = str(claims["iss"]), str(claims["sub"]), claims.get("name")
        for claim, value in (("iss", issuer), ("sub", subject), ("name", name)):
            if isinstance(value, str) and "\x00" in value:
                # PostgreSQL's text cannot hold it; the owner is stored by these.
                raise Unauthenticated(f"The JWT's {claim!r} claim holds a NUL character.")
        owner_id, role = await self._team(claims, issuer, subject, name)
        return Credential(
            Principal(owner_id, f"jwt:{subject}", role), expires_at=_expiry(claims["exp"])
        )

    async def _team(
        self, claims: dict[str, object], issuer: str, subject: str, name: object
    ) -> tuple[uuid.UUID, Role]:
        """The team a JWT signs in to and its role there. With the team claim, the team
        `<iss>|org:<team>` (made on first use), and the role a members row gives the
        subject there, else the role claim's through FLOWSYNC_JWT_ROLE_MAP (viewer when
        missing or unmapped). Without it, the subject's personal team `<iss>|<sub>`,
        where it is admin unless a members row says otherwise."""
        member = f"jwt:{issuer}|{subject}"
        team = _claim(claims, self._settings.jwt_team_claim)
        if team is not None:
            if not isinstance(team, str) or not team.strip() or "\x00" in team:
                raise Unauthenticated(
                    f"The JWT's {self._settings.jwt_team_claim!r} claim (its team) is not "
                    "a non-empty string."
                )
            owner_id = await self._owner(f"{issuer}|org:{team}", team)
            found = await self._members.role_of(owner_id, member)
            if found is not None:
                return owner_id, found
            value = _claim(claims, self._settings.jwt_role_claim)
            mapped = self._role_map.get(value) if isinstance(value, str) else None
            return owner_id, mapped or Role.VIEWER
        owner_id = await self._owner(f"{issuer}|{subject}", name, admin=member)
        return owner_id, await self._members.role_of(owner_id, member) or Role.ADMIN

    async def _owner(self, subject: str, name: object, admin: str | None = None) -> uuid.UUID:
        found = self._owners.get(subject)
        if found is not None:
            self._owners.move_to_end(subject)
            return found
        owner_id = await self._api_keys.ensure_owner(
            subject, name if isinstance(name, str) else None, admin=admin
        )
        self._owners[subject] = owner_id
        while len(self._owners) > _OWNER_CACHE_SIZE:
            self._owners.popitem(last=False)
        return owner_id

    def guard(self, credential: Credential) -> CredentialGuard:
        """A guard that keeps `credential` checked for one long-lived connection."""
        return CredentialGuard(
            self,
            credential,
            period=self._settings.credential_check_seconds,
            leeway=self._settings.jwt_leeway_seconds,
        )

    async def still_valid(self, credential: Credential, *, fresh: bool = False) -> bool:
        """Whether the credential still authenticates: its JWT has not expired and its
        API key was not revoked. Key checks are cached for half of
        `credential_check_seconds`, and the keys due for a check at the same moment are
        checked together in one query, so that many subscriptions cost a few queries
        per period whatever their number. `fresh` skips that cache: the answer then
        reflects every revocation committed before the call."""
        if credential.expires_at is not None:
            return time.time() < credential.expires_at + self._settings.jwt_leeway_seconds
        if credential.key_id is None:
            return True
        key_id = credential.key_id
        self._asked[key_id] = time.monotonic()
        checked = self._key_checks.get(key_id)
        ttl = self._settings.credential_check_seconds / 2
        if checked is not None and (
            not checked[1] or (not fresh and time.monotonic() - checked[0] < ttl)
        ):
            return checked[1]
        # A batch still in `_batch` has not run its query yet (`_check_batch` takes it
        # before querying), so joining it is as fresh as querying now.
        if self._batch is None:
            self._batch = asyncio.get_running_loop().create_future()
            self._batch_task = asyncio.create_task(self._check_batch(self._batch))
        batch = self._batch
        self._batch_keys.add(key_id)
        await asyncio.shield(batch)
        return self._key_checks.get(key_id, (0.0, True))[1]

    def _forget_asked(self, now: float) -> None:
        """Keep `_asked` bounded: drop keys not asked for two check periods, and past
        the bound the oldest half."""
        cutoff = now - 2 * self._settings.credential_check_seconds
        self._asked = {k: at for k, at in self._asked.items() if at > cutoff}
        if len(self._asked) > _OWNER_CACHE_SIZE:
            newest = sorted(self._asked.items(), key=lambda item: item[1])
            self._asked = dict(newest[len(newest) // 2 :])

    async def _check_batch(self, done: asyncio.Future[None]) -> None:
        await asyncio.sleep(0)  # let the other checks of this moment join
        keys, self._batch_keys, self._batch = self._batch_keys, set(), None
        # Also refresh the keys that will be due soon, so that subscriptions checking at
        # staggered moments share a few queries instead of one each.
        now = time.monotonic()
        period = self._settings.credential_check_seconds
        self._asked = {k: at for k, at in self._asked.items() if now - at < 2 * period}
        for key in self._asked:
            checked = self._key_checks.get(key)
            if checked is not None and checked[1] and now - checked[0] > period / 4:
                keys.add(key)
        try:
            await self.refresh(keys)
        finally:
            done.set_result(None)

    async def refresh(self, keys: set[uuid.UUID]) -> set[uuid.UUID] | None:
        """Check these API keys now, in one query, and remember the answers for
        `still_valid`: the ones not revoked, or None when the query failed (the last
        answers are kept, and the next check retries)."""
        try:
            async with self._sessions() as session:
                active = set(
                    (
                        await session.execute(
                            select(ApiKey.id).where(
                                among(ApiKey.id, keys),
                                ApiKey.revoked_at.is_(None),
                            )
                        )
                    ).scalars()
                )
        except Exception as exc:
            log.warning("could not check %d API keys: %s", len(keys), exc)
            return None
        now = time.monotonic()
        if len(self._key_checks) > _OWNER_CACHE_SIZE:
            self._key_checks = {k: v for k, v in self._key_checks.items() if not v[1]}
        for key in keys:
            self._key_checks[key] = (now, key in active)
        return active

    def watch(self, guard: CredentialGuard, end: End) -> Callable[[], None]:
        """Keep a long-lived connection's credential checked (see `CredentialWatch`);
        call what this returns when the connection ends."""
        return self._watch.watch(guard, end)

    async def close(self) -> None:
        await self._watch.close()


class CredentialGuard:
    """The credential of one long-lived connection (a websocket), kept honest for every
    operation sent over it. `check` re-validates when the last validation is older than
    the period (`credential_check_seconds`), and always, past every cache, before a
    write; a JWT's expiry is compared on every call (it costs nothing). Once found
    invalid the guard stays invalid: the connection is to be closed. Made by
    `Authenticator.guard`."""

    def __init__(
        self, authenticator: Authenticator, credential: Credential, period: float, leeway: float
    ) -> None:
        self.credential = credential
        self.period = period
        self._auth = authenticator
        self._ends_at = None if credential.expires_at is None else credential.expires_at + leeway
        self._checked_at = time.monotonic()
        self._refusal: str | None = None

    def expires_in(self) -> float | None:
        """Seconds until a JWT's expiry (with the leeway); None for an API key."""
        return None if self._ends_at is None else self._ends_at - time.time()

    async def check(self, *, write: bool = False) -> None:
        """Return when the credential still authenticates; `Unauthenticated` (saying
        whether the key was revoked or the JWT expired) when it no longer does."""
        if self._refusal is None:
            now = time.monotonic()
            if write or self._ends_at is not None or now - self._checked_at >= self.period:
                self.settle(await self._auth.still_valid(self.credential, fresh=write))
        self.verdict()

    def settle(self, valid: bool) -> None:
        """Record the answer of a validation made just now (by `check`, or for many
        connections at once by `CredentialWatch`)."""
        self._checked_at = time.monotonic()
        if not valid and self._refusal is None:
            self._refusal = (
                "The JWT has expired." if self._ends_at is not None else "The API key was revoked."
            )

    def verdict(self) -> None:
        """`Unauthenticated` once a validation failed (or a JWT's expiry passed)."""
        if self._refusal is None and self._ends_at is not None and time.time() >= self._ends_at:
            self.settle(False)
        if self._refusal is not None:
            raise Unauthenticated(self._refusal + " Authenticate again on a new connection.")


End = Callable[[Unauthenticated], Coroutine[Any, Any, None]]


class CredentialWatch:
    """Keeps the credentials of a process's long-lived connections (websockets, HTTP
    streams) checked, with one task instead of a timer per connection: every `period`
    the API keys of all of them are checked in one query, and each JWT's expiry is a
    timer of its own (one callback at that moment). A connection whose credential no
    longer authenticates gets `end(Unauthenticated)` once, in a task of its own.

    Idle, ten thousand subscribers then cost one query and one pass over them per
    period, where a watchdog task each woke two thousand times a second."""

    def __init__(self, authenticator: Authenticator, period: float) -> None:
        self._auth = authenticator
        self._period = period
        self._watched: dict[int, tuple[CredentialGuard, End]] = {}
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self._ending: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._tokens = itertools.count()

    def watch(self, guard: CredentialGuard, end: End) -> Callable[[], None]:
        token = next(self._tokens)
        self._watched[token] = (guard, end)
        loop = asyncio.get_running_loop()
        expires_in = guard.expires_in()
        if expires_in is not None:
            # A moment past due, so that the JWT is certainly past its expiry then.
            self._timers[token] = loop.call_later(max(expires_in, 0.0) + 0.01, self._due, token)
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            # In a context of its own, not that of the connection that happened to start it.
            self._task = loop.create_task(
                self._run(), name="flowsync credential watch", context=contextvars.Context()
            )
        return functools.partial(self._forget, token)

    def _forget(self, token: int) -> None:
        self._watched.pop(token, None)
        timer = self._timers.pop(token, None)
        if timer is not None:
            timer.cancel()

    def _due(self, token: int) -> None:
        """A JWT's expiry (woken early by a clock step: set again for what is left)."""
        self._timers.pop(token, None)
        entry = self._watched.get(token)
        expires_in = None if entry is None else entry[0].expires_in()
        if expires_in is not None and expires_in > 0:
            self._timers[token] = asyncio.get_running_loop().call_later(
                expires_in + 0.01, self._due, token
            )
            return
        self._judge(token)

    def _judge(self, token: int) -> None:
        """End the connection if its guard's verdict is a refusal."""
        entry = self._watched.get(token)
        if entry is None:
            return
        guard, end = entry
        try:
            guard.verdict()
        except Unauthenticated as exc:
            self._forget(token)
            task: asyncio.Task[None] = asyncio.get_running_loop().create_task(end(exc))
            self._ending.add(task)
            task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        self._ending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("ending a connection failed", exc_info=task.exception())

    async def _run(self) -> None:
        while self._watched:
            await asyncio.sleep(self._period)
            watched = list(self._watched.items())
            keys = {g.credential.key_id for _, (g, _) in watched if g.credential.key_id is not None}
            active = await self._auth.refresh(keys) if keys else set()
            for token, (guard, _) in watched:
                key = guard.credential.key_id
                if key is not None and active is not None:
                    guard.settle(key in active)
                self._judge(token)

    async def close(self) -> None:
        """Stop watching (the process is stopping): no connection is ended by it."""
        for token in list(self._watched):
            self._forget(token)
        for task in [self._task, *self._ending]:
            if task is not None and not task.done():
                task.cancel()
                await asyncio.wait([task])
