"""Owned reload tasks of a registry that loads a directory (dialplans, QA forms).

:class:`DirectoryReloader` runs ``reload(reason)`` when a file in the directory
changes (watchfiles, debounced) and on request (SIGHUP), every run as a task it
owns; :meth:`stop` cancels them all. Used by :class:`ivr.registry.FlowRegistry`
and :class:`qa.registry.FormRegistry`.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any, Awaitable, Callable

log = logging.getLogger(__name__)


class DirectoryReloader:
    def __init__(self, directory: Path, reload: Callable[[str], Awaitable[Any]], *, name: str, debounce_ms: int = 300,
                 fallback: str = "") -> None:
        self.directory = Path(directory)
        self._reload = reload
        self.name = name
        self.debounce_ms = debounce_ms
        self.fallback = fallback  # what to use when the watcher dies, for the log line
        self._tasks: set[asyncio.Task[Any]] = set()
        self._watch_task: asyncio.Task[None] | None = None
        self._stop_event: asyncio.Event | None = None

    @property
    def watching(self) -> bool:
        return self._watch_task is not None

    def start_watch(self) -> None:
        if self._watch_task is None:
            self._stop_event = asyncio.Event()
            self._watch_task = asyncio.create_task(self._watch(), name=f"{self.name}-watch")

    async def _watch(self) -> None:
        from watchfiles import awatch

        assert self._stop_event is not None
        try:
            async for changes in awatch(self.directory, stop_event=self._stop_event, debounce=self.debounce_ms, step=50):
                names = sorted({Path(p).name for _, p in changes})
                await self._reload(f"file change: {', '.join(names)}")
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the watcher must not die silently
            log.exception("%s watcher stopped%s", self.name, f"; {self.fallback}" if self.fallback else "")

    def request(self, reason: str) -> asyncio.Task[Any]:
        """Schedule a reload as an owned task (the composition root's SIGHUP handler)."""
        task = asyncio.get_running_loop().create_task(self._reload(reason), name=f"{self.name}-reload:{reason}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    @property
    def pending(self) -> int:
        return len(self._tasks)

    async def stop(self) -> None:
        if self._stop_event is not None:
            self._stop_event.set()
        tasks = list(self._tasks) + ([self._watch_task] if self._watch_task else [])
        for t in tasks:
            t.cancel()
        for t in tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - shutting down
                pass
        self._tasks.clear()
        self._watch_task = None
