"""``Dial()`` to a single (PJSIP) channel: blind transfer to an agent extension or an outside number.

Not covered by a capture: the shapes reuse the captured DialBegin/DialEnd/Bridge*/Hangup
field layouts; the order is Asterisk's for a two-party Dial.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .model import AgentBehavior, Channel, Member
from .pbx import HungUp, Redirected, _Leg

if TYPE_CHECKING:  # pragma: no cover
    from .pbx import AgentHandle, Pbx


def _new_pjsip(pbx: "Pbx", resource: str, ch: Channel, exten: str, context: str = "default") -> Channel:
    pbx._chan_seq += 1
    dest = pbx._new_channel(f"PJSIP/{resource}-{pbx._chan_seq:08x}", context, exten, 0, ch.linkedid)
    dest.device = f"PJSIP/{resource}"
    dest.cid_num, dest.cid_name = ch.cid_num, ch.cid_name
    dest.conn_num, dest.conn_name = ch.cid_num, ch.cid_name
    pbx.emit("Newchannel", pbx.snap(dest))
    return dest


async def _dial(pbx: "Pbx", ch: Channel, dest: Channel, dialstring: str, behavior: AgentBehavior,
                agent: "AgentHandle | None", ring_timeout: float) -> str:
    pbx.emit("DialBegin", [*pbx.snap(ch), *pbx.snap(dest, "Dest"), ("DialString", dialstring)])
    pbx._newstate(dest, 5)
    leg = _Leg(Member("", dialstring, agent.exten if agent else dialstring, ""), dest, dest, behavior, agent, pbx.now())
    if agent is not None:
        agent._reset()
        agent.current = leg
        agent.calls.append(dest)
        pbx.notify()
    try:
        answered = False
        if behavior.manual and agent is not None:
            while True:
                kind, cmd = await pbx.wait_on(ch, ring_timeout, queue=agent._cmd, redirectable=True)
                if kind == "timeout" or cmd == "reject":
                    break
                if cmd == "answer":
                    answered = True
                    break
        elif behavior.answer_after is not None and behavior.answer_after <= ring_timeout:
            await pbx.wait_on(ch, behavior.answer_after, redirectable=True)
            answered = True
        else:
            await pbx.wait_on(ch, ring_timeout, redirectable=True)
    except (HungUp, Redirected):
        pbx.emit("DialEnd", [*pbx.snap(ch), *pbx.snap(dest, "Dest"), ("DialStatus", "CANCEL")])
        pbx._final_hangup(dest, 0)
        if agent is not None:
            agent.current = None
        raise
    if not answered:
        pbx.emit("DialEnd", [*pbx.snap(ch), *pbx.snap(dest, "Dest"), ("DialStatus", "NOANSWER")])
        pbx._final_hangup(dest, 0)
        if agent is not None:
            agent.current = None
        pbx.setvar(ch, "DIALSTATUS", "NOANSWER")
        return "NOANSWER"
    leg.answered = True
    pbx._newstate(dest, 6)
    pbx.device_state(dest.device, "INUSE")
    pbx.emit("DialEnd", [*pbx.snap(ch), *pbx.snap(dest, "Dest"), ("DialStatus", "ANSWER")])
    bridge = pbx._bridge_create()
    pbx._bridge_enter(bridge, dest)
    pbx._bridge_enter(bridge, ch)
    leg.connected.set()
    pbx.notify()
    talk = pbx.spawn(_talk(pbx, dest, behavior, agent), f"talk {dest.name}")
    try:
        await pbx.wait_on(ch, None, event=dest.hangup_ev, redirectable=True)
    except Redirected:
        if dest.redirect_ev.is_set() and not dest.hangup_ev.is_set():
            # dual Redirect (e.g. callcore's hold of a click-to-call): the callee has no dialplan of
            # its own; it leaves the bridge and runs the dialplan at its target (after-bridge goto)
            pbx._bridge_leave(bridge, ch)
            pbx._bridge_leave(bridge, dest)
            pbx._bridge_destroy(bridge)
            assert dest.redirect_to is not None
            pbx._start_dialplan(dest, *dest.redirect_to)
            raise
        _tear_down(pbx, ch, dest, bridge, talk, agent)
        raise
    except HungUp:
        _tear_down(pbx, ch, dest, bridge, talk, agent)
        raise
    pbx._bridge_leave(bridge, dest)
    pbx._final_hangup(dest, 16)
    pbx.device_state(dest.device, "NOT_INUSE")
    pbx._bridge_leave(bridge, ch)
    ch.dead_bridge = bridge
    if agent is not None:
        agent.current = None
    pbx.setvar(ch, "DIALSTATUS", "ANSWER")
    return "ANSWER"


def _tear_down(pbx: "Pbx", ch: Channel, dest: Channel, bridge: Any, talk: Any, agent: "AgentHandle | None") -> None:
    """The caller side left (hangup or Redirect): the callee is hung up, the bridge goes."""
    talk.cancel()
    pbx._bridge_leave(bridge, ch)
    pbx._bridge_leave(bridge, dest)
    pbx._final_hangup(dest, 16)
    pbx.device_state(dest.device, "NOT_INUSE")
    pbx._bridge_destroy(bridge)
    if agent is not None:
        agent.current = None


async def _talk(pbx: "Pbx", dest: Channel, behavior: AgentBehavior, agent: "AgentHandle | None") -> None:
    """The dialled phone talks, then hangs up (a hangup request from the phone)."""
    try:
        if not await pbx.phone_talks(dest, behavior, agent):
            return
    except HungUp:
        return
    pbx._hangup_request(dest, 16)
    dest.hangup_cause = 16
    dest.hangup_ev.set()
    pbx.notify()


async def dial_agent(pbx: "Pbx", ch: Channel, exten: str) -> str:
    agent = pbx.agents.get(exten)
    behavior = agent.behavior if agent is not None else AgentBehavior(0.0, None)
    dest = _new_pjsip(pbx, exten, ch, exten)
    return await _dial(pbx, ch, dest, exten, behavior, agent, 30.0)


async def dial_external(pbx: "Pbx", ch: Channel, number: str) -> str:
    if not pbx.cfg.trunk_reachable:
        # res_pjsip: "Could not create dialog to invalid URI 'trunk'": no channel, no DialBegin;
        # cause 3 (No route to destination) stays on the calling channel (ami-click-to-call-unreachable.raw)
        pbx.setvar(ch, "DIALSTATUS", "CHANUNAVAIL")
        ch.pending_cause = 3
        return "CHANUNAVAIL"
    behavior = pbx.customers.get(number, AgentBehavior(1.0, None))
    dest = _new_pjsip(pbx, "trunk", ch, number)
    return await _dial(pbx, ch, dest, f"{number}@trunk", behavior, None, 60.0)


async def dial_local(pbx: "Pbx", ch: Channel, exten: str, context: str) -> str:
    """``Dial(Local/<exten>@<context>/n)``: the ``;1`` half is the dialled channel (DestChannel),
    the ``;2`` half is the phone; both go when the call ends (ami-blind-transfer-to-agent)."""
    behavior, _script, agent = pbx._endpoint(context, exten)
    one, two = pbx._local_pair(exten, context, ch.linkedid)
    for c in (one, two):
        c.cid_num, c.cid_name = ch.cid_num, ch.cid_name
    try:
        return await _dial(pbx, ch, one, f"Local/{exten}@{context}/n", behavior or AgentBehavior(0.0, None), agent, 30.0)
    finally:
        if not two.gone:
            pbx._final_hangup(two, 16)
