"""The dashboard in motion, for bench/dashboard_bench.py (its parts 4 and 5): the runs list
scrolled through 10,000 runs while new runs arrive, and a 200-node run graph panned and
zoomed while its steps finish. Frame times come from a requestAnimationFrame loop in the
page, long tasks from a PerformanceObserver, the heap from the DevTools protocol after a
forced garbage collection. Figures only; nothing is asserted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg

from flowsync.services.container import Services
from flowsync.services.principal import Principal

# Records every frame's interval (requestAnimationFrame to requestAnimationFrame) and the
# main thread's long tasks between window.__frames.start() and window.__frames.stop().
FRAMES = """
(() => {
  const f = { times: [], long: [], running: false, last: null, t0: 0, observer: null };
  f.start = () => {
    f.times = []; f.long = []; f.running = true; f.last = null; f.t0 = performance.now();
    try {
      f.observer = new PerformanceObserver((list) => {
        for (const t of list.getEntries()) f.long.push(t.duration);
      });
      f.observer.observe({ type: "longtask" });
    } catch (_) {}
    const tick = (now) => {
      if (!f.running) return;
      if (f.last !== null) f.times.push(now - f.last);
      f.last = now;
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  };
  f.stop = () => {
    f.running = false;
    if (f.observer) f.observer.disconnect();
    return { times: f.times, long: f.long, elapsed: performance.now() - f.t0 };
  };
  window.__frames = f;
})();
"""

# Counts the subscription messages the page receives, and its error messages by code.
SOCKET_COUNT = """
(() => {
  window.__socket = { messages: 0, errors: {} };
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", (event) => {
        window.__socket.messages += 1;
        try {
          const m = JSON.parse(event.data);
          if (m.type === "error") {
            for (const e of m.payload || []) {
              const code = (e.extensions && e.extensions.code) || e.message;
              window.__socket.errors[code] = (window.__socket.errors[code] || 0) + 1;
            }
          }
        } catch (_) {}
      });
    }
  };
})();
"""

# Scrolls the runs list back to its top and says which of `ids` it lists there.
AT_TOP = """
async (ids) => {
  const el = document.querySelector('[data-testid="runs-list"]');
  el.scrollTop = 0;
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  const table = el.closest('[role="table"]');
  const shown = new Set([...el.querySelectorAll("[data-run-id]")].map((e) => e.dataset.runId));
  return {
    listed: Number(table.getAttribute("aria-rowcount")) - 1,
    shown: ids.filter((id) => shown.has(id)).length,
  };
}
"""

# Time since navigation start once the runs list shows a row.
FIRST_ROW = """
() => document.querySelector('[data-testid="runs-list"] [data-run-id]') ? performance.now() : false
"""

# Scrolls the runs list by `px` every frame until it is at its end with at least `total`
# rows listed (the list fetches its pages as it goes), or `limitMs` passed.
SCROLL_THROUGH = """
async ({ px, total, limitMs }) => {
  const el = document.querySelector('[data-testid="runs-list"]');
  const table = el.closest('[role="table"]');
  const t0 = performance.now();
  let frames = 0, stalled = 0, maxRows = 0, distance = 0;
  return await new Promise((resolve) => {
    const step = () => {
      frames += 1;
      const before = el.scrollTop;
      el.scrollBy(0, px);
      const moved = el.scrollTop - before;
      distance += Math.max(0, moved);
      if (moved <= 0) stalled += 1;
      if (frames % 4 === 0) {
        maxRows = Math.max(maxRows, el.querySelectorAll("[data-run-id]").length);
      }
      const listed = Number(table.getAttribute("aria-rowcount")) - 1;
      const atEnd = el.scrollTop + el.clientHeight >= el.scrollHeight - 2;
      const elapsed = performance.now() - t0;
      if ((atEnd && listed >= total) || elapsed > limitMs) {
        const reachedEnd = atEnd && listed >= total;
        resolve({ frames, stalled, maxRows, listed, distance, elapsed, reachedEnd });
      } else {
        requestAnimationFrame(step);
      }
    };
    requestAnimationFrame(step);
  });
}
"""


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


async def main_thread(cdp: Any) -> dict[str, float]:
    """The renderer's main-thread time so far, in seconds, by kind (DevTools' metrics)."""
    metrics = (await cdp.send("Performance.getMetrics"))["metrics"]
    return {m["name"]: float(m["value"]) for m in metrics if m["name"].endswith("Duration")}


def busy_line(before: dict[str, float], after: dict[str, float], seconds: float) -> str:
    d = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
    return (
        f"main thread busy {d.get('TaskDuration', 0):.1f} s of {seconds:.1f} s (script "
        f"{d.get('ScriptDuration', 0):.1f} s, layout {d.get('LayoutDuration', 0):.1f} s, "
        f"style {d.get('RecalcStyleDuration', 0):.1f} s); load average "
    )


def load() -> str:
    return f"{os.getloadavg()[0]:.1f}"


def frame_line(frames: dict[str, Any]) -> str:
    times: list[float] = frames["times"]
    long: list[float] = frames["long"]
    if not times:
        return "no frames recorded"
    fps = len(times) / (sum(times) / 1000)
    over = sum(1 for t in times if t > 33.4)
    return (
        f"{len(times)} frames, {fps:.0f} frames/s; frame p50 {pct(times, 50):.1f} ms, "
        f"p95 {pct(times, 95):.1f} ms, max {max(times):.0f} ms; {over} frames over 33 ms; "
        f"long tasks (>50 ms): {len(long)}"
        + (f", longest {max(long):.0f} ms, {sum(long):.0f} ms in all" if long else "")
    )


async def heap_mib(cdp: Any) -> float:
    """The page's used JS heap after a forced garbage collection, in MiB."""
    await cdp.send("HeapProfiler.collectGarbage")
    usage = await cdp.send("Runtime.getHeapUsage")
    return float(usage["usedSize"]) / 2**20


async def start_profile(cdp: Any) -> None:
    await cdp.send("Profiler.enable")
    await cdp.send("Profiler.setSamplingInterval", {"interval": 200})
    await cdp.send("Profiler.start")


async def stop_profile(cdp: Any, path: Path) -> list[str]:
    """Writes the CPU profile (open it in Chromium's DevTools) and returns the functions
    with the most self time, for the report."""
    profile = (await cdp.send("Profiler.stop"))["profile"]
    path.write_text(json.dumps(profile))
    nodes = {n["id"]: n for n in profile["nodes"]}
    deltas = profile.get("timeDeltas", [])
    self_ms: Counter[str] = Counter()
    for sample, delta in zip(profile.get("samples", []), deltas, strict=False):
        frame = nodes[sample]["callFrame"]
        where = Path(frame.get("url", "")).name or "(native)"
        self_ms[f"{frame['functionName'] or '(anonymous)'} {where}:{frame['lineNumber']}"] += (
            delta / 1000
        )
    return [f"{ms:7.0f} ms  {name}" for name, ms in self_ms.most_common(12)]


# --- 4. the runs list with 10,000 runs ---------------------------------------------------


async def fill_runs(
    services: Services, me: Principal, workflow: uuid.UUID, total: int, templates: int
) -> int:
    """Makes the owner's runs number `total`: `templates` real runs of `workflow` run by
    the workers, then copies of them (their execution, step and event rows, each copy
    created a second before the next) inserted in one transaction. Returns the count."""
    pool: asyncpg.Pool = services.pool
    started = [
        (await services.executions.start(me, workflow, {"n": i})).execution.id
        for i in range(templates)
    ]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        waiting = await pool.fetchval(
            "SELECT count(*) FROM executions "
            "WHERE id = ANY($1) AND status IN ('PENDING', 'RUNNING')",
            started,
        )
        if not waiting:
            break
        await asyncio.sleep(0.2)
    have = int(
        await pool.fetchval("SELECT count(*) FROM executions WHERE owner_id = $1", me.owner_id)
    )
    copies = max(0, total - have)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "CREATE TEMP TABLE copies ON COMMIT DROP AS "
            "SELECT gen_random_uuid() AS id, t.id AS template, "
            "  now() - interval '5 minutes' - g * interval '1 second' AS created "
            "FROM generate_series(1, $1::int) g "
            "JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS k FROM executions "
            "      WHERE id = ANY($2)) t ON t.k = g % $3",
            copies,
            started,
            len(started),
        )
        await conn.execute(
            "INSERT INTO executions (id, owner_id, workflow_id, workflow_version_id, version, "
            "  status, input, output, error, trigger_type, trigger_data, last_sequence, "
            "  created_at, started_at, finished_at) "
            "SELECT c.id, e.owner_id, e.workflow_id, e.workflow_version_id, e.version, e.status, "
            "  e.input, e.output, e.error, e.trigger_type, e.trigger_data, e.last_sequence, "
            "  c.created, c.created + (e.started_at - e.created_at), "
            "  c.created + (e.finished_at - e.created_at) "
            "FROM copies c JOIN executions e ON e.id = c.template"
        )
        await conn.execute(
            "INSERT INTO step_executions (id, execution_id, node_id, node_type, status, attempt, "
            "  input, output, error, queued_at, started_at, finished_at) "
            "SELECT gen_random_uuid(), c.id, s.node_id, s.node_type, s.status, s.attempt, "
            "  s.input, s.output, s.error, c.created + (s.queued_at - e.created_at), "
            "  c.created + (s.started_at - e.created_at), "
            "  c.created + (s.finished_at - e.created_at) "
            "FROM copies c JOIN executions e ON e.id = c.template "
            "JOIN step_executions s ON s.execution_id = c.template"
        )
        await conn.execute(
            "INSERT INTO execution_events (execution_id, sequence, owner_id, workflow_id, kind, "
            "  status, step_id, node_id, attempt, data, at) "
            "SELECT c.id, v.sequence, v.owner_id, v.workflow_id, v.kind, v.status, NULL, "
            "  v.node_id, v.attempt, v.data, c.created + (v.at - e.created_at) "
            "FROM copies c JOIN executions e ON e.id = c.template "
            "JOIN execution_events v ON v.execution_id = c.template "
            "ORDER BY c.created, v.sequence"
        )
    await pool.execute("ANALYZE executions")
    # The copies' events are new rows of the log with old times: an API process with a
    # subscriber would scan them as news (its poll reads event ids above a horizon that
    # trails by 10 s), checking each of those 10,000 runs in turn while the page waits
    # for its feed. Nobody subscribes now: wait until the horizon has passed them.
    await asyncio.sleep(15.0)
    return int(
        await pool.fetchval("SELECT count(*) FROM executions WHERE owner_id = $1", me.owner_id)
    )


async def runs_list(
    browser: Any,
    base: str,
    key: str,
    services: Services,
    me: Principal,
    workflow: uuid.UUID,
    total: int,
    loads: int,
    px: int,
    live_every: float,
    profile: Path | None,
) -> dict[str, Any]:
    """First rows (fresh context per load), then one scroll through every run while a new
    run starts every `live_every` seconds."""
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    first_rows: list[float] = []
    for i in range(loads + 1):  # the first load is not counted (first-use costs)
        context = await browser.new_context(viewport={"width": 1280, "height": 800})
        try:
            page = await context.new_page()
            await page.goto(f"{base}/ui/runs#key={key}", wait_until="commit")
            with contextlib.suppress(PlaywrightTimeout):
                handle = await page.wait_for_function(FIRST_ROW, polling="raf", timeout=30_000)
                if i:
                    first_rows.append(float(await handle.json_value()))
        finally:
            await context.close()

    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    started: list[uuid.UUID] = []
    try:
        await context.add_init_script(FRAMES)
        await context.add_init_script(SOCKET_COUNT)
        page = await context.new_page()
        cdp = await context.new_cdp_session(page)
        await page.goto(f"{base}/ui/runs#key={key}", wait_until="commit")
        await page.wait_for_function(FIRST_ROW, polling="raf", timeout=30_000)
        await asyncio.sleep(1.0)  # the feed's subscription up, the page at rest
        heap_before = await heap_mib(cdp)
        rows_before = await page.eval_on_selector_all("[data-run-id]", "els => els.length")
        await cdp.send("Performance.enable")
        busy0, load0 = await main_thread(cdp), load()

        stop = asyncio.Event()

        async def arrive() -> None:
            while not stop.is_set():
                run = await services.executions.start(me, workflow, {"n": len(started)})
                started.append(run.execution.id)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), live_every)

        if profile is not None:
            await start_profile(cdp)
        await page.evaluate("window.__frames.start()")
        arriving = asyncio.create_task(arrive())
        try:
            scroll = await page.evaluate(
                SCROLL_THROUGH, {"px": px, "total": total, "limitMs": 180_000}
            )
        finally:
            stop.set()
            await arriving
        frames = await page.evaluate("window.__frames.stop()")
        busy = busy_line(busy0, await main_thread(cdp), frames["elapsed"] / 1000)
        busy += f"{load0} before, {load()} after (this machine's cores are shared)"
        hot = await stop_profile(cdp, profile) if profile is not None else []
        rows_after = await page.eval_on_selector_all("[data-run-id]", "els => els.length")
        heap_after = await heap_mib(cdp)
        # New runs reach the top of the list live: the newest ten (all on the first
        # screen), given up to 15 s to arrive.
        newest = [str(s) for s in started[-10:]]
        waited = time.monotonic()
        top = await page.evaluate(AT_TOP, newest)
        while top["shown"] < len(newest) and time.monotonic() - waited < 15:
            await asyncio.sleep(0.25)
            top = await page.evaluate(AT_TOP, newest)
        top["waited"] = time.monotonic() - waited
        socket = await page.evaluate("window.__socket")
    finally:
        await context.close()
    return {
        "first_rows": first_rows,
        "scroll": scroll,
        "frames": frames,
        "rows_before": rows_before,
        "rows_after": rows_after,
        "heap_before": heap_before,
        "heap_after": heap_after,
        "started": len(started),
        "top": top,
        "busy": busy,
        "socket": socket,
        "hot": hot,
    }


def print_runs_list(args: Any, total: int, result: dict[str, Any]) -> None:
    s = result["scroll"]
    rows = result["first_rows"]
    print(
        f"4. Runs page with {total:,} runs in the database (1280x800, {args.list_loads} loads "
        "for the first rows, a fresh context each):"
    )
    if rows:
        print(
            f"   navigation start to the first rows: median {statistics.median(rows):.0f} ms, "
            f"max {max(rows):.0f} ms"
        )
    print(
        f"   scrolled {s['distance'] / 1e3:,.0f}k px, {args.scroll_px} px a frame, "
        f"in {s['elapsed'] / 1000:.1f} s to {'the end' if s['reachedEnd'] else 'NOT THE END'} "
        f"({s['listed']:,} rows listed; {s['stalled']} frames waited at the loaded end for "
        f"the next page) while {result['started']} new runs started, one every "
        f"{args.live_every} s"
    )
    print(f"   {frame_line(result['frames'])}")
    print(f"   {result['busy']}")
    print(
        f"   DOM rows: {result['rows_before']} at rest, at most {s['maxRows']} while "
        f"scrolling, {result['rows_after']} at the end; JS heap after GC "
        f"{result['heap_before']:.1f} MiB at the first rows, {result['heap_after']:.1f} MiB "
        "after the scroll"
    )
    top, socket = result["top"], result["socket"]
    errors = ", ".join(f"{k} {v}" for k, v in socket["errors"].items()) or "none"
    print(
        f"   after the scroll: {top['listed']:,} rows listed, {top['shown']} of the "
        f"{min(10, result['started'])} newest runs on the first screen "
        f"{top['waited']:.1f} s after the scroll ended; the feed sent "
        f"{socket['messages']} messages (errors: {errors})"
    )
    for line in result["hot"]:
        print(f"   profile: {line}")


# --- 5. a 200-node run graph panned and zoomed while its steps finish --------------------


async def graph_motion(
    browser: Any,
    base: str,
    key: str,
    services: Services,
    me: Principal,
    workflow: uuid.UUID,
    nodes: int,
    seconds: float,
    profile: Path | None,
    all_visible: str,
) -> dict[str, Any]:
    """Opens a held run of `workflow`, releases it, then drags the pane and zooms with
    the wheel for `seconds` while its steps finish."""
    pool: asyncpg.Pool = services.pool
    async with pool.acquire() as conn, conn.transaction():
        execution, _ = await services.executions.start_in(conn, me, workflow, {"n": 0})
        await conn.execute(
            "UPDATE jobs SET run_at = now() + interval '1 hour' WHERE execution_id = $1",
            execution,
        )
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        await context.add_init_script(FRAMES)
        page = await context.new_page()
        cdp = await context.new_cdp_session(page)
        await page.goto(f"{base}/ui/runs/{execution}#key={key}", wait_until="commit")
        await page.wait_for_function(all_visible, arg=nodes, polling="raf", timeout=60_000)
        await asyncio.sleep(1.0)
        pane = await page.locator(".react-flow__pane").bounding_box()
        assert pane is not None
        await pool.execute("UPDATE jobs SET run_at = now() WHERE execution_id = $1", execution)
        await pool.execute("SELECT pg_notify('flowsync_jobs', '')")
        await asyncio.sleep(1.0)  # steps finishing
        done_before = await _completed(pool, execution)
        await cdp.send("Performance.enable")
        busy0, load0 = await main_thread(cdp), load()
        if profile is not None:
            await start_profile(cdp)
        await page.evaluate("window.__frames.start()")
        # Drag from the left part of the pane (the chain stands in the middle), then zoom
        # in and out at the middle with the wheel; again until the time is up.
        x0, y0 = pane["x"] + pane["width"] * 0.2, pane["y"] + pane["height"] * 0.5
        cx, cy = pane["x"] + pane["width"] * 0.5, pane["y"] + pane["height"] * 0.5
        drags = wheels = 0
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            await page.mouse.move(x0, y0)
            await page.mouse.down()
            for dx, dy in ((240, 160), (-240, -160)):
                await page.mouse.move(x0 + dx, y0 + dy, steps=30)
                x0, y0 = x0 + dx, y0 + dy
            await page.mouse.up()
            drags += 2
            await page.mouse.move(cx, cy)
            for delta in (-120,) * 5 + (120,) * 5:
                await page.mouse.wheel(0, delta)
                wheels += 1
                await asyncio.sleep(0.03)
        frames = await page.evaluate("window.__frames.stop()")
        busy = busy_line(busy0, await main_thread(cdp), frames["elapsed"] / 1000)
        busy += f"{load0} before, {load()} after (this machine's cores are shared)"
        hot = await stop_profile(cdp, profile) if profile is not None else []
        done_after = await _completed(pool, execution)
        shown = await page.eval_on_selector_all(
            '[data-testid^="rf__node-"][data-status="COMPLETED"]', "els => els.length"
        )
        heap = await heap_mib(cdp)
    finally:
        await context.close()
    with contextlib.suppress(Exception):
        await services.executions.cancel(me, execution)
    return {
        "frames": frames,
        "drags": drags,
        "wheels": wheels,
        "steps_during": done_after - done_before,
        "busy": busy,
        "shown": shown,
        "heap": heap,
        "hot": hot,
    }


async def _completed(pool: asyncpg.Pool, execution: uuid.UUID) -> int:
    return int(
        await pool.fetchval(
            "SELECT count(*) FROM step_executions WHERE execution_id = $1 AND status = 'COMPLETED'",
            execution,
        )
    )


def print_graph_motion(args: Any, nodes: int, result: dict[str, Any]) -> None:
    print(
        f"5. Run page with a {nodes}-node graph (1280x800) while its steps finish: "
        f"{result['drags']} pane drags of 30 moves and {result['wheels']} wheel zooms "
        f"over {args.pan_seconds:.0f} s; {result['steps_during']} steps finished meanwhile "
        f"({result['shown']} nodes COMPLETED in the page at the end)"
    )
    print(f"   {frame_line(result['frames'])}")
    print(f"   {result['busy']}")
    print(f"   JS heap after GC at the end: {result['heap']:.1f} MiB")
    for line in result["hot"]:
        print(f"   profile: {line}")
