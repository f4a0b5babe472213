"""The ONLY place that emits outgoing recording events onto the bus (documented in
``recording/events.yml``): a desk shows "recording paused" while a card number is read,
supervisors see processing results."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from callcore.bus import Bus, Message

EVENTS_FILE = Path(__file__).with_name("events.yml")


class RecordingNotifier:
    def __init__(self, bus: Bus | None) -> None:
        self._bus = bus

    def _emit(self, name: str, payload: dict[str, Any], agents: Iterable[str | None] = ()) -> int:
        if self._bus is None:
            return 0
        audience = frozenset({f"agent:{a}" for a in agents if a} | {"supervisor"})
        return self._bus.publish(Message(name, payload, audience))

    def paused(self, agents: Iterable[str | None], payload: dict[str, Any]) -> int:
        return self._emit("recording.paused", payload, agents)

    def resumed(self, agents: Iterable[str | None], payload: dict[str, Any]) -> int:
        return self._emit("recording.resumed", payload, agents)

    def processed(self, payload: dict[str, Any]) -> int:
        return self._emit("recording.processed", payload)
