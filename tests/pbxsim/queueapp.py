"""``app_queue`` as the emulator plays it: join, ring members per strategy, connect, complete, abandon.

Event order follows ``ami-ivr-queue-agent.raw`` (answer / agent hangup),
``ami-queue-abandon.raw`` (caller hangs up while a member rings),
``ami-queue-leastrecent-answer.raw`` and ``ami-asterisk-restart.raw`` (hangup at shutdown);
transfers and hold follow the second round ``live-2026-12/``: blind transfer (no AgentComplete at
the Redirect, one per queue at the caller's final hangup), hold by dual Redirect (AgentComplete
only if the caller hangs up on hold; never once an AMI Bridge unholds), attended transfer
(Hold without MusicClass, AgentComplete Reason transfer after the transferer's leg, no DestChannel).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from .model import CONTEXT_BEHAVIORS, AgentBehavior, Channel, Member, Queue, QueueEntry
from .pbx import HungUp, Redirected, _Leg

if TYPE_CHECKING:  # pragma: no cover
    from .pbx import AgentHandle, Pbx

#: after the spied agent leg's call ended, ChanSpy lets go of it this much later (ami-chanspy-listen.raw:
#: callcore's QueuePause for the wrap-up is answered before ChanSpyStop and the agent ;1 Hangup)
SPY_DETACH_SECONDS = 0.25

_QUEUE_VARS = ("ANSWEREDTIME", "ANSWEREDTIME_MS", "DIALEDTIME", "DIALEDTIME_MS", "QUEUEWAIT", "QUEUEWAIT_MS")


def _member_target(interface: str) -> tuple[str, str, bool] | None:
    """``Local/1001@agents/n`` → ("1001", "agents", nolocalopt)."""
    if not interface.startswith("Local/"):
        if interface.startswith(("PJSIP/", "SIP/")):
            return interface.split("/", 1)[1], "agents", True
        return None
    body = interface[len("Local/") :]
    nflag = body.endswith("/n")
    if nflag:
        body = body[:-2]
    exten, _, ctx = body.partition("@")
    return exten, ctx or "default", nflag


def _behavior_for(pbx: "Pbx", exten: str, ctx: str) -> tuple[AgentBehavior, "AgentHandle | None"]:
    behavior, _script, agent = pbx._endpoint(ctx, exten)
    if behavior is None:
        behavior = CONTEXT_BEHAVIORS["agents-noanswer"]  # nobody behind it: rings until timeout
    return behavior, agent


class _Run:
    def __init__(self, pbx: "Pbx", ch: Channel, q: Queue, entry: QueueEntry) -> None:
        self.pbx = pbx
        self.ch = ch
        self.q = q
        self.entry = entry
        self.legs: list[_Leg] = []
        self.ring_q: asyncio.Queue = asyncio.Queue()
        self.dial_start = pbx.now()

    # ------------------------------------------------------------- helpers
    def position(self) -> int:
        try:
            return self.q.callers.index(self.entry) + 1
        except ValueError:
            return 0

    def _leave(self) -> None:
        pbx, q, ch = self.pbx, self.q, self.ch
        pos = self.position()
        if self.entry in q.callers:
            q.callers.remove(self.entry)
        ch.queue = None
        pbx.emit(
            "QueueCallerLeave",
            [*pbx.snap(ch), ("Queue", q.name), ("Position", str(pos)), ("Count", str(len(q.callers)))],
        )
        pbx.setvar(ch, "QUEUEPOSITION", str(pos))
        pbx.notify()

    def _wait_vars(self) -> None:
        wait = self.pbx.now() - self.entry.joined
        self.pbx.setvar(self.ch, "QUEUEWAIT", str(int(wait)))
        self.pbx.setvar(self.ch, "QUEUEWAIT_MS", str(int(wait * 1000)))

    def _agent_fields(self, leg: _Leg) -> list[tuple[str, str]]:
        return [("Queue", self.q.name), ("Interface", leg.member.interface), ("MemberName", leg.member.name)]

    def _member_status(self, m: Member) -> None:
        self.pbx.emit("QueueMemberStatus", m.headers())

    # ------------------------------------------------------------- ringing
    def ring(self, members: list[Member]) -> None:
        pbx, ch = self.pbx, self.ch
        for m in members:
            target = _member_target(m.interface)
            if target is None:
                continue
            exten, ctx, nflag = target
            behavior, agent = _behavior_for(pbx, exten, ctx)
            one, two = pbx._local_pair(exten, ctx, ch.linkedid)
            leg = _Leg(m, one, two, behavior, agent, pbx.now())
            m.ringing = True
            pbx.newexten(one, "AppQueue", "(Outgoing Line)")
            pbx._set_callerid(one, ch.cid_num, ch.cid_name)
            dialed = m.interface[len("Local/") :] if m.interface.startswith("Local/") else m.interface
            pbx.setvar(one, "DIALEDPEERNUMBER", dialed)
            pbx.setvar(two, "DIALEDPEERNUMBER", dialed)
            two.conn_num, two.conn_name = ch.cid_num, ch.cid_name
            pbx._set_callerid(two, ch.cid_num, ch.cid_name)
            pbx._set_connected(two, ch.cid_num, ch.cid_name)
            pbx._local_bridge(one, two, not nflag)
            one.conn_num, one.conn_name = ch.cid_num, ch.cid_name
            pbx.emit(
                "AgentCalled",
                [*pbx.snap(ch), *pbx.snap(one, "Dest", exten=ch.exten), *self._agent_fields(leg)],
            )
            answers = behavior.manual or behavior.answer_after is not None
            pbx.newexten(two, "Answer" if answers else "Wait", "" if answers else "30")
            pbx.emit(
                "DialBegin",
                [*pbx.snap(ch), *pbx.snap(one, "Dest", conn_unknown=True), ("DialString", m.interface)],
            )
            one.exten = ch.exten
            self.legs.append(leg)
            leg.task = pbx.spawn(self._agent_phone(leg), f"agent phone {one.name}")
        pbx.notify()

    async def _agent_phone(self, leg: _Leg) -> None:
        pbx, b, agent, two = self.pbx, leg.behavior, leg.agent, leg.two
        if b.pjsip:
            await self._pjsip_phone(leg)
            return
        if agent is not None:
            agent._reset()
            agent.current = leg
            agent.calls.append(leg.one)
            pbx.notify()
        try:
            if b.manual and agent is not None:
                while True:
                    _, cmd = await pbx.wait_on(two, None, queue=agent._cmd)
                    if cmd in ("answer", "reject"):
                        break
                if cmd == "reject":
                    self.ring_q.put_nowait(("reject", leg))
                    await two.hangup_ev.wait()
                    return
            elif b.answer_after is None:
                await two.hangup_ev.wait()
                return
            else:
                await pbx.wait_on(two, b.answer_after)
            self.ring_q.put_nowait(("answer", leg))
            await pbx.wait_on(two, None, event=leg.connected)
            await pbx.talk_then_hang_up(two, b, agent)
        except HungUp:
            return
        finally:
            if agent is not None and agent.current is leg:
                agent.current = None
                pbx.notify()

    async def _pjsip_phone(self, leg: _Leg) -> None:
        """``Local/<ext>@agents;2`` runs ``Dial(PJSIP/<ext>,,tTr)`` (live-2026-12 ``ami-pjsip-call``,
        ``ami-pjsip-phone-hold-unreachable-retries``): a ``PJSIP/<ext>-…`` channel rings (``r``: the
        ``;1`` shows Ringing), answers, and is bridged to ``;2`` in a bridge of its own; the phone's
        BYE ends it. An unreachable contact: no channel, ``;2`` hangs up at once with cause 3."""
        from .directdial import _new_pjsip

        pbx, b, agent, one, two, m = self.pbx, leg.behavior, leg.agent, leg.one, leg.two, leg.member
        if not b.reachable or b.failed_attempts < b.unreachable_attempts:
            # res_pjsip: "Could not create dialog ... Is endpoint registered and reachable?"
            b.failed_attempts += 1
            pbx._final_hangup(two, 3)
            self.ring_q.put_nowait(("unreachable", leg))
            return
        phone = _new_pjsip(pbx, two.exten, two, "s", context="from-agents")
        leg.phone = phone
        pbx.emit("DialBegin", [*pbx.snap(two), *pbx.snap(phone, "Dest"), ("DialString", two.exten)])
        pbx._newstate(one, 5)
        m.status = 2  # the member's device is in use from the first ring (QueueMemberStatus, as captured)
        self._member_status(m)
        phone.exten = two.exten
        pbx._newstate(phone, 5)
        if agent is not None:
            agent._rung(leg, one)
        try:
            if b.manual and agent is not None:
                while True:
                    _, cmd = await pbx.wait_on(two, None, queue=agent._cmd)
                    if cmd == "answer":
                        break
            elif b.answer_after is None:
                await two.hangup_ev.wait()
                raise HungUp()
            else:
                await pbx.wait_on(two, b.answer_after)
            pbx._newstate(phone, 6)
            pbx.emit("DialEnd", [*pbx.snap(two), *pbx.snap(phone, "Dest"), ("DialStatus", "ANSWER")])
            pbx._newstate(two, 6)
            leg.phone_bridge = pbx._bridge_create()
            phone.exten = ""
            pbx._bridge_enter(leg.phone_bridge, phone)
            self.ring_q.put_nowait(("answer", leg))
            await pbx.wait_on(two, None, event=leg.connected)
            if await pbx.phone_talks(phone, b, agent):
                # the phone's BYE: it leaves its bridge, ;2's Dial returns, the Local pair is torn down
                pbx._bridge_leave(leg.phone_bridge, phone)
                pbx._final_hangup(phone, 16)
                pbx._bridge_leave(leg.phone_bridge, two)
                pbx._bridge_destroy(leg.phone_bridge)
                one.hangup_cause = 16
                one.hangup_ev.set()
                pbx.notify()
        except HungUp:
            if phone is not None and not phone.gone:
                if phone.bridge is not None:
                    pbx._bridge_leave(phone.bridge, phone)
                pbx._final_hangup(phone, 16)
        finally:
            if agent is not None and agent.current is leg:
                agent.current = None
                pbx.notify()

    def _drop_leg(self, leg: _Leg, *, dialend: str | None, double: bool = False) -> None:
        """Stop ringing ``leg``: DialEnd, then the agent Local pair is hung up (cause 0)."""
        pbx, ch = self.pbx, self.ch
        if dialend is not None:
            for _ in range(2 if double else 1):
                pbx.emit("DialEnd", [*pbx.snap(ch), *pbx.snap(leg.one, "Dest"), ("DialStatus", dialend)])
        leg.member.ringing = False
        if leg in self.legs:
            self.legs.remove(leg)
        pbx._hangup_request(leg.two, 0)
        pbx._final_hangup(leg.one, 0)
        leg.two.hangup_ev.set()

    def _finish_leg_two(self, leg: _Leg) -> None:
        self.pbx._soft_hangup_request(leg.two, 16)
        self.pbx._final_hangup(leg.two, 0)

    def _ring_no_answer(self) -> None:
        pbx, ch = self.pbx, self.ch
        legs = list(self.legs)
        for leg in legs:
            ring_time = int(pbx.now() - leg.started)
            pbx.emit(
                "AgentRingNoAnswer",
                [*pbx.snap(ch), *pbx.snap(leg.one, "Dest"), *self._agent_fields(leg), ("RingTime", str(ring_time))],
            )
        for leg in legs:
            self._drop_leg(leg, dialend="NOANSWER")
            self._finish_leg_two(leg)
        pbx.notify()

    def _cancel_all(self, double: bool = False) -> list[_Leg]:
        legs = list(self.legs)
        for leg in legs:
            self._drop_leg(leg, dialend="CANCEL", double=double)
        return legs

    # ------------------------------------------------------------- connect / talk
    async def connect(self, leg: _Leg) -> str:
        pbx, ch, q, m = self.pbx, self.ch, self.q, leg.member
        one, two = leg.one, leg.two
        leg.answered = True
        m.ringing = False
        if leg.phone is None:  # a PJSIP phone (AgentBehavior.pjsip) made ;2 Up and the member busy already
            pbx._newstate(two, 6)
            pbx.device_state(two.device, "INUSE")
            m.status = 2
            self._member_status(m)
        pbx.device_state(f"Queue:{q.name}_avail", "INUSE")
        pbx._newstate(one, 6)
        pbx.newexten(one, "AppQueue", "(Outgoing Line)")
        pbx._set_connected(one, ch.cid_num, ch.cid_name)
        pbx.device_state(two.device, "INUSE")
        pbx.emit("DialEnd", [*pbx.snap(ch), *pbx.snap(one, "Dest"), ("DialStatus", "ANSWER")])
        for other in [lg for lg in self.legs if lg is not leg]:
            self._drop_leg(other, dialend="CANCEL")
            self._finish_leg_two(other)
        self.legs = []
        pbx.device_state(f"Queue:{q.name}", "NOT_INUSE")
        hold = pbx.now() - self.entry.joined
        self._leave()
        self._wait_vars()
        pbx.emit(
            "AgentConnect",
            [
                *pbx.snap(ch),
                *pbx.snap(one, "Dest"),
                *self._agent_fields(leg),
                ("HoldTime", str(int(hold))),
                ("RingTime", str(int(pbx.now() - leg.started))),
            ],
        )
        if leg.phone_bridge is not None:
            pbx._bridge_enter(leg.phone_bridge, two)  # ;2 joins the phone once the Local answer propagated
        bridge = pbx._bridge_create()
        pbx._bridge_enter(bridge, one)
        pbx._bridge_enter(bridge, ch)
        ch.queue_bridge = bridge
        pbx.setvar(one, "BRIDGEPEER", ch.name)
        pbx.setvar(ch, "BRIDGEPEER", one.name)
        m.in_call = True
        talk_start = pbx.now()
        pbx.queue_log.connect(ch.uniqueid, q.name, m.name, hold, one.uniqueid, talk_start - leg.started)
        leg.connected.set()
        pbx.notify()

        reason = "agent"
        redirect: Redirected | None = None
        one.transfer_features = True  # Queue option t: the called party may transfer
        while True:
            agent_left = asyncio.Event()  # the agent leg hung up, was redirected or started an attended transfer
            watch = pbx.spawn(_set_on_any(agent_left, one.hangup_ev, one.redirect_ev, one.atxfer_ev), f"queue watch {one.name}")
            try:
                await pbx.wait_on(ch, None, event=agent_left, redirectable=True)
            except HungUp:
                reason = "caller"
            except Redirected as r:
                reason = "transfer"
                redirect = r
            finally:
                watch.cancel()
            if redirect is None and reason == "agent" and one.atxfer_ev.is_set() and not one.hangup_ev.is_set():
                one.atxfer_ev.clear()
                outcome = await self._attended_transfer(leg, bridge, talk_start, hold)
                if outcome == "rebridge":
                    continue
                return outcome
            break
        one.transfer_features = False
        if one.redirect_ev.is_set() and not one.hangup_ev.is_set() and not one.gone:
            return await self._agent_leg_redirected(leg, bridge, talk_start, hold, redirect)
        talk = pbx.now() - talk_start
        complete = [
            *pbx.snap(ch),
            *pbx.snap(one, "Dest"),
            *self._agent_fields(leg),
            ("HoldTime", str(int(hold))),
            ("TalkTime", str(int(talk))),
            ("Reason", reason),
        ]
        if reason == "agent":
            pbx.emit("AgentComplete", complete)
            if leg.phone is not None and not two.gone:
                pbx._final_hangup(two, 16)  # the PJSIP phone's BYE: ;2's Dial returned
            pbx.setvar(one, "BRIDGEPEER", "")
            pbx.setvar(ch, "BRIDGEPEER", "")
            pbx._bridge_leave(bridge, one)
            pbx._final_hangup(one, one.hangup_cause)
            pbx.device_state(one.device, "NOT_INUSE")
            self._member_done(m, talk, hold)
            pbx._bridge_leave(bridge, ch)
            self._answered_vars(talk)
            ch.dead_bridge = bridge
            return ""
        if redirect is not None:
            return self._caller_redirected(leg, bridge, talk_start, hold, redirect)
        if ch.ami_hangup:  # AMI Hangup of the caller ;1 itself (live-2026-12: "caller hangs up")
            await self._caller_hung_up_by_ami(leg, bridge, complete, talk, hold)
            raise HungUp()
        # the caller hung up
        pbx.emit("AgentComplete", complete)
        pbx.setvar(ch, "BRIDGEPEER", "")
        pbx._bridge_leave(bridge, ch)
        pbx._bridge_leave(bridge, one)
        pbx.hangup_from_one(one, 0 if ch.hangup_cause == 0 else 16)  # cause 0: PBX shutdown
        self._member_done(m, talk, hold)
        pbx._bridge_destroy(bridge)
        raise HungUp()

    async def _caller_hung_up_by_ami(self, leg: _Leg, bridge, complete: list[tuple[str, str]], talk: float, hold: float) -> None:
        """AMI ``Hangup`` of the caller's ``;1`` while it talks to the agent (live-2026-12
        ``ami-mixmonitor-mute``, ``ami-chanspy-listen``): the caller leaves app_queue's bridge, the
        agent leg is kicked out of it, ``AgentComplete Reason: caller``. Plain: app_queue reports
        while the caller channel still exists (caller block present), then the agent ;1, the bridge,
        the caller ;2, the agent ;2, the caller ;1 go. With a ChanSpy on the agent leg the caller's
        Local pair is gone first (``AgentComplete`` without the caller block) and the agent ;1 goes
        only after ``ChanSpyStop``. (Which order comes is a race inside Asterisk; this rule
        reproduces both captures.)"""
        pbx, ch, one, two, m = self.pbx, self.ch, leg.one, leg.two, leg.member
        caller_two = ch.peer
        cause = ch.hangup_cause
        ch.queue_bridge = None
        pbx.setvar(ch, "BRIDGEPEER", "")
        pbx._bridge_leave(bridge, ch)
        pbx._bridge_leave(bridge, one)
        pbx._hangup_request(ch, cause)
        if one.spies:
            if caller_two is not None:
                pbx._final_hangup(caller_two, cause)
            pbx._final_hangup(ch, cause)
            pbx._bridge_destroy(bridge)
            n_caller = len(pbx.snap(ch))
            pbx.emit("AgentComplete", complete[n_caller:])  # the caller channel is gone: no caller block
            pbx._final_hangup(two, cause)
            self._member_done(m, talk, hold)
            await pbx.sleep(SPY_DETACH_SECONDS)  # the spy's audiohook lets go of the agent leg a moment later
            pbx.detach_spies(one)
            pbx._final_hangup(one, cause)
        else:
            pbx.emit("AgentComplete", complete)
            pbx._final_hangup(one, cause)
            pbx._bridge_destroy(bridge)
            if caller_two is not None:
                pbx._final_hangup(caller_two, cause)
            pbx._final_hangup(two, cause)
            pbx._final_hangup(ch, cause)
            self._member_done(m, talk, hold)
        pbx.device_state(one.device, "NOT_INUSE")

    def _caller_redirected(self, leg: _Leg, bridge, talk_start: float, hold: float, redirect: Redirected) -> str:
        """Blind transfer: AMI ``Redirect`` of the bridged caller (ami-blind-transfer-to-queue/-agent).
        Both leave the bridge, the agent leg is hung up at once, the member is free again — but
        app_queue saw no hangup of the caller, so there is **no AgentComplete now**: it is sent when
        the caller is finally hung up (``Reason: caller``, TalkTime from this connect to that hangup,
        so it covers whoever talked after; no DestChannel block, that leg is long gone)."""
        pbx, ch, one, m = self.pbx, self.ch, leg.one, leg.member
        pbx.setvar(ch, "BRIDGEPEER", "")
        pbx._bridge_leave(bridge, ch)
        pbx._bridge_leave(bridge, one)
        pbx.hangup_from_one(one, 0 if ch.hangup_cause == 0 else 16)
        pbx._bridge_destroy(bridge)
        m.in_call = False
        m.status = 1
        if m.interface in self.q.members:
            self._member_status(m)

        def late_complete() -> None:
            talk = pbx.now() - talk_start
            pbx.emit("AgentComplete", [*pbx.snap(ch), *self._agent_fields(leg), ("HoldTime", str(int(hold))),
                                       ("TalkTime", str(int(talk))), ("Reason", "caller")])
            busy = m.in_call, m.status  # the member may be on its next call by now: counters only
            self._member_done(m, talk, hold, status=False)
            m.in_call, m.status = busy

        ch.before_hangup.append(late_complete)
        self._answered_vars(pbx.now() - talk_start)
        raise redirect

    async def _attended_transfer(self, leg: _Leg, bridge, talk_start: float, hold: float) -> str:
        """The agent leg started an attended transfer (AMI Atxfer → the bridge's atxfer feature;
        main/bridge_basic.c). The caller is held (MOH), the agent leg moves to a consultation bridge
        with ``Local/<exten>@<context>`` whose ``;2`` runs the dialplan (``[transfer]``). The agent
        hanging up completes it (answered: TRANSFER_COMPLETE; still ringing: blond transfer):
        the target bridge merges into the caller's bridge, the agent leg is kicked,
        ``AttendedTransfer`` (DestType Bridge) and app_queue's ``AgentComplete Reason: transfer``.
        The target hanging up first brings the agent back to the caller (TRANSFER_REBRIDGE).
        Returns "rebridge", or ends like :meth:`connect` (``""`` / raises HungUp)."""
        pbx, ch, one, m = self.pbx, self.ch, leg.one, leg.member
        assert one.atxfer_to is not None
        exten, context = one.atxfer_to
        pbx.hold(one, None)  # ast_bridge_channel_write_hold: no MusicClass header (ami-attended-transfer)
        pbx.start_moh(ch, "default")
        consult = pbx._bridge_create()
        pbx._bridge_leave(bridge, one)
        pbx._bridge_enter(consult, one)
        t1, t2 = pbx._local_pair(exten, context, one.linkedid)  # dial_transfer: Local/<exten>@<context>
        for c in (t1, t2):
            pbx._set_callerid(c, one.cid_num, one.cid_name)
        pbx.emit("DialBegin", [*pbx.snap(one), *pbx.snap(t1, "Dest"), ("DialString", f"{exten}@{context}")])
        pbx._start_dialplan(t2, context, exten)
        answered = False
        while True:
            changed = pbx._changed
            if one.hangup_ev.is_set():
                stimulus = "transferer_hangup"
            elif ch.hangup_ev.is_set():
                stimulus = "transferee_hangup"
            elif t1.hangup_ev.is_set() or t2.hangup_ev.is_set() or t1.gone or t2.gone:
                stimulus = "target_hangup"
            elif not answered and t2.bridge is not None:
                answered = True  # the target answered: the Local channel is up, consulting
                pbx._newstate(t2, 6)
                pbx._newstate(t1, 6)
                pbx.emit("DialEnd", [*pbx.snap(one), *pbx.snap(t1, "Dest"), ("DialStatus", "ANSWER")])
                pbx._bridge_enter(consult, t1)
                continue
            else:
                try:
                    await asyncio.wait_for(changed.wait(), 0.05)
                except asyncio.TimeoutError:
                    pass
                continue
            break

        def finish_target_leg() -> None:
            if not t1.gone:
                if t1.bridge is not None:
                    pbx._bridge_leave(t1.bridge, t1)
                pbx.hangup_from_one(t1, 16)

        if stimulus == "target_hangup":
            if not answered:
                pbx.emit("DialEnd", [*pbx.snap(one), *pbx.snap(t1, "Dest"), ("DialStatus", "NOANSWER")])
            finish_target_leg()
            pbx._bridge_leave(consult, one)
            pbx._bridge_destroy(consult)
            pbx._bridge_enter(bridge, one)
            pbx.stop_moh(ch)
            pbx.emit("Unhold", pbx.snap(one))
            return "rebridge"
        if stimulus == "transferee_hangup":
            # TRANSFER_FAIL: the agent and the target keep talking in the consultation bridge
            self._attended_event("Fail", one, bridge, consult, ch, t1 if answered else None, dest=None)
            pbx.emit("AgentComplete", [*pbx.snap(ch), *pbx.snap(one, "Dest"), *self._agent_fields(leg),
                                       ("HoldTime", str(int(hold))), ("TalkTime", str(int(pbx.now() - talk_start))), ("Reason", "caller")])
            self._member_done(m, pbx.now() - talk_start, hold, in_use=True)
            pbx._bridge_leave(bridge, ch)
            pbx._bridge_destroy(bridge)
            pbx.spawn(self._consultation_left(leg, consult, t1), f"consultation {one.name}")
            raise HungUp()
        # the transferer hung up: complete (or blond) — merge the target into the caller's bridge
        pbx.stop_moh(ch)  # bridge_unhold(transferee_bridge)
        pbx._bridge_leave(consult, one)
        pbx.emit("BridgeMerge", [*[("To" + k, v) for k, v in pbx._bridge_headers(bridge)],
                                 *[("From" + k, v) for k, v in pbx._bridge_headers(consult)]])
        if t1.bridge is consult:
            pbx._bridge_leave(consult, t1)
        pbx._bridge_enter(bridge, t1)
        pbx._bridge_destroy(consult)
        self._attended_event("Success", one, bridge, consult, ch, t1, dest=bridge)
        talk = pbx.now() - talk_start
        # the transferer's leg goes first; AgentComplete follows without its (DestChannel) block
        pbx._final_hangup(one, one.hangup_cause)
        pbx.device_state(one.device, "NOT_INUSE")
        pbx.emit("AgentComplete", [*pbx.snap(ch), *self._agent_fields(leg),
                                   ("HoldTime", str(int(hold))), ("TalkTime", str(int(talk))), ("Reason", "transfer")])
        self._member_done(m, talk, hold)
        # the caller now talks to the target, still inside Queue()'s bridge
        try:
            await pbx.wait_on(ch, None, event=t1.hangup_ev)
        except HungUp:
            pbx._bridge_leave(bridge, ch)
            finish_target_leg()
            pbx._bridge_destroy(bridge)
            raise
        if t1.bridge is bridge:
            pbx._bridge_leave(bridge, t1)
        pbx._bridge_leave(bridge, ch)
        self._answered_vars(pbx.now() - talk_start)
        ch.dead_bridge = bridge
        return ""

    async def _consultation_left(self, leg: _Leg, consult, t1: Channel) -> None:
        pbx, one = self.pbx, leg.one
        waits = [asyncio.ensure_future(one.hangup_ev.wait()), asyncio.ensure_future(t1.hangup_ev.wait())]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
        for c in (one, t1):
            if c.bridge is consult:
                pbx._bridge_leave(consult, c)
        pbx._bridge_destroy(consult)
        for c in (one, t1):
            if not c.gone:
                pbx.hangup_from_one(c, 16)
        leg.member.status = 1
        self._member_status(leg.member)

    def _attended_event(self, result: str, transferer: Channel, orig, second, transferee: Channel,
                        target: Channel | None, dest) -> None:
        pbx = self.pbx
        h = [("Result", result)]
        h += pbx.snap(transferer, "OrigTransferer")
        h += [("Orig" + k, v) for k, v in pbx._bridge_headers(orig)]
        h += pbx.snap(transferer, "SecondTransferer")
        h += [("Second" + k, v) for k, v in pbx._bridge_headers(second)]
        h += pbx.snap(transferee, "Transferee")
        if target is not None:
            h += pbx.snap(target, "TransferTarget")
        h.append(("IsExternal", "No"))
        if dest is not None:
            h += [("DestType", "Bridge"), ("DestBridgeUniqueid", dest.uid)]
        else:
            h.append(("DestType", "Fail"))
        pbx.emit("AttendedTransfer", h)

    async def _agent_leg_redirected(
        self, leg: _Leg, bridge, talk_start: float, hold: float, redirect: Redirected | None
    ) -> str:
        """The agent leg was sent elsewhere by AMI Redirect — with the caller (``ExtraChannel``, e.g.
        callcore's hold) or alone. Asterisk 20: ``ast_async_goto`` on a bridged channel is an
        explicit goto + ``AST_SOFTHANGUP_ASYNCGOTO``; both legs leave the bridge (BridgeLeave), the
        imparted agent leg runs the dialplan at its new place (after-bridge goto) and the caller's
        Queue() returns. No hangup request is published, so app_queue's stasis subscription sends
        **no AgentComplete now**: it stays armed and sends it when the caller or the agent leg is
        later hung up (``handle_hangup``: Reason caller/agent, TalkTime counted from the connect),
        and only then updates the member (CallsTaken, LastCall, wrapuptime)."""
        pbx, ch, one = self.pbx, self.ch, leg.one
        if redirect is not None:
            pbx.setvar(ch, "BRIDGEPEER", "")
            pbx._bridge_leave(bridge, ch)
        pbx._bridge_leave(bridge, one)
        if redirect is None:  # the caller is kicked out of the dissolving bridge
            pbx.setvar(ch, "BRIDGEPEER", "")
            pbx._bridge_leave(bridge, ch)
        pbx._bridge_destroy(bridge)
        target = one.redirect_to
        assert target is not None
        pbx._start_dialplan(one, *target)
        pbx.spawn(self._complete_on_hangup(leg, talk_start, hold), f"agentcomplete {one.name}")
        self._answered_vars(pbx.now() - talk_start)
        if redirect is not None:
            raise redirect
        ch.dead_bridge = None
        return ""

    async def _complete_on_hangup(self, leg: _Leg, talk_start: float, hold: float) -> None:
        """Armed after a dual Redirect (callcore's hold). The caller hung up while on hold:
        ``AgentComplete Reason: caller`` with both blocks (ami-hold-caller-hangup-on-hold). An AMI
        ``Bridge`` (callcore's unhold) yanks the legs first: app_queue then logs COMPLETEAGENT to
        queue_log, finds no agent event string and **never sends AgentComplete** for this call
        (ami-hold-unhold-agent-hangup) — whoever hangs up later."""
        pbx, ch, one, m = self.pbx, self.ch, leg.one, leg.member
        sent = False

        def complete(reason: str) -> None:
            nonlocal sent
            if sent:
                return
            sent = True
            pbx.emit(
                "AgentComplete",
                [
                    *pbx.snap(ch),
                    *pbx.snap(one, "Dest"),
                    *self._agent_fields(leg),
                    ("HoldTime", str(int(hold))),
                    ("TalkTime", str(int(pbx.now() - talk_start))),
                    ("Reason", reason),
                ],
            )
            self._member_done(m, pbx.now() - talk_start, hold, in_use=not one.gone)

        # sent before the leg's Hangup event, as app_queue does (ami-hold-caller-hangup-on-hold)
        ch.before_hangup.append(lambda: complete("caller"))
        one.before_hangup.append(lambda: complete("agent"))
        waits = {
            asyncio.ensure_future(ch.hangup_ev.wait()): "caller",
            asyncio.ensure_future(one.hangup_ev.wait()): "agent",
            asyncio.ensure_future(ch.yanked_ev.wait()): "bridged",
            asyncio.ensure_future(one.yanked_ev.wait()): "bridged",
        }
        try:
            done, _ = await asyncio.wait(list(waits), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for f in waits:
                f.cancel()
        kinds = {waits[f] for f in done}
        if "bridged" in kinds and not sent:
            sent = True  # disarmed: app_queue "No agent event string, bailing"
            self._member_done(m, pbx.now() - talk_start, hold, in_use=True, status=False)
        else:
            complete(kinds.pop() if len(kinds) == 1 else "caller")
        if not one.gone:
            # the agent's Local device stays INUSE while the leg lives (ringinuse=no: not rung)
            await one.hangup_ev.wait()
            await asyncio.sleep(0)
            m.status = 1
            if m.interface in self.q.members:
                self._member_status(m)
            pbx.notify()

    def _answered_vars(self, talk: float) -> None:
        dial = self.pbx.now() - self.dial_start
        self.pbx.setvar(self.ch, "ANSWEREDTIME", str(int(talk)))
        self.pbx.setvar(self.ch, "ANSWEREDTIME_MS", str(int(talk * 1000)))
        self.pbx.setvar(self.ch, "DIALEDTIME", str(int(dial)))
        self.pbx.setvar(self.ch, "DIALEDTIME_MS", str(int(dial * 1000)))

    def _member_done(self, m: Member, talk: float, hold: float, in_use: bool = False, status: bool = True) -> None:
        pbx, q = self.pbx, self.q
        pbx.queue_log.complete(self.ch.uniqueid, q.name, m.name, hold, talk, by_caller=self.ch.gone or self.ch.hangup_ev.is_set())
        m.in_call = False
        m.status = 2 if in_use else 1
        m.calls_taken += 1
        m.last_call_t = pbx.now()
        m.last_call = int(m.last_call_t)
        q.completed += 1
        if hold <= q.cfg.servicelevel:
            q.completed_in_sl += 1
        # app_queue's running averages: (old * 3 + new) / 4
        q.holdtime = (q.holdtime * 3 + hold) / 4 if q.completed > 1 else hold
        q.talktime = (q.talktime * 3 + talk) / 4 if q.completed > 1 else talk
        if q.cfg.strategy == "rrmemory":
            order = list(q.members)
            if m.interface in order:
                q.rr_next = order.index(m.interface) + 1
        if status and m.interface in q.members:
            self._member_status(m)
        pbx.device_state(f"Queue:{q.name}_avail", "NOT_INUSE")
        pbx.notify()

    # ------------------------------------------------------------- leaving without an agent
    def abandon(self) -> None:
        pbx, ch, q = self.pbx, self.ch, self.q
        legs = self._cancel_all(double=True)
        two = ch.peer
        pbx.setvar(ch, "QUEUEWAIT", str(int(pbx.now() - self.entry.joined)))
        pbx.setvar(ch, "QUEUEWAIT_MS", str(int((pbx.now() - self.entry.joined) * 1000)))
        self._answered_vars(0)
        pbx.setvar(ch, "ABANDONED", "TRUE")
        pos = self.position()
        pbx.emit(
            "QueueCallerAbandon",
            [
                *pbx.snap(ch),
                ("Queue", q.name),
                ("Position", str(pos)),
                ("OriginalPosition", str(self.entry.original_position)),
                ("HoldTime", str(int(pbx.now() - self.entry.joined))),
            ],
        )
        pbx.queue_log.abandon(ch.uniqueid, q.name, pos, self.entry.original_position, pbx.now() - self.entry.joined)
        q.abandoned += 1
        if two is not None and not two.gone:  # shutdown: the phone side is hung up now
            pbx._soft_hangup_request(two, 16)
            pbx._hangup_request(ch, 0)
            pbx._final_hangup(two, 0)
        pbx.device_state(ch.device, "NOT_INUSE")
        pbx.device_state(f"Queue:{q.name}", "NOT_INUSE")
        self._leave()
        pbx._soft_hangup_request(ch, 16)
        for leg in legs:
            self._finish_leg_two(leg)
        pbx._final_hangup(ch, ch.hangup_cause)

    def leave_without_agent(self) -> None:
        for leg in self._cancel_all():
            self._finish_leg_two(leg)
        self._wait_vars()
        self._leave()

    # ------------------------------------------------------------- main loop
    def our_turn(self) -> list[Member]:
        pbx, q = self.pbx, self.q
        avail = pbx._available(q)
        if not avail:
            return []
        effective = 1 if q.cfg.strategy == "ringall" else len(avail)
        ahead = [e for e in q.callers[: q.callers.index(self.entry)]] if self.entry in q.callers else []
        if len(ahead) >= effective:
            return []
        return pbx._pick(q, avail)

    async def run(self, timeout: float | None) -> str:
        pbx, ch, q = self.pbx, self.ch, self.q
        deadline = pbx.now() + timeout if timeout else None
        while True:
            remaining = None if deadline is None else deadline - pbx.now()
            if remaining is not None and remaining <= 0:
                pbx.queue_log.timeout(ch.uniqueid, q.name, self.position(), self.entry.original_position,
                                      pbx.now() - self.entry.joined)
                self.leave_without_agent()
                return "TIMEOUT"
            picks = self.our_turn()
            if not picks:
                await pbx.wait_on(ch, min(remaining or 1.0, 1.0), event=pbx._changed, redirectable=True)
                continue
            self.ring(picks)
            ring_left = q.cfg.timeout if remaining is None else min(q.cfg.timeout, remaining)
            ring_end = pbx.now() + ring_left
            answered = None
            while answered is None and self.legs:
                left = ring_end - pbx.now()
                if left <= 0:
                    break
                kind, item = await pbx.wait_on(ch, left, queue=self.ring_q, redirectable=True)
                if kind == "timeout":
                    break
                what, leg = item
                if leg not in self.legs:
                    continue
                if what == "answer":
                    answered = leg
                elif what == "unreachable":
                    # the Dial behind the Local channel failed at once (cause 3): no ring time
                    pbx.emit("DialEnd", [*pbx.snap(ch), *pbx.snap(leg.one, "Dest"), ("DialStatus", "NOANSWER")])
                    pbx.emit("AgentRingNoAnswer", [*pbx.snap(ch), *pbx.snap(leg.one, "Dest"), *self._agent_fields(leg), ("RingTime", "0")])
                    leg.member.ringing = False
                    self.legs.remove(leg)
                    pbx._final_hangup(leg.one, 3)
                elif what == "reject":
                    self._drop_leg(leg, dialend="BUSY")
                    self._finish_leg_two(leg)
            if answered is not None:
                return await self.connect(answered)
            if self.legs:
                self._ring_no_answer()
            # retry after ``retry`` seconds (or sooner if the queue timeout ends first)
            pause = q.cfg.retry if deadline is None else min(q.cfg.retry, max(0.0, deadline - pbx.now()))
            await pbx.wait_on(ch, pause, redirectable=True)


async def _set_on_any(target: asyncio.Event, *events: asyncio.Event) -> None:
    waits = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        target.set()
    finally:
        for w in waits:
            w.cancel()


async def run_queue(pbx: "Pbx", ch: Channel, qname: str, timeout: float | None, prio: int) -> str:
    q = pbx.queues.get(qname)
    for v in _QUEUE_VARS:
        pbx.setvar(ch, v, "")
    if q is None:
        pbx.setvar(ch, "QUEUESTATUS", "UNKNOWN")
        return "UNKNOWN"
    if not q.cfg.joinempty and not q.members:
        pbx.setvar(ch, "QUEUESTATUS", "JOINEMPTY")
        return "JOINEMPTY"
    if q.cfg.maxlen and len(q.callers) >= q.cfg.maxlen:
        pbx.setvar(ch, "QUEUESTATUS", "FULL")
        return "FULL"
    idx = len([e for e in q.callers if e.prio >= prio])
    entry = QueueEntry(ch, prio, pbx.now(), idx + 1)
    q.callers.insert(idx, entry)
    ch.queue = qname
    pbx.device_state(f"Queue:{qname}", "RINGING")
    pbx.emit(
        "QueueCallerJoin",
        [*pbx.snap(ch), ("Queue", qname), ("Position", str(idx + 1)), ("Count", str(len(q.callers)))],
    )
    pbx.queue_log.enter(ch.uniqueid, qname, ch.cid_num or "", idx + 1)
    pbx.notify()
    run = _Run(pbx, ch, q, entry)
    try:
        status = await run.run(timeout)
    except HungUp:
        if ch.gone:
            raise
        if entry in q.callers:
            run.abandon()
        raise
    except Redirected:
        if entry in q.callers:
            run.leave_without_agent()
        raise
    except asyncio.CancelledError:
        if entry in q.callers:
            q.callers.remove(entry)
        raise
    if status:
        pbx.setvar(ch, "QUEUESTATUS", status)
    return status
