"""Screen-pop notifier: turns call and agent changes into the desk events of
``cti/events.yml`` (``call.ringing`` … ``call.ended``, ``agent.status``), built by
:class:`cti.pops.PopBuilder` and published by :class:`cti.notifier.CtiNotifier`.
Synchronous and memory-only: it runs inline on the AMI read loop."""

from __future__ import annotations

from cti.notifier import CtiNotifier
from cti.pops import PopBuilder
from cti.state import Change, CtiState

KINDS = (
    "call.ringing", "call.answered", "call.missed", "call.transferred", "call.updated", "call.held", "call.unheld",
    "call.ended", "agent.updated",
)


class ScreenPopNotifier:
    def __init__(self, state: CtiState, pops: PopBuilder, notifier: CtiNotifier) -> None:
        self._state = state
        self._pops = pops
        self._notifier = notifier

    def __call__(self, ch: Change, now: float) -> None:
        kind = ch.kind
        if kind == "agent.updated":
            agent = self._state.agents.get(ch.agent_id or "")
            if agent is not None:
                self._notifier.agent_status(agent.to_dict())
            return
        if kind == "call.missed":
            if ch.agent_id:
                self._notifier.call_missed(
                    ch.agent_id, {"call_id": ch.call_id, "agent_id": ch.agent_id, "queue": ch.queue, **(ch.data or {})}
                )
            return
        if kind == "call.ended":
            call = self._state.ended.get(ch.call_id or "")
            if call is not None:
                # every agent who handled it: the last one and those who transferred it on
                agents = {a for a in [call.agent_id, *(t.get("by") for t in call.transfers)] if a}
                self._notifier.call_ended(agents, self._pops.pop(call, call.agent_id, now))
            return
        call = self._state.calls.get(ch.call_id or "")
        if call is None:
            return
        if kind == "call.ringing":
            if ch.agent_id:
                self._notifier.call_ringing(ch.agent_id, self._pops.pop(call, ch.agent_id, now))
        elif kind == "call.answered":
            self._notifier.call_answered(ch.agent_id, self._pops.pop(call, ch.agent_id, now))
        elif kind == "call.transferred":
            data = ch.data or {}
            pop = self._pops.pop(call, call.agent_id, now)
            pop["transfer"] = {k: v for k, v in data.items() if k != "at"}
            # the transferring agent (``by``), the agent who has the call now, the target
            audience = {call.agent_id or "", data.get("to_agent") or "", data.get("by") or ""}
            self._notifier.call_transferred(audience, pop)
        elif call.agent_id:  # call.updated, call.held, call.unheld
            self._notifier.call_updated(call.agent_id, self._pops.pop(call, call.agent_id, now))
