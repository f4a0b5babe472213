"""The CTI pipeline of the server (AMI client → typed events → CtiState → notifier → bus),
built as the composition root builds it, with the database replaced by an in-memory
null repository: persistence runs in background tasks off the ingest path, and the
AMI benchmark measures ingest, not SQLite."""

from __future__ import annotations

import asyncio
from typing import Any

from callcore.bus import Bus


class NullRepository:
    """Answers every CtiRepository call with an empty result."""

    def __init__(self) -> None:
        self.calls_saved = 0

    async def save_call(self, call: Any) -> None:
        self.calls_saved += 1

    async def list_agents(self) -> list[Any]:
        return []

    async def previous_calls(self, *a: Any, **k: Any) -> list[Any]:
        return []

    async def count_calls_since(self, *a: Any, **k: Any) -> int:
        return 0

    def __getattr__(self, name: str) -> Any:
        empty: Any = None if name.startswith(("find_", "get_", "verify_")) else []

        async def null(*a: Any, **k: Any) -> Any:
            return empty

        return null


class NullCrm:
    async def lookup(self, phone: str) -> None:
        return None


class NotificationSink:
    """A subscriber that receives everything (like the webhook sender) and counts it."""

    def __init__(self, bus: Bus) -> None:
        self.sub = bus.subscribe(None)
        self.sub.queue = asyncio.Queue()  # unbounded: the sink must never be the bottleneck
        self.received = 0
        self._task = asyncio.get_running_loop().create_task(self._run(), name="notification-sink")

    async def _run(self) -> None:
        q = self.sub.queue
        while True:
            await q.get()
            self.received += 1
            while not q.empty():
                q.get_nowait()
                self.received += 1

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


async def build_cti() -> tuple[Any, Bus, NullRepository]:
    from api.auth import Authenticator
    from cti.service import CtiService
    from cti.testing import FakeAmi

    bus = Bus()
    repo = NullRepository()
    cti = CtiService(
        ami=FakeAmi(),
        repository=repo,  # type: ignore[arg-type]
        bus=bus,
        crm=NullCrm(),  # type: ignore[arg-type]
        authenticator=Authenticator("bench-key"),
    )
    await cti.start()
    return cti, bus, repo
