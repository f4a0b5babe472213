"""Smoke run of the screen-pop benchmark (benchmarks/pop_latency.py).
What every smoke run checks, and what it never does
(timing): tests/benchmarks/figures.py.
"""

from __future__ import annotations

from tests.benchmarks.figures import figures_ok as _figures_ok


def test_pop_latency_smoke() -> None:
    from benchmarks import pop_latency

    res = pop_latency.run("smoke")
    _figures_ok(res)
    cfg = res["details"]["sizes"]
    for kind in ("callcore", "floor"):
        r = res["details"][kind]
        assert r["ws_clients"] == cfg["agents"], kind
        assert len(r["sequential_ms"]) == cfg["pops"] and r["lost"] == 0, kind  # pops received == pops sent
        assert r["wrong_agent"] == 0 and r["duplicates"] == 0, kind  # ... and to the right agent
        assert [len(b) for b in r["bursts_ms"]] == [cfg["burst"]] * cfg["bursts"] and r["burst_lost"] == 0, kind
