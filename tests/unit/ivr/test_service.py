"""IvrService with the SQL repository, the FastAPI routes and build_ivr_service."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from api.auth import Authenticator
from callcore.settings import Settings
from ivr.console import ConsoleChannel
from ivr.lookup import FixtureLookupClient
from ivr.models import IvrSessionRow, IvrStepRow, SurveyAnswerRow
from ivr.ports import InMemoryCallbackSink, PassThroughRouter
from ivr.registry import FlowRegistry, content_hash
from ivr.repository import SqlIvrRepository
from ivr.routes import router as ivr_router
from ivr.service import IvrService, build_ivr_service

from .helpers import TUESDAY_10, call_info, heard
from .test_registry import V1, V2, ScriptedCaller, poll

ROOT = Path(__file__).resolve().parents[3]
CRM = {"/customers/by-phone/01012345678": {"customer": {"id": "C-2", "name": "홍길동", "tier": "gold", "status": "active", "balance": 45200}}}


@pytest.fixture
def repo(db_sessionmaker):
    return SqlIvrRepository(db_sessionmaker)


def service_for(directory: Path, repo, *, check_sounds=True) -> IvrService:
    registry = FlowRegistry(directory, store=repo, check_sounds=check_sounds)
    return IvrService(registry, PassThroughRouter(), InMemoryCallbackSink(), FixtureLookupClient(CRM), repo,
                      clock=lambda: TUESDAY_10, sounds_prefix="/snd/")


def channel(answers, uniqueid="1700000000.1", **params):
    info = call_info(**params)
    info = type(info)(**{**{f: getattr(info, f) for f in info.__dataclass_fields__}, "uniqueid": uniqueid})
    return ConsoleChannel(info, answers)


async def test_queue_call_sets_dialplan_variables_and_stores_session(repo, db_sessionmaker):
    svc = service_for(ROOT / "dialplans", repo)
    ch = channel(["", "1", "2"], flow="main", lang="ko")
    outcome = await svc.run(ch)
    assert outcome.kind == "queue"
    session_id = outcome.context["session_id"]
    assert ch.variables["IVR_QUEUE"] == "billing"
    assert ch.variables["IVR_PRIORITY"] == "5"
    assert ch.variables["IVR_TIMEOUT"] == "900"
    assert ch.variables["CALLCORE_SESSION"] == str(session_id)
    assert ch.variables["IVR_SURVEY_FLOW"] == "survey"
    assert heard(ch)[0] == "/snd/ko/welcome"
    ctx = await svc.context_for("1700000000.1")
    assert ctx["agent"]["customer_name"] == "홍길동" and ctx["queue"]["queue"] == "billing"
    async with db_sessionmaker() as db:
        row = await db.get(IvrSessionRow, session_id)
        assert (row.flow, row.outcome, row.queue, row.priority, row.caller) == ("main", "queue", "billing", 5, "01012345678")
        assert row.version_hash == svc.registry.current.versions["main"]
        assert row.context["path"][-1] == "main:billing_queue"
        steps = (await db.scalars(select(IvrStepRow).where(IvrStepRow.session_id == session_id).order_by(IvrStepRow.seq))).all()
        assert [s.node for s in steps] == [p.split(":")[1] for p in row.context["path"]]
    # a fresh service (another process) reads the context from the database
    other = service_for(ROOT / "dialplans", repo)
    assert (await other.context_for("1700000000.1"))["agent"]["customer_id"] == "C-2"
    assert await other.context_for("nope") is None


async def test_survey_answers_are_stored(repo, db_sessionmaker):
    svc = service_for(ROOT / "dialplans", repo)
    await svc.run(channel(["4", "2"], uniqueid="1700000000.9", flow="survey"))
    async with db_sessionmaker() as db:
        rows = (await db.scalars(select(SurveyAnswerRow).order_by(SurveyAnswerRow.id))).all()
    assert [(r.uniqueid, r.question, r.answer) for r in rows] == [("1700000000.9", "satisfaction", 4), ("1700000000.9", "resolved", 2)]


async def test_stats_drop_off_and_containment(repo):
    svc = service_for(ROOT / "dialplans", repo)
    await svc.run(channel(["", "1"], uniqueid="a"))  # hangs up in billing_menu
    await svc.run(channel(["", "1"], uniqueid="b"))
    await svc.run(channel(["", "1", "1", "2"], uniqueid="c"))  # hears balance, says goodbye: contained
    await svc.run(channel(["", "3"], uniqueid="d"))  # sales queue
    stats = await repo.stats()
    assert stats["sessions"] == 4
    assert stats["by_outcome"] == {"caller_hangup": 2, "hangup": 1, "queue": 1}
    assert stats["containment_rate"] == 0.25
    assert stats["drop_off"] == [{"node": "main:billing_menu", "calls": 2}]


async def test_session_records_the_version_it_started_with(tmp_path, repo, db_sessionmaker):
    plans = tmp_path / "plans"
    plans.mkdir()
    (plans / "main.yaml").write_text(V1)
    svc = service_for(plans, repo, check_sounds=False)
    await svc.start()
    caller = ScriptedCaller()
    ch = ConsoleChannel(call_info(), interactive=True, reader=caller.reader)
    task = asyncio.create_task(svc.run(ch))
    try:
        await poll(lambda: caller.waiting == 1)
        (plans / "main.yaml").write_text(V2)
        assert (await svc.registry.reload()).ok
        caller.keys.put_nowait("1")
        outcome = await asyncio.wait_for(task, 5)
    finally:
        task.cancel()
        await svc.stop()
    assert heard(ch) == ["/snd/ko/menu_v1", "/snd/ko/connecting_v1"]
    async with db_sessionmaker() as db:
        row = await db.get(IvrSessionRow, outcome.context["session_id"])
    assert row.version_hash == content_hash(V1, {})


async def test_unknown_flow_param_falls_back_to_main(repo):
    svc = service_for(ROOT / "dialplans", repo)
    o = await svc.run(channel([], flow="does-not-exist"))
    assert o.flow == "main"


@pytest.fixture
async def api(tmp_path, repo):
    plans = tmp_path / "plans"
    plans.mkdir()
    (plans / "main.yaml").write_text(V1)
    svc = service_for(plans, repo, check_sounds=False)
    await svc.start()
    app = FastAPI()
    app.include_router(ivr_router)
    app.state.ivr = svc
    app.state.authenticator = Authenticator("k", {"admin-t": "admin", "agent-t": "agent:1001"})
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test", headers={"Authorization": "Bearer admin-t"}
    ) as client:
        yield client, svc, plans
    await svc.stop()


async def test_api_reload_list_rollback(api):
    client, svc, plans = api
    (plans / "main.yaml").write_text(V2)
    r = await client.post("/api/dialplans/reload")
    assert r.status_code == 200 and r.json()["changed"] == {"main": content_hash(V2, {})}
    (plans / "main.yaml").write_text(V1.replace("on_fail: q", "on_fail: nowhere"))
    r = await client.post("/api/dialplans/reload")
    assert r.status_code == 422
    assert r.json()["errors"][0].endswith("menu 'm': after last try goes to 'nowhere' which is not defined")
    r = await client.get("/api/dialplans")
    body = r.json()
    assert body["active"] == {"main": content_hash(V2, {})}
    assert [(v["hash"], v["active"]) for v in body["versions"]] == [(content_hash(V1, {}), False), (content_hash(V2, {}), True)]
    assert body["last_reload"]["ok"] is False
    r = await client.post("/api/dialplans/main/rollback", json={"hash": content_hash(V1, {})[:10]})
    assert r.status_code == 200 and r.json()["versions"]["main"] == content_hash(V1, {})
    r = await client.post("/api/dialplans/main/rollback", json={"hash": "zz"})
    assert r.status_code == 422


async def test_api_session_and_stats(api):
    client, svc, _ = api
    await svc.run(channel(["1"], uniqueid="u-42"))
    r = await client.get("/api/ivr/sessions/u-42")
    assert r.status_code == 200
    body = r.json()
    assert body["outcome"] == "queue" and body["queue"] == "sales"
    assert [s["node"] for s in body["steps"]] == ["m", "q"]
    assert body["context"]["digits"] == [{"node": "main:m", "input": "1"}]
    assert (await client.get("/api/ivr/sessions/none")).status_code == 404
    stats = (await client.get("/api/ivr/stats")).json()
    assert stats["sessions"] == 1 and stats["by_outcome"] == {"queue": 1}


async def test_api_without_ivr_service_is_503():
    app = FastAPI()
    app.include_router(ivr_router)
    app.state.authenticator = Authenticator("k", {"admin-t": "admin"})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        r = await client.post("/api/dialplans/reload", headers={"Authorization": "Bearer admin-t"})
        assert r.status_code == 503


async def test_api_reload_and_rollback_need_an_admin(api):
    client, svc, plans = api
    before = dict(svc.registry.current.versions)
    (plans / "main.yaml").write_text(V2)
    anonymous = await client.post("/api/dialplans/reload", headers={"Authorization": ""})
    assert anonymous.status_code == 401
    agent = await client.post("/api/dialplans/reload", headers={"Authorization": "Bearer agent-t"})
    assert agent.status_code == 403
    r = await client.post("/api/dialplans/main/rollback", json={"hash": "abcdef"}, headers={"Authorization": "Bearer agent-t"})
    assert r.status_code == 403
    assert (await client.get("/api/ivr/stats", headers={"Authorization": "Bearer agent-t"})).status_code == 403
    assert dict(svc.registry.current.versions) == before  # nothing changed for callers


async def test_build_ivr_service_from_settings(tmp_path, db_sessionmaker):
    shutil.copytree(ROOT / "dialplans", tmp_path / "dialplans")
    settings = Settings(dialplans_dir=tmp_path / "dialplans", data_dir=tmp_path / "data", dialplan_watch=False, crm_url=None)
    from datetime import datetime, timezone

    # a weekday within the shipped flow's opening hours (10:00 KST): the test must not depend on the wall clock
    svc = await build_ivr_service(settings, sessionmaker=db_sessionmaker,
                                  clock=lambda: datetime(2026, 12, 2, 1, 0, tzinfo=timezone.utc))
    await svc.start()
    try:
        assert set(svc.registry.current.flows) == {"main", "tech_support", "callback", "survey"}
        ch = channel(["", "0"], flow="main")
        o = await svc.run(ch)
        # no CRM configured: the lookup takes its fallback, the caller still gets through
        assert o.context["lookups"]["main:crm_lookup"]["status"] == "error"
        assert o.queue == "support"
        assert heard(ch)[0] == f"{(tmp_path / 'dialplans' / 'sounds').resolve()}/ko/welcome"
        versions = await svc.registry.versions()
        assert {v.flow for v in versions} == {"main", "tech_support", "callback", "survey"}
    finally:
        await svc.stop()


async def test_stats_since_filters_sessions(repo):
    from datetime import datetime, timezone

    svc = service_for(ROOT / "dialplans", repo)
    await svc.run(channel(["", "3"], uniqueid="old"))
    assert (await repo.stats(datetime(2026, 12, 22, 0, 0, tzinfo=timezone.utc)))["sessions"] == 1
    assert (await repo.stats(datetime(2026, 12, 23, 0, 0, tzinfo=timezone.utc)))["sessions"] == 0
    versions = await svc.registry.versions("main")
    assert all(v.loaded_at.tzinfo is not None for v in versions)


class RecordingPreload:
    """``ivr.ports.PopPreload`` double: records the hand-off; ``delay`` simulates a slow CRM."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.calls: list[tuple[str, str | None, str | None, dict]] = []
        self.finished = False
        self.futures: list[asyncio.Future] = []

    def prepare(self, uniqueid, linkedid, caller_num, context):
        self.calls.append((uniqueid, linkedid, caller_num, context))

        async def work():
            await asyncio.sleep(self.delay)
            self.finished = True

        self.futures.append(asyncio.ensure_future(work()))
        return self.futures[-1]


async def test_queue_hand_off_starts_the_screen_pop_preload_and_waits_for_it_bounded(repo):
    svc = service_for(ROOT / "dialplans", repo)
    svc.pop_preload = preload = RecordingPreload(delay=0.01)
    ch = channel(["", "1", "2"], flow="main", lang="ko")
    outcome = await svc.run(ch)
    assert outcome.kind == "queue"
    ((uniqueid, _linkedid, caller, ctx),) = preload.calls
    assert uniqueid == "1700000000.1" and caller == ch.info.caller_num
    assert ctx["flow"] == "main" and ctx["path"][-1] == "main:billing_queue"  # the context the pop will carry
    assert preload.finished  # a fast preload is done before Queue() can ring an agent

    slow = RecordingPreload(delay=5.0)
    svc.pop_preload, svc.pop_preload_wait = slow, 0.05
    t0 = asyncio.get_running_loop().time()
    assert (await svc.run(channel(["", "1", "2"], uniqueid="1700000000.2", flow="main", lang="ko"))).kind == "queue"
    assert asyncio.get_running_loop().time() - t0 < 2.0 and not slow.finished  # a slow CRM never holds the caller
    for f in slow.futures:
        f.cancel()
