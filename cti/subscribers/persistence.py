"""Call persistence: every ended call (legs, timeline, IVR context, customer,
disposition) is stored in ``cti_calls`` in the background — the AMI read loop never
waits on the database. Failed writes are retried with the one retry policy
(:mod:`callcore.retry`) and counted in :attr:`failures`.

Write-behind (issue 18, round three): an ended call is appended to a queue and at most
``writers`` (4) owned writer tasks store the queued calls, oldest first, instead of one
task (and one database session) per ended call started at once. At ~60 ended calls a
second the per-call tasks piled up by the hundred (730 pending at the end of a pop
benchmark run), all competing for the connection pool with the pops' preloads and all
walked by the garbage collector. A writer exits when the queue is empty and is started
again by the next ended call, so shutdown (``TaskOwner.stop(flush_timeout)`` of the CTI
service) waits for the queue to drain; calls still queued when the flush times out are
logged and counted in :attr:`failures`. The queue is bounded (``max_queue``): past it an
ended call gets its own task as before (never dropped).

Batches: a writer takes up to ``batch`` (50) queued calls at once and, when the store has
``save_calls`` (``JournaledCalls`` and ``CtiRepository`` do), stores them in one journal
transaction and one database transaction, so a burst of N ended calls costs ~1 commit, not
N. A failed batch is stored call by call with the usual retries."""

from __future__ import annotations

import asyncio
import logging
from collections import deque

from callcore.retry import retry_call
from cti.customers import CustomerService
from cti.repository import CtiRepository
from cti.state import Call, Change, CtiState
from cti.subscribers.crm_preload import CrmPreload
from cti.tasks import TaskOwner

log = logging.getLogger("callcore.cti")

KINDS = ("call.ended",)


class CallPersistence:
    def __init__(
        self,
        state: CtiState,
        repository: CtiRepository,
        customers: CustomerService,
        preload: CrmPreload,
        tasks: TaskOwner,
        *,
        attempts: int = 3,
        backoff: float = 0.2,
        writers: int = 4,
        max_queue: int = 10_000,
        batch: int = 50,
    ) -> None:
        self._state = state
        self._repo = repository
        self._customers = customers
        self._preload = preload
        self._tasks = tasks
        self.attempts = attempts
        self.backoff = backoff
        self.writers = writers
        self.max_queue = max_queue
        self.batch = batch  # at most this many queued calls per store transaction (``save_calls``)
        self.batches = 0  # batched transactions committed
        self.batch_fallbacks = 0  # batches that failed and were stored call by call
        self.failures = 0
        self.overflowed = 0  # ended calls that found the queue full (stored by their own task)
        self._queue: deque[Call] = deque()
        #: call id -> done when its record is stored (or its writes gave up)
        self._pending: dict[str, asyncio.Future[None]] = {}
        self._running = 0
        self._next_writer = 0
        #: calls ended again while their record was being written: written once more by the same writer
        self._again: dict[str, Call] = {}

    def __call__(self, change: Change, now: float) -> None:
        call = self._state.ended.get(change.call_id or "")
        if call is None:
            return
        if call.id in self._pending:  # ended again (a resync, a late event): store the newest picture once more
            self._again[call.id] = call
            for i, queued in enumerate(self._queue):
                if queued.id == call.id:  # not being written yet: the queued picture is replaced
                    self._queue[i] = call
                    del self._again[call.id]
                    break
            return  # else the writer writing it now writes it again after (one writer per call: no racing saves)
        self._pending[call.id] = asyncio.get_running_loop().create_future()
        if len(self._queue) >= self.max_queue:
            self.overflowed += 1
            self._tasks.spawn(self._store(call), f"cti-persist-{call.id}", key=f"persist:{call.id}")
            return
        self._queue.append(call)
        if self._running < self.writers:
            self._running += 1
            self._next_writer += 1
            self._tasks.spawn(self._writer(), f"cti-persist-writer-{self._next_writer}", key=f"persist-writer:{self._next_writer}")

    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def pending(self) -> "dict[str, asyncio.Future[None]]":
        """Ended calls whose record is not stored yet (queued or being written), by call id."""
        return self._pending

    async def landed(self, call_id: str, timeout: float = 10.0) -> None:
        """Wait (bounded) until the ended call's record is stored (or its writes gave up)."""
        fut = self._pending.get(call_id)
        if fut is not None:
            await asyncio.wait({fut}, timeout=timeout)

    async def _writer(self) -> None:
        current: list[Call] = []
        try:
            batched = hasattr(self._repo, "save_calls")
            while self._queue:
                take = min(self.batch, len(self._queue)) if batched else 1
                current = [self._queue.popleft() for _ in range(take)]
                if len(current) == 1:
                    await self._store(current[0])
                else:
                    await self._store_batch(current)
                current = []
        except asyncio.CancelledError:  # the shutdown flush timed out
            lost = len(self._queue) + len(current)
            if lost:
                self.failures += lost
                log.error("call persistence stopped with %d ended call(s) not stored", lost)
                for call in self._queue:
                    self._settle(call.id)
                self._queue.clear()
            raise
        finally:
            self._running -= 1

    def _settle(self, call_id: str) -> None:
        fut = self._pending.pop(call_id, None)
        if fut is not None and not fut.done():
            fut.set_result(None)

    async def _store(self, call: Call) -> None:
        try:
            await self._persist(call)
            while (newer := self._again.pop(call.id, None)) is not None:
                await self._persist(newer)
        finally:
            self._again.pop(call.id, None)
            self._settle(call.id)

    async def _store_batch(self, current: list[Call]) -> None:
        """Several queued calls in one store transaction (``save_calls``); a failed batch is
        stored call by call, each with its own retries (one bad row never loses the others).
        ``current`` (the writer's list) keeps the calls not stored yet."""
        calls = list(current)
        try:
            try:
                for call in calls:
                    await self._complete(call)
                await self._repo.save_calls(calls)  # type: ignore[attr-defined]
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.batch_fallbacks += 1
                log.warning("storing %d ended calls in one transaction failed (%s); storing them one by one",
                            len(calls), exc)
                for call in calls:
                    await self._store(call)
                    current.remove(call)
                return
            self.batches += 1
            current.clear()
            for call in calls:
                self._saved(call)
                while (newer := self._again.pop(call.id, None)) is not None:  # ended again meanwhile
                    await self._persist(newer)
        finally:
            for call in calls:
                self._again.pop(call.id, None)
                self._settle(call.id)

    async def _complete(self, call: Call) -> None:
        # a short call may end before its preload ran: complete the record now
        if call.customer is None and call.caller_num:
            call.customer = await self._customers.lookup_customer(call.caller_num)
        if call.ivr_context is None and call.direction == "inbound":
            caller = call.caller_leg
            call.ivr_context = await self._preload.ivr_context(caller.uniqueid if caller else call.id)

    async def _persist(self, call: Call) -> None:
        await self._complete(call)
        try:
            # the first attempt outside tenacity: its set-up is paid only after a failure (issue 18)
            await retry_call(lambda: f"persisting call {call.id}", lambda: self._repo.save_call(call),
                             attempts=self.attempts, first_wait=self.backoff)
        except Exception:
            self.failures += 1
            return
        self._saved(call)

    def _saved(self, call: Call) -> None:
        self._preload.forget_previous(call.caller_num)  # its previous calls now include this one
        if call.customer and isinstance(call.customer.get("id"), int) and call.caller_num:
            self._customers.forget(call.caller_num)  # previous calls changed
