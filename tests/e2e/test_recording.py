"""Recording end to end: the whole server, the PBX emulator writing real WAV audio (its
MixMonitor writes a tone while bridged and digital silence while MixMonitorMute is on).

A queued call is recorded per policy, paused for a span through the API, transferred to a
second agent, ends; the durable job post-processes it; it is stored (filesystem here, S3 +
encryption on a real SeaweedFS in the second test), found by search, played with a Range
request, and purged after retention unless on hold. Runs on SQLite and PostgreSQL.

The emulator runs at time scale 1 in this module with ``timestampevents`` on (as shipped):
muted and agent spans are computed from the events' ``Timestamp`` — the clock the emulator
writes the WAV on (tests/e2e/test_recording_ivr.py also runs at another time scale).
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
import uuid
from typing import Any

import pytest
from pydantic import SecretStr

from recording.storage import NotFound
from recording.processing import analyse_bytes, silent_spans
from tests.e2e.conftest import Stack
from tests.e2e.test_call_control import agent_on_desk, answered_queue_call
from tests.s3 import s3_fixture

pytestmark = pytest.mark.slow
s3_server = s3_fixture()
CALLER = "01055551234"


@pytest.fixture
def pbx_overrides() -> dict[str, Any]:
    # timestampevents as in asterisk-config/manager.conf: the spans are on Asterisk's clock, which
    # also writes the WAV, so a loaded machine delaying callcore's view of the events does not skew them
    return {"time_scale": 1.0, "timestampevents": True}


@pytest.fixture
def server_overrides(tmp_path, request) -> dict[str, Any]:
    extra = {}
    if "s3_server" in request.fixturenames:
        s3 = request.getfixturevalue("s3_server")
        from callcore.settings import RecordingS3Settings

        extra = {
            "recording_storage": "s3",
            "recording_s3": RecordingS3Settings(endpoint=s3.endpoint, bucket=f"e2e-{uuid.uuid4().hex[:8]}",
                                                access_key=s3.access_key, secret_key=SecretStr(s3.secret_key), secure=False),
            "recording_encrypt": True,
            "recording_master_keys": {"2026-12": SecretStr(base64.b64encode(os.urandom(32)).decode())},
            "recording_master_key_id": "2026-12",
        }
    return {"recordings_dir": tmp_path / "monitor", "recording_job_poll_seconds": 0.2, **extra}


async def ready_recording(s: Stack, call_id: str, timeout: float = 15.0, caller: str = CALLER) -> dict[str, Any]:
    async def find():
        rows = (await s.api("GET", f"/api/recordings?caller={caller}&status=ready", expect=200))["items"]
        return next((r for r in rows if r["call_id"] == call_id), None)

    deadline = time.monotonic() + timeout
    while True:
        rec = await find()
        if rec is not None:
            return rec
        if time.monotonic() > deadline:
            raise AssertionError(f"recording of {call_id} not ready: {await s.api('GET', f'/api/recordings?caller={caller}')}")
        await asyncio.sleep(0.05)


async def audio_of(s: Stack, rid: int, token: str | None = None, **headers: str) -> tuple[int, bytes, Any]:
    r = await s.http.get(f"/api/recordings/{rid}/audio", headers={"Authorization": f"Bearer {token or 'e2e-admin-token'}", **headers})
    return r.status_code, r.content, r.headers


async def test_queued_call_recorded_paused_transferred_processed_found_played_purged(server):
    s, pbx = server, server.pbx
    tok_a, desk_a, phone_a = await agent_on_desk(s, "1001", "김상담", ["sales"])
    tok_b, desk_b, phone_b = await agent_on_desk(s, "1002", "이상담", ["billing"])
    call, call_id = await answered_queue_call(s, "sales", phone_a, desk_a, caller=CALLER)
    await pbx.wait_for_event("MixMonitorStart", Uniqueid=call_id)

    await asyncio.sleep(1.0)  # talk
    r = await s.http.post(f"/api/calls/{call_id}/recording/pause", json={"reason": "card number"},
                          headers={"Authorization": f"Bearer {tok_b}"})
    assert r.status_code == 403, r.text  # not on the call (yet)
    paused = await s.api("POST", f"/api/calls/{call_id}/recording/pause", token=tok_a, json={"reason": "card number"}, expect=200)
    assert paused["paused"]
    await pbx.wait_for_event("MixMonitorMute", State="1")
    await asyncio.sleep(1.0)  # the caller reads the card number: silence in the file
    await s.api("POST", f"/api/calls/{call_id}/recording/resume", token=tok_a, expect=200)
    await asyncio.sleep(0.5)

    await s.api("POST", f"/api/calls/{call_id}/transfer", token=tok_a, json={"type": "agent", "target": "1002"}, expect=202)
    dial = await pbx.wait_for_event("DialBegin", DialString="1002")
    await desk_b.wait_for("call.transferred", call_id=call_id)
    await phone_b.answer()
    await pbx.wait_for_event("BridgeEnter", Channel=dial["DestChannel"])
    await asyncio.sleep(1.0)
    await call.hangup()

    rec = await ready_recording(s, call_id)
    # wrap-up: the agent's disposition comes after the recording row; search finds it all the same
    await s.api("POST", f"/api/calls/{call_id}/disposition", json={"disposition": "resolved"}, expect=200)
    found = await s.api("GET", "/api/recordings?disposition=resolved", expect=200)
    assert [x["id"] for x in found["items"]] == [rec["id"]] and found["items"][0]["disposition"] == "resolved"
    # metadata
    assert rec["queue"] == "sales" and rec["direction"] == "inbound" and rec["caller_num"] == CALLER
    assert [a["agent_id"] for a in rec["agents"]] == ["1001", "1002"], rec
    assert rec["agents"][0]["to"] == pytest.approx(rec["agents"][1]["from"], abs=0.3)
    assert rec["muted"] and len(rec["muted_spans"]) == 1 and rec["muted_spans"][0]["by"] == "1001"
    span = rec["muted_spans"][0]
    # the test slept 1 s between pause and resume; Asterisk's mute also spans the resume's round trip
    assert 0.95 <= span["end"] - span["start"] < 2.0 and rec["audio"]["clock"]["muted_spans"] == "asterisk"
    assert rec["storage_backend"] == "fs" and not rec["encrypted"] and len(rec["sha256"]) == 64
    assert rec["policy"]["rules"] == ["sales-kept-one-year"] and rec["qa_sample"]
    assert not list((s.container.settings.effective_recordings_dir).glob("*.wav"))  # moved into the store

    # the audio: duration matches what callcore measured; the muted span is digital silence, the rest is not
    code, wav, headers = await audio_of(s, rec["id"])
    assert code == 200 and wav[:4] == b"RIFF"
    a = analyse_bytes(wav)
    assert rec["duration"] == pytest.approx(a.duration, abs=0.01)
    assert a.duration == pytest.approx(rec["audio"]["expected_seconds"], abs=0.1)
    (silent,) = silent_spans(wav)  # exactly one silent stretch: the pause
    assert silent[0] == pytest.approx(span["start"], abs=0.1) and silent[1] == pytest.approx(span["end"], abs=0.1)
    assert a.per_channel[0]["talk_ratio"] > 0.5
    wave = await s.api("GET", f"/api/recordings/{rec['id']}/waveform", token=tok_b, expect=200)
    assert wave["points"] == 1000

    # search with several filters
    def ids(body):
        return [x["id"] for x in body["items"]]

    q = f"/api/recordings?agent=1002&queue=sales&muted=true&min_duration=2&caller={CALLER}&direction=inbound"
    assert ids(await s.api("GET", q, expect=200)) == [rec["id"]]
    assert ids(await s.api("GET", "/api/recordings?agent=1003", expect=200)) == []
    assert ids(await s.api("GET", "/api/recordings?muted=false", expect=200)) == []
    assert ids(await s.api("GET", "/api/recordings", token=tok_b, expect=200)) == [rec["id"]]  # 1002 was on it

    # Range playback
    code, part, headers = await audio_of(s, rec["id"], tok_a, Range="bytes=100-1099")
    assert code == 206 and part == wav[100:1100] and headers["content-range"] == f"bytes 100-1099/{len(wav)}"
    log = await s.api("GET", f"/api/recordings/access-log?recording_id={rec['id']}", expect=200)
    assert {(e["actor"], e["action"]) for e in log["entries"]} >= {("1001", "play"), ("1002", "waveform")}

    metrics = (await s.http.get("/metrics")).text
    assert "callcore_recording_jobs_done_total 1.0" in metrics and "callcore_recordings_live 0.0" in metrics

    # retention: on hold nothing is purged; released, the audio goes and the row stays
    svc = s.container.recording
    await s.api("PUT", f"/api/recordings/{rec['id']}/hold", json={"reason": "complaint #5"}, expect=200)
    real_clock = svc.clock
    svc.clock = lambda: real_clock() + 400 * 86400
    assert await svc.purge_once() == []
    await s.api("DELETE", f"/api/recordings/{rec['id']}/hold", expect=200)
    assert await svc.purge_once() == [rec["id"]]
    svc.clock = real_clock
    after = await s.api("GET", f"/api/recordings/{rec['id']}", expect=200)
    assert after["status"] == "purged" and after["removed_by"] == "retention" and after["caller_num"] == CALLER
    assert (await audio_of(s, rec["id"]))[0] == 410
    await svc.idle()  # pause/resume/hold/purge are in the audit log of the security package
    audited = [e["action"] for e in await s.container.audit.query(target=call_id)]
    assert {"recording.paused", "recording.resumed", "recording.hold", "recording.unhold", "recording.purged"} <= set(audited)
    assert not list(s.container.settings.effective_recording_store_dir.rglob("*.wav"))


async def test_unanswered_call_leaves_no_recording(server):
    s, pbx = server, server.pbx
    await agent_on_desk(s, "1001", "김상담", ["sales"])  # logged in, never answers
    call = await pbx.dial(CALLER, name="박고객", exten="sales", context="queue-direct")
    await call.wait_for_queue("sales")
    await pbx.wait_for_event("MixMonitorStart", Uniqueid=call.uniqueid)
    await call.hangup()
    deadline = time.monotonic() + 5
    while (row := await s.container.recording.repo.by_call(call.uniqueid) or {}).get("status") != "discarded":
        assert time.monotonic() < deadline, row
        await asyncio.sleep(0.05)
    assert "not answered" in row["status_reason"] and row["size"] is None
    assert not list(s.container.settings.effective_recordings_dir.glob("*.wav"))


async def test_recording_on_seaweedfs_s3_with_encryption(s3_server, server):
    s, pbx = server, server.pbx
    tok_a, desk_a, phone_a = await agent_on_desk(s, "1001", "김상담", ["support"])
    call, call_id = await answered_queue_call(s, "support", phone_a, desk_a, caller=CALLER)
    await asyncio.sleep(1.5)
    await call.hangup()
    rec = await ready_recording(s, call_id)
    assert rec["storage_backend"] == "s3" and rec["encrypted"] and rec["policy"]["retention_days"] == 90
    storage = s.container.recording.storage
    key = (await s.container.recording.repo.get_row_fields(rec["id"], "storage_key"))["storage_key"]
    stored = await storage.read(key)
    assert stored[:4] == b"CCR1" and b"RIFF" not in stored  # encrypted at rest
    code, wav, _ = await audio_of(s, rec["id"])
    assert code == 200 and wav[:4] == b"RIFF" and len(wav) == rec["size"]
    assert analyse_bytes(wav).duration == pytest.approx(rec["audio"]["expected_seconds"], abs=0.1)
    code, part, headers = await audio_of(s, rec["id"], tok_a, Range="bytes=10000-11000")
    assert code == 206 and part == wav[10000:11001]
    # crypto-erase: without the wrapped key the audio cannot be recovered
    assert await s.container.recording.crypto_erase(rec["id"], "admin", "data-subject request")
    code, body, _ = await audio_of(s, rec["id"])
    assert code == 410 and b"crypto-erase" in body

    # a second call on S3: found by search, then purged after its retention (the object is gone
    # from the bucket, the row stays), held first so the hold is proven on this backend too
    call2, call_id2 = await answered_queue_call(s, "support", phone_a, desk_a, caller="01077770000")
    await asyncio.sleep(1.0)
    await call2.hangup()
    rec2 = await ready_recording(s, call_id2, caller="01077770000")
    assert rec2["storage_backend"] == "s3"
    found = await s.api("GET", "/api/recordings?caller=01077770000&queue=support&direction=inbound", expect=200)
    assert [x["id"] for x in found["items"]] == [rec2["id"]]
    key2 = (await s.container.recording.repo.get_row_fields(rec2["id"], "storage_key"))["storage_key"]
    assert await storage.size(key2) > 0
    svc = s.container.recording
    await s.api("PUT", f"/api/recordings/{rec2['id']}/hold", json={"reason": "dispute"}, expect=200)
    real_clock = svc.clock
    svc.clock = lambda: real_clock() + 400 * 86400
    try:
        assert rec2["id"] not in await svc.purge_once()  # (the crypto-erased first one's row goes its way)
        assert await storage.size(key2) > 0  # on hold: untouched in the bucket
        await s.api("DELETE", f"/api/recordings/{rec2['id']}/hold", expect=200)
        assert rec2["id"] in await svc.purge_once()
    finally:
        svc.clock = real_clock
    with pytest.raises(NotFound):
        await storage.size(key2)
    after = await s.api("GET", f"/api/recordings/{rec2['id']}", expect=200)
    assert after["status"] == "purged" and after["caller_num"] == "01077770000"


STEREO_POLICY = """\
defaults: {action: record, retention_days: 30}
rules:
  - name: support-stereo-from-queue-entry
    match: {queue: [support]}
    start: queue_entry
    channels: stereo
  - name: billing-never
    match: {queue: [billing]}
    action: never
"""


@pytest.fixture
def stereo_policy(tmp_path):
    path = tmp_path / "recording-policies.yaml"
    path.write_text(STEREO_POLICY)
    return path


async def test_policy_stereo_from_queue_entry_and_never(stereo_policy, server):
    s, pbx = server, server.pbx
    svc = s.container.recording
    svc.policy = __import__("recording.checker", fromlist=["load_policy"]).load_policy(stereo_policy)
    tok, desk, phone = await agent_on_desk(s, "1001", "김상담", ["support"])
    tok2, desk2, phone2 = await agent_on_desk(s, "1002", "이상담", ["billing"])
    # what the IVR sets at the hand-off (ivr.service._hand_off), here given to a direct queue entry
    variables = dict(svc.hand_off_variables("support", "0212345678", time.time()))
    assert variables == {"CALLCORE_RECORD": "1", "CALLCORE_REC_START": "queue", "CALLCORE_REC_STEREO": "1"}
    call = await pbx.dial(CALLER, name="박고객", exten="support", context="queue-direct", variables=variables)
    await call.wait_for_queue("support")
    await phone.wait_ringing()
    await asyncio.sleep(0.5)  # waiting in the queue is recorded too (no option b)
    await phone.answer()
    await asyncio.sleep(1.0)
    await call.hangup()
    rec = await ready_recording(s, call.uniqueid)
    assert rec["policy"]["channels"] == "stereo" and rec["policy"]["start"] == "queue_entry"
    code, wav, _ = await audio_of(s, rec["id"])
    a = analyse_bytes(wav)
    assert a.channels == 2 and a.duration == pytest.approx(rec["audio"]["expected_seconds"], abs=0.1)
    assert a.duration > 1.4  # queue wait + talk
    assert not list(s.container.settings.effective_recordings_dir.glob("*.wav"))  # legs and mix cleaned up

    never = dict(svc.hand_off_variables("billing", "0212345678", time.time()))
    assert never["CALLCORE_RECORD"] == "0"
    call2 = await pbx.dial("01099998888", name="정고객", exten="billing", context="queue-direct", variables=never)
    await call2.wait_for_queue("billing")
    await phone2.wait_ringing()
    await phone2.answer()
    await asyncio.sleep(0.3)
    await call2.hangup()
    await pbx.wait_for_event("Hangup", Uniqueid=call2.uniqueid)
    assert all(e.get("Uniqueid") != call2.uniqueid for e in pbx.events_named("MixMonitorStart"))
    assert await svc.repo.by_call(call2.uniqueid) is None
