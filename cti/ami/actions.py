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


_SECRET_HEADERS = frozenset({"secret", "key"})


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

    def __repr__(self) -> str:
        # never let a Login secret reach a log line or a traceback
        shown = tuple((k, "***" if k.lower() in _SECRET_HEADERS else v) for k, v in self.headers)
        return f"Action(name={self.name!r}, headers={shown!r}, complete_event={self.complete_event!r})"

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
    #: for list actions: the headers of the closing ``...Complete`` event (``ListItems``...)
    complete_headers: dict[str, str] = field(default_factory=dict)


# ----------------------------------------------------------------- factories
# One small named factory per action (GUIDE §2.5). Header names follow the
# Asterisk 20 AMI documentation (docs.asterisk.org, API_Documentation/AMI_Actions)
# exactly, including MixMonitor's lower-case ``options``. Every value goes
# through Action's CR/LF check; the factories add the checks Action cannot know.


def _required(value: Any, what: str) -> str:
    text = "" if value is None else str(value)
    if not text.strip():
        raise AmiValueError(f"{what} is required")
    return _check(text, what)


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _non_negative(value: int | None, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise AmiValueError(f"{what} must be a non-negative integer, got {value!r}")
    return value


def login(username: str, secret: str) -> Action:
    """``Login``. The secret is masked in ``repr(action)``; the client never logs it."""
    return Action.build("Login", [("Username", _required(username, "username")), ("Secret", _required(secret, "secret"))])


def logoff() -> Action:
    return Action("Logoff")


def ping() -> Action:
    return Action("Ping")


def originate(
    channel: str,
    *,
    context: str | None = None,
    exten: str | None = None,
    priority: int | str = 1,
    application: str | None = None,
    data: str | None = None,
    caller_id: str | None = None,
    timeout_ms: int = 30000,
    variables: Mapping[str, Any] | None = None,
    account: str | None = None,
    async_: bool = True,
    channel_id: str | None = None,
    other_channel_id: str | None = None,
) -> Action:
    """``Originate`` to ``context,exten,priority`` or to ``application(data)``.

    ``variables`` become one ``Variable: name=value`` header each. With
    ``async_=True`` Asterisk answers at once and reports the outcome later in an
    ``OriginateResponse`` event carrying the same ActionID.
    """
    has_dialplan = context is not None or exten is not None
    if has_dialplan == (application is not None):
        raise AmiValueError("originate needs either context+exten or application, not both")
    if has_dialplan and (not context or not exten):
        raise AmiValueError("originate to the dialplan needs both context and exten")
    if data is not None and application is None:
        raise AmiValueError("originate data requires an application")
    _non_negative(timeout_ms, "timeout_ms")
    headers: list[tuple[str, Any]] = [("Channel", _required(channel, "channel"))]
    if has_dialplan:
        headers += [("Context", context), ("Exten", exten), ("Priority", _required(priority, "priority"))]
    else:
        headers += [("Application", _required(application, "application")), ("Data", data)]
    headers += [
        ("Timeout", timeout_ms),
        ("CallerID", caller_id),
        ("Account", account),
        ("Async", _flag(async_)),
        ("ChannelId", channel_id),
        ("OtherChannelId", other_channel_id),
    ]
    for name, value in (variables or {}).items():
        name = _required(name, "variable name")
        if "=" in name:
            raise AmiValueError(f"variable name contains '=': {name!r}")
        headers.append(("Variable", f"{name}={'' if value is None else value}"))
    return Action.build("Originate", headers)


def redirect(
    channel: str,
    context: str,
    exten: str,
    priority: int | str = 1,
    extra_channel: str | None = None,
    extra_context: str | None = None,
    extra_exten: str | None = None,
    extra_priority: int | str | None = None,
) -> Action:
    """``Redirect`` a channel (and optionally a second one, e.g. both legs of a bridge)."""
    headers: list[tuple[str, Any]] = [
        ("Channel", _required(channel, "channel")),
        ("Context", _required(context, "context")),
        ("Exten", _required(exten, "exten")),
        ("Priority", _required(priority, "priority")),
    ]
    if extra_channel is not None:
        headers += [
            ("ExtraChannel", _required(extra_channel, "extra_channel")),
            ("ExtraContext", extra_context if extra_context is not None else context),
            ("ExtraExten", extra_exten if extra_exten is not None else exten),
            ("ExtraPriority", extra_priority if extra_priority is not None else priority),
        ]
    elif extra_context is not None or extra_exten is not None or extra_priority is not None:
        raise AmiValueError("extra_context/extra_exten/extra_priority need extra_channel")
    return Action.build("Redirect", headers)


def hangup(channel: str, cause: int | None = None) -> Action:
    """``Hangup``; ``channel`` may be a name or a ``/regex/`` as Asterisk allows."""
    return Action.build("Hangup", [("Channel", _required(channel, "channel")), ("Cause", _non_negative(cause, "cause"))])


def queue_add(
    queue: str,
    interface: str,
    *,
    member_name: str | None = None,
    penalty: int | None = None,
    paused: bool | None = None,
    reason: str | None = None,
    state_interface: str | None = None,
) -> Action:
    return Action.build(
        "QueueAdd",
        [
            ("Queue", _required(queue, "queue")),
            ("Interface", _required(interface, "interface")),
            ("Penalty", _non_negative(penalty, "penalty")),
            ("Paused", None if paused is None else _flag(paused)),
            ("Reason", reason),
            ("MemberName", member_name),
            ("StateInterface", state_interface),
        ],
    )


def queue_remove(queue: str, interface: str) -> Action:
    return Action.build(
        "QueueRemove", [("Queue", _required(queue, "queue")), ("Interface", _required(interface, "interface"))]
    )


def queue_pause(interface: str, paused: bool, *, queue: str | None = None, reason: str | None = None) -> Action:
    """``QueuePause`` in one queue, or in every queue the interface belongs to when ``queue`` is None."""
    if not isinstance(paused, bool):
        raise AmiValueError(f"paused must be a bool, got {paused!r}")
    return Action.build(
        "QueuePause",
        [("Interface", _required(interface, "interface")), ("Paused", _flag(paused)), ("Queue", queue), ("Reason", reason)],
    )


def queue_penalty(interface: str, penalty: int, queue: str | None = None) -> Action:
    return Action.build(
        "QueuePenalty",
        [
            ("Interface", _required(interface, "interface")),
            ("Penalty", _required(_non_negative(penalty, "penalty"), "penalty")),
            ("Queue", queue),
        ],
    )


def mix_monitor(channel: str, file: str, options: str | None = None, command: str | None = None) -> Action:
    return Action.build(
        "MixMonitor",
        [("Channel", _required(channel, "channel")), ("File", _required(file, "file")), ("options", options), ("Command", command)],
    )


def stop_mix_monitor(channel: str, mixmonitor_id: str | None = None) -> Action:
    return Action.build("StopMixMonitor", [("Channel", _required(channel, "channel")), ("MixMonitorID", mixmonitor_id)])


def mix_monitor_mute(channel: str, state: bool, direction: str = "both") -> Action:
    if direction not in ("read", "write", "both"):
        raise AmiValueError(f"direction must be read, write or both, got {direction!r}")
    return Action.build(
        "MixMonitorMute",
        [("Channel", _required(channel, "channel")), ("Direction", direction), ("State", "1" if state else "0")],
    )


def setvar(variable: str, value: Any, channel: str | None = None) -> Action:
    """``Setvar``: a channel variable, or a global one when ``channel`` is None."""
    return Action.build(
        "Setvar",
        [("Channel", channel), ("Variable", _required(variable, "variable")), ("Value", "" if value is None else value)],
    )


def getvar(variable: str, channel: str | None = None) -> Action:
    return Action.build("Getvar", [("Channel", channel), ("Variable", _required(variable, "variable"))])


def queue_status(queue: str | None = None, member: str | None = None) -> Action:
    """List action: ``QueueParams``/``QueueMember``/``QueueEntry`` events until ``QueueStatusComplete``."""
    return Action.build("QueueStatus", [("Queue", queue), ("Member", member)], "QueueStatusComplete")


def queue_summary(queue: str | None = None) -> Action:
    """List action: ``QueueSummary`` events until ``QueueSummaryComplete``."""
    return Action.build("QueueSummary", [("Queue", queue)], "QueueSummaryComplete")


def core_show_channels() -> Action:
    """List action: ``CoreShowChannel`` events until ``CoreShowChannelsComplete``."""
    return Action("CoreShowChannels", (), "CoreShowChannelsComplete")


_DTMF_DIGITS = frozenset("0123456789*#ABCDabcd")


def play_dtmf(channel: str, digit: str, duration_ms: int | None = None) -> Action:
    if len(digit) != 1 or digit not in _DTMF_DIGITS:
        raise AmiValueError(f"digit must be one DTMF digit (0-9, *, #, A-D), got {digit!r}")
    return Action.build(
        "PlayDTMF",
        [("Channel", _required(channel, "channel")), ("Digit", digit), ("Duration", _non_negative(duration_ms, "duration_ms"))],
    )


def atxfer(channel: str, exten: str, context: str) -> Action:
    """``Atxfer``: attended transfer started by the transferer's ``channel``."""
    return Action.build(
        "Atxfer",
        [("Channel", _required(channel, "channel")), ("Exten", _required(exten, "exten")), ("Context", _required(context, "context"))],
    )


def blind_transfer(channel: str, exten: str, context: str) -> Action:
    """``BlindTransfer``: everything bridged with ``channel`` goes to ``context,exten``."""
    return Action.build(
        "BlindTransfer",
        [("Channel", _required(channel, "channel")), ("Context", _required(context, "context")), ("Exten", _required(exten, "exten"))],
    )


def command(cmd: str) -> Action:
    """``Command``: a CLI command; Asterisk 20 answers with one ``Output`` header per line."""
    return Action.build("Command", [("Command", _required(cmd, "command"))])
