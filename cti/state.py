"""Live CTI state: calls, agents and queues, built from typed AMI events only.

Why this file is over 500 lines: it is one pure state machine whose handlers share the
records and the indexes (uniqueid → call, interface → agent, extension → agent) below; it
was kept whole while the "who is on a call from channels and bridges" change (issue 9) and
the feature-service split (issue 10) landed at the same time. The planned split by concern
(``cti/state/`` calls, agents, queues, rebuild, keeping ``_HANDLERS`` and ``apply``) is in
ARCHITECTURE.md §3b.

Pure: no I/O, no clock (``now`` is an argument, epoch seconds), no asyncio.
:meth:`CtiState.apply` takes one event and returns the :class:`Change` list the
service turns into notifications / persistence. :meth:`CtiState.rebuild`
replaces the live picture with what a resync (CoreShowChannels, QueueStatus,
QueueSummary) reports, and returns the changes that implies (calls that ended
while the link was down, agents whose state moved).

Model:

* a **call** is one ``Linkedid``: every channel sharing it is a leg of it
  (the caller leg has ``Uniqueid == Linkedid``; Local ``;2`` halves are
  internal; agent legs are recognised by their channel matching a queue
  member interface, e.g. ``Local/1001@agents-00000002;1`` ↔ ``Local/1001@agents/n``);
* an **agent** is keyed by callcore's agent id; the directory maps interfaces
  to ids (``register_agent``), an unknown interface gets the id its dial
  string names (``Local/1001@...`` → ``1001``);
* a **queue** holds its waiting callers (call id → time entered), members and
  today's counters (answered, abandoned, answered within the service level);
* **who is on a call** comes from channels and bridges: each agent's :class:`AgentPart`
  opens when it answers (AgentConnect, or a plain Dial to its phone: a blind transfer to an
  agent) and closes when its last leg hangs up or an attended transfer moves the caller on;
  closing it starts the wrap-up and counts talk time and queue stats. app_queue's
  ``AgentComplete`` only confirms a part: it comes late (blind transfer) or never (after an
  unhold ``Bridge``) on a real Asterisk (ARCHITECTURE.md §3c).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any, Iterable

from cti.ami import events as ev

# ------------------------------------------------------------------ helpers
_CHAN_SUFFIX = re.compile(r"-[0-9a-fA-F]+(;\d)?$")
_AGENT_ID = re.compile(r"^[^/]+/([^@/;\-]+)")
_EXTEN_OF = re.compile(r"^(?:pjsip|sip|iax2|local)/(\d+)(?:@[a-z0-9_-]+)?$")


def interface_key(interface: str) -> str:
    """``Local/1001@agents/n`` → ``local/1001@agents``; ``SIP/1001`` → ``sip/1001``."""
    key = interface.strip()
    if key.endswith("/n"):
        key = key[:-2]
    return key.lower()


def channel_key(channel: str) -> str:
    """``Local/1001@agents-00000002;1`` → ``local/1001@agents``; ``PJSIP/1001-0000000a`` → ``pjsip/1001``."""
    return _CHAN_SUFFIX.sub("", channel).lower()


def default_agent_id(interface: str) -> str:
    m = _AGENT_ID.match(interface)
    return m.group(1) if m else interface


#: (UTC day number, its ``YYYY-MM-DD``) of the last :func:`_day` call: every queue event asks
#: for today's date, and ``strftime`` per event was ~1 µs (issue 18)
_LAST_DAY: tuple[float, str] = (float("nan"), "")


def _day(now: float) -> str:
    global _LAST_DAY
    number = now // 86400  # the UTC day (POSIX days are 86,400 s): same day, same string
    last = _LAST_DAY
    if last[0] == number:
        return last[1]
    text = time.strftime("%Y-%m-%d", time.gmtime(now))
    _LAST_DAY = (number, text)
    return text


# ------------------------------------------------------------------- records
@dataclass
class QueueSettings:
    """Per-queue behaviour the engine decides on (stored in ``cti_queue_settings``)."""

    name: str
    wrapup_seconds: int | None = None  # None: settings.default_wrapup_seconds
    service_level_seconds: int = 20
    overflow_queue: str | None = None
    overflow_after_seconds: int | None = None  # wait threshold before overflowing
    overflow_when_no_agent: bool = True
    callback_after_seconds: int | None = 300  # offer a callback when the estimated wait reaches this
    vip_priority: int = 10
    repeat_priority: int = 5
    default_handle_seconds: int = 180


@dataclass
class Leg:
    uniqueid: str
    channel: str
    role: str  # caller | agent | local | other
    agent_id: str | None = None
    state: str = ""
    created_at: float = 0.0
    answered_at: float | None = None
    ended_at: float | None = None
    cause: int | None = None
    cause_txt: str = ""
    bridge_id: str | None = None
    dial_status: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "uniqueid": self.uniqueid,
            "channel": self.channel,
            "role": self.role,
            "agent_id": self.agent_id,
            "state": self.state,
            "created_at": self.created_at,
            "answered_at": self.answered_at,
            "ended_at": self.ended_at,
            "cause": self.cause,
            "cause_txt": self.cause_txt,
            "dial_status": self.dial_status,
        }


@dataclass
class AgentPart:
    """One agent's part of a call: from answering (``AgentConnect``, a direct ``Dial`` answered,
    an attended transfer completed to the agent) to the agent leaving it: the agent's legs all
    hung up, an attended transfer moved the caller on, app_queue's ``AgentComplete`` — whichever
    comes first — or the call ending. Real app_queue sends ``AgentComplete`` late (blind transfer:
    at the caller's final hangup) or never (after hold by dual ``Redirect`` + ``Bridge``), so
    wrap-up, talk time and queue stats are driven by the parts, ``AgentComplete`` only confirms."""

    agent_id: str
    queue: str | None  # None: not a queue connect (direct dial, attended-transfer target)
    channel: str | None
    answered_at: float
    ended_at: float | None = None
    talk_time: int | None = None
    end_reason: str | None = None  # caller | agent | transfer (app_queue) · agent_left | transferred | call_ended
    confirmed: bool = False  # app_queue's AgentComplete for this part arrived
    queue_talk_time: int | None = None  # the TalkTime app_queue reported (may cover later agents)

    def to_dict(self) -> dict[str, Any]:
        return {
            "agent_id": self.agent_id,
            "queue": self.queue,
            "answered_at": self.answered_at,
            "ended_at": self.ended_at,
            "talk_time": self.talk_time,
            "end_reason": self.end_reason,
            "confirmed_by_queue": self.confirmed,
        }


@dataclass
class Call:
    id: str  # the Linkedid
    started_at: float
    server: str = ""  # the Asterisk server it lives on (issue 19: AmiEvent.server of its first event)
    direction: str = "inbound"  # inbound | outbound
    origin: str | None = None  # e.g. "click-to-call"
    caller_num: str | None = None
    caller_name: str | None = None
    dialed: str | None = None
    status: str = "new"  # new | ivr | queued | ringing | talking | dialing | ended
    queue: str | None = None
    position: int | None = None
    queued_at: float | None = None
    priority: int = 0
    agents_rung: list[str] = field(default_factory=list)
    ringing_agents: set[str] = field(default_factory=set)
    agent_id: str | None = None
    agent_channel: str | None = None
    answered_at: float | None = None
    hold_time: int | None = None
    talk_time: int | None = None
    bridge_id: str | None = None
    on_hold: bool = False
    held_since: float | None = None  # when the current hold started
    on_hold_seconds: float = 0.0  # hold time accumulated over the call (holds already ended)
    recording: bool = False
    recording_muted: bool = False
    transfers: list[dict[str, Any]] = field(default_factory=list)
    digits: str = ""
    outcome: str | None = None  # answered | abandoned | ivr_hangup | unanswered | lost (its server lost: lose_server)
    end_cause: int | None = None
    end_cause_txt: str = ""
    ended_at: float | None = None
    disposition: str | None = None
    notes: str | None = None
    ivr_context: dict[str, Any] | None = None
    customer: dict[str, Any] | None = None
    overflowed_to: str | None = None  # set when callcore moved the caller to the overflow queue
    parts: list[AgentPart] = field(default_factory=list)  # every agent's part, in answer order
    direct_rung: set[str] = field(default_factory=set)  # agents rung by a plain Dial (no queue events)
    legs: dict[str, Leg] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)  # call timeline (persisted)

    @property
    def caller_leg(self) -> Leg | None:
        leg = self.legs.get(self.id)
        if leg is not None:
            return leg
        for leg in self.legs.values():
            if leg.role == "caller":
                return leg
        return None

    @property
    def customer_channel(self) -> str | None:
        """The channel of the customer side (what a redirect / hangup / DTMF acts on)."""
        if self.direction == "outbound":
            for leg in self.legs.values():
                if leg.role == "other" and leg.ended_at is None:
                    return leg.channel
            return self.agent_channel
        leg = self.caller_leg
        return leg.channel if leg is not None and leg.ended_at is None else None

    def live_agent_channel(self) -> str | None:
        if self.agent_channel and any(
            leg.channel == self.agent_channel and leg.ended_at is None for leg in self.legs.values()
        ):
            return self.agent_channel
        return None

    def open_part(self, agent_id: str | None = None) -> AgentPart | None:
        for part in self.parts:
            if part.ended_at is None and (agent_id is None or part.agent_id == agent_id):
                return part
        return None

    def set_on_hold(self, on_hold: bool, now: float) -> None:
        """Flip the hold flag, accumulating the time spent on hold."""
        if on_hold and not self.on_hold:
            self.held_since = now
        elif not on_hold and self.on_hold and self.held_since is not None:
            self.on_hold_seconds += max(0.0, now - self.held_since)
            self.held_since = None
        self.on_hold = on_hold

    def log(self, now: float, kind: str, **data: Any) -> None:
        self.events.append({"at": now, "event": kind, **data})

    def to_dict(self, now: float | None = None) -> dict[str, Any]:
        now = now if now is not None else time.time()
        waited = None
        if self.queued_at is not None:
            end = self.answered_at or self.ended_at or now
            waited = max(0, int(end - self.queued_at))
        return {
            "call_id": self.id,
            "server": self.server,
            "direction": self.direction,
            "origin": self.origin,
            "caller_num": self.caller_num,
            "caller_name": self.caller_name,
            "dialed": self.dialed,
            "status": self.status,
            "queue": self.queue,
            "position": self.position,
            "queued_at": self.queued_at,
            "waited": waited,
            "priority": self.priority,
            "agents_rung": list(self.agents_rung),
            "agent_id": self.agent_id,
            "started_at": self.started_at,
            "answered_at": self.answered_at,
            "ended_at": self.ended_at,
            "hold_time": self.hold_time,
            "talk_time": self.talk_time,
            "bridge_id": self.bridge_id,
            "on_hold": self.on_hold,
            "on_hold_seconds": round(self.on_hold_seconds, 3),
            "recording": self.recording,
            "recording_muted": self.recording_muted,
            "transfers": list(self.transfers),
            "digits": self.digits,
            "outcome": self.outcome,
            "overflowed_to": self.overflowed_to,
            "end_cause": self.end_cause,
            "end_cause_txt": self.end_cause_txt,
            "disposition": self.disposition,
            "notes": self.notes,
            "agent_parts": [p.to_dict() for p in self.parts],
            "legs": [leg.to_dict() for leg in self.legs.values()],
        }


@dataclass
class Agent:
    id: str
    interface: str | None = None
    name: str | None = None
    queues: dict[str, int] = field(default_factory=dict)  # queue -> penalty (live membership, on any server)
    #: issue 19: server -> queue -> penalty, the app_queue membership on each Asterisk server;
    #: ``queues`` is their union (a queue's identity is (server, name); desks see the name)
    memberships: dict[str, dict[str, int]] = field(default_factory=dict)
    paused: bool = False
    pause_reason: str | None = None
    device_status: int = 0
    in_call: bool = False
    ringing_call: str | None = None
    current_call: str | None = None
    wrapup_until: float | None = None
    wrapup_call: str | None = None
    last_call_at: float | None = None
    status_since: float = 0.0

    @property
    def logged_in(self) -> bool:
        return bool(self.queues)

    @property
    def status(self) -> str:
        if not self.queues and not self.current_call and not self.ringing_call:
            return "logged_out"
        if self.current_call:
            return "on_call"
        if self.ringing_call:
            return "ringing"
        if self.wrapup_until is not None:
            return "wrapup"
        if self.paused:
            return "paused"
        return "ready"

    def signature(self) -> tuple[Any, ...]:
        """What a desk or a supervisor sees of the agent (``[0]`` is the status): compared before
        and after a change to tell whether the agent changed. Copies compared with ``==`` (dicts
        and sets compare without order): sorting them on every agent event cost ~1.5 µs (issue 18)."""
        return (self.status, self.paused, self.pause_reason, self.queues.copy(), self.current_call,
                {srv: set(qs) for srv, qs in self.memberships.items()} if self.memberships else None)

    def set_member(self, server: str, queue: str, penalty: int | None) -> None:
        """A membership on one server (``penalty`` None: removed); ``queues`` follows."""
        on = self.memberships.setdefault(server, {})
        if penalty is None:
            on.pop(queue, None)
            if not on:
                del self.memberships[server]
            if not any(queue in qs for qs in self.memberships.values()):
                self.queues.pop(queue, None)
            return
        on[queue] = penalty
        self.queues[queue] = penalty

    def drop_server(self, server: str, queues: Any = None) -> list[str]:
        """Forget the memberships on ``server`` (only of ``queues`` if given); returns the
        queues the agent is no longer a member of on any server."""
        on = self.memberships.get(server)
        if not on:
            return []
        gone = [q for q in on if queues is None or q in queues]
        for q in gone:
            self.set_member(server, q, None)
        return [q for q in gone if q not in self.queues]

    def to_dict(self) -> dict[str, Any]:
        return {
            "agent_id": self.id,
            "name": self.name,
            "interface": self.interface,
            "status": self.status,
            "logged_in": self.logged_in,
            "queues": dict(self.queues),
            "servers": {srv: sorted(qs) for srv, qs in self.memberships.items() if qs and srv},
            "paused": self.paused,
            "pause_reason": self.pause_reason,
            "ringing_call": self.ringing_call,
            "current_call": self.current_call,
            "wrapup_until": self.wrapup_until,
            "status_since": self.status_since,
        }


@dataclass
class QueueState:
    name: str
    waiting: dict[str, float] = field(default_factory=dict)  # call id -> entered at
    members: set[str] = field(default_factory=set)  # agent ids (members on any server)
    #: issue 19: the servers whose app_queue has reported this queue (its identities (server, name))
    servers: set[str] = field(default_factory=set)
    strategy: str = ""
    day: str = ""
    answered: int = 0
    answered_within_sl: int = 0
    abandoned: int = 0
    talk_seconds_total: int = 0
    completed: int = 0


class _Stale(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Change:
    """Something that happened to the live state that someone outside may care about."""

    kind: str
    call_id: str | None = None
    agent_id: str | None = None
    queue: str | None = None
    data: dict[str, Any] | None = None


# ---------------------------------------------------------------- the state
class CtiState:
    def __init__(self, *, default_wrapup_seconds: int = 10, recent_ended: int = 500) -> None:
        self.calls: dict[str, Call] = {}
        self.agents: dict[str, Agent] = {}
        self.queues: dict[str, QueueState] = {}
        self.queue_settings: dict[str, QueueSettings] = {}
        self.default_wrapup_seconds = default_wrapup_seconds
        self.event_time: float | None = None
        self.event_now: float | None = None
        self._iface_to_agent: dict[str, str] = {}
        #: agent extensions: a transfer reaches an agent's phone as ``PJSIP/1002-…`` or
        #: ``Local/1002@transfer-…;1``, not through the queue-member interface
        self._ext_to_agent: dict[str, str] = {}
        self._chan_to_call: dict[str, str] = {}  # uniqueid -> call id
        self.ended: dict[str, Call] = {}  # most recent ended calls (bounded)
        self._recent_ended = recent_ended
        self.unhandled: int = 0
        self.stale: int = 0
        #: issue 19: the server of the event being applied (``AmiEvent.server``) and the events whose
        #: channel belonged to a call of another server (a uniqueid collision: set ``systemname``)
        self.server = ""
        self.collisions: int = 0
        #: today's queue counters from the reports fact store (``reports.service.LiveCounters.queue_today``):
        #: when set, the ``*_today``/service-level/average figures of :meth:`queue_stats` come from it
        self.counters: Any = None

    # ------------------------------------------------------------ directory
    def register_agent(
        self, agent_id: str, interface: str | None, name: str | None = None, extension: str | None = None
    ) -> Agent:
        agent = self.agents.get(agent_id)
        if agent is None:
            agent = self.agents[agent_id] = Agent(agent_id)
        for ext in [e for e, a in self._ext_to_agent.items() if a == agent_id]:
            del self._ext_to_agent[ext]
        if extension:
            self._ext_to_agent[extension] = agent_id
        elif agent_id.isdigit() and agent_id not in self._ext_to_agent:
            # no extension on record: a transfer dials the agent's id (CtiService._target_exten)
            self._ext_to_agent[agent_id] = agent_id
        if agent.interface and interface_key(agent.interface) in self._iface_to_agent:
            self._iface_to_agent.pop(interface_key(agent.interface), None)
        agent.interface = interface
        agent.name = name or agent.name
        if interface:
            self._iface_to_agent[interface_key(interface)] = agent_id
        return agent

    def unregister_agent(self, agent_id: str) -> None:
        for ext in [e for e, a in self._ext_to_agent.items() if a == agent_id]:
            del self._ext_to_agent[ext]
        agent = self.agents.pop(agent_id, None)
        if agent and agent.interface:
            self._iface_to_agent.pop(interface_key(agent.interface), None)

    def set_queue_settings(self, qs: QueueSettings) -> None:
        self.queue_settings[qs.name] = qs

    def settings_for(self, queue: str | None) -> QueueSettings:
        if queue and queue in self.queue_settings:
            return self.queue_settings[queue]
        return QueueSettings(name=queue or "")

    def agent_for_interface(self, interface: str, name: str | None = None) -> Agent:
        key = interface_key(interface)
        agent_id = self._iface_to_agent.get(key)
        if agent_id is None:
            agent_id = default_agent_id(interface)
            agent = self.agents.get(agent_id)
            if agent is not None and agent.interface and interface_key(agent.interface) != key:
                agent_id = interface  # a different device claims the same number: keep them apart
            agent = self.register_agent(agent_id, interface, name)
            return agent
        return self.agents[agent_id]

    def agent_for_channel(self, channel: str) -> str | None:
        key = channel_key(channel)
        agent_id = self._iface_to_agent.get(key)
        if agent_id is None:
            m = _EXTEN_OF.match(key)  # pjsip/1002, local/1002@transfer
            if m is not None:
                agent_id = self._ext_to_agent.get(m.group(1))
        return agent_id

    def queue(self, name: str, now: float | None = None) -> QueueState:
        q = self.queues.get(name)
        if q is None:
            q = self.queues[name] = QueueState(name)
        if now is not None:
            day = _day(now)
            if q.day != day:
                q.day = day
                q.answered = q.answered_within_sl = q.abandoned = q.talk_seconds_total = 0
        return q

    def call_for_agent(self, agent_id: str) -> Call | None:
        agent = self.agents.get(agent_id)
        if agent is None:
            return None
        cid = agent.current_call or agent.ringing_call
        return self.calls.get(cid) if cid else None

    def get_call(self, call_id: str) -> Call | None:
        return self.calls.get(call_id) or self.ended.get(call_id)

    def server_of_channel(self, channel: str) -> str | None:
        """The server of the live call that has the channel ``channel`` (call control routing)."""
        for call in self.calls.values():
            for leg in call.legs.values():
                if leg.channel == channel and leg.ended_at is None:
                    return call.server
        return None

    # ------------------------------------------------------------- apply
    def apply(self, event: ev.AmiEvent, now: float) -> list[Change]:
        #: Asterisk's clock of the event being applied (``timestampevents``; None without the header) and
        #: the ``now`` it was applied at: a subscriber called with that same ``now`` is in this event's dispatch
        self.event_time, self.event_now = event.timestamp, now
        self.server = event.server
        handler = _HANDLERS.get(type(event))
        if handler is None:
            self.unhandled += 1
            return []
        out: list[Change] = []
        try:
            handler(self, event, now, out)
        except _Stale:
            self.stale += 1  # a late event of a call that already ended: Linkedids are never reused
        return out

    def tick(self, now: float) -> list[Change]:
        """Wrap-ups whose time is up: the agent becomes ready again."""
        out: list[Change] = []
        for agent in self.agents.values():
            if agent.wrapup_until is not None and agent.wrapup_until <= now:
                before = agent.signature()
                call_id = agent.wrapup_call
                agent.wrapup_until = None
                agent.wrapup_call = None
                self._agent_changed(agent, before, now, out, reason="wrapup_done", call_id=call_id)
        return out

    def end_wrapup(self, agent_id: str, now: float) -> list[Change]:
        agent = self.agents.get(agent_id)
        out: list[Change] = []
        if agent is not None and agent.wrapup_until is not None:
            before = agent.signature()
            call_id = agent.wrapup_call
            agent.wrapup_until = None
            agent.wrapup_call = None
            self._agent_changed(agent, before, now, out, reason="wrapup_done", call_id=call_id)
        return out

    def record_transfer(self, call_id: str, info: dict[str, Any], now: float) -> list[Change]:
        """A transfer callcore itself performed (a Redirect emits no BlindTransfer event)."""
        call = self.calls.get(call_id)
        if call is None:
            return []
        call.transfers.append(dict(info))
        call.log(now, "transferred", **{k: v for k, v in info.items() if k != "at"})
        return [Change("call.transferred", call_id=call_id, agent_id=call.agent_id, data=dict(info))]

    def set_hold(self, call_id: str, on_hold: bool, now: float) -> list[Change]:
        call = self.calls.get(call_id)
        if call is None or call.on_hold == on_hold:
            return []
        call.set_on_hold(on_hold, now)
        call.log(now, "hold" if on_hold else "unhold")
        return [Change("call.held" if on_hold else "call.unheld", call_id=call_id, agent_id=call.agent_id)]

    # ------------------------------------------------- who is on the call
    def _open_part(self, call: Call, agent_id: str, queue: str | None, channel: str | None, now: float,
                   out: list[Change]) -> AgentPart:
        """``agent_id`` answered ``call``: it is on the call. The first open part's agent is the
        call's agent (a consultation target answering during an attended transfer waits its turn)."""
        part = call.open_part(agent_id)
        if part is None:
            part = AgentPart(agent_id, queue, channel, now)
            call.parts.append(part)
        call.ringing_agents.discard(agent_id)
        call.direct_rung.discard(agent_id)
        agent = self.agents.get(agent_id)
        if agent is not None:
            before = agent.signature()
            agent.ringing_call = None
            agent.current_call = call.id
            agent.wrapup_until = None
            agent.wrapup_call = None
            self._agent_changed(agent, before, now, out, call_id=call.id)
        first = call.open_part()
        if first is part:
            call.agent_id = agent_id
            call.agent_channel = channel or call.agent_channel
            call.status = "talking"
        if call.answered_at is None:
            call.answered_at = now
        call.outcome = "answered" if call.direction == "inbound" else call.outcome
        return part

    def _close_part(self, call: Call, part: AgentPart, now: float, out: list[Change], reason: str,
                    talk_time: int | None = None) -> None:
        """The agent of ``part`` left the call: talk time, queue stats and wrap-up, once."""
        part.ended_at = now
        part.end_reason = reason
        part.talk_time = talk_time if talk_time is not None else max(0, int(round(now - part.answered_at)))
        call.talk_time = sum(p.talk_time or 0 for p in call.parts if p.ended_at is not None)
        call.log(now, "agent_left", agent_id=part.agent_id, queue=part.queue, talk_time=part.talk_time, reason=reason)
        if part.queue:
            q = self.queue(part.queue, now)
            q.completed += 1
            q.talk_seconds_total += part.talk_time
        agent = self.agents.get(part.agent_id)
        if agent is not None:
            before = agent.signature()
            wrapup = self.settings_for(part.queue).wrapup_seconds
            if wrapup is None:
                wrapup = self.default_wrapup_seconds
            if agent.current_call == call.id:
                agent.current_call = None
            agent.last_call_at = now
            if agent.current_call is None and agent.ringing_call is None and wrapup > 0:
                agent.wrapup_until = now + wrapup
                agent.wrapup_call = call.id
            else:
                wrapup = 0  # already on (or offered) another call: no wrap-up over it
            out.append(
                Change(
                    "agent.wrapup" if wrapup > 0 else "agent.call_completed",
                    call_id=call.id,
                    agent_id=agent.id,
                    queue=part.queue,
                    data={"wrapup_seconds": wrapup, "reason": reason},
                )
            )
            self._agent_changed(agent, before, now, out, call_id=call.id)
        if call.agent_id == part.agent_id:
            nxt = call.open_part()
            if nxt is not None:  # hand the call to the agent who is still on it
                call.agent_id, call.agent_channel = nxt.agent_id, nxt.channel
                out.append(Change("call.answered", call_id=call.id, agent_id=nxt.agent_id, queue=nxt.queue,
                                  data={"reason": "transfer"}))
            elif call.status == "talking":
                call.agent_channel = None
                if call.ringing_agents:  # blind transfer to an agent: the target's phone rings
                    call.status = "ringing"

    def _agent_left_leg(self, call: Call, leg: Leg, now: float, out: list[Change]) -> None:
        """An agent leg hung up: if it was that agent's last live leg, the agent left the call."""
        if leg.agent_id is None:
            return
        part = call.open_part(leg.agent_id)
        if part is None:
            return
        if any(l.agent_id == leg.agent_id and l.ended_at is None and l.role == "agent" for l in call.legs.values()):
            return
        self._close_part(call, part, now, out, "agent_left")

    # ------------------------------------------------------- internals
    def _agent_changed(
        self, agent: Agent, before: tuple[Any, ...], now: float, out: list[Change], **data: Any
    ) -> None:
        after = agent.signature()
        if after != before:
            if after[0] != before[0]:
                agent.status_since = now
            out.append(Change("agent.updated", agent_id=agent.id, call_id=agent.current_call, data=data or None))

    def _queue_changed(self, name: str, out: list[Change]) -> None:
        out.append(Change("queue.updated", queue=name))

    def _call_for(self, chan: ev.ChannelInfo, now: float, out: list[Change]) -> Call:
        call_id = self._chan_to_call.get(chan.uniqueid) or chan.linkedid or chan.uniqueid
        call = self.calls.get(call_id)
        if call is None:
            if call_id in self.ended:
                raise _Stale(call_id)
            call = Call(id=call_id, started_at=now, server=self.server)
            self.calls[call_id] = call
            call.log(now, "created", channel=chan.channel)
            out.append(Change("call.created", call_id=call_id))
        if call.server != self.server:
            if self._foreign(call):
                raise _Stale(call_id)
        return call

    def _foreign(self, call: Call) -> bool:
        """The event being applied comes from another server than ``call``'s: the same
        uniqueid/Linkedid on two servers (Asterisk's ``systemname`` is not set on them,
        asterisk-config/README.md). Counted, and never merged into the other server's call.
        A call with no server yet (restored from an older journal) is adopted."""
        if not call.server:
            call.server = self.server
            return False
        if not self.server:
            return False
        self.collisions += 1
        return True

    def _live(self, call_id: str | None) -> Call | None:
        """The live call ``call_id`` if it is on the server of the event being applied."""
        call = self.calls.get(call_id or "")
        if call is not None and call.server != self.server and self._foreign(call):
            return None
        return call

    def _leg(self, call: Call, chan: ev.ChannelInfo, now: float) -> Leg:
        leg = call.legs.get(chan.uniqueid)
        if leg is None:
            agent_id = self.agent_for_channel(chan.channel)
            if agent_id is not None:
                role = "agent"
            elif chan.uniqueid == call.id:
                role = "caller"
            elif chan.channel.endswith(";2") and any(
                channel_key(l.channel) == channel_key(chan.channel) and l.channel.endswith(";1")
                for l in call.legs.values()
            ):
                role = "local"
            else:
                role = "other"
            leg = Leg(chan.uniqueid, chan.channel, role, agent_id, chan.state_desc, created_at=now)
            call.legs[chan.uniqueid] = leg
            self._chan_to_call[chan.uniqueid] = call.id
            if role == "agent" and chan.uniqueid == call.id and not call.legs.keys() - {chan.uniqueid}:
                # the first channel of the call is an agent's: an agent-originated (outbound) call
                call.direction = "outbound"
                call.agent_id = agent_id
                call.agent_channel = chan.channel
                call.status = "dialing"
        return leg

    def _caller_info(self, call: Call, chan: ev.ChannelInfo) -> None:
        leg = call.legs.get(chan.uniqueid)
        if call.direction == "inbound" and (leg is None or leg.role == "caller"):
            if chan.caller_num and not call.caller_num:
                call.caller_num = chan.caller_num
            if chan.caller_name and not call.caller_name:
                call.caller_name = chan.caller_name
        elif call.direction == "outbound" and leg is not None and leg.role == "agent":
            # click-to-call sets the agent leg's CallerID to the customer
            if chan.caller_num and not call.caller_num:
                call.caller_num = chan.caller_num
            if chan.caller_name and not call.caller_name:
                call.caller_name = chan.caller_name

    def _touch(self, chan: ev.ChannelInfo, now: float, out: list[Change]) -> tuple[Call, Leg]:
        # hot path (issue 18): nearly every channel event is for a known leg of a live call of this
        # server whose caller id is known; the general helpers run only when that is not so
        uid = chan.uniqueid
        call = self.calls.get(self._chan_to_call.get(uid) or chan.linkedid or uid)
        if call is None or call.server != self.server:
            call = self._call_for(chan, now, out)
        leg = call.legs.get(uid)
        if leg is None:
            leg = self._leg(call, chan, now)
        leg.state = chan.state_desc or leg.state
        if (chan.caller_num and not call.caller_num) or (chan.caller_name and not call.caller_name):
            self._caller_info(call, chan)  # it sets nothing otherwise
        return call, leg

    def _end_call(self, call: Call, now: float, out: list[Change], *, cause: int | None, cause_txt: str) -> None:
        call.ended_at = now
        if call.on_hold:  # ended while on hold: that hold counts up to the end
            call.set_on_hold(False, now)
        call.status = "ended"
        if call.end_cause is None:
            call.end_cause = cause
            call.end_cause_txt = cause_txt
        if call.outcome is None:
            if call.answered_at is not None:
                call.outcome = "answered"
            elif call.queue is not None:
                call.outcome = "abandoned"
            elif call.direction == "outbound":
                call.outcome = "unanswered"
            else:
                call.outcome = "ivr_hangup"
        # every queue, not only the current one: a QueueCallerLeave that never arrived (a lost
        # frame, a reconnect) must not leave the ended call waiting in its earlier queue
        for q in self.queues.values():
            if q.waiting.pop(call.id, None) is not None:
                self._queue_changed(q.name, out)
        for part in [p for p in call.parts if p.ended_at is None]:
            self._close_part(call, part, now, out, "call_ended")
        # only the agents this call can have touched (every assignment of ringing_call /
        # current_call comes from these): visiting all agents made each hangup O(agents)
        involved = {call.agent_id, *call.agents_rung, *call.ringing_agents, *(l.agent_id for l in call.legs.values())}
        for agent_id in involved:
            agent = self.agents.get(agent_id or "")
            if agent is None or call.id not in (agent.ringing_call, agent.current_call):
                continue
            touched = False
            before = agent.signature()
            if agent.ringing_call == call.id:
                agent.ringing_call = None
                touched = True
            if agent.current_call == call.id:
                agent.current_call = None
                touched = True
            if touched:
                self._agent_changed(agent, before, now, out, reason="call_ended", call_id=call.id)
        call.log(now, "ended", cause=call.end_cause, outcome=call.outcome)
        self.calls.pop(call.id, None)
        for uid in call.legs:
            self._chan_to_call.pop(uid, None)
        self.ended[call.id] = call
        while len(self.ended) > self._recent_ended:
            self.ended.pop(next(iter(self.ended)))
        out.append(Change("call.ended", call_id=call.id, agent_id=call.agent_id, queue=call.queue))

    # ---------------------------------------------------------- a server lost for good
    def lose_server(self, server: str, now: float, *, unnamed: bool = False) -> list[Change]:
        """Asterisk server ``server`` has stayed unreachable past ``ami_server_lost_grace``
        (cti/server_watch.py): end each of its live calls — the ones a killed process's journal
        restored, and those it had when it went away — with the end cause ``server lost``
        (outcome ``answered`` if an agent had answered, else ``lost``), so the persistence
        subscriber stores them and the agents and the wallboard are freed. ``unnamed``: also
        the calls with no server (an older journal's), once no server is left to reconcile them.
        Memberships stay: the server's resync reconciles them if it ever comes back."""
        out: list[Change] = []
        for call in [c for c in self.calls.values() if c.server == server or (unnamed and not c.server)]:
            call.outcome = call.outcome or ("answered" if call.answered_at is not None else "lost")
            call.log(now, "server_lost", server=server)
            call.end_cause, call.end_cause_txt = None, "server lost"  # what ended it here, whatever a leg said
            self._end_call(call, now, out, cause=None, cause_txt="server lost")
        return out

    # ---------------------------------------------------------- rebuild
    def rebuild(self, snapshot: Iterable[ev.AmiEvent], now: float, server: str = "") -> list[Change]:
        """Replace the live picture of Asterisk server ``server`` by its resync snapshot
        (CoreShowChannel, QueueParams, QueueMember, QueueEntry, QueueSummary events, any order).
        Issue 19: the calls, memberships and waiting callers of other servers are left alone
        (a call with no server, from an older journal, is reconciled by the first server's)."""
        out: list[Change] = []
        self.server = server
        events = list(snapshot)
        channels = [e for e in events if isinstance(e, ev.CoreShowChannel)]
        members = [e for e in events if isinstance(e, ev.QueueMember)]
        entries = {e.uniqueid: e for e in events if isinstance(e, ev.QueueEntry)}
        params = [e for e in events if isinstance(e, ev.QueueParams)]
        summaries = [e for e in events if isinstance(e, ev.QueueSummary)]

        before_agents = {a.id: a.signature() for a in self.agents.values()}
        for name in {p.queue for p in params} | {s.queue for s in summaries}:
            q = self.queue(name, now)
        for p in params:
            # QueueParams Completed/Holdtime/TalkTime are app_queue's own (reset on restart, TalkTime
            # exponentially weighted): never mixed into callcore's counters
            self.queue(p.queue, now).strategy = p.strategy

        # members: QueueStatus is the whole truth for the queues it lists
        listed = {p.queue for p in params} | {m.member.queue for m in members}
        mine = {cid for cid, call in self.calls.items() if call.server in (server, "")}
        for agent in self.agents.values():
            for qn in agent.drop_server(server, listed):
                self.queue(qn).members.discard(agent.id)
            if agent.ringing_call in mine:
                agent.ringing_call = None
            if agent.current_call in mine:
                agent.current_call = None
        for qn in listed:
            self.queue(qn).servers.add(server)
        member_in_call: dict[str, bool] = {}
        for m in members:
            info = m.member
            agent = self.agent_for_interface(info.interface, info.name)
            agent.set_member(server, info.queue, info.penalty)
            agent.paused = info.paused
            agent.pause_reason = (info.paused_reason or None) if info.paused else None
            agent.device_status = info.status
            agent.in_call = info.in_call
            member_in_call[agent.id] = member_in_call.get(agent.id, False) or info.in_call
            self.queue(info.queue).members.add(agent.id)

        # calls: group channels by Linkedid, keep what we already knew about them (this server's)
        old_calls = {cid: self.calls.pop(cid) for cid in mine}
        for call in old_calls.values():
            for uid in call.legs:
                self._chan_to_call.pop(uid, None)
        by_call: dict[str, list[ev.CoreShowChannel]] = {}
        for c in channels:
            by_call.setdefault(c.chan.linkedid or c.chan.uniqueid, []).append(c)
        for call_id, chans in by_call.items():
            call = old_calls.pop(call_id, None)
            if call is None and call_id in self.calls:  # another server's call has this Linkedid
                self.collisions += 1
                continue
            self.ended.pop(call_id, None)  # Asterisk still has it: it did not end
            if call is None:
                started = now - max((_duration(c.duration) for c in chans), default=0)
                call = Call(id=call_id, started_at=started, server=server)
                call.log(now, "rebuilt")
                out.append(Change("call.created", call_id=call_id))
            else:
                for uid in list(call.legs):
                    if uid not in {c.chan.uniqueid for c in chans}:
                        leg = call.legs.pop(uid)
                        leg.ended_at = leg.ended_at or now
            call.server = server
            self.calls[call_id] = call
            chans.sort(key=lambda c: (c.chan.uniqueid != call_id, c.chan.uniqueid))
            for c in chans:
                leg = self._leg(call, c.chan, now)
                leg.state = c.chan.state_desc
                leg.bridge_id = c.bridge_id or None
                self._caller_info(call, c.chan)
                if leg.role == "caller" and c.application == "Queue":
                    call.queue = (c.application_data.split(",", 1)[0] or call.queue)
            caller = call.caller_leg
            agent_legs = [l for l in call.legs.values() if l.role == "agent"]
            if call.direction == "outbound":
                agent = self.agents.get(call.agent_id or "")
                if agent is not None:
                    agent.current_call = call.id
                if any(l.state == "Up" for l in call.legs.values() if l.role == "other"):
                    call.status = "talking"  # the customer's leg is up
                    call.answered_at = call.answered_at or now
                continue
            bridged = [
                l for l in agent_legs if caller is not None and l.bridge_id and l.bridge_id == caller.bridge_id
            ]
            if bridged:
                leg = bridged[0]
                call.agent_id = leg.agent_id
                call.agent_channel = leg.channel
                call.status = "talking"
                call.answered_at = call.answered_at or now
                call.bridge_id = leg.bridge_id
                agent = self.agents.get(leg.agent_id or "")
                if agent is not None:
                    agent.current_call = call.id
                    agent.wrapup_until = None
                if leg.agent_id and call.open_part(leg.agent_id) is None:
                    # talking when the link came back: its part is counted from now on
                    call.parts.append(AgentPart(leg.agent_id, call.queue, leg.channel, now))
            elif caller is not None and caller.uniqueid in entries:
                call.status = "queued"
            elif agent_legs:
                call.status = "ringing"
                for l in agent_legs:
                    agent = self.agents.get(l.agent_id or "")
                    if agent is not None and not member_in_call.get(agent.id):
                        agent.ringing_call = call.id
                        call.ringing_agents.add(agent.id)
            elif call.status in ("new", "ringing", "talking", "queued"):
                call.status = "ivr" if call.queue is None else call.status

        # queue entries: waiting callers and their wait
        for q in self.queues.values():
            if q.name in listed:
                for cid in [cid for cid in q.waiting if cid in mine or cid in self.calls and self.calls[cid].server == server]:
                    del q.waiting[cid]
        for e in entries.values():
            call_id = self._chan_to_call.get(e.uniqueid, e.uniqueid)
            call = self.calls.get(call_id)
            if call is not None and call.server != server:
                self.collisions += 1
                continue
            if call is None:
                call = Call(id=call_id, started_at=now - e.wait, server=server)
                self.calls[call_id] = call
                out.append(Change("call.created", call_id=call_id))
            call.queue = e.queue
            call.position = e.position
            call.priority = e.priority or call.priority
            call.status = "queued"
            call.queued_at = now - e.wait if call.queued_at is None else min(call.queued_at, now)
            call.caller_num = call.caller_num or e.caller_num
            call.caller_name = call.caller_name or e.caller_name
            self.queue(e.queue, now).waiting[call_id] = call.queued_at

        # calls we had that Asterisk no longer knows: they ended while we were away
        for call in list(old_calls.values()):
            self.calls[call.id] = call  # so _end_call can find/remove it
            call.outcome = call.outcome or ("answered" if call.answered_at else None)
            call.end_cause_txt = call.end_cause_txt or "ended during AMI disconnect"
            call.log(now, "lost")
            self._end_call(call, now, out, cause=None, cause_txt="ended during AMI disconnect")

        for agent in self.agents.values():
            prev = before_agents.get(agent.id)
            if prev is None or agent.signature() != prev:
                agent.status_since = now
                out.append(Change("agent.updated", agent_id=agent.id, call_id=agent.current_call, data={"reason": "resync"}))
        for name in self.queues:
            self._queue_changed(name, out)
        out.append(Change("state.resynced"))
        return out

    def seed_today(self, outcomes: Iterable[tuple[str, str | None, int | None, float | None]], now: float) -> None:
        """Today's counters from persisted calls (so a restart does not zero the wallboard)."""
        for queue, outcome, hold, talk in outcomes:
            q = self.queue(queue, now)
            if outcome == "answered":
                q.answered += 1
                if hold is not None and hold <= self.settings_for(queue).service_level_seconds:
                    q.answered_within_sl += 1
                if talk:
                    q.completed += 1
                    q.talk_seconds_total += int(talk)
            elif outcome == "abandoned":
                q.abandoned += 1

    def overflow_due(self, now: float) -> list[tuple[Call, str, str]]:
        """Waiting callers the engine must move to their queue's overflow queue:
        (call, overflow queue, why), why = ``"no agent"`` or ``"wait"``."""
        due: list[tuple[Call, str, str]] = []
        for q in self.queues.values():
            s = self.queue_settings.get(q.name)
            if s is None or not s.overflow_queue or s.overflow_queue == q.name or not q.waiting:
                continue
            nobody = s.overflow_when_no_agent and not any(
                self.agents[a].logged_in for a in q.members if a in self.agents
            )
            for call_id, entered in q.waiting.items():
                call = self.calls.get(call_id)
                if call is None or call.overflowed_to is not None or call.status == "talking":
                    continue
                if nobody:
                    due.append((call, s.overflow_queue, "no agent"))
                elif s.overflow_after_seconds is not None and now - entered >= s.overflow_after_seconds:
                    due.append((call, s.overflow_queue, "wait"))
        return due

    # --------------------------------------------------------- views
    def queue_stats(self, name: str, now: float) -> dict[str, Any]:
        q = self.queue(name, now)
        by_state: dict[str, int] = {}
        for agent_id in q.members:
            agent = self.agents.get(agent_id)
            if agent is None:
                continue
            by_state[agent.status] = by_state.get(agent.status, 0) + 1
        waits = [max(0, int(now - t)) for t in q.waiting.values()]
        offered = q.answered + q.abandoned
        return {
            "queue": name,
            "waiting": len(q.waiting),
            "longest_wait": max(waits, default=0),
            "callers": [
                {"call_id": cid, "waited": max(0, int(now - t)), "caller_num": getattr(self.calls.get(cid), "caller_num", None),
                 "server": getattr(self.calls.get(cid), "server", None)}
                for cid, t in sorted(q.waiting.items(), key=lambda kv: kv[1])
            ],
            "servers": sorted(srv for srv in q.servers if srv),  # issue 19: the Asterisk servers whose app_queue has this queue
            "members": sorted(q.members),
            "agents": by_state,
            "logged_in": sum(n for s, n in by_state.items() if s != "logged_out"),
            "available": by_state.get("ready", 0),
            "answered_today": q.answered,
            "abandoned_today": q.abandoned,
            "answered_within_sl": q.answered_within_sl,
            "service_level_seconds": self.settings_for(name).service_level_seconds,
            "service_level": round(100.0 * q.answered_within_sl / offered, 1) if offered else None,
            "avg_talk_seconds": round(q.talk_seconds_total / q.completed) if q.completed and q.talk_seconds_total else None,
        } | (self.counters(name, now) if self.counters is not None else {})

    def all_queue_stats(self, now: float) -> list[dict[str, Any]]:
        names = set(self.queues) | set(self.queue_settings)
        return [self.queue_stats(n, now) for n in sorted(names)]


def _duration(text: str) -> int:
    try:
        parts = [int(p) for p in text.split(":")]
    except ValueError:
        return 0
    total = 0
    for p in parts:
        total = total * 60 + p
    return total


# ------------------------------------------------------------ event handlers
def _on_newchannel(s: CtiState, e: ev.Newchannel, now: float, out: list[Change]) -> None:
    call, leg = s._touch(e.chan, now, out)
    if leg.role == "caller" and call.dialed is None:
        call.dialed = e.chan.exten or None
    if call.status == "new" and call.direction == "inbound":
        call.status = "ivr"


def _on_newstate(s: CtiState, e: ev.Newstate, now: float, out: list[Change]) -> None:
    call, leg = s._touch(e.chan, now, out)
    if e.chan.state_desc == "Up" and leg.answered_at is None:
        leg.answered_at = now
        agent = s.agents.get(leg.agent_id or "")
        if (
            call.direction == "outbound"
            and leg.role == "agent"
            and call.status == "dialing"
            and leg.agent_id == call.agent_id
            and (agent is None or agent.current_call != call.id)
        ):
            # the agent's own phone answered: the agent is on the call, the customer is being
            # dialled now. Not "answered" yet: that is the customer's leg answering (DialEnd
            # ANSWER); a trunk that is unreachable never creates one (ami-click-to-call-unreachable)
            call.log(now, "agent_answered", agent_id=leg.agent_id)
            if agent is not None:
                before = agent.signature()
                agent.current_call = call.id
                agent.wrapup_until = None
                s._agent_changed(agent, before, now, out, call_id=call.id)
            out.append(Change("call.answered", call_id=call.id, agent_id=leg.agent_id))


def _on_hangup(s: CtiState, e: ev.Hangup, now: float, out: list[Change]) -> None:
    call_id = s._chan_to_call.get(e.chan.uniqueid) or e.chan.linkedid
    call = s._live(call_id)
    if call is None:
        return
    leg = call.legs.get(e.chan.uniqueid)
    if leg is None:
        leg = s._leg(call, e.chan, now)
    leg.ended_at = now
    leg.cause = e.cause
    leg.cause_txt = e.cause_txt
    s._caller_info(call, e.chan)
    if leg.role == "caller" and call.end_cause is None:
        call.end_cause = e.cause
        call.end_cause_txt = e.cause_txt
    if leg.role == "agent" and call.direction == "outbound" and leg.channel == call.agent_channel:
        call.end_cause = call.end_cause if call.end_cause is not None else e.cause
        call.end_cause_txt = call.end_cause_txt or e.cause_txt
    if leg.role == "agent":
        s._agent_left_leg(call, leg, now, out)
    if all(l.ended_at is not None for l in call.legs.values()):
        s._end_call(call, now, out, cause=e.cause, cause_txt=e.cause_txt)


def _on_dial_begin(s: CtiState, e: ev.DialBegin, now: float, out: list[Change]) -> None:
    call, leg = s._touch(e.dest, now, out)
    if e.chan is None:
        return
    _, caller_side = s._touch(e.chan, now, out)
    agent = s.agents.get(leg.agent_id or "")
    if (
        agent is None
        or leg.role != "agent"
        or caller_side.role == "agent"  # an agent's own Local ;2 dialling its phone
        or call.direction != "inbound"
        or agent.id in call.ringing_agents  # rung by app_queue (AgentCalled came first)
        or call.open_part(agent.id) is not None
    ):
        return
    # a plain Dial() to an agent (blind transfer to an agent, a consultation call): no queue
    # events follow, so the channels are the only signal that this agent's phone rings
    before = agent.signature()
    agent.ringing_call = call.id
    call.direct_rung.add(agent.id)
    call.ringing_agents.add(agent.id)
    call.agents_rung.append(agent.id)
    if call.open_part() is None and call.status in ("talking", "ivr", "new", "queued"):
        call.status = "ringing"
    call.log(now, "agent_dialled", agent_id=agent.id, channel=e.dest.channel)
    out.append(Change("call.ringing", call_id=call.id, agent_id=agent.id, queue=None))
    s._agent_changed(agent, before, now, out, call_id=call.id)


def _on_dial_end(s: CtiState, e: ev.DialEnd, now: float, out: list[Change]) -> None:
    call, leg = s._touch(e.dest, now, out)
    leg.dial_status = e.dial_status
    agent_id = leg.agent_id if leg.role == "agent" else None
    if agent_id is not None and agent_id in call.direct_rung:
        if e.dial_status == "ANSWER":
            s._open_part(call, agent_id, None, e.dest.channel, now, out)
            call.log(now, "answered", agent_id=agent_id, direct=True)
            if call.agent_id == agent_id:
                out.append(Change("call.answered", call_id=call.id, agent_id=agent_id, queue=None))
        else:
            call.direct_rung.discard(agent_id)
            if call.status == "ringing" and not (call.ringing_agents - {agent_id}) and call.open_part() is None:
                call.status = "talking" if call.answered_at is not None else call.status
            _stop_ringing(s, call, agent_id, now, out, "no_answer" if e.dial_status != "BUSY" else "rejected")
    if (
        call.direction == "outbound"
        and e.chan is not None
        and leg.role == "other"
        and e.dial_status == "ANSWER"
    ):
        call.log(now, "customer_answered", channel=leg.channel)
        if call.answered_at is None:
            call.answered_at = now
            call.status = "talking"
            call.outcome = "answered"
            out.append(Change("call.updated", call_id=call.id, agent_id=call.agent_id))


def _on_bridge_enter(s: CtiState, e: ev.BridgeEnter, now: float, out: list[Change]) -> None:
    call, leg = s._touch(e.chan, now, out)
    leg.bridge_id = e.bridge_id
    if leg.role in ("caller", "agent"):
        call.bridge_id = e.bridge_id


def _on_bridge_leave(s: CtiState, e: ev.BridgeLeave, now: float, out: list[Change]) -> None:
    call_id = s._chan_to_call.get(e.chan.uniqueid)
    call = s._live(call_id or "")
    if call is None:
        return
    leg = call.legs.get(e.chan.uniqueid)
    if leg is not None:
        leg.bridge_id = None


def _on_caller_join(s: CtiState, e: ev.QueueCallerJoin, now: float, out: list[Change]) -> None:
    call, leg = s._touch(e.chan, now, out)
    if call.queue and call.queue != e.queue and s.queue(call.queue, now).waiting.pop(call.id, None) is not None:
        s._queue_changed(call.queue, out)  # a caller is in one Queue() at a time: its leave was lost
    call.queue = e.queue
    call.position = e.position
    call.queued_at = now
    call.status = "queued"
    call.log(now, "queued", queue=e.queue, position=e.position)
    s.queue(e.queue, now).waiting[call.id] = now
    out.append(Change("call.queued", call_id=call.id, queue=e.queue))
    s._queue_changed(e.queue, out)


def _on_caller_leave(s: CtiState, e: ev.QueueCallerLeave, now: float, out: list[Change]) -> None:
    call_id = s._chan_to_call.get(e.chan.uniqueid) or e.chan.linkedid
    q = s.queue(e.queue, now)
    if q.waiting.pop(call_id, None) is not None:
        s._queue_changed(e.queue, out)
    call = s._live(call_id)
    if call is not None:
        call.position = None
        call.log(now, "left_queue", queue=e.queue)


def _on_caller_abandon(s: CtiState, e: ev.QueueCallerAbandon, now: float, out: list[Change]) -> None:
    call_id = s._chan_to_call.get(e.chan.uniqueid) or e.chan.linkedid
    q = s.queue(e.queue, now)
    q.abandoned += 1
    q.waiting.pop(call_id, None)
    call = s._live(call_id)
    if call is not None:
        call.outcome = "abandoned"
        call.hold_time = e.hold_time
        call.log(now, "abandoned", queue=e.queue, hold_time=e.hold_time)
        for agent_id in list(call.ringing_agents):
            _stop_ringing(s, call, agent_id, now, out, "abandoned")
    out.append(Change("call.abandoned", call_id=call_id, queue=e.queue))
    s._queue_changed(e.queue, out)


def _stop_ringing(s: CtiState, call: Call, agent_id: str, now: float, out: list[Change], reason: str) -> None:
    call.ringing_agents.discard(agent_id)
    agent = s.agents.get(agent_id)
    if agent is not None and agent.ringing_call == call.id:
        before = agent.signature()
        agent.ringing_call = None
        s._agent_changed(agent, before, now, out, call_id=call.id)
    out.append(Change("call.missed", call_id=call.id, agent_id=agent_id, queue=call.queue, data={"reason": reason}))


def _on_agent_called(s: CtiState, e: ev.AgentCalled, now: float, out: list[Change]) -> None:
    call, _ = s._touch(e.chan, now, out)
    agent = s.agent_for_interface(e.interface, e.member_name)
    leg = s._leg(call, e.dest, now)
    leg.role, leg.agent_id = "agent", agent.id
    before = agent.signature()
    agent.ringing_call = call.id
    call.queue = call.queue or e.queue
    call.agents_rung.append(agent.id)
    call.ringing_agents.add(agent.id)
    if call.status in ("queued", "ivr", "new", "ringing"):
        call.status = "ringing"
    call.log(now, "agent_called", agent_id=agent.id, channel=e.dest.channel)
    out.append(Change("call.ringing", call_id=call.id, agent_id=agent.id, queue=e.queue))
    s._agent_changed(agent, before, now, out, call_id=call.id)


def _on_agent_ring_no_answer(s: CtiState, e: ev.AgentRingNoAnswer, now: float, out: list[Change]) -> None:
    call_id = s._chan_to_call.get(e.chan.uniqueid) or e.chan.linkedid
    call = s._live(call_id)
    agent = s.agent_for_interface(e.interface, e.member_name)
    if call is None:
        return
    call.log(now, "ring_no_answer", agent_id=agent.id, ring_time=e.ring_time)
    if call.status == "ringing" and not (call.ringing_agents - {agent.id}):
        call.status = "queued"
    _stop_ringing(s, call, agent.id, now, out, "no_answer")


def _on_agent_dump(s: CtiState, e: ev.AgentDump, now: float, out: list[Change]) -> None:
    call_id = s._chan_to_call.get(e.chan.uniqueid) or e.chan.linkedid
    call = s._live(call_id)
    agent = s.agent_for_interface(e.interface, e.member_name)
    if call is not None:
        call.log(now, "agent_dump", agent_id=agent.id)
        _stop_ringing(s, call, agent.id, now, out, "rejected")


def _on_agent_connect(s: CtiState, e: ev.AgentConnect, now: float, out: list[Change]) -> None:
    call, _ = s._touch(e.chan, now, out)
    agent = s.agent_for_interface(e.interface, e.member_name)
    leg = s._leg(call, e.dest, now)
    leg.role, leg.agent_id = "agent", agent.id
    for other in list(call.ringing_agents - {agent.id}):
        _stop_ringing(s, call, other, now, out, "answered_elsewhere")
    s._open_part(call, agent.id, e.queue, e.dest.channel, now, out)
    call.hold_time = e.hold_time
    call.outcome = "answered"
    call.log(now, "answered", agent_id=agent.id, hold_time=e.hold_time, ring_time=e.ring_time)
    q = s.queue(e.queue, now)
    q.waiting.pop(call.id, None)
    q.answered += 1
    if e.hold_time <= s.settings_for(e.queue).service_level_seconds:
        q.answered_within_sl += 1
    out.append(Change("call.answered", call_id=call.id, agent_id=agent.id, queue=e.queue))
    s._queue_changed(e.queue, out)


def _on_agent_complete(s: CtiState, e: ev.AgentComplete, now: float, out: list[Change]) -> None:
    """app_queue's word that a queue connect is over: a confirmation, not the only signal.

    It often lacks the caller block (ChanSpy, caller gone) or the agent block (blind or
    attended transfer): the call is found by the caller, then the agent leg, then the agent's
    part. After a blind transfer it comes at the caller's final hangup with a ``TalkTime``
    covering the later agents too; the part it confirms was closed when the agent's leg left."""
    agent = s.agent_for_interface(e.interface, e.member_name)
    call_id = (
        s._chan_to_call.get(e.chan.uniqueid)
        or s._chan_to_call.get(e.dest.uniqueid)
        or e.chan.linkedid
        or e.dest.linkedid
        or agent.current_call
        or agent.wrapup_call
        or ""
    )
    call = s._live(call_id) or s.ended.get(call_id)
    if call is None:
        return
    candidates = [p for p in call.parts if p.agent_id == agent.id and p.queue == e.queue and not p.confirmed]
    part = next((p for p in candidates if p.ended_at is None), None) or (candidates[-1] if candidates else None)
    call.log(now, "completed", agent_id=agent.id, queue=e.queue, talk_time=e.talk_time, reason=e.reason)
    if part is None:
        return  # a connect callcore never saw (it joined mid-call): nothing to account
    part.confirmed = True
    part.queue_talk_time = e.talk_time
    if part.ended_at is None:
        s._close_part(call, part, now, out, e.reason, talk_time=e.talk_time)
    elif part is call.parts[-1] and part.end_reason in ("agent_left", "call_ended") and part.talk_time != e.talk_time:
        # the agent was the last on the call and app_queue's count is the reference one
        if part.queue:
            s.queue(part.queue, now).talk_seconds_total += e.talk_time - (part.talk_time or 0)
        part.talk_time = e.talk_time
        call.talk_time = sum(p.talk_time or 0 for p in call.parts if p.ended_at is not None)


def _member_update(s: CtiState, info: ev.MemberInfo, now: float, out: list[Change], *, removed: bool = False) -> None:
    agent = s.agent_for_interface(info.interface, info.name)
    before = agent.signature()
    q = s.queue(info.queue, now)
    q.servers.add(s.server)
    if removed:
        agent.set_member(s.server, info.queue, None)
        if info.queue not in agent.queues:  # still a member on another server: still a member
            q.members.discard(agent.id)
    else:
        agent.set_member(s.server, info.queue, info.penalty)
        q.members.add(agent.id)
        agent.paused = info.paused
        agent.pause_reason = (info.paused_reason or None) if info.paused else None
        agent.device_status = info.status
        agent.in_call = info.in_call
    if not agent.queues:
        agent.paused = False
        agent.pause_reason = None
    if agent.signature() != before:  # (_agent_changed does nothing otherwise: one signature less per member event)
        s._agent_changed(agent, before, now, out)
        s._queue_changed(info.queue, out)


def _on_member_added(s: CtiState, e: ev.QueueMemberAdded, now: float, out: list[Change]) -> None:
    _member_update(s, e.member, now, out)


def _on_member_removed(s: CtiState, e: ev.QueueMemberRemoved, now: float, out: list[Change]) -> None:
    _member_update(s, e.member, now, out, removed=True)


def _on_member_event(s: CtiState, e: Any, now: float, out: list[Change]) -> None:
    _member_update(s, e.member, now, out)


def _on_mixmonitor(s: CtiState, e: Any, now: float, out: list[Change]) -> None:
    call, _ = s._touch(e.chan, now, out)
    call.recording = isinstance(e, ev.MixMonitorStart)
    call.log(now, "recording_started" if call.recording else "recording_stopped")
    out.append(Change("call.updated", call_id=call.id, agent_id=call.agent_id))


def _on_mixmonitor_mute(s: CtiState, e: ev.MixMonitorMute, now: float, out: list[Change]) -> None:
    call, _ = s._touch(e.chan, now, out)
    call.recording_muted = e.state
    call.log(now, "recording_muted" if e.state else "recording_unmuted", direction=e.direction)
    out.append(Change("call.updated", call_id=call.id, agent_id=call.agent_id))


def _on_dtmf(s: CtiState, e: ev.DTMFEnd, now: float, out: list[Change]) -> None:
    call_id = s._chan_to_call.get(e.chan.uniqueid)
    call = s._live(call_id or "")
    if call is not None and e.direction == "Received" and call.status in ("ivr", "new"):
        leg = call.legs.get(e.chan.uniqueid)
        if leg is not None and leg.role == "caller":
            call.digits += e.digit


def _on_hold(s: CtiState, e: Any, now: float, out: list[Change]) -> None:
    call, _ = s._touch(e.chan, now, out)
    call.set_on_hold(isinstance(e, ev.Hold), now)
    call.log(now, "hold" if call.on_hold else "unhold", channel=e.chan.channel)
    out.append(Change("call.held" if call.on_hold else "call.unheld", call_id=call.id, agent_id=call.agent_id))


def _on_blind_transfer(s: CtiState, e: ev.BlindTransfer, now: float, out: list[Change]) -> None:
    call_id = s._chan_to_call.get(e.transferer.uniqueid) or e.transferer.linkedid
    call = s._live(call_id)
    if call is None:
        return
    t = {"type": "blind", "result": e.result, "to": f"{e.extension}@{e.context}", "at": now,
         "by": s.agent_for_channel(e.transferer.channel)}
    call.transfers.append(t)
    call.log(now, "transferred", **{k: v for k, v in t.items() if k != "at"})
    out.append(Change("call.transferred", call_id=call.id, agent_id=call.agent_id, data=t))


def _on_attended_transfer(s: CtiState, e: ev.AttendedTransfer, now: float, out: list[Change]) -> None:
    call_id = s._chan_to_call.get(e.orig_transferer.uniqueid) or e.orig_transferer.linkedid
    call = s._live(call_id)
    if call is None:
        return
    target = e.transfer_target.channel if e.transfer_target else None
    t = {"type": "attended", "result": e.result, "to": target, "at": now,
         "by": s.agent_for_channel(e.orig_transferer.channel)}
    call.transfers.append(t)
    call.log(now, "transferred", **{k: v for k, v in t.items() if k != "at"})
    target_agent = s.agent_for_channel(e.transfer_target.channel) if e.transfer_target is not None else None
    if target_agent:
        t["to_agent"] = target_agent
    out.append(Change("call.transferred", call_id=call.id, agent_id=call.agent_id, data=t))
    if e.result != "Success":
        return
    # The customer is bridged with the target now. Asterisk put the customer on hold for
    # the consultation (Hold on the transferer) and sends no Unhold when it completes.
    if call.on_hold:
        call.set_on_hold(False, now)
        out.append(Change("call.unheld", call_id=call.id, agent_id=call.agent_id))
    # the transferer left the call; the target (when it is an agent) has it now
    target_channel = e.transfer_target.channel if e.transfer_target is not None else None
    if target_agent and call.open_part(target_agent) is None:
        call.parts.append(AgentPart(target_agent, None, target_channel, now))
        call.ringing_agents.discard(target_agent)
        call.direct_rung.discard(target_agent)
    transferer = s.agent_for_channel(e.orig_transferer.channel) or call.agent_id
    part = call.open_part(transferer) if transferer else None
    if part is not None and transferer != target_agent:
        s._close_part(call, part, now, out, "transferred")
    if target_agent:
        target = call.open_part(target_agent)
        assert target is not None
        if call.open_part() is target and call.agent_id != target_agent:
            call.agent_id, call.agent_channel = target_agent, target.channel
            out.append(Change("call.answered", call_id=call.id, agent_id=target_agent, data={"reason": "transfer"}))
        agent = s.agents.get(target_agent)
        if agent is not None:
            before = agent.signature()
            agent.ringing_call = None
            agent.current_call = call.id
            agent.wrapup_until = agent.wrapup_call = None
            s._agent_changed(agent, before, now, out, reason="transfer_answered", call_id=call.id)
        call.status = "talking"


def _on_shutdown(s: CtiState, e: ev.Shutdown, now: float, out: list[Change]) -> None:
    # issue 19: only this server's calls and memberships (the other servers carry on); an
    # untagged event (one server, or a test) is every server's
    mine = (lambda call: True) if not e.server else (lambda call: call.server in (e.server, ""))
    for call in [c for c in s.calls.values() if mine(c)]:
        call.log(now, "asterisk_shutdown", restart=e.restart)
        s._end_call(call, now, out, cause=0, cause_txt="Asterisk shutdown")
    for agent in s.agents.values():
        before = agent.signature()
        if e.server:
            gone = agent.drop_server(e.server)
        else:
            gone = list(agent.queues)
            agent.queues.clear()
            agent.memberships.clear()
        for qn in gone:
            s.queue(qn).members.discard(agent.id)
        if agent.ringing_call not in s.calls:
            agent.ringing_call = None
        if agent.current_call not in s.calls:
            agent.current_call = None
        if not agent.queues:
            agent.paused, agent.pause_reason = False, None
        s._agent_changed(agent, before, now, out, reason="asterisk_shutdown")
    for q in s.queues.values():
        if not e.server:
            q.members.clear()
            q.waiting.clear()
        q.servers.discard(e.server)
    out.append(Change("asterisk.shutdown", data={"restart": e.restart, "server": e.server}))


def _on_queue_member_listed(s: CtiState, e: ev.QueueMember, now: float, out: list[Change]) -> None:
    _member_update(s, e.member, now, out)


def _on_queue_params(s: CtiState, e: ev.QueueParams, now: float, out: list[Change]) -> None:
    s.queue(e.queue, now).strategy = e.strategy


def _ignore(s: CtiState, e: Any, now: float, out: list[Change]) -> None:
    return None


_HANDLERS: dict[type, Any] = {
    ev.Newchannel: _on_newchannel,
    ev.Newstate: _on_newstate,
    ev.Hangup: _on_hangup,
    ev.DialBegin: _on_dial_begin,
    ev.DialEnd: _on_dial_end,
    ev.BridgeEnter: _on_bridge_enter,
    ev.BridgeLeave: _on_bridge_leave,
    ev.QueueCallerJoin: _on_caller_join,
    ev.QueueCallerLeave: _on_caller_leave,
    ev.QueueCallerAbandon: _on_caller_abandon,
    ev.AgentCalled: _on_agent_called,
    ev.AgentRingNoAnswer: _on_agent_ring_no_answer,
    ev.AgentDump: _on_agent_dump,
    ev.AgentConnect: _on_agent_connect,
    ev.AgentComplete: _on_agent_complete,
    ev.QueueMemberAdded: _on_member_added,
    ev.QueueMemberRemoved: _on_member_removed,
    ev.QueueMemberPause: _on_member_event,
    ev.QueueMemberStatus: _on_member_event,
    ev.QueueMemberPenalty: _on_member_event,
    ev.MixMonitorStart: _on_mixmonitor,
    ev.MixMonitorStop: _on_mixmonitor,
    ev.MixMonitorMute: _on_mixmonitor_mute,
    ev.DTMFEnd: _on_dtmf,
    ev.DTMFBegin: _ignore,
    ev.Hold: _on_hold,
    ev.Unhold: _on_hold,
    ev.BlindTransfer: _on_blind_transfer,
    ev.AttendedTransfer: _on_attended_transfer,
    ev.Shutdown: _on_shutdown,
    ev.FullyBooted: _ignore,
    ev.OriginateResponse: _ignore,
    ev.QueueMember: _on_queue_member_listed,
    ev.QueueParams: _on_queue_params,
    ev.QueueEntry: _ignore,
    ev.QueueSummary: _ignore,
    ev.CoreShowChannel: _ignore,
}
