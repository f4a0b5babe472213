"""Smoke run of the wallboard freshness benchmark.
What every smoke run checks, and what it never does
(timing): tests/benchmarks/figures.py.
"""

from __future__ import annotations

import pytest

from tests.benchmarks.figures import figures_ok as _figures_ok


@pytest.mark.slow
def test_wallboard_freshness_smoke() -> None:
    from benchmarks import wallboard_freshness

    res = wallboard_freshness.run("smoke")
    _figures_ok(res)
    d = res["details"]
    assert d["server"] == "container"  # the real composition root, not the fallback pieces
    assert d["supervisors"] == d["sizes"]["supervisors"] and d["ws_clients"] == d["sizes"]["agents"]
    # every event reached every supervisor's tile exactly once (or is counted as missing)
    assert len(d["samples_ms"]) + d["missing"] == d["sizes"]["events"] * d["sizes"]["supervisors"]
    assert d["updates"] > 0
    assert d["updates"] > d["full_updates"]  # deltas, not a full snapshot every time (issue 18)
