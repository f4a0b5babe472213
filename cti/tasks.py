"""Owned background tasks: every task a CTI part starts is kept here, logged when
it fails, waited for by ``idle()`` and flushed or cancelled on shutdown (GUIDE §2.7)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Coroutine

log = logging.getLogger("callcore.cti")


class TaskOwner:
    def __init__(self, name: str) -> None:
        self.name = name
        self._tasks: set[asyncio.Task[Any]] = set()
        self._keyed: dict[str, asyncio.Task[Any]] = {}

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str, *, key: str | None = None) -> asyncio.Task[Any]:
        """Start ``coro``; with ``key``, it replaces (cancels) the task running under that key."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        if key is not None:
            prev = self._keyed.get(key)
            if prev is not None and not prev.done():
                prev.cancel()
            self._keyed[key] = task
        task.add_done_callback(lambda t: self._done(t, key))
        return task

    def _done(self, task: asyncio.Task[Any], key: str | None) -> None:
        self._tasks.discard(task)
        if key is not None and self._keyed.get(key) is task:
            del self._keyed[key]
        if not task.cancelled() and task.exception() is not None:
            log.error("CTI task %s failed", task.get_name(), exc_info=task.exception())

    def get(self, key: str) -> asyncio.Task[Any] | None:
        return self._keyed.get(key)

    def cancel(self, key: str) -> None:
        task = self._keyed.pop(key, None)
        if task is not None:
            task.cancel()

    def __contains__(self, key: str) -> bool:
        return key in self._keyed

    def __len__(self) -> int:
        return len(self._tasks)

    @property
    def busy(self) -> bool:
        return bool(self._tasks)

    async def stop(self, flush_timeout: float = 0.0) -> None:
        """Give pending tasks ``flush_timeout`` seconds to finish, then cancel the rest."""
        pending = [t for t in self._tasks if not t.done()]
        if not pending:
            return
        not_done: set[asyncio.Task[Any]] = set(pending)
        if flush_timeout > 0:
            _, not_done = await asyncio.wait(pending, timeout=flush_timeout)
        for t in not_done:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
