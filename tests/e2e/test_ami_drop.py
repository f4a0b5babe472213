"""The AMI link drops while calls are going on (issue 12 item c): the TCP session to Asterisk is
cut and Asterisk refuses new ones for a while; one caller hangs up meanwhile. callcore must
reconnect, resynchronise, end the call it missed (once, as answered), keep following the other,
and store every call exactly once — nothing lost, nothing duplicated."""

from __future__ import annotations

import asyncio

from tests.e2e.conftest import eventually


async def test_ami_drop_and_reconnect_loses_and_duplicates_no_call(server):
    s = server
    pbx = s.pbx
    for agent in ("1001", "1002"):
        tok = await s.create_agent(agent, f"상담 {agent}", ["sales"])
        await s.api("POST", f"/api/agents/{agent}/login", token=tok, expect=200)
        pbx.agent(agent, answer_after=0.0, hangup_after=None)
    await eventually(lambda: len(pbx.queues["sales"].members) == 2, 5, "both agents in sales")
    a = await pbx.dial("01020000001", exten="sales", context="queue-direct")
    b = await pbx.dial("01020000002", exten="sales", context="queue-direct")
    talking = lambda: [c for c in s.cti.state.calls.values() if c.status == "talking"]  # noqa: E731
    await eventually(lambda: len(talking()) == 2, 10, "both callers talking")
    ids = {c.caller_num: c.id for c in talking()}
    resyncs = s.cti.resyncs

    # the link drops and Asterisk does not take a new AMI session for a while
    port = pbx.ami.port
    await pbx.ami.stop_listening()
    await pbx.ami.drop_sessions()
    await eventually(lambda: s.container.ami.state != "connected", 5, "AMI link down")
    await a.hangup()  # callcore does not see this one end
    await asyncio.sleep(0.3)
    assert s.cti.state.calls[ids["01020000001"]].status == "talking"  # still believed live
    await pbx.ami.start(pbx.cfg.ami_host, port)

    await eventually(lambda: s.container.ami.state == "connected" and s.cti.resyncs > resyncs, 15, "reconnect + resync")
    await eventually(lambda: ids["01020000001"] not in s.cti.state.calls, 5, "the missed hangup reconciled")
    assert s.cti.state.calls[ids["01020000002"]].status == "talking"  # the other call goes on
    await b.hangup()
    await eventually(lambda: not s.cti.state.calls, 5, "both calls over")

    async def stored():
        rows = await s.api("GET", "/api/calls/history", params={"limit": 50}, expect=200)
        return [r for r in rows if r["call_id"] in ids.values()]

    deadline = asyncio.get_running_loop().time() + 10
    while len(rows := await stored()) < 2 and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.1)
    assert sorted(r["call_id"] for r in rows) == sorted(ids.values())  # each exactly once
    by_caller = {r["caller_num"]: r for r in rows}
    missed, seen = by_caller["01020000001"], by_caller["01020000002"]
    assert missed["outcome"] == "answered" and seen["outcome"] == "answered"
    detail = {k: await s.api("GET", f"/api/calls/{r['call_id']}", expect=200) for k, r in by_caller.items()}
    assert "AMI disconnect" in (detail["01020000001"]["end_cause_txt"] or "")
    assert "AMI disconnect" not in (detail["01020000002"]["end_cause_txt"] or "")
    assert missed["agent_id"] in ("1001", "1002") and seen["agent_id"] in ("1001", "1002")
