"""Asterisk restarts in the middle of a shift (`core restart now`).

Calls are cut, the AMI socket drops, and Asterisk comes back with empty queues
(persistentmembers=no). callcore must notice, reconnect, resynchronise its state
before trusting events again, re-add the agents who are still logged in, tell
their desks, report it all honestly on /readyz and /metrics — and route the next
call as if nothing happened.
"""

from __future__ import annotations

import asyncio

from tests.e2e.conftest import eventually, expect_prompt, press_when_listening


async def test_restart_resync_readds_agents_and_tells_desks(server):
    s = server
    pbx = s.pbx
    tok = await s.create_agent("1001", "김상담", ["sales", "billing"])
    await s.api("POST", "/api/agents/1001/login", token=tok, expect=200)
    await s.api("POST", "/api/agents/1001/pause", token=tok, json={"reason": "lunch"}, expect=200)
    await eventually(lambda: "Local/1001@agents/n" in pbx.queues["sales"].members, what="1001 in sales")
    desk = await s.desk(tok)
    supervisor = await s.desk(s.cti.authenticator.issue("sup", "supervisor"))

    # a caller is waiting in the IVR when Asterisk restarts
    call = await pbx.dial("01012345678", exten="15881234", context="ivr-in")
    await expect_prompt(call, "welcome")
    resyncs_before = s.cti.resyncs
    # down for 2 s of real time (100 virtual s at time_scale 0.02), so /readyz is asked while
    # Asterisk is really away, not after callcore has already reconnected
    pbx.cfg.restart_downtime = 2.0 / pbx.cfg.time_scale
    restart = asyncio.create_task(pbx.shutdown(restart=True))

    # callcore sees the link drop ...
    await eventually(lambda: s.container.ami.state != "connected", 5, "AMI link down")
    ready = await s.api("GET", "/readyz")
    assert ready["ami"]["connected"] is False and ready["ami"]["detail"] == "disconnected, retrying"
    assert ready["ready"] is False and ready["reasons"][0].startswith("AMI ")  # reliability: 503 while AMI is down
    await restart
    # ... and comes back: reconnect, resync, agents re-added (with their pause kept)
    await eventually(lambda: s.container.ami.state == "connected" and s.cti.resyncs > resyncs_before, 15, "resync")
    await eventually(lambda: "Local/1001@agents/n" in pbx.queues["sales"].members, 5, "1001 re-added to sales")
    await eventually(lambda: "Local/1001@agents/n" in pbx.queues["billing"].members, 5, "1001 re-added to billing")
    member = pbx.queues["sales"].members["Local/1001@agents/n"]
    assert member.paused and member.paused_reason == "lunch"
    re_adds = [f for name, f in pbx.ami.actions if name == "QueueAdd" and ("Interface", "Local/1001@agents/n") in f]
    assert len(re_adds) >= 4  # 2 at login + 2 after the restart

    resync = await desk.wait_for("agent.resync", timeout=5)
    assert resync["payload"]["agent"]["paused"] is True and resync["payload"]["call"] is None
    await supervisor.wait_for("cti.resynced", timeout=5)
    # the cut call is over in callcore's state, not left "in progress" forever
    await eventually(lambda: all(c.status == "ended" for c in s.cti.state.calls.values()), 5, "cut calls ended")
    # ... and stored exactly once (issue 12: 0 lost, 0 duplicated across the restart)
    for _ in range(100):
        rows = [r for r in await s.api("GET", "/api/calls/history", params={"limit": 50}, expect=200)
                if r["call_id"] == call.linkedid]
        if rows:
            break
        await asyncio.sleep(0.05)
    assert len(rows) == 1 and rows[0]["caller_num"] == "01012345678"

    ready = await s.api("GET", "/readyz")
    assert ready["ami"]["state"] == "connected" and ready["ami"]["connected"] is True
    assert ready["ready"] is True and ready["reasons"] == []
    metrics = (await s.http.get("/metrics")).text
    assert "callcore_ami_connected 1.0" in metrics
    assert "callcore_websocket_clients 2.0" in metrics
    agi_total = next(line for line in metrics.splitlines() if line.startswith("callcore_agi_sessions_total "))
    assert float(agi_total.split()[1]) >= 1

    # the next call is routed normally
    await s.api("POST", "/api/agents/1001/unpause", token=tok, expect=200)
    pbx.agent("1001", manual=True)
    nxt = await pbx.dial("01099998888", exten="15881234", context="ivr-in")
    await expect_prompt(nxt, "main_menu", timeout=10)
    await press_when_listening(nxt, "3")  # sales
    await nxt.wait_for_queue("sales", timeout=10)
    pop = await desk.wait_for("call.ringing", timeout=10)
    assert pop["payload"]["caller_num"] == "01099998888"
    await nxt.hangup()
