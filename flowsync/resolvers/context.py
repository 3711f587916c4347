"""What every resolver gets: the services, the live feed and the caller's credential."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from flowsync.errors import Unauthenticated
from flowsync.rate_limits import RateBudget
from flowsync.resolvers.loaders import Loaders
from flowsync.services.auth import Credential, CredentialGuard
from flowsync.services.container import Services
from flowsync.services.principal import Principal

if TYPE_CHECKING:
    from flowsync.events.runtime import LiveEvents
    from flowsync.resolvers.shared import SharedEvents


@dataclass
class Context:
    """Built per HTTP request, or once per websocket: its credential is set by the
    `connection_init` payload, and its guard re-checks that credential for every
    operation sent over the socket (see `flowsync.schema.view`)."""

    services: Services
    live: LiveEvents | None
    request: Request | WebSocket
    response: Response | WebSocket | None
    credential: Credential | None = None
    connection_params: dict[str, object] | None = None
    shared: SharedEvents | None = None
    guard: CredentialGuard | None = None
    # The owner's rate budget once this request (or, on a websocket, the latest
    # operation admitted) was counted.
    rate_budget: RateBudget | None = None

    def require_credential(self) -> Credential:
        """The caller's credential; every operation needs one."""
        if self.credential is None:
            raise Unauthenticated("Authentication required: send `Authorization: Bearer …`.")
        return self.credential

    @property
    def principal(self) -> Principal:
        """Whom every service call is scoped to."""
        return self.require_credential().principal

    def loaders(self) -> Loaders:
        """Fresh DataLoaders, for one operation (or one subscription message)."""
        return Loaders(self.services, self.principal)
