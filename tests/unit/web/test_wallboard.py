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
from web.wallboard import FACT_KINDS, WallboardBook, WallboardFeed, apply_update

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


async def test_the_service_pushes_on_change_coalesced_and_at_each_cti_tick():
    bus = Bus()
    agents = [{"id": "1001", "name": "김상담", "skills": [{"queue": "sales", "penalty": 0}], "state": None}]
    live = [stats("sales", 0, 1, 0)]
    web = WebService(bus=bus, config=load_config(), agents=lambda: agents, queue_stats=lambda: live,
                     pause_reasons=lambda: ["break"], coalesce_seconds=0.05)
    await web.start()
    desk = bus.subscribe({"supervisor"})
    now = time.time()
    try:
        bus.publish(Message("call.ringing", {"call_id": "c9", "queue": "sales", "agent_id": "1001", "caller_num": "0103"}, frozenset({"queue:sales"})))
        bus.publish(Message("queue.stats", {"at": now, "queues": [stats("sales", 0, 1, 0)]}, frozenset({"queue:sales"})))  # per-queue copy: ignored
        bus.publish(Message("queue.stats", {"at": now + 1, "queues": [stats("sales", 0, 1, 0)]}, frozenset({"queue.stats"})))
        msg = await asyncio.wait_for(desk.get(), 2)  # the three in one push: the first is the full board
        assert msg.name == "wallboard.update" and msg.payload["at"] == now + 1 and msg.payload["full"]
        assert msg.payload["seq"] == 1 and "c9" in web.book.calls and msg.payload["kpis"] is None  # no report service: no KPI tiles
        assert msg.payload["agents"][0]["agent_id"] == "1001" and msg.payload["agents"][0]["status"] == "logged_out"
        assert desk.queue.empty() and web.updates == 1
        # a caller joins (a CTI change, no bus message): the waiting tile is pushed without a tick, as a delta
        live[0] = stats("sales", 0, 1, 0, waiting=1, callers=[{"call_id": "c10", "waited": 0}])
        web.on_change(None, now + 2)
        web.on_change(None, now + 2)  # coalesced with the first
        msg = await asyncio.wait_for(desk.get(), 2)
        assert msg.payload["seq"] == 2 and not msg.payload["full"] and "agents" not in msg.payload
        assert msg.payload["waiting"] == [{"call_id": "c10", "waited": 0, "queue": "sales"}]
        assert [q["waiting"] for q in msg.payload["queues"]] == [1]
        board = web.wallboard()  # the resync of a page: the full board at the last seq
        assert board["full"] and board["seq"] == web.feed.seq and board["waiting"][0]["call_id"] == "c10"
    finally:
        await web.stop()
    assert bus.subscriber_count == 1  # only the desk: the feed unsubscribed


def _board(agents: dict[str, str], waiting: list[str], at: float, **kw) -> dict:
    return {"at": at, "queues": [{"queue": "sales", "waiting": len(waiting)}, {"queue": "vip", "waiting": 0}],
            "waiting": [{"call_id": c, "queue": "sales"} for c in waiting],
            "agents": [{"agent_id": a, "status": st} for a, st in sorted(agents.items())], "abandoned": [], "kpis": None, **kw}


def test_the_delta_builder_sends_only_what_changed_and_the_page_rebuilds_the_board():
    feed = WallboardFeed()
    agents = {f"{1000 + i}": "ready" for i in range(2000)}
    first = feed.delta(_board(agents, [], 1.0))
    assert first["seq"] == 1 and len(first["agents"]) == 2000 and "waiting" not in first and "kpis" not in first  # still empty
    page, gap = apply_update(None, feed.full())
    assert not gap and page["seq"] == 1 and len(page["agents"]) == 2000
    # one agent answers, a caller waits, an agent leaves the directory, the KPIs arrive
    agents["1005"] = "on_call"
    del agents["1999"]
    d = feed.delta(_board(agents, ["c1"], 2.0, kpis={"at": 2.0, "queues": {}}))
    assert d == {"seq": 2, "at": 2.0, "full": False, "agents": [{"agent_id": "1005", "status": "on_call"}],
                 "agents_removed": ["1999"], "queues": [{"queue": "sales", "waiting": 1}],
                 "waiting": [{"call_id": "c1", "queue": "sales"}], "kpis": {"at": 2.0, "queues": {}}}
    # a push where only the queues may have changed leaves the agents out: unchanged
    d3 = feed.delta({"at": 3.0, "queues": _board({}, [], 3.0)["queues"], "waiting": []})
    assert d3 == {"seq": 3, "at": 3.0, "full": False, "queues": [{"queue": "sales", "waiting": 0}], "waiting": []}
    assert feed.delta(_board(agents, [], 4.0, kpis={"at": 2.0, "queues": {}})) == {"seq": 4, "at": 4.0, "full": False}  # nothing changed: a heartbeat
    for u in (d, d3):
        page, gap = apply_update(page, u)
        assert not gap
    page, gap = apply_update(page, {"seq": 4, "at": 4.0, "full": False})
    full = feed.full()
    assert not gap and page == full and len(full["agents"]) == 1999 and full["kpis"] == {"at": 2.0, "queues": {}}
    assert full["agents"][5] == {"agent_id": "1005", "status": "on_call"}
    assert apply_update(page, d)[0] is page  # a delta already in the board (a late one after a resync): ignored


def test_a_gap_in_seq_asks_for_the_full_snapshot_and_the_board_continues_from_it():
    feed = WallboardFeed()
    agents = {"1001": "ready", "1002": "ready"}
    page, _ = apply_update(None, {**feed.delta(_board(agents, [], 1.0)), "full": False})
    assert page is None  # a delta before any snapshot: the page loads the full one first
    page, gap = apply_update(None, feed.full())
    assert not gap
    agents["1001"] = "paused"
    lost = feed.delta(_board(agents, [], 2.0))  # never reaches the page (a dropped frame, an overflow)
    agents["1002"] = "on_call"
    after = feed.delta(_board(agents, [], 3.0))
    assert "1001" not in {a["agent_id"] for a in after["agents"]}  # the delta alone cannot repair the page
    same, gap = apply_update(page, after)
    assert gap and same is page  # seq 3 after 1: a gap → GET /api/web/wallboard
    page, gap = apply_update(page, feed.full())
    assert not gap and page["seq"] == 3 and [a["status"] for a in page["agents"]] == ["paused", "on_call"]
    assert lost["seq"] == 2 and apply_update(page, lost) == (page, False)


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


def test_the_incremental_push_carries_the_same_board_as_a_full_rebuild_at_every_step():
    """Issue 18 round five: a push rebuilds only the rows of the agents whose state, call or
    counts changed (the book tracks them). Random traffic on 40 agents: after every step the
    page fed by those deltas equals the board rebuilt from scratch and compared whole."""
    import random

    from web.wallboard import MAX_ABANDONED, abandoned_order

    rng = random.Random(5)
    inc, ref = WallboardBook(day_of=DAY), WallboardBook(day_of=DAY)
    inc_feed, ref_feed = WallboardFeed(), WallboardFeed()
    page = apply_update(None, inc_feed.full())[0]
    ids = [str(1000 + i) for i in range(40)]
    calls: list[str] = []
    now = 10.0
    sizes = []
    for step in range(600):
        now += 1
        r = rng.random()
        agent = rng.choice(ids)
        if r < 0.3:  # an agent's state, often with a call
            call = rng.choice(calls) if calls and rng.random() < 0.6 else None
            msg = ("agent.status", {"agent_id": agent, "status": rng.choice(["ready", "on_call", "paused"]),
                                    "current_call": call if rng.random() < 0.5 else None,
                                    "ringing_call": call if rng.random() < 0.3 else None})
        elif r < 0.55:  # a call appears or changes (a caller name arrives later: the row shows it)
            call = rng.choice(calls) if calls and rng.random() < 0.5 else f"c{step}"
            calls.append(call)
            msg = (rng.choice(["call.ringing", "call.updated", "call.answered"]),
                   {"call_id": call, "queue": "sales", "caller_num": f"010{step}", "caller_name": rng.choice([None, f"n{step}"])})
        elif r < 0.7 and calls:
            msg = ("call.ended", {"call_id": calls.pop(rng.randrange(len(calls)))})
        elif r < 0.85:  # facts: handled, missed, abandoned (a name afterwards, sometimes much later)
            cid = rng.choice(calls) if calls else f"c{step}"
            facts = _facts(cid, agent, now - 5, missed="no_answer" if rng.random() < 0.5 else None,
                           answered=rng.random() < 0.6, abandoned_after=3, name=rng.choice([None, "강고객"]))
            for book in (inc, ref):
                book.observe_facts(facts, now)
            msg = None
        else:
            msg = None
        if msg is not None:
            for book in (inc, ref):
                book.observe(msg[0], msg[1], now)
        if step == 300:
            now = 100_000.0  # the day rolls: every row's counts go back to 0
        if rng.random() < 0.5:  # a push (not after every change: changes pile up between pushes)
            d = inc_feed.delta(inc.changes(None, now))
            sizes.append(len(d.get("agents", ())))
            page, gap = apply_update(page, d)
            assert not gap
            ref_feed.delta(ref.snapshot([], now))
            want = ref_feed.full()
            assert page["agents"] == want["agents"], step
            assert page["abandoned"] == want["abandoned"], step
            assert page["abandoned"] == sorted(inc.abandoned.values(), key=abandoned_order)[:MAX_ABANDONED], step
    assert max(sizes) < 40 and sum(sizes) > 0  # deltas, not the whole grid each time (but the day's roll)


def test_a_caller_name_that_arrives_later_reaches_the_agents_row():
    book, feed = WallboardBook(day_of=DAY), WallboardFeed()
    book.observe("call.ringing", {"call_id": "c1", "queue": "sales", "caller_num": "0101"}, 1)
    book.observe("agent.status", {"agent_id": "1001", "status": "on_call", "current_call": "c1"}, 1)
    first = feed.delta(book.changes(None, 2))
    assert first["agents"][0]["call"]["caller_name"] is None
    book.observe("call.updated", {"call_id": "c1", "caller_name": "홍길동"}, 3)  # the CRM answered
    second = feed.delta(book.changes(None, 4))
    assert second["agents"][0]["call"]["caller_name"] == "홍길동"
    assert "agents" not in feed.delta(book.changes(None, 5))  # nothing since


def test_abandoned_calls_added_or_changed_go_out_alone_and_a_scope_cut_stays_exact():
    from auth.tokens import Principal
    from auth.scope import wallboard_in_scope
    from web.wallboard import MAX_ABANDONED

    feed = WallboardFeed()

    def entry(i: int, name: str | None = None) -> dict:
        return {"call_id": f"c{i}", "caller_num": "0101", "caller_name": name, "queue": ("sales", "vip")[i % 2],
                "waited": 3.0, "ended_at": float(i)}

    def newest(ids: list[int], **names: str) -> list[dict]:
        return [entry(i, names.get(f"c{i}")) for i in sorted(ids, reverse=True)[:MAX_ABANDONED]]

    sales = Principal("user:s", "supervisor", queues=frozenset({"sales"}))
    page = apply_update(None, {**feed.full(), "agents": [], "queues": []})[0]
    scoped = apply_update(None, {**wallboard_in_scope(sales, feed.full(), []), "agents": [], "queues": []})[0]
    steps = [
        newest([1]),
        newest([1, 2, 3]),  # two on top
        newest([1, 2, 3], c3="강고객"),  # a name filled in
        newest([1, 2, 3, 5], c3="강고객"),
        newest([1, 2, 3, 4, 5], c3="강고객"),  # one recorded late: in the middle of the list
        newest(list(range(1, 200)), c3="강고객"),  # 194 more
        newest(list(range(1, 204)), c3="강고객"),  # four on top, the four oldest fall off the newest 200
        [],  # a new day
    ]
    kinds = []
    for i, lst in enumerate(steps):
        d = feed.delta({"at": float(i), "abandoned": lst})
        kinds.append("delta" if "abandoned_changed" in d else "whole" if "abandoned" in d else "-")
        page, gap = apply_update(page, d)
        assert not gap and page["abandoned"] == lst == feed.full()["abandoned"]
        scoped, gap = apply_update(scoped, wallboard_in_scope(sales, d, []))  # the same cut as of the full list
        assert not gap and scoped["abandoned"] == [e for e in lst if e["queue"] == "sales"]
    assert kinds == ["whole", "delta", "delta", "delta", "delta", "delta", "delta", "whole"]
    assert d["abandoned"] == [] and feed.delta({"at": 9.0, "abandoned": []}) == {"seq": 9, "at": 9.0, "full": False}


async def test_a_tick_reads_only_the_new_agents_views_from_the_directory():
    directory = {"1001": "김상담", "1002": "이상담"}
    viewed: list[str] = []

    def view(agent_id: str) -> dict:
        viewed.append(agent_id)
        return {"id": agent_id, "name": directory[agent_id], "state": None}

    web = WebService(bus=Bus(), config=load_config(), agents=lambda: [view(a) for a in sorted(directory)],
                     queue_stats=lambda: [], pause_reasons=lambda: [], agent_ids=lambda: list(directory), agent_view=view)
    web._seed_agents()
    assert sorted(web.book.agents) == ["1001", "1002"] and sorted(viewed) == ["1001", "1002"]
    viewed.clear()
    directory["1003"] = "박상담"
    del directory["1001"]
    d = web.feed.delta(web._snapshot({"agents", "queues", "kpis"}, [], 5.0))
    assert viewed == ["1003"]  # the others' views are not rebuilt
    assert sorted(web.book.agents) == ["1002", "1003"]
    assert [a["agent_id"] for a in d["agents"]] == ["1002", "1003"]  # the first push: every row
    d = web.feed.delta(web._snapshot({"agents", "queues", "kpis"}, [], 6.0))
    assert "agents" not in d and "agents_removed" not in d
    directory.pop("1002")
    d = web.feed.delta(web._snapshot({"agents", "queues", "kpis"}, [], 7.0))
    assert d["agents_removed"] == ["1002"] and "agents" not in d


def test_the_push_window_is_the_configs(tmp_path: Path):
    shipped = load_config()
    assert shipped.wallboard.push_window_seconds == 0.1  # issue 18 round five (0.2 before)
    assert WebService(bus=Bus(), config=shipped, agents=lambda: [], queue_stats=lambda: [], pause_reasons=lambda: []).coalesce == 0.1
    raw = yaml.safe_load(Path("web/config.yaml").read_text(encoding="utf-8"))
    raw["wallboard"]["push_window_seconds"] = 0.05
    (tmp_path / "web.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    web = WebService(bus=Bus(), config=load_config(tmp_path / "web.yaml"), agents=lambda: [], queue_stats=lambda: [],
                     pause_reasons=lambda: [])
    assert web.coalesce == 0.05
    raw["wallboard"]["push_window_seconds"] = 0
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(WebConfigError):
        load_config(tmp_path / "bad.yaml")


def test_the_newest_200_abandoned_calls_whatever_order_they_are_recorded_in():
    import random

    from web.wallboard import MAX_ABANDONED, abandoned_order

    rng = random.Random(7)
    book = WallboardBook(day_of=DAY)
    ends = list(range(1, 700))
    rng.shuffle(ends)  # recorded out of order: older calls keep arriving after newer ones
    for n, end in enumerate(ends):
        book.observe_facts([Fact(f"v:c{end}:1:left", "visit.left", float(end), float(end), f"c{end}", "sales", None,
                                 {"outcome": "abandoned", "wait": 3.0})], 10.0)
        if n % 37 == 0 or n == len(ends) - 1:
            got = book.snapshot([], 10.0)["abandoned"]
            assert got == sorted(book.abandoned.values(), key=abandoned_order)[:MAX_ABANDONED]
    assert len(got) == MAX_ABANDONED and got[0]["ended_at"] == 699.0 and got[-1]["ended_at"] == 500.0
