"""The wallboard's live staffing off the event loop (issue 18): with a runner, ``staffing_now``
never computes Erlang C/A itself; it answers the interval's last figure (or ``pending``) and asks
the runner, at most every ``STAFFING_REFRESH`` seconds per queue. The real runner (a child
process) gives the same numbers as the inline computation."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from reports import formulas as fm
from reports.service import LiveCounters, ReportConfig, ReportService, _staffing_dict
from reports.staffing import staffing_for_interval
from tests.unit.reports import dataset as ds


def _today(queue: str = "sales") -> fm.QueueMetrics:
    m = fm.QueueMetrics(queue, sl_seconds=20, sl_formula="answered_over_offered")
    return m


def _counters(arrivals: int, now: float) -> LiveCounters:
    live = LiveCounters(ReportConfig(timezone="Asia/Seoul"))
    slot = now - (now % 900)
    live._arrivals[(slot, "sales")] = [slot + i for i in range(arrivals)]
    return live


@pytest.fixture
def never_inline(monkeypatch):
    """These tests are about the runner path: no interval is small enough to compute inline."""
    monkeypatch.setattr(LiveCounters, "INLINE_ERLANGS", 0.0)
    monkeypatch.setattr(LiveCounters, "INLINE_ERLANGS_C", 0.0)


def test_with_a_runner_the_figure_is_never_computed_inline_and_is_throttled(never_inline) -> None:
    now = ds.t("09:10:00")
    live = _counters(6, now)
    today = _today()
    today.handled, today.talk_total = 1, 98.0  # AHT 98 s
    calls: list[tuple[dict[str, Any], Any]] = []
    live.staffing_runner = lambda args, done: calls.append((args, done)) or True

    first = live.staffing_now("sales", today, now)
    assert first["pending"] is True and first["agents_needed_erlang_c"] is None and first["arrived"] == 6
    assert len(calls) == 1
    live.staffing_now("sales", today, now + 1)  # within the refresh: no second computation
    assert len(calls) == 1

    args, done = calls[0]
    done(_staffing_dict(args))  # the runner's answer
    got = live.staffing_now("sales", today, now + 2)
    assert got["agents_needed_erlang_c"] == staffing_for_interval(**args).agents_erlang_c
    assert "pending" not in got

    live._arrivals[(now - now % 900, "sales")].append(now + 3)  # a new arrival: new inputs, stale figure
    stale = live.staffing_now("sales", today, now + 4)
    assert stale["stale"] is True and stale["arrived"] == 7 and len(calls) == 1
    live.staffing_now("sales", today, now + 2 + LiveCounters.STAFFING_REFRESH)
    assert len(calls) == 2  # refreshed once the refresh interval is over


def test_a_failed_computation_is_retried_at_the_next_tick(never_inline) -> None:
    now = ds.t("09:10:00")
    live = _counters(6, now)
    calls: list[Any] = []
    live.staffing_runner = lambda args, done: calls.append(done) or True
    live.staffing_now("sales", _today(), now)
    calls[0](None)
    live.staffing_now("sales", _today(), now + 1)
    assert len(calls) == 2


async def test_the_staffing_process_gives_the_inline_numbers() -> None:
    svc = ReportService(repository=None, config=ReportConfig(timezone="Asia/Seoul"), rollup_every=None)  # type: ignore[arg-type]
    args = dict(interval_seconds=900, offered=30, aht=180.0, target_sl_pct=80, target_seconds=20,
                total_wait_seconds=600, abandons=3)
    got: list[Any] = []
    try:
        assert svc._run_staffing(args, got.append)
        assert not svc._run_staffing(args, got.append)  # one at a time
        for _ in range(600):
            if got:
                break
            await asyncio.sleep(0.05)
    finally:
        svc._stop_staffing()
    assert got == [staffing_for_interval(**args).to_dict()]


def test_small_intervals_are_computed_inline_even_with_a_runner() -> None:
    """Under half an erlang (any model), or Erlang C alone (no abandons) under 500 erlangs, the
    figure costs well under a millisecond: no child process is started for it."""
    now = ds.t("09:10:00")
    calls: list[Any] = []
    live = _counters(6, now)
    live.staffing_runner = lambda args, done: calls.append(done) or True
    today = _today()
    today.handled, today.talk_total = 1, 98.0  # 6 calls × 98 s in 15 min: 0.65 erlang, no abandons
    got = live.staffing_now("sales", today, now)
    assert calls == [] and "pending" not in got and got["agents_needed_erlang_c"]
    assert got == _counters(6, now).staffing_now("sales", today, now)  # the same as with no runner

    big = _counters(60, now)  # 60 calls × 98 s with abandons: 6.5 erlangs, Erlang A → the runner
    big.staffing_runner = lambda args, done: calls.append(done) or True
    today.abandoned = 5
    today.wait_unanswered_total = 300.0
    assert big.staffing_now("sales", today, now)["pending"] is True and len(calls) == 1
