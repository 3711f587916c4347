"""The handler registry: node type → handler, built from settings."""

from __future__ import annotations

import importlib
from collections.abc import Mapping

from flowsync.config import Settings
from flowsync.errors import ConfigurationError
from flowsync.worker.actions import ActionHandler, WebhookResponseHandler
from flowsync.worker.handlers import (
    ConditionHandler,
    DelayHandler,
    Handler,
    JoinHandler,
    PassHandler,
    StartHandler,
    TemplateHandler,
)
from flowsync.worker.netguard import NetworkPolicy


class HandlerRegistry:
    """Node type → handler."""

    def __init__(self, handlers: Mapping[str, Handler] | None = None):
        self._handlers: dict[str, Handler] = dict(handlers or {})

    def register(self, node_type: str, handler: Handler) -> None:
        """Add or replace the handler of a node type."""
        self._handlers[node_type] = handler

    async def close(self) -> None:
        """Release what handlers hold (pooled HTTP connections)."""
        for handler in {id(h): h for h in self._handlers.values()}.values():
            close = getattr(handler, "close", None)
            if close is not None:
                await close()

    def get(self, node_type: str) -> Handler:
        """The handler for a node type (ConfigurationError when none is registered)."""
        try:
            return self._handlers[node_type]
        except KeyError:
            raise ConfigurationError(f"No handler is registered for {node_type!r}.") from None


def default_registry(
    policy: NetworkPolicy | None = None, *, max_response_bytes: int = 10 * 1024 * 1024
) -> HandlerRegistry:
    """The built-in handlers; `action` calls only what `policy` allows (by default: only
    globally routable addresses)."""
    template = TemplateHandler()
    return HandlerRegistry(
        {
            "start": StartHandler(),
            "end": template,
            "transform": template,
            "condition": ConditionHandler(),
            "fork": PassHandler(),
            "join": JoinHandler(),
            "delay": DelayHandler(),
            "action": ActionHandler(
                policy or NetworkPolicy(), max_response_bytes=max_response_bytes
            ),
            "webhook_response": WebhookResponseHandler(),
        }
    )


def registry_from_settings(settings: Settings) -> HandlerRegistry:
    """The built-ins plus `FLOWSYNC_EXTRA_HANDLERS` ('type=module:attr,...'); `attr`
    names a handler object or a class to instantiate."""
    allow = [part.strip() for part in settings.allow_networks.split(",") if part.strip()]
    registry = default_registry(
        NetworkPolicy(allow), max_response_bytes=settings.max_response_bytes
    )
    for item in filter(None, (part.strip() for part in settings.extra_handlers.split(","))):
        node_type, _, target = item.partition("=")
        module_name, _, attr = target.partition(":")
        if not (node_type and module_name and attr):
            raise ConfigurationError(
                f"FLOWSYNC_EXTRA_HANDLERS: {item!r} is not of the form type=module:attr"
            )
        try:
            obj = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigurationError(
                f"FLOWSYNC_EXTRA_HANDLERS: cannot load {target}: {exc}"
            ) from exc
        registry.register(node_type, obj() if isinstance(obj, type) else obj)
    return registry
