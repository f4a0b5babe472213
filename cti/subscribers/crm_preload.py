"""CRM preload: load who is calling — CRM record, previous interactions, IVR
context and every pop enricher — into the pop cache (:class:`cti.pops.PopBuilder`)
*before* the desk rings, so ``call.ringing`` carries them and never waits on the
CRM or the database.

* **At the IVR hand-off** (:meth:`CrmPreload.prepare`, the IVR's
  ``ivr.ports.PopPreload``): the IVR knows the caller and its context when it
  routes the call to a queue; the preload starts then, and the IVR lets it finish
  (bounded by ``pop_preload_wait``) before Asterisk runs ``Queue()``.
* **At ``call.queued``** the prepared entry is put in the pop cache at once; a call
  that did not come through this process's IVR (``--only ami,http``, a transfer, a
  resync) is preloaded from the stored IVR context (``ivr_sessions``) then.
* **At ``call.ringing``** a call with nothing cached or in flight is preloaded.
* While a preload is still running the pop says ``"loading": true`` and a
  ``call.updated`` with the record follows; a slow CRM never delays the pop.
* **At ``call.ended``** the preload is cancelled and the entry handed to the record.

Bounded (issue 18, round three): at most ``concurrency`` preloads do their database work at
once (an ``asyncio.Semaphore`` sized below the connection pool, default 8). At call rates above
what the pool serves, unbounded preloads all queued on the pool, timed out after
``timeout`` seconds with their work half done (hundreds of "IVR context unavailable" / "CRM
lookup timed out" a minute in the pop benchmark) and kept hundreds of tasks and sessions alive
for the collector to walk. Now they wait their turn before starting; a call that ends while its
preload waits is cancelled without having cost anything. The previous calls of a number are
cached with the CRM answer (``previous_ttl``, the CRM cache's lifetime) and dropped when a call
of that number is stored (:meth:`forget_previous`, from call persistence), so a repeat caller
costs no query.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import OrderedDict
from typing import Any, Callable

from cti.customers import CustomerService
from cti.notifier import CtiNotifier
from cti.pops import PopBuilder
from cti.ports import IvrContextSource
from cti.repository import CtiRepository
from cti.state import Call, Change, CtiState
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
        clock: Callable[[], float] | None = None,
        keep_prepared: int = 2000,
        concurrency: int = 8,
        previous_ttl: float | None = None,
        keep_previous: int = 5000,
    ) -> None:
        self._state = state
        self._pops = pops
        self._customers = customers
        self._repo = repository
        self._notifier = notifier
        self._ivr = ivr_context
        self.timeout = timeout
        self._clock = clock
        self.tasks = TaskOwner("preload")
        #: entries prepared at the IVR hand-off, by the caller channel's uniqueid (bounded)
        self._prepared: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._keep_prepared = keep_prepared
        #: preloads doing database work at once (below the pool: SQLite 5+10, PostgreSQL 10+10)
        self.concurrency = concurrency
        self._slots = asyncio.Semaphore(concurrency)
        #: previous calls by number: (expires at, summaries); dropped when a call of the number is stored
        self._previous: OrderedDict[str, tuple[float, list[dict[str, Any]]]] = OrderedDict()
        self._previous_ttl = getattr(customers, "cache_seconds", 0.0) if previous_ttl is None else previous_ttl
        self._keep_previous = keep_previous
        self.previous_hits = 0

    # ------------------------------------------------------------ subscriber
    def __call__(self, change: Change, now: float) -> None:
        call_id = change.call_id or ""
        if change.kind == "call.queued":
            call = self._state.calls.get(call_id)
            if call is not None and not self._take_prepared(call):
                self.start(call_id)
        elif change.kind == "call.ringing":
            call = self._state.calls.get(call_id)
            if change.agent_id and call is not None and not self._pops.has(call_id) and not self._in_flight(call):
                self.start(call_id)
        elif change.kind == "call.ended":
            self.tasks.cancel(call_id)
            call = self._state.ended.get(call_id)
            if call is not None:
                for key in _keys(call):
                    self._prepared.pop(key, None)
                self._pops.finish(call)

    # -------------------------------------------------------- IVR hand-off
    def prepare(self, uniqueid: str, linkedid: str | None, caller_num: str | None, context: dict[str, Any]) -> "asyncio.Task[Any]":
        """``ivr.ports.PopPreload``: start loading the pop of the call the IVR hands to a queue."""
        return self.tasks.spawn(
            self._prepare(uniqueid, linkedid, caller_num, dict(context)), f"cti-preload-ivr-{uniqueid}", key=f"ivr:{uniqueid}"
        )

    async def _prepare(self, uniqueid: str, linkedid: str | None, caller_num: str | None, context: dict[str, Any]) -> None:
        call = self._live(uniqueid, linkedid)
        if call is None:  # the AMI events of this call are not in yet: enrichers get what the IVR knows
            call = Call(id=linkedid or uniqueid, started_at=self._clock() if self._clock else 0.0, caller_num=caller_num)
        async with self._slots:
            entry = await self._load(call, caller_num or call.caller_num, context, exclude=call.id)
        self._prepared[uniqueid] = entry
        while len(self._prepared) > self._keep_prepared:
            self._prepared.popitem(last=False)
        live = self._live(uniqueid, linkedid)
        if live is not None and live.queue is not None and not self._pops.has(live.id):
            self._take_prepared(live)  # Queue() was faster than the preload: complete the pop now

    def _live(self, uniqueid: str, linkedid: str | None) -> Call | None:
        for key in (linkedid, uniqueid):
            if key and key in self._state.calls:
                return self._state.calls[key]
        return None

    def _take_prepared(self, call: Call) -> bool:
        """Put the entry prepared at the IVR hand-off in the pop cache (synchronously).
        True when there is one, or one is still being prepared (the pop says loading)."""
        for key in _keys(call):
            entry = self._prepared.pop(key, None)
            if entry is not None:
                self._apply(call, entry, notify=bool(call.ringing_agents or call.agent_id))
                return True
        if self._in_flight(call):
            self._pops.loading.add(call.id)
            return True
        return False

    def _in_flight(self, call: Call) -> bool:
        """A preload of this call (at the hand-off or from the state) is still running."""
        keys = [call.id, *(f"ivr:{k}" for k in _keys(call))]
        return any((t := self.tasks.get(k)) is not None and not t.done() for k in keys)

    # ---------------------------------------------------------------- work
    def start(self, call_id: str) -> None:
        if self._state.calls.get(call_id) is None:
            return
        if not self._pops.has(call_id):
            self._pops.loading.add(call_id)
        self.tasks.spawn(self._preload(call_id), f"cti-preload-{call_id}", key=call_id)

    async def _preload(self, call_id: str) -> None:
        try:
            async with self._slots:  # bounded: wait here, not on the connection pool (see the module doc)
                call = self._state.calls.get(call_id)
                if call is None:  # ended while waiting for a slot
                    return
                caller = call.caller_leg
                ivr_ctx = await self.ivr_context(caller.uniqueid if caller else call.id)
                if ivr_ctx is None and caller is not None and caller.uniqueid != call.id:
                    ivr_ctx = await self.ivr_context(call.id)
                entry = await self._load(call, call.caller_num, ivr_ctx, exclude=call_id)
            live = self._state.calls.get(call_id)
            if live is not None:
                self._apply(live, entry, notify=True)
        finally:
            if not self._pops.has(call_id):
                self._pops.loading.discard(call_id)

    async def _load(self, call: Call, phone: str | None, ivr_ctx: dict[str, Any] | None, *, exclude: str) -> dict[str, Any]:
        customer: dict[str, Any] | None = call.customer
        previous: list[dict[str, Any]] = []
        if phone:
            if customer is None:
                customer = await self._customers.lookup_customer(phone)
            cached = self._cached_previous(phone)
            if cached is not None:
                self.previous_hits += 1
                previous = [p for p in cached if p.get("call_id") != exclude]
            else:
                try:
                    previous = await asyncio.wait_for(self._repo.previous_calls(phone, limit=5, exclude=exclude), self.timeout)
                    self._remember_previous(phone, previous)
                except (asyncio.TimeoutError, Exception):
                    log.warning("previous calls of %s not loaded", phone)
        entry: dict[str, Any] = {"customer": customer, "ivr": ivr_ctx, "previous": previous}
        if self._pops.enrichers:
            entry["enriched"] = await self._enrich(call, entry)
        return entry

    # ------------------------------------------------------ previous calls
    def _cached_previous(self, phone: str) -> list[dict[str, Any]] | None:
        hit = self._previous.get(phone)
        if hit is None:
            return None
        if self._clock is not None and hit[0] <= self._clock():
            self._previous.pop(phone, None)
            return None
        return hit[1]

    def _remember_previous(self, phone: str, previous: list[dict[str, Any]]) -> None:
        if self._previous_ttl <= 0 or self._clock is None:
            return
        self._previous[phone] = (self._clock() + self._previous_ttl, list(previous))
        self._previous.move_to_end(phone)
        while len(self._previous) > self._keep_previous:
            self._previous.popitem(last=False)

    def forget_previous(self, *phones: str | None) -> None:
        """A call of these numbers was stored: their previous calls changed."""
        for phone in phones:
            if phone:
                self._previous.pop(phone, None)

    def _apply(self, live: Call, entry: dict[str, Any], *, notify: bool) -> None:
        self._pops.store(live.id, entry)
        live.customer = entry.get("customer")
        live.ivr_context = entry.get("ivr")
        ivr_ctx = live.ivr_context
        queued = ivr_ctx.get("queue") if isinstance(ivr_ctx, dict) else None
        if isinstance(queued, dict) and isinstance(queued.get("priority"), int):
            live.priority = queued["priority"]  # what the router decided for this caller
        if not notify:
            return
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


def _keys(call: Call) -> list[str]:
    """Where a hand-off entry of this call is filed: the caller channel's uniqueid (the IVR's
    ``agi_uniqueid``), which is the call id (Linkedid) for an inbound call."""
    caller = call.caller_leg
    keys = [call.id]
    if caller is not None and caller.uniqueid != call.id:
        keys.append(caller.uniqueid)
    return keys
