"""Evaluating a step's expressions without stalling the worker, and capping its output.

The CEL runtime is Rust and holds the GIL for a whole evaluation (measured: a 100,000-
iteration comprehension run with `asyncio.to_thread` let the event loop tick once in its
73 ms), and it has no cost limit. A thread can therefore neither keep the loop turning nor
be stopped. So:

- An expression whose static estimate is low (`Cost.offloaded` false: no comprehension
  over a list from data, at most `budget.OFFLOAD_COST` units and `budget.INLINE_READS`
  reads of data) is evaluated on the event loop, as before: that is nearly every
  condition and template, and costs microseconds.
- Any other runs in an evaluator process (a small pool, started on first use, one
  evaluation at a time each) under a time limit: past it, the process is killed (a new
  one starts when next needed) and the step fails with a message that names the node and
  the budget (the time of one template's expressions adds up). A round trip costs about
  220 µs against 60 µs on the loop (measured, a 10-item `map`). The process' address
  space is limited too, so an expression that builds a huge value dies there rather than
  in the worker.
- A step's output over `max_output_bytes` of JSON fails the step; a template stops as
  soon as what it rendered adds up to more than that.

Neither failure is retried: the same expression on the same data fails the same way.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import struct
import subprocess
import sys
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import orjson
from pydantic import JsonValue

from flowsync.engine.expressions import Expression, compile_expression
from flowsync.engine.templates import Template
from flowsync.errors import ExpressionFailed, StepFailed

__all__ = ["DEFAULT_MAX_OUTPUT_BYTES", "DEFAULT_TIMEOUT_SECONDS", "Evaluator", "default_evaluator"]

DEFAULT_TIMEOUT_SECONDS = 1.0
DEFAULT_MAX_OUTPUT_BYTES = 4 * 1024 * 1024

# The evaluator processes' address space: the interpreter and the CEL library take about
# 60 MiB of it (measured VmSize); the rest bounds what one evaluation may build.
_MEMORY_BYTES = 1024 * 1024 * 1024
_START_SECONDS = 30.0  # how long a new evaluator process may take to be ready
_HEADER = struct.Struct(">I")
_ROOT = str(Path(__file__).resolve().parents[2])
_CHILD = (
    f"import sys; sys.path.insert(0, {_ROOT!r}); "
    "from flowsync.worker.evaluation import _child_main; _child_main()"
)


class Evaluator:
    """Renders a step's templates and conditions and checks its output (see the module
    docstring). One per worker process, shared by its handlers; usable from any event
    loop. `close` stops its processes; it starts new ones if it is used again."""

    def __init__(
        self,
        *,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
        processes: int | None = None,
    ) -> None:
        self.timeout_seconds = timeout_seconds
        self.max_output_bytes = max_output_bytes
        self.processes = processes or max(1, min(4, os.cpu_count() or 1))
        self._idle: list[_Child] = []
        self._all: weakref.WeakSet[_Child] = weakref.WeakSet()
        self._slots: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None
        self._generation = 0  # a child of an older generation is stopped when it is free
        _LIVE.add(self)

    async def render(self, template: Template, variables: Mapping[str, Any], node_id: str) -> Any:
        """The template's value (`Template.render`, its value capped at
        `max_output_bytes`), its costly expressions evaluated in an evaluator process."""
        if not template.offloaded:
            return template.render(variables, limit=self.max_output_bytes)
        computed: dict[Expression, JsonValue | ExpressionFailed] = {}
        spent = 0.0
        for index, expression in enumerate(template.offloaded):
            try:
                computed[expression], took = await self._remote(
                    expression, variables, node_id, self.timeout_seconds - spent
                )
                spent += took
            except ExpressionFailed as exc:
                # Rendering raises it at its place; nothing after it is evaluated here.
                computed.update(dict.fromkeys(template.offloaded[index:], exc))
                break
        return template.render(variables, limit=self.max_output_bytes, computed=computed)

    async def condition(
        self, expression: Expression, variables: Mapping[str, Any], node_id: str
    ) -> bool:
        """A condition's result (see `Expression.evaluate_bool`)."""
        if not expression.cost.offloaded:
            return expression.evaluate_bool(variables)
        value, _took = await self._remote(expression, variables, node_id, self.timeout_seconds)
        return expression.check_bool(value)

    def output(self, value: Any, node_id: str) -> Any:
        """`value`, a step's output, unless its JSON is over `max_output_bytes`: then the
        step fails (StepFailed, not retried)."""
        try:
            size = len(orjson.dumps(value))
        except (TypeError, orjson.JSONEncodeError):  # an integer past 64 bits
            # (or a lone surrogate, or nesting orjson does not write: storing the output
            # then fails the step, output_unstorable, saying where)
            text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
            size = len(text.encode("utf-8", "surrogatepass"))
        if size > self.max_output_bytes:
            raise StepFailed(
                f"the output of node {node_id!r} is {size:,} bytes of JSON; a step's output "
                f"is at most {self.max_output_bytes:,} (FLOWSYNC_MAX_STEP_OUTPUT_BYTES)"
            )
        return value

    async def close(self) -> None:
        """Stop the evaluator processes: idle ones now, busy ones when their evaluation
        ends."""
        idle, self._idle = self._idle, []
        self._generation += 1
        await asyncio.to_thread(_stop_all, idle)

    async def _remote(
        self,
        expression: Expression,
        variables: Mapping[str, Any],
        node_id: str,
        budget: float,
    ) -> tuple[JsonValue, float]:
        """The expression's value from an evaluator process, and the seconds it took."""
        try:
            request = orjson.dumps(
                {"source": expression.source, "variables": expression.prepare(variables)}
            )
        except orjson.JSONEncodeError as exc:
            raise ExpressionFailed(
                f"expression {expression.quoted()} failed: its data has no JSON form ({exc})"
            ) from None
        async with self._slot():
            child = self._idle.pop() if self._idle else await self._start()
            if budget <= 0:
                self._release(child)
                raise self._over_budget(expression, node_id)
            started = time.perf_counter()
            try:
                reply = await asyncio.wait_for(child.exchange(request), budget)
            except TimeoutError:
                child.kill()
                raise self._over_budget(expression, node_id) from None
            except BaseException:
                child.kill()  # cancelled mid-evaluation: its reply would mislead the next
                raise
            took = time.perf_counter() - started
            if reply is None:
                child.kill()
                raise ExpressionFailed(
                    f"expression {expression.quoted()} in node {node_id!r} failed: its "
                    f"evaluator process ended (most likely it needed more than "
                    f"{_MEMORY_BYTES // 2**20:,} MiB)"
                )
            self._release(child)
        answer = orjson.loads(reply)
        if "error" in answer:
            raise ExpressionFailed(answer["error"])
        value: JsonValue = answer["value"]
        return value, took

    def _release(self, child: _Child) -> None:
        if child.generation == self._generation:
            self._idle.append(child)
        else:
            threading.Thread(target=child.stop, daemon=True).start()

    def _over_budget(self, expression: Expression, node_id: str) -> ExpressionFailed:
        return ExpressionFailed(
            f"expression {expression.quoted()} in node {node_id!r} ran over its time "
            f"budget of {self.timeout_seconds:g} s (FLOWSYNC_EXPRESSION_TIMEOUT_SECONDS) and "
            "was stopped; make it iterate fewer or shorter lists"
        )

    def _slot(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._slots is None or self._slots[0] is not loop:
            self._slots = (loop, asyncio.Semaphore(self.processes))
        return self._slots[1]

    async def _start(self) -> _Child:
        process = await asyncio.to_thread(_spawn, self.max_output_bytes)
        child = _Child(process, self._generation)
        self._all.add(child)
        try:
            hello = await asyncio.wait_for(child.read(), _START_SECONDS)
        except BaseException:
            child.kill()
            raise
        if hello != b"ready":
            child.kill()
            raise StepFailed("an expression evaluator process failed to start", retryable=True)
        return child


def default_evaluator() -> Evaluator:
    """The evaluator of handlers built without one: default limits, shared."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Evaluator()
    return _DEFAULT


_DEFAULT: Evaluator | None = None
_LIVE: weakref.WeakSet[Evaluator] = weakref.WeakSet()


@atexit.register
def _stop_at_exit() -> None:
    for evaluator in list(_LIVE):
        _stop_all(list(evaluator._all))


class _Child:
    """One evaluator process, spoken to through non-blocking pipes on the running loop
    (no thread: a hop through one would double the round trip, measured at 150 µs)."""

    def __init__(self, process: subprocess.Popen[bytes], generation: int) -> None:
        self.process = process
        self.generation = generation
        assert process.stdin is not None and process.stdout is not None
        self._in, self._out = process.stdin.fileno(), process.stdout.fileno()
        os.set_blocking(self._in, False)
        os.set_blocking(self._out, False)

    async def exchange(self, request: bytes) -> bytes | None:
        """Send one request and read its reply (None: the process ended)."""
        data = memoryview(_HEADER.pack(len(request)) + request)
        while data:
            try:
                data = data[os.write(self._in, data) :]
            except BlockingIOError:
                await _ready(self._in, writing=True)
            except OSError:  # the process ended
                return None
        return await self.read()

    async def read(self) -> bytes | None:
        """One framed message from the process (None: it ended)."""
        header = await self._read_exactly(_HEADER.size)
        if header is None:
            return None
        return await self._read_exactly(_HEADER.unpack(header)[0])

    async def _read_exactly(self, size: int) -> bytes | None:
        buffer = bytearray()
        while len(buffer) < size:
            try:
                chunk = os.read(self._out, size - len(buffer))
            except BlockingIOError:
                await _ready(self._out, writing=False)
                continue
            except OSError:
                return None
            if not chunk:
                return None
            buffer += chunk
        return bytes(buffer)

    def kill(self) -> None:
        """Kill the process and reap it (in a thread: dying may take a moment)."""
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        threading.Thread(target=self._reap, daemon=True).start()

    def stop(self) -> None:
        """Ask the process to exit (end of its input), and kill it if it lingers."""
        if self.process.stdin is not None:
            with contextlib.suppress(OSError, ValueError):
                self.process.stdin.close()
        try:
            self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        self._reap()

    def _reap(self) -> None:
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError, ValueError):
                    pipe.close()
        self.process.wait()


async def _ready(fd: int, *, writing: bool) -> None:
    """Until `fd` can be read (or written) without blocking."""
    loop = asyncio.get_running_loop()
    ready = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    if writing:
        loop.add_writer(fd, wake)
    else:
        loop.add_reader(fd, wake)
    try:
        await ready
    finally:
        if writing:
            loop.remove_writer(fd)
        else:
            loop.remove_reader(fd)


def _spawn(max_output_bytes: int) -> subprocess.Popen[bytes]:
    # This interpreter running this module's `_child_main`: no outside input in the command.
    return subprocess.Popen(  # noqa: S603
        [sys.executable, "-c", _CHILD, str(max_output_bytes), str(_MEMORY_BYTES)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        bufsize=0,
        start_new_session=True,  # Ctrl-C in a terminal reaches the worker only
    )


def _stop_all(children: list[_Child]) -> None:
    for child in {id(c): c for c in children}.values():
        if child.process.returncode is None:
            child.stop()


def _read_exactly(stream: IO[bytes], size: int) -> bytes | None:
    data = stream.read(size)
    return data if len(data) == size else None


def _child_main() -> None:
    """An evaluator process: framed JSON requests on stdin, one reply each on stdout."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    max_output, memory = int(sys.argv[1]), int(sys.argv[2])
    with contextlib.suppress(ImportError, ValueError, OSError):  # POSIX; Linux enforces it
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    cache: OrderedDict[str, Expression] = OrderedDict()

    def send(data: bytes) -> None:
        stdout.write(_HEADER.pack(len(data)) + data)
        stdout.flush()

    send(b"ready")
    while True:
        header = _read_exactly(stdin, _HEADER.size)
        if header is None:
            return
        body = _read_exactly(stdin, _HEADER.unpack(header)[0])
        if body is None:
            return
        send(_answer(body, cache, max_output))


def _answer(body: bytes, cache: OrderedDict[str, Expression], max_output: int) -> bytes:
    try:
        request = orjson.loads(body)
        source: str = request["source"]
        expression = cache.get(source)
        if expression is None:
            # Checked when its workflow was saved (or stored before the budget existed).
            expression = cache[source] = compile_expression(source, budget=False)
            if len(cache) > 256:
                cache.popitem(last=False)
        cache.move_to_end(source)
        reply = orjson.dumps({"value": expression.run(request["variables"])})
        if len(reply) > max_output + 16:
            raise ExpressionFailed(
                f"expression {expression.quoted()} gave {len(reply) - 10:,} bytes of JSON; "
                f"a value is at most {max_output:,} (FLOWSYNC_MAX_STEP_OUTPUT_BYTES)"
            )
        return reply
    except ExpressionFailed as exc:
        return orjson.dumps({"error": exc.message})
    except MemoryError:
        return orjson.dumps({"error": "the expression needed more memory than allowed"})
    except Exception as exc:  # a bug, reported on the step rather than killing the process
        return orjson.dumps({"error": f"the expression could not be evaluated: {exc!r}"})
