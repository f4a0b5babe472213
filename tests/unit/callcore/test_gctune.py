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
    freezer = GcFreezer(0.01, thaw_interval=0.05)
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
