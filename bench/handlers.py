"""Benchmark-only handlers, loaded into worker processes with FLOWSYNC_EXTRA_HANDLERS."""

from __future__ import annotations

import time

from flowsync.worker.handlers import Completed, Outcome, StepContext, TemplateHandler


class Stamp(TemplateHandler):
    """A no-op `transform` that records the wall-clock time its handler was entered, so
    that hop latency (one step's start to the next's) can be read back from the outputs."""

    async def run(self, ctx: StepContext) -> Outcome:
        entered = time.time()
        result = await super().run(ctx)
        assert isinstance(result, Completed)
        return Completed({**result.output, "enteredAt": entered})
