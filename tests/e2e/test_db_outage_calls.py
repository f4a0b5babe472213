"""Calls end while the database is unavailable (issue 12): the records wait in the
journal and land, in order and once each, when it answers again; the agent is not
left paused (the unpause after wrap-up never waits on the database)."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import eventually, expect_prompt, press_when_listening

CALLS = 4


@pytest.mark.slow
async def test_calls_ending_during_a_db_outage_are_all_recorded_once(server):
    s = server
    pbx = s.pbx
    tok = await s.create_agent("1001", "김상담", ["billing"])
    await s.api("POST", "/api/agents/1001/login", token=tok, expect=200)
    desk = await s.desk(tok)
    agent = pbx.agent("1001", manual=True)
    store = s.container.journal
    real_save = store._repo.save_call
    outage = {"on": True, "refused": 0}

    async def save_call(call):  # fault injection at the repository port: the database is down
        if outage["on"]:
            outage["refused"] += 1
            raise ConnectionRefusedError("database down (injected)")
        await real_save(call)

    real_save_many = store._repo.save_calls

    async def save_calls(calls):  # the batched write of the same port (issue 18)
        if outage["on"]:
            outage["refused"] += 1
            raise ConnectionRefusedError("database down (injected)")
        await real_save_many(calls)

    store._repo.save_call = save_call
    store._repo.save_calls = save_calls
    ids = []
    for n in range(CALLS):
        call = await pbx.dial(f"0105555{n:04d}", exten="15881234", context="ivr-in")
        await expect_prompt(call, "main_menu", timeout=10)
        await press_when_listening(call, "1")
        await expect_prompt(call, "billing_menu")
        await press_when_listening(call, "2")
        await agent.wait_ringing(timeout=15)
        pop = (await desk.wait_for("call.ringing", timeout=5, caller_num=f"0105555{n:04d}"))["payload"]
        await agent.answer()
        await desk.wait_for("call.answered", call_id=pop["call_id"])
        await call.hangup()
        await desk.wait_for("call.ended", call_id=pop["call_id"])
        ids.append(pop["call_id"])
        # wrap-up ends and the agent is ready again although the database is down
        await eventually(lambda: not s.cti.state.agents["1001"].paused and s.cti.state.agents["1001"].status != "wrapup",
                         10, "agent ready after wrap-up")
    await eventually(lambda: store.journal.depth == CALLS, 10, "every ended call journaled")
    assert outage["refused"] >= 1
    for cid in ids:
        assert await s.cti.repository.get_call(cid) is None

    outage["on"] = False  # the database is back
    await eventually(lambda: store.journal.depth == 0, 15, "journal drained")
    rows = await s.cti.repository.list_calls(limit=50)
    assert sorted(r["id"] if "id" in r else r["call_id"] for r in rows) == sorted(ids)  # 0 lost, 0 duplicates
    member = pbx.queues["billing"].members["Local/1001@agents/n"]
    assert not member.paused
