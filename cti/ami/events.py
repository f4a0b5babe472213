"""Typed AMI events: the only shape in which AMI events travel past the adapter.

Why over 500 lines: one frozen dataclass per consumed AMI event plus its translator, in
one table (:data:`TRANSLATORS`); splitting the table would hide which events are consumed.

One translator (:func:`translate`) turns a decoded AMI frame (a ``dict`` of
header name → value, names exactly as Asterisk sends them) into one of the
frozen dataclasses below. Anything not listed in :data:`TRANSLATORS` is an
*unknown* event: :func:`translate` returns ``None`` and the caller counts it.

Field names follow Asterisk 20's AMI documentation and the captures in
``shared/asterisk-captures`` (e.g. ``AgentCalled`` names the agent leg in
``DestChannel`` and the queue member in ``Interface``/``MemberName``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Callable, Mapping

Headers = Mapping[str, str]


def _int(value: str | None, default: int = 0) -> int:
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        try:
            return int(float(value))
        except ValueError:
            return default


def _opt(value: str | None) -> str | None:
    """Asterisk writes ``<unknown>`` (or nothing) for absent caller ids."""
    if value is None or value == "" or value == "<unknown>":
        return None
    return value


#: what :func:`_opt` maps to ``None`` (a set: one hash lookup instead of three comparisons)
_ABSENT = frozenset({None, "", "<unknown>"})
#: the Asterisk header names of a channel snapshot, in :class:`ChannelInfo` field order
_CHANNEL_FIELDS = (
    "Channel", "Uniqueid", "Linkedid", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName",
    "ConnectedLineNum", "ConnectedLineName", "Context", "Exten", "Priority", "Language", "AccountCode",
)
#: prefix (``""``, ``"Dest"``, ``"Transferer"``...) → its 14 header names, built once
_CHANNEL_KEYS: dict[str, tuple[str, ...]] = {}


def _channel_keys(prefix: str) -> tuple[str, ...]:
    keys = tuple(prefix + name for name in _CHANNEL_FIELDS)
    if len(_CHANNEL_KEYS) < 64:  # the prefixes are the few literals of this module; never grows unbounded
        _CHANNEL_KEYS[prefix] = keys
    return keys


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    """The channel snapshot Asterisk attaches to most events (prefix ``""`` or ``"Dest"``)."""

    channel: str
    uniqueid: str
    linkedid: str
    state: int
    state_desc: str
    caller_num: str | None
    caller_name: str | None
    connected_num: str | None
    connected_name: str | None
    context: str
    exten: str
    priority: int
    language: str
    accountcode: str

    @classmethod
    def parse(cls, h: Headers, prefix: str = "") -> "ChannelInfo":
        # hot path (issue 18): header names built once per prefix, ``_int``/``_opt`` inlined for
        # the common values (plain digits; ``<unknown>``), positional construction
        keys = _CHANNEL_KEYS.get(prefix)
        if keys is None:
            keys = _channel_keys(prefix)
        k_chan, k_uid, k_lid, k_state, k_desc, k_cnum, k_cname, k_lnum, k_lname, k_ctx, k_exten, k_prio, k_lang, k_acct = keys
        g = h.get
        uniqueid = g(k_uid, "")
        state = g(k_state)
        prio = g(k_prio)
        cnum = g(k_cnum)
        cname = g(k_cname)
        lnum = g(k_lnum)
        lname = g(k_lname)
        return (_new_channel_info if cls is ChannelInfo else cls)(
            g(k_chan, ""),
            uniqueid,
            g(k_lid, "") or uniqueid,
            int(state) if state and state.isdecimal() else _int(state),
            g(k_desc, ""),
            None if cnum in _ABSENT else cnum,
            None if cname in _ABSENT else cname,
            None if lnum in _ABSENT else lnum,
            None if lname in _ABSENT else lname,
            g(k_ctx, ""),
            g(k_exten, ""),
            int(prio) if prio and prio.isdecimal() else _int(prio),
            g(k_lang, ""),
            g(k_acct, ""),
        )

    @classmethod
    def parse_optional(cls, h: Headers, prefix: str = "") -> "ChannelInfo | None":
        if not h.get(prefix + "Channel"):
            return None
        return cls.parse(h, prefix)


def _slot_constructor(cls: type) -> Callable[..., Any]:
    """A positional constructor for a frozen, slotted dataclass without defaults that sets
    each slot through its member descriptor. The generated frozen ``__init__`` calls
    ``object.__setattr__`` per field (a type lookup each): this is ~45% cheaper, for the
    one object built for nearly every AMI event. Same object: ``__init__`` has no
    ``__post_init__`` and every field is set."""
    names = [f.name for f in fields(cls)]
    assert list(cls.__slots__) == names and not hasattr(cls, "__post_init__")
    ns: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    ns.update({f"_set_{n}": getattr(cls, n).__set__ for n in names})
    body = "".join(f"    _set_{n}(o, {n})\n" for n in names)
    exec(f"def make({', '.join(names)}):\n    o = _new(_cls)\n{body}    return o\n", ns)
    return ns["make"]  # type: ignore[no-any-return]


_new_channel_info = _slot_constructor(ChannelInfo)


@dataclass(frozen=True, slots=True)
class MemberInfo:
    """A queue member as in QueueMember* events (``Interface``) or QueueStatus (``Location``)."""

    queue: str
    name: str
    interface: str
    state_interface: str
    membership: str
    penalty: int
    calls_taken: int
    last_call: int
    last_pause: int
    login_time: int
    in_call: bool
    status: int  # ast_device_state: 1 NOT_INUSE, 2 INUSE, 3 BUSY, 5 UNAVAILABLE, 6 RINGING, ...
    paused: bool
    paused_reason: str
    wrapuptime: int

    @classmethod
    def parse(cls, h: Headers) -> "MemberInfo":
        g = h.get
        interface = g("Interface") or g("Location", "")
        return cls(
            queue=g("Queue", ""),
            name=g("MemberName") or g("Name") or interface,
            interface=interface,
            state_interface=g("StateInterface", "") or interface,
            membership=g("Membership", ""),
            penalty=_int(g("Penalty")),
            calls_taken=_int(g("CallsTaken")),
            last_call=_int(g("LastCall")),
            last_pause=_int(g("LastPause")),
            login_time=_int(g("LoginTime")),
            in_call=g("InCall") == "1",
            status=_int(g("Status")),
            paused=g("Paused") == "1",
            paused_reason=g("PausedReason", ""),
            wrapuptime=_int(g("Wrapuptime")),
        )


# --------------------------------------------------------------------- events
@dataclass(frozen=True, slots=True)
class AmiEvent:
    """Base of every typed event. ``action_id`` is set for events answering a list action.

    ``timestamp``: Asterisk's clock when it generated the event (epoch seconds), from the
    ``Timestamp: 1795395821.348534`` header that ``manager.conf`` ``timestampevents = yes`` adds
    after ``Privilege`` (manager.c: ``"Timestamp: %ld.%06lu"``); ``None`` without it."""

    timestamp: float | None = field(default=None, kw_only=True, compare=False)
    #: the name of the Asterisk server it came from (issue 19): set by the :class:`AmiClient` of that
    #: server (``server=``) as it reads the event, before CTI sees it; ``""``: not tagged
    server: str = field(default="", kw_only=True, compare=False)

    @property
    def name(self) -> str:
        return type(self).__name__


@dataclass(frozen=True, slots=True)
class FullyBooted(AmiEvent):
    uptime: int
    last_reload: int
    status: str


@dataclass(frozen=True, slots=True)
class Shutdown(AmiEvent):
    shutdown: str
    restart: bool


@dataclass(frozen=True, slots=True)
class Newchannel(AmiEvent):
    chan: ChannelInfo


@dataclass(frozen=True, slots=True)
class Newstate(AmiEvent):
    chan: ChannelInfo


@dataclass(frozen=True, slots=True)
class Hangup(AmiEvent):
    chan: ChannelInfo
    cause: int
    cause_txt: str


@dataclass(frozen=True, slots=True)
class DialBegin(AmiEvent):
    chan: ChannelInfo | None  # the caller side; absent for an originated leg
    dest: ChannelInfo
    dial_string: str


@dataclass(frozen=True, slots=True)
class DialEnd(AmiEvent):
    chan: ChannelInfo | None
    dest: ChannelInfo
    dial_status: str


@dataclass(frozen=True, slots=True)
class BridgeEnter(AmiEvent):
    bridge_id: str
    bridge_type: str
    num_channels: int
    chan: ChannelInfo


@dataclass(frozen=True, slots=True)
class BridgeLeave(AmiEvent):
    bridge_id: str
    bridge_type: str
    num_channels: int
    chan: ChannelInfo


@dataclass(frozen=True, slots=True)
class QueueCallerJoin(AmiEvent):
    chan: ChannelInfo
    queue: str
    position: int
    count: int


@dataclass(frozen=True, slots=True)
class QueueCallerLeave(AmiEvent):
    chan: ChannelInfo
    queue: str
    position: int
    count: int


@dataclass(frozen=True, slots=True)
class QueueCallerAbandon(AmiEvent):
    chan: ChannelInfo
    queue: str
    position: int
    original_position: int
    hold_time: int


@dataclass(frozen=True, slots=True)
class _AgentEvent(AmiEvent):
    chan: ChannelInfo  # the caller (queue entry) channel
    dest: ChannelInfo  # the agent leg being rung / bridged
    queue: str
    interface: str
    member_name: str


@dataclass(frozen=True, slots=True)
class AgentCalled(_AgentEvent):
    pass


@dataclass(frozen=True, slots=True)
class AgentConnect(_AgentEvent):
    hold_time: int
    ring_time: int


@dataclass(frozen=True, slots=True)
class AgentComplete(_AgentEvent):
    hold_time: int
    talk_time: int
    reason: str  # "caller" | "agent" | "transfer"


@dataclass(frozen=True, slots=True)
class AgentRingNoAnswer(_AgentEvent):
    ring_time: int


@dataclass(frozen=True, slots=True)
class AgentDump(_AgentEvent):
    pass


@dataclass(frozen=True, slots=True)
class QueueMemberAdded(AmiEvent):
    member: MemberInfo


@dataclass(frozen=True, slots=True)
class QueueMemberRemoved(AmiEvent):
    member: MemberInfo


@dataclass(frozen=True, slots=True)
class QueueMemberPause(AmiEvent):
    member: MemberInfo


@dataclass(frozen=True, slots=True)
class QueueMemberStatus(AmiEvent):
    member: MemberInfo


@dataclass(frozen=True, slots=True)
class QueueMemberPenalty(AmiEvent):
    member: MemberInfo


@dataclass(frozen=True, slots=True)
class MixMonitorStart(AmiEvent):
    chan: ChannelInfo


@dataclass(frozen=True, slots=True)
class MixMonitorStop(AmiEvent):
    chan: ChannelInfo


@dataclass(frozen=True, slots=True)
class MixMonitorMute(AmiEvent):
    chan: ChannelInfo
    direction: str  # read | write | both
    state: bool


@dataclass(frozen=True, slots=True)
class DTMFBegin(AmiEvent):
    chan: ChannelInfo
    digit: str
    direction: str


@dataclass(frozen=True, slots=True)
class DTMFEnd(AmiEvent):
    chan: ChannelInfo
    digit: str
    direction: str
    duration_ms: int


@dataclass(frozen=True, slots=True)
class Hold(AmiEvent):
    chan: ChannelInfo
    music_class: str


@dataclass(frozen=True, slots=True)
class Unhold(AmiEvent):
    chan: ChannelInfo


@dataclass(frozen=True, slots=True)
class BlindTransfer(AmiEvent):
    result: str
    transferer: ChannelInfo
    transferee: ChannelInfo | None
    context: str
    extension: str


@dataclass(frozen=True, slots=True)
class AttendedTransfer(AmiEvent):
    result: str
    orig_transferer: ChannelInfo
    second_transferer: ChannelInfo | None
    transfer_target: ChannelInfo | None


@dataclass(frozen=True, slots=True)
class OriginateResponse(AmiEvent):
    action_id: str
    response: str  # Success | Failure
    channel: str
    context: str
    exten: str
    reason: int
    uniqueid: str | None
    caller_num: str | None
    caller_name: str | None


# --- events that answer list actions (CoreShowChannels, QueueStatus, QueueSummary)
@dataclass(frozen=True, slots=True)
class CoreShowChannel(AmiEvent):
    action_id: str
    chan: ChannelInfo
    application: str
    application_data: str
    duration: str
    bridge_id: str


@dataclass(frozen=True, slots=True)
class QueueParams(AmiEvent):
    action_id: str
    queue: str
    strategy: str
    calls: int
    holdtime: int
    talktime: int
    completed: int
    abandoned: int
    service_level: int
    service_level_perf: float


@dataclass(frozen=True, slots=True)
class QueueMember(AmiEvent):
    action_id: str
    member: MemberInfo


@dataclass(frozen=True, slots=True)
class QueueEntry(AmiEvent):
    action_id: str
    queue: str
    position: int
    channel: str
    uniqueid: str
    caller_num: str | None
    caller_name: str | None
    wait: int
    priority: int


@dataclass(frozen=True, slots=True)
class QueueSummary(AmiEvent):
    action_id: str
    queue: str
    logged_in: int
    available: int
    callers: int
    hold_time: int
    talk_time: int
    longest_hold_time: int


# ---------------------------------------------------------------- translator
def _agent_fields(h: Headers) -> tuple[ChannelInfo, ChannelInfo, str, str, str]:
    interface = h.get("Interface", "")
    return (
        ChannelInfo.parse(h),
        ChannelInfo.parse(h, "Dest"),
        h.get("Queue", ""),
        interface,
        h.get("MemberName", "") or interface,
    )


def _float(value: str | None) -> float:
    try:
        return float(value or 0)
    except ValueError:
        return 0.0


TRANSLATORS: dict[str, Callable[[Headers], AmiEvent]] = {
    "FullyBooted": lambda h: FullyBooted(_int(h.get("Uptime")), _int(h.get("LastReload")), h.get("Status", "")),
    "Shutdown": lambda h: Shutdown(h.get("Shutdown", ""), h.get("Restart", "").lower() in ("true", "yes", "1")),
    "Newchannel": lambda h: Newchannel(ChannelInfo.parse(h)),
    "Newstate": lambda h: Newstate(ChannelInfo.parse(h)),
    "Hangup": lambda h: Hangup(ChannelInfo.parse(h), _int(h.get("Cause")), h.get("Cause-txt", "")),
    "DialBegin": lambda h: DialBegin(ChannelInfo.parse_optional(h), ChannelInfo.parse(h, "Dest"), h.get("DialString", "")),
    "DialEnd": lambda h: DialEnd(ChannelInfo.parse_optional(h), ChannelInfo.parse(h, "Dest"), h.get("DialStatus", "")),
    "BridgeEnter": lambda h: BridgeEnter(
        h.get("BridgeUniqueid", ""), h.get("BridgeType", ""), _int(h.get("BridgeNumChannels")), ChannelInfo.parse(h)
    ),
    "BridgeLeave": lambda h: BridgeLeave(
        h.get("BridgeUniqueid", ""), h.get("BridgeType", ""), _int(h.get("BridgeNumChannels")), ChannelInfo.parse(h)
    ),
    "QueueCallerJoin": lambda h: QueueCallerJoin(
        ChannelInfo.parse(h), h.get("Queue", ""), _int(h.get("Position")), _int(h.get("Count"))
    ),
    "QueueCallerLeave": lambda h: QueueCallerLeave(
        ChannelInfo.parse(h), h.get("Queue", ""), _int(h.get("Position")), _int(h.get("Count"))
    ),
    "QueueCallerAbandon": lambda h: QueueCallerAbandon(
        ChannelInfo.parse(h),
        h.get("Queue", ""),
        _int(h.get("Position")),
        _int(h.get("OriginalPosition")),
        _int(h.get("HoldTime")),
    ),
    "AgentCalled": lambda h: AgentCalled(*_agent_fields(h)),
    "AgentConnect": lambda h: AgentConnect(*_agent_fields(h), _int(h.get("HoldTime")), _int(h.get("RingTime"))),
    "AgentComplete": lambda h: AgentComplete(
        *_agent_fields(h), _int(h.get("HoldTime")), _int(h.get("TalkTime")), h.get("Reason", "")
    ),
    "AgentRingNoAnswer": lambda h: AgentRingNoAnswer(*_agent_fields(h), _int(h.get("RingTime"))),
    "AgentDump": lambda h: AgentDump(*_agent_fields(h)),
    "QueueMemberAdded": lambda h: QueueMemberAdded(MemberInfo.parse(h)),
    "QueueMemberRemoved": lambda h: QueueMemberRemoved(MemberInfo.parse(h)),
    "QueueMemberPause": lambda h: QueueMemberPause(MemberInfo.parse(h)),
    "QueueMemberStatus": lambda h: QueueMemberStatus(MemberInfo.parse(h)),
    "QueueMemberPenalty": lambda h: QueueMemberPenalty(MemberInfo.parse(h)),
    "MixMonitorStart": lambda h: MixMonitorStart(ChannelInfo.parse(h)),
    "MixMonitorStop": lambda h: MixMonitorStop(ChannelInfo.parse(h)),
    "MixMonitorMute": lambda h: MixMonitorMute(
        ChannelInfo.parse(h), h.get("Direction", "both"), h.get("State", "") in ("1", "on", "true", "yes")
    ),
    "DTMFBegin": lambda h: DTMFBegin(ChannelInfo.parse(h), h.get("Digit", ""), h.get("Direction", "")),
    "DTMFEnd": lambda h: DTMFEnd(
        ChannelInfo.parse(h), h.get("Digit", ""), h.get("Direction", ""), _int(h.get("DurationMs"))
    ),
    "Hold": lambda h: Hold(ChannelInfo.parse(h), h.get("MusicClass", "")),
    "Unhold": lambda h: Unhold(ChannelInfo.parse(h)),
    "BlindTransfer": lambda h: BlindTransfer(
        h.get("Result", ""),
        ChannelInfo.parse(h, "Transferer"),
        ChannelInfo.parse_optional(h, "Transferee"),
        h.get("Context", ""),
        h.get("Extension", ""),
    ),
    "AttendedTransfer": lambda h: AttendedTransfer(
        h.get("Result", ""),
        ChannelInfo.parse(h, "OrigTransferer"),
        ChannelInfo.parse_optional(h, "SecondTransferer"),
        ChannelInfo.parse_optional(h, "TransferTarget"),
    ),
    "OriginateResponse": lambda h: OriginateResponse(
        h.get("ActionID", ""),
        h.get("Response", ""),
        h.get("Channel", ""),
        h.get("Context", ""),
        h.get("Exten", ""),
        _int(h.get("Reason")),
        _opt(h.get("Uniqueid")),
        _opt(h.get("CallerIDNum")),
        _opt(h.get("CallerIDName")),
    ),
    "CoreShowChannel": lambda h: CoreShowChannel(
        h.get("ActionID", ""),
        ChannelInfo.parse(h),
        h.get("Application", ""),
        h.get("ApplicationData", ""),
        h.get("Duration", ""),
        h.get("BridgeId", ""),
    ),
    "QueueParams": lambda h: QueueParams(
        h.get("ActionID", ""),
        h.get("Queue", ""),
        h.get("Strategy", ""),
        _int(h.get("Calls")),
        _int(h.get("Holdtime")),
        _int(h.get("TalkTime")),
        _int(h.get("Completed")),
        _int(h.get("Abandoned")),
        _int(h.get("ServiceLevel")),
        _float(h.get("ServicelevelPerf")),
    ),
    "QueueMember": lambda h: QueueMember(h.get("ActionID", ""), MemberInfo.parse(h)),
    "QueueEntry": lambda h: QueueEntry(
        h.get("ActionID", ""),
        h.get("Queue", ""),
        _int(h.get("Position")),
        h.get("Channel", ""),
        h.get("Uniqueid", ""),
        _opt(h.get("CallerIDNum")),
        _opt(h.get("CallerIDName")),
        _int(h.get("Wait")),
        _int(h.get("Priority")),
    ),
    "QueueSummary": lambda h: QueueSummary(
        h.get("ActionID", ""),
        h.get("Queue", ""),
        _int(h.get("LoggedIn")),
        _int(h.get("Available")),
        _int(h.get("Callers")),
        _int(h.get("HoldTime")),
        _int(h.get("TalkTime")),
        _int(h.get("LongestHoldTime")),
    ),
}

#: Event names callcore consumes. The AMI reader may drop any other event *before*
#: decoding it (cheap noise filter: VarSet, Newexten, AGIExec*, RTCP*, ...).
CONSUMED_EVENTS: frozenset[str] = frozenset(TRANSLATORS)


def translate(headers: Headers) -> AmiEvent | None:
    """Turn one AMI event frame into a typed event, or ``None`` if callcore does not consume it."""
    fn = TRANSLATORS.get(headers.get("Event", ""))
    if fn is None:
        return None
    event = fn(headers)
    stamp = headers.get("Timestamp")
    if stamp:
        object.__setattr__(event, "timestamp", parse_timestamp(stamp))
    return event


def parse_timestamp(text: str) -> float | None:
    """``1795395821.348534`` (seconds.microseconds) → float; anything else → ``None``."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value > 0 and value == value and value != float("inf") else None
