"""Call persistence: every ended call (legs, timeline, IVR context, customer,
disposition) is stored in ``cti_calls`` by an owned background task — the AMI
read loop never waits on the database. Failed writes are retried with the one
retry policy (:mod:`callcore.retry`) and counted in :attr:`failures`."""

from __future__ import annotations

import asyncio
import logging

from callcore.retry import retrying
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
    ) -> None:
        self._state = state
        self._repo = repository
        self._customers = customers
        self._preload = preload
        self._tasks = tasks
        self.attempts = attempts
        self.backoff = backoff
        self.failures = 0

    def __call__(self, change: Change, now: float) -> None:
        call = self._state.ended.get(change.call_id or "")
        if call is not None:
            self._tasks.spawn(self._persist(call), f"cti-persist-{call.id}", key=f"persist:{call.id}")

    async def landed(self, call_id: str, timeout: float = 10.0) -> None:
        """Wait (bounded) until the ended call's record is stored (or its writes gave up)."""
        task = self._tasks.get(f"persist:{call_id}")
        if task is not None:
            await asyncio.wait({task}, timeout=timeout)

    async def _persist(self, call: Call) -> None:
        # a short call may end before its preload ran: complete the record now
        if call.customer is None and call.caller_num:
            call.customer = await self._customers.lookup_customer(call.caller_num)
        if call.ivr_context is None and call.direction == "inbound":
            caller = call.caller_leg
            call.ivr_context = await self._preload.ivr_context(caller.uniqueid if caller else call.id)
        try:
            async for attempt in retrying(f"persisting call {call.id}", attempts=self.attempts, first_wait=self.backoff):
                with attempt:
                    await self._repo.save_call(call)
        except Exception:
            self.failures += 1
            return
        self._preload.forget_previous(call.caller_num)  # its previous calls now include this one
        if call.customer and isinstance(call.customer.get("id"), int) and call.caller_num:
            self._customers.forget(call.caller_num)  # previous calls changed
