"""What every benchmark smoke run checks of its figures (no timing: see test_smoke.py)."""

from __future__ import annotations

import math

from benchmarks.common import Figure, table


def figures_ok(res: dict) -> None:
    assert res["figures"], "no figures"
    for f in res["figures"]:
        assert isinstance(f, Figure)
        assert f.verdict in ("PASS", "MISS", "info")
        assert f.value is None or not math.isnan(f.value), f
    assert table(res["figures"])
