"""The recording subscriber of the CTI change dispatcher (``cti/dispatcher.py``).

Registered by the wiring with ``dispatcher.subscribe("recording", sub, kinds=RecordingSubscriber.KINDS)``.
It is a *sync* handler: it reads the live :class:`cti.state.CtiState` (constructor
injection) and hands the call to :meth:`RecordingService.call_changed`, which only
touches memory and spawns owned tasks for AMI actions and database writes.
"""

from __future__ import annotations

from typing import Any


class RecordingSubscriber:
    KINDS = (
        "call.created",  # the service notes calls seen from their start (no row lookup at their end)
        "call.updated", "call.queued", "call.answered", "call.transferred", "call.held", "call.unheld", "call.ended",
    )

    def __init__(self, state: Any, service: Any) -> None:
        self.state = state
        self.service = service

    def __call__(self, change: Any, now: float) -> None:
        call_id = change.call_id or ""
        call = self.state.ended.get(call_id) if change.kind == "call.ended" else self.state.calls.get(call_id)
        if call is not None:
            # Asterisk's clock of the AMI event behind this change (timestampevents); None without one, and for
            # changes that no event caused (a transfer or hold asked over the API, the timer)
            ast = self.state.event_time if getattr(self.state, "event_now", None) == now else None
            self.service.call_changed(change.kind, call, change.agent_id, now, ast)
