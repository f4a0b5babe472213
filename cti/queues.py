"""Queues: per-queue behaviour (wrap-up, service level, overflow, callback
offer — ``cti_queue_settings``), the live queue views and the periodic
``queue.stats`` feed."""

from __future__ import annotations

from typing import Any, Callable

from cti.notifier import CtiNotifier
from cti.repository import CtiRepository
from cti.state import CtiState, QueueSettings


class QueueService:
    def __init__(self, *, repository: CtiRepository, state: CtiState, notifier: CtiNotifier, clock: Callable[[], float]) -> None:
        self.repository = repository
        self.state = state
        self._notifier = notifier
        self._clock = clock

    async def queue_settings_update(self, qs: QueueSettings) -> dict[str, Any]:
        await self.repository.save_queue_settings(qs)
        self.state.set_queue_settings(qs)
        return dict(qs.__dict__)

    def queue_views(self) -> list[dict[str, Any]]:
        return self.state.all_queue_stats(self._clock())

    def publish_queue_stats(self) -> int:
        now = self._clock()
        return self._notifier.queue_stats(self.state.all_queue_stats(now), now)
