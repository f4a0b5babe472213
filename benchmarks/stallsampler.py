"""A stall-only sampling profiler for the benchmark servers (issue 18, round three).

``py-spy`` is not installed on the benchmark machine; this thread does the part of it that
finds stalls: the event loop's task bumps :attr:`StallSampler.beat` every few ms; the sampler
thread looks every ``period`` seconds and, while the loop has not beaten for more than
``threshold`` seconds, records the main thread's stack (``sys._current_frames``). The stacks
seen during stalls are counted, so the most frequent one is where the loop was held.

Enabled in ``pop_latency`` by ``CALLCORE_BENCH_STALL_DUMP=<file>`` (the report is written there).
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
import traceback
from collections import Counter


class StallSampler:
    def __init__(self, threshold: float = 0.05, period: float = 0.005, depth: int = 30) -> None:
        self.threshold = threshold
        self.period = period
        self.depth = depth
        self.beat = time.perf_counter()
        self.samples: Counter[tuple[str, ...]] = Counter()
        self.leaf: Counter[str] = Counter()
        self.total = 0
        self._main = threading.main_thread().ident
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stall-sampler", daemon=True)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> "StallSampler":
        self._task = asyncio.get_running_loop().create_task(self._beat())
        self._thread.start()
        return self

    async def _beat(self) -> None:
        while True:
            self.beat = time.perf_counter()
            await asyncio.sleep(0.002)

    def reset(self) -> None:
        self.samples.clear()
        self.leaf.clear()
        self.total = 0

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            if time.perf_counter() - self.beat < self.threshold:
                continue
            frame = sys._current_frames().get(self._main)  # type: ignore[arg-type]
            if frame is None:
                continue
            stack = traceback.extract_stack(frame)[-self.depth:]
            key = tuple(f"{_short(f.filename)}:{f.lineno} {f.name}" for f in stack)
            self.samples[key] += 1
            self.leaf[key[-1]] += 1
            self.total += 1

    def report(self, top: int = 15) -> str:
        lines = [f"{self.total} samples while the loop was held > {self.threshold * 1000:.0f} ms (every {self.period * 1000:.0f} ms)", ""]
        lines.append("innermost frames:")
        for leaf, n in self.leaf.most_common(25):
            lines.append(f"  {n:6d}  {leaf}")
        # cumulative: every frame of every sample
        cum: Counter[str] = Counter()
        for key, n in self.samples.items():
            for f in set(key):
                cum[f] += n
        lines += ["", "cumulative (frame on the stack):"]
        for f, n in cum.most_common(60):
            lines.append(f"  {n:6d}  {f}")
        lines += ["", "stacks:"]
        for key, n in self.samples.most_common(top):
            lines.append(f"--- {n} samples")
            lines += [f"    {f}" for f in key]
        return "\n".join(lines)

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


def _short(path: str) -> str:
    for marker in ("/site-packages/", "/lib/python3"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path
