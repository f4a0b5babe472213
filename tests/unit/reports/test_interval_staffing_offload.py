"""Interval reports' Erlang C/A off the event loop in the server (issue 18, round three): with
``offload_staffing`` the wallboard's KPI loop no longer runs Erlang A on the loop; the rows are
the same as computed inline."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

import reports.service as rs
from tests.unit.reports.test_store import clock, loaded, service  # noqa: F401 (fixtures)

pytestmark = pytest.mark.db


async def test_interval_staffing_is_computed_in_the_staffing_executor_with_the_inline_numbers(loaded, monkeypatch):  # noqa: F811
    inline = await loaded.queue_report("2026-12-02", "2026-12-03", "15min")
    assert any(r.get("staffing") for r in inline)

    threads: list[int] = []
    compute = rs._staffing_dict

    def recorded(args):
        threads.append(threading.get_ident())
        return compute(args)

    monkeypatch.setattr(rs, "_staffing_dict", recorded)
    monkeypatch.setattr(rs, "_staffing_executor", lambda: ThreadPoolExecutor(max_workers=1))
    loaded.live.staffing_runner = loaded._run_staffing  # what start(offload_staffing=True) sets
    offloaded = await loaded.queue_report("2026-12-02", "2026-12-03", "15min")
    assert offloaded == inline
    assert threads and threading.get_ident() not in threads  # never on the loop's thread
    assert len(threads) == sum(1 for r in inline if r.get("staffing"))
