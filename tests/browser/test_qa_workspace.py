"""The QA workspace in a real browser (issue 15), with a call recorded through the PBX emulator.

The call is recorded (policy), PCI-paused for a second, held, transferred to a second agent and
post-processed. A QA user signs in, finds the recording with the search filters, plays it and
seeks (the browser's Range requests answered 206), sees the muted span, the hold and the transfer
drawn on the waveform where the API puts them, pins a comment to a time, scores the form —
the live score is the server's (equal to POST /api/qa/forms/{id}/score), a conditional question
appears only when the server says so — and submits. The agent signs in, sees the evaluation
with its score, band and comment, and acknowledges it (the state checked over the API); a
second evaluation of the call the agent disputes, and a QA lead resolves it on the page with
corrected answers (a new revision, re-scored by the server).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import NARROW, sign_in
from tests.browser.test_desk_and_wallboard import tab_to, wait_text
from tests.e2e.conftest import ROOT
from tests.e2e.test_call_control import agent_on_desk, answered_queue_call

CALLER = "01077778888"
FORM = "customer-service"
# handling: courtesy 3 → 2/4, resolution partial 5/10, followup no 0/1 (shown: partial), hold N/A
# → 7/15 = 46.67; opening 2/2, closing 3/3 → 20 + 23.33 + 30 = 73.33 (good)
ANSWERS = {"greeting": "yes", "identity": "yes", "courtesy": "3", "resolution": "partial", "followup": "no",
           "hold_etiquette": "na", "summary": "yes", "farewell": "5"}


@pytest.fixture
def pbx_overrides() -> dict[str, Any]:
    return {"time_scale": 1.0}  # spans are measured on callcore's clock, the WAV on the emulator's


@pytest.fixture
def server_overrides(tmp_path: Path) -> dict[str, Any]:
    forms = tmp_path / "qa-forms"
    forms.mkdir()
    (forms / f"{FORM}.yaml").write_bytes((ROOT / "qa-forms" / f"{FORM}.yaml").read_bytes())
    (forms / "sampling.yaml").write_text(
        "period: week\nseed: browser\nform: customer-service\nevaluators:\n  - {id: qa1, daily_cap: 5}\n"
        "rules:\n  - {id: pci-flagged, kind: flagged, flags: [pci]}\n", encoding="utf-8")
    return {"recordings_dir": tmp_path / "monitor", "recording_job_poll_seconds": 0.2,
            "qa_forms_dir": forms, "qa_forms_watch": False, "default_wrapup_seconds": 1}


async def recorded_call(s) -> dict[str, Any]:
    """A queued call: talk, PCI pause 1 s, hold, transfer to 1002, hang up → the ready recording."""
    pbx = s.pbx
    tok_a, desk_a, phone_a = await agent_on_desk(s, "1001", "김상담", ["sales"])
    await agent_on_desk(s, "1002", "이상담", ["billing"])
    phone_b = pbx.agent("1002", manual=True)
    call, call_id = await answered_queue_call(s, "sales", phone_a, desk_a, caller=CALLER, name="홍길동")
    await pbx.wait_for_event("MixMonitorStart", Uniqueid=call_id)
    await asyncio.sleep(1.0)
    await s.api("POST", f"/api/calls/{call_id}/recording/pause", token=tok_a, json={"reason": "card number"}, expect=200)
    await asyncio.sleep(1.0)  # the card number: digital silence in the file
    await s.api("POST", f"/api/calls/{call_id}/recording/resume", token=tok_a, expect=200)
    await asyncio.sleep(0.5)
    await s.api("POST", f"/api/calls/{call_id}/hold", token=tok_a, expect=202)
    await desk_a.wait_for("call.updated", call_id=call_id, on_hold=True)
    await asyncio.sleep(0.6)
    await s.api("POST", f"/api/calls/{call_id}/unhold", token=tok_a, expect=202)
    await desk_a.wait_for("call.updated", call_id=call_id, on_hold=False)
    await asyncio.sleep(0.5)
    await s.api("POST", f"/api/calls/{call_id}/transfer", token=tok_a, json={"type": "agent", "target": "1002"}, expect=202)
    dial = await pbx.wait_for_event("DialBegin", DialString="1002")
    await phone_b.answer()
    await pbx.wait_for_event("BridgeEnter", Channel=dial["DestChannel"])
    await asyncio.sleep(1.0)
    await call.hangup()
    deadline = time.monotonic() + 20
    while True:
        items = (await s.api("GET", f"/api/recordings?caller={CALLER}&status=ready", expect=200))["items"]
        rec = next((r for r in items if r["call_id"] == call_id), None)
        if rec is not None:
            return rec
        assert time.monotonic() < deadline, "the recording was not ready in time"
        await asyncio.sleep(0.05)


async def data(page, selector: str, attr: str) -> list[float]:
    return await page.eval_on_selector_all(selector, f"els => els.map(e => Number(e.dataset.{attr}))")


async def test_qa_user_scores_a_recorded_call_and_the_agent_acknowledges(server, open_tab):
    s = server
    rec = await recorded_call(s)
    rid = rec["id"]
    assert len(rec["muted_spans"]) == 1 and len(rec["hold_spans"]) == 1 and len(rec["agents"]) == 2
    await s.api("POST", "/api/users", expect=201, json={"id": "qa1", "name": "품질 평가자", "password": "qa1-long-password", "role": "qa"})
    qa_token = (await s.api("POST", "/api/auth/token", json={"username": "qa1", "password": "qa1-long-password"}, expect=200))["token"]
    lead = s.container.authenticator.issue("user:lead", "qa_lead")
    built = await s.api("POST", "/api/qa/worklist/build", token=lead, json={"day": str(rec["started_at"])[:10]}, expect=200)
    assert [i["recording_id"] for i in built["items"]] == [str(rid)]  # picked by the pci rule

    tab = await open_tab("qa1")
    page = tab.page
    audio_responses: list[tuple[int, str | None, str | None]] = []
    page.on("response", lambda r: audio_responses.append((r.status, r.request.headers.get("range"), r.headers.get("content-range")))
            if f"/api/recordings/{rid}/audio" in r.url else None)
    await sign_in(tab, "qa1", "qa1-long-password")
    # the QA user's home is the workspace, on the work list, with the reason of the pick
    await page.wait_for_selector(f"#qa-wl-table tr[data-recording='{rid}']")
    assert "pci-flagged" in await page.inner_text("#qa-wl-table")
    await tab.shot("qa-worklist")

    # --- find the recording with the recording filters (caller, muted, agent, direction)
    await page.click("#qa-tab-search")
    await page.wait_for_selector("#qa-search")
    await page.fill("#qf-caller", CALLER)
    await page.select_option("#qf-muted", "true")
    await page.fill("#qf-agent", "1002")
    await page.select_option("#qf-direction", "inbound")
    await page.click("#qa-search-go")
    await page.wait_for_function("() => document.querySelectorAll('#qa-rec-table tbody tr').length === 1")
    assert await page.get_attribute("#qa-rec-table tbody tr", "data-recording") == str(rid)
    await page.select_option("#qf-muted", "false")  # the filter really reaches the API
    await page.click("#qa-search-go")
    await page.wait_for_selector("#qa-no-results")
    await page.select_option("#qf-muted", "true")
    await page.click("#qa-search-go")
    await page.wait_for_selector(f"#qa-rec-table tr[data-recording='{rid}']")
    await tab.shot("qa-search")
    await page.click(f"#qa-rec-table tr[data-recording='{rid}'] button")

    # --- the evaluation screen: waveform of the stored peaks, markers where the API puts them
    await page.wait_for_selector("#qa-wave path.peaks")
    await page.wait_for_selector("#qa-score-total")
    wave = await s.api("GET", f"/api/recordings/{rid}/waveform", token=qa_token, expect=200)
    assert await page.get_attribute("#qa-wave path.peaks", "data-points") == str(wave["points"])
    span = rec["muted_spans"][0]
    assert await data(page, "#qa-wave rect.muted-span", "start") == [span["start"]]
    assert await data(page, "#qa-wave rect.muted-span", "end") == [span["end"]]
    width = await page.eval_on_selector("#qa-wave rect.muted-span", "r => Number(r.getAttribute('width'))")
    assert width == pytest.approx(1000 * (span["end"] - span["start"]) / wave["duration"], abs=0.5)  # drawn at scale
    assert await data(page, "#qa-wave .hold", "start") == [rec["hold_spans"][0]["start"]]
    assert await data(page, "#qa-wave .transfer", "at") == [rec["agents"][1]["from"]]
    assert await page.get_attribute("#qa-wave .transfer", "data-to") == "1002"

    # --- play, then seek by clicking the waveform and with the keyboard; speed 0.5–2×
    await page.click("#qa-play")
    await page.wait_for_function("() => document.querySelector('#qa-audio').currentTime > 0.2", timeout=10_000)
    box = await page.locator("#qa-wave").bounding_box()
    await page.mouse.click(box["x"] + box["width"] * 0.75, box["y"] + box["height"] * 0.3)
    at = await page.evaluate("() => document.querySelector('#qa-audio').currentTime")
    assert at == pytest.approx(0.75 * wave["duration"], abs=0.4)
    await page.click("#qa-play")  # pause
    await page.focus("#qa-wave")
    await page.keyboard.press("Home")
    assert await page.evaluate("() => document.querySelector('#qa-audio').currentTime") == 0
    await page.keyboard.press("ArrowRight")
    assert await page.evaluate("() => document.querySelector('#qa-audio').currentTime") == pytest.approx(min(5, wave["duration"]), abs=0.01)
    assert await page.get_attribute("#qa-wave", "aria-valuenow") == str(round(min(5, wave["duration"])))
    for speed in ("0.5", "2"):
        await page.select_option("#qa-speed", speed)
        assert await page.evaluate("() => document.querySelector('#qa-audio').playbackRate") == float(speed)
    # the browser fetched the audio with Range requests, answered 206 with Content-Range
    await asyncio.sleep(0.2)
    ranged = [r for r in audio_responses if r[0] == 206]
    assert ranged and all(r[1] and r[1].startswith("bytes=") and r[2] and r[2].startswith("bytes ") for r in ranged), audio_responses
    assert all(code in (200, 206) for code, _, _ in audio_responses), audio_responses

    # --- a comment pinned to the current time, tied to a question; its pin seeks
    await page.mouse.click(box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.3)
    now = await page.evaluate("() => document.querySelector('#qa-audio').currentTime")
    await page.fill("#qa-comment-text", "보류 전 양해 구함 / asked before the hold")
    await page.select_option("#qa-comment-question", "hold_etiquette")
    await page.click("#qa-add-comment")
    await page.wait_for_selector("#qa-comments li[data-at]")
    pinned = float(await page.get_attribute("#qa-comments li[data-at]", "data-at"))
    assert pinned == pytest.approx(now, abs=0.051) and pinned == pytest.approx(0.4 * wave["duration"], abs=0.4)
    await page.evaluate("() => { document.querySelector('#qa-audio').currentTime = 0; }")
    await page.click("#qa-wave .pin circle")
    assert await page.evaluate("() => document.querySelector('#qa-audio').currentTime") == pytest.approx(pinned, abs=0.01)
    await page.evaluate("() => { document.querySelector('#qa-audio').currentTime = 0; }")
    await page.click("#qa-comments li[data-at] button.seek")
    assert await page.evaluate("() => document.querySelector('#qa-audio').currentTime") == pytest.approx(pinned, abs=0.01)

    # --- the form: the conditional question appears when the server says so; the live score is the server's
    assert await page.is_hidden("#qa-q-followup")
    for qid, answer in ANSWERS.items():
        if qid == "followup":
            await page.wait_for_selector("#qa-q-followup", state="visible")  # resolution is partial now
        await page.check(f"#qa-q-{qid} input[value='{answer}']")
    expect = await s.api("POST", f"/api/qa/forms/{FORM}/score", token=qa_token, json={"answers": ANSWERS}, expect=200)
    assert expect["total"] == 73.33 and expect["band"] == "good"
    await page.wait_for_function("(v) => document.querySelector('#qa-score-total').dataset.value === v", arg=str(expect["total"]))
    assert await page.get_attribute("#qa-score-band", "data-band") == "good"
    sections = await page.eval_on_selector_all("#qa-score li", "ls => ls.map(l => [l.dataset.section, Number(l.dataset.value)])")
    assert dict(sections) == {x["id"]: x["score"] for x in expect["sections"]}
    # choosing "resolved" hides the follow-up question again (server's visibility), and the score moves
    await page.check("#qa-q-resolution input[value='resolved']")
    await page.wait_for_selector("#qa-q-followup", state="hidden")
    other = await s.api("POST", f"/api/qa/forms/{FORM}/score", token=qa_token, json={"answers": {**ANSWERS, "resolution": "resolved"}}, expect=200)
    await page.wait_for_function("(v) => document.querySelector('#qa-score-total').dataset.value === v", arg=str(other["total"]))
    await page.check("#qa-q-resolution input[value='partial']")
    await page.wait_for_selector("#qa-q-followup", state="visible")
    await page.wait_for_function("(v) => document.querySelector('#qa-score-total').dataset.value === v", arg=str(expect["total"]))
    await tab.shot("qa-evaluation")

    # the submit button is reachable with the keyboard
    await tab_to(tab, "#qa-save", max_tabs=80)
    await page.keyboard.press("Enter")  # save the draft
    await wait_text(tab, "#qa-ev-status", "임시 저장")
    (draft,) = await s.api("GET", f"/api/recordings/{rid}/evaluations", token=qa_token, expect=200)
    assert draft["state"] == "draft" and draft["evaluator"] == "qa1"
    await page.click("#qa-submit")
    await wait_text(tab, "#qa-ev-status", "제출됨")
    ev = await s.api("GET", f"/api/qa/evaluations/{draft['id']}", token=qa_token, expect=200)
    assert ev["state"] == "submitted" and ev["total"] == expect["total"] and ev["band"] == "good" and ev["agent_id"] == "1001"
    assert ev["answers"] == ANSWERS
    assert ev["comments"] == [{"text": "보류 전 양해 구함 / asked before the hold", "at": pinned, "question": "hold_etiquette"}]
    assert await page.is_disabled("#qa-q-greeting input[value='yes']")  # submitted: read-only on the page too
    assert await page.get_attribute("#qa-score-total", "data-value") == str(ev["total"])
    await tab.shot("qa-submitted")

    # --- the agent signs in, sees the evaluation (score, band, comment) and acknowledges it
    agent = await open_tab("agent-1001")
    ap = agent.page
    await sign_in(agent, "1001", "4321")
    await ap.click("nav a[href='#/qa']")
    await ap.wait_for_selector(f"#qa-mine-table tr[data-evaluation='{ev['id']}']")
    await ap.click(f"#qa-mine-table tr[data-evaluation='{ev['id']}'] button")
    await ap.wait_for_selector("#qa-mine-ev")
    assert await ap.get_attribute("#qa-mine-score-total", "data-value") == str(ev["total"])
    assert await ap.get_attribute("#qa-mine-score-band", "data-band") == "good"
    assert "asked before the hold" in await ap.inner_text("#qa-mine-comments")
    await ap.wait_for_selector("#qa-mine-ev #qa-wave rect.muted-span")  # the agent hears their own call too
    await agent.shot("qa-agent-evaluation")
    await ap.fill("#qa-response-comment", "확인했습니다")
    await ap.click("#qa-acknowledge")
    await ap.wait_for_selector("#qa-mine-ev[data-state='acknowledged']")
    done = await s.api("GET", f"/api/qa/evaluations/{ev['id']}", token=qa_token, expect=200)
    assert done["state"] == "acknowledged" and done["acknowledged_at"]
    assert [h["action"] for h in done["history"]] == ["created", "submitted", "acknowledged"]
    assert await ap.query_selector("#qa-acknowledge") is None  # answered once: no more buttons

    # English, and the narrow layout keeps the screen usable
    await ap.select_option("#lang", "en")
    await ap.wait_for_selector("#qa-mine-table")
    assert "My evaluations" in await ap.inner_text("#qa-tabs")
    await ap.set_viewport_size(NARROW)
    await ap.click(f"#qa-mine-table tr[data-evaluation='{ev['id']}'] button")
    await wait_text(agent, "#qa-mine-ev", "Acknowledged")
    await agent.shot("qa-agent-evaluation-en")

    # --- a second evaluation: the agent disputes it, the QA lead resolves it with a change
    second = await s.api("POST", f"/api/recordings/{rid}/evaluations", token=qa_token, expect=201,
                         json={"form_id": FORM, "answers": ANSWERS, "submit": True})
    await ap.click("#qa-tab-mine")
    await ap.click(f"#qa-mine-table tr[data-evaluation='{second['id']}'] button")
    await ap.wait_for_selector(f"#qa-mine-ev[data-evaluation='{second['id']}'] #qa-dispute")
    await ap.fill("#qa-response-comment", "후속 안내를 했습니다 (follow-up was offered)")
    await ap.click("#qa-dispute")
    await ap.wait_for_selector(f"#qa-mine-ev[data-evaluation='{second['id']}'][data-state='disputed']")
    assert (await s.api("GET", f"/api/qa/evaluations/{second['id']}", token=qa_token, expect=200))["state"] == "disputed"

    await s.api("POST", "/api/users", expect=201, json={"id": "lead1", "name": "QA 리더", "password": "lead1-long-password", "role": "qa_lead"})
    lt = await open_tab("lead1")
    lp = lt.page
    await sign_in(lt, "lead1", "lead1-long-password")
    await lp.click("#qa-tab-evaluations")
    await lp.select_option("#qa-ev-state", "disputed")
    await lp.wait_for_function("() => document.querySelectorAll('#qa-ev-table tbody tr').length === 1")
    await lp.click(f"#qa-ev-table tr[data-evaluation='{second['id']}'] button")
    await wait_text(lt, "#qa-dispute-comment", "follow-up was offered")
    await lp.check("#qa-q-followup input[value='yes']")
    changed = await s.api("POST", f"/api/qa/forms/{FORM}/score", token=qa_token, json={"answers": {**ANSWERS, "followup": "yes"}}, expect=200)
    await lp.wait_for_function("(v) => document.querySelector('#qa-score-total').dataset.value === v", arg=str(changed["total"]))
    await lp.select_option("#qa-resolve-outcome", "changed")
    await lp.fill("#qa-resolve-comment", "follow-up heard at 0:04")
    await lt.shot("qa-lead-resolve")
    await lp.click("#qa-resolve")
    await wait_text(lt, "#qa-ev-status", "처리 완료")
    resolved = await s.api("GET", f"/api/qa/evaluations/{second['id']}", token=qa_token, expect=200)
    assert resolved["state"] == "resolved" and resolved["resolution"] == "changed" and resolved["total"] == changed["total"] == 76.67
    assert [r["revision"] for r in resolved["revisions"]] == [1, 2] and resolved["revisions"][1]["author"] == "lead1"
    assert resolved["answers"] == {**ANSWERS, "followup": "yes"}
