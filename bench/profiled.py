"""Runs a module under cProfile that is on only between SIGUSR1 and SIGUSR2 (which also
writes the statistics), so that a benchmark can profile one phase of a server:

    python bench/profiled.py OUT -m flowsync dev

cProfile does not see the garbage collector: the pauses of its collections in the same
window go to OUT.gc (generation, milliseconds, objects collected; one line each). Nor does
it say what held the event loop when a delivery waited: a task measures the loop's lag
every 5 ms, a thread samples the main thread's stack as often, and OUT.stalls lists the
lags over 50 ms with the frames seen most during them. OUT.objects: the objects the
collector tracks at SIGUSR2, by type, and how long a full collection of them took.
"""

from __future__ import annotations

import asyncio
import cProfile
import gc
import os
import runpy
import signal
import sys
import threading
import time
from collections import Counter
from types import FrameType
from typing import Any


def main() -> None:
    out, flag, module, *rest = sys.argv[1:]
    assert flag == "-m", "usage: profiled.py OUT -m MODULE [ARGS...]"
    profile = cProfile.Profile()
    cpu = os.environ.get("PROFILE_CPU", "1") != "0"  # 0: only the pauses and the stalls
    pauses: list[tuple[int, float, int]] = []
    began = [0.0]

    def collecting(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            began[0] = time.perf_counter()
        else:
            pauses.append((info["generation"], (time.perf_counter() - began[0]) * 1000,
                           info["collected"]))  # fmt: skip

    stalls: list[tuple[float, float]] = []
    samples: list[tuple[float, tuple[str, ...]]] = []
    sampling = threading.Event()
    main_id = threading.get_ident()

    async def lag() -> None:
        while sampling.is_set():
            before = time.perf_counter()
            await asyncio.sleep(0.005)
            late = time.perf_counter() - before - 0.005
            if late > 0.05:
                stalls.append((before, late))

    def sample() -> None:
        while sampling.is_set():
            frame = sys._current_frames().get(main_id)
            stack: list[str] = []
            while frame is not None and len(stack) < 40:
                code = frame.f_code
                stack.append(f"{code.co_filename.split('site-packages/')[-1]}:{code.co_name}")
                frame = frame.f_back
            samples.append((time.perf_counter(), tuple(stack)))
            time.sleep(0.005)

    def start(_signum: int, _frame: FrameType | None) -> None:
        gc.callbacks.append(collecting)
        sampling.set()
        asyncio.get_running_loop().create_task(lag())
        threading.Thread(target=sample, daemon=True).start()
        if cpu:
            profile.enable()

    def stop(_signum: int, _frame: FrameType | None) -> None:
        profile.disable()
        sampling.clear()
        gc.callbacks.remove(collecting)
        if cpu:
            profile.dump_stats(out)
        with open(f"{out}.gc", "w") as f:
            f.writelines(f"{g} {ms:.1f} {n}\n" for g, ms, n in pauses)
        # What a full collection has to walk: the objects the collector tracks, by type.
        tracked = Counter(type(o).__qualname__ for o in gc.get_objects())
        began_full = time.perf_counter()
        gc.collect()
        full_ms = (time.perf_counter() - began_full) * 1000
        with open(f"{out}.objects", "w") as f:
            f.write(f"{sum(tracked.values())} tracked objects ({gc.get_freeze_count()}"
                    f" frozen); a full collection took {full_ms:.0f} ms\n")  # fmt: skip
            f.writelines(f"{n} {name}\n" for name, n in tracked.most_common(40))
        frames: Counter[str] = Counter()
        for began_at, late in stalls:
            for at, stack in samples:
                if began_at <= at <= began_at + late + 0.005:
                    frames.update(set(stack))
        with open(f"{out}.stalls", "w") as f:
            f.write(f"{len(stalls)} stalls over 50 ms: " + " ".join(
                f"{late * 1000:.0f}" for _, late in stalls) + "\n")  # fmt: skip
            f.writelines(f"{n} {name}\n" for name, n in frames.most_common(80))

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
    sys.argv = [module, *rest]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
