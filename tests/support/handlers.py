"""Test-only step handlers, loaded into real worker processes through
FLOWSYNC_EXTRA_HANDLERS (the documented plugin mechanism), never by patching."""

from __future__ import annotations

import asyncio

from flowsync.worker.handlers import Completed, Outcome, StepContext, TemplateHandler


class SlowTransform(TemplateHandler):
    """A `transform` that first sleeps `input.sleep` seconds: a step that holds its
    worker long enough to kill the worker mid-step."""

    async def run(self, ctx: StepContext) -> Outcome:
        seconds = 0.0
        if isinstance(ctx.job.execution_input, dict):
            seconds = float(ctx.job.execution_input.get("sleep", 0))
        await asyncio.sleep(seconds)
        result = await super().run(ctx)
        assert isinstance(result, Completed)
        return result
