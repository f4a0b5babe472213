"""The ONLY place that emits knowledge-base events onto the bus (documented in ``kb/events.yml``).

Audience keys (the websocket's, see ``cti/notifier.py``): ``agent:<id>`` — that agent's
desk; ``supervisor`` — every supervisor/admin session. Agents subscribe to nothing but
their own key, so a notice for everyone goes to each logged-in agent's key (the list comes
from CTI's live state through the injected ``agents`` callable).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable

from callcore.bus import Bus, Message

EVENTS_FILE = Path(__file__).with_name("events.yml")


class KbNotifier:
    def __init__(self, bus: Bus, agents: Callable[[], Iterable[str]] = lambda: ()) -> None:
        self._bus = bus
        self._agents = agents

    def _emit(self, name: str, payload: dict[str, Any], audience: Iterable[str]) -> int:
        return self._bus.publish(Message(name, payload, frozenset(audience)))

    def notice(self, payload: dict[str, Any]) -> int:
        """A new or changed article on the notice board: every agent must acknowledge it."""
        return self._emit("kb.notice", payload, [*(f"agent:{a}" for a in self._agents()), "supervisor"])

    def expiring(self, owner: str | None, payload: dict[str, Any]) -> int:
        """An owner's published article is past (or near) its validity date."""
        return self._emit("kb.expiring", payload, [*([f"agent:{owner}"] if owner else []), "supervisor"])
