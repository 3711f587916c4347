"""Running the long-lived processes' event loop.

`flowsync dev` and `flowsync worker` run on uvloop (libuv, in C) where it is installed:
asyncpg is written for it, and the standard loop's pure-Python transports were a
fifth of the API's CPU when writing subscription events to a thousand websockets. The
setting `event_loop = "asyncio"` runs the standard loop instead (and is used where
uvloop is missing, e.g. on Windows).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

log = logging.getLogger("flowsync")


def run(main: Coroutine[Any, Any, T], kind: str = "uvloop") -> T:
    """Run `main` to completion on a new loop of the given kind."""
    factory = None
    if kind == "uvloop":
        try:
            import uvloop
        except ImportError:
            log.info("uvloop is not installed; running the standard asyncio loop")
        else:
            factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)
