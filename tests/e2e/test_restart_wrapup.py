"""Wrap-up survives an Asterisk restart (issue 9 item 9).

Asterisk forgets every dynamic member and its pause when it restarts; callcore re-adds the
logged-in agents. An agent still in wrap-up must come back *paused* (reason ``wrapup``) so
Asterisk does not ring it while the desk shows wrap-up, and be unpaused when the wrap-up ends.
"""

from __future__ import annotations

from tests.e2e.conftest import eventually
from tests.e2e.test_call_control import actions, agent_on_desk, answered_queue_call

MEMBER = "Local/1001@agents/n"


async def test_agent_in_wrapup_is_readded_paused_after_a_restart(server):
    s, pbx = server, server.pbx
    await s.api("PUT", "/api/queues/sales/settings", json={"wrapup_seconds": 600}, expect=200)
    tok, desk, phone = await agent_on_desk(s, "1001", "김상담", ["sales"])
    call, call_id = await answered_queue_call(s, "sales", phone, desk)
    await phone.hangup()
    await desk.wait_for("call.ended", call_id=call_id)
    await desk.wait_for("agent.status", status="wrapup")
    await eventually(lambda: pbx.queues["sales"].members[MEMBER].paused, what="wrap-up pause in the PBX")

    resyncs = s.cti.resyncs
    await pbx.shutdown(restart=True)
    await eventually(lambda: s.container.ami.state == "connected" and s.cti.resyncs > resyncs, 15, "resync")
    await eventually(lambda: MEMBER in pbx.queues["sales"].members, 5, "1001 re-added to sales")
    member = pbx.queues["sales"].members[MEMBER]
    # re-added paused for the wrap-up (before the fix: re-added unpaused, and rung)
    assert member.paused and member.paused_reason == "wrapup"
    (readd,) = [a for a in actions(pbx, "QueueAdd") if a["Interface"] == MEMBER][-1:]
    assert readd.get("Paused") == "true" and readd.get("Reason") == "wrapup"
    assert s.cti.state.agents["1001"].status == "wrapup"

    # a caller now is not offered to 1001 …
    call2 = await pbx.dial("01099990000", exten="sales", context="queue-direct")
    await call2.wait_for_queue("sales")
    await pbx.sleep(3)
    assert not phone.ringing
    # … until the wrap-up ends: the wrap-up pause is lifted in Asterisk and the caller rings
    await s.api("POST", "/api/agents/1001/ready", token=tok, expect=200)
    await eventually(lambda: not pbx.queues["sales"].members[MEMBER].paused, what="wrap-up pause lifted")
    await phone.wait_ringing()
    await call2.hangup()
