"""Dashboard benchmark: what the first page ships, how fast a run graph first renders, and
how long a finished step takes to turn its node green in a real browser.

    .venv/bin/python bench/dashboard_bench.py [--url postgresql://postgres@127.0.0.1:5432/postgres]
        [--loads 10] [--steps 200] [--delay 0.1] [--runs 10000] [--parts 1,2,3,4,5]
        [--profile DIR]

Prints:

1. the JS and CSS that `flowsync/web/dist/index.html` loads (its script, modulepreload and
   stylesheet tags), raw and gzip level 9, apart from the lazy chunks; whether a chunk
   named like the editor's is among the first page's; and what Chromium actually fetched
   (bytes on the wire, from Playwright's response events) when opening `/ui/`;
2. the time from navigation start to every `rf__node-*` element of a finished 20-node and
   200-node run being visible, each load in a fresh browser context (median and p95);
3. the time from a step's `finished_at` in `step_executions` to a MutationObserver in the
   page seeing its node's `data-status` become COMPLETED, over a chain of `--steps` delay
   nodes of `--delay` seconds (p50, p95, max, and how many nodes were observed);
4. the runs page with `--runs` runs in the database (real runs of a 3-node workflow, then
   copies of their execution, step and event rows): navigation start to the first rows,
   then one scroll through the whole list, `--scroll-px` a frame, the list fetching its
   pages as it goes, while a new run starts every `--live-every` seconds: frames/s, p50,
   p95 and max frame time, long tasks, the DOM rows kept and the JS heap after GC;
5. the run page of a `--graph-nodes`-node run whose steps finish while the pane is dragged
   and zoomed with the wheel for `--pan-seconds`: the same frame figures.
   `--profile DIR` also writes a CPU profile of parts 4 and 5 (open it in DevTools) and
   prints the functions with the most self time.

Real processes: one `flowsync dev` process serving the API and the dashboard (no embedded
worker) and two `flowsync worker` processes, on a database this benchmark creates on the
server of `--url` and drops at the end (also on Ctrl-C). The browser is Debian's Chromium
driven by Python Playwright; no browser is downloaded. Figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import dashboard_motion as motion  # noqa: E402
from bench.engine_bench import url_argument  # noqa: E402
from flowsync.config import Settings, to_asyncpg_dsn  # noqa: E402
from flowsync.db.migrate import upgrade_async  # noqa: E402
from flowsync.services.container import Services, build_services  # noqa: E402
from flowsync.services.principal import Principal  # noqa: E402
from tests.conftest import with_database  # noqa: E402
from tests.support.graphs import chain  # noqa: E402

DIST = ROOT / "flowsync" / "web" / "dist"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Every phase waits at most this long for anything (a page, a run, a process).
PATIENCE = 60.0

# Records, in the page, when each graph node's data-status first becomes COMPLETED (a
# change of the attribute: a node that appears already completed is counted apart).
# Also records, before the app sees it, when each subscription message arrives (its size,
# and for the first message saying a node's step is COMPLETED, its node), and the main
# thread's long tasks.
OBSERVER = """
(() => {
  window.__done = {};
  window.__appearedDone = {};
  window.__ws = { frames: 0, chars: 0, maxChars: 0, completed: {}, kinds: {} };
  window.__long = { count: 0, total: 0, max: 0 };
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", (event) => {
        const at = performance.timeOrigin + performance.now();
        const text = typeof event.data === "string" ? event.data : "";
        const ws = window.__ws;
        ws.frames += 1;
        ws.chars += text.length;
        ws.maxChars = Math.max(ws.maxChars, text.length);
        try {
          const e = JSON.parse(text)?.payload?.data?.executionUpdated;
          if (!e) return;
          ws.kinds[e.kind] = (ws.kinds[e.kind] || 0) + 1;
          if (e.nodeId && e.status === "COMPLETED" && !(e.nodeId in ws.completed))
            ws.completed[e.nodeId] = at;
        } catch (_) {}
      });
    }
  };
  try {
    new PerformanceObserver((list) => {
      for (const t of list.getEntries()) {
        window.__long.count += 1;
        window.__long.total += t.duration;
        window.__long.max = Math.max(window.__long.max, t.duration);
      }
    }).observe({ type: "longtask", buffered: true });
  } catch (_) {}
  const id = (el) => el.getAttribute("data-testid").slice("rf__node-".length);
  const isNode = (el) =>
    el.nodeType === 1 && (el.getAttribute("data-testid") || "").startsWith("rf__node-");
  const seen = (el, changed) => {
    if (el.getAttribute("data-status") !== "COMPLETED") return;
    const node = id(el);
    if (node in window.__done || node in window.__appearedDone) return;
    const at = performance.timeOrigin + performance.now();
    if (changed) window.__done[node] = at;
    else window.__appearedDone[node] = at;
  };
  const start = () => {
    new MutationObserver((records) => {
      for (const r of records) {
        if (r.type === "attributes" && isNode(r.target)) seen(r.target, true);
        for (const added of r.addedNodes || []) {
          if (isNode(added)) seen(added, false);
          if (added.nodeType === 1)
            for (const el of added.querySelectorAll('[data-testid^="rf__node-"]')) seen(el, false);
        }
      }
    }).observe(document.documentElement, {
      subtree: true, childList: true, attributes: true, attributeFilter: ["data-status"],
    });
  };
  if (document.documentElement) start();
  else document.addEventListener("DOMContentLoaded", start);
})();
"""

# True (with the time since navigation start) once the graph shows `count` nodes, every
# one of them rendered and visible (React Flow hides a node until it has measured it).
ALL_NODES_VISIBLE = """
(count) => {
  const nodes = document.querySelectorAll('[data-testid^="rf__node-"]');
  if (nodes.length < count) return false;
  for (const el of nodes) {
    const box = el.getBoundingClientRect();
    if (box.width === 0 || box.height === 0) return false;
    if (!el.checkVisibility({ visibilityProperty: true, opacityProperty: true })) return false;
  }
  return performance.now();
}
"""

# What the graph shows, when a load does not get to every node visible.
NODE_STATE = """
() => {
  const nodes = [...document.querySelectorAll('[data-testid^="rf__node-"]')];
  const hidden = nodes.filter((el) => !el.checkVisibility({ visibilityProperty: true }));
  const empty = nodes.filter((el) => el.getBoundingClientRect().width === 0);
  const text = (document.querySelector("main") || document.body).innerText.slice(0, 160);
  return `${nodes.length} node elements, ${hidden.length} hidden, ${empty.length} unsized; `
    + `page text: ${JSON.stringify(text)}`;
}
"""
LOAD_PATIENCE = 20.0
# Loads that did not end with every node visible, for the report.
failures: list[str] = []


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


def kib(n: float) -> str:
    return f"{n / 1024:.1f} KiB"


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- 1. what the first page ships ------------------------------------------------------


class _Tags(HTMLParser):
    """The asset URLs an HTML page loads by itself: scripts, module preloads, stylesheets."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        rel = (a.get("rel") or "").lower().split()
        if tag == "script" and a.get("src"):
            self.urls.append(a["src"] or "")
        elif tag == "link" and ("modulepreload" in rel or "stylesheet" in rel) and a.get("href"):
            self.urls.append(a["href"] or "")


def asset_sizes() -> dict[str, Any]:
    """Raw and gzip -9 bytes of the first page's assets and of every other asset."""
    tags = _Tags()
    tags.feed((DIST / "index.html").read_text())
    first = [Path(u).name for u in tags.urls if "/assets/" in u]
    sizes: dict[str, tuple[int, int]] = {}
    for path in sorted((DIST / "assets").iterdir()):
        if path.suffix in (".js", ".css"):
            data = path.read_bytes()
            sizes[path.name] = (len(data), len(gzip.compress(data, compresslevel=9)))
    lazy = [name for name in sizes if name not in first]
    return {"first": first, "lazy": lazy, "sizes": sizes}


def print_asset_sizes(assets: dict[str, Any], fetched: dict[str, Any]) -> None:
    sizes: dict[str, tuple[int, int]] = assets["sizes"]

    def total(names: list[str], suffix: str) -> tuple[int, int]:
        chosen = [sizes[n] for n in names if n.endswith(suffix) and n in sizes]
        return sum(r for r, _ in chosen), sum(g for _, g in chosen)

    print("1. What the first page ships (flowsync/web/dist; gzip level 9 as the server sends)")
    for label, names in (("first page", assets["first"]), ("lazy chunks", assets["lazy"])):
        js, css = total(names, ".js"), total(names, ".css")
        print(
            f"   {label:11}: JS {kib(js[0])} raw, {kib(js[1])} gzip; "
            f"CSS {kib(css[0])} raw, {kib(css[1])} gzip"
        )
        for name in names:
            raw, gz = sizes.get(name, (0, 0))
            print(f"       {name:34} {kib(raw):>11} raw {kib(gz):>10} gzip")
    editors = [n for n in sizes if "editor" in n.lower()]
    in_first = [n for n in assets["first"] if "editor" in n.lower()]
    if not editors:
        print("   editor chunk: none in this build (no asset name contains 'Editor')")
    else:
        where = f"IN THE FIRST PAGE: {', '.join(in_first)}" if in_first else "lazy only"
        print(f"   editor chunk(s) {', '.join(editors)}: {where}")
    fetched_editors = [n for n in fetched["names"] if "editor" in n.lower()]
    if fetched_editors:
        print(f"   OPENING /ui/ FETCHED EDITOR CODE: {', '.join(fetched_editors)}")
    print(
        f"   opening /ui/ (signed in, fresh context) fetched {fetched['count']} JS files, "
        f"{kib(fetched['wire'])} on the wire ({kib(fetched['body'])} decoded; "
        f"content-encoding {', '.join(sorted(fetched['encodings'])) or 'none'}): "
        + ", ".join(fetched["names"])
    )


async def fetched_on_open(browser: Any, base: str, key: str) -> dict[str, Any]:
    """JS that Chromium fetched when opening /ui/ signed in, until the network is idle."""
    context = await browser.new_context()
    page = await context.new_page()
    seen: list[Any] = []
    page.on("response", lambda r: seen.append(r))
    try:
        await page.goto(f"{base}/ui/#key={key}", wait_until="networkidle", timeout=PATIENCE * 1000)
        result: dict[str, Any] = {"count": 0, "wire": 0, "body": 0, "encodings": set(), "names": []}
        for response in seen:
            url = response.url.split("?")[0]
            if response.request.resource_type != "script" and not url.endswith(".js"):
                continue
            await response.finished()
            sizes = await response.request.sizes()
            body = await response.body()
            result["count"] += 1
            result["wire"] += sizes["responseBodySize"]
            result["body"] += len(body)
            result["encodings"].add(response.headers.get("content-encoding", "identity"))
            result["names"].append(Path(url).name)
        return result
    finally:
        await context.close()


# --- 2. time to the first rendered run graph --------------------------------------------


async def first_render(
    browser: Any, base: str, key: str, execution: uuid.UUID, nodes: int, loads: int
) -> list[float]:
    """Milliseconds from navigation start to all `nodes` graph nodes visible, per load,
    each in a fresh context (no HTTP cache, no layout cache, a new sign-in)."""
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    times: list[float] = []
    for _ in range(loads):
        context = await browser.new_context(viewport={"width": 1280, "height": 800})
        try:
            page = await context.new_page()
            await page.goto(f"{base}/ui/runs/{execution}#key={key}", wait_until="commit")
            try:
                handle = await page.wait_for_function(
                    ALL_NODES_VISIBLE, arg=nodes, polling="raf", timeout=LOAD_PATIENCE * 1000
                )
            except PlaywrightTimeout:
                state = await page.evaluate(NODE_STATE)
                failures.append(f"{nodes}-node load timed out after {LOAD_PATIENCE:.0f} s: {state}")
                continue
            times.append(float(await handle.json_value()))
        finally:
            await context.close()
    return times


# --- 3. step finished → node green ------------------------------------------------------


def delay_chain(steps: int, seconds: float) -> dict[str, Any]:
    """start → d1 … dN (each a `delay` of `seconds`) → end."""
    definition = chain(steps)
    for node in definition["nodes"]:
        if node["type"] == "transform":
            node["id"] = "d" + node["id"][1:]
            node["type"] = "delay"
            node["data"] = {"seconds": seconds}
        elif node["type"] == "end":
            node["data"] = {"output": {"done": True}}
    for edge in definition["edges"]:
        for end in ("source", "target"):
            if re.fullmatch(r"t\d+", edge[end]):
                edge[end] = "d" + edge[end][1:]
    return definition


async def colour_latency(
    browser: Any,
    base: str,
    key: str,
    services: Services,
    me: Principal,
    workflow: uuid.UUID,
    steps: int,
    delay: float,
    viewport: tuple[int, int],
    pids: dict[str, int],
) -> dict[str, Any]:
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    pool = services.pool
    # Started with its jobs held (in the start's own transaction, so that no worker sees
    # them due) until the page is open and watching.
    async with pool.acquire() as conn, conn.transaction():
        execution, _ = await services.executions.start_in(conn, me, workflow, {"n": 0})
        await conn.execute(
            "UPDATE jobs SET run_at = now() + interval '1 hour' WHERE execution_id = $1",
            execution,
        )
    context = await browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    try:
        await context.add_init_script(OBSERVER)
        page = await context.new_page()
        await page.goto(f"{base}/ui/runs/{execution}#key={key}", wait_until="commit")
        await page.wait_for_selector(
            '[data-testid="execution-status"][data-status="RUNNING"]', timeout=PATIENCE * 1000
        )
        await page.wait_for_selector(
            '[data-testid="rf__node-d1"]', state="attached", timeout=PATIENCE * 1000
        )
        await asyncio.sleep(1.0)  # the subscription's snapshot in, the page at rest
        rendered = await page.eval_on_selector_all(
            '[data-testid^="rf__node-"]', "els => els.length"
        )
        held = await pool.fetchval(
            "SELECT count(*) FROM step_executions WHERE execution_id = $1 "
            "AND node_id LIKE 'd%' AND status = 'COMPLETED'",
            execution,
        )
        cpu0 = {label: cpu_seconds(pid) for label, pid in pids.items()}
        await pool.execute("UPDATE jobs SET run_at = now() WHERE execution_id = $1", execution)
        await pool.execute("SELECT pg_notify('flowsync_jobs', '')")
        deadline = time.monotonic() + steps * delay * 3 + PATIENCE
        status = "RUNNING"
        while time.monotonic() < deadline:
            status = await pool.fetchval("SELECT status FROM executions WHERE id = $1", execution)
            if status not in ("PENDING", "RUNNING"):
                break
            await asyncio.sleep(0.2)
        db_end = time.monotonic()
        # The page may lag: until it shows the run's end too (bounded), then a little.
        with contextlib.suppress(PlaywrightTimeout):
            await page.wait_for_selector(
                f'[data-testid="execution-status"][data-status="{status}"]',
                state="attached",
                timeout=PATIENCE * 1000,
            )
        page_end = time.monotonic()
        cpu = {label: cpu_seconds(pid) - cpu0[label] for label, pid in pids.items()}
        await asyncio.sleep(0.5)
        done: dict[str, float] = await page.evaluate("window.__done")
        appeared: dict[str, float] = await page.evaluate("window.__appearedDone")
        skew = await page.evaluate("Date.now() - (performance.timeOrigin + performance.now())")
        ws: dict[str, Any] = await page.evaluate("window.__ws")
        long_tasks: dict[str, float] = await page.evaluate("window.__long")
    finally:
        await context.close()
    rows = await pool.fetch(
        "SELECT node_id, extract(epoch FROM finished_at) * 1000 AS ms FROM step_executions "
        "WHERE execution_id = $1 AND node_id LIKE 'd%' AND finished_at IS NOT NULL",
        execution,
    )
    finished = {r["node_id"]: float(r["ms"]) for r in rows}
    latencies = [done[n] - finished[n] for n in finished if n in done]
    arrived: dict[str, float] = ws["completed"]
    to_socket = [arrived[n] - finished[n] for n in finished if n in arrived]
    to_dom = [done[n] - arrived[n] for n in finished if n in arrived and n in done]
    span = await pool.fetchval(
        "SELECT extract(epoch FROM max(finished_at) - min(finished_at)) FROM step_executions "
        "WHERE execution_id = $1 AND node_id LIKE 'd%'",
        execution,
    )
    return {
        "status": status,
        "latencies": latencies,
        "finished": len(finished),
        "appeared": len([n for n in appeared if n in finished]),
        "rendered": rendered,
        "held": held,
        "skew": float(skew),
        "span": float(span or 0),
        "to_socket": to_socket,
        "to_dom": to_dom,
        "ws": ws,
        "long": long_tasks,
        "page_lag": page_end - db_end,
        "cpu": cpu,
    }


def print_renders(args: argparse.Namespace, renders: dict[int, list[float]]) -> None:
    print(
        "2. Navigation start to every graph node visible, finished runs, a fresh context "
        f"per load (1280x800), {args.loads} loads each:"
    )
    for n, times in renders.items():
        if not times:
            print(f"   {n:3}-node run: no load got every node visible")
            continue
        print(
            f"   {n:3}-node run: {len(times)} loads, median {statistics.median(times):.0f} ms, "
            f"p95 {pct(times, 95):.0f} ms (min {min(times):.0f}, max {max(times):.0f})"
        )
    for failure in failures:
        print(f"   NOT COUNTED: {failure}")


def print_colour(args: argparse.Namespace, colour: dict[str, Any]) -> None:
    lat = colour["latencies"]
    print(
        f"3. Step finished → its node COMPLETED in the page, a chain of {args.steps} "
        f"delay nodes of {args.delay} s (run {colour['status']}, its steps finished over "
        f"{colour['span']:.1f} s; workers poll every {args.poll} s; "
        f"viewport {args.width}x{args.height}):"
    )
    if lat:
        print(
            f"   p50 {pct(lat, 50):.0f} ms, p95 {pct(lat, 95):.0f} ms, max {max(lat):.0f} ms, "
            f"min {min(lat):.0f} ms; observed {len(lat)} of {args.steps} nodes "
            f"({colour['finished']} finished in the database)"
        )
    else:
        print(f"   no node was observed turning COMPLETED ({colour['finished']} finished)")
    print(
        f"   {colour['rendered']} node elements were in the page before the run was "
        f"released; {colour['appeared']} appeared already COMPLETED (not counted); "
        f"{colour['held']} had completed before release"
    )
    ws = colour["ws"]
    for label, values in (
        ("finished_at → subscription message in the page", colour["to_socket"]),
        ("that message → the node's data-status", colour["to_dom"]),
    ):
        if values:
            print(
                f"   {label}: p50 {pct(values, 50):.0f} ms, p95 {pct(values, 95):.0f} ms, "
                f"max {max(values):.0f} ms ({len(values)} steps)"
            )
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(ws["kinds"].items()))
    print(
        f"   subscription: {ws['frames']} messages, {ws['chars'] / 1e6:.1f} MB of JSON "
        f"(largest {ws['maxChars'] / 1e3:.0f} kB; {kinds}); main thread long tasks: "
        f"{colour['long']['count']}, {colour['long']['total'] / 1000:.1f} s in all, "
        f"longest {colour['long']['max']:.0f} ms"
    )
    cpu = ", ".join(f"{label} {seconds:.1f} s" for label, seconds in colour["cpu"].items())
    print(
        f"   the page showed the run's end {colour['page_lag']:.1f} s after the database; "
        f"CPU from the release to then: {cpu}"
    )
    print(
        "   finished_at is the worker's transaction time (PostgreSQL now(): the start of "
        "the transaction that completed the step, before its commit), so the figure "
        "includes that transaction; browser time is performance.timeOrigin + now(), "
        f"{colour['skew']:+.1f} ms from the page's Date.now()"
    )


# --- processes --------------------------------------------------------------------------


async def wait_up(base: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + PATIENCE
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit("the API process exited; see its log")
            try:
                await client.get(f"{base}/api/health", timeout=2)
                return
            except httpx.TransportError:
                await asyncio.sleep(0.1)
    raise SystemExit("the API process did not start")


async def wait_workers(pool: asyncpg.Pool, count: int) -> None:
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        listening = await pool.fetchval(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE application_name = 'flowsync-worker-listener'"
        )
        if listening >= count:
            return
        await asyncio.sleep(0.1)
    raise SystemExit("the workers did not start")


async def wait_finished(pool: asyncpg.Pool, execution: uuid.UUID) -> str:
    deadline = time.monotonic() + PATIENCE
    status = "RUNNING"
    while time.monotonic() < deadline:
        status = await pool.fetchval("SELECT status FROM executions WHERE id = $1", execution)
        if status not in ("PENDING", "RUNNING"):
            break
        await asyncio.sleep(0.1)
    return str(status)


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


async def run(args: argparse.Namespace) -> None:
    from playwright.async_api import async_playwright

    assets = asset_sizes()
    parts = {int(x) for x in str(args.parts).split(",") if x.strip()}
    name = f"fs_bench_dash_{os.getpid()}"
    admin = await asyncpg.connect(to_asyncpg_dsn(args.url))
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = with_database(args.url, name)
    procs: list[subprocess.Popen[bytes]] = []
    services: Services | None = None
    logs = Path(tempfile.mkdtemp(prefix="flowsync-bench-dash-"))
    try:
        await upgrade_async(url)
        settings = Settings(database_url=url, _env_file=None)
        services = await build_services(settings, url)
        me = Principal(await services.api_keys.ensure_owner("bench:dashboard"), "bench")
        key = (await services.api_keys.create(me, "dashboard bench")).secret

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWSYNC_")}
        env.update(
            FLOWSYNC_DATABASE_URL=url,
            FLOWSYNC_PORT=str(port),
            FLOWSYNC_DEV_WORKER="false",
            FLOWSYNC_DATA_DIR=str(logs),
            FLOWSYNC_LOG_LEVEL="warning",
            # Each load signs in anew and sends a few queries: not what the limits guard.
            FLOWSYNC_RATE_LIMIT_PER_IP="1000000/minute",
            FLOWSYNC_RATE_LIMIT_PER_PRINCIPAL="1000000/minute",
            PYTHONPATH=str(ROOT),
        )

        def spawn(label: str, *command: str) -> subprocess.Popen[bytes]:
            proc = subprocess.Popen(
                [sys.executable, "-m", "flowsync", *command],
                env=env,
                cwd=logs,  # no .env of the checkout is read
                stdout=(logs / f"{label}.log").open("wb"),
                stderr=subprocess.STDOUT,
            )
            procs.append(proc)
            return proc

        api = spawn("api", "dev")
        await wait_up(base, api)
        # A due delay is found by the workers' poll (a durable timer wakes nobody): the
        # default 2 s poll would make each 0.1 s delay last up to 2 s.
        env["FLOWSYNC_POLL_SECONDS"] = str(args.poll)
        for i in range(2):
            spawn(f"worker-{i}", "worker", "--concurrency", "16")
        await wait_workers(services.pool, 2)

        # Finished runs of 20 and 200 nodes for the first-render figures.
        finished: dict[int, uuid.UUID] = {}
        for nodes in (20, 200):
            wf = await services.workflows.create(me, f"chain-{nodes}", None, chain(nodes - 2))
            execution = (await services.executions.start(me, wf.id, {"n": 0})).execution.id
            status = await wait_finished(services.pool, execution)
            if status != "COMPLETED":
                raise SystemExit(f"the {nodes}-node run ended {status}")
            finished[nodes] = execution
        delays = await services.workflows.create(
            me, f"delays-{args.steps}", None, delay_chain(args.steps, args.delay)
        )
        # The 200-node graph of part 5: start, 198 delays, end.
        graph = await services.workflows.create(
            me, f"graph-{args.graph_nodes}", None, delay_chain(args.graph_nodes - 2, args.delay)
        )
        listed = await services.workflows.create(me, "list-3", None, chain(1))
        profile = Path(args.profile).resolve() if args.profile else None
        if profile is not None:
            profile.mkdir(parents=True, exist_ok=True)

        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
            try:
                version = browser.version
                fetched = await fetched_on_open(browser, base, key) if 1 in parts else None
                renders: dict[int, list[float]] = {}
                if 2 in parts:
                    # One unmeasured load first: the API's and the browser's first-use costs.
                    await first_render(browser, base, key, finished[20], 20, 1)
                    for n in (20, 200):
                        renders[n] = await first_render(
                            browser, base, key, finished[n], n, args.loads
                        )
                colour = None
                if 3 in parts:
                    colour = await colour_latency(
                        browser,
                        base,
                        key,
                        services,
                        me,
                        delays.id,
                        args.steps,
                        args.delay,
                        (args.width, args.height),
                        {"API": api.pid, **{f"worker {i}": w.pid for i, w in enumerate(procs[1:])}},
                    )
                # Last: the 10,000 runs would change what the pages above read.
                runs_total, runs = 0, None
                if 4 in parts:
                    runs_total = await motion.fill_runs(services, me, listed.id, args.runs, 20)
                    runs = await motion.runs_list(
                        browser,
                        base,
                        key,
                        services,
                        me,
                        listed.id,
                        runs_total,
                        args.list_loads,
                        args.scroll_px,
                        args.live_every,
                        profile / "runs-scroll.cpuprofile" if profile else None,
                    )
                panned = None
                if 5 in parts:
                    panned = await motion.graph_motion(
                        browser,
                        base,
                        key,
                        services,
                        me,
                        graph.id,
                        args.graph_nodes,
                        args.pan_seconds,
                        profile / "graph-pan.cpuprofile" if profile else None,
                        ALL_NODES_VISIBLE,
                    )
            finally:
                with contextlib.suppress(Exception):
                    await browser.close()

        print(f"\nFlowSync dashboard benchmark ({os.cpu_count()} cores), server {args.url}")
        print(f"   Chromium {version} (headless, {args.chromium}); 1 API process, 2 workers")
        if fetched is not None:
            print_asset_sizes(assets, fetched)
        if renders:
            print_renders(args, renders)
        if colour is not None:
            print_colour(args, colour)
        if runs is not None:
            motion.print_runs_list(args, runs_total, runs)
        if panned is not None:
            motion.print_graph_motion(args, args.graph_nodes, panned)
        if profile is not None:
            print(f"   CPU profiles in {profile}")
    finally:
        stop(procs)
        if services is not None:
            await services.close()
        with contextlib.suppress(Exception):
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
        if str(logs).startswith(tempfile.gettempdir()) and "flowsync-bench-dash-" in logs.name:
            shutil.rmtree(logs, ignore_errors=True)


async def main_async(args: argparse.Namespace) -> None:
    # SIGTERM unwinds like Ctrl-C: every process stopped, the database dropped.
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    await run(args)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    url_argument(parser)
    parser.add_argument(
        "--loads", type=int, default=10, help="page loads per run size (default: %(default)s)"
    )
    parser.add_argument(
        "--steps", type=int, default=200, help="delay steps in the live run (default: %(default)s)"
    )
    parser.add_argument(
        "--delay", type=float, default=0.1, help="seconds of each delay step (default: %(default)s)"
    )
    parser.add_argument(
        "--poll",
        type=float,
        default=0.1,
        help="the workers' poll_seconds, which paces due delays (default: %(default)s)",
    )
    parser.add_argument("--width", type=int, default=1280, help="live run's viewport width")
    parser.add_argument(
        "--height",
        type=int,
        default=1500,
        help="the live run's viewport height: above 200 nodes the graph renders only the "
        "nodes in view, and at its least zoom (0.05) a 202-node chain needs about 1450 px "
        "(default: %(default)s)",
    )
    parser.add_argument("--runs", type=int, default=10_000, help="runs in the database for part 4")
    parser.add_argument(
        "--list-loads", type=int, default=5, help="runs page loads for the first rows"
    )
    parser.add_argument(
        "--scroll-px",
        type=int,
        default=440,
        help="pixels the runs list scrolls each frame, 10 rows (default: %(default)s)",
    )
    parser.add_argument(
        "--live-every",
        type=float,
        default=0.25,
        help="seconds between the new runs started during the scroll (default: %(default)s)",
    )
    parser.add_argument("--graph-nodes", type=int, default=200, help="nodes of part 5's run graph")
    parser.add_argument(
        "--pan-seconds", type=float, default=8.0, help="seconds of panning and zooming"
    )
    parser.add_argument("--profile", help="a directory for CPU profiles of parts 4 and 5")
    parser.add_argument(
        "--parts", default="1,2,3,4,5", help="which measurements to run (default: %(default)s)"
    )
    parser.add_argument("--chromium", default="/usr/bin/chromium", help="the browser to drive")
    args = parser.parse_args()
    os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")
    try:
        asyncio.run(main_async(args))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted; processes stopped and the database dropped", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
