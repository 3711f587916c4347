"""A minimal HTTP target for the action benchmark: answers every request with a small
JSON body. Run: python bench/action_target.py PORT, or from a benchmark `async with
serving() as url:` (a process of its own on a free-ish loopback port)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import uvicorn

BODY = b'{"ok":true}'


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    while True:  # drain the request body
        message = await receive()
        if not message.get("more_body"):
            break
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": BODY})


@contextlib.asynccontextmanager
async def serving() -> AsyncIterator[str]:
    """The target in a process of its own, for as long as the block runs: its URL."""
    port = 18000 + os.getpid() % 1000
    target = subprocess.Popen([sys.executable, __file__, str(port)])
    try:
        await asyncio.sleep(1.5)  # started and listening
        yield f"http://127.0.0.1:{port}/"
    finally:
        target.terminate()
        target.wait(10)


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
