"""AMI actions: one small named factory per action the product uses.

An :class:`Action` is immutable and validated at construction: a header
name or value containing CR or LF is refused, because it would inject another
header — or a whole other action — into the AMI stream.

The client (``cti.ami.client``) adds the ``ActionID`` and writes
``Action.to_bytes(action_id)``; it answers with :class:`AmiResponse` or raises
:class:`AmiActionError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping


class AmiError(Exception):
    """Base of every AMI failure."""


class AmiValueError(AmiError, ValueError):
    """An action was built with a value that cannot be sent (CR/LF, empty name...)."""


class AmiActionError(AmiError):
    """Asterisk answered ``Response: Error``. ``message`` is Asterisk's own text."""

    def __init__(self, action: str, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(f"{action}: {message}")
        self.action = action
        self.message = message
        self.headers = dict(headers or {})


class AmiTimeout(AmiError):
    """No response for an action within its timeout."""


class AmiNotConnected(AmiError):
    """The AMI link is down (or not logged in); the action was not sent."""


class AmiAuthError(AmiError):
    """Login refused (``Authentication failed``): a configuration problem, not a network one."""


def _check(text: str, what: str) -> str:
    if "\r" in text or "\n" in text:
        raise AmiValueError(f"{what} contains CR/LF: {text!r}")
    return text


@dataclass(frozen=True, slots=True)
class Action:
    name: str
    headers: tuple[tuple[str, str], ...] = ()
    #: list actions answer with events until an event named ``complete_event``
    complete_event: str | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise AmiValueError("action name is empty")
        _check(self.name, "action name")
        for k, v in self.headers:
            if not k or ":" in k:
                raise AmiValueError(f"bad header name {k!r}")
            _check(k, "header name")
            _check(v, f"header {k}")

    @classmethod
    def make(cls, name: str, complete_event: str | None = None, **headers: Any) -> "Action":
        return cls.build(name, headers.items(), complete_event)

    @classmethod
    def build(
        cls, name: str, headers: Iterable[tuple[str, Any]], complete_event: str | None = None
    ) -> "Action":
        items: list[tuple[str, str]] = []
        for k, v in headers:
            if v is None:
                continue
            if isinstance(v, bool):
                v = "true" if v else "false"
            items.append((k, str(v)))
        return cls(name, tuple(items), complete_event)

    def get(self, key: str, default: str | None = None) -> str | None:
        for k, v in self.headers:
            if k.lower() == key.lower():
                return v
        return default

    def to_bytes(self, action_id: str) -> bytes:
        _check(action_id, "ActionID")
        lines = [f"Action: {self.name}", f"ActionID: {action_id}"]
        lines.extend(f"{k}: {v}" for k, v in self.headers)
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


@dataclass(slots=True)
class AmiResponse:
    """Asterisk's answer. For list actions, ``events`` holds the typed events that followed."""

    action: str
    success: bool
    message: str
    headers: dict[str, str]
    events: list[Any] = field(default_factory=list)  # list[cti.ami.events.AmiEvent]
    #: raw header dicts of list events callcore has no typed class for
    raw_events: list[dict[str, str]] = field(default_factory=list)
