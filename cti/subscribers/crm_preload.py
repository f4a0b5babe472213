"""CRM preload: before the desk rings, load who is calling — CRM record, previous
interactions, IVR context and every pop enricher — into the pop cache
(:class:`cti.pops.PopBuilder`), so ``call.ringing`` never waits on the CRM or the
database. A desk that already shows the pop gets ``call.updated``.

Subscribed to ``call.queued`` (start), ``call.ringing`` (start if nothing is
cached or in flight, e.g. a call rung straight from a resync) and ``call.ended``
(cancel, hand the entry to the record)."""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Any

from cti.customers import CustomerService
from cti.notifier import CtiNotifier
from cti.pops import PopBuilder
from cti.ports import IvrContextSource
from cti.repository import CtiRepository
from cti.state import Change, CtiState
from cti.tasks import TaskOwner

log = logging.getLogger("callcore.cti")

KINDS = ("call.queued", "call.ringing", "call.ended")


class CrmPreload:
    def __init__(
        self,
        state: CtiState,
        pops: PopBuilder,
        customers: CustomerService,
        repository: CtiRepository,
        notifier: CtiNotifier,
        ivr_context: IvrContextSource | None,
        *,
        timeout: float = 1.5,
    ) -> None:
        self._state = state
        self._pops = pops
        self._customers = customers
        self._repo = repository
        self._notifier = notifier
        self._ivr = ivr_context
        self.timeout = timeout
        self.tasks = TaskOwner("preload")

    # ------------------------------------------------------------ subscriber
    def __call__(self, change: Change, now: float) -> None:
        call_id = change.call_id or ""
        if change.kind == "call.queued":
            self.start(call_id)
        elif change.kind == "call.ringing":
            if change.agent_id and not self._pops.has(call_id) and call_id not in self.tasks:
                self.start(call_id)
        elif change.kind == "call.ended":
            self.tasks.cancel(call_id)
            call = self._state.ended.get(call_id)
            if call is not None:
                self._pops.finish(call)

    # ---------------------------------------------------------------- work
    def start(self, call_id: str) -> None:
        if self._state.calls.get(call_id) is None:
            return
        self.tasks.spawn(self._preload(call_id), f"cti-preload-{call_id}", key=call_id)

    async def _preload(self, call_id: str) -> None:
        call = self._state.calls.get(call_id)
        if call is None:
            return
        phone = call.caller_num
        caller = call.caller_leg
        ivr_ctx = await self.ivr_context(caller.uniqueid if caller else call.id)
        if ivr_ctx is None and caller is not None and caller.uniqueid != call.id:
            ivr_ctx = await self.ivr_context(call.id)
        customer: dict[str, Any] | None = call.customer
        previous: list[dict[str, Any]] = []
        if phone:
            if customer is None:
                customer = await self._customers.lookup_customer(phone)
            try:
                previous = await asyncio.wait_for(self._repo.previous_calls(phone, limit=5, exclude=call_id), self.timeout)
            except (asyncio.TimeoutError, Exception):
                log.warning("previous calls of %s not loaded", phone)
        entry: dict[str, Any] = {"customer": customer, "ivr": ivr_ctx, "previous": previous}
        if self._pops.enrichers:
            entry["enriched"] = await self._enrich(call, entry)
        live = self._state.calls.get(call_id)
        if live is None:
            return
        self._pops.store(call_id, entry)
        live.customer = customer
        live.ivr_context = ivr_ctx
        queued = ivr_ctx.get("queue") if isinstance(ivr_ctx, dict) else None
        if isinstance(queued, dict) and isinstance(queued.get("priority"), int):
            live.priority = queued["priority"]  # what the router decided for this caller
        # the desk may already show a pop without the enrichment: update it
        targets = set(live.ringing_agents)
        if live.agent_id:
            targets.add(live.agent_id)
        for agent_id in targets:
            self._notifier.call_updated(agent_id, self._pops.pop(live, agent_id))

    async def _enrich(self, call: Any, context: dict[str, Any]) -> dict[str, Any]:
        names = list(self._pops.enrichers)

        async def one(name: str) -> Any:
            try:
                return await asyncio.wait_for(self._pops.enrichers[name](call, dict(context)), self.timeout)
            except asyncio.TimeoutError:
                log.warning("pop enricher %s timed out for call %s", name, call.id)
            except Exception:
                log.exception("pop enricher %s failed for call %s", name, call.id)
            return None

        values = await asyncio.gather(*(one(n) for n in names))
        return dict(zip(names, values))

    async def ivr_context(self, uniqueid: str) -> dict[str, Any] | None:
        if self._ivr is None:
            return None
        try:
            res = self._ivr.context_for(uniqueid)
            if inspect.isawaitable(res):
                res = await asyncio.wait_for(res, self.timeout)
            return dict(res) if res else None
        except Exception:
            log.exception("IVR context for %s unavailable", uniqueid)
            return None
