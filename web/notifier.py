"""The ONLY place that emits the web package's outgoing events (documented in ``web/events.yml``).

Audience ``supervisor``: every supervisor/admin websocket session (the wallboard).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from callcore.bus import Bus, Message

EVENTS_FILE = Path(__file__).with_name("events.yml")


class WebNotifier:
    def __init__(self, bus: Bus) -> None:
        self._bus = bus

    def wallboard_update(self, snapshot: dict[str, Any]) -> int:
        return self._bus.publish(Message("wallboard.update", snapshot, frozenset({"supervisor"})))
