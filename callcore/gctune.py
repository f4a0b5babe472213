"""Keep gen-2 garbage collections short on a server whose heap grows after start-up (issue 18).

``Container.start`` freezes the start-up heap (``gc.freeze()``), but 2,000 connected desks add
~300 tracked objects each (ASGI scope, middleware chain, reader/writer tasks, websocket state):
~560 k objects, and a full collection walking them held the event loop for 560 ms in the pop
benchmark, delaying every pop, AGI answer and AMI action at that moment.

:class:`GcFreezer` is an owned task that, every ``interval`` seconds, moves the objects that
survived so far into the permanent generation (``gc.freeze()``: a constant-time list splice).
Collections then only walk what was allocated since the last freeze: long-lived session state
is not re-scanned again and again. The price: a reference cycle that becomes garbage after its
objects were frozen is not reclaimed (plain reference counting still frees everything that is
not in a cycle). So that price stays bounded on a server that runs for months, the freezer
**thaws** every ``thaw_interval`` seconds (``gc_thaw_interval``, default one hour): it moves the
frozen objects back into the oldest generation (``gc.unfreeze()``, also constant time) and skips
one freeze, so the collector's next full collection — at its own threshold, once — walks them
and reclaims the cycles that became garbage meanwhile; freezing resumes after it. Cyclic garbage
is then kept at most about ``thaw_interval`` seconds, for one longer collection an hour.
The freezer can also set the **young-generation threshold** while it runs
(``young_threshold``, setting ``gc_young_threshold``; it restores the previous one when it
stops). The default, ``0``, keeps CPython's 700: measured in the pop benchmark (round three in
``benchmarks/README.md``), 20,000 removed every full collection from a run but made each young
collection hold the loop 24–120 ms under load (the garbage it frees is destroyed in the same
pause), while at 700 — once the per-call churn was cut (bounded preloads, write-behind call
persistence) — the longest gen-2 pause fell to 38 ms. Kept as a knob for heaps that differ.
``gc.get_freeze_count()`` is exported (``callcore_gc_frozen_objects``) so an operator sees it;
``gc_freeze_interval = 0`` turns the freezer off, ``gc_thaw_interval = 0`` never thaws.
"""

from __future__ import annotations

import asyncio
import gc
import logging

log = logging.getLogger("callcore.gc")


class GcFreezer:
    def __init__(self, interval: float = 10.0, thaw_interval: float = 3600.0, young_threshold: int = 0) -> None:
        self.interval = interval
        self.thaw_interval = thaw_interval
        self.young_threshold = young_threshold
        self.freezes = 0
        self.thaws = 0

    def freeze(self) -> None:
        """Freeze what survived until now (constant time: the task calls it)."""
        gc.freeze()
        self.freezes += 1

    def thaw(self) -> None:
        """Hand the frozen objects back to the collector (constant time; the next full
        collection walks them once and reclaims the cycles among them)."""
        gc.unfreeze()
        self.thaws += 1

    async def run(self) -> None:
        if self.interval <= 0:  # the freezer off: the interpreter's threshold too
            return
        before = gc.get_threshold()
        if self.young_threshold > 0:
            gc.set_threshold(self.young_threshold, *before[1:])
        try:
            await self._run()
        finally:
            if self.young_threshold > 0:
                gc.set_threshold(*before)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        last_thaw = loop.time()
        while True:
            await asyncio.sleep(self.interval)
            if self.thaw_interval > 0 and loop.time() - last_thaw >= self.thaw_interval:
                last_thaw = loop.time()
                self.thaw()  # this round freezes nothing: the next full collection sees everything
                continue
            self.freeze()

    @staticmethod
    def frozen() -> int:
        """How many objects are frozen: walks the permanent generation (milliseconds for a
        million objects), so only the metrics scrape asks, never the freezing task."""
        return gc.get_freeze_count()
