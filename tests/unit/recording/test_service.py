"""The recording service on the test database: a recorded call end to end through the
durable job, PCI spans, unanswered calls, retries, restart mid-job, bad audio, encryption,
retention and hold, search."""

from __future__ import annotations

import hashlib
import os
from datetime import datetime, timezone

import pytest

from recording import crypto
from recording.processing import silent_spans
from recording.repository import SearchFilters
from recording.service import Conflict, Gone, leg_files
from recording.storage import MemoryStorage
from tests.unit.recording.audio import wav
from tests.unit.recording.helpers import T0, Clock, FakeAmi, answered, end, make_call, make_service, start


async def recorded_call(svc, clock, call, *, pause=(1.0, 2.0), talk=4.0, agent="1001", audio=None):
    """Queue entry at T0, answer at T0+5, pause/resume at the given file offsets, end after ``talk``."""
    start(svc, call, T0)
    clock.now = T0 + 5
    answered(svc, call, agent, clock.now)
    if pause:
        clock.now = T0 + 5 + pause[0]
        await svc.pause(call.id, agent, "card number")
        clock.now = T0 + 5 + pause[1]
        await svc.resume(call.id, agent)
    clock.now = T0 + 5 + talk
    segments = audio or [(pause[0], False), (pause[1] - pause[0], True), (talk - pause[1], False)] if pause else [(talk, False)]
    (svc.monitor_dir / f"{call.id}.wav").write_bytes(wav(segments))
    end(svc, call, clock.now)
    await svc.idle()


async def test_recorded_call_is_processed_stored_and_playable(db_sessionmaker, tmp_path):
    clock, ami, storage = Clock(), FakeAmi(), MemoryStorage()
    svc = make_service(db_sessionmaker, tmp_path, clock=clock, ami=ami, storage=storage)
    call = make_call(queue="sales")
    await recorded_call(svc, clock, call)
    assert [a.name for a in ami.actions] == ["MixMonitorMute", "MixMonitorMute"]
    rec = await svc.repo.by_call(call.id)
    assert rec["status"] == "pending" and rec["muted"] and rec["muted_spans"][0]["start"] == 1.0
    assert rec["muted_spans"][0]["end"] == 2.0 and rec["muted_spans"][0]["by"] == "1001"
    assert rec["agents"][0]["agent_id"] == "1001" and rec["agents"][0]["from"] == 0.0 and rec["agents"][0]["to"] == 4.0
    assert rec["wait_seconds"] == 5.0 and rec["policy"]["retention_days"] == 365
    assert await svc.run_due_jobs() == 1
    rec = await svc.get(rec["id"])
    assert rec["status"] == "ready", rec["status_reason"]
    assert rec["duration"] == pytest.approx(rec["audio"]["expected_seconds"], abs=0.1)
    assert rec["storage_backend"] == "memory" and rec["format"] == "wav"
    (key, blob), = storage.objects.items()
    assert rec["sha256"] == hashlib.sha256(blob).hexdigest() and key.endswith(f"{call.id}.wav")
    assert not (svc.monitor_dir / f"{call.id}.wav").exists()  # the backend keeps it now
    peaks = await svc.repo.get_waveform(rec["id"])
    assert len(peaks[0]) == 1000
    span = rec["muted_spans"][0]
    (s0, s1), = silent_spans(blob)
    assert s0 == pytest.approx(span["start"], abs=0.02) and s1 == pytest.approx(span["end"], abs=0.02)
    r, size = await svc.open_audio(rec["id"])
    assert await svc.read_audio(r, 100, 199) == blob[100:200] and size == len(blob)
    assert await svc.run_due_jobs() == 0  # done jobs are not run again
    events = [e["kind"] for e in await svc.repo.events(call.id)]
    assert events == ["paused", "resumed"]


async def test_pause_rules_and_auto_resume(db_sessionmaker, tmp_path):
    clock = Clock()
    svc = make_service(db_sessionmaker, tmp_path, clock=clock, pause_max_seconds=0.05)
    call = make_call()
    start(svc, call, T0)
    answered(svc, call, "1001", T0)
    assert not svc.is_paused(call.id)
    await svc.pause(call.id, "1001", None)
    assert svc.is_paused(call.id) and not svc.is_paused("no-such-call")
    with pytest.raises(Conflict):
        await svc.pause(call.id, "1001", None)
    import asyncio

    deadline = asyncio.get_running_loop().time() + 3
    while svc.live[call.id].muted_at is not None:
        assert asyncio.get_running_loop().time() < deadline, "auto-resume did not happen"
        await asyncio.sleep(0.01)
    with pytest.raises(Conflict):
        await svc.resume(call.id, "1001", None)
    await svc.idle()
    assert [e["kind"] for e in await svc.repo.events(call.id)] == ["paused", "auto_resumed"]
    assert not svc.may_control(call, "1002", "agent") and svc.may_control(call, "1001", "agent")
    assert svc.may_control(call, "sup", "supervisor")


async def test_unanswered_call_leaves_no_file_and_no_audio(db_sessionmaker, tmp_path):
    svc = make_service(db_sessionmaker, tmp_path)
    call = make_call()
    start(svc, call, T0)
    (svc.monitor_dir / f"{call.id}.wav").write_bytes(wav([(3.0, False)]))  # e.g. MixMonitor without option b
    end(svc, call, T0 + 3, outcome="abandoned")
    await svc.idle()
    assert not (svc.monitor_dir / f"{call.id}.wav").exists()
    rec = await svc.repo.by_call(call.id)
    assert rec["status"] == "discarded" and "not answered" in rec["status_reason"]
    assert await svc.run_due_jobs() == 0


async def test_storage_failure_is_retried_with_backoff(db_sessionmaker, tmp_path):
    clock, storage = Clock(), MemoryStorage()
    svc = make_service(db_sessionmaker, tmp_path, clock=clock, storage=storage)
    storage.fail_puts = 1
    call = make_call()
    await recorded_call(svc, clock, call, pause=None)
    rid = (await svc.repo.by_call(call.id))["id"]
    assert await svc.run_due_jobs() == 1
    (job,) = await svc.repo.jobs(rid)
    assert job["status"] == "pending" and job["attempts"] == 1 and "injected failure" in job["last_error"]
    assert svc.jobs_backlog == 1  # the operator's backlog gauge (callcore_recording_jobs_backlog)
    assert await svc.run_due_jobs() == 0  # backoff: not due yet
    clock.now += 11
    assert await svc.run_due_jobs() == 1
    assert (await svc.get(rid))["status"] == "ready" and len(storage.objects) == 1
    assert svc.jobs_backlog == 0


async def test_gives_up_after_max_attempts(db_sessionmaker, tmp_path):
    clock, storage = Clock(), MemoryStorage()
    svc = make_service(db_sessionmaker, tmp_path, clock=clock, storage=storage, job_max_attempts=2)
    storage.fail_puts = 99
    call = make_call()
    await recorded_call(svc, clock, call, pause=None)
    for _ in range(4):
        await svc.run_due_jobs()
        clock.now += 100
    rec = await svc.repo.by_call(call.id)
    assert rec["status"] == "failed" and rec["status_reason"].startswith("gave up after 2 attempts")
    assert (await svc.repo.jobs(rec["id"]))[0]["status"] == "failed"


async def test_restart_mid_job_resumes_after_the_lease(db_sessionmaker, tmp_path):
    clock = Clock()
    first = make_service(db_sessionmaker, tmp_path, clock=clock)
    call = make_call()
    await recorded_call(first, clock, call, pause=None)
    claimed = await first.repo.claim_due(datetime.fromtimestamp(clock.now, tz=timezone.utc), lease=300)
    assert len(claimed) == 1  # ...and this callcore dies before finishing the job
    storage = MemoryStorage()
    second = make_service(db_sessionmaker, tmp_path, clock=clock, storage=storage)  # the restarted process
    assert await second.run_due_jobs() == 0  # leased to the dead process for now
    clock.now += 301
    assert await second.run_due_jobs() == 1
    rec = await second.repo.by_call(call.id)
    assert rec["status"] == "ready" and len(storage.objects) == 1
    assert (await second.repo.jobs(rec["id"]))[0]["attempts"] == 2


@pytest.mark.parametrize("content, reason", [(b"", "empty"), (b"RIFF....WAVEjunkjunkjunk" * 4, "corrupt")])
async def test_bad_audio_gets_status_and_reason_and_never_loops(db_sessionmaker, tmp_path, content, reason):
    clock = Clock()
    svc = make_service(db_sessionmaker, tmp_path, clock=clock)
    call = make_call()
    await recorded_call(svc, clock, call, pause=None)
    (svc.monitor_dir / f"{call.id}.wav").write_bytes(content)
    assert await svc.run_due_jobs() == 1
    rec = await svc.repo.by_call(call.id)
    assert rec["status"] == "failed" and rec["status_reason"].startswith(reason)
    clock.now += 10_000
    assert await svc.run_due_jobs() == 0


async def test_missing_file_is_looked_for_again_then_failed(db_sessionmaker, tmp_path):
    clock = Clock()
    svc = make_service(db_sessionmaker, tmp_path, clock=clock)
    call = make_call()
    await recorded_call(svc, clock, call, pause=None)
    (svc.monitor_dir / f"{call.id}.wav").unlink()
    for _ in range(5):
        await svc.run_due_jobs()
        clock.now += 1000
    rec = await svc.repo.by_call(call.id)
    assert rec["status"] == "failed" and rec["status_reason"].startswith("missing:")
    assert (await svc.repo.jobs(rec["id"]))[0]["attempts"] == 3


async def test_encryption_round_trip_and_crypto_erase(db_sessionmaker, tmp_path):
    clock, storage = Clock(), MemoryStorage()
    ring = crypto.Keyring({"k1": os.urandom(32)}, "k1")
    svc = make_service(db_sessionmaker, tmp_path, clock=clock, storage=storage, keyring=ring, encrypt=True)
    call = make_call()
    plain = wav([(1.0, False), (1.0, True), (2.0, False)])
    await recorded_call(svc, clock, call)
    assert await svc.run_due_jobs() == 1
    rec = await svc.repo.by_call(call.id)
    assert rec["encrypted"] and rec["size"] == len(plain)
    (blob,) = storage.objects.values()
    assert plain[44:2044] not in blob and blob.startswith(b"CCR1")
    r, size = await svc.open_audio(rec["id"])
    assert await svc.read_audio(r, 0, size - 1) == plain
    assert await svc.read_audio(r, 70000, 70099) == plain[70000:70100]  # across a chunk boundary
    # rotation: a new active key rewraps the data key; audio still plays with only the new key
    ring2 = crypto.Keyring({**ring.keys, "k2": os.urandom(32)}, "k2")
    svc.keyring = ring2
    assert await svc.rotate_keys() == 1
    svc.keyring = crypto.Keyring({"k2": ring2.keys["k2"]}, "k2")
    assert await svc.read_audio(r, 0, 43) == plain[:44]
    assert await svc.crypto_erase(rec["id"], "admin", "test")
    with pytest.raises(Gone, match="crypto-erase"):
        await svc.read_audio(r, 0, 10)


class FakeAudit:
    def __init__(self) -> None:
        self.entries: list[tuple] = []

    async def record(self, actor, action, target=None, details=None):
        self.entries.append((actor, action, target, details))


async def test_retention_purge_respects_legal_hold(db_sessionmaker, tmp_path):
    clock, storage, audit = Clock(), MemoryStorage(), FakeAudit()
    svc = make_service(db_sessionmaker, tmp_path, clock=clock, storage=storage, audit=audit)
    a, b = make_call("1795395000.1"), make_call("1795395000.2")
    for call in (a, b):
        clock.now = T0
        await recorded_call(svc, clock, call, pause=None)
    assert await svc.run_due_jobs() == 2
    ra, rb = (await svc.repo.by_call(a.id)), (await svc.repo.by_call(b.id))
    await svc.set_hold(rb["id"], True, "qa-lead", "dispute #7")
    assert await svc.purge_once() == []  # retention (30 days) not over yet
    clock.now = T0 + 31 * 86400
    assert await svc.purge_once() == [ra["id"]]
    ra, rb = (await svc.get(ra["id"])), (await svc.get(rb["id"]))
    assert ra["status"] == "purged" and ra["removed_by"] == "retention" and ra["caller_num"] == "01055551234"
    assert rb["status"] == "ready" and rb["legal_hold"] and len(storage.objects) == 1
    with pytest.raises(Gone):
        await svc.open_audio(ra["id"])
    with pytest.raises(Conflict, match="legal hold"):
        await svc.remove_audio(rb["id"], "admin", "data-subject request")
    await svc.set_hold(rb["id"], False, "qa-lead", None)
    deleted = await svc.remove_audio(rb["id"], "admin", "data-subject request #12")
    assert deleted["status"] == "deleted" and deleted["removed_reason"] == "data-subject request #12"
    assert storage.objects == {}
    await svc.idle()
    assert [e["kind"] for e in await svc.repo.events(b.id)] == ["hold", "unhold", "deleted"]
    deletes = [e for e in audit.entries if e[1] == "recording.deleted"]
    assert deletes == [("admin", "recording.deleted", b.id, {"reason": "data-subject request #12", "recording_id": rb["id"]})]
    assert ("retention", "recording.purged", a.id, {"reason": "retention period over", "recording_id": ra["id"]}) in audit.entries


async def test_search_filters_sorting_and_keyset_pagination(db_sessionmaker, tmp_path):
    clock = Clock()
    svc = make_service(db_sessionmaker, tmp_path, clock=clock)
    for i in range(5):
        call = make_call(f"1795395000.{i + 1}", queue="sales" if i % 2 else "support", caller=f"0105555{i:04d}")
        call.started_at = T0 + i * 60
        call.ivr_context = {"path": ["main:welcome", "main:menu", f"main:q{i % 2}"], "version": f"v{i % 2}"}
        clock.now = call.started_at
        await recorded_call(svc, clock, call, pause=(1.0, 2.0) if i == 3 else None, talk=3.0 + i,
                            agent="1001" if i < 3 else "1002")
    while await svc.run_due_jobs():
        pass
    items, cursor = await svc.search(SearchFilters(), limit=2)
    assert [r["call_id"] for r in items] == ["1795395000.5", "1795395000.4"] and cursor
    items2, cursor2 = await svc.search(SearchFilters(), limit=2, cursor=cursor)
    items3, cursor3 = await svc.search(SearchFilters(), limit=2, cursor=cursor2)
    assert [r["call_id"] for r in items2 + items3] == ["1795395000.3", "1795395000.2", "1795395000.1"] and cursor3 is None
    f = SearchFilters(queue="sales", agent="1002", muted=True, min_duration=5.5)
    assert [r["call_id"] for r in (await svc.search(f))[0]] == ["1795395000.4"]
    assert [r["call_id"] for r in (await svc.search(SearchFilters(caller="01055550002")))[0]] == ["1795395000.3"]
    by_len, _ = await svc.search(SearchFilters(max_duration=4.5), sort="duration", order="asc")
    assert [r["call_id"] for r in by_len] == ["1795395000.1", "1795395000.2"]
    late = datetime.fromtimestamp(T0 + 120, tz=timezone.utc)
    assert len((await svc.search(SearchFilters(start=late, status="ready")))[0]) == 3
    assert (await svc.search(SearchFilters(only_agent="1001", queue="sales")))[0][0]["call_id"] == "1795395000.2"
    ivr = (await svc.search(SearchFilters(ivr_node="main:q1", flow_version="v1")))[0]
    assert [r["call_id"] for r in ivr] == ["1795395000.4", "1795395000.2"] and ivr[0]["ivr_path"][-1] == "main:q1"
    assert (await svc.search(SearchFilters(ivr_node="main:q")))[0] == []  # whole node names only
    qa = (await svc.search(SearchFilters(qa_sample=True)))[0]
    assert [r["call_id"] for r in qa] == ["1795395000.4", "1795395000.2"] and all(r["qa_sample"] for r in qa)
    tagged = await svc.set_tags(ivr[1]["id"], ["Complaint", "vip", "vip"], "sup")
    assert tagged["tags"] == ["complaint", "vip"]
    assert [r["id"] for r in (await svc.search(SearchFilters(tags=["vip", "complaint"])))[0]] == [tagged["id"]]
    assert (await svc.search(SearchFilters(tags=["vi"])))[0] == []


async def test_ivr_hand_off_carries_the_policy_decision(db_sessionmaker, tmp_path):
    from ivr.repository import SqlIvrRepository
    from tests.unit.ivr.test_service import ROOT, channel, service_for

    rec = make_service(db_sessionmaker, tmp_path)
    rec.policy = __import__("recording.checker", fromlist=["parse_policy"]).parse_policy(
        "rules:\n  - name: billing-never\n    match: {queue: [billing]}\n    action: never\n", "p.yaml").policy
    ivr = service_for(ROOT / "dialplans", SqlIvrRepository(db_sessionmaker))
    ivr.recording = rec
    ch = channel(["", "1", "2"], flow="main", lang="ko")
    outcome = await ivr.run(ch)
    assert outcome.queue == "billing" and ch.variables["CALLCORE_RECORD"] == "0"
    assert (ch.variables["CALLCORE_REC_START"], ch.variables["CALLCORE_REC_STEREO"]) == ("agent", "0")


async def test_policy_no_at_queue_entry_stops_mixmonitor_over_ami(db_sessionmaker, tmp_path):
    """Without the IVR (a transfer into a queue), the dialplan starts MixMonitor; callcore stops it."""
    ami = FakeAmi()
    svc = make_service(db_sessionmaker, tmp_path, ami=ami)
    svc.policy = __import__("recording.checker", fromlist=["parse_policy"]).parse_policy(
        "rules:\n  - name: hr\n    match: {queue: [hr]}\n    action: never\n", "p.yaml").policy
    call = make_call(queue="hr")
    start(svc, call, T0)
    await svc.idle()
    assert [(a.name, dict(a.headers)["Channel"]) for a in ami.actions] == [("StopMixMonitor", call.caller_leg.channel)]
    answered(svc, call, "1001", T0 + 2)
    (svc.monitor_dir / f"{call.id}.wav").write_bytes(wav([(1.0, False)]))
    end(svc, call, T0 + 4)
    await svc.idle()
    rec = await svc.repo.by_call(call.id)
    assert rec["status"] == "discarded" and "never" in rec["status_reason"]
    assert not (svc.monitor_dir / f"{call.id}.wav").exists()


async def test_restart_mid_call_recovers_the_recording(db_sessionmaker, tmp_path):
    """callcore stops while a call is recorded; the call ends while it is down."""
    clock = Clock()
    first = make_service(db_sessionmaker, tmp_path, clock=clock)
    gone, still_live = make_call("1795395000.1"), make_call("1795395000.2")
    for call in (gone, still_live):
        start(first, call, T0)
        answered(first, call, "1001", T0 + 1)
    await first.idle()  # the rows exist (status recording) — then this process dies
    (first.monitor_dir / f"{gone.id}.wav").write_bytes(wav([(2.0, False)]))
    clock.now = T0 + 120
    second = make_service(db_sessionmaker, tmp_path, clock=clock)
    second.call_lookup = {still_live.id: still_live}.get  # the CTI resync knows this one is still up
    assert await second.recover_orphans() == 1
    assert await second.run_due_jobs() == 1
    rec = await second.repo.by_call(gone.id)
    assert rec["status"] == "ready" and rec["duration"] == 2.0 and "restarted" in rec["status_reason"]
    assert (await second.repo.by_call(still_live.id))["status"] == "recording"
    # the live one ends later in the new process: its row is finished from the CTI call
    (second.monitor_dir / f"{still_live.id}.wav").write_bytes(wav([(3.0, False)]))
    end(second, still_live, T0 + 130)
    await second.idle()
    assert await second.run_due_jobs() == 1
    assert (await second.repo.by_call(still_live.id))["status"] == "ready"


async def test_late_start_is_flagged(db_sessionmaker, tmp_path):
    clock = Clock()
    svc = make_service(db_sessionmaker, tmp_path, clock=clock)
    call = make_call()
    answered(svc, call, "1001", T0 + 1)  # the agent has the call before any MixMonitor
    start(svc, call, T0 + 4)
    clock.now = T0 + 6
    (svc.monitor_dir / f"{call.id}.wav").write_bytes(wav([(2.0, False)]))
    end(svc, call, clock.now)
    await svc.idle()
    rec = await svc.repo.by_call(call.id)
    assert rec["late_start"] and rec["late_start_seconds"] == 3.0


def test_start_up_refuses_a_bad_configuration(tmp_path):
    from callcore.settings import Settings
    from recording.service import build_recording_service

    bad = tmp_path / "p.yaml"
    bad.write_text("rules:\n  - name: x\n    action: sometimes\n")
    with pytest.raises(ValueError, match=r"p.yaml:3:13: rule 'x': action must be one of"):
        build_recording_service(Settings(data_dir=tmp_path, recording_policies_file=bad), sessionmaker=None, ami=None)
    with pytest.raises(ValueError, match="recording_encrypt needs"):
        build_recording_service(Settings(data_dir=tmp_path, recording_encrypt=True), sessionmaker=None, ami=None)
    with pytest.raises(ValueError, match="32 bytes"):
        build_recording_service(Settings(data_dir=tmp_path, recording_master_keys={"k": "c2hvcnQ="}), sessionmaker=None, ami=None)


def test_callcore_recording_check_command(tmp_path, capsys):
    from callcore.cli import main

    bad = tmp_path / "p.yaml"
    bad.write_text("defaults: {channels: quad}\n")
    assert main(["recording", "check", str(bad)]) == 1
    assert f"{bad}:1:22: defaults: channels must be one of mono, stereo, not 'quad'" in capsys.readouterr().out
    assert main(["recording", "check"]) == 0


async def test_database_failure_mid_job_is_retried(db_sessionmaker, tmp_path):
    from sqlalchemy.exc import OperationalError

    clock = Clock()
    svc = make_service(db_sessionmaker, tmp_path, clock=clock)
    call = make_call()
    await recorded_call(svc, clock, call, pause=None)
    real, calls = svc.repo.put_waveform, []

    async def flaky(*a, **kw):
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("UPDATE", {}, Exception("database is locked"))
        return await real(*a, **kw)

    svc.repo.put_waveform = flaky
    assert await svc.run_due_jobs() == 1
    rec = await svc.repo.by_call(call.id)
    assert rec["status"] == "pending" and "database is locked" in (await svc.repo.jobs(rec["id"]))[0]["last_error"]
    clock.now += 11
    assert await svc.run_due_jobs() == 1
    assert (await svc.repo.by_call(call.id))["status"] == "ready"


@pytest.mark.parametrize("works", [True, False])
async def test_conversion_to_mp3_or_the_original_kept(db_sessionmaker, tmp_path, monkeypatch, works):
    import recording.service as service_mod

    if not works:
        def broken(*a, **kw):
            raise RuntimeError("ffmpeg: Unknown encoder")

        monkeypatch.setattr(service_mod, "convert_to_file", broken)  # ffmpeg on the source file (issue 18)
    clock, storage = Clock(), MemoryStorage()
    svc = make_service(db_sessionmaker, tmp_path, clock=clock, storage=storage, convert_to="mp3")
    await recorded_call(svc, clock, make_call(), pause=None)
    assert await svc.run_due_jobs() == 1
    rec = await svc.repo.by_call("1795395000.1")
    (key, blob), = storage.objects.items()
    assert rec["status"] == "ready" and rec["duration"] == 4.0
    if works:
        assert rec["format"] == "mp3" and key.endswith(".mp3") and blob[:4] != b"RIFF"
    else:
        assert rec["format"] == "wav" and blob[:4] == b"RIFF" and "kept WAV" in rec["status_reason"]


def _hold(svc, call, on: bool, now: float) -> None:
    call.set_on_hold(on, now)
    svc.call_changed("call.held" if on else "call.unheld", call, call.agent_id, now)


async def test_holds_are_kept_on_the_file_timeline_for_the_qa_player(db_sessionmaker, tmp_path):
    """CTI's holds (call.held / call.unheld) land on the recording as ``hold_spans``: where in
    the file (option b: the file does not grow on hold, so start == end) and how long the
    caller waited; a hold still open at the hangup is closed by it."""
    clock = Clock()
    svc = make_service(db_sessionmaker, tmp_path, clock=clock)
    call = make_call()
    start(svc, call, T0)
    answered(svc, call, "1001", T0 + 5)
    _hold(svc, call, True, T0 + 7)  # 2 s into the file
    _hold(svc, call, False, T0 + 19)  # 12 s on hold: the file did not grow
    _hold(svc, call, True, T0 + 22)  # 5 s into the file; hung up on hold 3 s later
    (svc.monitor_dir / f"{call.id}.wav").write_bytes(wav([(5.0, False)]))
    end(svc, call, T0 + 25)
    await svc.idle()
    rec = await svc.repo.by_call(call.id)
    assert rec["hold_spans"] == [
        {"start": 2.0, "end": 2.0, "seconds": 12.0, "at": T0 + 7},
        {"start": 5.0, "end": 5.0, "seconds": 3.0, "at": T0 + 22},
    ]
    assert rec["audio"]["expected_seconds"] == 5.0  # 2 s before the first hold, 3 s between them
    assert rec["agents"][0]["to"] == 5.0


async def test_holds_span_the_file_when_it_records_from_queue_entry(db_sessionmaker, tmp_path):
    """Without option b (policy start: queue_entry) the file runs on hold: the hold is a span."""
    from recording.checker import parse_policy

    clock = Clock()
    svc = make_service(db_sessionmaker, tmp_path, clock=clock)
    svc.policy = parse_policy("defaults: {action: record, start: queue_entry}\n", "p.yaml").policy
    call = make_call()
    start(svc, call, T0)
    answered(svc, call, "1001", T0 + 5)
    _hold(svc, call, True, T0 + 8)
    _hold(svc, call, False, T0 + 10)
    (svc.monitor_dir / f"{call.id}.wav").write_bytes(wav([(12.0, False)]))
    end(svc, call, T0 + 12)
    await svc.idle()
    rec = await svc.repo.by_call(call.id)
    assert rec["hold_spans"] == [{"start": 8.0, "end": 10.0, "seconds": 2.0, "at": T0 + 8}]


@pytest.mark.parametrize("legs", [False, True])
async def test_processing_streams_the_output_and_leaves_no_temporary_file(db_sessionmaker, tmp_path, monkeypatch, legs):
    """Issue 18: the converted file (and the stereo file built from the legs) goes to storage
    through ``put_stream`` — sealed, hashed and uploaded a piece at a time — and every temporary
    file of the job is removed, as is the spool."""
    import tempfile

    work = tmp_path / "tmp"
    work.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(work))
    clock, storage = Clock(), MemoryStorage()
    ring = crypto.Keyring({"k1": os.urandom(32)}, "k1")
    svc = make_service(db_sessionmaker, tmp_path, clock=clock, storage=storage, keyring=ring, encrypt=True,
                       convert_to="mp3")
    call = make_call()
    if legs:  # MixMonitor's r()/t() files: caller 4 s of tone, agent 3 s then silence
        caller, agent = leg_files(svc.monitor_dir, call.id)
        caller.write_bytes(wav([(4.0, False)]))
        agent.write_bytes(wav([(3.0, False), (1.0, True)]))
    await recorded_call(svc, clock, call, pause=None)
    assert await svc.run_due_jobs() == 1
    rec = await svc.repo.by_call(call.id)
    assert rec["status"] == "ready" and rec["format"] == "mp3" and rec["encrypted"], rec["status_reason"]
    assert rec["audio"]["channels"] == (2 if legs else 1)
    (key, blob), = storage.objects.items()
    assert storage.streamed == 1 and key.endswith(".mp3") and rec["sha256"] == hashlib.sha256(blob).hexdigest()
    r, size = await svc.open_audio(rec["id"])
    mp3 = await svc.read_audio(r, 0, size - 1)
    assert size == len(mp3) and len(blob) == crypto.sealed_length(size)
    assert mp3[:3] == b"ID3" or mp3[0] == 0xFF
    assert list(work.iterdir()) == [] and list(svc.monitor_dir.iterdir()) == []


async def test_stream_audio_reads_bounded_pieces(db_sessionmaker, tmp_path):
    """Playback never reads the whole file: each storage read is at most a piece (plus, when
    encrypted, the chunks' tags), and the pieces join to the bytes asked for."""
    clock, storage = Clock(), MemoryStorage()
    ring = crypto.Keyring({"k1": os.urandom(32)}, "k1")
    for encrypt in (False, True):
        storage.objects.clear()
        svc = make_service(db_sessionmaker, tmp_path, clock=clock, storage=storage, keyring=ring, encrypt=encrypt)
        svc.audio_piece = 2 * crypto.CHUNK
        call = make_call(f"1795395000.{2 + encrypt}")
        await recorded_call(svc, clock, call, pause=None, talk=9.0)  # 144 kB: several pieces
        assert await svc.run_due_jobs() == 1
        plain = wav([(9.0, False)])
        r, size = await svc.open_audio((await svc.repo.by_call(call.id))["id"])
        reads = []
        real = storage.read

        async def counted(key, start=0, length=None, real=real):
            reads.append(length)
            return await real(key, start, length)

        storage.read = counted
        try:
            for start, end in [(0, size - 1), (1000, 140000), (size - 5, size - 1)]:
                reads.clear()
                pieces = [p async for p in svc.stream_audio(r, start, end)]
                assert b"".join(pieces) == plain[start:end + 1]
                assert max(len(p) for p in pieces) <= svc.audio_piece
                assert max(reads) <= svc.audio_piece + 2 * crypto.TAG
        finally:
            storage.read = real
