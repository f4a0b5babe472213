"""The emulated Asterisk: channels, dialplan, queues, agents, callers; events in Asterisk 20's shapes.

Event field names, field order and event order are copied from the captures in
``tests/fixtures/asterisk-captures`` (see ``tests/pbxsim/README.md`` for the mapping
between the dialplan in ``asterisk-config/extensions.conf`` and the code below).
"""

from __future__ import annotations

import asyncio
import random
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable, Sequence

from .model import (
    CAUSE_TXT,
    CONTEXT_BEHAVIORS,
    STATE_DESC,
    AgentBehavior,
    Bridge,
    Channel,
    Member,
    PbxConfig,
    Queue,
    parse_callerid,
    ami_timestamp,
    privilege_of,
)

Headers = list[tuple[str, str]]


class Redirected(Exception):
    def __init__(self, target: tuple[str, str, int]) -> None:
        super().__init__(target)
        self.target = target


class HungUp(Exception):
    pass


#: pseudo-context of a redirect target meaning "join this bridge" (AMI Bridge); exten = the Bridge
BRIDGE_TARGET = "@bridge"


@dataclass
class Event:
    """One emitted AMI event (as written to the wire, without per-session ActionID lists)."""

    name: str
    headers: Headers
    t: float  # virtual time

    def get(self, key: str, default: str | None = None) -> str | None:
        for k, v in self.headers:
            if k == key:
                return v
        return default

    def __getitem__(self, key: str) -> str:
        v = self.get(key)
        if v is None:
            raise KeyError(key)
        return v

    def as_dict(self) -> dict[str, str]:
        return dict(self.headers)


# ---------------------------------------------------------------- caller scripts
@dataclass(frozen=True)
class Wait:
    seconds: float


@dataclass(frozen=True)
class Press:
    digits: str


@dataclass(frozen=True)
class Hangup:
    pass


@dataclass(frozen=True)
class AwaitPrompt:
    """Wait until the IVR streams prompt ``name`` (the sound's base name) to the caller, so that
    the next :class:`Press` lands while the IVR listens (DTMF between AGI commands is lost)."""

    name: str
    timeout: float = 120.0  # virtual seconds; the caller hangs up when it never comes


Step = Wait | Press | Hangup | AwaitPrompt

#: The ``[sim-caller]`` scripts of the capture run.
CAPTURE_SCRIPTS: dict[str, list[Step]] = {
    "press1": [Wait(1.5), Press("1"), Wait(25), Hangup()],
    "hangupearly": [Wait(1), Hangup()],
    "wait30": [Wait(30), Hangup()],
    "wait6": [Wait(6), Hangup()],
}


def _test_caller_script(exten: str) -> list[Step] | None:
    """``[callcore-test-caller] _pressX``: Answer, Wait(6), SendDTMF(X), Wait(20), Hangup;
    ``_surveyMQR``: Wait(6), SendDTMF(M), Wait(18), SendDTMF(Q), Wait(5), SendDTMF(R), Wait(15), Hangup."""
    if len(exten) == 6 and exten.startswith("press") and exten[5] in "0123456789*#":
        return [Wait(6), Press(exten[5]), Wait(20), Hangup()]
    if len(exten) == 9 and exten.startswith("survey") and all(c in "0123456789*#" for c in exten[6:]):
        return [Wait(6), Press(exten[6]), Wait(18), Press(exten[7]), Wait(5), Press(exten[8]), Wait(15), Hangup()]
    return None


def _live_caller_script(exten: str) -> list[Step] | None:
    """live-2026-12 ``[sim-caller] _ivr.``: Answer, Wait(SIM_DELAY=7), SendDTMF(<rest>), ~60 s of
    audio (SIM_HOLD), Hangup."""
    if len(exten) > 3 and exten.startswith("ivr") and all(c in "0123456789*#" for c in exten[3:]):
        return [Wait(7), Press(exten[3:]), Wait(60), Hangup()]
    return None


@dataclass
class _Leg:
    """A queue member being rung for one caller (Local/<ext>@<ctx>/n)."""

    member: Member
    one: Channel
    two: Channel
    behavior: AgentBehavior
    agent: "AgentHandle | None"
    started: float
    answered: bool = False
    task: asyncio.Task | None = None
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    phone: Channel | None = None  # the PJSIP/<ext> channel behind ;2 (AgentBehavior.pjsip)
    phone_bridge: Bridge | None = None  # ;2 ↔ PJSIP/<ext>


class AgentHandle:
    """A scripted or test-driven agent phone (extension ``1001`` …)."""

    def __init__(self, pbx: "Pbx", exten: str, behavior: AgentBehavior) -> None:
        self.pbx = pbx
        self.exten = exten
        self.behavior = behavior
        self.calls: list[Channel] = []  # agent-side ;1 legs ever created for this agent
        self._cmd: asyncio.Queue[str] = asyncio.Queue()
        self.current: _Leg | None = None

    def _reset(self) -> None:
        self._cmd = asyncio.Queue()

    def _rung(self, leg: "_Leg", channel: Channel) -> None:
        """This phone rings for ``leg`` (``channel``: the leg callcore sees)."""
        self._reset()
        self.current = leg
        self.calls.append(channel)
        self.pbx.notify()

    @property
    def ringing(self) -> bool:
        return self.current is not None and not self.current.answered and not self.current.two.gone

    @property
    def talking(self) -> bool:
        return self.current is not None and self.current.answered and not self.current.two.gone

    async def wait_ringing(self, timeout: float = 5.0) -> Channel:
        """Wait until this agent's phone rings; returns the agent leg (DestChannel of AgentCalled)."""
        await self.pbx.wait_for(lambda: self.ringing, timeout, f"agent {self.exten} ringing")
        assert self.current is not None
        return self.current.one

    async def answer(self, timeout: float = 5.0) -> Channel:
        """Answer the call that is ringing (waits until one rings) and wait until connected."""
        leg = await self.wait_ringing(timeout)
        for _ in range(3):
            ring = self.current
            self._cmd.put_nowait("answer")
            await self.pbx.wait_for(
                lambda: self._connected() or not (self.ringing and self.current is ring), timeout, f"agent {self.exten} connected"
            )
            if self._connected():
                return leg
            # The ring ended before the answer reached it: its member timeout (app_queue's `timeout`,
            # 15 s) ran out while a test on a loaded machine took that long between wait_ringing()
            # and answer(); the next ring starts with a new command queue. Answer that one.
            leg = await self.wait_ringing(timeout)
        raise TimeoutError(f"pbxsim: agent {self.exten} rang three times without connecting")

    def _connected(self) -> bool:
        return self.talking and self.current is not None and self.current.connected.is_set()

    async def hangup(self, timeout: float = 5.0) -> None:
        await self.pbx.wait_for(lambda: self.talking, timeout, f"agent {self.exten} on a call")
        leg = self.current
        assert leg is not None
        self._cmd.put_nowait("hangup")
        await self.pbx.wait_for(lambda: leg.two.gone, timeout, f"agent {self.exten} hung up")

    async def reject(self, timeout: float = 5.0) -> None:
        await self.wait_ringing(timeout)
        self._cmd.put_nowait("reject")

    def hold(self, music_class: str = "default") -> None:
        if not self.talking:
            raise RuntimeError(f"agent {self.exten} is not on a call")
        self.pbx.hold(self._phone_channel(), music_class)

    def unhold(self) -> None:
        if not self.talking:
            raise RuntimeError(f"agent {self.exten} is not on a call")
        self.pbx.unhold(self._phone_channel())

    def _phone_channel(self) -> Channel:
        """Where the phone's own hold shows: its ``PJSIP/…`` channel when one is modelled behind the
        member's Local channel, else the Local ``;2`` half (the phone side) or the direct-dial callee."""
        assert self.current is not None
        return getattr(self.current, "phone", None) or self.current.two


class Call:
    """A scripted caller: the ``;2`` half of ``Local/<name>@sim-caller`` (the phone), and ``;1`` in the dialplan."""

    def __init__(self, pbx: "Pbx", one: Channel, two: Channel) -> None:
        self.pbx = pbx
        self.one = one  # the channel in the IVR/queue (what callcore sees as the caller)
        self.two = two
        self.task: asyncio.Task | None = None

    # --- observation
    @property
    def channel(self) -> str:
        return self.one.name

    @property
    def uniqueid(self) -> str:
        return self.one.uniqueid

    @property
    def linkedid(self) -> str:
        return self.one.linkedid

    @property
    def variables(self) -> dict[str, str]:
        return self.one.vars

    @property
    def prompts(self) -> list[str]:
        return self.one.prompts

    @property
    def agi_commands(self) -> list[str]:
        return self.one.agi_commands

    @property
    def hung_up(self) -> bool:
        return self.one.gone

    @property
    def recording(self) -> Path | None:
        rec = self.one.recording
        return rec.path if rec and rec.written else None

    def events(self, *names: str) -> list[Event]:
        """Events of this call (same Linkedid), optionally only the given types."""
        return [
            e
            for e in self.pbx.events
            if (e.get("Linkedid") == self.linkedid or e.get("Uniqueid") == self.uniqueid)
            and (not names or e.name in names)
        ]

    # --- driving
    async def expect_prompt(self, name: str, timeout: float = 5.0) -> None:
        """Wait until the IVR streams prompt ``name`` to the caller (STREAM FILE, GET DATA, Playback …)."""
        await self.pbx.wait_for(lambda: name in self.one.prompts, timeout, f"prompt {name!r}")

    async def press(self, digits: str) -> None:
        if self.two.gone:
            raise RuntimeError("caller already hung up")
        self.pbx.send_dtmf(self.two, digits)
        await asyncio.sleep(0)

    async def wait(self, seconds: float) -> None:
        await self.pbx.sleep(seconds)

    async def wait_for_queue(self, queue: str, timeout: float = 5.0) -> None:
        await self.pbx.wait_for(
            lambda: any(e.name == "QueueCallerJoin" and e.get("Queue") == queue for e in self.events()),
            timeout,
            f"caller in queue {queue}",
        )

    async def wait_for_agent(self, timeout: float = 5.0) -> str:
        """Wait until an agent is connected; returns the agent's MemberName."""
        await self.pbx.wait_for(lambda: bool(self.events("AgentConnect")), timeout, "agent connected")
        return self.events("AgentConnect")[-1]["MemberName"]

    async def wait_for_hangup(self, timeout: float = 5.0) -> None:
        await self.pbx.wait_for(lambda: self.one.gone and self.two.gone, timeout, "call ended")

    async def hangup(self) -> None:
        if self.two is self.one:  # a trunk call: the caller's BYE
            await self.pbx.hangup_channel(self.one)
        elif not self.two.gone:
            await self.pbx.hangup_from_two(self.two, by_app=True)
        await self.pbx.wait_for(lambda: self.one.gone, 5.0, "caller leg gone")

    async def run(self, steps: Sequence[Step]) -> None:
        for step in steps:
            if self.two.gone:
                return
            trunk = self.two is self.one  # a SIP phone on the trunk: no dialplan of its own
            if isinstance(step, Wait):
                if trunk:
                    try:
                        await asyncio.wait_for(self.one.hangup_ev.wait(), step.seconds * self.pbx.cfg.time_scale)
                        return
                    except asyncio.TimeoutError:
                        continue
                self.pbx.newexten(self.two, "Wait", _fmt_num(step.seconds))
                try:
                    await self.pbx.wait_on(self.two, step.seconds)
                except HungUp:
                    return
            elif isinstance(step, Press):
                if not trunk:
                    self.pbx.newexten(self.two, "SendDTMF", step.digits)
                self.pbx.send_dtmf(self.two, step.digits)
            elif isinstance(step, AwaitPrompt):
                if not await self._await_prompt(step):
                    await self.pbx.hangup_from_two(self.two, by_app=False)
                    return
            elif isinstance(step, Hangup):
                if self.two is self.one:
                    await self.pbx.hangup_channel(self.one)
                    return
                self.pbx.newexten(self.two, "Hangup", "")
                await self.pbx.hangup_from_two(self.two, by_app=False)
                return

    async def _await_prompt(self, step: AwaitPrompt) -> bool:
        def heard() -> bool:
            return any(p.rsplit("/", 1)[-1] == step.name for p in self.one.prompts) or self.one.gone

        try:
            await self.pbx.wait_for(heard, step.timeout * self.pbx.cfg.time_scale, f"prompt {step.name!r}")
        except TimeoutError:
            return False
        return not self.one.gone


def _fmt_num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


class Pbx:
    """The emulator. ``await pbx.start()``; ``await pbx.close()``. See README.md for the API."""

    def __init__(self, config: PbxConfig | None = None, **overrides: Any) -> None:
        cfg = config or PbxConfig()
        for k, v in overrides.items():
            if not hasattr(cfg, k):
                raise TypeError(f"unknown PbxConfig field {k!r}")
            setattr(cfg, k, v)
        self.cfg = cfg
        from .queuelog import QueueLogWriter

        self.queue_log = QueueLogWriter(cfg.queue_log_path, clock=self.now)  # app_queue's queue_log
        self.rng = random.Random(cfg.seed)  # bridge ids
        self.rng_agi = random.Random(cfg.seed + 1)  # AGIExec CommandId
        self.errors: list[BaseException] = []  # exceptions of emulator tasks (a test should assert none)
        self.events: list[Event] = []
        self.channels: dict[str, Channel] = {}  # live channels by name
        self.all_channels: list[Channel] = []
        self.queues: dict[str, Queue] = {}
        self.agents: dict[str, AgentHandle] = {}
        self.calls: list[Call] = []
        #: outside numbers reached by ``transfer``/``outbound`` Dial(PJSIP/<n>@trunk): their behaviour
        self.customers: dict[str, AgentBehavior] = {}
        self.agi_sessions: list[Any] = []
        self.scripts: dict[str, list[Step]] = dict(CAPTURE_SCRIPTS)
        self.globals: dict[str, str] = {}
        self.listeners: list[Callable[[Event], None]] = []
        self._tasks: set[asyncio.Task] = set()
        self._changed = asyncio.Event()
        self._seq = 0
        self._local_seq = cfg.local_seq
        self._chan_seq = cfg.pjsip_seq
        self._member_seq = 0
        self._t0 = 0.0
        self._epoch = cfg.epoch if cfg.epoch is not None else time.time()
        self._boot_virtual = 0.0
        self._started = False
        self._closing = False
        self.ami = None  # set by start()
        self.monitor_dir = Path(cfg.monitor_dir) if cfg.monitor_dir else None
        self._own_monitor_dir = False  # a temp dir made by start() is removed by close()
        self._reset_queues()

    # ------------------------------------------------------------- lifecycle
    async def start(self) -> "Pbx":
        from .ami import AmiServer

        loop = asyncio.get_running_loop()
        self._t0 = loop.time()
        self._epoch = self.cfg.epoch if self.cfg.epoch is not None else time.time()
        self._boot_virtual = self._epoch - self.cfg.uptime
        if self.monitor_dir is None:
            import tempfile

            self.monitor_dir = Path(tempfile.mkdtemp(prefix="pbxsim-monitor-"))
            self._own_monitor_dir = True
        self.ami = AmiServer(self)
        await self.ami.start(self.cfg.ami_host, self.cfg.ami_port)
        self._started = True
        return self

    @property
    def ami_port(self) -> int:
        assert self.ami is not None, "start() first"
        return self.ami.port

    def _close_agi(self) -> None:
        for session in self.agi_sessions:
            try:
                session.writer.close()
            except RuntimeError:  # pragma: no cover - loop already closed
                pass

    async def close(self) -> None:
        self._closing = True
        if self.ami is not None:
            await self.ami.close()
        self._close_agi()
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        for t in tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):
                pass
        self._tasks.clear()
        for ch in list(self.all_channels):
            if ch.recording and not ch.recording.stopped:
                ch.recording.stop(self.now())
        if self._own_monitor_dir and self.monitor_dir is not None:
            import shutil

            shutil.rmtree(self.monitor_dir, ignore_errors=True)

    async def __aenter__(self) -> "Pbx":
        return await self.start()

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    def spawn(self, coro: Awaitable[Any], name: str | None = None) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        if name:
            task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None and not self._closing:
            import logging

            logging.getLogger("pbxsim").error("pbxsim task %s failed", task.get_name(), exc_info=task.exception())
            self.errors.append(task.exception())  # type: ignore[arg-type]

    def _reset_queues(self) -> None:
        self.queues = {q.name: Queue(q) for q in self.cfg.queues}

    # ------------------------------------------------------------- time
    def now(self) -> float:
        """Virtual wall-clock time (epoch seconds)."""
        if not self._t0:
            return self._epoch
        return self._epoch + (asyncio.get_running_loop().time() - self._t0) / self.cfg.time_scale

    def uptime(self) -> int:
        return int(self.now() - self._boot_virtual)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) * self.cfg.time_scale)

    # ------------------------------------------------------------- waiting helpers
    def notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for_ami_client(self, timeout: float | None = None) -> None:
        """Until an AMI client has logged in and finished callcore's resync (its QueueSummary was
        answered), or ``timeout`` real seconds after the login. A call placed earlier would start
        before the client sees events (the README's emulator command waits like this)."""
        assert self.ami is not None, "start() first"
        ami = self.ami
        await self.wait_for(lambda: any(s.authenticated for s in ami.sessions), timeout if timeout is not None else 1e9, "an AMI login")
        try:
            await self.wait_for(lambda: any(name == "QueueSummary" for name, _ in ami.actions), 5.0, "the client's resync")
        except TimeoutError:
            pass  # a client that does not resync: go ahead

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
        """Poll ``predicate`` on every state change until true; ``timeout`` is in *real* seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"pbxsim: timed out waiting for {what}")
            ev = self._changed
            try:
                await asyncio.wait_for(ev.wait(), min(remaining, 0.05))
            except asyncio.TimeoutError:
                pass

    async def wait_for_event(
        self, name: str, timeout: float = 5.0, start: int = 0, **match: str
    ) -> Event:
        """First event ``name`` (at index >= ``start``) whose headers equal ``match``."""
        found: list[Event] = []

        def pred() -> bool:
            for e in self.events[start:]:
                if e.name == name and all(e.get(k) == v for k, v in match.items()):
                    found.append(e)
                    return True
            return False

        await self.wait_for(pred, timeout, f"event {name} {match}")
        return found[0]

    async def wait_on(
        self,
        ch: Channel,
        seconds: float | None,
        *,
        queue: asyncio.Queue | None = None,
        event: asyncio.Event | None = None,
        redirectable: bool = False,
    ) -> tuple[str, Any]:
        """Wait ``seconds`` (virtual) on channel ``ch``.

        Returns ``("timeout", None)``, ``("item", x)`` from ``queue`` or ``("event", None)``.
        Raises :class:`HungUp` when the channel is hung up and :class:`Redirected` (if
        ``redirectable``) when an AMI Redirect moved it.
        """
        if ch.hangup_ev.is_set():
            raise HungUp()
        if redirectable and ch.redirect_ev.is_set():
            raise Redirected(ch.redirect_to)  # type: ignore[arg-type]
        waits: dict[asyncio.Future, str] = {}
        waits[asyncio.ensure_future(ch.hangup_ev.wait())] = "hangup"
        if redirectable:
            waits[asyncio.ensure_future(ch.redirect_ev.wait())] = "redirect"
        if queue is not None:
            if not queue.empty():
                for f in waits:
                    f.cancel()
                return "item", queue.get_nowait()
            waits[asyncio.ensure_future(queue.get())] = "item"
        if event is not None:
            waits[asyncio.ensure_future(event.wait())] = "event"
        if seconds is not None:
            waits[asyncio.ensure_future(self.sleep(seconds))] = "timeout"
        try:
            done, _ = await asyncio.wait(list(waits), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for f in waits:
                if not f.done():
                    f.cancel()
        kinds = {waits[f]: f for f in done}
        if "item" in kinds:
            return "item", kinds["item"].result()
        if "hangup" in kinds:
            raise HungUp()
        if "redirect" in kinds:
            raise Redirected(ch.redirect_to)  # type: ignore[arg-type]
        if "event" in kinds:
            return "event", None
        return "timeout", None

    # ------------------------------------------------------------- ids
    def _uniqueid(self) -> str:
        self._seq += 1
        if self.cfg.system_name:  # channel.c: "%s-%li.%d" with asterisk.conf systemname set
            return f"{self.cfg.system_name}-{int(self.now())}.{self._seq}"
        return f"{int(self.now())}.{self._seq}"

    def _bridge_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    # ------------------------------------------------------------- events
    def emit(self, name: str, headers: Headers, *, noise: bool = False, t: float | None = None) -> Event | None:
        if noise and not self.cfg.noise:
            return None
        t = self.now() if t is None else t
        # manager.conf timestampevents = yes: "Timestamp: %ld.%06lu" right after Privilege (manager.c)
        stamp = [("Timestamp", ami_timestamp(t))] if self.cfg.timestampevents else []
        ev = Event(name, [("Event", name), ("Privilege", privilege_of(name)), *stamp, *headers], t)
        self.events.append(ev)
        if self.ami is not None:
            self.ami.broadcast(ev)
        for fn in list(self.listeners):
            fn(ev)
        self.notify()
        return ev

    def events_named(self, *names: str) -> list[Event]:
        return [e for e in self.events if e.name in names]

    @staticmethod
    def snap(ch: Channel, prefix: str = "", *, conn_unknown: bool = False, exten: str | None = None) -> Headers:
        u = lambda v: v if v else "<unknown>"  # noqa: E731
        p = prefix
        return [
            (p + "Channel", ch.name),
            (p + "ChannelState", str(ch.state)),
            (p + "ChannelStateDesc", STATE_DESC.get(ch.state, "Unknown")),
            (p + "CallerIDNum", u(ch.cid_num)),
            (p + "CallerIDName", u(ch.cid_name)),
            (p + "ConnectedLineNum", "<unknown>" if conn_unknown else u(ch.conn_num)),
            (p + "ConnectedLineName", "<unknown>" if conn_unknown else u(ch.conn_name)),
            (p + "Language", ch.language),
            (p + "AccountCode", ch.accountcode),
            (p + "Context", ch.context),
            (p + "Exten", ch.exten if exten is None else exten),
            (p + "Priority", str(ch.priority)),
            (p + "Uniqueid", ch.uniqueid),
            (p + "Linkedid", ch.linkedid),
        ]

    def newexten(self, ch: Channel, app: str, data: str, *, priority: int | None = None) -> None:
        if priority is not None:
            ch.priority = priority
        ch.app, ch.appdata = app, data
        self.emit(
            "Newexten",
            [*self.snap(ch), ("Extension", ch.exten), ("Application", app), ("AppData", data)],
            noise=True,
        )

    def step(self, ch: Channel, app: str, data: str) -> None:
        """Run the next dialplan priority: bump the priority and emit Newexten."""
        ch.priority += 1
        if ch.dead_bridge is not None:
            self._bridge_destroy(ch.dead_bridge)
            ch.dead_bridge = None
        self.newexten(ch, app, data)

    def setvar(self, ch: Channel, name: str, value: str, *, event: bool = True) -> None:
        ch.vars[name] = value
        if event:
            self.emit("VarSet", [*self.snap(ch), ("Variable", name), ("Value", value)], noise=True)

    def _member_device(self, device: str, status: int) -> None:
        """A queue member's device changed state outside app_queue (the agent's own click-to-call:
        ``QueueMemberStatus`` follows the device, ami-click-to-call-unreachable.raw). Members that
        app_queue is ringing or has in a call are app_queue's business."""
        for q in self.queues.values():
            for m in q.members.values():
                si = re.sub(r"/[a-z]+$", "", m.state_interface) if m.state_interface.startswith("Local/") else m.state_interface
                if si == device and not m.in_call and not m.ringing and m.status != status:
                    m.status = status
                    self.emit("QueueMemberStatus", m.headers())

    def device_state(self, device: str, state: str) -> None:
        self.emit("DeviceStateChange", [("Device", device), ("State", state)], noise=True)

    def _newstate(self, ch: Channel, state: int) -> None:
        ch.state = state
        self.emit("Newstate", self.snap(ch))

    # ------------------------------------------------------------- channels
    def _new_channel(self, name: str, context: str, exten: str, state: int, linkedid: str | None = None) -> Channel:
        uid = self._uniqueid()
        ch = Channel(name, uid, linkedid or uid, context, exten, state, self.now())
        self.channels[name] = ch
        self.all_channels.append(ch)
        return ch

    def _local_pair(self, exten: str, context: str, linkedid: str | None) -> tuple[Channel, Channel]:
        self._local_seq += 1
        base = f"Local/{exten}@{context}-{self._local_seq:08x}"
        one = self._new_channel(base + ";1", context, exten, 0, linkedid)
        two = self._new_channel(base + ";2", context, exten, 4, one.linkedid)
        one.peer, two.peer = two, one
        one.device = two.device = f"Local/{exten}@{context}"
        self.emit("Newchannel", self.snap(one))
        self.emit("Newchannel", self.snap(two))
        return one, two

    def _set_callerid(self, ch: Channel, num: str | None, name: str | None) -> None:
        ch.cid_num, ch.cid_name = num, name
        self.emit(
            "NewCallerid",
            [*self.snap(ch), ("CID-CallingPres", "0 (Presentation Allowed, Not Screened)")],
            noise=True,
        )

    def _set_connected(self, ch: Channel, num: str | None, name: str | None) -> None:
        ch.conn_num, ch.conn_name = num, name
        self.emit("NewConnectedLine", self.snap(ch), noise=True)

    def _local_bridge(self, one: Channel, two: Channel, optimize: bool, *, one_conn_unknown: bool = False) -> None:
        h: Headers = []
        for prefix, ch in (("LocalOne", one), ("LocalTwo", two)):
            for k, v in self.snap(ch, conn_unknown=(one_conn_unknown and ch is one)):
                h.append((prefix + k, v))
        h += [("Context", two.context), ("Exten", two.exten), ("LocalOptimization", "Yes" if optimize else "No")]
        self.emit("LocalBridge", h, noise=True)

    def _final_hangup(self, ch: Channel, cause: int) -> None:
        if ch.gone:
            return
        hooks, ch.before_hangup = ch.before_hangup, []
        for hook in hooks:
            hook()
        ch.gone = True
        t = self.now()
        self.emit("Hangup", [*self.snap(ch), ("Cause", str(cause)), ("Cause-txt", CAUSE_TXT.get(cause, "Unknown"))], t=t)
        self.channels.pop(ch.name, None)
        ch.hangup_ev.set()
        if ch.recording is not None and not ch.recording.stopped:
            ch.recording.stop(t)
        if ch.origin_device is not None and (ch.peer is None or ch.peer.gone):
            self._member_device(ch.origin_device, 1)
        self.notify()

    def _soft_hangup_request(self, ch: Channel, cause: int) -> None:
        self.emit("SoftHangupRequest", [*self.snap(ch), ("Cause", str(cause))])

    def _hangup_request(self, ch: Channel, cause: int) -> None:
        self.emit("HangupRequest", [*self.snap(ch), ("Cause", str(cause))])

    async def hangup_from_two(self, two: Channel, *, by_app: bool, cause: int = 16) -> None:
        """The phone behind a Local ``;2`` half hangs up: the ``;1`` half gets a hangup request."""
        if two.gone:
            return
        one = two.peer
        if by_app:
            self.newexten(two, "Hangup", "", priority=two.priority + 1)
        self._soft_hangup_request(two, cause)
        if one is not None and not one.gone:
            self._hangup_request(one, cause)
            one.hangup_cause = cause
        self._final_hangup(two, cause)
        self.device_state(two.device, "NOT_INUSE")
        if one is not None:
            one.hangup_ev.set()
        self.notify()
        await asyncio.sleep(0)

    def hangup_from_one(self, one: Channel, cause: int = 16, *, bridge: Bridge | None = None) -> None:
        """The dialplan on ``;1`` hangs up (``Hangup()``): the whole Local pair goes away."""
        if one.gone:
            return
        two = one.peer
        self._soft_hangup_request(one, cause)
        if two is not None and not two.gone:
            self._hangup_request(two, cause)
        if bridge is not None:
            self._bridge_destroy(bridge)
            if two is not None and not two.gone:
                self._soft_hangup_request(two, cause)
                self._final_hangup(two, cause)
            self._final_hangup(one, cause)
        else:
            self._final_hangup(one, cause)
            if two is not None and not two.gone:
                self._soft_hangup_request(two, cause)
                self._final_hangup(two, cause)
        self.device_state(one.device, "NOT_INUSE")
        self.device_state(one.device, "NOT_INUSE")

    def _finish_dead_one(self, one: Channel) -> None:
        """``;1`` after a hangup request: the dialplan ends (``h``), the channel is destroyed."""
        if one.gone:
            return
        two = one.peer
        if two is not None and not two.gone:  # e.g. shutdown: the phone side goes too
            self._soft_hangup_request(two, 16)
            self._final_hangup(two, one.hangup_cause)
        self._soft_hangup_request(one, 16)
        self._final_hangup(one, one.hangup_cause)
        self.device_state(one.device, "NOT_INUSE")

    # ------------------------------------------------------------- bridges
    def _bridge_headers(self, b: Bridge) -> Headers:
        return [
            ("BridgeUniqueid", b.uid),
            ("BridgeType", "basic"),
            ("BridgeTechnology", "simple_bridge"),
            ("BridgeCreator", "<unknown>"),
            ("BridgeName", "<unknown>"),
            ("BridgeNumChannels", str(len(b.channels))),
            ("BridgeVideoSourceMode", "none"),
        ]

    def _bridge_create(self) -> Bridge:
        b = Bridge(self._bridge_id())
        self.emit("BridgeCreate", self._bridge_headers(b))
        return b

    def _bridge_enter(self, b: Bridge, ch: Channel) -> None:
        b.channels.append(ch)
        ch.bridge = b
        t = self.now()
        if ch.recording:
            ch.recording.set_bridged(t, True)
        self.emit("BridgeEnter", [*self._bridge_headers(b), *self.snap(ch)], t=t)

    def _bridge_leave(self, b: Bridge, ch: Channel) -> None:
        if ch in b.channels:
            b.channels.remove(ch)
        ch.bridge = None
        t = self.now()
        if ch.recording:
            ch.recording.set_bridged(t, False)
        self.emit("BridgeLeave", [*self._bridge_headers(b), *self.snap(ch)], t=t)

    def _bridge_destroy(self, b: Bridge) -> None:
        if b.destroyed:
            return
        b.destroyed = True
        self.emit("BridgeDestroy", self._bridge_headers(b))

    # ------------------------------------------------------------- DTMF / hold
    def send_dtmf(self, two: Channel, digits: str) -> None:
        """The phone behind ``two`` sends DTMF: the ``;1`` half (Local peer) receives it."""
        target = two.peer or two
        for d in digits:
            self.emit("DTMFBegin", [*self.snap(target), ("Digit", d), ("Direction", "Received")])
            self.emit("DTMFEnd", [*self.snap(target), ("Digit", d), ("DurationMs", "100"), ("Direction", "Received")])
            if target.collecting:
                target.dtmf.put_nowait(d)

    def play_dtmf(self, ch: Channel, digit: str) -> None:
        """AMI PlayDTMF: ``ch`` sends the digit; the other half of a Local pair receives it."""
        self.emit("DTMFBegin", [*self.snap(ch), ("Digit", digit), ("Direction", "Sent")])
        self.emit("DTMFEnd", [*self.snap(ch), ("Digit", digit), ("DurationMs", "100"), ("Direction", "Sent")])
        if ch.peer is not None and not ch.peer.gone:
            self.emit("DTMFBegin", [*self.snap(ch.peer), ("Digit", digit), ("Direction", "Received")])
            self.emit("DTMFEnd", [*self.snap(ch.peer), ("Digit", digit), ("DurationMs", "100"), ("Direction", "Received")])
            if ch.peer.collecting:
                ch.peer.dtmf.put_nowait(digit)

    def atxfer(self, ch: Channel, feature_code: str, exten: str, context: str) -> None:
        """AMI Atxfer (manager.c ``action_atxfer``): the feature code and the extension are queued on
        ``ch`` as DTMF read from it; the bridge's attended-transfer hook acts on them only when the
        bridge gave ``ch`` the transfer features (Queue option ``t``), otherwise nothing happens."""
        for d in feature_code + exten:
            self.emit("DTMFBegin", [*self.snap(ch), ("Digit", d), ("Direction", "Received")])
            self.emit("DTMFEnd", [*self.snap(ch), ("Digit", d), ("DurationMs", "100"), ("Direction", "Received")])
        if ch.transfer_features and ch.bridge is not None and not ch.hangup_ev.is_set():
            ch.atxfer_to = (exten, context or ch.vars.get("TRANSFER_CONTEXT") or ch.context)
            ch.atxfer_ev.set()
            self.notify()

    def hold(self, ch: Channel, music_class: str | None = "default") -> None:
        """``Hold`` raised on ``ch``: a desk phone's own hold (re-INVITE sendonly) raises it on the
        phone's channel with ``MusicClass`` and keeps every bridge (ami-pjsip-phone-hold); the
        attended-transfer hold on the transferer has no ``MusicClass`` (ami-attended-transfer)."""
        ch.on_hold = True
        self.emit("Hold", [*self.snap(ch), *([("MusicClass", music_class)] if music_class else [])])

    def unhold(self, ch: Channel) -> None:
        ch.on_hold = False
        self.emit("Unhold", self.snap(ch))

    # ------------------------------------------------------------- public driving API
    def agent(self, exten: str, behavior: AgentBehavior | None = None, **kw: Any) -> AgentHandle:
        """The agent phone for extension ``exten`` (created on first use).

        ``pbx.agent("1001", manual=True)`` → the test answers/hangs up;
        ``pbx.agent("1002", answer_after=2, hangup_after=30)`` → scripted.
        """
        if behavior is None and kw:
            behavior = AgentBehavior(**kw)
        h = self.agents.get(exten)
        if h is None:
            h = AgentHandle(self, exten, behavior or AgentBehavior())
            self.agents[exten] = h
        elif behavior is not None:
            h.behavior = behavior
        return h

    def add_member(
        self,
        queue: str,
        interface: str,
        name: str | None = None,
        *,
        penalty: int = 0,
        paused: bool = False,
        reason: str = "",
        state_interface: str | None = None,
    ) -> Member:
        """Like AMI QueueAdd (emits QueueMemberAdded). Raises KeyError/ValueError like the action fails."""
        q = self.queues[queue]
        if interface in q.members:
            raise ValueError("Already there")
        self._member_seq += 1
        now = int(self.now())
        m = Member(
            queue=queue,
            interface=interface,
            name=name or interface,
            state_interface=state_interface or interface,
            penalty=penalty,
            paused=paused,
            paused_reason=reason if paused else "",
            last_pause=now if paused else 0,
            login_time=now,
            wrapuptime=int(q.cfg.wrapuptime),
            ringinuse=q.cfg.ringinuse,
            added_seq=self._member_seq,
        )
        # a member already busy in another queue is INUSE here too
        for other in self.queues.values():
            om = other.members.get(interface)
            if om is not None and om.in_call:
                m.status = 2
        q.members[interface] = m
        self.device_state(f"Queue:{queue}_pause_{interface}", "INUSE" if paused else "NOT_INUSE")
        self.emit("QueueMemberAdded", m.headers())
        self.queue_log.add_member(queue, m.name)
        self.device_state(f"Queue:{queue}_avail", "NOT_INUSE")
        self.notify()
        return m

    def remove_member(self, queue: str, interface: str) -> Member:
        q = self.queues[queue]
        m = q.members.pop(interface)
        self.emit("QueueMemberRemoved", m.headers())
        self.queue_log.remove_member(queue, m.name)
        self.device_state(f"Queue:{queue}_avail", "NOT_INUSE" if self._available(q) else "INUSE")
        self.notify()
        return m

    def pause_member(self, queue: str | None, interface: str, paused: bool, reason: str = "") -> list[Member]:
        targets = [q for q in self.queues.values() if (queue is None or q.name == queue) and interface in q.members]
        if not targets:
            raise KeyError(interface)
        out = []
        for q in targets:
            m = q.members[interface]
            m.paused = paused
            m.paused_reason = reason if paused else ""
            if paused:
                m.last_pause = int(self.now())
            self.device_state(f"Queue:{q.name}_pause_{interface}", "INUSE" if paused else "NOT_INUSE")
            self.device_state(f"Queue:{q.name}_avail", "NOT_INUSE" if self._available(q) else "INUSE")
            self.emit("QueueMemberPause", m.headers())
            out.append(m)
        if out:
            (self.queue_log.pause if paused else self.queue_log.unpause)(
                [mm.queue for mm in out] if queue is None else queue, out[0].name, reason)
        self.notify()
        return out

    def set_penalty(self, queue: str | None, interface: str, penalty: int) -> list[Member]:
        targets = [q for q in self.queues.values() if (queue is None or q.name == queue) and interface in q.members]
        if not targets or penalty < 0:
            raise KeyError(interface)
        out = []
        for q in targets:
            m = q.members[interface]
            m.penalty = penalty
            self.emit("QueueMemberPenalty", m.headers())  # the full member blob, like the other QueueMember* events
            out.append(m)
        self.notify()
        return out

    def script(self, name: str, steps: Sequence[Step]) -> None:
        """Register a ``[sim-caller]`` script usable as ``Originate Channel=Local/<name>@sim-caller``."""
        self.scripts[name] = list(steps)

    async def dial(
        self,
        number: str,
        name: str | None = None,
        *,
        exten: str = "s",
        context: str = "ivr-in",
        script: Sequence[Step] | None = None,
        variables: dict[str, str] | None = None,
        trunk: bool = False,
    ) -> Call:
        """An inbound call from ``number`` into ``context,exten``; returns a :class:`Call` to drive.

        Modelled like the captures: ``Local/<number>@sim-caller`` whose ``;2`` half is the
        caller's phone (driven by ``script`` or by the Call methods) and whose ``;1``
        half runs the dialplan. Returns once the call is answered and the dialplan runs.
        """
        if trunk:
            # a real SIP call on the trunk (live-2026-12 ami-pjsip-*): one PJSIP/trunk-… channel, Ring
            # until the dialplan answers it (the IVR's ANSWER), DTMF received on it
            self._chan_seq += 1
            one = two = self._new_channel(f"PJSIP/trunk-{self._chan_seq:08x}", context, exten, 4)
            one.device = "PJSIP/trunk"
            one.cid_num, one.cid_name = number, name
            self.emit("Newchannel", self.snap(one))
            for k, v in (variables or {}).items():
                self.setvar(one, k, v)
        else:
            one, two = self._originate_setup(number, "sim-caller", False, (number, name), variables or {}, dialstring=None)
        call = Call(self, one, two)
        self.calls.append(call)
        if not trunk:
            self._answer_local(one, two)
        self._start_dialplan(one, context, exten)
        if script is not None:
            call.task = self.spawn(call.run(script), f"caller {number}")
        else:
            self.spawn(self._hold_two_open(two), f"phone {number}")
        await asyncio.sleep(0)
        return call

    async def _hold_two_open(self, two: Channel) -> None:
        """A manually driven phone: stays up until hung up from either side."""
        await two.hangup_ev.wait()

    # ------------------------------------------------------------- originate
    def _originate_setup(
        self,
        exten: str,
        context: str,
        nolocal_opt: bool,
        callerid: tuple[str | None, str | None],
        variables: dict[str, str],
        dialstring: str | None,
        conn_unknown_one: bool = False,
    ) -> tuple[Channel, Channel]:
        one, two = self._local_pair(exten, context, None)
        self.newexten(one, "AppDial2", "(Outgoing Line)")
        for k, v in variables.items():
            self.setvar(one, k, v)
        num, name = callerid
        self._set_callerid(one, num, name)
        self._set_connected(one, num, name)
        two.conn_num, two.conn_name = num, name
        for k, v in variables.items():
            self.setvar(two, k, v)
        self._set_callerid(two, num, name)
        self._set_connected(two, num, name)
        self._local_bridge(one, two, not nolocal_opt)
        self.emit("DialBegin", [*self.snap(one, "Dest"), ("DialString", dialstring or f"{exten}@{context}")])
        return one, two

    def _answer_local(self, one: Channel, two: Channel) -> None:
        """The ``;2`` phone answers an originated Local pair."""
        self.newexten(two, "Answer", "")
        self._newstate(two, 6)
        self.device_state(two.device, "INUSE")
        self._newstate(one, 6)
        self.device_state(one.device, "INUSE")
        self.emit("DialEnd", [*self.snap(one, "Dest"), ("DialStatus", "ANSWER")])

    async def originate(
        self,
        channel: str,
        *,
        context: str | None = None,
        exten: str | None = None,
        priority: int = 1,
        application: str | None = None,
        data: str = "",
        callerid: str = "",
        variables: dict[str, str] | None = None,
        timeout: float = 30.0,
        action_id: str | None = None,
        async_: bool = True,
    ) -> tuple[bool, Channel | None]:
        """Emulates AMI Originate. Returns (answered, ;1 channel). Emits OriginateResponse when async."""
        m = re.fullmatch(r"Local/([^@/]+)@([^/]+?)(/n)?", channel)
        num, name = parse_callerid(callerid)
        if not m:
            self._originate_failed(channel, context, exten, action_id, async_, reason=0)
            return False, None
        lexten, lctx, nflag = m.group(1), m.group(2), m.group(3)
        behavior, script, agent = self._endpoint(lctx, lexten)
        if behavior is None and script is None:
            self._originate_failed(channel, context, exten, action_id, async_, reason=0)
            return False, None
        one, two = self._originate_setup(lexten, lctx, bool(nflag), (num, name), variables or {}, None)
        answered = asyncio.get_running_loop().create_future()

        async def run_two() -> None:
            if script is not None:
                ok = True
            else:
                assert behavior is not None
                ok = await self._ring_phone(two, behavior, agent, timeout)
            if not ok:
                self._originate_noanswer(one, two)
                if not answered.done():
                    answered.set_result(False)
                self._originate_failed(channel, context, exten, action_id, async_, reason=3)
                return
            self._answer_local(one, two)
            one.origin_device = two.origin_device = two.device
            self._member_device(two.device, 2)
            if async_ and action_id is not None:
                self.emit(
                    "OriginateResponse",
                    [
                        ("ActionID", action_id),
                        ("Response", "Success"),
                        ("Channel", one.name),
                        # Originate Application=: the application and its data instead (ami-chanspy-listen.raw)
                        *([("Application", application), ("Data", data)] if application and context is None
                          else [("Context", context or ""), ("Exten", exten or "")]),
                        ("Reason", "4"),
                        ("Uniqueid", one.uniqueid),
                        ("CallerIDNum", num or "<unknown>"),
                        ("CallerIDName", name or "<unknown>"),
                    ],
                )
            if not answered.done():
                answered.set_result(True)
            if context is not None and exten is not None:
                self._start_dialplan(one, context, exten, priority)
            elif application:
                self.spawn(self._run_application(one, application, data), f"app {application} {one.name}")
            if script is not None:
                call = Call(self, one, two)
                self.calls.append(call)
                await call.run(script)
            else:
                assert behavior is not None
                await self._talk_phone(two, behavior, agent)

        self.spawn(run_two(), f"originate {channel}")
        ok = await answered
        return ok, one

    def _originate_noanswer(self, one: Channel, two: Channel) -> None:
        self.emit("DialEnd", [*self.snap(one, "Dest"), ("DialStatus", "NOANSWER")])
        self._hangup_request(two, 0)
        self._final_hangup(one, 0)
        self._soft_hangup_request(two, 16)
        self._final_hangup(two, 0)

    def _originate_failed(
        self, channel: str, context: str | None, exten: str | None, action_id: str | None, async_: bool, reason: int
    ) -> None:
        if async_ and action_id is not None:
            self.emit(
                "OriginateResponse",
                [
                    ("ActionID", action_id),
                    ("Response", "Failure"),
                    ("Channel", channel),
                    ("Context", context or ""),
                    ("Exten", exten or ""),
                    ("Reason", str(reason)),
                    ("Uniqueid", "<null>"),
                    ("CallerIDNum", "<unknown>"),
                    ("CallerIDName", "<unknown>"),
                ],
            )

    def _endpoint(self, context: str, exten: str) -> tuple[AgentBehavior | None, list[Step] | None, AgentHandle | None]:
        """What answers ``Local/<exten>@<context>``: a caller script, or an agent phone."""
        if context == "sim-caller":
            return None, self.scripts.get(exten) or _live_caller_script(exten), None
        if context == "callcore-test-caller":  # asterisk-config/extensions.conf, live e2e tests
            return None, _test_caller_script(exten), None
        agent = self.agents.get(exten)
        if context in CONTEXT_BEHAVIORS and (agent is None or context != "agents"):
            return CONTEXT_BEHAVIORS[context], None, None
        if agent is not None:
            return agent.behavior, None, agent
        if context == "agents":
            return CONTEXT_BEHAVIORS["agents"], None, None
        return None, None, None

    async def _ring_phone(self, two: Channel, behavior: AgentBehavior, agent: AgentHandle | None, timeout: float) -> bool:
        """Ring the phone behind ``two`` (an originate): True when it answers within ``timeout``."""
        if agent is not None and behavior.manual:
            agent._reset()
            leg = _Leg(Member("", "", agent.exten, ""), two.peer or two, two, behavior, agent, self.now())
            agent.current = leg
            agent.calls.append(leg.one)
            self.notify()
            try:
                while True:
                    kind, cmd = await self.wait_on(two, timeout, queue=agent._cmd)
                    if kind == "timeout" or cmd == "reject":
                        agent.current = None
                        return False
                    if cmd == "answer":
                        leg.answered = True
                        leg.connected.set()
                        return True
            except HungUp:
                agent.current = None
                return False
        if behavior.answer_after is None or behavior.answer_after > timeout:
            try:
                await self.wait_on(two, timeout)
            except HungUp:
                pass
            return False
        try:
            await self.wait_on(two, behavior.answer_after)
        except HungUp:
            return False
        return True

    async def phone_talks(
        self, chan: Channel, behavior: AgentBehavior, agent: AgentHandle | None, *, wait_app: bool = False
    ) -> bool:
        """An answered phone talks: until the test says ``hangup`` (manual), for
        ``hangup_after`` seconds (``wait_app``: as the dialplan's ``Wait()``), or until the
        other side leaves (``hangup_after`` None). True when the phone hangs up now.
        Raises :class:`HungUp` when the other side hangs up first."""
        if agent is not None and behavior.manual:
            while True:
                _, cmd = await self.wait_on(chan, None, queue=agent._cmd)
                if cmd == "hangup":
                    return True
        if behavior.hangup_after is None:
            await chan.hangup_ev.wait()
            return False
        if wait_app:
            self.newexten(chan, "Wait", _fmt_num(behavior.hangup_after), priority=2)
        await self.wait_on(chan, behavior.hangup_after)
        return True

    async def talk_then_hang_up(self, two: Channel, behavior: AgentBehavior, agent: AgentHandle | None) -> None:
        """A Local agent half: talk (:meth:`phone_talks`), then hang up from the phone side."""
        if await self.phone_talks(two, behavior, agent, wait_app=True):
            await self.hangup_from_two(two, by_app=True)

    async def _talk_phone(self, two: Channel, behavior: AgentBehavior, agent: AgentHandle | None) -> None:
        """After answering an originate: talk, then hang up from the phone side."""
        try:
            await self.talk_then_hang_up(two, behavior, agent)
        except HungUp:
            return
        finally:
            if agent is not None and agent.current is not None and agent.current.two is two:
                agent.current = None

    # ------------------------------------------------------------- dialplan
    def _start_dialplan(self, one: Channel, context: str, exten: str, priority: int = 1) -> None:
        one.context, one.exten, one.priority = context, exten, priority
        self.spawn(self._run_dialplan(one), f"dialplan {one.name}")

    async def _run_dialplan(self, ch: Channel) -> None:
        from .dialplan import run_context

        target: tuple[str, str, int] | None = (ch.context, ch.exten, ch.priority)
        try:
            while target is not None:
                ctx, ext, prio = target
                ch.context, ch.exten, ch.priority = ctx, ext, prio
                ch.redirect_ev.clear()
                ch.redirect_to = None
                try:
                    if ctx == BRIDGE_TARGET:
                        # yanked into a bridge by AMI Bridge: sit there, then the after-bridge goto
                        target = await self._sit_in_bridge(ch, ext, prio)  # type: ignore[arg-type]
                        continue
                    await run_context(self, ch, ctx, ext)
                    target = None
                except Redirected as r:
                    target = r.target
        except HungUp:
            pass
        if not ch.gone:
            if ch.hangup_ev.is_set():
                self._finish_dead_one(ch)
            else:
                self.newexten(ch, "Hangup", "", priority=ch.priority + 1)
                bridge, ch.dead_bridge = ch.dead_bridge, None
                self.hangup_from_one(ch, ch.pending_cause or 16, bridge=bridge)

    async def _run_application(self, one: Channel, application: str, data: str) -> None:
        """Originate ``Application=``/``Data=``: the answered channel runs the application, then hangs up."""
        from .dialplan import chanspy

        try:
            if application.lower() == "chanspy":
                await chanspy(self, one, data)
        except HungUp:
            pass
        if not one.gone:
            if one.ami_hangup:  # AMI Hangup of this channel: it goes, then the Local ;2 behind it
                self._final_hangup(one, one.hangup_cause)
                if one.peer is not None:
                    self._final_hangup(one.peer, one.hangup_cause)
                self.device_state(one.device, "NOT_INUSE")
            elif one.hangup_ev.is_set():
                self._finish_dead_one(one)
            else:
                self.hangup_from_one(one, 16)

    # ------------------------------------------------------------- redirect / hangup (AMI)
    def redirect(self, ch: Channel, context: str, exten: str, priority: int = 1) -> None:
        """AMI Redirect (``ast_async_goto``): whatever the channel runs (an app, a bridge) gives it up
        and the dialplan continues at ``context,exten,priority``. A bridged channel without a
        dialplan of its own (the agent leg of a queue call) leaves the bridge and starts one."""
        ch.redirect_to = (context, exten, priority)
        ch.redirect_ev.set()
        self.notify()

    def bridge_channels(self, first: Channel, second: Channel) -> Bridge:
        """AMI ``Bridge`` (features.c ``action_bridge``): a new basic bridge; each channel is pulled out of
        the dialplan application it runs (``ast_bridge_add_channel`` → ``ast_channel_yank``; MusicOnHold
        stops) and imparted. Each gets an after-bridge goto to where it was (the next priority, as it
        runs in the dialplan's autoloop): when the bridge dissolves it continues there."""
        b = self._bridge_create()
        for ch in (first, second):
            after = (ch.context, ch.exten, ch.priority + 1)
            self.stop_moh(ch)
            ch.redirect_to = (BRIDGE_TARGET, b, after)  # type: ignore[assignment]
            ch.redirect_ev.set()
            ch.yanked_ev.set()
        self.notify()
        return b

    async def _sit_in_bridge(self, ch: Channel, b: Bridge, after: tuple[str, str, int]) -> tuple[str, str, int]:
        self._bridge_enter(b, ch)
        self.notify()
        try:
            kind, _ = await self.wait_on(ch, None, event=b.dissolved, redirectable=True)
        except HungUp:
            self._bridge_leave(b, ch)
            self._dissolve(b)
            raise
        except Redirected as r:
            self._bridge_leave(b, ch)
            self._dissolve(b)
            return r.target
        # the other party left: the basic bridge dissolved and kicked us out
        self._bridge_leave(b, ch)
        if not b.channels:
            self._bridge_destroy(b)
        ch.priority = after[2] - 1
        return after

    def _dissolve(self, b: Bridge) -> None:
        b.dissolved.set()
        if not b.channels:
            self._bridge_destroy(b)
        self.notify()

    # ------------------------------------------------------------- music on hold
    def start_moh(self, ch: Channel, music_class: str = "default") -> None:
        if ch.moh is not None:
            return
        ch.moh = music_class
        ch.moh_log.append((self.now(), "start", music_class))
        self.emit("MusicOnHoldStart", [*self.snap(ch), ("Class", music_class)])

    def detach_spies(self, target: Channel) -> None:
        """The spied channel goes away: every ChanSpy on it stops (``ChanSpyStop``)."""
        for spyer in list(target.spies):
            target.spies.remove(spyer)
            self.emit("ChanSpyStop", [("Spyer" + k, v) for k, v in self.snap(spyer)] + [("Spyee" + k, v) for k, v in self.snap(target)])
        self.notify()

    def stop_moh(self, ch: Channel) -> None:
        if ch.moh is None:
            return
        ch.moh_log.append((self.now(), "stop", ch.moh))
        ch.moh = None
        if not ch.gone:
            self.emit("MusicOnHoldStop", self.snap(ch))

    async def hangup_channel(self, ch: Channel, cause: int | None = 16) -> None:
        """AMI Hangup / soft hangup of any channel (``cause=None``: AMI Hangup without a Cause)."""
        if ch.gone:
            return
        if cause is None:
            cause = 16 if ch.bridge is not None else 0
        if ch.app == "ChanSpy" and ch.bridge is None and ch.peer is not None and ch.name.endswith(";1"):
            # an originated ChanSpy channel: ;1 (running the application) goes first, then its ;2
            ch.ami_hangup = True
            ch.hangup_cause = cause
            ch.hangup_ev.set()
        elif ch.queue_bridge is not None and ch.bridge is ch.queue_bridge and ch.peer is not None and not ch.peer.gone:
            # a queue caller's ;1 itself (live-2026-12 captures: "caller hangs up" = AMI Hangup of the
            # caller ;1): it leaves app_queue's bridge first, its ;2 follows (queueapp.connect)
            ch.ami_hangup = True
            ch.hangup_cause = cause
            ch.hangup_ev.set()
        elif ch.peer is not None and ch.name.endswith(";2"):
            await self.hangup_from_two(ch, by_app=False, cause=cause)
        elif ch.peer is not None and ch.name.endswith(";1") and ch.peer and not ch.peer.gone:
            # hanging up ;1 also hangs up the phone behind ;2
            await self.hangup_from_two(ch.peer, by_app=False, cause=cause)
        else:
            ch.hangup_cause = cause
            ch.hangup_ev.set()
        self.notify()

    # ------------------------------------------------------------- queues
    def _available(self, q: Queue) -> list[Member]:
        now = self.now()
        out = []
        for m in q.members.values():
            if m.paused or m.ringing:
                continue
            if not q.cfg.ringinuse and (m.in_call or m.status not in (0, 1) or self._busy_elsewhere(m.interface)):
                continue
            # shared_lastcall = yes: the wrapup follows the member's last call in any queue
            last = max((qq.members[m.interface].last_call_t for qq in self.queues.values() if m.interface in qq.members), default=0.0)
            if m.wrapuptime and last and now - last < m.wrapuptime:
                continue
            out.append(m)
        return out

    def _busy_elsewhere(self, interface: str) -> bool:
        for q in self.queues.values():
            m = q.members.get(interface)
            if m is not None and (m.in_call or m.ringing):
                return True
        return False

    def _pick(self, q: Queue, avail: list[Member]) -> list[Member]:
        if not avail:
            return []
        strategy = q.cfg.strategy
        best_pen = min(m.penalty for m in avail)
        avail = [m for m in avail if m.penalty == best_pen]
        if strategy == "ringall":
            return avail
        if strategy == "leastrecent":
            # ties go to the member added last (app_queue builds its call list by prepending)
            return [min(avail, key=lambda m: (m.last_call, -m.added_seq))]
        if strategy == "fewestcalls":
            return [min(avail, key=lambda m: (m.calls_taken, -m.added_seq))]
        if strategy == "random":
            return [self.rng.choice(avail)]
        if strategy in ("rrmemory", "linear", "rrordered"):
            order = list(q.members.values())
            n = len(order)
            start = q.rr_next % n if strategy != "linear" else 0
            for i in range(n):
                m = order[(start + i) % n]
                if m in avail:
                    return [m]
            return []
        return avail

    async def queue_app(self, ch: Channel, qname: str, timeout: float | None, prio: int) -> str:
        """``Queue(qname,t,,,timeout)`` on the caller channel ``ch``. Returns QUEUESTATUS."""
        from .queueapp import run_queue

        return await run_queue(self, ch, qname, timeout, prio)

    # ------------------------------------------------------------- restart
    async def shutdown(self, restart: bool = True) -> None:
        """``core restart now``: hang up every channel (cause 0), ``Shutdown``, drop the AMI sockets.

        With ``restart`` the PBX comes back after ``restart_downtime`` with no dynamic
        queue members and fresh statistics (persistentmembers=no).
        """
        for ch in [c for c in self.all_channels if not c.gone and c.name.endswith(";1") and c.peer is not None]:
            self._soft_hangup_request(ch, 4)
            if not ch.peer.gone:
                self._soft_hangup_request(ch.peer, 4)
            ch.hangup_cause = 0
            ch.vars["__shutdown"] = "1"
            ch.hangup_ev.set()
        for ch in [c for c in self.all_channels if not c.gone and c.peer is None]:
            ch.hangup_cause = 0
            ch.hangup_ev.set()
        await asyncio.sleep(0)
        self._close_agi()  # Asterisk drops its FastAGI sockets when it goes down
        await self.wait_for(lambda: all(c.gone for c in self.all_channels), 5.0, "channels gone at shutdown")
        self.emit("Shutdown", [("Shutdown", "Cleanly"), ("Restart", "True" if restart else "False")])
        assert self.ami is not None
        await self.ami.stop_listening()
        await self.ami.drop_sessions()
        if restart:
            await self.sleep(self.cfg.restart_downtime)
            self._reset_queues()
            self._boot_virtual = self.now()
            await self.ami.start(self.cfg.ami_host, self.ami.port)
