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
from web.wallboard import WallboardBook

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


def test_abandoned_today_handled_and_missed_per_agent_and_the_current_caller():
    book = WallboardBook(day_of=DAY)
    book.observe("agent.status", {"agent_id": "1001", "name": "김상담", "status": "ready", "current_call": None}, 10)
    book.observe("call.ringing", {"call_id": "c1", "agent_id": "1001", "caller_num": "0101", "caller_name": "홍길동", "queue": "sales"}, 11)
    book.observe("call.missed", {"call_id": "c1", "agent_id": "1001", "reason": "no_answer"}, 12)
    book.observe("call.missed", {"call_id": "c1", "agent_id": "1002", "reason": "answered_elsewhere"}, 12)
    book.observe("call.answered", {"call_id": "c1", "agent_id": "1001", "queue": "sales", "waited": 5}, 13)
    book.observe("call.answered", {"call_id": "c1", "agent_id": "1001", "queue": "sales", "waited": 5}, 14)  # repeated
    book.observe("agent.status", {"agent_id": "1001", "name": "김상담", "status": "on_call", "current_call": "c1"}, 13)
    snap = book.snapshot([stats("sales", 1, 0, 1, callers=[{"call_id": "c2", "waited": 3}, {"call_id": "c3", "waited": 9}])], 15)
    (agent,) = snap["agents"]
    assert agent["handled_today"] == 1 and agent["missed_today"] == 1
    assert agent["call"]["caller_name"] == "홍길동" and agent["call"]["queue"] == "sales"
    assert [c["call_id"] for c in snap["waiting"]] == ["c3", "c2"] and snap["waiting"][0]["queue"] == "sales"
    book.observe("call.ended", {"call_id": "c4", "queue": "sales", "outcome": "abandoned", "caller_num": "0102", "waited": 40}, 20)
    book.observe("call.ended", {"call_id": "c1", "queue": "sales", "outcome": "answered"}, 21)
    snap = book.snapshot([], 22)
    assert [a["call_id"] for a in snap["abandoned"]] == ["c4"] and snap["abandoned"][0]["waited"] == 40
    assert "c1" not in book.calls
    # the next day starts empty
    snap = book.snapshot([], 100_001)
    assert snap["abandoned"] == [] and snap["agents"][0]["handled_today"] == 0


async def test_the_service_pushes_wallboard_update_after_each_cti_tick_and_never_on_its_own():
    bus = Bus()
    agents = [{"id": "1001", "name": "김상담", "skills": [{"queue": "sales", "penalty": 0}], "state": None}]
    web = WebService(bus=bus, config=load_config(), agents=lambda: agents, queue_stats=lambda: [], pause_reasons=lambda: ["break"])
    await web.start()
    desk = bus.subscribe({"supervisor"})
    now = time.time()
    try:
        bus.publish(Message("call.ended", {"call_id": "c9", "queue": "sales", "outcome": "abandoned", "caller_num": "0103"}, frozenset({"queue:sales"})))
        bus.publish(Message("queue.stats", {"at": now, "queues": [stats("sales", 0, 1, 0)]}, frozenset({"queue:sales"})))  # per-queue copy: ignored
        bus.publish(Message("queue.stats", {"at": now + 1, "queues": [stats("sales", 0, 1, 0)]}, frozenset({"queue.stats"})))
        msg = await asyncio.wait_for(desk.get(), 2)
        assert msg.name == "wallboard.update" and msg.payload["at"] == now + 1
        assert msg.payload["abandoned"][0]["call_id"] == "c9"
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
