"""Transfers, hold and click-to-call against a REAL Asterisk (issue 9), when one is configured
(``CALLCORE_LIVE_AMI``; see tests/e2e/test_live_asterisk.py for the variables).

Written for the project's own ``asterisk-config/`` and nothing else: callers are
``Local/pressX@callcore-test-caller`` (``CALLCORE_TEST_HOLD`` seconds, then hang up), agents are
the shipped test agents ``Local/9XXX@callcore-test-agent/n`` (answer after 1 s, hang up after
8 s), reached by a transfer through ``[transfer] _9XXX``. Real app_queue sends no
``AgentComplete`` at a blind transfer and none after an unhold: every assertion here is on what
callcore derives from channels and bridges. tests/e2e/test_live_harness.py runs this file
against the emulator as a separate process.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from cti.ami import actions as act
from tests.e2e.conftest import eventually
from tests.e2e.test_live_asterisk import live, pytestmark  # noqa: F401  (fixture, skip marker)


async def _agent(live, agent_id: str, queue: str):
    token = await live.create_agent(agent_id, f"Live {agent_id}", [queue], interface=f"Local/{agent_id}@callcore-test-agent/n")
    await live.api("POST", f"/api/agents/{agent_id}/login", token=token, expect=200)
    await eventually(lambda: live.cti.state.agents[agent_id].logged_in, 10, f"{agent_id} is a member (QueueMemberAdded)")
    return token, await live.desk(token)


async def _caller(live, queue: str, number: str = "01012345678", stay: int = 30) -> None:
    await live.container.ami.send(
        act.originate(
            "Local/press9@callcore-test-caller",
            context="queue-direct",
            exten=queue,
            caller_id=f'"홍길동" <{number}>',
            variables={"CALLCORE_TEST_DELAY": "1", "CALLCORE_TEST_HOLD": str(stay)},
        )
    )


async def _record(live, call_id: str) -> dict[str, Any]:
    for _ in range(100):
        record = await live.cti.repository.get_call(call_id)
        if record:
            return record
        await asyncio.sleep(0.1)
    raise AssertionError(f"call {call_id} was not stored")


async def _blind_transfer(live, second_queue: str, target: dict[str, str]):
    """9001 (sales) answers a caller and blind-transfers it; 9002 (``second_queue``) is the target
    side. The first agent's leg is hung up by the Redirect: 9001 is released at once, while the
    call goes on; 9002's desk rings."""
    tok_a, desk_a = await _agent(live, "9001", "sales")
    tok_b, desk_b = await _agent(live, "9002", second_queue)
    await _caller(live, "sales")
    call_id = (await desk_a.wait_for("call.answered", timeout=20))["payload"]["call_id"]
    await live.api("POST", f"/api/calls/{call_id}/transfer", token=tok_a, json=target, expect=202)
    await desk_a.wait_for("agent.status", timeout=10, status="wrapup")
    assert call_id in live.cti.state.calls
    await desk_b.wait_for("call.ringing", timeout=15, call_id=call_id)
    answered = (await desk_b.wait_for("call.answered", timeout=15, call_id=call_id))["payload"]
    assert answered["agent_id"] == "9002"
    return tok_b, desk_b, call_id


async def test_live_blind_transfer_to_a_queue(live):
    tok_b, desk_b, call_id = await _blind_transfer(live, "support", {"type": "queue", "target": "support"})
    await live.api("POST", f"/api/calls/{call_id}/hangup", token=tok_b, expect=202)
    await desk_b.wait_for("call.ended", timeout=30, call_id=call_id)
    record = await _record(live, call_id)
    assert record["agent_id"] == "9002" and record["outcome"] == "answered"
    assert [t["type"] for t in record["transfers"]] == ["blind"]


async def test_live_blind_transfer_to_an_agent(live):
    # a plain Dial to 9002 (no queue events): the pops still come, and the call is 9002's
    tok_b, desk_b, call_id = await _blind_transfer(live, "billing", {"type": "agent", "target": "9002"})
    await live.api("POST", f"/api/calls/{call_id}/hold", token=tok_b, expect=202)
    await desk_b.wait_for("call.updated", timeout=5, call_id=call_id, on_hold=True)
    await live.api("POST", f"/api/calls/{call_id}/unhold", token=tok_b, expect=202)
    await desk_b.wait_for("call.updated", timeout=5, call_id=call_id, on_hold=False)
    await live.api("POST", f"/api/calls/{call_id}/hangup", token=tok_b, expect=202)  # B's call: no 403
    await desk_b.wait_for("call.ended", timeout=30, call_id=call_id)
    record = await _record(live, call_id)
    assert record["agent_id"] == "9002"


async def test_live_hold_unhold_then_the_agent_hangs_up(live):
    tok, desk = await _agent(live, "9001", "sales")
    await _caller(live, "sales")
    call_id = (await desk.wait_for("call.answered", timeout=20))["payload"]["call_id"]
    await live.api("POST", f"/api/calls/{call_id}/hold", token=tok, expect=202)
    await desk.wait_for("call.updated", timeout=5, call_id=call_id, on_hold=True)
    await asyncio.sleep(1.5)
    await live.api("POST", f"/api/calls/{call_id}/unhold", token=tok, expect=202)
    await desk.wait_for("call.updated", timeout=5, call_id=call_id, on_hold=False)
    # the test agent hangs up (8 s after answering); no AgentComplete comes after the unhold,
    # callcore still accounts the call: wrap-up, talk time, queue stats
    await desk.wait_for("call.ended", timeout=20, call_id=call_id)
    await desk.wait_for("agent.status", timeout=10, status="wrapup")
    record = await _record(live, call_id)
    assert record["outcome"] == "answered" and record["talk_time"] is not None
    assert any(e["event"] == "agent_left" for e in record["events"])


async def test_live_attended_transfer(live):
    tok_a, desk_a = await _agent(live, "9001", "sales")
    tok_b, desk_b = await _agent(live, "9002", "billing")
    await _caller(live, "sales", stay=40)
    call_id = (await desk_a.wait_for("call.answered", timeout=20))["payload"]["call_id"]
    out = await live.api("POST", f"/api/calls/{call_id}/atxfer", token=tok_a, json={"type": "agent", "target": "9002"}, expect=202)
    assert out["status"] == "started"
    await desk_a.wait_for("call.updated", timeout=10, call_id=call_id, on_hold=True)  # Hold on the transferer
    # 9001 (a test agent) hangs up 8 s after answering: that completes the transfer
    transferred = (await desk_a.wait_for("call.transferred", timeout=20, call_id=call_id))["payload"]
    assert transferred["transfer"]["type"] == "attended" and transferred["transfer"]["result"] == "Success"
    taken = (await desk_b.wait_for("call.answered", timeout=10, call_id=call_id))["payload"]
    assert taken["agent_id"] == "9002" and taken["on_hold"] is False
    await desk_a.wait_for("agent.status", timeout=10, status="wrapup")
    await desk_b.wait_for("call.ended", timeout=30, call_id=call_id)
    record = await _record(live, call_id)
    assert record["agent_id"] == "9002" and [t["type"] for t in record["transfers"]] == ["attended"]


async def test_live_click_to_call(live):
    tok, desk = await _agent(live, "9001", "sales")
    number = os.environ.get("CALLCORE_LIVE_CLICK_NUMBER", "01099998888")
    await live.api("POST", "/api/calls/click-to-call", token=tok, json={"number": number}, expect=202)
    # the agent's phone answers first: the desk has the call, the customer is being dialled
    pop = (await desk.wait_for("call.answered", timeout=15))["payload"]
    assert pop["direction"] == "outbound" and pop["caller_num"] == number and pop["status"] == "dialing"
    call_id = pop["call_id"]

    def settled():  # the customer answered (talking) or the call failed (ended)
        return next((m for m in desk.messages if m["payload"].get("call_id") == call_id
                     and (m["event"] == "call.ended" or m["payload"].get("status") == "talking")), None)

    await eventually(settled, 20, "the customer leg answered or the call ended")
    if call_id in live.cti.state.calls:
        await live.api("POST", f"/api/calls/{call_id}/hangup", token=tok, expect=202)
    await desk.wait_for("call.ended", timeout=30, call_id=call_id)
    record = await _record(live, call_id)
    # "answered" only when the customer's trunk leg answered (a test Asterisk with no reachable
    # trunk: OriginateResponse 4, no trunk channel, Cause 3 → "unanswered")
    reached = any(e["event"] == "customer_answered" for e in record["events"])
    assert record["outcome"] == ("answered" if reached else "unanswered")
