"""The recording service: live recordings of calls, PCI pause/resume, the durable
post-processing job, retention, legal hold, deletion, search and playback.

Telephony first: every AMI action (``MixMonitorMute``, ``StopMixMonitor``) is
sent before the bookkeeping it implies; database writes run afterwards in owned
tasks and are retried (:meth:`RecordingService._write`).

Where the recording happens: the dialplan starts ``MixMonitor`` at queue entry
(``asterisk-config/extensions.conf`` ``[queue-entry]``, file ``${UNIQUEID}.wav`` of
the caller channel — the Linkedid, i.e. callcore's call id, never caller text;
option ``b``: audio only while bridged). The AMI user deliberately lacks the
``system`` class, so callcore cannot *start* MixMonitor over AMI; with the
``call`` class it can stop (``StopMixMonitor``: the policy says don't record)
and mute (``MixMonitorMute``: PCI pause). See docs/recording.md.

The file clock: with option ``b`` the WAV only grows while the caller is bridged
to an agent, so muted spans and agent spans are kept in *file seconds* — time
while the call is talking and not on hold — which is what a player seeks to.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable
from zoneinfo import ZoneInfo

from sqlalchemy.exc import DBAPIError

from callcore.retry import backoff_delay, retrying
from cti.ami import actions as act
from recording import crypto
from recording.notifier import RecordingNotifier
from recording.models import DELETED, DISCARDED, FAILED, PENDING, PURGED, READY, RECORDING
from recording.policy import CallFacts, Decision, PolicySet, decide
from recording.processing import BadAudio, analyse_bytes, analyse_file, convert_to_file, spill, stereo_from_legs
from recording.repository import RecordingRepository, SearchFilters, aware
from recording.storage import NotFound, Storage, StorageError, put_file

log = logging.getLogger("callcore.recording")

_TAG = re.compile(r"^[\w-]{1,40}$")
#: an Asterisk Uniqueid/Linkedid: ``<epoch>.<seq>``, or ``<systemname>-<epoch>.<seq>`` when asterisk.conf
#: ``systemname`` is set (several Asterisk servers, issue 19; the name is restricted to [A-Za-z0-9_-])
_CALL_ID = re.compile(r"^(?:[A-Za-z0-9_-]{1,40}-)?[0-9]{1,20}\.[0-9]{1,10}$")
CONTENT_TYPES = {"wav": "audio/wav", "mp3": "audio/mpeg", "opus": "audio/ogg"}
MISSING_RETRIES = 3  # the PBX closes the file just after the hangup: look again a few times
AUDIO_PIECE = 1 << 20  # playback reads (and decrypts) at most this much at a time


# the shared domain errors (callcore/errors.py): the routes catch RecordingError, the common base
from callcore.errors import Conflict, DomainError as RecordingError, Forbidden, NotFound as NotFoundError  # noqa: E402,F401
from callcore.errors import Unavailable  # noqa: E402,F401


class Gone(RecordingError):
    status = 410


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


def _server(call: Any) -> str | None:
    """The Asterisk server of the call (issue 19, ``Call.server``); None when not known."""
    return getattr(call, "server", None) or None


def source_name(call_id: str) -> str:
    """The file the dialplan writes for a call. Only an Asterisk id is accepted: no caller
    text, no path separators (AST-2012-004 / AST-2014-006 class)."""
    if not _CALL_ID.match(call_id):
        raise ValueError(f"not an Asterisk call id: {call_id!r}")
    return f"{call_id}.wav"


def leg_files(monitor_dir: Path, call_id: str) -> tuple[Path, Path]:
    """MixMonitor ``r()`` / ``t()`` files of a stereo recording (caller, agent)."""
    base = source_name(call_id).rsplit(".", 1)[0]
    return monitor_dir / f"{base}-caller.wav", monitor_dir / f"{base}-agent.wav"


def storage_key(call_id: str, started: datetime, fmt: str) -> str:
    name = source_name(call_id).rsplit(".", 1)[0]
    return f"{started:%Y/%m/%d}/{name}.{fmt}"


@dataclass
class FileClock:
    """Seconds of audio in the file as a function of time on one clock (Asterisk's, from the
    events' ``Timestamp`` header): the file grows only while ``running``."""

    started: float
    file_seconds: float = 0.0
    running_since: float | None = None

    def offset(self, t: float) -> float:
        running = (t - self.running_since) if self.running_since is not None else 0.0
        return round(self.file_seconds + max(0.0, running), 3)

    def set_running(self, running: bool, t: float) -> None:
        if running and self.running_since is None:
            self.running_since = t
        elif not running and self.running_since is not None:
            self.file_seconds += max(0.0, t - self.running_since)
            self.running_since = None


@dataclass
class Live:
    """A recording in progress (memory only; the row is written beside it)."""

    call_id: str
    channel: str | None
    started_at: float  # MixMonitorStart seen
    bridged_only: bool = True
    file_seconds: float = 0.0
    running_since: float | None = None
    file_start: float | None = None  # when audio first went into the file
    muted_at: float | None = None  # file offset where the current pause began
    muted_by: str | None = None
    muted_reason: str | None = None
    spans: list[dict[str, Any]] = field(default_factory=list)
    agents: list[dict[str, Any]] = field(default_factory=list)
    holds: list[dict[str, Any]] = field(default_factory=list)  # closed holds (file offsets + seconds)
    held_at: tuple[float, float] | None = None  # (file offset, clock) where the current hold began
    queues: list[str] = field(default_factory=list)
    late_start: bool = False
    late_start_seconds: float | None = None
    stopped: bool = False  # stopped by policy
    decision: Decision | None = None
    auto_resume: asyncio.Task | None = None
    ivr_paused: bool = False
    #: the dialed number (DID) as the IVR saw it (agi_dnid): the CTI's ``dialed`` of a Local channel
    #: is the Local's extension, not the DID (see :meth:`RecordingService.facts`)
    called: str | None = None
    #: the decision of stage ``call`` when the IVR started MixMonitor at call entry (``start: call``)
    call_decision: Decision | None = None
    #: the same file clock on Asterisk's clock (events with ``Timestamp``), from MixMonitorStart on;
    #: ``ast_ok`` goes False when MixMonitorStart came without a timestamp (then callcore's clock)
    ast: FileClock | None = None
    ast_ok: bool = True
    ast_muted_at: float | None = None
    ast_spans: list[tuple[float, float]] = field(default_factory=list)
    ast_end: float | None = None
    row_task: asyncio.Task | None = None  # the start row's write; the end write waits for it
    #: which clock the spans are on: {"muted_spans": "asterisk"|"callcore", "agents": ...} (set at the end)
    clock: dict[str, str] = field(default_factory=lambda: {"muted_spans": "callcore", "agents": "callcore"})

    def offset(self, now: float) -> float:
        running = (now - self.running_since) if self.running_since is not None else 0.0
        return round(self.file_seconds + max(0.0, running), 3)

    def set_running(self, running: bool, now: float) -> None:
        if running and self.running_since is None:
            self.running_since = now
            if self.file_start is None:
                self.file_start = now
        elif not running and self.running_since is not None:
            self.file_seconds += max(0.0, now - self.running_since)
            self.running_since = None


class RecordingService:
    def __init__(
        self,
        sessionmaker: Any,
        storage: Storage,
        policy: PolicySet,
        *,
        ami: Any = None,
        monitor_dir: Path,
        keyring: crypto.Keyring | None = None,
        encrypt: bool = False,
        convert_to: str = "wav",
        timezone_name: str = "UTC",
        pause_max_seconds: float = 180.0,
        job_max_attempts: int = 6,
        job_backoff_seconds: float = 5.0,
        job_poll_seconds: float = 2.0,
        purge_interval_seconds: float = 3600.0,
        agents_see_own: bool = True,
        clock: Callable[[], float] = time.time,
        audit: Any = None,
        bus: Any = None,
    ) -> None:
        if encrypt and keyring is None:
            raise ValueError("recording_encrypt needs recording_master_keys and recording_master_key_id")
        self.repo = RecordingRepository(sessionmaker)
        self.storage = storage
        self.audio_piece = AUDIO_PIECE  # playback: bytes read (and decrypted) at a time
        self.policy = policy
        self.ami = ami
        self.monitor_dir = Path(monitor_dir)
        self.keyring = keyring
        self.encrypt = encrypt
        self.convert_to = convert_to
        self.tz = ZoneInfo(timezone_name)
        self.pause_max_seconds = pause_max_seconds
        self.job_max_attempts = job_max_attempts
        self.job_backoff_seconds = job_backoff_seconds
        self.job_poll_seconds = job_poll_seconds
        self.purge_interval_seconds = purge_interval_seconds
        #: scale-out (issue 19): with several instances, only the AMI holder runs the purge and
        #: orphan recovery (it has the live calls); None: one instance, always
        self.leader: Callable[[], bool] | None = None
        self.agents_see_own = agents_see_own
        self.clock = clock
        self.audit = audit
        self.notifier = RecordingNotifier(bus)
        #: reports (issue 16): ``observer(stage, info)`` hears each recording's fate — ``decided`` at
        #: the call's end (pending / discarded), ``processed`` (ready / failed); wired in callcore/wiring.py
        self.observer: Callable[[str, dict[str, Any]], None] | None = None
        self.live: dict[str, Live] = {}
        #: call id -> the live CTI call (set by the wiring from the CTI state; routes use it)
        self.call_lookup: Callable[[str], Any] | None = None
        #: whether this process's CTI state has been rebuilt from Asterisk at least once (set by the
        #: wiring: the resyncer's count). Until then a call that looks new may be one that began before
        #: this process (a restart, a take-over) and may have a recording row: None = never trust it
        self.synced: Callable[[], bool] | None = None
        #: calls this process saw from their first channel, after its first resync, not recorded so far:
        #: at their end there is no row from a previous process to look for (issue 18)
        self._fresh: set[str] = set()
        self.unrecorded_lookups = 0  # ended calls never recorded here whose row was looked up (restart/take-over)
        self.unrecorded_skipped = 0  # ... and those known from their start: no lookup
        self._tasks: set[asyncio.Task] = set()
        self._loops: list[asyncio.Task] = []
        self._wake = asyncio.Event()
        self._event_tail: asyncio.Task | None = None
        self.write_failures = 0
        self.jobs_done = 0
        #: pending + running post-processing jobs, as of the last job-loop pass (read by /metrics)
        self.jobs_backlog = 0

    # ------------------------------------------------------------ lifecycle
    def _spawn(self, coro: Awaitable[Any], name: str) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro, name=name)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("recording task %s failed", task.get_name(), exc_info=task.exception())

    async def start(self, *, jobs: bool = True, purge: bool = True) -> None:
        if jobs:
            self._loops.append(asyncio.get_running_loop().create_task(self._job_loop(), name="recording-jobs"))
        if purge:
            self._loops.append(asyncio.get_running_loop().create_task(self._purge_loop(), name="recording-purge"))

    async def recover_orphans(self, min_age_seconds: float = 60.0) -> int:
        """Rows left ``recording`` by a callcore that stopped mid-call, whose call is no
        longer live: the call ended while we were away. Their file (if any) goes to the job;
        no file means nothing to keep. Runs at start and with every purge round."""
        cutoff = _utc(self.clock() - min_age_seconds)
        n = 0
        for rec in await self.repo.stale_recording(cutoff):
            if rec["call_id"] in self.live or (self.call_lookup and self.call_lookup(rec["call_id"]) is not None):
                continue
            src = self.monitor_dir / source_name(rec["call_id"])
            if src.exists():
                await self.repo.update(rec["id"], status=PENDING,
                                       status_reason="callcore was restarted during the call; metadata is partial")
                await self.repo.enqueue(rec["id"], "process", _utc(self.clock()))
            else:
                await self.repo.update(rec["id"], status=DISCARDED, status_reason="call ended while callcore was down; no file")
            n += 1
        if n:
            self._wake.set()
        return n

    async def stop(self) -> None:
        for live in self.live.values():
            if live.auto_resume is not None:
                live.auto_resume.cancel()
        pending = [t for t in self._tasks if not t.get_name().startswith("recording-autoresume")]
        if pending:  # finish the bookkeeping already started (bounded)
            await asyncio.wait(pending, timeout=3)
        for task in [*self._loops, *self._tasks]:
            task.cancel()
        await asyncio.gather(*self._loops, *self._tasks, return_exceptions=True)
        self._loops.clear()

    async def idle(self, timeout: float = 5.0) -> None:
        """Wait (bounded) until the bookkeeping tasks started so far are done (tests, shutdown)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            busy = [t for t in self._tasks if not t.get_name().startswith("recording-autoresume") and t is not asyncio.current_task()]
            left = deadline - asyncio.get_running_loop().time()
            if not busy or left <= 0:
                return
            await asyncio.wait(busy, timeout=left)

    async def _write(self, what: str, fn: Callable[[], Awaitable[Any]], attempts: int = 4) -> Any:
        """A bookkeeping write, retried with callcore's one backoff policy (``callcore.retry``)."""
        try:
            async for attempt in retrying(f"recording: {what}", attempts=attempts, first_wait=0.2, max_wait=2.0):
                with attempt:
                    return await fn()
        except Exception:  # noqa: BLE001 - logged by the retry policy; counted
            self.write_failures += 1
            return None

    # ------------------------------------------------------------ facts & policy
    def facts(self, call: Any, live: Live | None, *, outcome: str | None = None) -> CallFacts:
        origin = getattr(call, "origin", None)
        direction = origin if origin in ("click-to-call", "callback") else getattr(call, "direction", "inbound")
        queues = list(live.queues) if live else []
        if getattr(call, "queue", None) and call.queue not in queues:
            queues.append(call.queue)
        agents = [a["agent_id"] for a in (live.agents if live else [])]
        if getattr(call, "agent_id", None) and call.agent_id not in agents:
            agents.append(call.agent_id)
        return CallFacts(
            at=datetime.fromtimestamp(call.started_at, tz=self.tz), direction=direction, queues=tuple(queues),
            agents=tuple(agents), called=self.called_number(call, live), outcome=outcome,
        )

    @staticmethod
    def called_number(call: Any, live: Live | None = None) -> str | None:
        """The DID the caller dialed. The IVR's (``agi_dnid``, kept on the live recording and in the
        call's IVR context) wins over the CTI's ``dialed``: for a call that arrives on a Local channel
        (the emulator's ``ivr-in`` calls, ``Local/<caller>@sim-caller``) the first channel's
        ``Exten`` is the caller's number, not the DID, and "called" rules would never match."""
        if live is not None and live.called:
            return live.called
        ivr = getattr(call, "ivr_context", None) or {}
        dialed = ivr.get("dialed") if isinstance(ivr, dict) else None
        if dialed:
            return str(dialed)
        if getattr(call, "direction", None) == "outbound":  # click-to-call / callback: the number the agent dialled
            return getattr(call, "dialed", None) or getattr(call, "caller_num", None)
        return getattr(call, "dialed", None)

    # ------------------------------------------------------------ live call (from the CTI subscriber)
    def call_changed(self, kind: str, call: Any, agent_id: str | None, now: float, ast: float | None = None) -> None:
        """Cheap and synchronous: follow one call's recording from a CTI change. ``ast`` is
        Asterisk's time of the event behind the change (``Timestamp``), or None."""
        if kind == "call.created":
            if self.synced is not None and self.synced() and _born_here(call):
                if len(self._fresh) >= 100_000:  # calls that never ended here (cannot happen in normal runs):
                    self._fresh.clear()  # forget them, their end is looked up as before (never wrong, only slower)
                self._fresh.add(call.id)
        live = self.live.get(call.id)
        if live is None and getattr(call, "recording", False) and kind != "call.ended":
            live = self._begin(call, now)
        if live is not None:
            self._follow_asterisk_clock(live, call, ast)
        if live is None:
            if kind == "call.ended":
                if call.id in self._fresh:  # seen from its start and never recorded: no row can exist
                    self._fresh.discard(call.id)
                    self.unrecorded_skipped += 1
                else:  # began before this process (restart, take-over): a row may be left open
                    self.unrecorded_lookups += 1
                    self._spawn(self._finish_unrecorded(call), f"recording-end-{call.id}")
            return
        self._fresh.discard(call.id)  # recorded: followed through ``live`` from now on
        if call.queue and call.queue not in live.queues:
            live.queues.append(call.queue)
        if kind == "call.queued" and live.decision is None:
            self._decide_at_entry(call, live)
        if kind == "call.answered" and (agent_id or call.agent_id):
            self._agent_on(live, agent_id or call.agent_id, now, ast)  # a transfer target answering too
        running = call.status == "talking" and not call.on_hold and live.stopped is False
        if not live.bridged_only:
            running = not live.stopped
        if kind == "call.ended":
            running = False
        if kind == "call.held" and live.held_at is None:
            live.held_at = (live.offset(now), now)
        live.set_running(running, now)
        if live.ast is not None and ast is not None:
            live.ast.set_running(running, ast)
            self._follow_mute(live, call, ast)
            if kind == "call.ended":
                live.ast_end = ast
        if kind in ("call.unheld", "call.ended") and live.held_at is not None:
            self._close_hold(live, now)
        if kind == "call.ended":
            self.live.pop(call.id, None)
            if live.auto_resume is not None:
                live.auto_resume.cancel()
            if live.muted_at is not None:
                self._close_span(live, now, "call ended")
            for a in live.agents:
                if a["to"] is None:
                    a["to"] = live.offset(now)
            ast_from = {a["agent_id"]: a["ast_from"] for a in reversed(live.agents) if a.get("ast_from") is not None}
            live.agents = _agent_spans(call, live, now) or live.agents
            for a in live.agents:  # each agent's first arrival on Asterisk's clock, when it was seen
                if a["agent_id"] in ast_from:
                    a["ast_from"] = ast_from[a["agent_id"]]
            self._apply_asterisk_clock(live, live.offset(now))
            self._spawn(self._finish(call, live, now), f"recording-end-{call.id}")

    # ------------------------------------------------------------ Asterisk's clock (timestampevents)
    def _follow_asterisk_clock(self, live: Live, call: Any, ast: float | None) -> None:
        """Start the file clock on Asterisk's time at MixMonitorStart. Changes no AMI event caused
        (API transfer/hold, timer) have no Asterisk time: they leave that clock alone, and the AMI
        events that follow them (BridgeLeave, MixMonitorMute ...) move it."""
        if live.ast is not None or not live.ast_ok or not getattr(call, "recording", False):
            return
        if ast is None:  # MixMonitorStart without Timestamp: timestampevents is off
            live.ast_ok = False
            return
        # the first change of a recording call with call.recording on is its MixMonitorStart
        live.ast = FileClock(ast)
        if not live.bridged_only:
            live.ast.set_running(True, ast)

    def _follow_mute(self, live: Live, call: Any, ast: float) -> None:
        """MixMonitorMute events (``call.recording_muted``) on Asterisk's clock."""
        assert live.ast is not None
        muted = bool(getattr(call, "recording_muted", False))
        if muted and live.ast_muted_at is None:
            live.ast_muted_at = live.ast.offset(ast)
        elif not muted and live.ast_muted_at is not None:
            live.ast_spans.append((live.ast_muted_at, live.ast.offset(ast)))
            live.ast_muted_at = None

    def _apply_asterisk_clock(self, live: Live, local_end: float) -> None:
        """Spans from Asterisk's timestamps when the events carry them (from MixMonitorStart on, one
        muted span per pause, every agent's arrival seen on it); otherwise callcore's clock. Says
        which in ``live.clock``."""
        ok = live.ast_ok and live.ast is not None
        if ok and live.ast_muted_at is not None and live.ast_end is not None:  # muted until the end
            live.ast_spans.append((live.ast_muted_at, live.ast.offset(live.ast_end)))  # type: ignore[union-attr]
            live.ast_muted_at = None
        muted = "asterisk" if ok and len(live.ast_spans) == len(live.spans) else "callcore"
        if muted == "asterisk":
            for span, (start, end) in zip(live.spans, live.ast_spans):
                span["callcore"] = {"start": span["start"], "end": span["end"]}
                span["start"], span["end"] = start, end
        agents = "asterisk" if ok and live.agents and all(a.get("ast_from") is not None for a in live.agents) else "callcore"
        if agents == "asterisk":
            end = live.ast.offset(live.ast_end) if live.ast is not None and live.ast_end is not None else None
            for i, a in enumerate(live.agents):
                tail = max(0.0, local_end - (a["to"] if a["to"] is not None else local_end))  # after the agent left
                a["from"] = a.pop("ast_from")
                nxt = live.agents[i + 1].get("ast_from") if i + 1 < len(live.agents) else None
                last = (end - tail) if end is not None else a["from"]
                a["to"] = round(max(a["from"], nxt if nxt is not None else last), 3)
        for a in live.agents:
            a.pop("ast_from", None)
        live.clock = {"muted_spans": muted, "agents": agents}

    def _begin(self, call: Any, now: float) -> Live:
        # MixMonitor runs on the channel whose Uniqueid is the call id (the file is ``${UNIQUEID}.wav``):
        # the caller's for inbound calls, the agent side's Local ;1 running [outbound] for click-to-call
        leg = call.legs.get(call.id) or call.caller_leg
        live = Live(call.id, leg.channel if leg is not None else None, now)
        if call.answered_at is not None:  # MixMonitor began after an agent had the call
            live.late_start = True
            live.late_start_seconds = round(now - call.answered_at, 3)
        self.live[call.id] = live
        live.row_task = self._spawn(self._write(f"start row {call.id}", lambda: self.repo.upsert(
            call.id, started_at=_utc(call.started_at), recording_started_at=_utc(now), status=RECORDING,
            channel=live.channel, direction=call.direction, caller_num=call.caller_num, caller_name=call.caller_name,
            called=self.called_number(call), late_start=live.late_start, late_start_seconds=live.late_start_seconds,
            server=_server(call),
        )), f"recording-row-{call.id}")
        return live

    # IVR port (ivr.ports.RecordingControl): the call enters the IVR
    async def call_entered(self, channel: Any) -> bool:
        """Policy ``start: call``: when the decision at call entry says so, ask Asterisk to start
        MixMonitor on the caller's channel now (AGI ``EXEC MixMonitor``), so the IVR — and a
        ``sensitive: true`` collect in it, muted while the caller types — is in the recording.

        The file name and the options come only from callcore's call id (the Linkedid, checked
        to be ``digits.digits``) and fixed letters — never from caller text (AST-2012-004 /
        AST-2014-006). No ``b``: the file runs from now, bridged or not. The dialplan's
        ``[queue-entry]`` sees ``MIXMONITOR_FILENAME`` set and does not start a second one.
        Returns whether a recording was started."""
        info = channel.info
        call_id = info.linkedid or info.uniqueid
        if not call_id or not _CALL_ID.match(call_id) or call_id in self.live and self.live[call_id].call_decision:
            return False
        call = self.call_lookup(call_id) if self.call_lookup else None
        started_at = float(getattr(call, "started_at", None) or self.clock())
        direction = getattr(call, "direction", None) or "inbound"
        from types import SimpleNamespace

        facts_of = SimpleNamespace(started_at=started_at, direction=direction, origin=getattr(call, "origin", None),
                                   queue=None, agent_id=None, dialed=info.dialed or None, ivr_context=None)
        d = decide(self.policy, self.facts(facts_of, None), stage="call")
        if not (d.record and d.start == "call"):
            return False
        base = source_name(call_id).rsplit(".", 1)[0]
        options = ""
        if d.channels == "stereo":
            caller, agent = leg_files(Path("."), call_id)
            options = f"r({caller.name})t({agent.name})"
        try:
            await channel.exec("MixMonitor", f"{base}.wav", options) if options else await channel.exec("MixMonitor", f"{base}.wav")
        except Exception as exc:  # noqa: BLE001 - the caller is served; [queue-entry] still records from the queue
            log.warning("MixMonitor at call entry for %s failed (%s); recording starts at queue entry", call_id, exc)
            return False
        now = self.clock()  # telephony first: Asterisk records, then the bookkeeping
        live = self.live.get(call_id)
        if live is None:  # MixMonitorStart not seen yet: the recording is known from the IVR's side
            live = Live(call_id, info.channel or None, now)
            self.live[call_id] = live
            live.row_task = self._spawn(self._write(f"start row {call_id}", lambda: self.repo.upsert(
                call_id, started_at=_utc(started_at), recording_started_at=_utc(now), status=RECORDING,
                channel=live.channel, direction=direction, caller_num=info.caller_num, caller_name=info.caller_name,
                called=info.dialed or None, late_start=False, late_start_seconds=None, server=_server(call),
            )), f"recording-row-{call_id}")
        live.call_decision = d
        live.called = info.dialed or live.called
        live.bridged_only = False  # no option b: the file runs from MixMonitor's start
        live.set_running(True, live.started_at)
        if live.ast is not None:
            live.ast.set_running(True, live.ast.started)
        self._event(call_id, "started", now, "ivr", f"policy: {d.reason}; start: call", {"start": "call"})
        return True

    def hand_off_variables(self, queue: str | None, dialed: str | None, started_at: float,
                           direction: str = "inbound") -> list[tuple[str, str]]:
        """Channel variables the IVR sets before ``[queue-entry]`` runs MixMonitor: the
        policy's decision at queue entry as fixed tokens (the dialplan turns them into
        MixMonitor options from literal letters — no value from here reaches the options)."""
        from types import SimpleNamespace

        call = SimpleNamespace(started_at=started_at, direction=direction, origin=None, queue=queue, agent_id=None,
                               dialed=dialed)
        d = decide(self.policy, self.facts(call, None), final=False)
        return [
            ("CALLCORE_RECORD", "1" if d.record else "0"),
            # start: call is done by the IVR (call_entered); if that did not happen, the queue entry is the next best
            ("CALLCORE_REC_START", "queue" if d.start in ("queue_entry", "call") else "agent"),
            ("CALLCORE_REC_STEREO", "1" if d.channels == "stereo" else "0"),
        ]

    def originate_variables(self, origin: str, number: str, agent_id: str | None = None,
                            started_at: float | None = None) -> dict[str, str]:
        """Channel variables of a click-to-call / callback ``Originate`` (cti/outbound.py): the
        policy's decision when the call is placed (direction ``click-to-call``/``callback``, called
        number = the number dialled, time) as fixed tokens. The ``[outbound]`` dialplan starts
        ``MixMonitor(${UNIQUEID}.wav,b…)`` when ``CALLCORE_RECORD=1`` (option ``b``: audio only
        once the customer is bridged — a customer who never answers leaves no file)."""
        from types import SimpleNamespace

        direction = origin if origin in ("click-to-call", "callback") else "outbound"
        call = SimpleNamespace(started_at=started_at or self.clock(), direction="outbound", origin=direction,
                               queue=None, agent_id=agent_id, dialed=number, ivr_context=None)
        d = decide(self.policy, self.facts(call, None), stage="call")
        return {"CALLCORE_RECORD": "1" if d.record else "0", "CALLCORE_REC_STEREO": "1" if d.channels == "stereo" else "0"}

    def _decide_at_entry(self, call: Any, live: Live) -> None:
        live.decision = decide(self.policy, self.facts(call, live), final=False)
        if live.decision.record and live.decision.start in ("queue_entry", "call"):
            live.bridged_only = False  # MixMonitor without option b: the file runs from its start
            live.set_running(True, live.started_at)
            if live.ast is not None:
                live.ast.set_running(True, live.ast.started)
        if not live.decision.record and live.channel and self.ami is not None:
            live.stopped = True
            self._spawn(self._stop_mixmonitor(live.channel, call.id, live.decision.reason), f"recording-stop-{call.id}")

    async def _stop_mixmonitor(self, channel: str, call_id: str, why: str) -> None:
        try:
            await self.ami.send(act.stop_mix_monitor(channel))
            log.info("recording of %s stopped by policy (%s)", call_id, why)
        except Exception as exc:  # noqa: BLE001 - the end decision deletes the file anyway
            log.warning("StopMixMonitor for %s failed (%s); the file is deleted when the call ends", call_id, exc)

    def _agent_on(self, live: Live, agent_id: str, now: float, ast: float | None = None) -> None:
        if live.agents and live.agents[-1]["agent_id"] == agent_id and live.agents[-1]["to"] is None:
            return
        at = live.offset(now)
        for a in live.agents:
            if a["to"] is None:
                a["to"] = at
        entry = {"agent_id": agent_id, "from": at, "to": None, "at": round(now, 3)}
        if live.ast is not None and ast is not None:
            entry["ast_from"] = live.ast.offset(ast)
        live.agents.append(entry)

    @staticmethod
    def _close_hold(live: Live, now: float) -> None:
        """A hold ended: its place on the file's timeline and how long the caller waited. With
        option ``b`` the file does not grow on hold (start == end: a point on the timeline)."""
        at, since = live.held_at  # type: ignore[misc]
        live.holds.append({"start": at, "end": live.offset(now), "seconds": round(max(0.0, now - since), 3), "at": round(since, 3)})
        live.held_at = None

    # ------------------------------------------------------------ PCI pause / resume
    def may_control(self, call: Any, subject: str, role: str) -> bool:
        if role in ("supervisor", "admin"):
            return True
        live = self.live.get(call.id)
        on_call = {call.agent_id, *(a["agent_id"] for a in (live.agents if live else []))}
        return subject in on_call and subject == call.agent_id

    def is_paused(self, call_id: str) -> bool:
        """Whether the live recording of ``call_id`` is paused right now (PCI pause or IVR card mute)."""
        live = self.live.get(call_id)
        return live is not None and live.muted_at is not None

    async def pause(self, call_id: str, actor: str, reason: str | None = None, *, source: str = "api") -> dict[str, Any]:
        live = self.live.get(call_id)
        if live is None:
            raise NotFoundError(f"call {call_id} is not being recorded")
        if live.muted_at is not None:
            raise Conflict(f"the recording of call {call_id} is already paused")
        if not live.channel:
            raise Conflict(f"call {call_id}: no channel to mute")
        await self._mute(live.channel, True)  # telephony first
        now = self.clock()
        live.muted_at, live.muted_by, live.muted_reason = live.offset(now), actor, reason or "pci"
        if self.pause_max_seconds > 0:
            live.auto_resume = self._spawn(self._auto_resume(call_id, live), f"recording-autoresume-{call_id}")
        self._event(call_id, "paused", now, actor, live.muted_reason, {"offset": live.muted_at, "source": source})
        self.notifier.paused(self._on_call(live), {
            "call_id": call_id, "offset": live.muted_at, "by": actor, "reason": live.muted_reason, "source": source,
            "auto_resume_after": self.pause_max_seconds,
        })
        return {"call_id": call_id, "paused": True, "offset": live.muted_at, "auto_resume_after": self.pause_max_seconds}

    async def resume(self, call_id: str, actor: str, reason: str | None = None, *, source: str = "api",
                     kind: str = "resumed") -> dict[str, Any]:
        live = self.live.get(call_id)
        if live is None:
            raise NotFoundError(f"call {call_id} is not being recorded")
        if live.muted_at is None:
            raise Conflict(f"the recording of call {call_id} is not paused")
        await self._mute(live.channel or "", False)
        now = self.clock()
        span = self._close_span(live, now, reason)
        if live.auto_resume is not None and live.auto_resume is not asyncio.current_task():
            live.auto_resume.cancel()
        live.auto_resume = None
        self._event(call_id, kind, now, actor, reason, {"span": span, "source": source})
        self.notifier.resumed(self._on_call(live), {"call_id": call_id, "span": span, "by": actor, "source": source})
        return {"call_id": call_id, "paused": False, "span": span}

    def _on_call(self, live: Live) -> list[str | None]:
        call = self.call_lookup(live.call_id) if self.call_lookup else None
        return [a["agent_id"] for a in live.agents] + [getattr(call, "agent_id", None)]

    def _close_span(self, live: Live, now: float, reason: str | None) -> dict[str, Any]:
        span = {"start": live.muted_at, "end": live.offset(now), "by": live.muted_by, "reason": live.muted_reason}
        live.spans.append(span)
        live.muted_at = live.muted_by = live.muted_reason = None
        return span

    async def _auto_resume(self, call_id: str, live: Live) -> None:
        await asyncio.sleep(self.pause_max_seconds)
        if self.live.get(call_id) is live and live.muted_at is not None:
            try:
                await self.resume(call_id, "system", f"auto-resume after {self.pause_max_seconds:g} s",
                                  source="timer", kind="auto_resumed")
            except RecordingError as exc:
                log.warning("auto-resume of %s: %s", call_id, exc)

    async def _mute(self, channel: str, state: bool) -> None:
        if self.ami is None:
            raise Unavailable("no AMI connection in this process")
        try:
            resp = await self.ami.send(act.mix_monitor_mute(channel, state, "both"))
        except Exception as exc:  # noqa: BLE001 - AmiNotConnected, timeouts
            raise Unavailable(f"MixMonitorMute failed: {exc}") from exc
        if resp is not None and getattr(resp, "success", True) is False:
            raise Conflict(f"Asterisk refused MixMonitorMute: {getattr(resp, 'message', '')}")

    def _event(self, call_id: str, kind: str, now: float, actor: str | None, reason: str | None,
               data: dict[str, Any] | None = None) -> None:
        previous = self._event_tail

        async def write() -> None:
            if previous is not None:  # events land in the order they happened
                await asyncio.wait([previous])
            await self._write(f"event {kind} {call_id}", lambda: self.repo.add_event(
                call_id, kind, _utc(now), actor, reason, data))

        self._event_tail = self._spawn(write(), f"recording-event-{call_id}")
        if self.audit is not None:  # the security package's audit log: async record(actor, action, target, details)
            details = {"reason": reason, **(data or {})}
            self._spawn(self._write(f"audit recording.{kind} {call_id}", lambda: self.audit.record(
                actor or "system", f"recording.{kind}", call_id, details)), f"recording-audit-{call_id}")

    # IVR port (ivr.ports.RecordingControl): a ``sensitive: true`` collect node
    async def sensitive_input(self, call_id: str, active: bool, node: str) -> None:
        live = self.live.get(call_id)
        if live is None:
            return  # not recorded (yet): nothing to mute
        try:
            if active and live.muted_at is None:
                await self.pause(call_id, "ivr", f"sensitive input ({node})", source="ivr")
                live.ivr_paused = True
            elif not active and live.ivr_paused and live.muted_at is not None:
                live.ivr_paused = False
                await self.resume(call_id, "ivr", f"sensitive input done ({node})", source="ivr")
        except RecordingError as exc:
            log.warning("IVR sensitive input on %s: %s", call_id, exc)

    # ------------------------------------------------------------ end of call
    async def _finish_unrecorded(self, call: Any) -> None:
        """A call that never had a MixMonitor: a row left by a restart is closed."""
        existing = await self._write(f"lookup {call.id}", lambda: self.repo.by_call(call.id))
        if existing and existing["status"] == RECORDING:
            await self._finish(call, Live(call.id, None, call.started_at), self.clock())

    async def _finish(self, call: Any, live: Live, now: float) -> None:
        if live.row_task is not None:
            await asyncio.wait([live.row_task])
        outcome = getattr(call, "outcome", None) or ("answered" if call.answered_at else "unanswered")
        decision = decide(self.policy, self.facts(call, live, outcome=outcome), final=True)
        try:
            src = self.monitor_dir / source_name(call.id)
        except ValueError:
            log.error("call id %r is not an Asterisk id; not looking for its recording", call.id)
            return
        answered = call.answered_at is not None or bool(live.agents)
        ended = _utc(call.ended_at or now)
        ivr = call.ivr_context or {}
        path = ivr.get("path") or [s.get("node") for s in ivr.get("steps", []) if isinstance(s, dict) and s.get("node")]
        fields: dict[str, Any] = dict(
            started_at=_utc(call.started_at), ended_at=ended, direction=self.facts(call, live).direction,
            caller_num=call.caller_num, caller_name=call.caller_name, called=self.called_number(call, live), queue=call.queue,
            queues=list(live.queues),
            agent_id=live.agents[0]["agent_id"] if live.agents else call.agent_id,
            agents=live.agents,
            uniqueids=sorted(call.legs), wait_seconds=_wait(call), talk_seconds=call.talk_time,
            hold_seconds=round(call.on_hold_seconds, 3), outcome=outcome, disposition=call.disposition,
            ivr_context=ivr or None, ivr_path=[str(p) for p in path],
            flow_version=str(ivr.get("version")) if ivr.get("version") is not None else None,
            muted=bool(live.spans), muted_spans=live.spans, hold_spans=live.holds, channel=live.channel, source_file=src.name,
            late_start=live.late_start, late_start_seconds=live.late_start_seconds, policy=decision.to_dict(),
            audio={"expected_seconds": live.ast.offset(live.ast_end) if live.clock["muted_spans"] == "asterisk"
                   and live.ast is not None and live.ast_end is not None else live.offset(now), "clock": live.clock},
        )
        if _server(call):  # not known (a call restored from an older journal): the row keeps what its start wrote
            fields["server"] = _server(call)
        facets = {"agent": [a["agent_id"] for a in live.agents], "queue": list(live.queues), "node": fields["ivr_path"]}
        if not answered or not decision.record:
            why = "call not answered: nothing is kept" if not answered else f"policy: {decision.reason}"
            for file in (src, *leg_files(self.monitor_dir, call.id)):
                await asyncio.to_thread(file.unlink, True)
            await self._write(f"discard {call.id}", lambda: self.repo.upsert(
                call.id, facets=facets, **fields, status=DISCARDED, status_reason=why))
            self._observe("decided", call.id, DISCARDED, required=False, started_at=call.started_at,
                          agent_id=fields["agent_id"], queue=call.queue, direction=fields["direction"], reason=why)
            return
        fields.update(
            status=PENDING, status_reason=None, retention_until=ended + timedelta(days=decision.retention_days),
            legal_hold=decision.legal_hold, qa_sample=decision.qa_sampling,
            hold_by="policy" if decision.legal_hold else None,
        )

        async def store() -> None:
            rid = await self.repo.upsert(call.id, facets=facets, **fields)
            await self.repo.enqueue(rid, "process", _utc(self.clock()))

        await self._write(f"finish {call.id}", store)
        self._observe("decided", call.id, PENDING, required=True, started_at=call.started_at,
                      agent_id=fields["agent_id"], queue=call.queue, direction=fields["direction"],
                      reason=decision.reason)
        self._wake.set()

    # ------------------------------------------------------------ the durable job
    async def _job_loop(self) -> None:
        while True:
            self._wake.clear()  # before the run: a call ending during it wakes the next one
            try:
                await self.run_due_jobs()
            except Exception:  # noqa: BLE001 - the loop must survive a database hiccup
                log.exception("recording job loop")
            try:
                await asyncio.wait_for(self._wake.wait(), self.job_poll_seconds)
            except TimeoutError:
                pass

    async def run_due_jobs(self, lease: float = 300.0) -> int:
        claimed = await self.repo.claim_due(_utc(self.clock()), lease)
        for job_id, recording_id, kind, attempts in claimed:
            await self._run_job(job_id, recording_id, attempts)
        self.jobs_backlog = await self.repo.count_backlog()  # one COUNT per pass, never at scrape time
        return len(claimed)

    async def _run_job(self, job_id: int, recording_id: int, attempts: int) -> None:
        try:
            await self.process(recording_id, attempts)
        except (StorageError, _Retry, OSError, DBAPIError) as exc:  # the backend or the database was away: retry
            err = f"{type(exc).__name__}: {exc}"
            now = _utc(self.clock())
            if attempts >= self.job_max_attempts:
                await self.repo.finish_job(job_id, "failed", now, err)
                await self.repo.update(recording_id, status=FAILED,
                                       status_reason=f"gave up after {attempts} attempts: {err}")
                await self._notify_processed(recording_id)
                return
            delay = backoff_delay(attempts - 1, self.job_backoff_seconds, self.job_backoff_seconds * 64)
            retry = now + timedelta(seconds=delay)
            log.warning("recording %s: attempt %d failed (%s); retry at %s", recording_id, attempts, err, retry)
            await self.repo.finish_job(job_id, "pending", now, err, retry_at=retry)
            return
        except Exception as exc:  # noqa: BLE001 - a bug must not loop the job forever
            log.exception("recording %s: processing crashed", recording_id)
            await self.repo.finish_job(job_id, "failed", _utc(self.clock()), f"{type(exc).__name__}: {exc}")
            await self.repo.update(recording_id, status=FAILED, status_reason=f"processing error: {type(exc).__name__}: {exc}")
            return
        await self.repo.finish_job(job_id, "done", _utc(self.clock()))
        self.jobs_done += 1
        await self._notify_processed(recording_id)

    async def _notify_processed(self, recording_id: int) -> None:
        rec = await self.repo.get(recording_id)
        if rec is not None and rec["status"] in (READY, FAILED):
            self.notifier.processed({"recording_id": recording_id, "call_id": rec["call_id"], "status": rec["status"],
                                     "reason": rec["status_reason"], "duration": rec["duration"]})
            started = datetime.fromisoformat(rec["started_at"]) if rec["started_at"] else None  # ISO, aware
            self._observe("processed", rec["call_id"], rec["status"], required=True,
                          started_at=started.timestamp() if started else self.clock(), agent_id=rec["agent_id"],
                          queue=rec["queue"], direction=rec["direction"], reason=rec["status_reason"])

    def _observe(self, stage: str, call_id: str, status: str, *, required: bool, started_at: float, **info: Any) -> None:
        """Tell the observer (reports) of a recording's fate; it never breaks the recording path."""
        if self.observer is None:
            return
        try:
            self.observer(stage, {"call_id": call_id, "status": status, "required": required,
                                  "at": self.clock(), "call_started_at": float(started_at), **info})
        except Exception:  # noqa: BLE001 - bookkeeping of bookkeeping
            log.exception("recording observer failed for %s", call_id)

    async def process(self, recording_id: int, attempts: int = 1) -> None:
        """Analyse, convert, encrypt and store one recording. Idempotent: a ready recording
        is left alone; a re-run after a crash overwrites the same object key."""
        row = await self.repo.get_row_fields(recording_id, "call_id", "status", "source_file", "started_at", "audio",
                                             "status_reason")
        if row is None or row["status"] != PENDING:
            return
        src = self.monitor_dir / source_name(row["call_id"])
        try:
            # streamed: a 4-hour recording is read a minute at a time (processing.analyse_file)
            analysis = await asyncio.to_thread(analyse_file, src)
        except BadAudio as exc:
            if exc.kind == "missing" and attempts < MISSING_RETRIES:
                raise _Retry(exc.reason) from exc
            await self.repo.update(recording_id, status=FAILED, status_reason=exc.reason)
            return
        fmt = "wav"
        source = src  # the file to store: the PBX's, the stereo one built from the legs, or converted
        work: list[Path] = []  # this job's temporary files, removed at the end
        notes = [row["status_reason"], *analysis.notes] if row["status_reason"] else list(analysis.notes)
        legs = leg_files(self.monitor_dir, row["call_id"])
        try:
            if all(p.exists() for p in legs):  # policy channels: stereo — caller left, agent right
                try:  # pydub, whole legs in memory (no streaming API); spilled to a file to convert and store
                    built = await asyncio.to_thread(stereo_from_legs, legs[0].read_bytes(), legs[1].read_bytes())
                    analysis = await asyncio.to_thread(analyse_bytes, built)
                    source = await asyncio.to_thread(spill, built)
                    work.append(source)
                    del built
                except BadAudio as exc:
                    notes.append(f"stereo legs unusable, kept the mixed file: {exc.reason}")
            if self.convert_to != "wav":
                try:  # ffmpeg reads the file and writes a temporary one: the audio is never in memory
                    converted = await asyncio.to_thread(convert_to_file, source, self.convert_to)
                    work.append(converted)
                    source, fmt = converted, self.convert_to
                except Exception as exc:  # noqa: BLE001 - keep the original
                    notes.append(f"conversion to {self.convert_to} failed, kept WAV: {type(exc).__name__}: {str(exc)[:200]}")
            key = storage_key(row["call_id"], aware(row["started_at"]), fmt)
            data_key = None
            if self.encrypt:
                assert self.keyring is not None
                data_key = crypto.new_data_key()
                key_id, wrapped = self.keyring.wrap(data_key)
                await self.repo.put_key(recording_id, key_id, wrapped)  # the key lands before the object
            # streamed: read, sealed, hashed and uploaded a piece at a time (S3: multipart)
            stored = await put_file(self.storage, key, source, data_key=data_key)
        finally:
            for path in work:
                await asyncio.to_thread(path.unlink, True)
        audio = {**(row["audio"] or {}), **analysis.to_dict(), "notes": notes}
        await self.repo.put_waveform(recording_id, analysis.waveform)
        await self.repo.update(
            recording_id, status=READY, status_reason="; ".join(notes) or None, duration=analysis.duration,
            audio=audio, format=fmt, size=stored.size, sha256=stored.sha256,
            storage_backend=self.storage.name, storage_key=key, encrypted=self.encrypt,
        )
        for path in (src, *legs):  # the storage backend keeps it now
            await asyncio.to_thread(path.unlink, True)

    # ------------------------------------------------------------ playback
    async def open_audio(self, recording_id: int) -> tuple[dict[str, Any], int]:
        rec = await self.repo.get(recording_id)
        if rec is None:
            raise NotFoundError(f"no recording {recording_id}")
        if rec["status"] in (PURGED, DELETED):
            raise Gone(f"recording {recording_id} was {rec['status']} ({rec['removed_reason']})")
        if rec["status"] != READY:
            raise Conflict(f"recording {recording_id} is {rec['status']}" + (f": {rec['status_reason']}" if rec["status_reason"] else ""))
        return rec, int(rec["size"] or 0)

    async def read_audio(self, rec: dict[str, Any], start: int, end: int) -> bytes:
        """Plaintext bytes ``start..end`` (inclusive) of a ready recording, in memory (a small range;
        playback streams with :meth:`stream_audio`)."""
        return b"".join([piece async for piece in self.stream_audio(rec, start, end)])

    async def stream_audio(self, rec: dict[str, Any], start: int, end: int,
                           piece: int | None = None) -> AsyncIterator[bytes]:
        """Plaintext bytes ``start..end`` (inclusive) of a ready recording in pieces of at most
        ``piece`` bytes, each read (and decrypted) from storage when the consumer asks for it:
        a whole 4-hour recording is never in memory. Storage and key errors are raised as the
        domain's errors (Gone, Unavailable) from whichever piece meets them."""
        piece = piece or self.audio_piece
        row = await self.repo.get_row_fields(rec["id"], "storage_key")
        key = row["storage_key"] if row else None
        if not key:
            raise Conflict("recording has no stored audio")
        try:
            if not rec["encrypted"]:
                pos = start
                while pos <= end:
                    n = min(piece, end - pos + 1)
                    data = await self.storage.read(key, pos, n)
                    if not data:
                        raise Unavailable(f"the stored audio of recording {rec['id']} ends at byte {pos}")
                    yield data
                    pos += len(data)
                return
            wrapped = await self.repo.get_key(rec["id"])
            if wrapped is None:
                raise Gone("the data key of this recording was erased (crypto-erase): the audio is unrecoverable")
            if self.keyring is None:
                raise Unavailable("recording is encrypted but no master keys are configured")
            data_key = self.keyring.unwrap(*wrapped)

            async def read(offset: int, length: int) -> bytes:
                return await self.storage.read(key, offset, length)

            async for data in crypto.decrypt_stream(data_key, read, start, end, piece):
                yield data
        except NotFound as exc:
            raise Gone(f"the stored audio of recording {rec['id']} is missing") from exc
        except StorageError as exc:
            raise Unavailable(str(exc)) from exc
        except crypto.CryptoError as exc:
            raise Unavailable(str(exc)) from exc

    async def log_access(self, recording_id: int, actor: str, role: str, action: str, client: str | None,
                         rng: str | None) -> None:
        await self._write(f"access log {recording_id}", lambda: self.repo.log_access(
            recording_id, actor, role, action, client, rng, _utc(self.clock())))

    # ------------------------------------------------------------ retention, hold, delete
    async def set_hold(self, recording_id: int, on: bool, actor: str, reason: str | None) -> dict[str, Any]:
        rec = await self.repo.get(recording_id)
        if rec is None:
            raise NotFoundError(f"no recording {recording_id}")
        if on and rec["status"] in (PURGED, DELETED, DISCARDED):
            raise Conflict(f"recording {recording_id} has no audio any more ({rec['status']}): nothing to hold")
        await self.repo.update(recording_id, legal_hold=on, hold_by=actor if on else None, hold_reason=reason if on else None)
        self._event(rec["call_id"], "hold" if on else "unhold", self.clock(), actor, reason, {"recording_id": recording_id})
        return await self.repo.get(recording_id)  # type: ignore[return-value]

    async def remove_audio(self, recording_id: int, actor: str, reason: str, *, status: str = DELETED,
                           force_hold: bool = False) -> dict[str, Any]:
        """Delete the audio (object and data key), keep the row marked with who and why."""
        rec = await self.repo.get(recording_id)
        if rec is None:
            raise NotFoundError(f"no recording {recording_id}")
        if rec["legal_hold"] and not force_hold:
            raise Conflict(f"recording {recording_id} is under legal hold ({rec['hold_reason'] or rec['hold_by']}); release the hold first")
        if rec["status"] in (PURGED, DELETED):
            return rec
        row = await self.repo.get_row_fields(recording_id, "storage_key")
        if row and row["storage_key"]:
            try:
                await self.storage.delete(row["storage_key"])
            except StorageError as exc:  # nothing is marked deleted unless the audio is gone
                raise Unavailable(f"storage: {exc}; nothing was deleted, try again") from exc
        await self.repo.delete_key(recording_id)
        if rec["source_file"]:
            await asyncio.to_thread((self.monitor_dir / rec["source_file"]).unlink, True)
        await self.repo.update(recording_id, status=status, removed_at=_utc(self.clock()), removed_by=actor,
                               removed_reason=reason)
        self._event(rec["call_id"], status, self.clock(), actor, reason, {"recording_id": recording_id})
        return await self.repo.get(recording_id)  # type: ignore[return-value]

    async def set_tags(self, recording_id: int, tags: list[str], actor: str) -> dict[str, Any]:
        rec = await self.get(recording_id)
        clean = sorted({t.strip().lower() for t in tags if t.strip()})
        bad = [t for t in clean if not _TAG.match(t)]
        if bad:
            raise RecordingError(f"tags are 1-40 letters, digits, '-' or '_': {bad}")
        await self.repo.set_facets(recording_id, {"tag": clean}, tags=clean)
        self._event(rec["call_id"], "tagged", self.clock(), actor, None, {"tags": clean})
        return await self.get(recording_id)

    async def crypto_erase(self, recording_id: int, actor: str, reason: str) -> bool:
        erased = await self.repo.delete_key(recording_id)
        if erased:
            rec = await self.repo.get(recording_id)
            self._event(rec["call_id"] if rec else str(recording_id), "crypto_erased", self.clock(), actor, reason,
                        {"recording_id": recording_id})
        return erased

    async def purge_once(self) -> list[int]:
        """Delete the audio of every recording past its retention and not on hold."""
        done = []
        for rid in await self.repo.due_for_purge(_utc(self.clock())):
            try:
                await self.remove_audio(rid, "retention", "retention period over", status=PURGED)
                done.append(rid)
            except (StorageError, RecordingError) as exc:
                log.warning("purge of recording %s: %s (retried next round)", rid, exc)
        return done

    async def _purge_loop(self) -> None:
        while True:
            try:
                if self.leader is not None and not self.leader():
                    await asyncio.sleep(min(self.purge_interval_seconds, 5.0))
                    continue
                await self.recover_orphans()
                purged = await self.purge_once()
                if purged:
                    log.info("retention purge: %d recordings", len(purged))
            except Exception:  # noqa: BLE001
                log.exception("recording purge loop")
            await asyncio.sleep(self.purge_interval_seconds)

    async def rotate_keys(self) -> int:
        """Rewrap every data key with the active master key (audio untouched)."""
        if self.keyring is None:
            raise RecordingError("no master keys configured")
        n = 0
        for rid, key_id, wrapped in await self.repo.all_keys():
            if key_id == self.keyring.active:
                continue
            new_id, new_wrapped = self.keyring.wrap(self.keyring.unwrap(key_id, wrapped))
            await self.repo.put_key(rid, new_id, new_wrapped)
            n += 1
        return n

    # ------------------------------------------------------------ search
    async def search(self, filters: SearchFilters, **kw: Any) -> tuple[list[dict[str, Any]], str | None]:
        return await self.repo.search(filters, **kw)

    async def get(self, recording_id: int) -> dict[str, Any]:
        rec = await self.repo.get(recording_id)
        if rec is None:
            raise NotFoundError(f"no recording {recording_id}")
        return rec


def _agent_spans(call: Any, live: Live, now: float) -> list[dict[str, Any]]:
    """Every agent who was on the call, in order, from the agent legs (a transfer target
    reached by extension emits no "answered" change, but its leg is there). Offsets are
    seconds from the start of the audio, on callcore's clock."""
    first: dict[str, float] = {}
    last: dict[str, float] = {}
    for leg in call.legs.values():
        if leg.agent_id and leg.answered_at is not None:
            first[leg.agent_id] = min(first.get(leg.agent_id, leg.answered_at), leg.answered_at)
            last[leg.agent_id] = max(last.get(leg.agent_id, 0.0), leg.ended_at or now)
    order = sorted(first, key=first.get)  # type: ignore[arg-type]
    base = live.file_start if live.file_start is not None else (first[order[0]] if order else now)
    spans = []
    for i, agent in enumerate(order):
        end = last[agent]
        if i + 1 < len(order):
            end = min(end, first[order[i + 1]])
        spans.append({"agent_id": agent, "from": round(max(0.0, first[agent] - base), 3),
                      "to": round(max(0.0, end - base), 3), "at": round(first[agent], 3)})
    return spans


class _Retry(Exception):
    """Try the job again later (the file may still be closing)."""


def _born_here(call: Any) -> bool:
    """The CTI call was created by a live AMI event of this process (its timeline starts with
    ``created``), not rebuilt by a resync (``rebuilt``) nor restored from the live-call journal."""
    events = getattr(call, "events", None) or ()
    return bool(events) and isinstance(events[0], dict) and events[0].get("event") == "created"


def _wait(call: Any) -> float | None:
    if call.queued_at is None:
        return None
    end = call.answered_at or call.ended_at
    return round(end - call.queued_at, 3) if end else None


def build_recording_service(settings: Any, *, sessionmaker: Any, ami: Any, clock: Callable[[], float] | None = None,
                            audit: Any = None, bus: Any = None) -> RecordingService:
    from recording.checker import load_policy
    from recording.storage import build_storage

    keyring = None
    if settings.recording_master_keys:
        keys = crypto.parse_master_keys({k: v.get_secret_value() for k, v in settings.recording_master_keys.items()})
        keyring = crypto.Keyring(keys, settings.recording_master_key_id or next(iter(keys)))
    return RecordingService(
        sessionmaker, build_storage(settings), load_policy(settings.recording_policies_file), ami=ami,
        monitor_dir=settings.effective_recordings_dir, keyring=keyring, encrypt=settings.recording_encrypt,
        convert_to=settings.recording_format, timezone_name=settings.recording_timezone,
        pause_max_seconds=settings.recording_pause_max_seconds, job_max_attempts=settings.recording_job_max_attempts,
        job_backoff_seconds=settings.recording_job_backoff_seconds, job_poll_seconds=settings.recording_job_poll_seconds,
        purge_interval_seconds=settings.recording_purge_interval_seconds,
        agents_see_own=settings.recording_agents_see_own, clock=clock or time.time, audit=audit, bus=bus,
    )
