"""Traces' cost: steps/s of a 10-step chain and a fork/join of 8 with tracing off and
on, beside main's engine (the same throughput, worker processes running the code of a
git ref, `main` by default), in alternating turns on the same database.

    .venv/bin/python bench/trace_bench.py [--url postgresql://postgres@127.0.0.1:5432/postgres]
        [--turns 3] [--runs 200] [--procs 2] [--concurrency 16] [--main-ref main]

Tracing on: the worker processes export every span over OTLP/HTTP (protobuf, the SDK's
BatchSpanProcessor with its defaults) to a receiver this script runs on 127.0.0.1, which
decodes each request and counts its spans, as a collector would receive them; the runs
are started with tracing on in this process (their execution spans are recorded and
dropped: the start is not what is timed). Off: no OTEL_* variable is set. Main: the
same, its workers running `git archive <ref>` (no tracing there to turn on).

Throughput is measured as bench/engine_bench.py measures it (its `throughput`: a backlog
of runs released at once to `--procs` real worker processes; steps over the time from
the first step's start to the last run's end). Each turn measures every mode once, in
an order rotated per turn; the medians and their ratios are printed. Nothing is
asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import os
import statistics
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import engine_bench  # noqa: E402
from flowsync import tracing  # noqa: E402
from flowsync.config import Settings  # noqa: E402
from flowsync.db.migrate import upgrade_async  # noqa: E402
from flowsync.services.container import build_services  # noqa: E402
from flowsync.services.principal import Principal  # noqa: E402
from tests.support.graphs import chain, fan  # noqa: E402

MODES = ("main", "off", "on")


class Receiver:
    """An OTLP/HTTP trace receiver on 127.0.0.1 that counts the spans it is sent."""

    def __init__(self) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
            ExportTraceServiceResponse,
        )

        self.spans = 0
        self.requests = 0
        receiver = self
        reply = ExportTraceServiceResponse().SerializeToString()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                request = ExportTraceServiceRequest.FromString(body)
                receiver.requests += 1
                receiver.spans += sum(
                    len(s.spans) for r in request.resource_spans for s in r.scope_spans
                )
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"


@contextlib.contextmanager
def main_checkout(ref: str) -> Iterator[Path]:
    """The tree of `ref`, extracted to a temporary folder (the checkout is not touched)."""
    with tempfile.TemporaryDirectory(prefix="flowsync-main-") as folder:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
        yield Path(folder)


def workers_from(root: Path, concurrency: int) -> Callable[..., list[Any]]:
    """engine_bench.start_workers, the processes running the code under `root` at
    `concurrency` (whatever throughput asks: its 32 open a pool of 20 connections per
    process, more than a shared server may have free)."""

    def start(url: str, count: int, _asked: int, **settings: Any) -> list[Any]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWSYNC_")}
        env.update(
            FLOWSYNC_DATABASE_URL=url, PYTHONPATH=str(root), FLOWSYNC_LOG_LEVEL="warning",
            PYTHONDONTWRITEBYTECODE="1",
        )  # fmt: skip
        # No cron scheduler: one connection less per process (nothing is scheduled).
        for key, value in {"scheduler_enabled": "false", **settings}.items():
            env[f"FLOWSYNC_{key.upper()}"] = str(value)
        logs = Path(os.environ.get("TMPDIR", "/tmp"))
        return [
            subprocess.Popen(
                [sys.executable, "-m", "flowsync", "worker", "--concurrency", str(concurrency)],
                env=env,
                cwd=root,
                stdout=(logs / f"flowsync-trace-bench-worker-{i}.log").open("w"),
                stderr=subprocess.STDOUT,
            )
            for i in range(count)
        ]

    return start


@contextlib.contextmanager
def mode(name: str, receiver: Receiver, main_root: Path, concurrency: int) -> Iterator[None]:
    """The environment of one mode: its workers' code and OTEL_* variables, and whether
    this process records the runs' starts."""
    own = engine_bench.start_workers
    engine_bench.start_workers = workers_from(main_root if name == "main" else ROOT, concurrency)
    if name == "on":
        from opentelemetry.sdk.trace import TracerProvider

        os.environ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = receiver.url
        tracing.install(TracerProvider())
    try:
        yield
    finally:
        engine_bench.start_workers = own
        os.environ.pop("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", None)
        tracing.shutdown()


async def measure(
    admin_url: str, turns: int, runs: int, procs: int, concurrency: int, main_root: Path
) -> tuple[dict[tuple[str, str], list[float]], Receiver]:
    url = await engine_bench.fresh_db(admin_url, "flowsync_trace_bench")
    await upgrade_async(url)
    # Few connections: the server may be shared (max_connections is often 100).
    settings = Settings(database_url=url, pool_size=3, max_overflow=2, _env_file=None)  # type: ignore[call-arg]
    services = await build_services(settings, url)
    receiver = Receiver()
    rates: dict[tuple[str, str], list[float]] = {}
    shapes = (("chain", chain(10), runs), ("fork/join", fan(8), runs))
    try:
        me = Principal(await services.api_keys.ensure_owner("bench"), "bench")
        for turn in range(turns):
            order = MODES[turn % 3 :] + MODES[: turn % 3]
            for name in order:
                for shape, definition, count in shapes:
                    with mode(name, receiver, main_root, concurrency):
                        before = receiver.spans
                        rate, steps, *_ = await engine_bench.throughput(
                            services, me, definition, count, procs
                        )
                    rates.setdefault((shape, name), []).append(rate)
                    sent = receiver.spans - before
                    print(f"turn {turn + 1} {shape:9} {name:4} {rate:7.0f} steps/s "
                          f"({steps} steps, {sent} spans received)", flush=True)  # fmt: skip
    finally:
        await services.close()
        receiver.server.shutdown()
    return rates, receiver


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    engine_bench.url_argument(parser)
    parser.add_argument("--turns", type=int, default=3, help="turns of every mode")
    parser.add_argument("--runs", type=int, default=200, help="executions per measurement")
    parser.add_argument("--procs", type=int, default=2, help="worker processes")
    parser.add_argument(
        "--concurrency", type=int, default=16,
        help="steps per worker process (6 where the server's connections are scarce)",
    )  # fmt: skip
    parser.add_argument("--main-ref", default="main", help="the git ref to compare with")
    args = parser.parse_args()
    os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")
    for name in [n for n in os.environ if n.startswith("OTEL_")]:
        del os.environ[name]

    with main_checkout(args.main_ref) as main_root:
        rates, receiver = asyncio.run(
            measure(args.url, args.turns, args.runs, args.procs, args.concurrency, main_root)
        )
    print(f"\nTraces' cost ({os.cpu_count()} cores, {args.procs} worker processes of "
          f"{args.concurrency} steps, "
          f"{args.turns} turns; medians in steps/s; on: OTLP/HTTP to a local receiver, "
          f"{receiver.spans} spans in {receiver.requests} requests in all)")  # fmt: skip
    print(f"{'shape':10} {args.main_ref:>8} {'off':>8} {'on':>8} {'off/main':>9} {'on/off':>8}")
    for shape in ("chain", "fork/join"):
        med = {m: statistics.median(rates[(shape, m)]) for m in MODES}
        spread = {m: (min(rates[(shape, m)]), max(rates[(shape, m)])) for m in MODES}
        print(f"{shape:10} {med['main']:8.0f} {med['off']:8.0f} {med['on']:8.0f} "
              f"{med['off'] / med['main']:9.2f} {med['on'] / med['off']:8.2f}")  # fmt: skip
        ranges = ", ".join(f"{m} {lo:.0f}-{hi:.0f}" for m, (lo, hi) in spread.items())
        print(f"{'':10} range: {ranges}")


if __name__ == "__main__":
    main()
