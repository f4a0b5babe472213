"""Bookkeeping after telephony (issue 12, "telephony never waits on the database"):
the AMI action that keeps calls flowing is sent first; the database write that
records it follows through :meth:`Bookkeeping.write` — retried with the one retry
policy (``callcore.retry``), and when the database stays unavailable logged and
counted (:attr:`failures`), never raised into the request or the subscriber that
already did its telephony part."""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable

from callcore.retry import retrying

log = logging.getLogger("callcore.cti")


class Bookkeeping:
    def __init__(self, *, attempts: int = 3, first_wait: float = 0.2, max_wait: float = 2.0) -> None:
        self.attempts = attempts
        self.first_wait = first_wait
        self.max_wait = max_wait
        self.failures = 0

    async def write(self, what: str, write: Callable[[], Awaitable[Any]]) -> bool:
        try:
            async for attempt in retrying(what, attempts=self.attempts, first_wait=self.first_wait, max_wait=self.max_wait):
                with attempt:
                    await write()
        except Exception:
            self.failures += 1
            return False
        return True
