"""Smoke runs of the benchmarks at tiny sizes, so they don't rot: the AMI ingest, FastAGI and
broker benchmarks and the runner itself. One file per heavier benchmark beside this one
(test_smoke_*.py), so the test runner spreads them over its workers.

These check that each benchmark runs end to end (child processes, fake Asterisk,
websocket clients, AGI emulator) and that its counts add up. They assert NOTHING
about timing: figures at these sizes mean nothing, and the machine is shared.
"""

from __future__ import annotations

import pytest

from benchmarks.amigen import DELIM, CaptureMix
from tests.benchmarks.figures import figures_ok as _figures_ok


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


def test_broker_hop_smoke() -> None:
    """issue 19: the broker benchmark runs end to end against the real local NATS."""
    from benchmarks import broker_hop
    from tests.broker import broker_url

    broker_url()  # skip (fail in CI) without a broker
    res = broker_hop.run("smoke")
    _figures_ok(res)
    d = res["details"]
    assert d["baseline"]["n"] == d["nats"]["n"] == broker_hop.SIZES["smoke"]["pops"]
