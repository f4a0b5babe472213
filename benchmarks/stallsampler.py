"""A stall-only sampling profiler for the benchmark servers (issue 18, round three).

``py-spy`` is not installed on the benchmark machine; this thread does the part of it that
finds stalls: the event loop's task bumps :attr:`StallSampler.beat` every few ms; the sampler
thread looks every ``period`` seconds and, while the loop has not beaten for more than
``threshold`` seconds, records the main thread's stack (``sys._current_frames``). The stacks
seen during stalls are counted, so the most frequent one is where the loop was held.

Enabled in ``pop_latency`` by ``CALLCORE_BENCH_STALL_DUMP=<file>`` (the report is written there).

**One line per stall** (issue 18, round five): the counted stacks say where the loop was held
in sum, not what each stall was. So every stall is also an *episode*: its length (the beat's
gap), how much of it the loop thread spent on a CPU (its CPU clock, ``pthread_getcpuclockid``,
read from this thread), the whole process's CPU, the garbage collector's time in it (a
``gc.callbacks`` hook in the loop thread adds up its pauses), the loop thread's involuntary
context switches (``/proc/self/task/<tid>/status``: the kernel took the core away) and the
stack most seen in it. A stall whose CPU time is far below its length was the machine (the
thread preempted or waiting for the GIL); one whose GC time is most of it was a collection;
the rest is a callback, named by its stack.
"""

from __future__ import annotations

import asyncio
import gc
import os
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
        self._main_native = threading.main_thread().native_id
        try:
            self._cpu_clock: int | None = time.pthread_getcpuclockid(self._main)  # type: ignore[arg-type]
        except (AttributeError, OSError):
            self._cpu_clock = None
        self.gc_ms = 0.0  # total collector pause, added up in the loop thread
        self.gc_by_gen = [0.0, 0.0, 0.0]
        self._gc_t = 0.0
        gc.callbacks.append(self._gc_cb)
        self.t0 = time.perf_counter()
        self.episodes: list[dict] = []
        self._ep: dict | None = None
        self._snap = self._snapshot()
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
        self.episodes = []
        self._ep = None
        self.t0 = time.perf_counter()

    def _gc_cb(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._gc_t = time.perf_counter()
        else:
            d = (time.perf_counter() - self._gc_t) * 1000
            self.gc_ms += d
            self.gc_by_gen[info["generation"]] += d

    def _invol(self) -> int:
        from callcore.loopwatch import _involuntary_switches

        return _involuntary_switches(self._main_native)

    def _snapshot(self) -> tuple[float, float, float, list[float], int]:
        cpu = time.clock_gettime(self._cpu_clock) if self._cpu_clock is not None else 0.0
        return (cpu, time.process_time(), self.gc_ms, list(self.gc_by_gen), self._invol())

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            beat = self.beat
            if time.perf_counter() - beat < self.threshold:
                if self._ep is not None:
                    self._close(beat)
                self._snap = self._snapshot()
                continue
            if self._ep is None:
                self._ep = {"beat": beat, "snap": self._snap, "stacks": Counter()}
            frame = sys._current_frames().get(self._main)  # type: ignore[arg-type]
            if frame is None:
                continue
            stack = traceback.extract_stack(frame)[-self.depth:]
            key = tuple(f"{_short(f.filename)}:{f.lineno} {f.name}" for f in stack)
            self.samples[key] += 1
            self.leaf[key[-1]] += 1
            self.total += 1
            self._ep["stacks"][key] += 1

    def _close(self, beat: float) -> None:
        ep, self._ep = self._ep, None
        assert ep is not None
        now = self._snapshot()
        before = ep["snap"]
        stacks: Counter = ep["stacks"]
        top = stacks.most_common(1)[0][0] if stacks else ()
        self.episodes.append({
            "t": round(ep["beat"] - self.t0, 3),
            "ms": round((beat - ep["beat"]) * 1000, 1),  # beat to beat (includes the 2 ms sleep)
            "loop_cpu_ms": round((now[0] - before[0]) * 1000, 1),
            "process_cpu_ms": round((now[1] - before[1]) * 1000, 1),
            "gc_ms": round(now[2] - before[2], 1),
            "gc_ms_by_gen": [round(a - b, 1) for a, b in zip(now[3], before[3])],
            "involuntary_switches": now[4] - before[4],
            "samples": sum(stacks.values()),
            "stack": [f for f in top if "/asyncio/" not in f and "multiprocessing" not in f][-14:],
        })

    def report(self, top: int = 15) -> str:
        lines = [f"{self.total} samples while the loop was held > {self.threshold * 1000:.0f} ms (every {self.period * 1000:.0f} ms)", ""]
        lines.append(f"{len(self.episodes)} stalls (longest first): t s, beat gap ms, loop-thread CPU ms, process CPU ms, GC ms [by gen], involuntary switches, samples; the stack most seen")
        for ep in sorted(self.episodes, key=lambda e: -e["ms"])[:40]:
            lines.append(f"  t={ep['t']:8.3f} {ep['ms']:7.1f} ms  cpu {ep['loop_cpu_ms']:6.1f} / proc {ep['process_cpu_ms']:6.1f}  gc {ep['gc_ms']:6.1f} {ep['gc_ms_by_gen']}  invol {ep['involuntary_switches']}  n={ep['samples']}")
            for f in ep["stack"]:
                lines.append(f"        {f}")
        lines.append("")
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
        if self._cb_installed():
            gc.callbacks.remove(self._gc_cb)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


    def _cb_installed(self) -> bool:
        return self._gc_cb in gc.callbacks


def _short(path: str) -> str:
    for marker in ("/site-packages/", "/lib/python3"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path
