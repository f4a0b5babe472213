"""Recording from call entry (policy ``start: call``) with the IVR's sensitive collect muted,
end to end through the shipped setup: ``recording/recording-policies.yaml`` (rule
``payment-line-from-call-start``, matched on the *called* number — the DID, which the CTI alone
gets wrong for the emulator's Local-channel calls) and ``dialplans/main.yaml`` (billing → 4 →
``card_payment``, ``sensitive: true``).

The IVR asks Asterisk to start MixMonitor when the call arrives (AGI ``EXEC MixMonitor
<call id>.wav``, no option ``b``); the collect mutes it (``MixMonitorMute``) while the caller
types and unmutes after. The emulator's WAV (tone where audio runs, digital silence while muted)
must show exactly one silent stretch, where the metadata says the muted span is.
Runs at time scale 1 like tests/e2e/test_recording.py (the spans are on callcore's clock).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from recording.processing import analyse_bytes, silent_spans
from tests.e2e.conftest import expect_prompt, press_when_listening
from tests.e2e.test_call_control import agent_on_desk
from tests.e2e.test_recording import CALLER, audio_of, ready_recording

pytestmark = pytest.mark.slow
PAYMENT_DID = "15887000"  # the shipped policy's payment line
MAIN_DID = "15881234"


@pytest.fixture
def pbx_overrides(request) -> dict[str, Any]:
    # manager.conf timestampevents = yes (asterisk-config/manager.conf): spans on Asterisk's clock
    scale = getattr(request, "param", 1.0)
    return {"time_scale": scale, "default_prompt_seconds": 0.2, "timestampevents": True}


@pytest.fixture
def server_overrides(tmp_path) -> dict[str, Any]:
    return {"recordings_dir": tmp_path / "monitor", "recording_job_poll_seconds": 0.2}


async def test_card_number_typed_in_the_ivr_is_silence_in_a_recording_started_at_call_entry(server):
    s, pbx = server, server.pbx
    tok, desk, phone = await agent_on_desk(s, "1001", "김상담", ["billing"])
    call = await pbx.dial(CALLER, name="박고객", exten=PAYMENT_DID, context="ivr-in")
    started = await pbx.wait_for_event("MixMonitorStart", timeout=5)
    call_id = started["Linkedid"]
    assert not pbx.events_named("QueueCallerJoin")  # started by the IVR, before any queue
    assert any(c.startswith('EXEC "MixMonitor" "' + call_id + '.wav"') for c in call.agi_commands), call.agi_commands
    await expect_prompt(call, "main_menu", timeout=10)
    await press_when_listening(call, "1")
    await expect_prompt(call, "billing_menu")
    await press_when_listening(call, "4")
    await expect_prompt(call, "enter_card_number")
    await pbx.wait_for_event("MixMonitorMute", State="1")
    await asyncio.sleep(0.8)  # the caller looks for the card
    await press_when_listening(call, "4111111111111111#")
    await pbx.wait_for_event("MixMonitorMute", State="0")
    await phone.wait_ringing()
    await phone.answer()
    await desk.wait_for("call.answered", call_id=call_id)
    await asyncio.sleep(1.0)
    await call.hangup()

    rec = await ready_recording(s, call_id)
    assert rec["called"] == PAYMENT_DID  # the DID, not the caller's number (the CTI's Local-channel "dialed")
    assert rec["policy"]["start"] == "call" and "payment-line-from-call-start" in rec["policy"]["rules"]
    assert not rec["late_start"] and rec["queue"] == "billing"
    (span,) = rec["muted_spans"]
    assert span["by"] == "ivr" and span["reason"] == "sensitive input (main:card_payment)", span
    assert span["end"] - span["start"] >= 0.8
    assert rec["audio"]["clock"] == {"muted_spans": "asterisk", "agents": "asterisk"}
    (agent,) = rec["agents"]
    assert agent["agent_id"] == "1001" and agent["from"] > span["end"]  # the IVR came first, in the same file

    code, wav, _ = await audio_of(s, rec["id"])
    assert code == 200
    a = analyse_bytes(wav)
    assert a.duration == pytest.approx(rec["audio"]["expected_seconds"], abs=0.15)
    assert a.duration > span["end"] + 0.9  # IVR + queue + talk, all in it
    (silent,) = silent_spans(wav)  # one silent stretch: the card number; audio before and after
    assert silent[0] == pytest.approx(span["start"], abs=0.15) and silent[1] == pytest.approx(span["end"], abs=0.15)
    assert silent[0] > 0.5 and a.duration - silent[1] > 0.9
    events = await s.api("GET", f"/api/recordings/{rec['id']}/events", expect=200)
    kinds = [(e["kind"], e["actor"]) for e in events["events"]]
    assert ("started", "ivr") in kinds and ("paused", "ivr") in kinds and ("resumed", "ivr") in kinds, kinds


async def test_main_line_is_not_recorded_in_the_ivr(server):
    """The main DID has no ``start: call`` rule: nothing records the IVR, the collect has nothing to
    mute, and MixMonitor starts only at queue entry (option ``b``)."""
    s, pbx = server, server.pbx
    await agent_on_desk(s, "1001", "김상담", ["billing"])
    call = await pbx.dial(CALLER, name="박고객", exten=MAIN_DID, context="ivr-in")
    await expect_prompt(call, "main_menu", timeout=10)
    await press_when_listening(call, "1")
    await expect_prompt(call, "billing_menu")
    await press_when_listening(call, "4")
    await expect_prompt(call, "enter_card_number")
    await press_when_listening(call, "4111111111111111#")
    await call.wait_for_queue("billing")
    (start,) = pbx.events_named("MixMonitorStart")
    join = pbx.events_named("QueueCallerJoin")[0]
    assert pbx.events.index(start) < pbx.events.index(join) and not pbx.events_named("MixMonitorMute")
    assert not any(c.startswith('EXEC "MixMonitor"') for c in call.agi_commands)
    await call.hangup()


# ------------------------------------------------------------------ outbound: click-to-call and callbacks
OUTBOUND_POLICY = """\
defaults: {action: dont_record, retention_days: 30}
rules:
  - name: click-to-call-recorded
    match: {direction: [click-to-call]}
    action: record
    retention_days: 200
  - name: callbacks-recorded
    match: {direction: [callback]}
    action: record
  - name: no-callbacks-to-the-board
    match: {direction: [callback], called: ["0107777*"]}
    action: never
"""
CUSTOMER = "01055551234"  # = CALLER: ready_recording() searches by it


def _originates(pbx):
    return [a for a in pbx.ami.actions_seen if a.get("Action", "").lower() == "originate"] if hasattr(pbx.ami, "actions_seen") else None


@pytest.fixture
def outbound_policy(server, tmp_path):
    from recording.checker import parse_policy

    server.container.recording.policy = parse_policy(OUTBOUND_POLICY, "outbound.yaml").policy
    return server


async def _talk_and_hang_up(s, pbx, phone, desk, origin: str, number: str) -> str:
    await phone.wait_ringing()
    await phone.answer()
    dial = await pbx.wait_for_event("DialBegin", DialString=f"{number}@trunk")
    await pbx.wait_for_event("BridgeEnter", Channel=dial["DestChannel"])
    ended_before = {m["payload"].get("call_id") for m in desk.named("call.ended")}
    pop = None
    while pop is None:
        pop = next((m["payload"] for m in desk.messages if m["event"].startswith("call.")
                    and m["payload"].get("origin") == origin), None)
        await asyncio.sleep(0.02)
    call_id = pop["call_id"]
    await asyncio.sleep(1.0)  # talk
    await phone.hangup()
    if call_id not in ended_before:
        await desk.wait_for("call.ended", call_id=call_id)
    return call_id


async def test_click_to_call_and_callback_are_recorded_per_policy(outbound_policy):
    s, pbx = outbound_policy, outbound_policy.pbx
    tok, desk, phone = await agent_on_desk(s, "1001", "김상담", ["billing"])
    await s.api("POST", "/api/calls/click-to-call", token=tok, json={"number": CUSTOMER}, expect=202)
    call_id = await _talk_and_hang_up(s, pbx, phone, desk, "click-to-call", CUSTOMER)
    start = next(e for e in pbx.events_named("MixMonitorStart") if e["Linkedid"] == call_id)
    assert start["Channel"].startswith("Local/1001@agents") and start["Uniqueid"] == call_id  # [outbound], agent side
    rec = await ready_recording(s, call_id)
    assert rec["direction"] == "click-to-call" and rec["called"] == CUSTOMER
    assert rec["policy"]["rules"] == ["click-to-call-recorded"] and rec["policy"]["retention_days"] == 200
    (agent,) = rec["agents"]
    assert agent["agent_id"] == "1001" and agent["from"] == pytest.approx(0.0, abs=0.2)
    assert agent["to"] == pytest.approx(rec["duration"], abs=0.2)
    assert rec["duration"] == pytest.approx(1.0, abs=0.3) and not rec["muted"]
    code, wav, _ = await audio_of(s, rec["id"])
    assert code == 200 and analyse_bytes(wav).duration == pytest.approx(rec["audio"]["expected_seconds"], abs=0.1)
    assert silent_spans(wav) == []

    # a callback: recorded by its own rule
    cb = await s.api("POST", "/api/callbacks", json={"number": CUSTOMER, "queue": "billing", "caller_num": CUSTOMER}, expect=201)
    await s.api("POST", f"/api/callbacks/{cb['id']}/take", token=tok, expect=200)
    await s.api("POST", f"/api/callbacks/{cb['id']}/dial", token=tok, expect=202)
    cb_call = await _talk_and_hang_up(s, pbx, phone, desk, "callback", CUSTOMER)
    rec2 = await ready_recording(s, cb_call)
    assert rec2["direction"] == "callback" and rec2["policy"]["rules"] == ["callbacks-recorded"]
    assert [a["agent_id"] for a in rec2["agents"]] == ["1001"]

    # a callback the policy says never to record: the Originate says so, Asterisk starts nothing
    board = "01077771234"
    cb3 = await s.api("POST", "/api/callbacks", json={"number": board, "queue": "billing", "caller_num": board}, expect=201)
    await s.api("POST", f"/api/callbacks/{cb3['id']}/take", token=tok, expect=200)
    await s.api("POST", f"/api/callbacks/{cb3['id']}/dial", token=tok, expect=202)
    starts = len(pbx.events_named("MixMonitorStart"))
    await phone.wait_ringing()
    await phone.answer()
    dial = await pbx.wait_for_event("DialBegin", DialString=f"{board}@trunk")
    await pbx.wait_for_event("BridgeEnter", Channel=dial["DestChannel"])
    await asyncio.sleep(0.3)
    await phone.hangup()
    await pbx.wait_for_event("Hangup", Channel=dial["DestChannel"])
    assert len(pbx.events_named("MixMonitorStart")) == starts
    never = [e for e in pbx.events_named("VarSet") if e.get("Variable") == "CALLCORE_RECORD" and e.get("Value") == "0"]
    assert never, "the Originate carried CALLCORE_RECORD=0"


@pytest.mark.parametrize("pbx_overrides", [0.25], indirect=True)  # Asterisk's clock runs 4x callcore's
async def test_spans_are_on_asterisks_clock_when_events_carry_timestamps(server):
    """With ``timestampevents`` the muted and agent spans come from the events' ``Timestamp``
    (the emulator's virtual clock, which also writes the WAV): they match the audio even though
    callcore's own clock runs at a quarter of the PBX's speed here."""
    from tests.e2e.test_call_control import answered_queue_call

    s, pbx = server, server.pbx
    tok, desk, phone = await agent_on_desk(s, "1001", "김상담", ["support"])
    call, call_id = await answered_queue_call(s, "support", phone, desk, caller=CALLER)
    start = await pbx.wait_for_event("MixMonitorStart", Uniqueid=call_id)
    assert "Timestamp" in dict(start.headers)
    await pbx.sleep(2.0)  # virtual seconds: 0.5 s here
    await s.api("POST", f"/api/calls/{call_id}/recording/pause", token=tok, json={"reason": "card"}, expect=200)
    await pbx.wait_for_event("MixMonitorMute", State="1")
    await pbx.sleep(2.0)
    await s.api("POST", f"/api/calls/{call_id}/recording/resume", token=tok, expect=200)
    await pbx.wait_for_event("MixMonitorMute", State="0")
    await pbx.sleep(2.0)
    await call.hangup()
    rec = await ready_recording(s, call_id)
    assert rec["audio"]["clock"] == {"muted_spans": "asterisk", "agents": "asterisk"}
    (span,) = rec["muted_spans"]
    assert 2.0 <= span["end"] - span["start"] < 2.8  # virtual seconds, as in the file (+ the resume's round trip)
    assert span["callcore"]["end"] - span["callcore"]["start"] < 1.0  # what callcore's clock alone says
    code, wav, _ = await audio_of(s, rec["id"])
    a = analyse_bytes(wav)
    assert a.duration == pytest.approx(rec["audio"]["expected_seconds"], abs=0.1)
    (silent,) = silent_spans(wav)
    assert silent[0] == pytest.approx(span["start"], abs=0.1) and silent[1] == pytest.approx(span["end"], abs=0.1)
    (agent,) = rec["agents"]
    assert agent["from"] == pytest.approx(0.0, abs=0.1) and agent["to"] == pytest.approx(a.duration, abs=0.3)
