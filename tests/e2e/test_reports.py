"""Calls through the PBX emulator appear in today's report (GET /api/reports/queues) and in the
live counters (GET /api/queues, the wallboard feed) with the same values, across an AMI
reconnect + resync in the middle of the day; the emulator's queue_log of the same calls gives
the same queue figures (reports.queuelog)."""

from __future__ import annotations

import asyncio

from reports import formulas as fm
from reports.queuelog import parse
from tests.e2e.conftest import eventually

CALLER = "01012345678"
SAME = ["offered", "answered", "abandoned", "short_abandoned", "timeouts", "asa_seconds", "service_level_pct",
        "longest_wait_seconds", "answered_in_sl"]


async def _sales_agent(s, **behavior) -> str:
    """Agent 1001 in sales, logged in, its phone scripted (virtual seconds: time scale 1/50)."""
    tok = await s.create_agent("1001", "김상담", ["sales"])
    s.pbx.agent("1001", **behavior)
    await s.api("POST", "/api/agents/1001/login", token=tok, expect=200)
    await eventually(lambda: "Local/1001@agents/n" in s.pbx.queues["sales"].members, what="1001 in sales")
    return tok


async def _answered_call(s, number: str) -> None:
    call = await s.pbx.dial(number, exten="sales", context="queue-direct")
    await call.wait_for_agent(timeout=10)
    await call.wait_for_hangup(timeout=10)


async def test_report_live_counters_and_queue_log_agree_across_a_resync(server):
    s = server
    pbx = s.pbx
    tok = await _sales_agent(s, answer_after=2, hangup_after=10)

    await _answered_call(s, CALLER)
    await eventually(lambda: not s.cti.state.calls, 10, "call 1 ended")

    # AMI drops mid-day: callcore reconnects and resyncs (QueueParams says Completed: 1)
    logins = len([a for a in pbx.ami.actions if a[0] == "Login"])
    await pbx.ami.drop_sessions()
    await eventually(lambda: len([a for a in pbx.ami.actions if a[0] == "Login"]) > logins, 10, "AMI re-login")
    await eventually(lambda: s.container.ami.state == "connected", 10, "resync done")

    # a caller gives up while the only agent is paused
    await s.api("POST", "/api/agents/1001/pause", token=tok, json={"reason": "break"}, expect=200)
    await eventually(lambda: s.cti.state.agents["1001"].paused, what="1001 paused")
    gone = await pbx.dial("01099998888", exten="sales", context="queue-direct")
    await gone.wait_for_queue("sales")
    await asyncio.sleep(0.3)  # ≈ 15 virtual seconds of waiting: not a short abandon
    await gone.hangup()
    await s.api("POST", "/api/agents/1001/unpause", token=tok, expect=200)
    await eventually(lambda: not s.cti.state.agents["1001"].paused and not s.cti.state.calls, 10, "unpaused")
    await eventually(lambda: s.cti.state.agents["1001"].status == "ready", 10, "wrap-up over")

    await _answered_call(s, CALLER)
    await eventually(lambda: not s.cti.state.calls, 10, "call 3 ended")
    await s.cti.idle()
    await s.container.reports.flush()

    live = {q["queue"]: q for q in await s.api("GET", "/api/queues", expect=200)}["sales"]
    (report,) = (await s.api("GET", "/api/reports/queues", params={"queue": "sales"}, expect=200))["rows"]
    assert (report["offered"], report["answered"], report["abandoned"]) == (3, 2, 1)
    assert live["answered_today"] == report["answered"] == 2  # not reset by the resync's QueueParams
    assert live["abandoned_today"] == report["abandoned"]
    assert live["offered_today"] == report["offered"]
    assert live["asa_seconds"] == report["asa_seconds"]
    assert live["aht_seconds"] == report["aht_seconds"] and report["aht_seconds"] > 0
    assert live["avg_talk_seconds"] == report["avg_talk_seconds"]
    assert live["service_level"] == round(report["service_level_pct"], 1)

    # the emulator's queue_log of the same calls (app_queue's numbers, virtual seconds)
    ql = {m.queue: m.to_dict() for m in fm.queues_report(parse(pbx.queue_log.lines).visits)}["sales"]
    assert {k: report[k] for k in SAME} == {k: ql[k] for k in SAME}
    assert report["avg_talk_seconds"] + report["avg_hold_seconds"] == ql["avg_talk_seconds"]  # TalkTime both ways


def _shape(line: str, agents: dict[str, str]) -> tuple:
    """A queue_log line without its times, ids and names: what app_queue's format fixes."""
    t, callid, queue, agent, event, *data = line.split("|")
    kind = callid if callid in ("MANAGER", "NONE") else "<call>"
    data = ["<n>" if d.replace(".", "", 1).isdigit() else d for d in data]
    return kind, queue, agents.get(agent, agent), event, tuple(data)


async def test_emulator_queue_log_conforms_to_asterisk(server):
    """The emulator's queue_log lines have the shape of a real Asterisk 20's for the same call:
    member added, caller enters, agent answers and hangs up, wrap-up pause, member removed
    (tests/fixtures/asterisk-captures/live-2026-12/ami-pjsip-call.queue_log)."""
    from pathlib import Path

    real = (Path(__file__).resolve().parents[1] / "fixtures" / "asterisk-captures" / "live-2026-12"
            / "ami-pjsip-call.queue_log").read_text().splitlines()
    s = server
    pbx = s.pbx
    tok = await _sales_agent(s, answer_after=2, hangup_after=8)
    await _answered_call(s, CALLER)
    await eventually(lambda: any("|PAUSE|wrapup" in line for line in pbx.queue_log.lines), 10, "wrap-up pause")
    await s.api("POST", "/api/agents/1001/logout", token=tok, expect=200)
    await eventually(lambda: "REMOVEMEMBER" in pbx.queue_log.lines[-1], 10, "member removed")

    ours = [_shape(line, {"김상담": "<agent>"}) for line in pbx.queue_log.lines
            if "UNPAUSE" not in line]  # callcore ended the wrap-up before the logout; the capture's did not
    theirs = [_shape(line, {"Agent 1001": "<agent>"}) for line in real]
    assert ours == theirs
    # and the reader takes both alike
    for lines in (pbx.queue_log.lines, real):
        (v,) = parse(lines).visits
        assert (v.queue, v.outcome, v.completed) == ("sales", "answered", True)


async def test_an_ivr_call_shows_in_the_ivr_and_queue_reports(server):
    from tests.e2e.conftest import expect_prompt, press_when_listening

    s = server
    pbx = s.pbx
    tok = await _sales_agent(s, answer_after=1, hangup_after=5)
    call = await pbx.dial(CALLER, name="홍길동", exten="15881234", context="ivr-in")
    await expect_prompt(call, "main_menu", timeout=10)
    await press_when_listening(call, "3")  # sales
    await call.wait_for_agent(timeout=10)
    await eventually(lambda: not s.cti.state.calls, 10, "call ended")
    await s.container.reports.flush()

    (main,) = (await s.api("GET", "/api/reports/ivr", params={"flow": "main"}, expect=200))["rows"]
    assert (main["sessions"], main["handed_off"], main["contained"], main["dropped"]) == (1, 1, 0, 0)
    nodes = {n["node"] for n in main["nodes"]}
    assert "main_menu" in nodes and "sales_queue" in nodes
    (sales,) = (await s.api("GET", "/api/reports/queues", params={"queue": "sales"}, expect=200))["rows"]
    assert (sales["offered"], sales["answered"], sales["handled"]) == (1, 1, 1)
    r = await s.http.get("/api/reports/queues?format=csv", headers={"Authorization": "Bearer e2e-admin-token"})
    assert r.status_code == 200 and r.text.splitlines()[1].startswith("sales,1,1,0,0,")


async def test_a_queue_timeout_is_a_timeout_both_ways(server):
    """Nobody answers before the queue's timeout; the caller leaves a voicemail and hangs up.
    queue_log says EXITWITHTIMEOUT; callcore, from AMI, counts a timeout too (not an abandon)."""
    s = server
    pbx = s.pbx
    tok = await _sales_agent(s, answer_after=None)  # rings, never answers
    call = await pbx.dial(CALLER, exten="sales", context="queue-direct", variables={"IVR_TIMEOUT": "30"})
    await call.wait_for_queue("sales")
    await eventually(lambda: "vm-intro" in call.one.prompts, 10, "voicemail after the queue timeout")
    await call.hangup()
    await eventually(lambda: not s.cti.state.calls, 10, "call ended")
    await s.container.reports.flush()
    (report,) = (await s.api("GET", "/api/reports/queues", params={"queue": "sales"}, expect=200))["rows"]
    ql = {m.queue: m.to_dict() for m in fm.queues_report(parse(pbx.queue_log.lines).visits)}["sales"]
    assert (report["offered"], report["timeouts"], report["abandoned"], report["answered"]) == (1, 1, 0, 0)
    # the emulator ends a timeout with QueueCallerLeave only (tests/protocol/pbxsim, test_queue_timeout_
    # goes_to_voicemail), so callcore measures the wait on its own clock (real seconds, 1/50 of the
    # emulator's); a real Asterisk 20 adds QueueCallerAbandon with HoldTime (captures README), whose
    # shape tests/unit/reports/test_captures.py covers
    same = [k for k in SAME if k != "longest_wait_seconds"]
    assert {k: report[k] for k in same} == {k: ql[k] for k in same}
    assert tok
