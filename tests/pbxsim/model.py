"""Plain data of the emulated PBX: configuration, channels, queues, members, recordings.

Nothing here touches a socket or schedules a task; :mod:`tests.pbxsim.pbx` drives it.
"""

from __future__ import annotations

import array
import asyncio
import math
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

STATE_DESC = {0: "Down", 1: "Rsrvd", 2: "OffHook", 3: "Dialing", 4: "Ring", 5: "Ringing", 6: "Up", 7: "Busy"}

CAUSE_TXT = {
    0: "Unknown",
    1: "Unallocated (unassigned) number",
    16: "Normal Clearing",
    17: "User busy",
    19: "No user responding",
    21: "Call Rejected",
    26: "Answered elsewhere",
    34: "Circuit/channel congestion",
}

#: Privilege line of every event type the emulator writes (as Asterisk 20 writes them).
PRIVILEGE = {
    "FullyBooted": "system,all",
    "Shutdown": "system,all",
    "SuccessfulAuth": "security,all",
    "RequestBadFormat": "security,all",
    "Newexten": "dialplan,all",
    "VarSet": "dialplan,all",
    "AGIExecStart": "agi,all",
    "AGIExecEnd": "agi,all",
    "DTMFBegin": "dtmf,all",
    "DTMFEnd": "dtmf,all",
}
for _n in (
    "QueueCallerJoin QueueCallerLeave QueueCallerAbandon AgentCalled AgentConnect AgentComplete "
    "AgentRingNoAnswer AgentDump QueueMemberAdded QueueMemberRemoved QueueMemberPause QueueMemberStatus "
    "QueueMemberPenalty"
).split():
    PRIVILEGE[_n] = "agent,all"


def privilege_of(event: str) -> str:
    return PRIVILEGE.get(event, "call,all")


@dataclass
class QueueConfig:
    """One ``queues.conf`` section (the subset the emulator honours)."""

    name: str
    strategy: str = "ringall"  # ringall | leastrecent | rrmemory | linear | fewestcalls | random
    timeout: float = 15.0  # seconds a member rings before AgentRingNoAnswer
    retry: float = 5.0  # pause between ring attempts
    wrapuptime: float = 0.0
    servicelevel: int = 60
    weight: int = 0
    maxlen: int = 0
    ringinuse: bool = False
    joinempty: bool = True


def default_queues() -> list[QueueConfig]:
    """The queues of ``asterisk-config/queues.conf`` plus ``support`` used by the captures."""
    return [
        QueueConfig("sales", "ringall", timeout=15, retry=5, wrapuptime=10, servicelevel=20),
        QueueConfig("billing", "leastrecent", timeout=15, retry=5, wrapuptime=10, servicelevel=30),
        QueueConfig("tech", "rrmemory", timeout=20, retry=5, wrapuptime=15, servicelevel=60),
        QueueConfig("vip", "ringall", timeout=10, retry=2, wrapuptime=5, servicelevel=10, weight=10),
        QueueConfig("support", "leastrecent", timeout=10, retry=2),
    ]


@dataclass
class AgentBehavior:
    """How the phone behind a queue member / Local agent extension behaves.

    ``answer_after``: seconds of ringing before it answers; ``None`` never answers.
    ``hangup_after``: seconds of talk before the agent hangs up; ``None`` waits for the other side.
    ``manual``: the test drives the phone (:meth:`AgentHandle.answer` / ``hangup``).
    """

    answer_after: float | None = 0.0
    hangup_after: float | None = 3.0
    manual: bool = False
    #: a PJSIP phone behind the member's Local channel: ``;2`` runs ``Dial(PJSIP/<ext>,,tTr)`` of
    #: ``[agents]`` (a ``PJSIP/<ext>-…`` channel, a second bridge; live-2026-12 ``ami-pjsip-call``)
    pjsip: bool = False
    #: False: the PJSIP contact is unreachable; each ring attempt fails at once, ``;2`` hangs up with
    #: cause 3 (``ami-pjsip-phone-hold-unreachable-retries``)
    reachable: bool = True
    #: the contact is unreachable for this many ring attempts, then a qualify finds it again
    #: (deterministic under load, unlike a test flipping ``reachable`` between two retries)
    unreachable_attempts: int = 0
    failed_attempts: int = 0


#: Behaviour of the agent contexts used by the captures (``asterisk-etc/extensions.conf``).
CONTEXT_BEHAVIORS = {
    "agents": AgentBehavior(0.0, 3.0),
    "agents-long": AgentBehavior(0.0, 20.0),
    "agents-noanswer": AgentBehavior(None, None),
    # asterisk-config/extensions.conf [callcore-test-agent]: Wait(1), Answer(), Wait(8), Hangup()
    "callcore-test-agent": AgentBehavior(1.0, 8.0),
    # live-2026-12 captures, extensions-livetest.conf [sim-agent-long]: Wait(2), Answer(), ~120 s of audio
    "sim-agent-long": AgentBehavior(2.0, 120.0),
}


@dataclass
class PbxConfig:
    ami_host: str = "127.0.0.1"
    ami_port: int = 0  # 0: pick a free port (see ``Pbx.ami_port``)
    username: str = "callcore"
    secret: str = "change-me-callcore-secret"  # = asterisk-config/manager.conf
    #: where callcore's FastAGI server listens; replaces ``${CALLCORE_AGI_HOST}:4573`` of the dialplan
    agi_host: str = "127.0.0.1"
    agi_port: int = 4573
    #: the AGI script (path + query string) run by ``ivr-in``; ``agi_args`` become ``agi_arg_N``
    ivr_script: str = "ivr?flow=main&lang=ko"
    ivr_args: tuple[str, ...] = ()
    #: ``[survey]``: the AGI script run after the agent hangs up; ``{IVR_SURVEY_FLOW}`` is the channel variable
    survey_script: str = "ivr?flow={IVR_SURVEY_FLOW}"
    queues: list[QueueConfig] = field(default_factory=default_queues)
    #: 0.01 plays a "20 s" call in 0.2 s
    time_scale: float = 1.0
    seed: int = 0
    #: virtual wall clock at start (Uniqueid epochs, LoginTime, LastCall ...); ``None`` (the
    #: default): the real clock when ``start()`` runs, so Uniqueids (``<epoch>.<sequence>``, also the
    #: MixMonitor file names) differ between runs, as with Asterisk
    epoch: float | None = None
    #: asterisk.conf ``systemname``: Uniqueids (and so Linkedids) become ``<systemname>-<epoch>.<seq>``
    #: as Asterisk's channel.c makes them when it is set, so two servers never share an id (issue 19;
    #: from Asterisk's source, not yet captured: tests/pbxsim/README.md); ``""``: Asterisk's default
    system_name: str = ""
    #: Uptime reported in FullyBooted at start (seconds)
    uptime: float = 50.0
    monitor_dir: Path | None = None  # where MixMonitor writes (Asterisk's spool/monitor)
    queue_log_path: Path | None = None  # where app_queue's queue_log goes (always kept in Pbx.queue_log.lines)
    #: prompt name -> virtual length in seconds; others use ``default_prompt_seconds``
    prompt_seconds: dict[str, float] = field(default_factory=dict)
    default_prompt_seconds: float = 1.0
    missing_prompts: set[str] = field(default_factory=lambda: {"does-not-exist"})
    #: Asterisk ``eventfilter`` lines of the AMI user (``!`` = drop), applied per session
    event_filters: list[str] = field(default_factory=list)
    #: manager.conf ``read``/``write`` classes of the AMI user; ``None`` = ``all``
    read_classes: set[str] | None = None
    write_classes: set[str] | None = None
    #: seconds the restarted PBX refuses connections (virtual)
    restart_downtime: float = 1.0
    #: ``callcore`` (asterisk-config/extensions.conf) or ``capture`` (the capture run's dialplan)
    dialplan: str = "callcore"
    #: emit the noise events (Newexten, VarSet, AGIExec*, DeviceStateChange, ...)
    noise: bool = True
    #: manager.conf ``timestampevents``: every event gets ``Timestamp: <sec>.<usec>`` (the virtual
    #: clock) after ``Privilege``, as Asterisk's manager.c writes it; off like Asterisk's default
    timestampevents: bool = False
    #: features.conf ``[featuremap] atxfer`` (asterisk-config/features.conf); Asterisk's built-in
    #: default is empty, and then AMI Atxfer answers "No attended transfer feature code found"
    atxfer_featurecode: str = "*2"
    #: the SIP trunk can create channels; False: ``Dial(PJSIP/<n>@trunk)`` fails at once, no channel,
    #: DIALSTATUS CHANUNAVAIL, the caller ends with cause 3 (ami-click-to-call-unreachable.raw)
    trunk_reachable: bool = True
    #: the Local channel counter at start (``Local/…-<n+1>``): a capture's numbering, for replays
    local_seq: int = 0
    #: the same for PJSIP channels (``PJSIP/<endpoint>-<n+1>``); -1 makes the first one ``…-00000000``
    pjsip_seq: int = 0


class Recording:
    """An active MixMonitor: collects (virtual) audio segments, writes an 8 kHz mono 16-bit WAV."""

    RATE = 8000

    def __init__(self, path: Path, only_bridged: bool, now: float, bridged: bool,
                 legs: dict[str, Path] | None = None) -> None:
        self.path = path
        #: MixMonitor r(<file>) / t(<file>): what the channel hears / says, each in its own file
        self.legs = dict(legs or {})
        self.only_bridged = only_bridged
        self.segments: list[tuple[float, bool]] = []  # (seconds, muted)
        self._since = now
        self.bridged = bridged
        self.muted = False
        self.stopped = False
        self.written = False

    def _close_segment(self, now: float) -> None:
        dur = max(0.0, now - self._since)
        if dur > 0 and (self.bridged or not self.only_bridged):
            self.segments.append((dur, self.muted))
        self._since = now

    def set_bridged(self, now: float, bridged: bool) -> None:
        self._close_segment(now)
        self.bridged = bridged

    def set_muted(self, now: float, muted: bool) -> None:
        self._close_segment(now)
        self.muted = muted

    @property
    def seconds(self) -> float:
        return sum(d for d, _ in self.segments)

    def stop(self, now: float) -> Path | None:
        """Finish the recording and write the file (not created if ``b`` and never bridged)."""
        if self.stopped:
            return self.path if self.written else None
        self._close_segment(now)
        self.stopped = True
        if not self.segments and self.only_bridged:
            return None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._write(self.path, 440)
        for kind, path in self.legs.items():  # r: the caller's side (330 Hz), t: the agent's (550 Hz)
            self._write(path, 330 if kind == "r" else 550)
        self.written = True
        return self.path

    def _write(self, path: Path, hz: int) -> None:
        tone = array.array("h", (int(6000 * math.sin(2 * math.pi * hz * i / self.RATE)) for i in range(self.RATE)))
        silence = array.array("h", bytes(2 * self.RATE))
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(self.RATE)
            for dur, muted in self.segments:
                frames = int(round(dur * self.RATE))
                src = silence if muted else tone
                while frames > 0:
                    n = min(frames, self.RATE)
                    w.writeframes(src[:n].tobytes())
                    frames -= n


class Channel:
    """One Asterisk channel (a Local half, or a single PJSIP channel)."""

    def __init__(self, name: str, uniqueid: str, linkedid: str, context: str, exten: str, state: int, created: float):
        self.name = name
        self.uniqueid = uniqueid
        self.linkedid = linkedid
        self.context = context
        self.exten = exten
        self.priority = 1
        self.state = state
        self.cid_num: str | None = None
        self.cid_name: str | None = None
        self.conn_num: str | None = None
        self.conn_name: str | None = None
        self.language = "en"
        self.accountcode = ""
        self.app = ""
        self.appdata = ""
        self.vars: dict[str, str] = {}
        self.created = created
        self.peer: Channel | None = None  # the other half of a Local channel
        self.bridge: Bridge | None = None
        self.dead_bridge: Bridge | None = None  # left but not yet destroyed (destroyed at next app/hangup)
        self.device = ""  # device name for DeviceStateChange (Local/1001@agents)
        self.gone = False  # final Hangup emitted
        self.hangup_cause = 16
        self.hangup_ev = asyncio.Event()  # hangup requested
        self.redirect_to: tuple[str, str, int] | None = None
        self.redirect_ev = asyncio.Event()
        self.dtmf: asyncio.Queue[str] = asyncio.Queue()
        self.collecting = False  # an app is reading DTMF (otherwise digits are dropped, like Asterisk)
        self.prompts: list[str] = []  # every prompt streamed to this channel, in order
        self.recording: Recording | None = None
        self.agi_commands: list[str] = []
        self.queue: str | None = None  # queue it waits in
        self.on_hold = False
        self.moh: str | None = None  # music class while MusicOnHold plays to this channel
        self.moh_log: list[tuple[float, str, str]] = []  # (virtual time, "start"/"stop", class)
        #: the bridge gives this channel the transfer features (Queue option t / Dial option T)
        self.transfer_features = False
        self.atxfer_to: tuple[str, str] | None = None  # (exten, context) of a requested attended transfer
        self.atxfer_ev = asyncio.Event()
        #: the app_queue bridge this channel (a queue caller) talks to an agent in, while it does
        self.queue_bridge: Bridge | None = None
        #: hung up by AMI ``Hangup`` on this channel itself (not by the phone behind a Local ;2)
        self.ami_hangup = False
        #: ChanSpy sessions attached to this channel (the spyer channels), see dialplan.chanspy
        self.spies: list["Channel"] = []
        #: the hangup cause a failed Dial left on the channel (``Hangup()`` without a cause uses it)
        self.pending_cause: int | None = None
        #: an originated Local half: the device whose state queue members follow (see Pbx._member_device)
        self.origin_device: str | None = None
        #: app_queue's armed AgentComplete of a queue call the caller was Redirected out of: sent when
        #: this (caller) channel is finally hung up, just before its Hangup event (ami-blind-transfer-*)
        self.before_hangup: list[Callable[[], None]] = []
        #: set when an AMI Bridge pulled this channel into a new bridge (callcore's unhold)
        self.yanked_ev = asyncio.Event()

    @property
    def up(self) -> bool:
        return self.state == 6

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"<Channel {self.name} {self.uniqueid}>"


class Bridge:
    def __init__(self, uid: str) -> None:
        self.uid = uid
        self.channels: list[Channel] = []
        self.dissolved = asyncio.Event()  # a basic bridge dissolves when a party hangs up or leaves
        self.destroyed = False


@dataclass
class Member:
    queue: str
    interface: str
    name: str
    state_interface: str
    penalty: int = 0
    paused: bool = False
    paused_reason: str = ""
    calls_taken: int = 0
    last_call: int = 0
    last_pause: int = 0
    login_time: int = 0
    in_call: bool = False
    status: int = 1  # 1 NOT_INUSE, 2 INUSE, 6 RINGING ...
    membership: str = "dynamic"
    wrapuptime: int = 0
    ringinuse: bool = False
    ringing: bool = False
    added_seq: int = 0
    last_call_t: float = 0.0  # exact virtual time of the last call's end (wrapuptime)

    def headers(self) -> list[tuple[str, str]]:
        """QueueMember* event body (Queue ... Wrapuptime) in Asterisk's order."""
        return [
            ("Queue", self.queue),
            ("MemberName", self.name),
            ("Interface", self.interface),
            ("StateInterface", self.state_interface),
            ("Membership", self.membership),
            ("Penalty", str(self.penalty)),
            ("CallsTaken", str(self.calls_taken)),
            ("LastCall", str(self.last_call)),
            ("LastPause", str(self.last_pause)),
            ("LoginTime", str(self.login_time)),
            ("InCall", "1" if self.in_call else "0"),
            ("Status", str(self.status)),
            ("Paused", "1" if self.paused else "0"),
            ("PausedReason", self.paused_reason),
            ("Ringinuse", "1" if self.ringinuse else "0"),
            ("Wrapuptime", str(self.wrapuptime)),
        ]

    def status_headers(self, action_id: str | None) -> list[tuple[str, str]]:
        """QueueMember list item (QueueStatus) in Asterisk's order."""
        h = [
            ("Queue", self.queue),
            ("Name", self.name),
            ("Location", self.interface),
            ("StateInterface", self.state_interface),
            ("Membership", self.membership),
            ("Penalty", str(self.penalty)),
            ("CallsTaken", str(self.calls_taken)),
            ("LastCall", str(self.last_call)),
            ("LastPause", str(self.last_pause)),
            ("LoginTime", str(self.login_time)),
            ("InCall", "1" if self.in_call else "0"),
            ("Status", str(self.status)),
            ("Paused", "1" if self.paused else "0"),
            ("PausedReason", self.paused_reason),
            ("Wrapuptime", str(self.wrapuptime)),
        ]
        if action_id is not None:
            h.append(("ActionID", action_id))
        return h


@dataclass
class QueueEntry:
    chan: Channel
    prio: int
    joined: float
    original_position: int


@dataclass
class Queue:
    cfg: QueueConfig
    members: dict[str, Member] = field(default_factory=dict)
    callers: list[QueueEntry] = field(default_factory=list)
    completed: int = 0
    abandoned: int = 0
    completed_in_sl: int = 0
    holdtime: float = 0.0  # running average like app_queue (weighted)
    talktime: float = 0.0
    rr_next: int = 0  # rrmemory position

    @property
    def name(self) -> str:
        return self.cfg.name

    def params(self, action_id: str | None) -> list[tuple[str, str]]:
        total = self.completed + self.abandoned
        perf = (100.0 * self.completed_in_sl / self.completed) if self.completed else 0.0
        perf2 = (100.0 * (self.completed_in_sl + 0) / total) if total else 0.0
        h = [
            ("Queue", self.name),
            ("Max", str(self.cfg.maxlen)),
            ("Strategy", self.cfg.strategy),
            ("Calls", str(len(self.callers))),
            ("Holdtime", str(int(self.holdtime))),
            ("TalkTime", str(int(self.talktime))),
            ("Completed", str(self.completed)),
            ("Abandoned", str(self.abandoned)),
            ("ServiceLevel", str(self.cfg.servicelevel)),
            ("ServicelevelPerf", f"{perf:.1f}"),
            ("ServicelevelPerf2", f"{perf2:.1f}"),
            ("Weight", str(self.cfg.weight)),
        ]
        if action_id is not None:
            h.append(("ActionID", action_id))
        return h


def parse_callerid(value: str) -> tuple[str | None, str | None]:
    """``"홍길동" <01012345678>`` → (num, name)."""
    value = value.strip()
    if not value:
        return None, None
    if "<" in value and value.endswith(">"):
        name, _, num = value[:-1].rpartition("<")
        name = name.strip().strip('"').strip() or None
        return (num.strip() or None), name
    return value, None


def is_true(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on", "y", "t")


def ami_timestamp(t: float) -> str:
    """Asterisk's ``Timestamp`` header value: ``"%ld.%06lu"`` of a timeval (``1795395821.348534``)."""
    sec = int(t)
    usec = min(999999, int(round((t - sec) * 1_000_000)))
    return f"{sec}.{usec:06d}"
