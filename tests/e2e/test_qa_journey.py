"""QA end to end: a recorded call from the PBX emulator lands in the work list by a rule,
is evaluated with a time-anchored comment, the agent disputes, the lead resolves with a
revision; a calibration of two evaluators reports the spread (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import ROOT, expect_prompt, press_when_listening

pytestmark = pytest.mark.slow


@pytest.fixture
def server_overrides(tmp_path: Path):
    forms = tmp_path / "qa-forms"
    forms.mkdir()
    (forms / "customer-service.yaml").write_bytes((ROOT / "qa-forms" / "customer-service.yaml").read_bytes())
    (forms / "sampling.yaml").write_text(
        "period: week\nseed: e2e\nform: customer-service\n"
        "evaluators:\n  - {id: qa1, daily_cap: 5}\n"
        "rules:\n  - {id: short-calls, kind: shorter_than, seconds: 3600}\n",
        encoding="utf-8",
    )
    return {
        "recordings_dir": tmp_path / "monitor", "recording_job_poll_seconds": 0.2,  # where the emulator writes
        "qa_forms_dir": forms, "qa_forms_watch": False,
    }


ANSWERS = {"greeting": "yes", "identity": "yes", "courtesy": 3, "resolution": "partial", "followup": "no",
           "hold_etiquette": "na", "summary": "yes", "farewell": 5}


async def test_recorded_call_to_resolved_dispute_and_calibration(server):
    s = server
    pbx = s.pbx
    issue = s.container.authenticator.issue
    QA1, QA2, LEAD = issue("user:qa1", "qa"), issue("user:qa2", "qa"), issue("user:lead", "qa_lead")
    tok = await s.create_agent("1001", "김상담", ["billing"])
    await s.api("POST", "/api/agents/1001/login", token=tok, expect=200)
    desk = await s.desk(tok)
    agent = pbx.agent("1001", manual=True)
    call = await pbx.dial("01012345678", name="홍길동", exten="15881234", context="ivr-in")
    await expect_prompt(call, "main_menu", timeout=10)
    await press_when_listening(call, "1")
    await expect_prompt(call, "billing_menu")
    await press_when_listening(call, "2")
    await call.wait_for_queue("billing", timeout=10)
    await agent.wait_ringing()
    call_id = (await desk.wait_for("call.ringing"))["payload"]["call_id"]
    await agent.answer()
    await desk.wait_for("call.answered", call_id=call_id)
    await call.wait(5)
    await call.hangup()
    await desk.wait_for("call.ended", call_id=call_id)

    # the recording package stores the call's recording (ready after post-processing)
    async def recorded():
        items = (await s.api("GET", "/api/recordings?status=ready", expect=200))["items"]
        return next((r for r in items if r["call_id"] == call_id), None)

    deadline = time.monotonic() + 20
    while (rec := await recorded()) is None:
        assert time.monotonic() < deadline, "the call's recording was not ready in time"
        await asyncio.sleep(0.05)
    rid = str(rec["id"])
    day = str(rec["started_at"])[:10]  # the call's own (wall-clock) day

    # --- the sampling rule puts it on qa1's work list, explained
    built = await s.api("POST", "/api/qa/worklist/build", token=LEAD, json={"day": day}, expect=200)
    item = next(i for i in built["items"] if i["recording_id"] == rid)
    assert item["call_id"] == call_id and item["agent_id"] == "1001"
    assert item["rule"] == "short-calls" and item["reason"].startswith("picked by rule short-calls:") and item["evaluator"] == "qa1"
    again = await s.api("POST", "/api/qa/worklist/build", token=LEAD, json={"day": day}, expect=200)
    assert again["picked"] == 0  # de-duplicated: already on the list
    work = await s.api("GET", "/api/qa/worklist?evaluator=qa1", token=QA1, expect=200)
    assert [w["recording_id"] for w in work] == [rid]

    # --- qa1 evaluates: a draft, then submitted, with a comment anchored to 1.5 s; client scores are ignored
    draft = await s.api("POST", f"/api/recordings/{rid}/evaluations", token=QA1, expect=201, json={
        "answers": {"greeting": "yes"}, "work_item_id": item["id"], "total": 100,
        "comments": [{"text": "인사 좋음 / good greeting", "at": 1.5, "question": "greeting"}],
    })
    assert draft["state"] == "draft" and draft["agent_id"] == "1001" and draft["form_hash"]
    await s.api("GET", f"/api/qa/evaluations/{draft['id']}", token=tok, expect=404)  # agents never see drafts
    await s.api("POST", f"/api/qa/evaluations/{draft['id']}/dispute", token=tok, json={"comment": "x"}, expect=404)
    await s.api("PUT", f"/api/qa/evaluations/{draft['id']}", token=QA1, json={"answers": {"greeting": "maybe"}}, expect=422)
    await s.api("PUT", f"/api/qa/evaluations/{draft['id']}", token=QA1, json={"answers": {"greeting": "yes"}, "submit": True}, expect=422)
    sub = await s.api("PUT", f"/api/qa/evaluations/{draft['id']}", token=QA1, expect=200, json={
        "answers": ANSWERS, "submit": True,
        "comments": [{"text": "인사 좋음 / good greeting", "at": 1.5, "question": "greeting"}],
    })
    # opening 2/2 = 100; handling (2+5+0)/(4+10+1) = 46.67; closing 3/3 = 100 -> 20 + 23.33 + 30 = 73.33
    assert sub["state"] == "submitted" and sub["total"] == 73.33 and sub["band"] == "good"
    assert sub["comments"] == [{"text": "인사 좋음 / good greeting", "at": 1.5, "question": "greeting"}]
    await s.api("PUT", f"/api/qa/evaluations/{draft['id']}", token=QA1, json={"answers": ANSWERS}, expect=409)  # immutable
    work = await s.api("GET", "/api/qa/worklist?evaluator=qa1", token=QA1, expect=200)
    assert work == []  # done

    # --- the agent sees it and disputes within the window; a second answer is refused
    mine = await s.api("GET", "/api/qa/evaluations", token=tok, expect=200)
    assert [e["id"] for e in mine] == [sub["id"]] and mine[0]["response_open"]
    await s.api("POST", f"/api/qa/evaluations/{sub['id']}/dispute", token=tok, json={}, expect=400)
    disputed = await s.api("POST", f"/api/qa/evaluations/{sub['id']}/dispute", token=tok, json={"comment": "후속 안내를 했습니다 (follow-up was offered)"}, expect=200)
    assert disputed["state"] == "disputed"
    await s.api("POST", f"/api/qa/evaluations/{sub['id']}/acknowledge", token=tok, json={}, expect=409)
    await s.api("POST", f"/api/qa/evaluations/{sub['id']}/resolve", token=QA1, json={"outcome": "upheld", "comment": "no"}, expect=403)
    await s.api("POST", "/api/qa/worklist/build", token=QA1, json={"day": day}, expect=403)  # building the list: leads

    # --- the lead resolves: changed, with a new revision
    resolved = await s.api("POST", f"/api/qa/evaluations/{sub['id']}/resolve", token=LEAD, expect=200, json={
        "outcome": "changed", "comment": "follow-up heard at 0:04", "answers": {**ANSWERS, "followup": "yes"},
    })
    # handling (2+5+1)/15 = 53.33 -> 20 + 26.67 + 30 = 76.67
    assert resolved["state"] == "resolved" and resolved["resolution"] == "changed" and resolved["total"] == 76.67
    assert [r["revision"] for r in resolved["revisions"]] == [1, 2]
    assert resolved["revisions"][0]["score"]["total"] == 73.33 and resolved["revisions"][1]["author"] == "lead"
    assert resolved["revisions"][1]["comments"][0]["at"] == 1.5  # comments carried over
    assert [h["action"] for h in resolved["history"]] == ["created", "submitted", "disputed", "resolved"]
    assert [h["actor"] for h in resolved["history"]] == ["qa1", "qa1", "1001", "lead"]
    seen = await s.api("GET", f"/api/qa/evaluations/{sub['id']}", token=tok, expect=200)
    assert seen["total"] == 76.67
    # the same steps are in the audit log (security package), by whom
    audit = await s.api("GET", "/api/audit?action=qa.evaluation.resolved", expect=200)
    entries = audit["entries"] if isinstance(audit, dict) else audit
    assert any(e["actor"] == "qa_lead:lead" and e["target"] == str(sub["id"]) for e in entries), entries

    # --- calibration: qa1 and qa2 score the same recording; the report shows the spread
    cal = await s.api("POST", "/api/qa/calibrations", token=LEAD, expect=201, json={
        "name": "2026-12 week 1", "form_id": "customer-service", "recording_ids": [rid], "evaluators": ["qa1", "qa2"],
    })
    for token, courtesy in ((QA1, 5), (QA2, 1)):
        await s.api("POST", f"/api/recordings/{rid}/evaluations", token=token, expect=201, json={
            "calibration_id": cal["id"], "answers": {**ANSWERS, "courtesy": courtesy}, "submit": True,
        })
    await s.api("POST", f"/api/recordings/{rid}/evaluations", token=QA2, expect=409,
                json={"calibration_id": cal["id"], "answers": ANSWERS, "submit": True})
    rep = await s.api("GET", f"/api/qa/calibrations/{cal['id']}/report", token=LEAD, expect=200)
    rec = rep["recordings"][0]
    courtesy = next(q for q in rec["questions"] if q["question"] == "courtesy")
    assert courtesy["answers"] == {"qa1": "5", "qa2": "1"} and courtesy["spread"] == 100
    assert courtesy["reference_basis"] == "median" and courtesy["deviation"] == {"qa1": 50, "qa2": 50}
    # handling: qa1 (4+5+0)/15 = 60 -> 20+30+30 = 80; qa2 (0+5+0)/15 = 33.33 -> 20+16.67+30 = 66.67
    assert rec["totals"] == {"qa1": 80.0, "qa2": 66.67} and rec["total_spread"] == 13.33
    trend = await s.api("GET", "/api/qa/calibrations/trend", token=LEAD, expect=200)
    assert set(trend) == {"qa1", "qa2"} and trend["qa1"][0]["session"] == cal["id"]
    # calibration sheets never reach the agent
    mine = await s.api("GET", "/api/qa/evaluations", token=tok, expect=200)
    assert [e["id"] for e in mine] == [sub["id"]]

    # --- reports (issue 16): the recording and the current score reach the quality report
    # (the calibration sheets do not: the agent's average is the resolved evaluation's 76.67)
    async def quality():
        await s.container.reports.flush()
        rows = (await s.api("GET", f"/api/reports/quality?by=agent&from={day}&agent=1001", expect=200))["rows"]
        return rows[0] if rows else None

    deadline = time.monotonic() + 10
    while (q := await quality()) is None or q["recorded"] < 1:
        assert time.monotonic() < deadline, f"the quality report never counted the recording: {q}"
        await asyncio.sleep(0.05)
    assert (q["handled_calls"], q["recording_required"], q["recorded"], q["recorded_pct"]) == (1, 1, 1, 100.0)
    assert (q["evaluations"], q["evaluated_calls"], q["qa_coverage_pct"], q["qa_avg_score"]) == (1, 1, 100.0, 76.67)
    agents = (await s.api("GET", f"/api/reports/agents?from={day}&agent=1001", expect=200))["rows"]
    assert agents[0]["qa_avg_score"] == 76.67 and agents[0]["recorded_pct"] == 100.0
