"""QaService on the database: form versions keep scores, response windows, revisions, roles."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from auth.tokens import Principal
from qa.registry import FormRegistry
from qa.repository import QaRepository, RecordingRef
from qa.service import Conflict, Forbidden, NotFound, QaError, QaService

ROOT = Path(__file__).resolve().parents[3]
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
ANSWERS = {"greeting": "yes", "identity": "yes", "courtesy": 5, "resolution": "resolved",
           "hold_etiquette": "na", "summary": "yes", "farewell": 5}


class Recordings:
    async def recording(self, recording_id: str):
        return RecordingRef(recording_id, "1001", recording_id, 120.0, "sales") if recording_id.startswith("rec") else None

    async def candidates(self, start, end):
        return []


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def qa(tmp_path: Path, db_sessionmaker):
    forms = tmp_path / "qa-forms"
    forms.mkdir()
    (forms / "cs.yaml").write_bytes((ROOT / "qa-forms" / "customer-service.yaml").read_bytes())
    repo = QaRepository(db_sessionmaker)
    clock = Clock()
    service = QaService(FormRegistry(forms, repo), repo, Recordings(), respond_days=14, leads=["lead"], clock=clock)
    await service.start()
    service.test_clock = clock  # type: ignore[attr-defined]
    service.test_forms = forms  # type: ignore[attr-defined]
    yield service
    await service.stop()


async def test_evaluation_keeps_its_form_version_and_score(qa):
    qa1 = qa.actor(Principal("user:qa1", "qa"))
    ev = await qa.create(qa1, "rec-1", form_id=None, answers=ANSWERS, submit=True)
    assert ev["total"] == 100 and ev["band"] == "excellent"
    old_hash = ev["form_hash"]
    # the form changes on disk: resolution 'resolved' is now worth less than its maximum
    path = qa.test_forms / "cs.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("{id: resolved, points: 10", "{id: resolved, points: 8")
                    .replace("{id: partial, points: 5", "{id: perfect, points: 10}\n          - {id: partial, points: 5"), encoding="utf-8")
    result = await qa.registry.reload("test")
    assert result.ok and result.changed["customer-service"] != old_hash
    new = await qa.create(qa1, "rec-2", form_id="customer-service", answers=ANSWERS, submit=True)
    assert new["form_hash"] != old_hash and new["total"] < 100
    # the first evaluation still reads 100 and is revised on its own version
    assert (await qa.get(qa1, ev["id"]))["total"] == 100
    rev = await qa.revise(qa1, ev["id"], answers={**ANSWERS, "summary": "no"}, comments=None, reason="missed the summary")
    assert rev["form_hash"] == old_hash and rev["revision"] == 2
    assert rev["total"] == round(20 + 50 + 30 * 2 / 3, 2)  # closing 2/3; resolution still 10/10 on the old version
    # a version only in the database (a fresh registry) is re-read from its stored source
    fresh = FormRegistry(qa.test_forms, qa.repo)
    await fresh.reload("fresh")
    assert (await fresh.version("customer-service", old_hash)).question("resolution").option("resolved").points == 10


async def test_broken_reload_keeps_serving_the_previous_forms(qa):
    before = dict(qa.registry.current.versions)
    (qa.test_forms / "cs.yaml").write_text("id: x\nsections: [\n", encoding="utf-8")
    result = await qa.registry.reload("bad edit")
    assert not result.ok and result.errors[0].startswith(str(qa.test_forms / "cs.yaml") + ":")
    assert qa.registry.current.versions == before


async def test_response_window_and_single_answer(qa):
    qa1 = qa.actor(Principal("user:qa1", "qa"))
    agent, other = qa.actor(Principal("1001", "agent")), qa.actor(Principal("1002", "agent"))
    ev = await qa.create(qa1, "rec-1", form_id=None, answers=ANSWERS, submit=True)
    assert ev["respond_by"] == (T0 + timedelta(days=14)).isoformat()
    with pytest.raises(NotFound):
        await qa.acknowledge(other, ev["id"])  # not their evaluation: it does not exist for them
    qa.test_clock.now = T0 + timedelta(days=14, seconds=1)
    with pytest.raises(Conflict, match="window closed"):
        await qa.dispute(agent, ev["id"], "too late")
    qa.test_clock.now = T0 + timedelta(days=13)
    acked = await qa.acknowledge(agent, ev["id"], "thanks")
    assert acked["state"] == "acknowledged"
    with pytest.raises(Conflict):
        await qa.dispute(agent, ev["id"], "changed my mind")


async def test_roles_and_bad_input(qa):
    qa1, qa2, agent, lead = (qa.actor(Principal("user:qa1", "qa")), qa.actor(Principal("user:qa2", "qa")),
                             qa.actor(Principal("1001", "agent")), qa.actor(Principal("user:lead", "qa_lead")))
    with pytest.raises(Forbidden):
        await qa.create(agent, "rec-1", form_id=None, answers=ANSWERS)
    with pytest.raises(NotFound):
        await qa.create(qa1, "nope", form_id=None, answers=ANSWERS)
    with pytest.raises(QaError, match="after the end of the recording"):
        await qa.create(qa1, "rec-1", form_id=None, answers={}, comments=[{"text": "x", "at": 500}])
    with pytest.raises(QaError, match="no question 'nope'"):
        await qa.create(qa1, "rec-1", form_id=None, answers={}, comments=[{"text": "x", "at": 5, "question": "nope"}])
    draft = await qa.create(qa1, "rec-1", form_id=None, answers={"greeting": "no"})
    with pytest.raises(Forbidden):
        await qa.update_draft(qa2, draft["id"], answers=ANSWERS, comments=None, submit=True)
    with pytest.raises(Conflict, match="edited in place"):
        await qa.revise(qa1, draft["id"], answers=ANSWERS, comments=None, reason="r")
    sub = await qa.update_draft(qa1, draft["id"], answers=ANSWERS, comments=None, submit=True)
    with pytest.raises(Forbidden):
        await qa.revise(qa2, sub["id"], answers=ANSWERS, comments=None, reason="not mine")
    await qa.dispute(agent, sub["id"], "disagree")
    with pytest.raises(Conflict, match="disputed"):
        await qa.revise(qa1, sub["id"], answers=ANSWERS, comments=None, reason="sneaky")
    with pytest.raises(Forbidden):
        await qa.resolve(qa1, sub["id"], outcome="upheld", comment="ok")
    with pytest.raises(QaError, match="corrected answers"):
        await qa.resolve(lead, sub["id"], outcome="changed", comment="ok")
    upheld = await qa.resolve(lead, sub["id"], outcome="upheld", comment="score stands")
    assert upheld["state"] == "resolved" and upheld["revision"] == 1 and upheld["total"] == sub["total"]
    assert [h["action"] for h in upheld["history"]] == ["created", "submitted", "disputed", "resolved"]


async def test_file_watch_hot_reloads(tmp_path: Path):
    import asyncio
    import time

    forms = tmp_path / "forms"
    forms.mkdir()
    src = (ROOT / "qa-forms" / "customer-service.yaml").read_text(encoding="utf-8")
    (forms / "cs.yaml").write_text(src, encoding="utf-8")
    reg = FormRegistry(forms, watch=True, watch_debounce_ms=50)
    await reg.start()
    try:
        first = reg.current.versions["customer-service"]
        await asyncio.sleep(0.2)  # let the watcher arm
        (forms / "cs.yaml").write_text(src.replace("cap: 50", "cap: 40"), encoding="utf-8")
        deadline = time.monotonic() + 10
        while reg.current.versions["customer-service"] == first:
            assert time.monotonic() < deadline, "the edited form was not reloaded"
            await asyncio.sleep(0.05)
        assert reg.current.forms["customer-service"].critical_cap == 40
    finally:
        await reg.stop()
    assert not reg._reloader.watching


async def test_sighup_reload_is_an_owned_task(tmp_path: Path):
    forms = tmp_path / "forms"
    forms.mkdir()
    src = (ROOT / "qa-forms" / "customer-service.yaml").read_text(encoding="utf-8")
    (forms / "cs.yaml").write_text(src, encoding="utf-8")
    reg = FormRegistry(forms)
    await reg.start()
    (forms / "cs.yaml").write_text(src.replace("cap: 50", "cap: 30"), encoding="utf-8")
    result = await reg.request_reload("SIGHUP")
    assert result.ok and "customer-service" in result.changed and reg.current.forms["customer-service"].critical_cap == 30
    assert reg._reloader.pending == 0  # done tasks are dropped
    await reg.stop()


async def test_recording_table_source_flags_and_csat(db_sessionmaker):
    """The recording package's recordings as sampling candidates: policy QA sample, PCI mute, tags, CSAT."""
    from ivr.models import IvrSessionRow, SurveyAnswerRow
    from qa.repository import RecordingTable
    from qa.sampling import Rule, RuleSet, draw
    from recording.models import RecordingRow

    async with db_sessionmaker() as s, s.begin():
        for i, (qa_sample, muted, tags) in enumerate([(True, False, []), (False, True, ["vip"]), (False, False, [])]):
            s.add(RecordingRow(call_id=f"c{i}", agent_id="1001", queue="sales", started_at=T0 + timedelta(minutes=i),
                               ended_at=T0 + timedelta(minutes=i, seconds=90), duration=90.0, qa_sample=qa_sample,
                               muted=muted, tags=tags, disposition="ok"))
        s.add(RecordingRow(call_id="gone", agent_id="1001", started_at=T0, ended_at=T0, removed_at=T0))
        sess = IvrSessionRow(uniqueid="u2", linkedid="c2", flow="survey", started_at=T0)
        s.add(sess)
        await s.flush()
        s.add(SurveyAnswerRow(session_id=sess.id, uniqueid="u2", linkedid="c2", flow="survey", question="csat", answer=1))
    src = RecordingTable(db_sessionmaker)
    cands = {c.call_id: c for c in await src.candidates(T0 - timedelta(days=1), T0 + timedelta(days=1))}
    assert set(cands) == {"c0", "c1", "c2"}  # removed recordings are never sampled
    assert cands["c0"].flags == ("qa_sample",) and cands["c1"].flags == ("pci", "vip") and cands["c2"].csat == 1.0
    rules = RuleSet("week", "s", "f", (Rule("policy", "flagged", {"flags": ["qa_sample", "pci"]}),
                                       Rule("csat", "csat_below", {"value": 3})), ())
    picks = {p.candidate.call_id: p.rule for p in draw(rules, cands.values(), "W")}
    assert picks == {"c0": "policy", "c1": "policy", "c2": "csat"}
    ref = await src.recording(cands["c1"].recording_id)
    assert ref.call_id == "c1" and ref.duration == 90.0 and await src.recording("nope") is None


async def test_queue_scoped_qa_users_see_and_score_only_their_queues(qa):
    """Issue 11: a QA user limited to queues (the fake recordings are all of queue sales)."""
    everyone = qa.actor(Principal("user:qa1", "qa"))
    ev = await qa.create(everyone, "rec-1", form_id=None, answers=ANSWERS, submit=True)
    support_only = qa.actor(Principal("user:qa2", "qa", queues=frozenset({"support"})))
    sales_only = qa.actor(Principal("user:qa3", "qa", queues=frozenset({"sales"})))
    assert support_only.queues == {"support"}
    with pytest.raises(NotFound):
        await qa.get(support_only, ev["id"])
    assert await qa.list(support_only) == []
    with pytest.raises(NotFound):  # out of scope: as if the recording did not exist
        await qa.create(support_only, "rec-2", form_id=None, answers=ANSWERS, submit=True)
    assert (await qa.get(sales_only, ev["id"]))["id"] == ev["id"]
    assert [e["id"] for e in await qa.list(sales_only)] == [ev["id"]]
    agent = qa.actor(Principal("1001", "agent", queues=frozenset({"support"})))
    assert [e["id"] for e in await qa.list(agent)] == [ev["id"]]  # an agent always sees their own
