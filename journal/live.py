"""Calls in progress, journaled while they last (issue 12): a ``kill -9`` of callcore loses no
call record, not even of the calls that were going on at that moment.

* :class:`LiveCallJournal` is a CTI subscriber (``cti/dispatcher.py``): every change of a call
  marks it dirty; an owned task writes the newest picture of the dirty calls (pickled
  ``cti.state.Call``, as the ended-call journal does) every ``interval`` (50 ms) into the
  journal file's ``live_calls`` table — one transaction, one fsync a batch, on the journal's
  own thread, so the event loop never waits on the disk. A call's live row is deleted in the
  same transaction that journals its ended record (``CallJournal._append``).
* On the next start the composition root loads those rows, and just before the **first**
  resync (``cti.resync.Resyncer.before_rebuild``) puts them back into ``CtiState.calls``. The
  resync then does what it does after any AMI outage: a call Asterisk still has keeps its
  history (IVR choices, queue entry, answer, parts) and goes on; a call that ended while
  callcore was down is ended there ("ended during AMI disconnect", outcome ``answered`` if it
  was), and the persistence subscriber stores it exactly once (the database write is by call
  id; the live row goes with the ended record).

At most ``interval`` of changes can be lost (the default 50 ms), and only the changes: a call
once journaled is never lost. The pictures are private to one installation (pickle), like the
ended-call journal.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import time
from typing import Any, Callable

from journal.service import CallJournal

log = logging.getLogger(__name__)


class LiveCallJournal:
    def __init__(self, journal: CallJournal, state: Any, *, interval: float = 0.05,
                 clock: Callable[[], float] = time.time) -> None:
        self.journal = journal
        self.state = state
        self.interval = interval
        self._clock = clock
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.recovered: list[Any] = []  # pictures read at start, put back before the first resync
        self.restored = 0
        self.writes = 0  # batches written
        self.failures = 0

    # ------------------------------------------------------------ subscriber
    def __call__(self, change: Any, now: float) -> None:
        if change.call_id and change.kind != "call.ended":
            self._dirty.add(change.call_id)
            self._wake.set()

    # ------------------------------------------------------------ life
    async def start(self) -> None:
        """Read what a previous process left (calls it was following when it died)."""
        self.recovered = [call for _, _, call in await self.journal.live()]
        if self.recovered:
            log.warning("call journal: %d call(s) were in progress when callcore stopped; "
                        "they are reconciled with Asterisk at the first resync", len(self.recovered))
        self._task = asyncio.get_running_loop().create_task(self._run(), name="live-call-journal")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        try:
            await self.flush()  # the last picture of the calls still going on (SIGTERM, restart)
        except Exception as exc:  # noqa: BLE001 - shutting down; the previous pictures stand
            log.warning("live call journal: last flush failed (%s)", exc)

    def before_rebuild(self) -> None:
        """Put the recovered calls back into the state (once) so the resync reconciles them."""
        calls, self.recovered = self.recovered, []
        for call in calls:
            if call.id not in self.state.calls and call.id not in getattr(self.state, "ended", {}):
                self.state.calls[call.id] = call
                self.restored += 1
        if calls:
            log.info("call journal: %d call(s) from before the restart handed to the resync", self.restored)

    # ------------------------------------------------------------ writing
    def _pictures(self) -> list[tuple[str, float, bytes]]:
        ids, self._dirty = self._dirty, set()
        now = self._clock()
        rows = []
        for call_id in ids:
            call = self.state.calls.get(call_id)
            if call is not None and call.status != "ended":  # ended calls go to the ended-call journal
                rows.append((call_id, now, pickle.dumps(call, protocol=pickle.HIGHEST_PROTOCOL)))
        return rows

    async def flush(self) -> int:
        rows = self._pictures()  # on the loop: a consistent picture, in event order
        if rows:
            await self.journal.put_live(rows)
            self.writes += 1
        return len(rows)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.flush()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a full disk must not stop the calls
                self.failures += 1
                log.error("live call journal: write failed (%s)", exc)
            await asyncio.sleep(self.interval)  # batch what arrives meanwhile
