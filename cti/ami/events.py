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

from dataclasses import MISSING, dataclass, field, fields
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
#: ``"0"``..``"999"`` → int: ``ChannelState`` and ``Priority`` are small numbers on nearly every
#: event; one dict lookup instead of ``isdecimal`` + ``int`` (anything else goes through :func:`_int`)
_SMALL_INTS: dict[str, int] = {str(i): i for i in range(1000)}
#: the Asterisk header names of a channel snapshot, in :class:`ChannelInfo` field order
_CHANNEL_FIELDS = (
    "Channel", "Uniqueid", "Linkedid", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName",
    "ConnectedLineNum", "ConnectedLineName", "Context", "Exten", "Priority", "Language", "AccountCode",
)


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
        if cls is ChannelInfo:
            return _channel_parser(prefix)(h)
        return cls(*_channel_values(h, prefix))

    @classmethod
    def parse_optional(cls, h: Headers, prefix: str = "") -> "ChannelInfo | None":
        if not h.get(prefix + "Channel"):
            return None
        return cls.parse(h, prefix)


def _channel_values(h: Headers, prefix: str) -> tuple[Any, ...]:
    """The 14 field values of a channel snapshot (the reference the generated parsers follow)."""
    g = h.get
    k = [prefix + name for name in _CHANNEL_FIELDS]
    uniqueid = g(k[1], "")
    return (
        g(k[0], ""), uniqueid, g(k[2], "") or uniqueid, _int(g(k[3])), g(k[4], ""),
        _opt(g(k[5])), _opt(g(k[6])), _opt(g(k[7])), _opt(g(k[8])),
        g(k[9], ""), g(k[10], ""), _int(g(k[11])), g(k[12], ""), g(k[13], ""),
    )


def _twin_constructor(cls: type) -> Callable[..., Any]:
    """A positional constructor for a frozen, slotted dataclass based on ``object`` with no
    defaults, ~2× cheaper than setting each slot through its descriptor and ~3× cheaper than the
    generated frozen ``__init__`` (``object.__setattr__`` per field, a type lookup each): the
    object is built as an instance of a plain twin class with the same slots (specialised slot
    stores) and then given its real class — CPython allows ``__class__`` assignment between
    classes of the same layout (same base, same slot names in the same order), and the result
    is the same object the dataclass builds: same type, fields, ``==``, ``hash``, ``repr``, still
    frozen. Issue 18: a ChannelInfo is built for nearly every AMI event, often two."""
    names = [f.name for f in fields(cls)]
    assert cls.__bases__ == (object,) and list(cls.__slots__) == names and not hasattr(cls, "__post_init__")
    assert all(f.default is MISSING and f.default_factory is MISSING and f.init for f in fields(cls))
    ns: dict[str, Any] = {}
    init = "".join(f"        self.{n} = {n}\n" for n in names)
    exec(f"class Twin:\n    __slots__ = {tuple(names)!r}\n    def __init__(self, {', '.join(names)}):\n{init}", ns)
    twin = ns["Twin"]
    twin.__qualname__ = twin.__name__ = f"_{cls.__name__}Twin"
    ns = {"_twin": twin, "_cls": cls}
    exec(f"def make({', '.join(names)}):\n    o = _twin({', '.join(names)})\n    o.__class__ = _cls\n    return o\n", ns)
    make = ns["make"]
    probe = make(*range(len(names)))  # refuses at import time if this Python does not allow it
    assert type(probe) is cls and [getattr(probe, n) for n in names] == list(range(len(names)))
    return make  # type: ignore[no-any-return]


def _slot_constructor(cls: type) -> Callable[..., Any]:
    """A constructor for a frozen, slotted dataclass (fields inherited or not; keyword-only
    fields with plain defaults, e.g. :class:`AmiEvent`'s ``timestamp``/``server``) that sets
    each slot through its member descriptor: the generated frozen ``__init__`` calls
    ``object.__setattr__`` per field (a type lookup each), this is ~45 % cheaper. Same object:
    no ``__post_init__``, every field set. Same call signature as the class."""
    flds = fields(cls)
    assert not hasattr(cls, "__post_init__") and cls.__dictoffset__ == 0  # slotted all the way down
    assert all(f.default_factory is MISSING and f.init and (f.kw_only or f.default is MISSING) for f in flds)
    pos = [f.name for f in flds if not f.kw_only]
    kw = [f for f in flds if f.kw_only]
    ns: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    ns.update({f"_set_{f.name}": getattr(cls, f.name).__set__ for f in flds})  # member descriptors, found along the MRO
    ns.update({f"_default_{f.name}": f.default for f in kw})
    params = ", ".join(pos + (["*"] + [f"{f.name}=_default_{f.name}" for f in kw] if kw else []))
    body = "".join(f"    _set_{f.name}(o, {f.name})\n" for f in flds)
    exec(f"def make({params}):\n    o = _new(_cls)\n{body}    return o\n", ns)
    make = ns["make"]
    make.__qualname__ = make.__name__ = f"new_{cls.__name__}"
    return make  # type: ignore[no-any-return]


_new_channel_info = _twin_constructor(ChannelInfo)
#: prefix (``""``, ``"Dest"``, ``"Transferer"``...) → its generated parser
_CHANNEL_PARSERS: dict[str, Callable[[Headers], ChannelInfo]] = {}


def _channel_parser(prefix: str) -> Callable[[Headers], ChannelInfo]:
    """``h → ChannelInfo`` for one header prefix, generated once per prefix with the 14 header
    names as constants and ``_int``/``_opt`` inlined for the common values (small numbers,
    ``<unknown>``): what :func:`_channel_values` computes, without its per-call work (issue 18)."""
    fn = _CHANNEL_PARSERS.get(prefix)
    if fn is not None:
        return fn
    k = [repr(prefix + name) for name in _CHANNEL_FIELDS]
    src = f"""def parse(h):
    g = h.get
    uniqueid = g({k[1]}, "")
    state = g({k[3]})
    prio = g({k[11]})
    cnum = g({k[5]})
    cname = g({k[6]})
    lnum = g({k[7]})
    lname = g({k[8]})
    return _make(
        g({k[0]}, ""),
        uniqueid,
        g({k[2]}, "") or uniqueid,
        _small[state] if state in _small else _int(state),
        g({k[4]}, ""),
        None if cnum in _absent else cnum,
        None if cname in _absent else cname,
        None if lnum in _absent else lnum,
        None if lname in _absent else lname,
        g({k[9]}, ""),
        g({k[10]}, ""),
        _small[prio] if prio in _small else _int(prio),
        g({k[12]}, ""),
        g({k[13]}, ""),
    )
"""
    ns: dict[str, Any] = {"_make": _new_channel_info, "_small": _SMALL_INTS, "_int": _int, "_absent": _ABSENT}
    exec(src, ns)
    fn = ns["parse"]
    if len(_CHANNEL_PARSERS) < 64:  # the prefixes are the few literals of this module; never grows unbounded
        _CHANNEL_PARSERS[prefix] = fn
    return fn  # type: ignore[no-any-return]


_chan = _channel_parser("")
_dest = _channel_parser("Dest")


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
        return (_new_member_info if cls is MemberInfo else cls)(
            g("Queue", ""),
            g("MemberName") or g("Name") or interface,
            interface,
            g("StateInterface", "") or interface,
            g("Membership", ""),
            _int(g("Penalty")),
            _int(g("CallsTaken")),
            _int(g("LastCall")),
            _int(g("LastPause")),
            _int(g("LoginTime")),
            g("InCall") == "1",
            _int(g("Status")),
            g("Paused") == "1",
            g("PausedReason", ""),
            _int(g("Wrapuptime")),
        )


_new_member_info = _twin_constructor(MemberInfo)


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
        _chan(h),
        _dest(h),
        h.get("Queue", ""),
        interface,
        h.get("MemberName", "") or interface,
    )


def _float(value: str | None) -> float:
    try:
        return float(value or 0)
    except ValueError:
        return 0.0


def _translators(new: Callable[[type], Callable[..., AmiEvent]]) -> dict[str, Callable[[Headers], AmiEvent]]:
    """The translator table, with ``new(cls)`` as each event class's constructor: the generated
    slot constructors for :data:`TRANSLATORS` (issue 18), the classes themselves for the
    reference table the tests compare it with, frame by frame, on every capture."""
    AgentCalled_ = new(AgentCalled)
    AgentComplete_ = new(AgentComplete)
    AgentConnect_ = new(AgentConnect)
    AgentDump_ = new(AgentDump)
    AgentRingNoAnswer_ = new(AgentRingNoAnswer)
    AttendedTransfer_ = new(AttendedTransfer)
    BlindTransfer_ = new(BlindTransfer)
    BridgeEnter_ = new(BridgeEnter)
    BridgeLeave_ = new(BridgeLeave)
    CoreShowChannel_ = new(CoreShowChannel)
    DTMFBegin_ = new(DTMFBegin)
    DTMFEnd_ = new(DTMFEnd)
    DialBegin_ = new(DialBegin)
    DialEnd_ = new(DialEnd)
    FullyBooted_ = new(FullyBooted)
    Hangup_ = new(Hangup)
    Hold_ = new(Hold)
    MixMonitorMute_ = new(MixMonitorMute)
    MixMonitorStart_ = new(MixMonitorStart)
    MixMonitorStop_ = new(MixMonitorStop)
    Newchannel_ = new(Newchannel)
    Newstate_ = new(Newstate)
    OriginateResponse_ = new(OriginateResponse)
    QueueCallerAbandon_ = new(QueueCallerAbandon)
    QueueCallerJoin_ = new(QueueCallerJoin)
    QueueCallerLeave_ = new(QueueCallerLeave)
    QueueEntry_ = new(QueueEntry)
    QueueMember_ = new(QueueMember)
    QueueMemberAdded_ = new(QueueMemberAdded)
    QueueMemberPause_ = new(QueueMemberPause)
    QueueMemberPenalty_ = new(QueueMemberPenalty)
    QueueMemberRemoved_ = new(QueueMemberRemoved)
    QueueMemberStatus_ = new(QueueMemberStatus)
    QueueParams_ = new(QueueParams)
    QueueSummary_ = new(QueueSummary)
    Shutdown_ = new(Shutdown)
    Unhold_ = new(Unhold)
    return {
        "FullyBooted": lambda h: FullyBooted_(_int(h.get("Uptime")), _int(h.get("LastReload")), h.get("Status", "")),
        "Shutdown": lambda h: Shutdown_(h.get("Shutdown", ""), h.get("Restart", "").lower() in ("true", "yes", "1")),
        "Newchannel": lambda h: Newchannel_(_chan(h)),
        "Newstate": lambda h: Newstate_(_chan(h)),
        "Hangup": lambda h: Hangup_(_chan(h), _int(h.get("Cause")), h.get("Cause-txt", "")),
        "DialBegin": lambda h: DialBegin_(_chan(h) if h.get("Channel") else None, _dest(h), h.get("DialString", "")),
        "DialEnd": lambda h: DialEnd_(_chan(h) if h.get("Channel") else None, _dest(h), h.get("DialStatus", "")),
        "BridgeEnter": lambda h: BridgeEnter_(
            h.get("BridgeUniqueid", ""), h.get("BridgeType", ""), _int(h.get("BridgeNumChannels")), _chan(h)
        ),
        "BridgeLeave": lambda h: BridgeLeave_(
            h.get("BridgeUniqueid", ""), h.get("BridgeType", ""), _int(h.get("BridgeNumChannels")), _chan(h)
        ),
        "QueueCallerJoin": lambda h: QueueCallerJoin_(
            _chan(h), h.get("Queue", ""), _int(h.get("Position")), _int(h.get("Count"))
        ),
        "QueueCallerLeave": lambda h: QueueCallerLeave_(
            _chan(h), h.get("Queue", ""), _int(h.get("Position")), _int(h.get("Count"))
        ),
        "QueueCallerAbandon": lambda h: QueueCallerAbandon_(
            _chan(h),
            h.get("Queue", ""),
            _int(h.get("Position")),
            _int(h.get("OriginalPosition")),
            _int(h.get("HoldTime")),
        ),
        "AgentCalled": lambda h: AgentCalled_(*_agent_fields(h)),
        "AgentConnect": lambda h: AgentConnect_(*_agent_fields(h), _int(h.get("HoldTime")), _int(h.get("RingTime"))),
        "AgentComplete": lambda h: AgentComplete_(
            *_agent_fields(h), _int(h.get("HoldTime")), _int(h.get("TalkTime")), h.get("Reason", "")
        ),
        "AgentRingNoAnswer": lambda h: AgentRingNoAnswer_(*_agent_fields(h), _int(h.get("RingTime"))),
        "AgentDump": lambda h: AgentDump_(*_agent_fields(h)),
        "QueueMemberAdded": lambda h: QueueMemberAdded_(MemberInfo.parse(h)),
        "QueueMemberRemoved": lambda h: QueueMemberRemoved_(MemberInfo.parse(h)),
        "QueueMemberPause": lambda h: QueueMemberPause_(MemberInfo.parse(h)),
        "QueueMemberStatus": lambda h: QueueMemberStatus_(MemberInfo.parse(h)),
        "QueueMemberPenalty": lambda h: QueueMemberPenalty_(MemberInfo.parse(h)),
        "MixMonitorStart": lambda h: MixMonitorStart_(_chan(h)),
        "MixMonitorStop": lambda h: MixMonitorStop_(_chan(h)),
        "MixMonitorMute": lambda h: MixMonitorMute_(
            _chan(h), h.get("Direction", "both"), h.get("State", "") in ("1", "on", "true", "yes")
        ),
        "DTMFBegin": lambda h: DTMFBegin_(_chan(h), h.get("Digit", ""), h.get("Direction", "")),
        "DTMFEnd": lambda h: DTMFEnd_(
            _chan(h), h.get("Digit", ""), h.get("Direction", ""), _int(h.get("DurationMs"))
        ),
        "Hold": lambda h: Hold_(_chan(h), h.get("MusicClass", "")),
        "Unhold": lambda h: Unhold_(_chan(h)),
        "BlindTransfer": lambda h: BlindTransfer_(
            h.get("Result", ""),
            ChannelInfo.parse(h, "Transferer"),
            ChannelInfo.parse_optional(h, "Transferee"),
            h.get("Context", ""),
            h.get("Extension", ""),
        ),
        "AttendedTransfer": lambda h: AttendedTransfer_(
            h.get("Result", ""),
            ChannelInfo.parse(h, "OrigTransferer"),
            ChannelInfo.parse_optional(h, "SecondTransferer"),
            ChannelInfo.parse_optional(h, "TransferTarget"),
        ),
        "OriginateResponse": lambda h: OriginateResponse_(
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
        "CoreShowChannel": lambda h: CoreShowChannel_(
            h.get("ActionID", ""),
            _chan(h),
            h.get("Application", ""),
            h.get("ApplicationData", ""),
            h.get("Duration", ""),
            h.get("BridgeId", ""),
        ),
        "QueueParams": lambda h: QueueParams_(
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
        "QueueMember": lambda h: QueueMember_(h.get("ActionID", ""), MemberInfo.parse(h)),
        "QueueEntry": lambda h: QueueEntry_(
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
        "QueueSummary": lambda h: QueueSummary_(
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


#: event name → translator (header dict → typed event)
TRANSLATORS: dict[str, Callable[[Headers], AmiEvent]] = _translators(_slot_constructor)


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
