"""How long the event loop was unable to run, and how long a pop took to reach a desk
(issue 18: the two figures an operator needs to see a stall in production).

* :class:`LoopWatch` — an owned background task that asks to wake every ``interval``
  seconds and measures how late it woke: that lateness is the time some callback held the
  loop (a pop, an AGI answer and an AMI action are all delayed by as much). Every
  lateness goes into ``callcore_event_loop_lag_seconds``; a wake-up later than
  ``stall_threshold`` is a stall, counted, with the longest kept. With ``debug=True``
  (``CALLCORE_LOOP_DEBUG=1``) asyncio's own debug mode is switched on with
  ``slow_callback_duration = 20 ms``, so asyncio logs every callback over 20 ms with the
  coroutine or handle that ran it (``asyncio`` logger, WARNING).
* :class:`StallStacks` — the stack of every stall (``loop_stall_stacks_ms``,
  ``CALLCORE_LOOP_STALL_STACKS_MS``, e.g. 20; 0 = off; ``CALLCORE_LOOP_DEBUG=1`` turns it on at
  20 ms too). asyncio's slow-callback log names the handle, not where it spent its time, and
  says nothing of a collection or of the machine. A watchdog *thread* looks every 5 ms at a
  beat the loop bumps every 5 ms; while the loop has not beaten for ``threshold`` it records
  the loop thread's stack (``sys._current_frames``), and when the loop beats again it logs one
  WARNING (``callcore.loop``): ``event loop held N ms (loop thread on a CPU X ms, garbage
  collector Y ms [by generation], K involuntary context switches); stack: ...`` with the
  stack seen most often in it. CPU far below N: the process was preempted (the machine);
  collector time most of N: a collection (the thread cannot sample during one: the collector
  holds the GIL; its time comes from a ``gc.callbacks`` hook); else the stack names the code.
  Cost while on: the beat (200 wake-ups a second) and the thread's look every 5 ms, about 1 %
  of a core; nothing while off.
* :data:`FRAME_CLOCK` — the time (``perf_counter``) at which the AMI socket read the data
  of the frames being handled now. The AMI protocol sets it while it hands frames to the
  CTI pipeline and clears it afterwards; the notifier stamps each outgoing message with it,
  and the websocket pump observes ``written - read`` into ``callcore_pop_latency_seconds``
  (AMI frame read → websocket frame written, by event name). A message that did not come
  from an AMI frame (an API action, the stats loop) carries 0 and is not observed.

Both are pure bookkeeping on the loop: one float comparison and one histogram update.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import threading
import time
import traceback
from collections import Counter
from typing import Any, Callable

log = logging.getLogger("callcore.loop")


class FrameClock:
    """Process-wide, set only from the event loop thread (no lock needed)."""

    __slots__ = ("at",)

    def __init__(self) -> None:
        self.at = 0.0


FRAME_CLOCK = FrameClock()


class StallStacks:
    """Logs each hold of the event loop over ``threshold`` seconds with its stack (see the
    module's docstring). :meth:`run` is the owned task: it starts the watchdog thread, beats,
    and stops the thread when it is cancelled."""

    def __init__(self, threshold: float = 0.02, *, period: float = 0.005, depth: int = 25,
                 emit: Callable[[str], None] | None = None) -> None:
        self.threshold = threshold
        self.period = period
        self.depth = depth
        self.emit = emit or (lambda text: log.warning("%s", text))
        self.logged = 0  # stalls logged (tests count these)
        self.beat = time.perf_counter()
        self.gc_ms = [0.0, 0.0, 0.0]  # collector pauses by generation, added up in the loop thread
        self._gc_t = 0.0
        self._loop_ident: int | None = None
        self._native: int | None = None
        self._stop = threading.Event()

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_t = time.perf_counter()
        else:
            self.gc_ms[info["generation"]] += (time.perf_counter() - self._gc_t) * 1000

    async def run(self) -> None:
        self._loop_ident = threading.get_ident()
        self._stop.clear()
        gc.callbacks.append(self._on_gc)
        thread = threading.Thread(target=self._watch, name="loop-stall-stacks", daemon=True)
        thread.start()
        try:
            while True:
                self.beat = time.perf_counter()
                await asyncio.sleep(self.period)
        finally:
            self._stop.set()
            if self._on_gc in gc.callbacks:
                gc.callbacks.remove(self._on_gc)
            await asyncio.to_thread(thread.join, 1.0)

    def _snapshot(self, clock: int | None) -> tuple[float, list[float], int]:
        cpu = time.clock_gettime(clock) if clock is not None else 0.0
        return cpu, list(self.gc_ms), _involuntary_switches(self._native)

    def _watch(self) -> None:
        ident = self._loop_ident
        assert ident is not None
        self._native = next((t.native_id for t in threading.enumerate() if t.ident == ident), None)
        try:
            clock: int | None = time.pthread_getcpuclockid(ident)
        except (AttributeError, OSError):
            clock = None
        snap = self._snapshot(clock)
        held: tuple[float, tuple[float, list[float], int], Counter[tuple[str, ...]]] | None = None
        while not self._stop.wait(self.period):
            beat = self.beat
            if time.perf_counter() - beat < self.threshold:
                if held is not None and beat != held[0]:
                    self._log(beat - held[0], held[1], self._snapshot(clock), held[2])
                    held = None
                snap = self._snapshot(clock)
                continue
            if held is None:
                held = (beat, snap, Counter())
            frame = sys._current_frames().get(ident)
            if frame is not None:
                stack = traceback.extract_stack(frame)[-self.depth:]
                held[2][tuple(f"{f.filename}:{f.lineno} {f.name}" for f in stack)] += 1
                del frame

    def _log(self, seconds: float, before: tuple[float, list[float], int], after: tuple[float, list[float], int],
             stacks: Counter[tuple[str, ...]]) -> None:
        gcs = [round(a - b, 1) for a, b in zip(after[1], before[1])]
        text = (f"event loop held {seconds * 1000:.0f} ms (loop thread on a CPU {(after[0] - before[0]) * 1000:.0f} ms, "
                f"garbage collector {sum(gcs):.0f} ms {gcs}, {after[2] - before[2]} involuntary context switches)")
        if stacks:
            top, n = stacks.most_common(1)[0]
            text += f"; stack ({n} of {sum(stacks.values())} samples):\n  " + "\n  ".join(top)
        else:
            text += "; no stack sampled (the collector or the machine held it)"
        self.logged += 1
        self.emit(text)


def _involuntary_switches(native_id: int | None) -> int:
    if native_id is None:
        return 0
    try:
        with open(f"/proc/self/task/{native_id}/status") as fh:
            for line in fh:
                if line.startswith("nonvoluntary_ctxt_switches"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class LoopWatch:
    def __init__(
        self,
        observe: Callable[[float], None] | None = None,
        *,
        interval: float = 0.1,
        stall_threshold: float = 0.05,
        debug: bool = False,
        stack_threshold: float = 0.0,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.observe = observe
        self.interval = interval
        self.stall_threshold = stall_threshold
        self.debug = debug
        #: stalls over this many seconds are logged with their stack (0: off; debug: 20 ms)
        self.stacks = StallStacks(stack_threshold or 0.02) if (stack_threshold > 0 or debug) else None
        self._clock = clock
        self.stalls = 0
        self.longest = 0.0
        self.samples = 0

    def record(self, lateness: float) -> None:
        """One wake-up ``lateness`` seconds after it was due (pure; the task calls it)."""
        lateness = max(0.0, lateness)
        self.samples += 1
        if lateness > self.longest:
            self.longest = lateness
        if lateness > self.stall_threshold:
            self.stalls += 1
            log.warning("event loop stalled for %.0f ms (threshold %.0f ms)", lateness * 1000, self.stall_threshold * 1000)
        if self.observe is not None:
            self.observe(lateness)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        if self.debug:
            loop.set_debug(True)
            loop.slow_callback_duration = 0.02
            logging.getLogger("asyncio").setLevel(logging.WARNING)
        stacks = asyncio.get_running_loop().create_task(self.stacks.run()) if self.stacks is not None else None
        clock, interval = self._clock, self.interval
        try:
            while True:
                due = clock() + interval
                await asyncio.sleep(interval)
                self.record(clock() - due)
        finally:
            if stacks is not None:
                stacks.cancel()
                await asyncio.gather(stacks, return_exceptions=True)
