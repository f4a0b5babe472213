"""Smoke runs of the benchmarks at tiny sizes, so they don't rot.

These check that each benchmark runs end to end (child processes, fake Asterisk,
websocket clients, AGI emulator) and that its counts add up. They assert NOTHING
about timing: figures at these sizes mean nothing, and the machine is shared.
"""

from __future__ import annotations

import math

import pytest

from benchmarks.amigen import DELIM, CaptureMix
from benchmarks.common import Figure, table


def _figures_ok(res: dict) -> None:
    assert res["figures"], "no figures"
    for f in res["figures"]:
        assert isinstance(f, Figure)
        assert f.verdict in ("PASS", "MISS", "info")
        assert f.value is None or not math.isnan(f.value), f
    assert table(res["figures"])


def test_capture_mix_copies_have_fresh_ids() -> None:
    mix = CaptureMix()
    a, b = mix.copy(0), mix.copy(1)
    assert a.count(DELIM) == b.count(DELIM) == mix.frames_per_copy
    assert a != b
    assert b"Uniqueid: 2000000000." in a and b"Uniqueid: 2000000001." in b
    assert b"Uniqueid: 2000000000." not in b
    assert "홍길동".encode() in a  # UTF-8 names survive the templating
    chunks = list(mix.stream(mix.frames_per_copy + 7))
    assert sum(c.count(DELIM) for c in chunks) == mix.frames_per_copy + 7


def test_ami_ingest_smoke() -> None:
    from benchmarks import ami_ingest

    res = ami_ingest.run("smoke")
    _figures_ok(res)
    d = res["details"]
    n = d["sizes"]["frames"]
    for kind in ("panoramisk", "callcore"):
        for r in d["throughput"][kind]:
            assert r["frames"] == n, (kind, r["frames"], n)  # frames processed == frames sent
    cc = d["throughput"]["callcore"][0]
    assert cc["decode_errors"] == 0
    assert cc["dropped_noise"] > 0 and cc["events_delivered"] > 0 and cc["notifications"] > 0
    mem = d["memory"]
    assert mem["frames"] == d["sizes"]["memory_frames"]
    assert mem["live_calls"] <= 5  # every replayed call ends
    for kind in ("callcore", "panoramisk"):
        for b in d["burst"][kind]:
            assert b["frames"] == b["expected"], (kind, b)


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


def test_fastagi_smoke() -> None:
    from benchmarks import fastagi

    res = fastagi.run("smoke")
    _figures_ok(res)
    d = res["details"]
    script = d["script"]
    agi_lines = [x for k, x in script if k == "agi"]
    assert agi_lines[0] == "ANSWER"
    assert [k for k, _ in script].count("http") == 1  # the CRM lookup
    assert sum(1 for x in agi_lines if x.startswith("SET VARIABLE")) >= 3
    for kind in ("panoramisk", "callcore"):
        run = d["runs"][kind][0]
        t = run["throughput"]
        assert t["sessions"] > 0 and t["failed"] == 0, kind
        assert t["commands"] == t["sessions"] * len(agi_lines), kind  # every session ran the whole script
        c = run["concurrent"]
        assert c["sessions"] == d["sizes"]["sessions"] and c["failed"] == 0, kind
        assert c["server_ms"]["all_ms"]["n"] == c["commands"], kind  # every command timed server-side
        p = run["park"]
        assert p["parked"] == p["completed"] == d["sizes"]["park"], kind


@pytest.mark.parametrize("argv", [["--only", "nope"]])
def test_cli_rejects_unknown_benchmark(argv: list[str]) -> None:
    from benchmarks.__main__ import main

    with pytest.raises(SystemExit):
        main(argv)


def test_kb_search_smoke() -> None:
    """kb search benchmark (issue 17): builds the corpus, every query answers, the sample's hits are there."""
    from benchmarks import kb_search

    res = kb_search.run("smoke")
    _figures_ok(res)
    d = res["details"]
    assert d["articles"] == kb_search.SIZES["smoke"]["articles"]
    assert d["summary"]["n"] == len(kb_search.QUERIES)
    assert d["hits"]["환불해주세요"] > 0 and d["hits"]["How do I get a refund?"] > 0
    # both stores (PostgreSQL unless no server is reachable, which the figures then say), each
    # with its under-load run: searches answered during pops, marks and edits, none failed
    assert set(d["stores"]) == {"sqlite", "postgresql"} or "postgresql_skipped" in d
    for store, r in d["stores"].items():
        assert r["articles"] == kb_search.SIZES["smoke"]["articles"], store
        assert r["hits"]["환불해주세요"] > 0, store
        for run in ("load", "load_baseline"):
            assert r[run]["counts"]["errors"] == 0, (store, run, r[run]["errors"])
            assert r[run]["counts"]["searches"] == r[run]["summary"]["n"] > 0, (store, run)
        assert r["load"]["counts"]["pops"] > 0 and r["load"]["counts"]["marks"] > 0, store


def test_reports_smoke() -> None:
    """reports benchmark (issue 18): generates and COPYs a small center into a throwaway
    PostgreSQL database, builds the rollups and reads the reports — rollups and facts agree."""
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
    res = reports_bench.run("smoke")
    _figures_ok(res)
    d = res["details"]
    cfg = reports_bench.SIZES["smoke"]
    assert d["facts"] == sum(1 for _ in reports_bench.generate(cfg["days"], cfg["calls_per_day"], cfg["agents"], cfg["queues"]))
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


def test_broker_hop_smoke() -> None:
    """issue 19: the broker benchmark runs end to end against the real local NATS."""
    from benchmarks import broker_hop
    from tests.broker import broker_url

    broker_url()  # skip (fail in CI) without a broker
    res = broker_hop.run("smoke")
    _figures_ok(res)
    d = res["details"]
    assert d["baseline"]["n"] == d["nats"]["n"] == broker_hop.SIZES["smoke"]["pops"]


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


@pytest.mark.slow
def test_cluster_capacity_smoke() -> None:
    """issue 19: two instances vs one — FastAGI spread over two servers, pops through two real
    Containers on PostgreSQL + the local NATS with the desks split; every count adds up."""
    from benchmarks import cluster_capacity as cc
    from tests.broker import broker_url

    broker_url()  # skip (fail in CI) without a broker
    res = cc.run("smoke")
    _figures_ok(res)
    d = res["details"]
    for rnd in d["agi"]:
        assert rnd["one"]["servers"] == 1 and rnd["two"]["servers"] == 2
        assert len(rnd["two"]["per_server"]) == 2 and all(n > 0 for n in rnd["two"]["per_server"])  # both served
        assert sum(rnd["two"]["per_server"]) == rnd["two"]["sessions"] and rnd["one"]["per_server"] == [rnd["one"]["sessions"]]
        for k in ("one", "two"):
            assert rnd[k]["failed"] == 0 and rnd[k]["sessions"] > 0, (k, rnd[k])
    if "pop_skipped" in d:
        pytest.skip(d["pop_skipped"])
    cfg = cc.SIZES["smoke"]["pop"]
    for rnd in d["pop"]:
        assert rnd["one"]["roles"] == ["single"] and rnd["two"]["roles"] == ["holder", "standby"]
        for k in ("one", "two"):
            r = rnd[k]
            # desks connected (the load's count is cumulative over its connects), none failed
            assert r["connect"][-1]["connected"] == r["ws_clients"] == cfg["agents"] and not any(c["failed"] for c in r["connect"]), k
            assert r["sequential_ms"]["n"] == cfg["pops"] and r["lost"] == 0, k  # every pop received ...
            assert r["wrong_agent"] == 0 and r["duplicates"] == 0 and r["burst_lost"] == 0, k  # ... once, on the right desk
            assert r["ami_connections"] == 1, k  # one AMI consumer, the standby never logs in
        assert [c["connected"] for c in rnd["two"]["connect"]] == [cfg["agents"] // 2, cfg["agents"]]  # half on each instance
