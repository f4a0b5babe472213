"""The scheduled work-list build (issue 15).

Once per sampling period, after it has ended, the sampling rules run over that period's calls and
the picks go to the work list. The task is owned by the QA service's owner (callcore/wiring.py) and
cancelled on shutdown. Every instance may run it: the build is recorded as run
``worklist:<period key>`` in the same transaction as its work items (qa_worklist_runs), so a
restart or a second instance builds a period at most once; one that loses the race adds nothing.

Timing is pure (:func:`due_day`) and the clock and the sleep are injected, so tests drive it with a
fake clock.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Awaitable, Callable

from qa.sampling import period_bounds, period_key

log = logging.getLogger(__name__)


def due_day(period: str, now: datetime, at: time) -> date | None:
    """A day of the last *closed* period whose list is due at ``now``: the period containing
    yesterday, once today's ``at`` (UTC) has passed and the period has ended; else None."""
    if now.timetz().replace(tzinfo=None) < at:
        return None
    yesterday = now.date() - timedelta(days=1)
    _, after_last = period_bounds(period, yesterday)
    return yesterday if after_last <= now.date() else None


class WorkListScheduler:
    def __init__(
        self, service: Any, *, at: time = time(2, 0), every: float = 300.0,
        clock: Callable[[], datetime] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.service = service
        self.at = at
        self.every = every
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.sleep = sleep
        self.task: asyncio.Task[None] | None = None
        self.last: dict[str, Any] | None = None  # the last build's result (for logs and tests)

    async def tick(self) -> dict[str, Any] | None:
        """One check: build the due period's list if it is not built yet. Never raises."""
        try:
            rules = self.service.forms().rules
        except Exception:  # noqa: BLE001 - forms not loaded (503): nothing to sample with yet
            return None
        if rules is None:
            return None
        now = self.clock()
        day = due_day(rules.period, now, self.at)
        if day is None:
            return None
        key = period_key(rules.period, day)
        if await self.service.repo.worklist_run(f"worklist:{key}") is not None:
            return None
        try:
            result = await self.service.build_work_list(day, once=True, assign_on=now.date())  # caps count today
        except Exception:  # noqa: BLE001 - retried at the next tick
            log.exception("QA work-list build for %s failed; retrying in %g s", key, self.every)
            return None
        if not result.get("already_built"):
            log.info("QA work list for %s built: %s picked, %s unassigned", key, result["picked"], result["unassigned"])
        self.last = result
        return result

    async def run(self) -> None:
        while True:
            await self.tick()
            await self.sleep(self.every)

    def start(self) -> None:
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self.run(), name="qa-worklist-scheduler")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            try:
                await self.task
            except asyncio.CancelledError:
                pass
            self.task = None
