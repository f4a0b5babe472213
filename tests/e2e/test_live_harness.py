"""The live-Asterisk tests must not rot while no Asterisk is around: run them, in their
own pytest process, against the PBX emulator started as a separate process on real
ports — exactly as they would run against `CALLCORE_LIVE_AMI=<a real Asterisk>`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.skipif(bool(os.environ.get("CALLCORE_LIVE_AMI")), reason="a real Asterisk is configured: the live tests run on it")
def test_live_tests_pass_against_a_standalone_emulator(tmp_path):
    ami, agi = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLCORE_")}
    pbx = subprocess.Popen(
        [sys.executable, "-m", "tests.pbxsim", "--ami-port", str(ami), "--agi", f"127.0.0.1:{agi}",
         "--prompt-seconds", "0.2", "--time-scale", "0.25", "--monitor-dir", str(tmp_path / "monitor")],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.monotonic() + 10
        while True:  # wait until the emulator's AMI port accepts connections
            try:
                socket.create_connection(("127.0.0.1", ami), timeout=0.5).close()
                break
            except OSError:
                assert pbx.poll() is None and time.monotonic() < deadline, "emulator did not start"
                time.sleep(0.05)
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/e2e/test_live_asterisk.py",
             "tests/e2e/test_live_transfers.py"],
            cwd=ROOT,
            env={**env, "CALLCORE_LIVE_AMI": f"127.0.0.1:{ami}", "CALLCORE_LIVE_AGI_BIND": f"127.0.0.1:{agi}"},
            capture_output=True, text=True, timeout=300,
        )
        # every live test ran and passed (none skipped): test_live_asterisk.py's 3 (resync, IVR pop, post-call
        # survey) and the 5 of test_live_transfers.py (blind transfer to a queue / to an agent, hold, attended,
        # click-to-call)
        assert run.returncode == 0 and "skipped" not in run.stdout and " passed" in run.stdout, run.stdout + run.stderr
        assert int(run.stdout.rsplit(" passed", 1)[0].split()[-1]) >= 8, run.stdout
    finally:
        pbx.terminate()
        pbx.wait(timeout=10)
