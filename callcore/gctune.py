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
The freezer also raises the **young-generation threshold** (``young_threshold``, setting
``gc_young_threshold``, default 20,000 allocations instead of CPython's 700) while it runs, and
restores the previous one when it stops: with ~60 calls a second the server allocates fast, and
at 700 a gen-0 collection ran hundreds of times a second and every 100th of them became a full
collection of the unfrozen heap (5–9 gen-2 collections of 150–290 ms in a 300-pop benchmark
run). With 20,000 objects per young collection (~1–3 ms each; a few per second), short-lived
objects die before they are examined and promoted, and no full collection fell in a measured
run (round three in ``benchmarks/README.md``). ``0`` keeps the interpreter's threshold (so does
``gc_freeze_interval = 0``).
``gc.get_freeze_count()`` is exported (``callcore_gc_frozen_objects``) so an operator sees it;
``gc_freeze_interval = 0`` turns the freezer off, ``gc_thaw_interval = 0`` never thaws.
"""

from __future__ import annotations

import asyncio
import gc
import logging

log = logging.getLogger("callcore.gc")


class GcFreezer:
    def __init__(self, interval: float = 10.0, thaw_interval: float = 3600.0, young_threshold: int = 20_000) -> None:
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
