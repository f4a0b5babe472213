"""Ports the IVR engine needs from the rest of callcore, with plain defaults.

The engine never imports ``cti``: routing, callbacks and context hand-off
go through these protocols, and the composition root plugs in the CTI
implementations (``cti.routing``). The defaults make the IVR runnable alone
(console, ``callcore dialplan try``, classic AGI without a database).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class RouteRequest:
    queue: str  # the queue the flow asked for
    priority: int  # the priority the flow asked for (0 = normal; higher is served first)
    caller_num: str | None
    vip: bool = False
    context: dict[str, Any] = field(default_factory=dict)  # the IVR context so far


@dataclass(frozen=True, slots=True)
class RouteDecision:
    queue: str  # may differ from the request (overflow)
    priority: int
    timeout: int | None = None  # seconds in queue before giving up (Queue() timeout)
    estimated_wait: int | None = None  # seconds, None when unknown
    offer_callback: bool = False
    reasons: tuple[str, ...] = ()  # human-readable: "vip", "repeat caller within 24h", "overflow: no agent"


class Router(Protocol):
    async def route(self, request: RouteRequest) -> RouteDecision: ...


class PassThroughRouter:
    """Default router: the flow's choice, unchanged."""

    async def route(self, request: RouteRequest) -> RouteDecision:
        return RouteDecision(queue=request.queue, priority=request.priority)


@dataclass(frozen=True, slots=True)
class CallbackRequest:
    call_uniqueid: str
    caller_num: str | None
    number: str  # the number to call back
    queue: str
    requested_time: str | None  # free text / ISO time the caller chose, None = asap
    context: dict[str, Any] = field(default_factory=dict)


class CallbackSink(Protocol):
    async def create_callback(self, request: CallbackRequest) -> str:
        """Store the request so agents see it; returns its id."""


class PopPreload(Protocol):
    """The screen pop's preload at the IVR hand-off (CTI implements it: ``cti.subscribers.
    crm_preload.CrmPreload.prepare``). Called when the flow hands the call to a queue, before
    Asterisk runs ``Queue()``: it starts loading who is calling (CRM record, previous calls,
    this IVR context) and returns the awaitable of that work, or ``None``. The IVR waits for
    it at most ``pop_preload_wait`` seconds, never longer."""

    def prepare(self, uniqueid: str, linkedid: str | None, caller_num: str | None, context: dict[str, Any]) -> Any: ...


class InMemoryCallbackSink:
    """Test double and stand-alone default (console, ``dialplan try``): keeps requests in a list."""

    def __init__(self) -> None:
        self.requests: list[CallbackRequest] = []

    async def create_callback(self, request: CallbackRequest) -> str:
        self.requests.append(request)
        return f"cb-{len(self.requests)}"


class RecordingControl(Protocol):
    """The recording side of a ``collect`` node marked ``sensitive: true`` (card numbers):
    ``active=True`` before the caller types (the recording is muted with MixMonitorMute),
    ``False`` after. Implemented by ``recording.service.RecordingService.sensitive_input``;
    without it (console, classic AGI) nothing is muted, and the digits are still masked
    in the IVR's trace and context."""

    async def sensitive_input(self, call_id: str, active: bool, node: str) -> None: ...

    async def call_entered(self, channel: Any) -> bool:
        """The call enters the IVR (first run on the channel): with the policy's ``start: call``
        the implementation runs ``channel.exec("MixMonitor", "<call id>.wav", <fixed options>)``
        so the IVR is recorded. Returns whether a recording was started."""
