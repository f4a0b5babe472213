"""The fact store and the reports on the database (SQLite, then PostgreSQL via scripts/test):
the generated dataset's hand-computed values through ReportService, rollups, REST and the CLI."""

from __future__ import annotations

import csv
import io

import httpx
import pytest
from fastapi import FastAPI

from api.auth import Authenticator
from reports import formulas as fm
from reports.repository import ReportRepository
from reports.routes import router
from reports.service import ReportConfig, ReportService
from tests.unit.reports import dataset as ds
from tests.unit.reports.expected import (
    AGENTS, CSV_SALES, CSV_SUPPORT, FCR_SALES, FCR_SUPPORT, IVR_MAIN, QUALITY_AGENT, QUALITY_ALL, QUALITY_FORM,
    QUALITY_QUEUE, SALES, SLOT_0900, SUPPORT, SURVEYS_ALL, subset,
)

pytestmark = pytest.mark.db


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(ds.NOW)


@pytest.fixture
async def service(db_sessionmaker, clock):
    svc = ReportService(ReportRepository(db_sessionmaker), ReportConfig(timezone="Asia/Seoul"), clock=clock)
    await svc.start()
    try:
        yield svc
    finally:
        await svc.stop()


@pytest.fixture
async def loaded(service):
    service.record(ds.facts())
    await service.flush()
    return service


async def test_appending_the_same_facts_again_changes_nothing(service):
    repo = service.repository
    facts = ds.facts()
    assert await repo.add_facts(facts) == len(facts)
    assert await repo.add_facts(facts) == 0
    assert await repo.add_facts(list(reversed(facts[:10])) + facts[:10]) == 0
    assert await repo.count_facts() == len(facts)


async def test_queue_report_of_the_day(loaded):
    rows = {r["queue"]: r for r in await loaded.queue_report("2026-12-02", "2026-12-03")}
    assert subset(rows["sales"], SALES) == SALES
    assert subset(rows["support"], SUPPORT) == SUPPORT
    assert subset(rows["sales"], FCR_SALES) == FCR_SALES
    assert subset(rows["support"], FCR_SUPPORT) == FCR_SUPPORT


async def test_rollups_give_the_same_report(loaded):
    before = await loaded.queue_report("2026-12-02", "2026-12-03")
    slots = await loaded.rebuild_rollups(ds.DAY, ds.NEXT_DAY)
    assert slots == 3  # 09:00, 09:15, 23:45; 09:30 (c9 still waiting) is left to the facts
    assert len(await loaded.repository.rollups(ds.DAY, ds.NEXT_DAY)) == 4  # 09:15 has sales + support
    assert await loaded.queue_report("2026-12-02", "2026-12-03") == before
    # a changed threshold never mixes with rollups built under the old one
    loaded.config.queues["sales"] = fm.QueueConfig(service_level_seconds=30)
    rows = {r["queue"]: r for r in await loaded.queue_report("2026-12-02", "2026-12-03")}
    assert rows["sales"]["answered_in_sl"] == 5 and rows["sales"]["service_level_pct"] == 62.5  # 5 / 8


async def test_pending_slots_are_rolled_up_once(loaded):
    # 3 slots of the 2nd, then the days of the 1st (no calls) and the 2nd
    assert await loaded.roll_up_pending(now=ds.t("12:00:00", 3), days=2) == 3 + 2
    # nothing new to roll; the 2nd is tried again (c9 is still waiting) and stays unrolled
    assert await loaded.roll_up_pending(now=ds.t("12:00:00", 3), days=2) == 1
    assert len(await loaded.repository.rollups(ds.DAY, ds.NEXT_DAY)) == 4
    # c9 still waiting: no day rollup for the 2nd, only the 1st's (a day without calls)
    assert [(r.interval_start, r.queue) for r in await loaded.repository.rollups(ds.DAY - 86400, ds.NEXT_DAY, "day")] == [
        (ds.DAY - 86400, "")]


async def test_the_ctis_queue_threshold_applies_unless_reports_configure_one(loaded):
    loaded.config.sl_seconds_of = {"sales": 30}.get  # PUT /api/queues/sales/settings {service_level_seconds: 30}
    rows = {r["queue"]: r for r in await loaded.queue_report("2026-12-02", "2026-12-03")}
    assert (rows["sales"]["service_level_seconds"], rows["sales"]["answered_in_sl"]) == (30.0, 5)
    assert rows["support"]["service_level_seconds"] == 20.0
    loaded.config.queues["sales"] = fm.QueueConfig(service_level_seconds=10)
    rows = {r["queue"]: r for r in await loaded.queue_report("2026-12-02", "2026-12-03")}
    assert (rows["sales"]["service_level_seconds"], rows["sales"]["answered_in_sl"]) == (10.0, 3)


async def test_a_late_fact_invalidates_its_rollup(loaded, clock):
    await loaded.rebuild_rollups(ds.DAY, ds.NEXT_DAY)
    from reports.facts import wrapup_fact

    # a wrap-up that reaches the store late (e.g. written after a DB outage) for c7 (09:00 slot)
    loaded.record([wrapup_fact("c7", "1002", ds.t("09:16:05"), ds.t("09:16:25"), "sales", anchor_at=ds.t("09:14:50"))])
    await loaded.flush()
    rows = {r["queue"]: r for r in await loaded.queue_report("2026-12-02", "2026-12-03")}
    assert rows["sales"]["aht_seconds"] == 102.0  # (490 + 20) / 5


async def test_intervals_in_the_centers_time_zone(loaded):
    rows = await loaded.queue_report("2026-12-02", "2026-12-03", "15min", ["sales"])
    by_start = {r["interval_start"]: r for r in rows}
    assert sorted(by_start) == ["2026-12-02T09:00:00+09:00", "2026-12-02T09:15:00+09:00",
                                "2026-12-02T09:30:00+09:00", "2026-12-02T23:45:00+09:00"]
    assert subset(by_start["2026-12-02T09:00:00+09:00"], SLOT_0900) == SLOT_0900
    staffing = by_start["2026-12-02T09:00:00+09:00"]["staffing"]
    assert staffing["offered"] == 6  # short abandons and calls in progress left out
    assert staffing["agents_needed_erlang_c"] >= 1 and staffing["agents_logged_in_avg"] == 2.0  # 1001 and 1002, the whole slot
    (support,) = await loaded.queue_report("2026-12-02", "2026-12-03", "15min", ["support"])
    assert support["staffing"]["agents_logged_in_avg"] == 0.0  # 1002 joins support at 09:30 only
    hours = await loaded.queue_report("2026-12-02", "2026-12-03", "hour", ["sales"])
    assert [(r["interval_start"][11:16], r["offered"]) for r in hours] == [("09:00", 9), ("23:00", 1)]
    days = await loaded.queue_report("2026-12-01", "2026-12-08", "day", ["sales"])
    assert [(r["interval_start"][:10], r["offered"]) for r in days] == [("2026-12-02", 10), ("2026-12-05", 1)]
    (week,) = await loaded.queue_report("2026-12-01", "2026-12-08", "week", ["sales"])
    assert (week["interval_start"][:10], week["offered"]) == ("2026-11-30", 11)  # ISO week from Monday
    (month,) = await loaded.queue_report("2026-12-01", "2027-01-01", "month", ["sales"])
    assert month["offered"] == 11 and month["interval_end"].startswith("2027-01-01")


async def test_agents_report(loaded):
    rows = {r["agent_id"]: r for r in await loaded.agent_report("2026-12-02", "2026-12-03")}
    for agent, exp in AGENTS.items():
        assert subset(rows[agent], exp) == exp


@pytest.mark.parametrize("by, expected", [("queue", QUALITY_QUEUE), ("agent", QUALITY_AGENT), ("form", QUALITY_FORM),
                                          ("all", {"all": QUALITY_ALL})])
async def test_quality_report_from_the_store(loaded, by, expected):
    rows = {r["key"]: r for r in await loaded.quality_report("2026-12-02", "2026-12-03", by)}
    assert set(rows) == set(expected)
    for key, want in expected.items():
        assert subset(rows[key], want) == want, key
    # the 5th holds only c11 and its evaluation e5
    (c11,) = await loaded.quality_report("2026-12-05", "2026-12-06", "agent")
    assert (c11["key"], c11["handled_calls"], c11["recorded"], c11["qa_avg_score"]) == ("1001", 1, 1, 50.0)


async def test_quality_by_interval_and_in_the_agent_report(loaded):
    rows = await loaded.quality_report("2026-12-02", "2026-12-03", "all", "hour")
    by_hour = {r["interval_start"][11:16]: r for r in rows}
    assert by_hour["09:00"]["handled_calls"] == 4 and by_hour["09:00"]["recorded"] == 2  # c1 c2 c7 c8
    assert by_hour["10:00"]["recorded"] == 1 and by_hour["23:00"]["recording_pending"] == 1  # o1; c10
    agents = {r["agent_id"]: r for r in await loaded.agent_report("2026-12-02", "2026-12-03")}
    assert (agents["1001"]["qa_avg_score"], agents["1001"]["evaluations"], agents["1001"]["recorded_pct"]) == (80.0, 3, 75.0)
    assert agents["1002"]["qa_critical_failed"] == 1
    with pytest.raises(Exception, match="by must be"):
        await loaded.quality_report("2026-12-02", "2026-12-03", "weather")


async def test_ivr_and_surveys(loaded):
    (main,) = await loaded.ivr_report("2026-12-02", "2026-12-03")
    assert subset(main, IVR_MAIN) == IVR_MAIN
    # an answer counts when it is given: c10's survey comes after midnight
    (all_,) = await loaded.survey_report("2026-12-02", "2026-12-04", by="all")
    assert subset(all_, SURVEYS_ALL) == SURVEYS_ALL
    (day,) = await loaded.survey_report("2026-12-02", "2026-12-03", by="all")
    assert (day["csat_answers"], day["nps"]) == (3, 0.0)  # c1, c2, c8: NPS (1 - 1) / 3
    by_agent = {r["key"]: r for r in await loaded.survey_report("2026-12-02", "2026-12-03")}
    assert by_agent["1001"]["csat_pct"] == 100.0 and by_agent["1002"]["nps"] == -50.0


async def test_live_counters_load_today_from_the_store(db_sessionmaker):
    repo = ReportRepository(db_sessionmaker)
    await repo.add_facts(ds.facts())
    svc = ReportService(repo, ReportConfig(timezone="Asia/Seoul"), clock=Clock(ds.t("12:00:00")))
    await svc.start()  # a restart at noon on the 2nd
    try:
        today = svc.live.queue_today("sales", ds.t("12:00:00"))
        report = {r["queue"]: r for r in await svc.queue_report("2026-12-02", "2026-12-03")}["sales"]
        assert today["answered_today"] == report["answered"] == 5
        assert today["abandoned_today"] == report["abandoned"] == 2
        assert today["short_abandoned_today"] == report["short_abandoned"] == 1
        assert today["asa_seconds"] == report["asa_seconds"] == 14.0
        assert today["aht_seconds"] == report["aht_seconds"] == 98.0
        assert today["service_level"] == report["service_level_pct"] == 50.0
        # the wallboard's staffing for 09:10 (c1..c6 so far in the 09:00 interval, today's AHT 98 s)
        staffing = svc.live.queue_today("sales", ds.t("09:10:00"))["staffing"]
        assert (staffing["interval_start"], staffing["arrived"], staffing["offered"]) == (
            "2026-12-02T09:00:00+09:00", 6, 9)  # 6 in 10 minutes: 9 in the interval
        assert staffing["agents_needed_erlang_c"] == 3  # 9 × 98 s / 900 s ≈ 0.98 erlangs, 80 % in 20 s
        assert svc.live.queue_today("sales", ds.t("00:30:00", 3))["answered_today"] == 0  # a new day
    finally:
        await svc.stop()


async def test_bad_parameters_are_clear(loaded):
    from reports.service import Invalid

    with pytest.raises(Invalid, match="'to' must be after 'from'"):
        await loaded.queue_report("2026-12-03", "2026-12-02")
    with pytest.raises(Invalid, match="interval must be one of"):
        await loaded.queue_report("2026-12-02", "2026-12-03", "year")
    with pytest.raises(Invalid, match="from: not a time"):
        await loaded.queue_report("yesterday")


async def test_a_failed_write_is_retried_not_lost(db_sessionmaker, clock):
    repo = ReportRepository(db_sessionmaker)
    calls = {"n": 0}
    real = repo.add_facts

    async def flaky(facts):
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionError("database went away")
        return await real(facts)

    repo.add_facts = flaky  # type: ignore[method-assign]
    svc = ReportService(repo, ReportConfig(timezone="Asia/Seoul"), clock=clock, retry_seconds=0.01)
    await svc.start()
    try:
        svc.record(ds.facts())
        await svc.flush()
        assert svc.write_failures == 1 and await repo.count_facts() == len(ds.facts())
    finally:
        await svc.stop()


# ------------------------------------------------------------------ REST
@pytest.fixture
def auth(clock) -> Authenticator:
    return Authenticator("k", {"sup": "supervisor", "agent": "agent:1001"}, clock=clock)


@pytest.fixture
async def client(loaded, auth):
    app = FastAPI()
    app.include_router(router)
    app.state.reports = loaded
    app.state.authenticator = auth
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
        yield c


SUP = {"Authorization": "Bearer sup"}


async def test_rest_json_and_csv(client):
    r = await client.get("/api/reports/queues", params={"from": "2026-12-02", "to": "2026-12-03"}, headers=SUP)
    assert r.status_code == 200
    rows = {row["queue"]: row for row in r.json()["rows"]}
    assert subset(rows["sales"], SALES) == SALES
    r = await client.get("/api/reports/queues", params={"from": "2026-12-02", "to": "2026-12-03", "queue": "sales"},
                         headers={**SUP, "Accept": "text/csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    (row,) = list(csv.DictReader(io.StringIO(r.text)))
    assert (row["queue"], row["offered"], row["asa_seconds"], row["service_level_pct"]) == ("sales", "10", "14.00", "50.00")
    r = await client.get("/api/reports/agents?from=2026-12-02&to=2026-12-03&format=csv&agent=1002", headers=SUP)
    (row,) = list(csv.DictReader(io.StringIO(r.text)))
    assert (row["agent_id"], row["aht_seconds"], row["pause_seconds.break"]) == ("1002", "110.00", "900.0")
    r = await client.get("/api/reports/ivr?from=2026-12-02&to=2026-12-03", headers=SUP)
    assert r.json()["rows"][0]["containment_pct"] == 40.0
    r = await client.get("/api/reports/surveys?from=2026-12-02&to=2026-12-03&by=queue", headers=SUP)
    assert {row["key"] for row in r.json()["rows"]} == {"sales", "support"}
    r = await client.get("/api/reports/quality?from=2026-12-02&to=2026-12-03&by=agent&agent=1002&format=csv", headers=SUP)
    (row,) = list(csv.DictReader(io.StringIO(r.text)))
    assert (row["key"], row["recorded_pct"], row["recording_compliance_pct"], row["qa_avg_score"]) == (
        "1002", "33.33", "50.00", "0.00")
    r = await client.get("/api/reports/quality?from=2026-12-02&to=2026-12-03&by=form", headers=SUP)
    assert {row["key"]: row["qa_avg_score"] for row in r.json()["rows"]} == {"customer-service": 45.0, "outbound": 70.0}


async def test_rest_refuses_bad_input_and_agents(client):
    r = await client.get("/api/reports/queues?from=2026-12-03&to=2026-12-02", headers=SUP)
    assert r.status_code == 400 and "after" in r.json()["detail"]
    r = await client.get("/api/reports/queues?interval=fortnight", headers=SUP)
    assert r.status_code == 400
    r = await client.get("/api/reports/queues?format=xml", headers=SUP)
    assert r.status_code == 400
    r = await client.get("/api/reports/surveys?by=weather", headers=SUP)
    assert r.status_code == 400
    r = await client.get("/api/reports/quality?by=weather", headers=SUP)
    assert r.status_code == 400 and "by must be" in r.json()["detail"]
    assert (await client.get("/api/reports/queues")).status_code == 401
    assert (await client.get("/api/reports/queues", headers={"Authorization": "Bearer agent"})).status_code == 403


# ------------------------------------------------------------------ CLI
def test_cli_queue_log_csv_contract(tmp_path, capsys):
    from callcore.cli import main

    log = tmp_path / "queue_log"
    log.write_text("\n".join(ds.queue_log()) + "\n")
    # c11 (5 Dec) is in the file too: sales 11 offered, 6 answered
    assert main(["report", "--queue-log", str(log), "--format", "csv", "--short-abandon-seconds", "5",
                 "--service-level-seconds", "20"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("queue,offered,answered,abandoned,short_abandoned,asa_seconds,service_level_pct,"
                             "aht_seconds,longest_wait_seconds")
    sales = out[1].split(",")[:9]
    assert sales == ["sales", "11", "6", "2", "1", "12.50", "55.56", "85.00", "60.00"]  # + c11 (5 s, 20 s talk)
    assert ",".join(out[2].split(",")[:9]) == CSV_SUPPORT


def test_cli_queue_log_of_the_day(tmp_path, capsys):
    from callcore.cli import main

    log = tmp_path / "queue_log"
    log.write_text("\n".join(line for line in ds.queue_log() if float(line.split("|")[0]) < ds.NEXT_DAY + 3600) + "\n")
    assert main(["report", "--queue-log", str(log), "--format", "csv"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert ",".join(out[1].split(",")[:9]) == CSV_SALES
    assert main(["report", "--queue-log", str(log), "--format", "csv", "--short-abandon-seconds", "20"]) == 0
    assert capsys.readouterr().out.splitlines()[1].split(",")[3:5] == ["1", "2"]  # c5 (15 s) is short now


def test_cli_bad_input(tmp_path, capsys):
    from callcore.cli import main

    assert main(["report", "--queue-log", str(tmp_path / "missing")]) == 1
    assert "no such file" in capsys.readouterr().err
    junk = tmp_path / "junk"
    junk.write_text("hello\nworld\n")
    assert main(["report", "--queue-log", str(junk)]) == 1
    assert "not a queue_log" in capsys.readouterr().err
    assert main(["report", "--queue-log", str(junk), "--short-abandon-seconds", "-1"]) == 1
    capsys.readouterr()
    (tmp_path / "empty").mkdir()
    assert main(["report", "--data-dir", str(tmp_path / "empty")]) == 1  # a database never migrated
    assert "callcore db upgrade" in capsys.readouterr().err


def test_cli_reads_callcores_store(tmp_path, capsys, monkeypatch):
    import asyncio

    from callcore import migrate

    url = f"sqlite+aiosqlite:///{tmp_path / 'callcore.db'}"
    migrate.upgrade(url)
    from callcore.db import create_engine, session_factory

    async def load() -> None:
        engine = create_engine(url)
        await ReportRepository(session_factory(engine)).add_facts(ds.facts())
        await engine.dispose()

    asyncio.run(load())
    monkeypatch.setenv("CALLCORE_DATABASE_URL", url)
    monkeypatch.setenv("CALLCORE_REPORT_TIMEZONE", "Asia/Seoul")
    from callcore.cli import main

    out_csv = tmp_path / "report.csv"
    assert main(["report", "--from", "2026-12-02", "--to", "2026-12-03", "--output", str(out_csv)]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split()[:3] == ["queue", "offered", "answered"] and "sales" in table
    rows = list(csv.reader(out_csv.open()))
    assert ",".join(rows[1][:9]) == CSV_SALES and ",".join(rows[2][:9]) == CSV_SUPPORT
    assert main(["report", "rebuild", "--from", "2026-12-02", "--to", "2026-12-03"]) == 0
    assert capsys.readouterr().out.startswith("rollups rebuilt: ")  # 2 or 3: 23:45 settles only after it
    assert main(["report", "--from", "2026-12-02", "--to", "2026-12-03", "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith(CSV_SALES + ",")
    assert main(["report", "quality", "--by", "queue", "--from", "2026-12-02", "--to", "2026-12-03", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("by,key,handled_calls,recording_required,recorded,")
    assert lines[1].startswith("queue,sales,5,4,2,1,1,40.00,50.00,2,2,100.00,40.00,90.00,")


async def test_day_rollups_serve_long_periods_with_the_same_numbers(loaded, clock):
    """A day rollup replaces the day's 96 slots for day/week/month/whole-period reports."""
    from reports.facts import Fact

    # c9 finally gives up (so the 2nd can be rolled up as a day)
    loaded.record([Fact("v:c9:0:left", "visit.left", ds.t("09:31:00"), ds.t("09:30:00"), "c9", "sales", None,
                        {"seq": 0, "outcome": "abandoned", "wait": 60.0, "rang_agent": False})])
    await loaded.flush()
    before = await loaded.queue_report("2026-12-01", "2026-12-08", "day")
    whole = await loaded.queue_report("2026-12-01", "2026-12-08")
    await loaded.rebuild_rollups(ds.t("00:00:00", 1), ds.t("00:00:00", 8))
    days = await loaded.repository.rollups(ds.t("00:00:00", 1), ds.t("00:00:00", 8), "day")
    assert {(r.interval_start, r.queue) for r in days} >= {(ds.DAY, "sales"), (ds.DAY, "support")}
    assert await loaded.queue_report("2026-12-01", "2026-12-08", "day") == before
    assert await loaded.queue_report("2026-12-01", "2026-12-08") == whole
    # reading goes through the day rows: a marked one shows (never do this outside a test)
    (row,) = [r for r in days if r.interval_start == ds.DAY and r.queue == "sales"]
    marked = {"span": "day", "interval_start": ds.DAY, "queue": "sales", "config": row.config,
              "counts": {**row.counts, "offered": 999}}
    await loaded.repository.replace_rollups(ds.DAY, ds.DAY + 1, [marked], spans=("day",))
    assert {r["queue"]: r for r in await loaded.queue_report("2026-12-02", "2026-12-03")}["sales"]["offered"] == 999
    hourly = await loaded.queue_report("2026-12-02", "2026-12-03", "hour", ["sales"])  # finer: slots, not days
    assert sum(r["offered"] for r in hourly) == 10
    sales = {r["queue"]: r for r in whole}["sales"]
    assert (sales["offered"], sales["abandoned"], sales["in_progress"]) == (11, 3, 0)


async def _c9_gives_up(svc):
    from reports.facts import Fact

    svc.record([Fact("v:c9:0:left", "visit.left", ds.t("09:31:00"), ds.t("09:30:00"), "c9", "sales", None,
                     {"seq": 0, "outcome": "abandoned", "wait": 60.0, "rang_agent": False})])
    await svc.flush()


async def test_agent_day_rollups_give_the_same_agent_report(loaded):
    """A month per agent reads one row per agent and day (report_agent_rollups), with the numbers
    the facts give — agent figures, CSAT/NPS, recording and QA columns."""
    await _c9_gives_up(loaded)
    period = ("2026-12-01", "2026-12-08")
    loaded.use_rollups = False
    by_facts = {iv: await loaded.agent_report(*period, iv) for iv in (None, "day", "week")}
    loaded.use_rollups = True
    await loaded.rebuild_rollups(ds.t("00:00:00", 1), ds.t("00:00:00", 8))
    rolled = await loaded.repository.agent_rollups(ds.t("00:00:00", 1), ds.t("00:00:00", 8))
    assert {(r.interval_start, r.agent_id) for r in rolled} >= {(ds.DAY, "1001"), (ds.DAY, "1002")}
    assert (ds.t("00:00:00", 4), "") in {(r.interval_start, r.agent_id) for r in rolled}  # a day with nobody
    for iv, rows in by_facts.items():
        assert await loaded.agent_report(*period, iv) == rows, iv
    agents = {r["agent_id"]: r for r in by_facts[None]}
    assert subset(agents["1002"], AGENTS["1002"]) == AGENTS["1002"]  # 1002 worked only on the 2nd
    # reading goes through the agent day rows: a marked one shows (never do this outside a test)
    (row,) = [r for r in rolled if r.interval_start == ds.DAY and r.agent_id == "1002"]
    counts = {**row.counts, "agent": {**row.counts["agent"], "answered": 99}}
    await loaded.repository.replace_agent_rollups(ds.DAY, ds.DAY + 1, [
        {"interval_start": r.interval_start, "agent_id": r.agent_id, "counts": counts if r.agent_id == "1002" else r.counts}
        for r in rolled if r.interval_start == ds.DAY])
    day = {r["agent_id"]: r for r in await loaded.agent_report("2026-12-02", "2026-12-03")}
    assert day["1002"]["answered"] == 99
    part = {r["agent_id"]: r for r in await loaded.agent_report("2026-12-02T09:00", "2026-12-02T10:00")}
    assert part["1002"]["answered"] == 3  # part of a day: from the facts


async def test_a_late_score_or_survey_invalidates_the_agent_day(loaded, clock):
    from reports.facts import qa_score_fact, survey_fact

    await _c9_gives_up(loaded)
    await loaded.rebuild_rollups(ds.DAY, ds.NEXT_DAY)
    assert {r.agent_id for r in await loaded.repository.agent_rollups(ds.DAY, ds.NEXT_DAY)} >= {"1001", "1002"}
    # e1 revised again days later: the agent's average on the 2nd changes
    loaded.record([qa_score_fact("e1", 3, agent_id="1001", form_id="customer-service", total=70.0, critical_failed=False,
                                 at=ds.t("10:00:00", 5), call_started_at=ds.t("09:00:00"), call_id="c1")])
    await loaded.flush()
    assert await loaded.repository.agent_rollups(ds.DAY, ds.NEXT_DAY) == []
    rows = {r["agent_id"]: r for r in await loaded.agent_report("2026-12-02", "2026-12-03")}
    assert rows["1001"]["qa_avg_score"] == 70.0  # e1 = 70 (revision 3), e3 = 70, e4 none
    await loaded.rebuild_rollups(ds.DAY, ds.NEXT_DAY)
    assert {r["agent_id"]: r for r in await loaded.agent_report("2026-12-02", "2026-12-03")} == rows
    loaded.record([survey_fact("c7", "nps", 9, ds.t("09:30:00"))])  # a late NPS answer for 1002's c7
    await loaded.flush()
    assert await loaded.repository.agent_rollups(ds.DAY, ds.NEXT_DAY) == []
    assert {r["agent_id"]: r for r in await loaded.agent_report("2026-12-02", "2026-12-03")}["1002"]["nps"] == 0.0


async def test_fcr_and_callbacks_roll_up_once_the_window_is_over(loaded, clock):
    """A day's FCR counts and callbacks per queue are rolled up (``fcr_day``) once its FCR
    window (72 h) is over — the same numbers as the facts; a late contact invalidates them."""
    from reports.facts import Fact
    from reports.service import EXTRA_SPAN

    await _c9_gives_up(loaded)
    loaded.use_rollups = False
    by_facts = await loaded.queue_report("2026-12-02", "2026-12-03")
    loaded.use_rollups = True
    clock.now = ds.t("23:00:00", 4)  # the 2nd's window ends at 00:00 on the 6th: not yet
    await loaded.rebuild_rollups(ds.DAY, ds.NEXT_DAY)
    assert await loaded.repository.rollups(ds.DAY, ds.NEXT_DAY, EXTRA_SPAN) == []
    clock.now = ds.NOW
    await loaded.rebuild_rollups(ds.DAY, ds.NEXT_DAY)
    extra = {r.queue: r.counts for r in await loaded.repository.rollups(ds.DAY, ds.NEXT_DAY, EXTRA_SPAN)}
    assert set(extra) == {"", "sales", "support"} and extra["sales"]["contacts"] == FCR_SALES["contacts"]
    assert extra["sales"]["callbacks_requested"] == 2
    assert await loaded.queue_report("2026-12-02", "2026-12-03") == by_facts
    rows = {r["queue"]: r for r in by_facts}
    assert subset(rows["sales"], FCR_SALES) == FCR_SALES
    # the report reads the rollup: a marked one shows (never do this outside a test)
    marked = [{"span": EXTRA_SPAN, "interval_start": r.interval_start, "queue": r.queue, "config": r.config,
               "counts": {**r.counts, "contacts": 77} if r.queue == "sales" else r.counts}
              for r in await loaded.repository.rollups(ds.DAY, ds.NEXT_DAY, EXTRA_SPAN)]
    await loaded.repository.replace_rollups(ds.DAY, ds.NEXT_DAY, marked, spans=(EXTRA_SPAN,))
    assert {r["queue"]: r for r in await loaded.queue_report("2026-12-02", "2026-12-03")}["sales"]["contacts"] == 77
    # a contact written late (the 4th: within the window of the 2nd's calls) drops the rollup
    loaded.record([Fact("c:late:ended", "call.ended", ds.t("10:00:00", 4), ds.t("10:00:00", 4), "late", "sales", "1001",
                        {"outcome": "answered", "caller": "01011110002", "customer": None, "direction": "inbound",
                         "first_queued_at": ds.t("10:00:00", 4)})])
    await loaded.flush()
    assert await loaded.repository.rollups(ds.DAY, ds.NEXT_DAY, EXTRA_SPAN) == []
    sales = {r["queue"]: r for r in await loaded.queue_report("2026-12-02", "2026-12-03")}["sales"]
    assert sales["fcr_repeat_repeated"] == FCR_SALES["fcr_repeat_repeated"] + 1  # c2's caller called again


class _Agents:
    """The CTI agent directory as the report edge reads it (``app.state.cti.agents``)."""

    def list_agents(self):
        return [{"id": "1001", "skills": [{"queue": "sales", "penalty": 0}], "team": "A", "state": None},
                {"id": "1002", "skills": [{"queue": "support", "penalty": 0}], "team": "B", "state": None}]


async def test_rest_follows_the_queue_and_team_scope(client, auth):
    """Issue 11: a supervisor limited to queues or teams reads only their queues' and agents' rows."""
    from types import SimpleNamespace

    client._transport.app.state.cti = SimpleNamespace(agents=_Agents())  # type: ignore[attr-defined]
    auth = Authenticator("k")  # issued on the real clock (the fixture's is the dataset's "now", ahead of it)
    period = {"from": "2026-12-02", "to": "2026-12-03"}
    sales = {"Authorization": "Bearer " + auth.issue("user:s", "supervisor", 10**8, queues=["sales"])}
    r = await client.get("/api/reports/queues", params=period, headers=sales)
    assert r.status_code == 200, r.text
    rows = r.json()["rows"]
    assert [r["queue"] for r in rows] == ["sales"] and subset(rows[0], SALES) == SALES
    r = await client.get("/api/reports/queues", params={**period, "queue": "support"}, headers=sales)
    assert r.status_code == 403 and "support" in r.json()["detail"]
    agents = (await client.get("/api/reports/agents", params=period, headers=sales)).json()["rows"]
    assert [r["agent_id"] for r in agents] == ["1001"]
    team_b = {"Authorization": "Bearer " + auth.issue("user:t", "supervisor", 10**8, teams=["B"])}
    assert [r["agent_id"] for r in (await client.get("/api/reports/agents", params=period, headers=team_b)).json()["rows"]] == ["1002"]
    assert (await client.get("/api/reports/agents", params={**period, "agent": "1001"}, headers=team_b)).status_code == 403
    quality = (await client.get("/api/reports/quality", params={**period, "by": "queue"}, headers=sales)).json()["rows"]
    assert [r["key"] for r in quality] == ["sales"]
    assert (await client.get("/api/reports/ivr", params=period, headers=sales)).status_code == 403  # center-wide
    assert (await client.get("/api/reports/quality", params={**period, "by": "all"}, headers=sales)).status_code == 403
    unscoped = (await client.get("/api/reports/queues", params=period, headers=SUP)).json()["rows"]
    assert sorted(r["queue"] for r in unscoped) == ["sales", "support"]
