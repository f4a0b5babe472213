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
**Freeze after a burst of allocation** (round four): a timer alone leaves up to ``interval``
seconds in which a burst — 2,000 desks logging in within seconds adds ~450 k tracked objects —
sits unfrozen, and a full collection in that window walked all of it (92–158 ms pauses, the
longest stalls of the pop benchmark, ``server_stats.gc.full_collections``). So the task also
looks every ``check_interval`` seconds (1 s) at ``sys.getallocatedblocks()`` (a walk of the
allocator's arenas, ~0.2 ms with a 600 k-object heap) and freezes at once when the heap grew by
more than ``burst_blocks`` (``gc_freeze_burst_blocks``, default 200,000 blocks, about 100 k
objects) since the last freeze. A heap that churns without growing triggers nothing: the timer
stays the only trigger, so the price below does not grow with it. A shorter timer (1 s) was
measured too: no full collection at all in the run, but 4× the frozen cyclic garbage (97 k
objects in a 30 s run against 24 k: the ORM rows of calls being stored were frozen mid-flight).
After a thaw no freeze happens until the collector has run its full collection (or one
``interval`` has passed), so a burst right after a thaw cannot undo it.
**The tail of a burst** (round five): the growth trigger fires *during* a burst, each time the
heap grew by ``burst_blocks``; what arrived after its last firing — up to ``burst_blocks`` of
blocks, 650 of 2,000 desks in the pop benchmark — stayed unfrozen until the timer, and every
full collection in between walked it (``CALLCORE_BENCH_GC_TYPES=1``: 25–73 k objects, two
thirds of them websocket session state, 45–126 ms under load). So the task also freezes when
a burst **settled**: the heap grew by more than half of ``burst_blocks`` since the last freeze
and by less than a twentieth of it since the last round (the growth stopped). A heap that
churns without growing still triggers nothing, and the check runs every half second.
Even so a full collection can start within that half second (the benchmark measured one
0.3 s after the last desk connected, 77 k objects walked, 144 ms under load 8). So, while the
task runs, a ``gc.callbacks`` hook looks at the start of every **full** collection (a few per
10 s; one integer compare for the young ones): when more than half of ``burst_blocks`` were
allocated since the last freeze and no thaw is waiting to be walked, it freezes right there —
the collection that follows walks what is left, i.e. nothing — the same freeze the round would
have done half a second later (``gc_freezes`` counts them; an explicit ``gc.collect()`` during
a burst is treated alike, so its young garbage waits for the thaw like any frozen garbage).
The same hook ends a thaw: at the *end* of the full collection that walked the thawed heap it
freezes the survivors at once (``refreezes``). Before, the timer froze them up to ``interval``
seconds later, and a second full collection in between (they come every few seconds under
call traffic) walked all 650 k objects again: a second 0.5–1.4 s stall in the same hour.
**A thaw only when the heap grew** (round five): the thaw's full collection walks the whole
session heap — 650–690 k objects with 2,000 desks, 0.5–1.4 s (up to 2.8 s under load 8) in
the pop benchmark — an hourly stall in production, while what it reclaims is small (the
cyclic garbage frozen meanwhile: 6–16 k objects in a benchmark run, most of it from the
desks' connections, none per stored call since round four). Frozen garbage is never freed, so
it shows as growth of the allocator's heap; a heap that stayed the size it had after the last
thaw holds little of it. So every ``thaw_interval`` the task thaws only if
``sys.getallocatedblocks()`` grew by more than ``thaw_growth_blocks`` (``gc_thaw_growth_blocks``,
default 200,000, about 100 k objects) since the end of the last thaw (or since the start), or if
``thaw_max_interval`` (``gc_thaw_max_interval``, default a day) passed since the last thaw;
otherwise it skips (``thaws_skipped``) and looks again an interval later. Growth of live state
(more desks, fuller caches) also triggers one — a wasted walk, the old hourly price; a heap
that shrinks while garbage accumulates waits for the day's thaw. ``thaw_growth_blocks = 0``
thaws every interval as before.
**Freeze after every full collection** (``freeze_after_full``, ``gc_freeze_after_full``, off by
default): the hook's end-of-collection freeze for every full collection, not only the thaw's —
the garbage was just reclaimed, so what is frozen is what survived, and the next full
collection walks only what was allocated since — in the pop benchmark that was still 20–42 k
objects (a few seconds of call traffic), about what it walks without it, so it is off by
default (``benchmarks/README.md`` round five). Its price is the frozen garbage's: a per-call object alive
at that moment and dying later in a cycle waits for the thaw (measured per run in
``benchmarks/README.md`` round five).
``gc.get_freeze_count()`` is exported (``callcore_gc_frozen_objects``) so an operator sees it;
``gc_freeze_interval = 0`` turns the freezer off, ``gc_thaw_interval = 0`` never thaws.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys

log = logging.getLogger("callcore.gc")


class GcFreezer:
    def __init__(
        self,
        interval: float = 10.0,
        thaw_interval: float = 3600.0,
        young_threshold: int = 0,
        *,
        burst_blocks: int = 200_000,
        check_interval: float = 0.5,
        thaw_growth_blocks: int = 200_000,
        thaw_max_interval: float = 86_400.0,
        freeze_after_full: bool = False,
    ) -> None:
        self.freeze_after_full = freeze_after_full
        self.after_full_freezes = 0
        self.thaw_growth_blocks = thaw_growth_blocks
        self.thaw_max_interval = thaw_max_interval
        self.thaws_skipped = 0  # thaws due but skipped: the heap had not grown
        self.interval = interval
        self.thaw_interval = thaw_interval
        self.young_threshold = young_threshold
        self.burst_blocks = burst_blocks
        self.check_interval = check_interval
        self.freezes = 0
        self.burst_freezes = 0  # of ``freezes``: the ones a growth of the heap triggered
        self.settle_freezes = 0  # of ``burst_freezes``: the ones the end of a burst triggered
        self.gc_freezes = 0  # of ``burst_freezes``: done at the start of a full collection
        self.refreezes = 0  # of ``freezes``: done at the end of the full collection after a thaw
        self.thaws = 0
        self.ticks = 0  # rounds of the task (tests wait for rounds, not for time)
        self._blocks = sys.getallocatedblocks()  # the heap's size at the last freeze
        self._last = self._blocks  # ... and at the last round of the task
        self._thawed_at: int | None = None  # full collections counted at the last thaw, until one more ran
        self._thaw_time = 0.0
        self._thaw_blocks = self._blocks  # the heap's size after the last thaw's walk (or at the start)

    def freeze(self) -> None:
        """Freeze what survived until now (constant time: the task calls it)."""
        gc.freeze()
        self.freezes += 1
        self._blocks = self._last = sys.getallocatedblocks()

    def thaw(self) -> None:
        """Hand the frozen objects back to the collector (constant time; the next full
        collection walks them once and reclaims the cycles among them)."""
        gc.unfreeze()
        self.thaws += 1
        self._thawed_at = _full_collections()  # the task freezes nothing until one more ran
        self._thaw_time = asyncio.get_running_loop().time() if _loop_running() else 0.0

    def thaw_due(self, since_thaw: float) -> bool:
        """Is a due thaw worth its walk? The heap grew by more than ``thaw_growth_blocks`` since
        the last thaw's walk ended, or ``thaw_max_interval`` seconds passed since that thaw."""
        if self.thaw_growth_blocks <= 0 or (self.thaw_max_interval > 0 and since_thaw >= self.thaw_max_interval):
            return True
        return sys.getallocatedblocks() - self._thaw_blocks > self.thaw_growth_blocks

    def grew(self) -> bool:
        """Did the heap grow by more than ``burst_blocks`` since the last freeze?"""
        return self.burst_blocks > 0 and sys.getallocatedblocks() - self._blocks > self.burst_blocks

    def burst_trigger(self) -> str | None:
        """One round's look at the heap (pure but for ``sys.getallocatedblocks``): ``"burst"``
        when it grew by more than ``burst_blocks`` since the last freeze, ``"settled"`` when it
        grew by more than half of that since the last freeze but by less than a twentieth of it
        since the last round (a burst ended), else ``None``."""
        if self.burst_blocks <= 0:
            return None
        now = sys.getallocatedblocks()
        step, self._last = now - self._last, now
        grown = now - self._blocks
        if grown > self.burst_blocks:
            return "burst"
        if grown > self.burst_blocks // 2 and step < self.burst_blocks // 20:
            return "settled"
        return None

    async def run(self) -> None:
        if self.interval <= 0:  # the freezer off: the interpreter's threshold too
            return
        before = gc.get_threshold()
        if self.young_threshold > 0:
            gc.set_threshold(self.young_threshold, *before[1:])
        gc.callbacks.append(self._on_collection)
        try:
            await self._run()
        finally:
            if self._on_collection in gc.callbacks:
                gc.callbacks.remove(self._on_collection)
            if self.young_threshold > 0:
                gc.set_threshold(*before)

    def _on_collection(self, phase: str, info: dict) -> None:
        """``gc.callbacks`` hook: freeze a burst at the start of the full collection that would
        walk it (see the module's docstring). ``gc.freeze`` splices the generations' lists
        into the permanent one, so the collection that follows finds them empty."""
        if info["generation"] != 2:
            return
        if phase == "stop":
            if self._thawed_at is not None:  # the thaw's walk just ended: freeze its survivors now
                self._thawed_at = None
                self.refreezes += 1
                self.freeze()
                self._thaw_blocks = self._blocks
            elif self.freeze_after_full:  # the garbage was just reclaimed: freeze the survivors
                self.after_full_freezes += 1
                self.freeze()
            return
        if self._thawed_at is not None or self.burst_blocks <= 0:
            return
        if sys.getallocatedblocks() - self._blocks > self.burst_blocks // 2:
            self.burst_freezes += 1
            self.gc_freezes += 1
            self.freeze()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        last_thaw = last_freeze = thawed = loop.time()
        self._blocks = self._last = self._thaw_blocks = sys.getallocatedblocks()
        tick = min(self.interval, self.check_interval) if self.burst_blocks > 0 else self.interval
        while True:
            await asyncio.sleep(tick)
            self.ticks += 1
            now = loop.time()
            if self.thaw_interval > 0 and self._thawed_at is None and now - last_thaw >= self.thaw_interval:
                last_thaw = now
                if self.thaw_due(now - thawed):
                    thawed = now
                    self.thaw()
                    continue
                self.thaws_skipped += 1
            if self._thawed_at is not None:
                if _full_collections() == self._thawed_at and now - self._thaw_time < self.interval:
                    continue  # the collector has not walked the thawed heap yet
                self._thawed_at = None
                last_freeze = self._thaw_time  # the timer counts from the thaw
            trigger = self.burst_trigger()
            if now - last_freeze >= self.interval:
                last_freeze = now
                self.freeze()
            elif trigger is not None:
                last_freeze = now
                self.burst_freezes += 1
                self.settle_freezes += trigger == "settled"
                self.freeze()

    @staticmethod
    def frozen() -> int:
        """How many objects are frozen: walks the permanent generation (milliseconds for a
        million objects), so only the metrics scrape asks, never the freezing task."""
        return gc.get_freeze_count()


def _full_collections() -> int:
    return gc.get_stats()[2]["collections"]


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
