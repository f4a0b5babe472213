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
    task = asyncio.create_task(on.run())
    try:
        for _ in range(200):
            if on.freezes >= 2:
                break
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        gc.unfreeze()
    assert on.freezes >= 2
