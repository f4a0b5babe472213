"""What every benchmark smoke run (tests/benchmarks/test_smoke*.py) checks of its figures.

These check that each benchmark runs end to end (child processes, fake Asterisk,
websocket clients, AGI emulator) and that its counts add up. They assert NOTHING
about timing: figures at these sizes mean nothing, and the machine is shared.
"""

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
