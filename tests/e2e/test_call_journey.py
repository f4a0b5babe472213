"""A call from dial to the call record, through every part of callcore.

Caller → PBX emulator → callcore FastAGI → the shipped `main` IVR flow (CRM lookup
by caller number, menus) → billing queue → agent 1001 rung and popped (CRM record +
IVR context) → answers → blind transfer to the sales queue → agent 1002 popped with
the same call context → answers → caller hangs up → call record in the database.
"""

from __future__ import annotations

from tests.e2e.conftest import eventually, expect_prompt, heard, press_when_listening

CALLER = "01012345678"


async def test_ivr_queue_pop_transfer_and_call_record(server):
    s = server
    pbx = s.pbx
    tok_a = await s.create_agent("1001", "김상담", ["billing"])
    tok_b = await s.create_agent("1002", "이상담", ["sales"])
    customer = await s.api(
        "POST",
        "/api/customers",
        json={"name": "홍길동", "phone": CALLER, "email": "gildong@example.kr", "attributes": {"tier": "gold", "plan": "5G 프리미엄"}},
        expect=201,
    )
    await s.api("POST", f"/api/customers/{customer['id']}/notes", json={"text": "요금 이의제기 이력 있음"}, expect=201)

    # agents log in from their desks: QueueAdd reaches the PBX
    await s.api("POST", "/api/agents/1001/login", token=tok_a, expect=200)
    await s.api("POST", "/api/agents/1002/login", token=tok_b, expect=200)
    await eventually(lambda: "Local/1001@agents/n" in pbx.queues["billing"].members, what="1001 in billing")
    await eventually(lambda: "Local/1002@agents/n" in pbx.queues["sales"].members, what="1002 in sales")
    desk_a = await s.desk(tok_a)
    desk_b = await s.desk(tok_b)
    agent_a = pbx.agent("1001", manual=True)
    agent_b = pbx.agent("1002", manual=True)

    # --- the caller
    call = await pbx.dial(CALLER, name="홍길동", exten="15881234", context="ivr-in")
    await expect_prompt(call, "welcome")
    await expect_prompt(call, "main_menu", timeout=10)  # language timeout, hours open, CRM lookup done
    await press_when_listening(call, "1")  # billing
    await expect_prompt(call, "billing_menu")
    await press_when_listening(call, "2")  # talk to billing
    await call.wait_for_queue("billing", timeout=10)
    assert call.variables["IVR_QUEUE"] == "billing"
    assert call.variables["IVR_PRIORITY"] == "5"  # gold tier: the flow's priority expression

    # --- agent A rings and gets the pop with the CRM record and the IVR context
    await agent_a.wait_ringing()
    pop = (await desk_a.wait_for("call.ringing"))["payload"]
    call_id = pop["call_id"]
    assert pop["caller_num"] == CALLER and pop["caller_name"] == "홍길동"
    assert pop["queue"] == "billing" and pop["agent_id"] == "1001"
    if pop["customer"] is None:  # preload raced the ring: the full record follows as an update
        pop = (await desk_a.wait_for("call.updated", call_id=call_id))["payload"]
    assert pop["customer"]["name"] == "홍길동"
    assert pop["customer"]["attributes"]["plan"] == "5G 프리미엄"
    assert any("이의제기" in n["text"] for n in pop["customer"]["notes"])
    ivr = pop["ivr"]
    assert ivr["flow"] == "main" and ivr["language"] == "ko"
    assert [(d["node"], d["input"]) for d in ivr["digits"] if d["input"].isdigit()] == [("main:main_menu", "1"), ("main:billing_menu", "2")]
    assert ivr["agent"]["customer_name"] == "홍길동" and ivr["agent"]["intent"] == "billing"
    assert "main:main_menu" in ivr["path"] and ivr["path"][-1] == "main:billing_queue"
    assert pop["waited"] is not None
    # over REST too
    current = (await s.api("GET", "/api/agents/1001/current-call", token=tok_a, expect=200))["call"]
    assert current["call_id"] == call_id and current["customer"]["name"] == "홍길동"
    # agent B received nothing about this call, and may not read agent A's pop
    assert not [m for m in desk_b.messages if m["payload"].get("call_id") == call_id]
    await s.api("GET", "/api/agents/1001/current-call", token=tok_b, expect=403)

    # --- agent A answers
    await agent_a.answer()
    await desk_a.wait_for("call.answered", call_id=call_id)
    await call.wait(5)

    # --- blind transfer to the sales queue
    await s.api("POST", f"/api/calls/{call_id}/transfer", token=tok_a, json={"type": "queue", "target": "sales"}, expect=202)
    await desk_a.wait_for("call.transferred", call_id=call_id)
    await call.wait_for_queue("sales", timeout=10)

    await agent_b.wait_ringing()
    pop_b = (await desk_b.wait_for("call.ringing", call_id=call_id))["payload"]
    if pop_b["customer"] is None:
        pop_b = (await desk_b.wait_for("call.updated", call_id=call_id))["payload"]
    assert pop_b["queue"] == "sales" and pop_b["agent_id"] == "1002"
    assert pop_b["customer"]["name"] == "홍길동"
    assert pop_b["ivr"]["agent"]["intent"] == "billing"  # the same call context follows the caller
    assert pop_b["transfers"] and pop_b["transfers"][0]["by"] == "1001"
    await agent_b.answer()
    await desk_b.wait_for("call.answered", call_id=call_id)
    await call.wait(10)

    # --- the caller hangs up; both desks hear the end
    await call.hangup()
    ended = (await desk_b.wait_for("call.ended", call_id=call_id))["payload"]
    assert ended["status"] == "ended"
    await s.api(
        "POST", f"/api/calls/{call_id}/disposition", token=tok_b, json={"disposition": "resolved", "notes": "요금제 변경 완료"}, expect=200
    )

    # --- the call record in the database (not the live state): read it back from the store
    async def stored():
        row = await s.cti.repository.get_call(call_id)
        return row if row and row.get("disposition") == "resolved" else None

    record = None
    for _ in range(300):
        record = await stored()
        if record:
            break
        await call.wait(1)
    assert record, "call record with its disposition not stored"
    assert record["caller_num"] == CALLER
    assert record["queue"] in ("sales", "billing")
    assert record["agent_id"] == "1002"
    assert record["disposition"] == "resolved" and record["notes"] == "요금제 변경 완료"
    assert any(t["to"].startswith("sales") for t in record["transfers"])
    legs = record["legs"]
    assert any(leg.get("agent_id") == "1001" for leg in legs) and any(leg.get("agent_id") == "1002" for leg in legs)
    assert record["ivr_context"]["flow"] == "main"
    assert record["duration"] > 0  # seconds, real time (the emulator runs 50x faster than life)
    assert record["talk_time"] is not None and record["hold_time"] is not None
    assert record["started_at"] < record["ended_at"]
    # the recording the dialplan started (MixMonitor) is a real file
    assert call.recording is not None and call.recording.exists()
    assert "welcome" in heard(call)


async def test_callback_left_in_the_ivr_when_nobody_can_answer(server):
    """Every billing agent is on a break: the router offers a callback, the caller leaves
    one in the IVR (own number, afternoon), and it becomes a task on the billing desk."""
    s = server
    pbx = s.pbx
    tok = await s.create_agent("1001", "김상담", ["billing"])
    await s.api("POST", "/api/agents/1001/login", token=tok, expect=200)
    await s.api("POST", "/api/agents/1001/pause", token=tok, json={"reason": "lunch"}, expect=200)
    await eventually(lambda: s.cti.state.agents["1001"].paused, what="1001 paused in callcore's state")
    desk = await s.desk(tok)

    call = await pbx.dial(CALLER, name="홍길동", exten="15881234", context="ivr-in")
    await expect_prompt(call, "main_menu", timeout=10)
    await press_when_listening(call, "1")
    await expect_prompt(call, "billing_menu")
    await press_when_listening(call, "2")
    await expect_prompt(call, "long_wait_offer")  # nobody can answer: the router offers a callback
    await press_when_listening(call, "1")
    await expect_prompt(call, "callback_number_menu")
    await press_when_listening(call, "1")  # call me back on this number
    await expect_prompt(call, "callback_when_menu")
    await press_when_listening(call, "2")  # in the afternoon
    await expect_prompt(call, "callback_confirmed")
    await call.wait_for_hangup(timeout=10)
    assert not [e for e in call.events("QueueCallerJoin")]  # the caller never waited in a queue

    created = (await desk.wait_for("callback.created"))["payload"]
    assert created["number"] == CALLER and created["queue"] == "billing"
    assert created["requested_time"].endswith("T14:00-18:00")
    listed = await s.api("GET", "/api/callbacks", token=tok, expect=200)
    assert [c["id"] for c in listed] == [created["id"]]
    taken = await s.api("POST", f"/api/callbacks/{created['id']}/take", token=tok, expect=200)
    assert taken["status"] == "taken" and taken["agent_id"] == "1001"
    session = await s.api("GET", f"/api/ivr/sessions/{call.uniqueid}", expect=200)
    assert session["outcome"] == "callback"


async def test_overflow_after_the_wait_threshold(server):
    """Sales is staffed but nobody is free; after the queue's overflow threshold callcore
    moves the waiting caller to support (Redirect), where an agent gets the pop with the
    caller's IVR context."""
    s = server
    pbx = s.pbx
    tok_a = await s.create_agent("1001", "김상담", ["sales"])
    tok_b = await s.create_agent("1002", "이상담", ["support"])
    for agent, tok in (("1001", tok_a), ("1002", tok_b)):
        await s.api("POST", f"/api/agents/{agent}/login", token=tok, expect=200)
    await s.api("POST", "/api/agents/1001/pause", token=tok_a, json={"reason": "meeting"}, expect=200)
    await s.api(
        "PUT", "/api/queues/sales/settings",
        json={"overflow_queue": "support", "overflow_after_seconds": 1, "callback_after_seconds": None},
        expect=200,
    )
    await eventually(lambda: s.cti.state.agents["1001"].paused and s.cti.state.agents["1002"].logged_in, what="agents")
    desk_b = await s.desk(tok_b)
    pbx.agent("1002", manual=True)

    call = await pbx.dial(CALLER, name="홍길동", exten="15881234", context="ivr-in")
    await expect_prompt(call, "main_menu", timeout=10)
    await press_when_listening(call, "3")  # sales
    await call.wait_for_queue("sales", timeout=10)
    assert call.variables["IVR_QUEUE"] == "sales"  # the IVR routed to sales: someone is logged in there
    # one (real) second later callcore redirects the caller
    redirect = await pbx.wait_for_event("QueueCallerJoin", timeout=10, Queue="support")
    assert redirect["Linkedid"] == call.linkedid
    sent = [f for name, f in pbx.ami.actions if name == "Redirect"]
    assert any(("Context", "transfer") in f and ("Exten", "support") in f for f in sent)

    pop = (await desk_b.wait_for("call.ringing", timeout=10))["payload"]
    assert pop["queue"] == "support" and pop["caller_num"] == CALLER
    assert pop["ivr"]["agent"]["intent"] == "sales"
    assert s.cti.state.calls[pop["call_id"]].overflowed_to == "support"
    await call.hangup()
