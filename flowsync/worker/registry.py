"""The handler registry: node type → handler, built from settings."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping

from flowsync.config import Settings
from flowsync.errors import ConfigurationError
from flowsync.worker.actions import ActionHandler, WebhookResponseHandler
from flowsync.worker.evaluation import Evaluator
from flowsync.worker.handlers import (
    ConditionHandler,
    DelayHandler,
    Handler,
    JoinHandler,
    PassHandler,
    StartHandler,
    TemplateHandler,
    WaitHandler,
    WorkflowHandler,
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
    policy: NetworkPolicy | None = None,
    *,
    max_response_bytes: int = 10 * 1024 * 1024,
    evaluator: Evaluator | None = None,
) -> HandlerRegistry:
    """The built-in handlers; `action` calls only what `policy` allows (by default: only
    globally routable addresses). They share `evaluator` (by default, one with the
    default time and size limits)."""
    evaluator = evaluator or Evaluator()
    template = TemplateHandler(evaluator)
    return HandlerRegistry(
        {
            "start": StartHandler(evaluator),
            "end": template,
            "transform": template,
            "condition": ConditionHandler(evaluator),
            "fork": PassHandler(evaluator),
            "join": JoinHandler(evaluator),
            "delay": DelayHandler(evaluator),
            "wait": WaitHandler(evaluator),
            "approval": WaitHandler(evaluator),
            "action": ActionHandler(
                policy or NetworkPolicy(),
                max_response_bytes=max_response_bytes,
                evaluator=evaluator,
            ),
            "webhook_response": WebhookResponseHandler(evaluator),
            "workflow": WorkflowHandler(evaluator),
        }
    )


def registry_from_settings(settings: Settings) -> HandlerRegistry:
    """The built-ins plus `FLOWSYNC_EXTRA_HANDLERS` ('type=module:attr,...'); `attr`
    names a handler object or a class to instantiate."""
    allow = [part.strip() for part in settings.allow_networks.split(",") if part.strip()]
    evaluator = Evaluator(
        timeout_seconds=settings.expression_timeout_seconds,
        max_output_bytes=settings.max_step_output_bytes,
    )
    registry = default_registry(
        NetworkPolicy(allow), max_response_bytes=settings.max_response_bytes, evaluator=evaluator
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
        if not isinstance(obj, type):
            registry.register(node_type, obj)
        elif "evaluator" in inspect.signature(obj).parameters:
            # A subclass of a built-in handler keeps the configured limits.
            registry.register(node_type, obj(evaluator=evaluator))
        else:
            registry.register(node_type, obj())
    return registry
