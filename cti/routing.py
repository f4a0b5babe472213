"""Routing: the engine decides, Asterisk enforces (queue, priority, timeout).

:func:`decide` is pure: the IVR's request, the queue's settings, the live load
of the queue (and of its overflow queue) and what we know about the caller
(VIP, repeat caller) → :class:`ivr.ports.RouteDecision`.

:class:`CtiRouter` implements the IVR's ``Router`` port by gathering those
facts from the live :class:`cti.state.CtiState`, the CRM and the call history.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from cti.state import CtiState, QueueSettings
from ivr.ports import RouteDecision, RouteRequest

log = logging.getLogger("callcore.cti.routing")


@dataclass(frozen=True, slots=True)
class QueueLoad:
    logged_in: int  # members logged in (paused included)
    staffed: int  # logged in and not paused (ready, ringing, on a call, wrap-up)
    available: int  # ready right now
    waiting: int  # callers already waiting
    avg_handle_seconds: int


@dataclass(frozen=True, slots=True)
class CallerFacts:
    vip: bool = False
    repeat_calls: int = 0  # calls from this number within the repeat window
    repeat_hours: int = 24


def estimate_wait(load: QueueLoad) -> int | None:
    """Seconds a new caller would wait; ``None`` when nobody can answer (no staffed agent)."""
    if load.staffed <= 0:
        return None
    if load.available > load.waiting:
        return 0
    ahead = load.waiting - load.available + 1
    return int(math.ceil(ahead * load.avg_handle_seconds / load.staffed))


def decide(
    request: RouteRequest,
    settings: QueueSettings,
    load: QueueLoad,
    facts: CallerFacts,
    overflow_load: QueueLoad | None = None,
    *,
    load_known: bool = True,
) -> RouteDecision:
    """``load_known=False``: this process has no live view of the queues (no AMI part,
    or the link is down): decide the priority only — an empty state must not read as
    "no agent logged in" and send every caller to overflow or a callback offer."""
    reasons: list[str] = []
    priority = request.priority
    if facts.vip or request.vip:
        priority = max(priority, settings.vip_priority)
        reasons.append("vip")
    elif facts.repeat_calls > 0:
        priority = max(priority, settings.repeat_priority)
        reasons.append(f"repeat caller within {facts.repeat_hours}h")

    queue = request.queue
    if not load_known:
        reasons.append("queue load unknown here (no live AMI view): no overflow or callback decision")
        return RouteDecision(queue=queue, priority=priority, reasons=tuple(reasons))
    chosen_load = load
    overflow = settings.overflow_queue
    est = estimate_wait(load)
    if overflow and overflow != queue:
        ctx = request.context or {}
        if ctx.get("overflow_from") == queue or ctx.get("queue_timeout"):
            queue, chosen_load = overflow, overflow_load
            reasons.append("overflow: wait threshold reached")
        elif load.logged_in == 0 and settings.overflow_when_no_agent:
            queue, chosen_load = overflow, overflow_load
            reasons.append("overflow: no agent logged in")
        elif settings.overflow_after_seconds is not None and est is not None and est >= settings.overflow_after_seconds:
            other = estimate_wait(overflow_load) if overflow_load is not None else None
            if other is not None and other < est:
                queue, chosen_load = overflow, overflow_load
                reasons.append(f"overflow: estimated wait {est}s")

    final_est = estimate_wait(chosen_load) if chosen_load is not None else None
    # No Queue() timeout for the overflow threshold: callcore watches the waiting callers
    # and redirects them to the overflow queue when the threshold passes (CtiService timer).
    timeout = None
    offer = False
    if settings.callback_after_seconds is not None:
        if final_est is None or final_est >= settings.callback_after_seconds:
            offer = True
            reasons.append("callback offered: " + ("no agent" if final_est is None else f"estimated wait {final_est}s"))
    return RouteDecision(
        queue=queue,
        priority=priority,
        timeout=timeout,
        estimated_wait=final_est,
        offer_callback=offer,
        reasons=tuple(reasons),
    )


def queue_load(state: CtiState, queue: str) -> QueueLoad:
    q = state.queues.get(queue)
    members = [state.agents[a] for a in (q.members if q else ()) if a in state.agents]
    logged = [a for a in members if a.logged_in]
    # agents in wrap-up (callcore pauses them with reason "wrapup") will be back: they count as staffed
    staffed = [
        a for a in logged
        if not a.paused or a.pause_reason == "wrapup" or a.wrapup_until is not None or a.current_call or a.ringing_call
    ]
    available = [a for a in logged if a.status == "ready"]
    settings = state.settings_for(queue)
    avg = settings.default_handle_seconds
    if q is not None and q.completed and q.talk_seconds_total:
        avg = max(1, q.talk_seconds_total // q.completed)
    return QueueLoad(
        logged_in=len(logged),
        staffed=len(staffed),
        available=len(available),
        waiting=len(q.waiting) if q else 0,
        avg_handle_seconds=avg,
    )


CustomerLookup = Callable[[str], Awaitable[dict[str, Any] | None]]
RepeatCount = Callable[[str, int], Awaitable[int]]


class CtiRouter:
    """The IVR ``Router``: live load + CRM + call history → :func:`decide`."""

    def __init__(
        self,
        state: CtiState,
        *,
        lookup_customer: CustomerLookup,
        count_recent_calls: RepeatCount,
        repeat_caller_hours: int = 24,
        lookup_timeout: float = 1.0,
        live: Callable[[], bool] = lambda: True,
    ) -> None:
        self._state = state
        self._live = live
        self._lookup = lookup_customer
        self._count = count_recent_calls
        self._hours = repeat_caller_hours
        self._timeout = lookup_timeout
        self.decisions = 0

    async def route(self, request: RouteRequest) -> RouteDecision:
        vip = request.vip
        repeat = 0
        if request.caller_num:
            customer, repeat = await asyncio.gather(
                self._bounded(self._lookup(request.caller_num), None),
                self._bounded(self._count(request.caller_num, self._hours), 0),
            )
            vip = vip or bool((customer or {}).get("vip"))
        settings = self._state.settings_for(request.queue)
        load = queue_load(self._state, request.queue)
        overflow_load = queue_load(self._state, settings.overflow_queue) if settings.overflow_queue else None
        facts = CallerFacts(vip=vip, repeat_calls=repeat or 0, repeat_hours=self._hours)
        decision = decide(request, settings, load, facts, overflow_load, load_known=self._live())
        self.decisions += 1
        log.info("route %s → %s prio=%s (%s)", request.queue, decision.queue, decision.priority, ", ".join(decision.reasons))
        return decision

    async def _bounded(self, aw: Awaitable[Any], default: Any) -> Any:
        try:
            return await asyncio.wait_for(aw, self._timeout)
        except asyncio.TimeoutError:
            log.warning("routing fact lookup timed out after %.1fs", self._timeout)
            return default
        except Exception:  # a broken CRM must not stop the call from being routed
            log.exception("routing fact lookup failed")
            return default
