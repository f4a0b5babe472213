"""The ONLY place that emits outgoing CTI events onto the bus.

Every event is documented in ``cti/events.yml`` (name, payload, audience).
Audience keys:

* ``agent:<id>``   — that agent's desk sessions (an agent subscribes to nothing else);
* ``queue:<name>`` — supervisors watching a queue;
* ``queue.stats``  — wallboards / supervisors (the periodic queue statistics feed);
* ``supervisor``   — every supervisor/admin session.

Webhook senders subscribe to everything and filter by event name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from callcore.bus import Bus, new_message
from callcore.loopwatch import FRAME_CLOCK

EVENTS_FILE = Path(__file__).with_name("events.yml")


def _aud(*keys: str | None, extra: Iterable[str] = ()) -> frozenset[str]:
    return frozenset([k for k in keys if k] + list(extra))


class CtiNotifier:
    def __init__(self, bus: Bus) -> None:
        self._bus = bus

    def _emit(self, name: str, payload: dict[str, Any], audience: frozenset[str]) -> int:
        return self._bus.publish(new_message(name, payload, audience, FRAME_CLOCK.at))

    # ------------------------------------------------------------- pops
    def call_ringing(self, agent_id: str, pop: dict[str, Any]) -> int:
        q = pop.get("queue")
        return self._emit("call.ringing", pop, _aud(f"agent:{agent_id}", f"queue:{q}" if q else None))

    def call_answered(self, agent_id: str | None, pop: dict[str, Any]) -> int:
        q = pop.get("queue")
        return self._emit(
            "call.answered", pop, _aud(f"agent:{agent_id}" if agent_id else None, f"queue:{q}" if q else None, "supervisor")
        )

    def call_updated(self, agent_id: str, pop: dict[str, Any]) -> int:
        q = pop.get("queue")
        return self._emit("call.updated", pop, _aud(f"agent:{agent_id}", f"queue:{q}" if q else None))

    def call_transferred(self, agent_ids: Iterable[str], pop: dict[str, Any]) -> int:
        q = pop.get("queue")
        return self._emit(
            "call.transferred", pop, _aud(f"queue:{q}" if q else None, extra=[f"agent:{a}" for a in agent_ids if a])
        )

    def call_missed(self, agent_id: str, payload: dict[str, Any]) -> int:
        q = payload.get("queue")
        return self._emit("call.missed", payload, _aud(f"agent:{agent_id}", f"queue:{q}" if q else None))

    def call_ended(self, agent_ids: Iterable[str], pop: dict[str, Any]) -> int:
        q = pop.get("queue")
        return self._emit(
            "call.ended", pop, _aud(f"queue:{q}" if q else None, "supervisor", extra=[f"agent:{a}" for a in agent_ids if a])
        )

    def call_failed(self, agent_id: str, payload: dict[str, Any]) -> int:
        return self._emit("call.failed", payload, _aud(f"agent:{agent_id}"))

    # ----------------------------------------------------------- agents
    def agent_status(self, agent: dict[str, Any]) -> int:
        queues = agent.get("queues") or {}
        # _aud(f"agent:{id}", "supervisor", extra=[f"queue:{q}" ...]) without its lists (every agent change)
        return self._emit("agent.status", agent, frozenset([f"agent:{agent['agent_id']}", "supervisor", *[f"queue:{q}" for q in queues]]))

    def agent_resync(self, agent_id: str, payload: dict[str, Any]) -> int:
        return self._emit("agent.resync", payload, _aud(f"agent:{agent_id}"))

    # ----------------------------------------------------------- queues
    def queue_stats(self, stats: list[dict[str, Any]], at: float) -> int:
        n = self._emit("queue.stats", {"at": at, "queues": stats}, _aud("queue.stats"))
        for s in stats:
            n += self._emit("queue.stats", {"at": at, "queues": [s]}, _aud(f"queue:{s['queue']}"))
        return n

    # -------------------------------------------------------- callbacks
    def callback_created(self, callback: dict[str, Any], agent_ids: Iterable[str]) -> int:
        return self._emit(
            "callback.created",
            callback,
            _aud(f"queue:{callback['queue']}", "supervisor", extra=[f"agent:{a}" for a in agent_ids]),
        )

    def callback_taken(self, callback: dict[str, Any], agent_ids: Iterable[str]) -> int:
        return self._emit(
            "callback.taken",
            callback,
            _aud(f"queue:{callback['queue']}", "supervisor", extra=[f"agent:{a}" for a in agent_ids]),
        )

    # ------------------------------------------------------------ system
    def resynced(self, payload: dict[str, Any]) -> int:
        return self._emit("cti.resynced", payload, _aud("supervisor"))
