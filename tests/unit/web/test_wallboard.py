"""The wallboard book (pure), the web config, the notifier's documented events."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import yaml

from callcore.bus import Bus, Message
from web.models import WebConfigError, load_config
from web.notifier import EVENTS_FILE
from web.service import WebService
from reports.facts import Fact, ring_missed_fact, visit_facts
from reports.formulas import Visit
from web.wallboard import FACT_KINDS, WallboardBook

DAY = lambda now: "d2" if now >= 100_000 else "d1"  # noqa: E731  (a day boundary at t=100000)


def stats(queue: str, answered: int, abandoned: int, within: int, **kw) -> dict:
    return {"queue": queue, "answered_today": answered, "abandoned_today": abandoned, "answered_within_sl": within,
            "service_level_seconds": 20, "callers": [], **kw}


def test_service_level_of_the_last_30_minutes_is_the_change_of_ctis_counters():
    book = WallboardBook(day_of=DAY)
    # 10:00 the counters of the day so far: 10 answered (8 within SL), 2 abandoned
    assert book.service_level_window(stats("sales", 10, 2, 8), 1000.0) == (None, 0)
    # in the next 10 minutes: 3 answered (1 within), 1 abandoned → 1/4
    assert book.service_level_window(stats("sales", 13, 3, 9), 1600.0) == (25.0, 4)
    # 40 minutes after the first tick, the baseline is the 10:10 sample: nothing since → None
    assert book.service_level_window(stats("sales", 13, 3, 9), 1000.0 + 40 * 60) == (None, 0)
    # two more, both within SL → 100 %
    assert book.service_level_window(stats("sales", 15, 3, 11), 1000.0 + 41 * 60) == (100.0, 2)


def test_a_counter_reset_at_midnight_starts_the_window_again():
    book = WallboardBook(day_of=DAY)
    book.service_level_window(stats("sales", 50, 5, 40), 1000.0)
    assert book.service_level_window(stats("sales", 1, 0, 1), 1200.0) == (None, 0)
    assert book.service_level_window(stats("sales", 2, 1, 1), 1300.0) == (0.0, 2)


def _facts(call: str, agent: str | None, at: float, *, answered: bool = True, missed: str | None = None,
           abandoned_after: float | None = None, name: str | None = None) -> list[Fact]:
    """The facts reports.subscriber writes for one queue call (the real constructors)."""
    out = []
    if missed:
        out.append(ring_missed_fact(call, agent, "sales", missed, at + 1))
    v = Visit(call, 0, "sales", at, "0102")
    if answered:
        v.answered_at, v.agent_id, v.outcome, v.wait = at + 2, agent, "answered", 2.0
    elif abandoned_after is not None:
        v.outcome, v.wait = "abandoned", abandoned_after
    out += visit_facts(v)
    out.append(Fact(f"c:{call}:ended", "call.ended", at + 30, at, call, "sales", agent,
                    {"outcome": "answered" if answered else "abandoned", "caller": "0102", "caller_name": name}))
    return out


def test_handled_missed_and_abandoned_today_are_counted_from_the_kpi_facts():
    book = WallboardBook(day_of=DAY)
    book.observe("agent.status", {"agent_id": "1001", "name": "김상담", "status": "ready", "current_call": None}, 10)
    book.observe("call.ringing", {"call_id": "c1", "agent_id": "1001", "caller_num": "0101", "caller_name": "홍길동", "queue": "sales"}, 11)
    book.observe("agent.status", {"agent_id": "1001", "name": "김상담", "status": "on_call", "current_call": "c1"}, 13)
    c1 = _facts("c1", "1001", 11, missed="no_answer")
    assert book.observe_facts(c1, 13) == len([f for f in c1 if f.kind in FACT_KINDS])
    assert book.observe_facts(c1, 14) == 0  # the same facts again (a resync, the call's final re-derivation)
    snap = book.snapshot([stats("sales", 1, 0, 1, callers=[{"call_id": "c2", "waited": 3}, {"call_id": "c3", "waited": 9}])], 15)
    (agent,) = snap["agents"]
    assert agent["handled_today"] == 1 and agent["missed_today"] == 1
    assert agent["call"]["caller_name"] == "홍길동" and agent["call"]["queue"] == "sales"
    assert [c["call_id"] for c in snap["waiting"]] == ["c3", "c2"] and snap["waiting"][0]["queue"] == "sales"
    book.observe_facts(_facts("c4", None, 16, answered=False, abandoned_after=40, name="강고객"), 60)
    book.observe_facts(_facts("c5", None, 17, answered=False, abandoned_after=50), 70)
    book.observe("call.ended", {"call_id": "c1", "queue": "sales", "outcome": "answered"}, 21)
    snap = book.snapshot([], 80)
    assert [a["call_id"] for a in snap["abandoned"]] == ["c5", "c4"]  # newest first
    assert snap["abandoned"][1] == {"call_id": "c4", "caller_num": "0102", "caller_name": "강고객", "queue": "sales",
                                    "waited": 40.0, "ended_at": 56.0}
    assert "c1" not in book.calls
    # a fact of another day is not today's
    book.observe_facts(_facts("c6", "1001", 100_050), 90)
    assert book.snapshot([], 95)["agents"][0]["handled_today"] == 1
    # the next day starts empty, and asks for its seed
    snap = book.snapshot([], 100_001)
    assert snap["abandoned"] == [] and snap["agents"][0]["handled_today"] == 0 and book.seeded_day is None


def test_a_ring_the_caller_or_a_colleague_ended_is_no_miss():
    with pytest.raises(ValueError):
        ring_missed_fact("c1", "1001", "sales", "answered_elsewhere", 1.0)
    book = WallboardBook(day_of=DAY)
    book.observe_facts([Fact("rm:x", "ring.missed", 1, 1, "c1", "sales", "1001", {"reason": "abandoned"})], 2)
    assert book.missed == {}


def test_a_fresh_book_seeded_with_the_same_facts_shows_the_same_figures():
    facts = _facts("c1", "1001", 11, missed="rejected") + _facts("c2", "1002", 12, missed="no_answer")
    facts += _facts("c3", None, 13, answered=False, abandoned_after=20, name="강고객")
    live = WallboardBook(day_of=DAY)
    live.observe_facts(facts, 50)
    fresh = WallboardBook(day_of=DAY)
    fresh.observe_facts((), 60)
    assert fresh.seed(reversed(facts), "d1") == len([f for f in facts if f.kind in FACT_KINDS])
    assert fresh.seed(facts, "d1") == 0 and fresh.seeded_day == "d1"  # a second seed (or the live feed) adds nothing
    assert (fresh.handled, fresh.missed) == (live.handled, live.missed) == ({"1001": 1, "1002": 1}, {"1001": 1, "1002": 1})
    assert fresh.snapshot([], 70)["abandoned"] == live.snapshot([], 70)["abandoned"]
    assert fresh.snapshot([], 70)["abandoned"][0]["caller_name"] == "강고객"
    assert fresh.seed(facts, "d0") == 0  # a seed read for a day that is over is dropped


async def test_the_service_pushes_wallboard_update_after_each_cti_tick_and_never_on_its_own():
    bus = Bus()
    agents = [{"id": "1001", "name": "김상담", "skills": [{"queue": "sales", "penalty": 0}], "state": None}]
    web = WebService(bus=bus, config=load_config(), agents=lambda: agents, queue_stats=lambda: [], pause_reasons=lambda: ["break"])
    await web.start()
    desk = bus.subscribe({"supervisor"})
    now = time.time()
    try:
        bus.publish(Message("call.ringing", {"call_id": "c9", "queue": "sales", "agent_id": "1001", "caller_num": "0103"}, frozenset({"queue:sales"})))
        bus.publish(Message("queue.stats", {"at": now, "queues": [stats("sales", 0, 1, 0)]}, frozenset({"queue:sales"})))  # per-queue copy: ignored
        bus.publish(Message("queue.stats", {"at": now + 1, "queues": [stats("sales", 0, 1, 0)]}, frozenset({"queue.stats"})))
        msg = await asyncio.wait_for(desk.get(), 2)
        assert msg.name == "wallboard.update" and msg.payload["at"] == now + 1
        assert "c9" in web.book.calls and msg.payload["kpis"] is None  # no report service: no KPI tiles
        assert msg.payload["agents"][0]["agent_id"] == "1001" and msg.payload["agents"][0]["status"] == "logged_out"
        assert desk.queue.empty() and web.updates == 1
    finally:
        await web.stop()
    assert bus.subscriber_count == 1  # only the desk: the feed unsubscribed


def test_events_file_documents_what_the_notifier_emits():
    doc = yaml.safe_load(EVENTS_FILE.read_text(encoding="utf-8"))
    assert [e["name"] for e in doc["events"]] == ["wallboard.update"]
    assert doc["events"][0]["audience"] == ["supervisor"]


def test_shipped_config_and_clear_errors_for_a_bad_one(tmp_path: Path):
    cfg = load_config()
    assert "resolved" in cfg.disposition_codes
    assert cfg.thresholds_for("vip")["waiting"] == {"warn": 1, "alert": 2}
    assert cfg.thresholds_for("sales")["waiting"] == {"warn": 3, "alert": 6}
    pub = cfg.public(["break", "coffee"], ["sales"])
    assert pub["pause_reasons"] == [{"code": "break", "ko": "휴식", "en": "Break"}, {"code": "coffee", "ko": "coffee", "en": "coffee"}]
    bad = tmp_path / "web.yaml"
    bad.write_text("dispositions: [{code: ok, ko: 좋음, en: OK}]\nwallboard: {thresholds: {waitting: {warn: 1, alert: 2}}}\n", encoding="utf-8")
    with pytest.raises(WebConfigError, match=r"web.yaml: wallboard.thresholds: .*unknown tile 'waitting'"):
        load_config(bad)
    bad.write_text("dispositions: [{code: ok, ko: 좋음, en: OK}]\nwallboard: {thresholds: {service_level: {warn: 60, alert: 80}}}\n", encoding="utf-8")
    with pytest.raises(WebConfigError, match="lower is worse"):
        load_config(bad)
    bad.write_text("dispositions: [\n", encoding="utf-8")
    with pytest.raises(WebConfigError, match="not valid YAML"):
        load_config(bad)


class FakeReports:
    """The ReportService surface the wallboard uses (the real one is exercised end to end in
    tests/e2e/test_wallboard_store.py and tests/browser/test_wallboard_kpis_and_transfers.py)."""

    def __init__(self, facts_by_day: dict[str, list[Fact]]) -> None:
        from zoneinfo import ZoneInfo

        self.tz = ZoneInfo("UTC")
        self.facts_by_day = facts_by_day
        self.observers: list = []
        self.reads: list[str] = []
        self.reports: list[tuple] = []

    def day_of(self, t: float) -> str:
        return DAY(t)

    async def facts_of_day(self, now: float, kinds) -> list[Fact]:
        self.reads.append(DAY(now))
        return [f for f in self.facts_by_day.get(DAY(now), []) if f.kind in kinds]

    async def queue_report(self, lo=None, hi=None, interval=None, queues=None) -> list[dict]:
        self.reports.append((lo, hi, interval))
        if interval == "15min":
            return [{"queue": "sales", "staffing": {"agents_needed_erlang_c": 3}}]
        return [{"queue": "sales", "offered": 2, "answered": 1, "abandoned": 1, "asa_seconds": 4.0, "aht_seconds": 90.0,
                 "abandon_rate_pct": 50.0, "service_level_pct": 50.0, "service_level_seconds": 20,
                 "service_level_formula": "offered"}]


async def test_the_service_seeds_at_start_and_at_the_day_roll_and_refreshes_kpis_on_its_own_clock():
    now = [50_000.0]
    d1 = _facts("c1", "1001", 11, missed="no_answer")
    d2 = _facts("c2", "1002", 100_010) + _facts("c3", "1002", 100_020)
    reports = FakeReports({"d1": d1, "d2": d2})
    web = WebService(bus=Bus(), config=load_config(), agents=lambda: [], queue_stats=lambda: [],
                     pause_reasons=lambda: [], clock=lambda: now[0], reports=reports)
    web.kpi_every = 0.01
    await web.start()
    try:
        assert reports.reads == ["d1"] and web.book.handled == {"1001": 1} and web.book.missed == {"1001": 1}
        assert web._facts in reports.observers
        await eventually_async(lambda: web.kpis is not None)
        k = web.kpis
        assert k["at"] == 50_000.0 and k["queues"]["sales"]["asa_seconds"] == 4.0
        assert k["queues"]["sales"]["staffing"] == {"agents_needed_erlang_c": 3}
        assert (None, 50_000.0, None) in reports.reports and (49_500.0, 50_000.0, "15min") in reports.reports
        # live facts through the observer hook
        reports.observers[0](_facts("c9", "1001", 20))
        assert web.book.handled == {"1001": 2}
        # midnight: the book empties and the new day's stored facts are read back by the KPI task
        now[0] = 100_100.0
        await eventually_async(lambda: "d2" in reports.reads)
        await eventually_async(lambda: web.book.seeded_day == "d2")
        assert web.book.handled == {"1002": 2} and web.book.missed == {}
        assert web.wallboard()["kpis"]["at"] == 100_100.0
    finally:
        await web.stop()
    assert reports.observers == []


async def eventually_async(predicate, timeout: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)
