"""The narrow ports the CTI services talk through, and the one translation of
AMI failures into domain errors.

* :class:`AmiPort` — ``send(action)``; the AMI client implements it, the test
  double is :class:`cti.testing.FakeAmi`, a process without the AMI part uses
  ``callcore.wiring.NoAmi`` (every call-control request answers 503).
* :class:`IvrContextSource` — the IVR's stored context of a call (in memory
  first, then the ``ivr_sessions`` table).
"""

from __future__ import annotations

from typing import Any, Protocol

from cti.ami.actions import Action, AmiActionError, AmiNotConnected, AmiResponse, AmiTimeout
from cti.errors import AmiFailed, AmiUnavailable, NotFound

_NO_CHANNEL = ("no such channel", "does not exist", "not found", "unable to find")


class AmiPort(Protocol):
    async def send(self, action: Action) -> AmiResponse: ...


class IvrContextSource(Protocol):
    def context_for(self, uniqueid: str) -> dict[str, Any] | None: ...  # may also be a coroutine function


async def send(ami: AmiPort, action: Action, *, missing: str = "no such call") -> AmiResponse:
    """Send an action a request waits on; AMI failures become 404/502/503."""
    try:
        return await ami.send(action)
    except AmiNotConnected as exc:
        raise AmiUnavailable(f"Asterisk is not connected: {exc}") from None
    except AmiTimeout as exc:
        raise AmiFailed(f"Asterisk did not answer {action.name}: {exc}") from None
    except AmiActionError as exc:
        if any(s in exc.message.lower() for s in _NO_CHANNEL):
            raise NotFound(f"{missing} ({exc.message})") from None
        raise AmiFailed(f"Asterisk refused {action.name}: {exc.message}") from None


def is_live(ami: AmiPort) -> bool:
    """True when the state mirrors Asterisk: the AMI link is up and resynced. (A port
    without ``state``, such as a test double, is taken as live.)"""
    return getattr(ami, "state", "connected") == "connected"
