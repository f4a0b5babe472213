"""Call control end to end: callcore's REST/websocket against the PBX emulator.

Every test places a real call through the emulator (AMI + dialplan of
asterisk-config/extensions.conf + app_queue) with the whole callcore server, and
asserts both what callcore reports (REST, websocket, state, database) and what the
PBX saw (``pbx.ami.actions``, events, channels).

Most inbound calls enter a queue through ``[queue-direct]`` (the AMI Redirect /
internal-routing entry of extensions.conf) so the IVR does not cost time; the VIP
test goes through the shipped ``main`` IVR flow because the priority comes from it.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.e2e.conftest import ADMIN_TOKEN, Stack, eventually, expect_prompt
from tests.pbxsim import AgentBehavior

CUSTOMER = "01055551234"


# ------------------------------------------------------------------ helpers
def actions(pbx, name: str) -> list[dict[str, str]]:
    """Every AMI action ``name`` the PBX received, as header dicts (first value wins, like Asterisk)."""
    out = []
    for action, frame in pbx.ami.actions:
        if action.lower() == name.lower():
            d: dict[str, str] = {}
            for k, v in frame:
                d.setdefault(k, v)
            d["_variables"] = [v for k, v in frame if k.lower() == "variable"]  # type: ignore[assignment]
            out.append(d)
    return out


def events(pbx, name: str, **match: str) -> list[Any]:
    return [e for e in pbx.events_named(name) if all(e.get(k) == v for k, v in match.items())]


async def agent_on_desk(s: Stack, agent_id: str, name: str, queues: list[str], **kw):
    """Create the agent, log in (QueueAdd reaches the PBX), open the desk, take the phone (manual)."""
    tok = await s.create_agent(agent_id, name, queues, **kw)
    if queues:
        await s.api("POST", f"/api/agents/{agent_id}/login", token=tok, expect=200)
        for q in queues:
            await eventually(lambda q=q: f"Local/{agent_id}@agents/n" in s.pbx.queues[q].members, what=f"{agent_id} in {q}")
    desk = await s.desk(tok)
    phone = s.pbx.agent(agent_id, manual=True)
    return tok, desk, phone


async def answered_queue_call(s: Stack, queue: str, phone, desk, caller: str = CUSTOMER, name: str = "박고객"):
    """A caller enters ``queue``; the agent's phone rings, the agent answers; returns (call, call_id)."""
    seen = {m["payload"].get("call_id") for m in desk.named("call.ringing")}
    call = await s.pbx.dial(caller, name=name, exten=queue, context="queue-direct")
    await call.wait_for_queue(queue)
    await phone.wait_ringing()
    ringing = await eventually(
        lambda: next((m["payload"] for m in desk.named("call.ringing") if m["payload"]["call_id"] not in seen), None),
        what=f"call.ringing for {caller}",
    )
    assert ringing["caller_num"] == caller and ringing["queue"] == queue
    await phone.answer()
    await desk.wait_for("call.answered", call_id=ringing["call_id"])
    return call, ringing["call_id"]


async def status_of(s: Stack, method: str, path: str, token: str = ADMIN_TOKEN, **kw) -> tuple[int, Any]:
    r = await s.http.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kw)
    return r.status_code, (r.json() if r.content else None)


# ------------------------------------------------------------------ click-to-call
async def test_click_to_call_rings_the_agent_first_then_the_customer_with_the_record(server):
    s, pbx = server, server.pbx
    tok, desk, phone = await agent_on_desk(s, "1001", "김상담", ["sales"])
    customer = await s.api(
        "POST", "/api/customers", json={"name": "최고객", "phone": CUSTOMER, "attributes": {"plan": "5G 라이트"}}, expect=201
    )
    out = await s.api("POST", "/api/calls/click-to-call", token=tok, json={"number": CUSTOMER}, expect=202)
    assert out["status"] == "dialing" and out["customer"]["id"] == customer["id"]

    # the PBX got one Originate: the agent's device first, the customer as the dialplan destination
    (orig,) = actions(pbx, "Originate")
    assert orig["Channel"] == "Local/1001@agents"
    assert (orig["Context"], orig["Exten"]) == ("outbound", CUSTOMER)
    assert "CALLCORE_ORIGIN=click-to-call" in orig["_variables"]
    assert f"CALLCORE_CUSTOMER_ID={customer['id']}" in orig["_variables"]
    assert orig["CallerID"] == f'"최고객" <{CUSTOMER}>'

    # only the agent rings; no trunk channel exists before the agent answers
    await phone.wait_ringing()
    assert not [c for c in pbx.channels if c.startswith("PJSIP/trunk")]
    await phone.answer()
    resp = await pbx.wait_for_event("OriginateResponse", ActionID=orig["ActionID"])
    assert resp["Response"] == "Success"
    # then the customer leg is dialled out of [outbound] and bridged with the agent
    dial = await pbx.wait_for_event("DialBegin", DialString=f"{CUSTOMER}@trunk")
    assert dial["DestChannel"].startswith("PJSIP/trunk-")
    await pbx.wait_for_event("BridgeEnter", Channel=dial["DestChannel"])
    assert resp.t <= dial.t

    # the desk gets the call with the customer record attached
    def popped():
        for m in desk.messages:
            p = m["payload"]
            if m["event"].startswith("call.") and p.get("origin") == "click-to-call" and (p.get("customer") or {}).get("id"):
                return p
        return None

    pop = await eventually(popped, what="click-to-call pop with the customer")
    assert pop["direction"] == "outbound" and pop["caller_num"] == CUSTOMER
    assert pop["customer"]["name"] == "최고객" and pop["customer"]["attributes"]["plan"] == "5G 라이트"
    call_id = pop["call_id"]
    current = (await s.api("GET", "/api/agents/1001/current-call", token=tok, expect=200))["call"]
    assert current["call_id"] == call_id and current["origin"] == "click-to-call"

    # the agent hangs up from the desk; the record is stored with its origin
    await s.api("POST", f"/api/calls/{call_id}/hangup", token=tok, expect=202)
    await desk.wait_for("call.ended", call_id=call_id)
    assert not [c for c in pbx.channels if c.startswith(("PJSIP/trunk", "Local/1001@agents"))]

    async def stored():
        return await s.cti.repository.get_call(call_id)

    row = None
    for _ in range(200):
        row = await stored()
        if row:
            break
        await pbx.sleep(1)
    assert row and row["direction"] == "outbound" and row["agent_id"] == "1001"
    assert row["outcome"] == "answered"  # the customer's trunk leg answered


# ------------------------------------------------------------------ hold / unhold
async def test_hold_plays_music_to_the_customer_and_unhold_bridges_the_legs_again(server):
    s, pbx = server, server.pbx
    tok, desk, phone = await agent_on_desk(s, "1001", "김상담", ["sales"])
    call, call_id = await answered_queue_call(s, "sales", phone, desk)
    agent_leg = phone.current.one
    queue_bridge = call.one.bridge
    assert queue_bridge is not None and agent_leg in queue_bridge.channels

    await s.api("POST", f"/api/calls/{call_id}/hold", token=tok, expect=202)
    held = await desk.wait_for("call.updated", call_id=call_id, on_hold=True)
    assert held["payload"]["on_hold"] is True
    (redirect,) = actions(pbx, "Redirect")
    assert (redirect["Channel"], redirect["Context"], redirect["Exten"]) == (call.channel, "hold", "s")
    assert (redirect["ExtraChannel"], redirect["ExtraContext"], redirect["ExtraExten"]) == (agent_leg.name, "hold", "agent")

    # both legs left app_queue's bridge; the customer hears music, the agent leg waits silently
    await pbx.wait_for_event("MusicOnHoldStart", Channel=call.channel)
    assert events(pbx, "BridgeLeave", Channel=call.channel, BridgeUniqueid=queue_bridge.uid)
    assert events(pbx, "BridgeLeave", Channel=agent_leg.name, BridgeUniqueid=queue_bridge.uid)
    await eventually(lambda: (call.one.context, call.one.app) == ("hold", "MusicOnHold"), what="customer in [hold] s")
    await eventually(lambda: (agent_leg.context, agent_leg.exten, agent_leg.app) == ("hold", "agent", "Wait"), what="agent in [hold] agent")
    assert call.one.moh == "default" and call.one.bridge is None and agent_leg.bridge is None
    # app_queue publishes no hangup request on a redirect: the queue call is not complete yet
    assert not events(pbx, "AgentComplete")
    assert pbx.queues["sales"].members["Local/1001@agents/n"].in_call
    assert (await s.api("GET", f"/api/calls/{call_id}", token=tok, expect=200))["on_hold"] is True
    await call.wait(5)

    # unhold: AMI Bridge agent ↔ customer
    await s.api("POST", f"/api/calls/{call_id}/unhold", token=tok, expect=202)
    await desk.wait_for("call.updated", call_id=call_id, on_hold=False)
    (bridge_action,) = actions(pbx, "Bridge")
    assert (bridge_action["Channel1"], bridge_action["Channel2"], bridge_action["Tone"]) == (agent_leg.name, call.channel, "no")
    await pbx.wait_for_event("MusicOnHoldStop", Channel=call.channel)
    await eventually(lambda: call.one.bridge is not None and call.one.bridge is agent_leg.bridge, what="legs bridged again")
    new_bridge = call.one.bridge
    assert new_bridge.uid != queue_bridge.uid
    assert events(pbx, "BridgeCreate", BridgeUniqueid=new_bridge.uid)
    assert {e["Channel"] for e in events(pbx, "BridgeEnter", BridgeUniqueid=new_bridge.uid)} == {call.channel, agent_leg.name}
    assert call.one.moh is None
    assert (await s.api("GET", f"/api/calls/{call_id}", token=tok, expect=200))["on_hold"] is False

    # the agent hangs up: the customer's after-bridge goto ([hold] s,2) hangs up. After the unhold
    # Bridge, real app_queue never sends AgentComplete (ami-hold-unhold-agent-hangup): callcore
    # accounts the agent from its leg leaving — wrap-up, talk time (hold included), queue stats
    await call.wait(3)
    await phone.hangup()
    await call.wait_for_hangup()
    assert not events(pbx, "AgentComplete")
    ended = (await desk.wait_for("call.ended", call_id=call_id))["payload"]
    assert ended["talk_time"] is not None  # (the e2e server's clock stands still: the value is 0 here)
    await desk.wait_for("agent.status", status="wrapup")
    await eventually(lambda: any(a["Paused"] == "true" and a.get("Reason") == "wrapup" for a in actions(pbx, "QueuePause")),
                     what="wrap-up QueuePause")
    assert s.cti.state.queues["sales"].completed == 1
    member = pbx.queues["sales"].members["Local/1001@agents/n"]
    assert member.calls_taken == 1 and not member.in_call


async def test_hold_errors_are_clear_http_errors(server):
    s, pbx = server, server.pbx
    tok, desk, phone = await agent_on_desk(s, "1001", "김상담", ["sales"])
    call = await pbx.dial(CUSTOMER, name="박고객", exten="sales", context="queue-direct")
    await phone.wait_ringing()
    ringing = (await desk.wait_for("call.ringing"))["payload"]
    call_id = ringing["call_id"]

    # 404: no such call; 409: hold / transfer / unhold of a call that is only ringing
    code, body = await status_of(s, "POST", "/api/calls/1795000000.999/hold", tok)
    assert code == 404 and "no such call" in body["detail"]
    code, body = await status_of(s, "POST", f"/api/calls/{call_id}/hold", tok)
    assert code == 409 and "ringing" in body["detail"]
    code, body = await status_of(s, "POST", f"/api/calls/{call_id}/unhold", tok)
    assert code == 409 and "not on hold" in body["detail"]
    assert not actions(pbx, "Redirect") and not actions(pbx, "Bridge")  # nothing reached the PBX

    await phone.answer()
    await desk.wait_for("call.answered", call_id=call_id)

    # the PBX refuses: the caller's channel vanished before callcore heard of it (events in flight)
    session = next(iter(pbx.ami.sessions))
    session.deny.append(re.compile(r"Event: (Hangup|SoftHangupRequest|HangupRequest|AgentComplete|BridgeLeave)\r\n"))
    await call.hangup()
    code, body = await status_of(s, "POST", f"/api/calls/{call_id}/transfer", tok, json={"type": "queue", "target": "billing"})
    assert code == 404, body
    assert f"Channel does not exist: {call.channel}" in body["detail"]
    assert actions(pbx, "Redirect")[-1]["Channel"] == call.channel
    session.deny.pop()

    # Asterisk unreachable: 503, never 500 (callcore still believes in the call: its Hangup was lost)
    assert call_id in s.cti.state.calls
    await pbx.ami.stop_listening()
    await pbx.ami.drop_sessions()
    await eventually(lambda: s.container.ami.state != "connected", what="AMI down")
    code, body = await status_of(s, "POST", f"/api/calls/{call_id}/hangup", tok)
    assert code == 503 and "not connected" in body["detail"]
    await pbx.ami.start(pbx.cfg.ami_host, pbx.ami.port)
    await eventually(lambda: s.container.ami.state == "connected", 10, what="AMI back")
    # the resync (CoreShowChannels) finds the call gone
    await eventually(lambda: call_id not in s.cti.state.calls, 5, what="stale call dropped by the resync")


# ------------------------------------------------------------------ blind transfer
async def test_blind_transfer_to_an_agent_extension_and_to_an_outside_number(server):
    s, pbx = server, server.pbx
    tok_a, desk_a, phone_a = await agent_on_desk(s, "1001", "김상담", ["sales"])
    tok_b, desk_b, phone_b = await agent_on_desk(s, "1002", "이상담", ["billing"])

    # to agent 1002's extension: [transfer] _1XXX → Dial(PJSIP/1002)
    call, call_id = await answered_queue_call(s, "sales", phone_a, desk_a)
    info = await s.api("POST", f"/api/calls/{call_id}/transfer", token=tok_a, json={"type": "agent", "target": "1002"}, expect=202)
    assert info["to_agent"] == "1002" and info["to"] == "1002@transfer"
    r = actions(pbx, "Redirect")[-1]
    assert (r["Channel"], r["Context"], r["Exten"]) == (call.channel, "transfer", "1002")
    dial = await pbx.wait_for_event("DialBegin", DialString="1002")
    assert dial["Channel"] == call.channel and dial["DestChannel"].startswith("PJSIP/1002-")
    transferred = await desk_b.wait_for("call.transferred", call_id=call_id)
    assert transferred["payload"]["transfer"]["by"] == "1001"
    await desk_a.wait_for("call.transferred", call_id=call_id)
    await phone_b.answer()
    await pbx.wait_for_event("BridgeEnter", Channel=dial["DestChannel"])
    assert call.one.bridge is not None and {c.name for c in call.one.bridge.channels} == {call.channel, dial["DestChannel"]}
    assert not phone_a.talking and not [c for c in pbx.channels if c.startswith("Local/1001@agents-")]
    await call.hangup()

    # to an outside number: [transfer] _0X. → Dial(PJSIP/<n>@trunk)
    pbx.customers["0311112222"] = AgentBehavior(answer_after=0.5, hangup_after=None)  # answers, talks until hung up
    call2, call_id2 = await answered_queue_call(s, "sales", phone_a, desk_a, caller="01077778888", name="정고객")
    info = await s.api("POST", f"/api/calls/{call_id2}/transfer", token=tok_a, json={"type": "number", "target": "0311112222"}, expect=202)
    assert info["to"] == "0311112222@transfer"
    r = actions(pbx, "Redirect")[-1]
    assert (r["Channel"], r["Context"], r["Exten"]) == (call2.channel, "transfer", "0311112222")
    dial = await pbx.wait_for_event("DialBegin", DialString="0311112222@trunk")
    await pbx.wait_for_event("DialEnd", DestChannel=dial["DestChannel"], DialStatus="ANSWER")
    await eventually(lambda: call2.one.bridge is not None and dial["DestChannel"] in {c.name for c in call2.one.bridge.channels},
                     what="customer bridged with the outside number")
    assert not phone_a.talking  # the agent is free
    # a bad target never reaches the PBX
    n = len(actions(pbx, "Redirect"))
    code, _ = await status_of(s, "POST", f"/api/calls/{call_id2}/transfer", tok_a, json={"type": "number", "target": "12;34"})
    assert code in (409, 422) and len(actions(pbx, "Redirect")) == n
    await call2.hangup()


# ------------------------------------------------------------------ DTMF + hangup
async def test_send_dtmf_to_the_customer_and_hang_up_from_the_desk(server):
    s, pbx = server, server.pbx
    tok, desk, phone = await agent_on_desk(s, "1001", "김상담", ["sales"])
    call, call_id = await answered_queue_call(s, "sales", phone, desk)
    await s.api("POST", f"/api/calls/{call_id}/dtmf", token=tok, json={"digits": "12#"}, expect=202)
    assert [(a["Channel"], a["Digit"]) for a in actions(pbx, "PlayDTMF")] == [(call.channel, "1"), (call.channel, "2"), (call.channel, "#")]
    sent = events(pbx, "DTMFEnd", Channel=call.channel, Direction="Sent")
    assert [e["Digit"] for e in sent] == ["1", "2", "#"]
    # the customer's phone (the other half of the Local pair) received them
    assert [e["Digit"] for e in events(pbx, "DTMFEnd", Channel=call.two.name, Direction="Received")] == ["1", "2", "#"]
    code, _ = await status_of(s, "POST", f"/api/calls/{call_id}/dtmf", tok, json={"digits": "9x"})
    assert code == 422 and len(actions(pbx, "PlayDTMF")) == 3

    await s.api("POST", f"/api/calls/{call_id}/hangup", token=tok, expect=202)
    (h,) = actions(pbx, "Hangup")
    assert h["Channel"] == call.channel
    await call.wait_for_hangup()
    ended = (await desk.wait_for("call.ended", call_id=call_id))["payload"]
    assert ended["status"] == "ended"
    code, body = await status_of(s, "POST", f"/api/calls/{call_id}/hangup", tok)
    assert code in (404, 409) and code != 500


# ------------------------------------------------------------------ supervisor
@pytest.mark.parametrize("mode,options", [("listen", "qES"), ("whisper", "qESw"), ("barge", "qESB")])
async def test_supervisor_spies_on_an_agents_call(server, mode, options):
    s, pbx = server, server.pbx
    tok, desk, phone = await agent_on_desk(s, "1001", "김상담", ["sales"])
    sup_tok = await s.create_agent("2001", "한팀장", [], role="supervisor")
    sup_phone = pbx.agent("2001", manual=True)
    call, call_id = await answered_queue_call(s, "sales", phone, desk)
    agent_leg = phone.current.one

    out = await s.api("POST", f"/api/supervisor/agents/1001/{mode}", token=sup_tok, expect=202)
    assert out["call_id"] == call_id and out["channel"] == agent_leg.name
    orig = actions(pbx, "Originate")[-1]
    assert orig["Channel"] == "Local/2001@agents" and orig["Application"] == "ChanSpy"
    assert orig["Data"] == f"{agent_leg.name},{options}"
    assert f"CALLCORE_ORIGIN=supervisor-{mode}" in orig["_variables"]
    await sup_phone.answer()
    start = await pbx.wait_for_event("ChanSpyStart", SpyeeChannel=agent_leg.name)
    assert start["SpyerChannel"].startswith("Local/2001@agents-")
    # an agent may not spy
    code, _ = await status_of(s, "POST", "/api/supervisor/agents/1001/listen", tok)
    assert code == 403
    # the call ends: ChanSpy stops (option E) and the supervisor's leg hangs up
    await call.hangup()
    await pbx.wait_for_event("ChanSpyStop", SpyeeChannel=agent_leg.name)
    await eventually(lambda: not [c for c in pbx.channels if c.startswith("Local/2001@agents-")], what="spy leg gone")


async def test_supervisor_force_pause_and_force_logout(server):
    s, pbx = server, server.pbx
    tok, desk, phone = await agent_on_desk(s, "1001", "김상담", ["sales", "billing"])
    sup_tok = await s.create_agent("2001", "한팀장", [], role="supervisor")
    member = "Local/1001@agents/n"

    view = await s.api("POST", "/api/supervisor/agents/1001/force-pause", token=sup_tok, json={"reason": "meeting"}, expect=200)
    assert view["state"]["paused"] is True
    p = actions(pbx, "QueuePause")[-1]
    assert (p["Interface"], p["Paused"], p["Reason"]) == (member, "true", "meeting")
    assert all(pbx.queues[q].members[member].paused and pbx.queues[q].members[member].paused_reason == "meeting" for q in ("sales", "billing"))
    await desk.wait_for("agent.status", paused=True)
    # a paused member is not rung
    call = await pbx.dial(CUSTOMER, exten="sales", context="queue-direct")
    await call.wait_for_queue("sales")
    await call.wait(3)
    assert not phone.ringing
    code, _ = await status_of(s, "POST", "/api/supervisor/agents/1001/force-pause", tok, json={"reason": "meeting"})
    assert code == 403

    view = await s.api("POST", "/api/supervisor/agents/1001/force-logout", token=sup_tok, expect=200)
    assert view["status"] == "logged_out"
    assert {(a["Queue"], a["Interface"]) for a in actions(pbx, "QueueRemove")} == {("sales", member), ("billing", member)}
    assert member not in pbx.queues["sales"].members and member not in pbx.queues["billing"].members
    events_log = await s.api("GET", "/api/agents/1001/events", token=sup_tok, expect=200)
    assert any(e.get("kind", e.get("event")) == "logout" for e in events_log)
    await call.hangup()


# ------------------------------------------------------------------ overflow
async def test_overflow_to_another_queue_when_no_agent_is_logged_in(server):
    s, pbx = server, server.pbx
    await s.api("PUT", "/api/queues/sales/settings", json={"overflow_queue": "support", "overflow_when_no_agent": True}, expect=200)
    tok, desk, phone = await agent_on_desk(s, "1003", "오상담", ["support"])
    await s.create_agent("1001", "김상담", ["sales"])  # a sales agent exists but is not logged in

    call = await pbx.dial(CUSTOMER, name="박고객", exten="sales", context="queue-direct")
    await call.wait_for_queue("sales")
    # callcore's engine decides, Asterisk enforces: Redirect to [transfer] support
    await call.wait_for_queue("support", timeout=5)
    r = actions(pbx, "Redirect")[-1]
    assert (r["Channel"], r["Context"], r["Exten"]) == (call.channel, "transfer", "support")
    leave = events(pbx, "QueueCallerLeave", Channel=call.channel, Queue="sales")
    assert leave and not events(pbx, "QueueCallerAbandon", Channel=call.channel)
    await phone.wait_ringing()
    pop = (await desk.wait_for("call.ringing"))["payload"]
    assert pop["queue"] == "support" and pop["caller_num"] == CUSTOMER
    await phone.answer()
    await desk.wait_for("call.answered", call_id=pop["call_id"])
    live = s.cti.state.calls[pop["call_id"]]
    assert live.overflowed_to == "support"
    assert any(e["event"] == "overflow" and e["why"] == "no agent" for e in live.events)
    await call.hangup()


# ------------------------------------------------------------------ callback
async def test_callback_becomes_a_task_an_agent_takes_and_dials(server):
    s, pbx = server, server.pbx
    tok, desk, phone = await agent_on_desk(s, "1002", "이상담", ["billing"])
    other_tok, other_desk, _ = await agent_on_desk(s, "1004", "정상담", ["tech"])
    customer = await s.api("POST", "/api/customers", json={"name": "홍길동", "phone": CUSTOMER}, expect=201)

    cb = await s.api("POST", "/api/callbacks", json={"number": CUSTOMER, "queue": "billing", "caller_num": CUSTOMER,
                                                      "context": {"reason": "요금 문의"}}, expect=201)
    assert cb["status"] == "open"
    await desk.wait_for("callback.created", id=cb["id"])
    assert not other_desk.named("callback.created")  # only agents of the queue are told
    listed = await s.api("GET", "/api/callbacks", token=tok, expect=200)
    assert [c["id"] for c in listed] == [cb["id"]]
    code, _ = await status_of(s, "POST", f"/api/callbacks/{cb['id']}/dial", tok)
    assert code == 409  # take it first
    code, _ = await status_of(s, "POST", f"/api/callbacks/{cb['id']}/take", other_tok)
    assert code == 403  # not this agent's queue

    taken = await s.api("POST", f"/api/callbacks/{cb['id']}/take", token=tok, expect=200)
    assert taken["status"] == "taken" and taken["agent_id"] == "1002"
    out = await s.api("POST", f"/api/callbacks/{cb['id']}/dial", token=tok, expect=202)
    assert out["customer"]["id"] == customer["id"]
    orig = actions(pbx, "Originate")[-1]
    assert (orig["Channel"], orig["Context"], orig["Exten"]) == ("Local/1002@agents", "outbound", CUSTOMER)
    assert "CALLCORE_ORIGIN=callback" in orig["_variables"] and f"CALLCORE_CALLBACK_ID={cb['id']}" in orig["_variables"]

    await phone.answer()
    dial = await pbx.wait_for_event("DialBegin", DialString=f"{CUSTOMER}@trunk")
    await pbx.wait_for_event("BridgeEnter", Channel=dial["DestChannel"])

    async def dialing():
        row = await s.cti.repository.get_callback(cb["id"])
        return row if row and row["status"] == "dialing" else None

    row = None
    for _ in range(200):
        row = await dialing()
        if row:
            break
        await pbx.sleep(1)
    assert row and row["dial_call_id"]
    current = (await s.api("GET", "/api/agents/1002/current-call", token=tok, expect=200))["call"]
    assert current["call_id"] == row["dial_call_id"] and current["origin"] == "callback"
    assert current["customer"]["name"] == "홍길동"
    code, _ = await status_of(s, "POST", f"/api/callbacks/{cb['id']}/take", other_tok)
    assert code in (403, 409)
    await phone.hangup()


# ------------------------------------------------------------------ wrap-up
async def test_wrapup_pauses_the_member_then_returns_it_to_ready(server):
    s, pbx = server, server.pbx
    await s.api("PUT", "/api/queues/sales/settings", json={"wrapup_seconds": 1}, expect=200)
    tok, desk, phone = await agent_on_desk(s, "1001", "김상담", ["sales"])
    member = "Local/1001@agents/n"
    call, call_id = await answered_queue_call(s, "sales", phone, desk)
    await call.wait(2)
    await phone.hangup()
    await desk.wait_for("call.ended", call_id=call_id)
    (complete,) = events(pbx, "AgentComplete")
    assert complete["Reason"] == "agent"

    # callcore pauses the member in Asterisk for the wrap-up …
    await eventually(lambda: any(a["Paused"] == "true" and a.get("Reason") == "wrapup" for a in actions(pbx, "QueuePause")),
                     what="wrap-up QueuePause")
    await eventually(lambda: pbx.queues["sales"].members[member].paused, what="member paused in the PBX")
    assert pbx.queues["sales"].members[member].paused_reason == "wrapup"
    await desk.wait_for("agent.status", status="wrapup")
    # … a second caller is not rung during it …
    call2 = await pbx.dial("01099990000", exten="sales", context="queue-direct")
    await call2.wait_for_queue("sales")
    assert not phone.ringing
    # … and unpauses it when the queue's wrap-up seconds are over: the waiting caller rings
    await eventually(lambda: any(a["Paused"] == "false" for a in actions(pbx, "QueuePause")), 4, what="wrap-up unpause")
    assert not pbx.queues["sales"].members[member].paused
    await phone.wait_ringing(timeout=5)
    await desk.wait_for("call.ringing", caller_num="01099990000")
    view = await s.api("GET", "/api/agents/1001", token=tok, expect=200)
    assert view["state"]["paused"] is False
    await call2.hangup()


# ------------------------------------------------------------------ VIP
async def test_vip_customer_is_answered_before_a_normal_caller_who_waited_first(server):
    s, pbx = server, server.pbx
    tok, desk, phone = await agent_on_desk(s, "1005", "VIP상담", ["vip"])
    await s.api("POST", "/api/agents/1005/pause", token=tok, json={"reason": "break"}, expect=200)
    await s.api("POST", "/api/customers", json={"name": "강VIP", "phone": "01011110000", "vip": True}, expect=201)

    # a normal caller reaches the VIP line first (internal routing, default priority 0)
    normal = await pbx.dial("01022220000", name="일반고객", exten="vip", context="queue-direct")
    await normal.wait_for_queue("vip")
    # the VIP calls the main number: CRM lookup (vip: true) → VIP greeting → vip queue, priority 10
    vip = await pbx.dial("01011110000", name="강VIP", exten="15881234", context="ivr-in")
    await expect_prompt(vip, "vip_welcome", timeout=10)
    await vip.wait_for_queue("vip", timeout=10)
    assert int(vip.variables["IVR_PRIORITY"]) >= 10 and vip.variables["QUEUE_PRIO"] == vip.variables["IVR_PRIORITY"]
    join = events(pbx, "QueueCallerJoin", Channel=vip.channel, Queue="vip")[0]
    assert join["Position"] == "1"  # ahead of the caller who was waiting
    assert [e.chan.name for e in pbx.queues["vip"].callers] == [vip.channel, normal.channel]

    await s.api("POST", "/api/agents/1005/unpause", token=tok, expect=200)
    await phone.wait_ringing()
    called = events(pbx, "AgentCalled", Queue="vip")
    assert called[0]["Channel"] == vip.channel
    pop = (await desk.wait_for("call.ringing"))["payload"]
    assert pop["caller_num"] == "01011110000"
    await phone.answer()
    answered = (await desk.wait_for("call.answered", call_id=pop["call_id"]))["payload"]
    assert answered["priority"] >= 10
    if answered["customer"] is None:
        answered = (await desk.wait_for("call.updated", call_id=pop["call_id"]))["payload"]
    assert answered["customer"]["vip"] is True
    assert normal.one.queue == "vip"  # the normal caller still waits
    await vip.hangup()
    await normal.hangup()


# ------------------------------------------------------------------ attended transfer
async def test_attended_transfer_consults_agent_1002_then_hands_the_customer_over(server):
    s, pbx = server, server.pbx
    tok_a, desk_a, phone_a = await agent_on_desk(s, "1001", "김상담", ["sales"])
    tok_b, desk_b, phone_b = await agent_on_desk(s, "1002", "이상담", ["billing"])
    call, call_id = await answered_queue_call(s, "sales", phone_a, desk_a)
    agent_leg = phone_a.current.one
    queue_bridge = call.one.bridge

    out = await s.api("POST", f"/api/calls/{call_id}/atxfer", token=tok_a, json={"type": "agent", "target": "1002"}, expect=202)
    assert out == {"type": "attended", "to": "1002@transfer", "status": "started"}
    (a,) = actions(pbx, "Atxfer")
    assert (a["Channel"], a["Exten"], a["Context"]) == (agent_leg.name, "1002", "transfer")
    # the feature code and the extension arrive as DTMF on the agent leg
    digits = "".join(e["Digit"] for e in events(pbx, "DTMFEnd", Channel=agent_leg.name, Direction="Received"))
    assert digits == "*21002"
    # the customer is held, the agent consults the target in another bridge
    await pbx.wait_for_event("Hold", Channel=agent_leg.name)
    await pbx.wait_for_event("MusicOnHoldStart", Channel=call.channel)
    await desk_a.wait_for("call.updated", call_id=call_id, on_hold=True)
    dial = await pbx.wait_for_event("DialBegin", DialString="1002")
    assert dial["Channel"].startswith("Local/1002@transfer-") and dial["Channel"].endswith(";2")
    await phone_b.answer()
    target = dial["Channel"][:-1] + "1"
    await eventually(lambda: agent_leg.bridge is not None and target in {c.name for c in agent_leg.bridge.channels},
                     what="agent consulting the target")
    assert call.one.bridge is queue_bridge and call.one.moh == "default"  # the customer waits alone, with music
    assert not events(pbx, "AgentComplete")

    # the agent hangs up: the transfer completes, the customer talks to 1002
    await phone_a.hangup()
    done = await pbx.wait_for_event("AttendedTransfer")
    assert done["Result"] == "Success" and done["OrigTransfererChannel"] == agent_leg.name
    assert done["TransfereeChannel"] == call.channel and done["TransferTargetChannel"] == target
    assert (done["DestType"], done["DestBridgeUniqueid"]) == ("Bridge", queue_bridge.uid)
    (complete,) = events(pbx, "AgentComplete")
    assert complete["Reason"] == "transfer"
    await pbx.wait_for_event("MusicOnHoldStop", Channel=call.channel)
    assert {c.name for c in call.one.bridge.channels} == {call.channel, target}
    assert phone_b.talking
    transferred = (await desk_a.wait_for("call.transferred", call_id=call_id))["payload"]
    assert transferred["transfer"]["type"] == "attended" and transferred["transfer"]["result"] == "Success"
    assert transferred["transfer"]["to_agent"] == "1002"
    # the target's desk gets the call with its whole context; the call is 1002's now
    taken = (await desk_b.wait_for("call.answered", call_id=call_id))["payload"]
    assert taken["agent_id"] == "1002" and taken["on_hold"] is False
    assert taken["caller_num"] == transferred["caller_num"] and taken["transfers"][-1]["type"] == "attended"
    current_b = (await s.api("GET", "/api/agents/1002/current-call", token=tok_b, expect=200))["call"]
    assert current_b["call_id"] == call_id
    await eventually(lambda: s.cti.state.agents["1001"].current_call is None, what="1001 released from the call")
    assert s.cti.state.agents["1002"].current_call == call_id
    await call.wait(2)
    await call.hangup()
    await eventually(lambda: not phone_b.talking, what="1002 released")
    await desk_a.wait_for("call.ended", call_id=call_id)


async def test_attended_transfer_refused_by_the_pbx_is_a_502(server):
    s, pbx = server, server.pbx
    tok, desk, phone = await agent_on_desk(s, "1001", "김상담", ["sales"])
    call, call_id = await answered_queue_call(s, "sales", phone, desk)
    # an Asterisk without features.conf [featuremap] atxfer (its built-in default is empty)
    pbx.cfg.atxfer_featurecode = ""
    code, body = await status_of(s, "POST", f"/api/calls/{call_id}/atxfer", tok, json={"type": "number", "target": "0212345678"})
    assert code == 502 and "No attended transfer feature code found" in body["detail"]
    assert actions(pbx, "Atxfer") and call.one.bridge is not None and phone.talking  # nothing moved
    await call.hangup()


# ------------------------------------------------------------------ the PBX's answers (Asterisk 20 texts)
async def test_bridge_dual_redirect_and_atxfer_answers_match_asterisk(server):
    """The AMI texts callcore's error mapping relies on, through callcore's own AMI client."""
    from cti.ami.actions import Action, AmiActionError

    s, pbx = server, server.pbx
    ami = s.container.ami
    tok, desk, phone = await agent_on_desk(s, "1001", "김상담", ["sales"])
    call, call_id = await answered_queue_call(s, "sales", phone, desk)
    agent_leg = phone.current.one

    async def error_of(action) -> str:
        with pytest.raises(AmiActionError) as err:
            await ami.send(action)
        return err.value.message

    assert await error_of(Action.make("Bridge", Channel1=agent_leg.name)) == "Missing channel parameter in request"
    assert await error_of(Action.make("Bridge", Channel1="PJSIP/9999", Channel2=call.channel)) == "Channel1 does not exist: PJSIP/9999"
    assert await error_of(Action.make("Bridge", Channel1=agent_leg.name, Channel2="PJSIP/9999")) == "Channel2 does not exist: PJSIP/9999"
    assert await error_of(Action.make("Redirect", Channel=call.channel, Context="hold", Exten="s", Priority="1",
                                      ExtraChannel="PJSIP/9999", ExtraContext="hold", ExtraExten="agent", ExtraPriority="1")
                          ) == "ExtraChannel does not exist: PJSIP/9999"
    assert await error_of(Action.make("Redirect", Channel=call.channel, Context="hold", Exten="s", Priority="1",
                                      ExtraChannel=agent_leg.name, ExtraContext="hold", ExtraExten="agent", ExtraPriority="x")
                          ) == "ExtraPriority is invalid"
    assert await error_of(Action.make("Atxfer", Channel=agent_leg.name)) == "No extension specified"
    assert await error_of(Action.make("Atxfer", Channel="PJSIP/9999", Exten="1002")) == "Channel specified does not exist"
    # none of the refused actions touched the call
    assert call.one.bridge is agent_leg.bridge is not None and not events(pbx, "MusicOnHoldStart")

    ok = await ami.send(Action.make("Redirect", Channel=call.channel, Context="hold", Exten="s", Priority="1",
                                    ExtraChannel=agent_leg.name, ExtraContext="hold", ExtraExten="agent", ExtraPriority="1"))
    assert ok.message == "Dual Redirect successful"
    await pbx.wait_for_event("MusicOnHoldStart", Channel=call.channel)
    # a prefix of the channel name is enough for Bridge, as in Asterisk
    ok = await ami.send(Action.make("Bridge", Channel1=agent_leg.name[:-2], Channel2=call.channel, Tone="no"))
    assert ok.message == "Channels have been bridged"
    await eventually(lambda: call.one.bridge is not None and call.one.bridge is agent_leg.bridge, what="bridged")
    await call.hangup()
    await eventually(lambda: agent_leg.gone, what="agent leg hung up by its after-bridge goto")
    assert not events(pbx, "AgentComplete")  # never after an unhold Bridge (ami-hold-unhold-agent-hangup)


async def test_hold_and_unhold_of_a_click_to_call(server):
    """Hold on an outbound call: the customer is the trunk leg the agent's Dial() bridged."""
    s, pbx = server, server.pbx
    tok, desk, phone = await agent_on_desk(s, "1001", "김상담", ["sales"])
    await s.api("POST", "/api/calls/click-to-call", token=tok, json={"number": CUSTOMER}, expect=202)
    agent_leg = await phone.answer()
    dial = await pbx.wait_for_event("DialBegin", DialString=f"{CUSTOMER}@trunk")
    trunk = pbx.channels[dial["DestChannel"]]
    await pbx.wait_for_event("BridgeEnter", Channel=trunk.name)
    call_id = (await eventually(lambda: s.cti.agents.current_call("1001"), what="the outbound call"))["call_id"]
    await eventually(lambda: s.cti.state.calls[call_id].customer_channel == trunk.name, what="customer leg known")

    await s.api("POST", f"/api/calls/{call_id}/hold", token=tok, expect=202)
    r = actions(pbx, "Redirect")[-1]
    assert (r["Channel"], r["ExtraChannel"]) == (trunk.name, agent_leg.name)
    await pbx.wait_for_event("MusicOnHoldStart", Channel=trunk.name)
    await eventually(lambda: (agent_leg.context, agent_leg.exten) == ("hold", "agent"), what="agent leg parked")
    assert not trunk.gone and trunk.bridge is None
    await pbx.sleep(10)  # ten (virtual) seconds of music
    await s.api("POST", f"/api/calls/{call_id}/unhold", token=tok, expect=202)
    await eventually(lambda: trunk.bridge is not None and trunk.bridge is agent_leg.bridge, what="bridged again")
    assert trunk.moh is None
    await phone.hangup()
    await eventually(lambda: trunk.gone, what="customer hung up by the after-bridge goto")
    await desk.wait_for("call.ended", call_id=call_id)
    # the time on hold is part of the stored call record (wall-clock seconds: the PBX runs fast)
    scale = pbx.cfg.time_scale

    async def stored():
        return await s.cti.repository.get_call(call_id)

    record = None
    for _ in range(100):
        record = await stored()
        if record:
            break
        await pbx.sleep(1)
    assert record is not None and record["on_hold_seconds"] >= 10 * scale * 0.9


async def test_customer_hanging_up_while_on_hold_releases_the_agent(server):
    s, pbx = server, server.pbx
    tok, desk, phone = await agent_on_desk(s, "1001", "김상담", ["sales"])
    call, call_id = await answered_queue_call(s, "sales", phone, desk)
    agent_leg = phone.current.one
    await s.api("POST", f"/api/calls/{call_id}/hold", token=tok, expect=202)
    await pbx.wait_for_event("MusicOnHoldStart", Channel=call.channel)
    await call.hangup()
    complete = await pbx.wait_for_event("AgentComplete")
    assert complete["Reason"] == "caller"
    await eventually(lambda: agent_leg.gone, 3, what="the parked agent leg hung up")
    await desk.wait_for("call.ended", call_id=call_id)


async def test_agent_hanging_up_while_on_hold_releases_the_customer(server):
    """The mirror case: the customer must not be left in music on hold forever."""
    s, pbx = server, server.pbx
    tok, desk, phone = await agent_on_desk(s, "1001", "김상담", ["sales"])
    call, call_id = await answered_queue_call(s, "sales", phone, desk)
    await s.api("POST", f"/api/calls/{call_id}/hold", token=tok, expect=202)
    await pbx.wait_for_event("MusicOnHoldStart", Channel=call.channel)
    await phone.hangup()
    await eventually(lambda: call.one.gone, 3, what="the customer on hold hung up by callcore")
    hangups = [f for name, f in pbx.ami.actions if name == "Hangup"]
    assert any(("Channel", call.channel) in f for f in hangups)
    await desk.wait_for("call.ended", call_id=call_id)
