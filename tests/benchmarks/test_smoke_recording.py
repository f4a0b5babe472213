"""Smoke run of the recording post-processing benchmark.

These check that each benchmark runs end to end (child processes, fake Asterisk,
websocket clients, AGI emulator) and that its counts add up. They assert NOTHING
about timing: figures at these sizes mean nothing, and the machine is shared.
"""

from __future__ import annotations

import pytest

from tests.benchmarks.figures import figures_ok as _figures_ok


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
