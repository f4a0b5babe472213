"""Transfers and hold end to end, with the emulator's app_queue behaving as real Asterisk 20
does (live-2026-12 captures): no ``AgentComplete`` at a blind transfer's Redirect, none at all
after an unhold ``Bridge``. callcore must still know who is on the call from channels and
bridges: the transferring agent is released at once, a directly dialled target agent gets the
pops and may control the call.
"""

from __future__ import annotations

from tests.e2e.conftest import eventually
from tests.e2e.test_call_control import actions, agent_on_desk, answered_queue_call, events


async def test_blind_transfer_to_an_agent_gives_the_target_the_call(server):
    s, pbx = server, server.pbx
    tok_a, desk_a, phone_a = await agent_on_desk(s, "1001", "김상담", ["sales"])
    tok_b, desk_b, phone_b = await agent_on_desk(s, "1002", "이상담", ["billing"])
    call, call_id = await answered_queue_call(s, "sales", phone_a, desk_a)

    await s.api("POST", f"/api/calls/{call_id}/transfer", token=tok_a, json={"type": "agent", "target": "1002"}, expect=202)
    # A's leg is hung up at the Redirect: A is released now (wrap-up), not at the final hangup
    await desk_a.wait_for("agent.status", status="wrapup")
    assert not events(pbx, "AgentComplete")
    # B's phone rings by a plain Dial (no queue events): B still gets the ringing pop …
    ringing = (await desk_b.wait_for("call.ringing", call_id=call_id))["payload"]
    assert ringing["caller_num"] == call.one.cid_num
    await phone_b.answer()
    # … and the answered pop; B is on_call and the call is B's
    answered = (await desk_b.wait_for("call.answered", call_id=call_id))["payload"]
    assert answered["agent_id"] == "1002"
    await eventually(lambda: s.cti.state.agents["1002"].status == "on_call", what="1002 on_call")
    current = (await s.api("GET", "/api/agents/1002/current-call", token=tok_b, expect=200))["call"]
    assert current["call_id"] == call_id
    # B may control it (before the fix: 403 "not your call"); A may not any more
    await s.api("POST", f"/api/calls/{call_id}/hold", token=tok_b, expect=202)
    await desk_b.wait_for("call.updated", call_id=call_id, on_hold=True)
    await s.api("POST", f"/api/calls/{call_id}/unhold", token=tok_b, expect=202)
    r = await s.http.post(f"/api/calls/{call_id}/hangup", headers={"Authorization": f"Bearer {tok_a}"})
    assert r.status_code == 403
    await s.api("POST", f"/api/calls/{call_id}/hangup", token=tok_b, expect=202)
    await call.wait_for_hangup()
    await desk_b.wait_for("call.ended", call_id=call_id)
    await desk_b.wait_for("agent.status", status="wrapup")
    record = await s.api("GET", f"/api/calls/{call_id}", expect=200)
    assert record["agent_id"] == "1002" and record["outcome"] == "answered"


async def test_blind_transfer_to_a_queue_releases_the_first_agent_at_once(server):
    s, pbx = server, server.pbx
    await s.api("PUT", "/api/queues/sales/settings", json={"wrapup_seconds": 1}, expect=200)
    tok_a, desk_a, phone_a = await agent_on_desk(s, "1001", "김상담", ["sales"])
    tok_b, desk_b, phone_b = await agent_on_desk(s, "1002", "이상담", ["billing"])
    call, call_id = await answered_queue_call(s, "sales", phone_a, desk_a)

    await s.api("POST", f"/api/calls/{call_id}/transfer", token=tok_a, json={"type": "queue", "target": "billing"}, expect=202)
    await call.wait_for_queue("billing")
    await desk_a.wait_for("agent.status", status="wrapup")
    await phone_b.answer()
    await desk_b.wait_for("call.answered", call_id=call_id)
    # the wrap-up ends while B still talks: A is ready and is offered the next sales call
    await desk_a.wait_for("agent.status", status="ready")
    assert not events(pbx, "AgentComplete", Queue="sales")
    call2, call_id2 = await answered_queue_call(s, "sales", phone_a, desk_a, caller="01077778888", name="정고객")
    assert s.cti.state.agents["1001"].current_call == call_id2
    await call.hangup()
    await call.wait_for_hangup()
    # at the caller's final hangup app_queue sends both AgentCompletes; A is not wrapped up over call 2
    await eventually(lambda: len(events(pbx, "AgentComplete")) == 2, what="the two late AgentCompletes")
    await desk_b.wait_for("call.ended", call_id=call_id)
    assert s.cti.state.agents["1001"].status == "on_call"
    assert s.cti.state.queues["sales"].completed == 1 and s.cti.state.queues["billing"].completed == 1
    await call2.hangup()


async def test_desk_phone_hold_is_seen_on_the_phone_channel(server):
    """A phone's own hold (re-INVITE sendonly) raises Hold/Unhold on the phone's channel and keeps
    the bridge; callcore shows the call on hold and counts the time."""
    s, pbx = server, server.pbx
    tok, desk, phone = await agent_on_desk(s, "1001", "김상담", ["sales"])
    call, call_id = await answered_queue_call(s, "sales", phone, desk)
    bridge = call.one.bridge
    phone.hold("default")
    await desk.wait_for("call.updated", call_id=call_id, on_hold=True)
    phone.unhold()
    await desk.wait_for("call.updated", call_id=call_id, on_hold=False)
    assert call.one.bridge is bridge and not actions(pbx, "Redirect")
    timeline = (await s.api("GET", f"/api/calls/{call_id}", expect=200))
    assert timeline["on_hold"] is False
    await phone.hangup()
    await desk.wait_for("call.ended", call_id=call_id)


async def test_click_to_call_the_customer_never_answers_is_not_answered(server):
    """Only the agent's phone answered (issue 9 item 8): the record says "unanswered"."""
    from tests.pbxsim import AgentBehavior

    s, pbx = server, server.pbx
    tok, desk, phone = await agent_on_desk(s, "1001", "김상담", ["sales"])
    pbx.customers["01044443333"] = AgentBehavior(answer_after=None, hangup_after=None)  # rings out (60 s)
    await s.api("POST", "/api/calls/click-to-call", token=tok, json={"number": "01044443333"}, expect=202)
    await phone.answer()
    dial = await pbx.wait_for_event("DialBegin", DialString="01044443333@trunk")
    answered = (await desk.wait_for("call.answered"))["payload"]
    assert answered["status"] == "dialing"  # the agent is on it, the customer is being dialled
    call_id = answered["call_id"]
    await pbx.wait_for_event("DialEnd", DestChannel=dial["DestChannel"], DialStatus="NOANSWER", timeout=10)
    ended = (await desk.wait_for("call.ended", call_id=call_id, timeout=10))["payload"]
    assert ended["outcome"] == "unanswered"
    await eventually(lambda: s.cti.state.agents["1001"].status == "ready", what="1001 free again, no wrap-up")
