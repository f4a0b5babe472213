"""The ringing pop is complete the moment the phone rings (issue 9 item 12): the IVR hands
the call to the queue with what it knows, the CRM record and the IVR context are preloaded
then, and ``call.ringing`` carries them — no ``customer: null`` followed by ``call.updated``."""

from __future__ import annotations

from tests.e2e.conftest import expect_prompt, press_when_listening

CALLER = "01055556666"


async def test_ringing_pop_carries_the_crm_record_and_ivr_context(server):
    s = server
    pbx = s.pbx
    tok = await s.create_agent("1001", "김상담", ["billing"])
    await s.api("POST", "/api/agents/1001/login", token=tok, expect=200)
    desk = await s.desk(tok)
    agent = pbx.agent("1001", manual=True)
    # the customer is created a moment before calling in (the CRM cache must not hide them)
    await s.api("GET", f"/api/customers/lookup?phone={CALLER}", token=tok, expect=404)
    await s.api("POST", "/api/customers", json={"name": "박고객", "phone": CALLER}, token=tok, expect=201)

    call = await pbx.dial(CALLER, name="박고객", exten="15881234", context="ivr-in")
    await expect_prompt(call, "main_menu", timeout=10)
    await press_when_listening(call, "1")
    await expect_prompt(call, "billing_menu")
    await press_when_listening(call, "2")
    await agent.wait_ringing()
    pop = (await desk.wait_for("call.ringing"))["payload"]
    assert pop["loading"] is False
    assert pop["customer"] is not None and pop["customer"]["name"] == "박고객"
    assert pop["ivr"] is not None and pop["ivr"]["flow"] == "main" and pop["ivr"]["path"][-1] == "main:billing_queue"
    await call.hangup()
    await desk.wait_for("call.missed", call_id=pop["call_id"])  # it stopped ringing
