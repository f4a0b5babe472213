"""Smoke runs of the reports and recording benchmarks: reports and recording search on big
stores, recording post-processing.
What every smoke run checks, and what it never does
(timing): tests/benchmarks/figures.py.
"""

from __future__ import annotations

import pytest

from tests.benchmarks.figures import figures_ok as _figures_ok


@pytest.mark.parametrize("gen", ["server", "copy"])
def test_reports_smoke(gen: str) -> None:
    """reports benchmark (issue 18): generates a small center inside a throwaway PostgreSQL
    database (``server``) or here and COPYs it (``copy``), builds the rollups (the Python fold and
    the set-based build of one day: the same rows) and reads the reports — rollups and facts agree."""
    import asyncio

    import asyncpg

    from benchmarks import reports_bench

    async def reachable() -> bool:
        try:
            conn = await asyncio.wait_for(asyncpg.connect(reports_bench.PG_DSN), 3)
        except (OSError, asyncio.TimeoutError, asyncpg.PostgresError):
            return False
        await conn.close()
        return True

    if not asyncio.run(reachable()):
        pytest.skip(f"no PostgreSQL at {reports_bench.PG_DSN} (CALLCORE_BENCH_PG_DSN)")
    res = reports_bench.run("smoke", gen)
    _figures_ok(res)
    d = res["details"]
    cfg = reports_bench.SIZES["smoke"]
    if gen == "copy":
        assert d["facts"] == sum(1 for _ in reports_bench.generate(cfg["days"], cfg["calls_per_day"], cfg["agents"],
                                                                  cfg["queues"]))
    else:  # the same draws inside PostgreSQL: about as many facts a call, every agent's day
        assert 7 * cfg["days"] * cfg["calls_per_day"] < d["facts"] < 11 * cfg["days"] * cfg["calls_per_day"]
    assert d["build_pairs"] and all(p["equal"] for p in d["build_pairs"])
    assert len(d["build_s"]) == cfg["days"]
    assert d["rows"]["day_queue"] == cfg["queues"] and d["rows"]["month_agent"] == cfg["agents"]
    # the rolled-up reports give the numbers the facts give
    assert d["rows"]["day_queue_facts_equal"] == 1 and d["rows"]["month_agent_facts_equal"] == 1


def test_recording_search_smoke() -> None:
    """recording search benchmark (issues 13, 18): generates and loads a tiny center (PostgreSQL when
    reachable, SQLite always), runs every filter combination through the search API's query and
    EXPLAINs each. Counts and plans only: the facet filters walk the facet index, nothing times."""
    from benchmarks import recording_search as rs

    res = rs.run("smoke")
    _figures_ok(res)
    d = res["details"]
    names = [n for n, _ in rs._combos(rs.SIZES["smoke"]["rows"])]
    for store in ("sqlite", "postgresql"):
        if store not in d or isinstance(d[store], str):
            continue
        combos = d[store]["combos"]
        assert set(names) <= set(combos) and combos["_baseline"]["ms"]["n"] == rs.SIZES["smoke"]["rounds"]
        assert all(combos[n]["ms"]["n"] == rs.SIZES["smoke"]["rounds"] and combos[n]["plan"] for n in names)
        assert combos["latest page (no filter)"]["rows_per_page"] == rs.PAGE  # 1,000+ rows loaded: a full page
        assert "ix_recording_facets_lookup" in combos["agent (newest first)"]["indexes"], combos["agent (newest first)"]
    rows = list(rs.generate(300))
    assert len(rows) == 300 and [r[0][0] for r in rows] == list(range(1, 301))
    assert all(f[0] == r[0][0] for r in rows for f in r[1]) and sum(len(r[1]) for r in rows) > 300


@pytest.mark.slow
def test_recording_processing_smoke() -> None:
    from benchmarks import recording_processing

    res = recording_processing.run("smoke")
    _figures_ok(res)
    d = res["details"]
    for target in ("mp3", "opus"):
        for base, cc in d["runs"][target]:
            # both sides processed the same audio, and both wrote something
            assert base["audio_seconds"] == pytest.approx(cc["audio_seconds"], abs=0.01)
            assert base["bytes_out"] > 0 and cc["bytes_out"] > 0
    assert d["memory"]["long"]["callcore"]["audio_seconds"] == pytest.approx(d["memory"]["long"]["seconds"], abs=0.01)
