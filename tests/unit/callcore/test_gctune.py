"""callcore/gctune.py (issue 18): what survived is frozen, so a full collection walks only what is new."""

from __future__ import annotations

import asyncio
import gc

from callcore.gctune import GcFreezer


def test_freeze_moves_survivors_out_of_the_collectors_reach() -> None:
    keep = [{"session": i} for i in range(5000)]  # long-lived state, like connected desks
    before = gc.get_freeze_count()
    try:
        GcFreezer().freeze()
        assert GcFreezer.frozen() >= before + len(keep)
        assert not any(gc.is_tracked(d) and d in gc.get_objects(2) for d in keep[:3])
    finally:
        gc.unfreeze()  # leave the test process as it was


async def test_the_task_freezes_every_interval_and_zero_turns_it_off() -> None:
    off = GcFreezer(0)
    await asyncio.wait_for(off.run(), 1)  # returns at once
    assert off.freezes == 0
    on = GcFreezer(0.01)
    await _run_for(on, 2.0, until=lambda f: f.freezes >= 2)
    assert on.freezes >= 2


def test_a_thaw_hands_frozen_cycles_back_to_the_collector() -> None:
    """The price of freezing (a cycle frozen before it became garbage is never collected) is
    bounded: a thaw gives the frozen objects back to the collector."""
    import weakref

    class Node:
        pass

    a, b = Node(), Node()
    a.other, b.other = b, a  # a reference cycle, like a call's records pointing at each other
    gone = weakref.ref(a)
    freezer = GcFreezer(10, thaw_interval=3600)
    try:
        freezer.freeze()
        del a, b
        gc.collect()
        assert gone() is not None  # frozen: the cycle is out of the collector's reach
        freezer.thaw()
        gc.collect()
        assert gone() is None and freezer.thaws == 1  # thawed: reclaimed
    finally:
        gc.unfreeze()


async def _run_for(freezer: GcFreezer, seconds: float, until=lambda f: False) -> None:
    """Run the freezer's task for at most ``seconds`` (or until ``until(freezer)``), then undo its freezes."""
    task = asyncio.create_task(freezer.run())
    try:
        for _ in range(int(seconds / 0.01)):
            if until(freezer):
                break
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        gc.unfreeze()


async def test_the_task_thaws_every_thaw_interval_instead_of_freezing() -> None:
    freezer = GcFreezer(0.01, thaw_interval=0.05, thaw_growth_blocks=0)  # 0: every interval
    await _run_for(freezer, 3.0, until=lambda f: f.thaws >= 2)
    assert freezer.thaws >= 2 and freezer.freezes >= 2
    never = GcFreezer(0.01, thaw_interval=0)
    await _run_for(never, 0.15)
    assert never.thaws == 0 and never.freezes >= 2


async def test_the_young_threshold_holds_while_the_freezer_runs_and_is_restored_after() -> None:
    import gc

    before = gc.get_threshold()
    freezer = GcFreezer(10, young_threshold=12_345)
    task = asyncio.get_running_loop().create_task(freezer.run())
    await asyncio.sleep(0)
    assert gc.get_threshold() == (12_345, *before[1:])
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert gc.get_threshold() == before
    await asyncio.wait_for(GcFreezer(0, young_threshold=12_345).run(), 1)  # off: untouched
    assert gc.get_threshold() == before


async def test_a_burst_of_allocation_is_frozen_before_the_timer_is_due() -> None:
    """Round four: 2,000 desks logging in within seconds must not wait for the 10 s timer, or a
    full collection in between walks all of them. The task freezes as soon as the heap grew."""
    freezer = GcFreezer(3600, thaw_interval=0, burst_blocks=50_000, check_interval=0.01)
    task = asyncio.create_task(freezer.run())
    burst: list[dict[str, list[int]]] = []
    try:
        await _ticks(freezer, 3)
        assert freezer.freezes == 0  # nothing grew, the timer is an hour away
        burst.extend({"desk": [i]} for i in range(60_000))  # ~120 k blocks
        for _ in range(300):
            if freezer.freezes:
                break
            await asyncio.sleep(0.01)
        await _ticks(freezer, 3)  # (a full collection during the burst may have frozen part of it first)
        assert freezer.freezes >= 1 and freezer.burst_freezes == freezer.freezes
        assert not gc.is_tracked(burst[0]) or all(burst[0] is not o for o in gc.get_objects(2))
        settled = freezer.freezes
        await _ticks(freezer, 3)
        assert freezer.freezes == settled  # measured from the last freeze: no growth since, no freeze
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        gc.unfreeze()


def test_no_burst_trigger_when_it_is_turned_off() -> None:
    on, off = GcFreezer(burst_blocks=50_000), GcFreezer(burst_blocks=0)
    burst = [{"desk": [i]} for i in range(60_000)]
    assert on.grew() and not off.grew() and len(burst) == 60_000


async def _ticks(freezer: GcFreezer, n: int) -> None:
    """Wait until the freezer's task ran ``n`` more rounds (with a deadline)."""
    target = freezer.ticks + n
    for _ in range(1000):
        if freezer.ticks >= target:
            return
        await asyncio.sleep(0.005)
    raise AssertionError("the freezer's task did not run")


async def test_after_a_thaw_nothing_is_frozen_until_a_full_collection_ran() -> None:
    """A burst right after a thaw must not freeze the thawed heap again before the collector
    walked it (the thaw would reclaim nothing)."""
    freezer = GcFreezer(3600, thaw_interval=0, burst_blocks=1, check_interval=0.005)
    gc.disable()  # no full collection happens by itself in this test
    task = asyncio.create_task(freezer.run())
    try:
        await _ticks(freezer, 1)
        freezer.thaw()
        frozen_before = freezer.freezes
        grow = [{"x": [i]} for i in range(5_000)]  # a burst: would be frozen at the next round
        await _ticks(freezer, 3)
        assert freezer.freezes == frozen_before and len(grow) == 5_000
        gc.collect()  # the full collection the thaw was for
        grow.extend({"x": [i]} for i in range(5_000))
        await _ticks(freezer, 3)
        assert freezer.freezes > frozen_before
    finally:
        gc.enable()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        gc.unfreeze()


def test_the_end_of_a_burst_is_a_trigger_while_growth_is_not_yet() -> None:
    """Round five: what a burst added after the growth trigger last fired (650 of 2,000 desks
    in the pop benchmark) must not wait for the timer: once the heap stops growing with more
    than half of ``burst_blocks`` unfrozen, the round says "settled"."""
    freezer = GcFreezer(burst_blocks=100_000)
    freezer.freeze()
    try:
        assert freezer.burst_trigger() is None  # nothing grew
        tail = [{"desk": [i]} for i in range(12_000)]  # ~60 k blocks in one round: still growing
        assert freezer.burst_trigger() is None
        assert freezer.burst_trigger() == "settled"  # no growth since the last round
        tail.extend({"desk": [i]} for i in range(12_000))  # past burst_blocks since the freeze
        assert freezer.burst_trigger() == "burst" and len(tail) == 24_000
        freezer.freeze()
        assert freezer.burst_trigger() is None  # measured from the last freeze again
        assert GcFreezer(burst_blocks=0).burst_trigger() is None  # off
    finally:
        gc.unfreeze()


async def test_the_task_freezes_the_tail_of_a_burst_when_it_settles() -> None:
    freezer = GcFreezer(3600, thaw_interval=0, burst_blocks=100_000, check_interval=0.01)
    task = asyncio.create_task(freezer.run())
    tail: list[dict[str, list[int]]] = []
    try:
        await _ticks(freezer, 2)
        tail.extend({"desk": [i]} for i in range(12_000))  # ~60 k blocks: below burst_blocks
        for _ in range(300):
            if freezer.freezes:
                break
            await asyncio.sleep(0.01)
        assert freezer.freezes == 1 and freezer.burst_freezes == 1 and freezer.settle_freezes == 1
        assert all(tail[0] is not o for o in gc.get_objects(2))
        await _ticks(freezer, 3)
        assert freezer.freezes == 1  # a heap that does not grow triggers nothing
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        gc.unfreeze()


async def test_a_full_collection_that_would_walk_a_burst_walks_none_of_it() -> None:
    """Round five: a full collection starting before the next round would walk the burst's tail
    (77 k objects); the hook freezes it first, so the collection finds the burst frozen."""
    freezer = GcFreezer(3600, thaw_interval=0, burst_blocks=100_000, check_interval=3600)
    task = asyncio.create_task(freezer.run())
    walked: list[int] = []

    def count(phase: str, info: dict) -> None:  # runs after the freezer's hook (appended later)
        if phase == "start" and info["generation"] == 2:
            walked.append(sum(len(gc.get_objects(i)) for i in range(3)))

    try:
        await asyncio.sleep(0)  # the task installs its hook
        gc.callbacks.append(count)
        tail = [{"desk": [i]} for i in range(12_000)]  # ~60 k blocks: over half of burst_blocks
        gc.collect()
        assert freezer.gc_freezes == 1 and freezer.freezes == 1
        assert walked and walked[-1] < len(tail)  # the burst was frozen before the walk
        gc.collect()
        assert freezer.gc_freezes == 1  # nothing grew since: an ordinary full collection
    finally:
        if count in gc.callbacks:
            gc.callbacks.remove(count)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        gc.unfreeze()
    assert freezer._on_collection not in gc.callbacks  # the hook leaves with the task


async def test_the_hook_leaves_a_thawed_heap_to_the_collector() -> None:
    freezer = GcFreezer(3600, thaw_interval=0, burst_blocks=100_000, check_interval=3600)
    task = asyncio.create_task(freezer.run())
    try:
        await asyncio.sleep(0)
        freezer.thaw()
        tail = [{"desk": [i]} for i in range(12_000)]
        gc.collect()  # the collection the thaw is for: it must walk, not freeze
        assert freezer.gc_freezes == 0 and len(tail) == 12_000
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        gc.unfreeze()


async def test_the_survivors_of_a_thaw_are_frozen_when_its_collection_ends() -> None:
    """Round five: after the hourly thaw's full collection, its survivors (the whole session
    heap) are frozen at once — not up to ``interval`` later, when another full collection could
    walk them all again."""
    freezer = GcFreezer(3600, thaw_interval=0, burst_blocks=0, check_interval=3600)
    task = asyncio.create_task(freezer.run())
    keep = [{"desk": [i]} for i in range(5_000)]
    try:
        await asyncio.sleep(0)
        freezer.freeze()
        freezer.thaw()
        assert gc.get_freeze_count() == 0
        gc.collect()  # the collection the thaw is for
        assert freezer.refreezes == 1 and gc.get_freeze_count() >= len(keep)
        gc.collect()
        assert freezer.refreezes == 1  # only the thaw's collection
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        gc.unfreeze()


async def test_a_due_thaw_is_skipped_while_the_heap_has_not_grown() -> None:
    """Round five: the hourly thaw walks the whole session heap (0.5-1.4 s); frozen garbage
    shows as growth, so a heap the size it had after the last thaw is not walked."""
    freezer = GcFreezer(3600, thaw_interval=0.02, burst_blocks=10**9, check_interval=0.01,
                        thaw_growth_blocks=100_000, thaw_max_interval=0)
    task = asyncio.create_task(freezer.run())
    grown: list[dict[str, list[int]]] = []
    try:
        await _ticks(freezer, 10)
        assert freezer.thaws == 0 and freezer.thaws_skipped >= 2  # due, but nothing grew
        grown.extend({"desk": [i]} for i in range(30_000))  # ~150 k blocks
        await _ticks(freezer, 10)
        assert freezer.thaws == 1
        gc.collect()  # the thaw's walk: its end is the new baseline
        assert freezer.refreezes == 1
        skipped = freezer.thaws_skipped
        await _ticks(freezer, 10)
        assert freezer.thaws == 1 and freezer.thaws_skipped > skipped
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        gc.unfreeze()


def test_a_thaw_is_due_after_the_max_interval_whatever_the_heap() -> None:
    freezer = GcFreezer(thaw_growth_blocks=100_000, thaw_max_interval=86_400)
    assert not freezer.thaw_due(3600) and freezer.thaw_due(86_400)
    assert GcFreezer(thaw_growth_blocks=0).thaw_due(1)  # 0: every interval, as before


async def test_freeze_after_full_freezes_the_survivors_of_every_full_collection() -> None:
    """Round five: with ``freeze_after_full`` the next full collection walks only what was
    allocated since the last one (the survivors are frozen right after the garbage went)."""
    freezer = GcFreezer(3600, thaw_interval=0, burst_blocks=0, check_interval=3600, freeze_after_full=True)
    task = asyncio.create_task(freezer.run())
    walked: list[int] = []

    def count(phase: str, info: dict) -> None:
        if phase == "start" and info["generation"] == 2:
            walked.append(sum(len(gc.get_objects(i)) for i in range(3)))

    keep = [{"call": [i]} for i in range(5_000)]
    try:
        await asyncio.sleep(0)
        gc.callbacks.append(count)
        gc.collect()
        assert freezer.after_full_freezes == 1 and gc.get_freeze_count() >= len(keep)
        gc.collect()
        assert freezer.after_full_freezes == 2 and walked[-1] < len(keep)  # the survivors were not walked again
        off = GcFreezer(3600, thaw_interval=0, burst_blocks=0)
        assert off.freeze_after_full is False  # off by default
    finally:
        if count in gc.callbacks:
            gc.callbacks.remove(count)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        gc.unfreeze()
