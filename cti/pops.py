"""The screen-pop payload (``call.ringing``, ``call.answered``, ``call.updated``…,
schema in ``cti/events.yml``) and the preload cache it reads.

:meth:`PopBuilder.pop` only reads memory — the live call and the entry the CRM
preload (``cti/subscribers/crm_preload.py``) stored for it: customer, IVR
context, previous interactions and the result of every registered **pop
enricher**. An enricher is ``async def enrich(call, context) -> Any`` registered
with :meth:`PopBuilder.add_enricher`; it runs during the preload (``context`` is
``{"customer", "ivr", "previous"}``) and its result appears in the pop under its
name (``None`` until it has run, or when it failed or timed out).

While the preload of a call is still running its pop says ``"loading": true``
(customer/IVR not known *yet*, a ``call.updated`` follows) — never "no customer".
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Awaitable, Callable

from cti.state import Call

Enricher = Callable[[Call, dict[str, Any]], Awaitable[Any]]

#: the pop's own keys (an enricher may not shadow one)
POP_KEYS = frozenset({
    "call_id", "direction", "origin", "caller_num", "caller_name", "dialed", "status", "queue", "priority",
    "waited", "agent_id", "customer", "ivr", "previous_interactions", "recording", "on_hold",
    "on_hold_seconds", "transfers", "outcome", "end_cause", "end_cause_txt", "talk_time", "disposition", "sent_at",
    "loading",
})


class PopBuilder:
    def __init__(self, clock: Callable[[], float], *, keep_ended: int = 500) -> None:
        self._clock = clock
        #: call id -> {"customer", "ivr", "previous", "enriched": {name: value}} of live calls
        self.cache: dict[str, dict[str, Any]] = {}
        self._ended: OrderedDict[str, dict[str, Any]] = OrderedDict()  # entries of recently ended calls
        self._keep_ended = keep_ended
        self.enrichers: dict[str, Enricher] = {}
        #: calls whose preload is still running: their pop says ``"loading": true`` and a
        #: ``call.updated`` with the record follows
        self.loading: set[str] = set()

    # ------------------------------------------------------------ enrichers
    def add_enricher(self, name: str, enrich: Enricher) -> None:
        if name in POP_KEYS or name in self.enrichers:
            raise ValueError(f"pop enricher name {name!r} is taken")
        self.enrichers[name] = enrich

    # ---------------------------------------------------------------- cache
    def store(self, call_id: str, entry: dict[str, Any]) -> None:
        self.cache[call_id] = entry
        self.loading.discard(call_id)

    def entry(self, call_id: str) -> dict[str, Any] | None:
        return self.cache.get(call_id) or self._ended.get(call_id)

    def has(self, call_id: str) -> bool:
        return call_id in self.cache

    def finish(self, call: Call) -> dict[str, Any] | None:
        """The call ended: its record takes the preloaded customer and IVR context;
        the entry is kept (bounded) for the ``call.ended`` pop and late readers."""
        self.loading.discard(call.id)
        entry = self.cache.pop(call.id, None)
        if entry is None:
            return None
        call.customer = entry.get("customer", call.customer)
        call.ivr_context = entry.get("ivr", call.ivr_context)
        self._ended[call.id] = entry
        while len(self._ended) > self._keep_ended:
            self._ended.popitem(last=False)
        return entry

    # ------------------------------------------------------------------ pop
    def pop(self, call: Call, agent_id: str | None, now: float | None = None) -> dict[str, Any]:
        """The screen-pop payload: only reads memory (state + preload cache)."""
        now = now if now is not None else self._clock()
        cache = self.entry(call.id) or {}
        waited = None
        if call.queued_at is not None:
            waited = max(0, int((call.answered_at or call.ended_at or now) - call.queued_at))
        out = {
            "call_id": call.id,
            "server": call.server,  # issue 19: the Asterisk server of the call
            "direction": call.direction,
            "origin": call.origin,
            "caller_num": call.caller_num,
            "caller_name": call.caller_name,
            "dialed": call.dialed,
            "status": call.status,
            "queue": call.queue,
            "priority": call.priority,
            "waited": waited,
            "agent_id": agent_id,
            "customer": cache.get("customer", call.customer),
            "ivr": cache.get("ivr", call.ivr_context),
            "previous_interactions": cache.get("previous", []),
            "recording": call.recording,
            "on_hold": call.on_hold,
            "on_hold_seconds": round(call.on_hold_seconds, 3),
            "transfers": list(call.transfers),
            "outcome": call.outcome,
            "end_cause": call.end_cause,
            "end_cause_txt": call.end_cause_txt,
            "talk_time": call.talk_time,
            "disposition": call.disposition,
            "sent_at": now,
            "loading": call.id in self.loading and call.id not in self.cache,
        }
        if self.enrichers:
            enriched = cache.get("enriched") or {}
            for name in self.enrichers:
                out[name] = enriched.get(name)
        return out
