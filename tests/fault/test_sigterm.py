"""Fault test (issue 12 item d): SIGTERM of a real callcore process.

A real ``callcore serve`` (subprocess, SQLite in a temp data dir) connected over loopback
to the PBX emulator (``python -m tests.pbxsim``, another subprocess). Once ``/readyz`` says
ready, the process gets SIGTERM: it must exit 0 within a bound, say it shut down, and leave
the ended-call journal empty (nothing in flight left behind). Loopback only, bounded.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def readyz(port: int):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
            return json.loads(r.read())
    except Exception:
        return None


def test_sigterm_of_a_real_process_exits_0_and_flushes(tmp_path):
    ami, agi, http = free_port(), free_port(), free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CALLCORE_DATA_DIR": str(tmp_path / "data")}
    env.pop("CALLCORE_DATABASE_URL", None)
    pbx = subprocess.Popen(
        [sys.executable, "-m", "tests.pbxsim", "--ami-port", str(ami), "--agi", f"127.0.0.1:{agi}"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    log = (tmp_path / "callcore.log").open("w+")
    cc = None
    try:
        wait_for(lambda: _connectable(ami), 20, "the emulator's AMI port")
        cc = subprocess.Popen(
            [sys.executable, "-m", "callcore.cli", "serve", "--http-port", str(http), "--agi-port", str(agi),
             "--ami-host", "127.0.0.1", "--ami-port", str(ami)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        wait_for(lambda: (readyz(http) or {}).get("ready"), 40, "callcore ready (AMI up)")
        t0 = time.monotonic()
        cc.send_signal(signal.SIGTERM)
        rc = cc.wait(timeout=20)
        took = time.monotonic() - t0
        log.seek(0)
        out = log.read()
        assert rc == 0, out[-3000:]
        assert "shutting down (signal received)" in out
        print(f"\nSIGTERM → exit {rc} in {took:.2f} s")
        journal = tmp_path / "data" / "journal.sqlite3"
        if journal.exists():
            import sqlite3
            n = sqlite3.connect(journal).execute("SELECT count(*) FROM call_records").fetchone()[0]
            assert n == 0
    finally:
        reap(cc, pbx)
        log.close()


def reap(*procs) -> None:
    """Kill what a test left running (a failed assertion must not leave servers behind)."""
    for p in procs:
        if p is not None and p.poll() is None:
            p.kill()
            p.wait(timeout=10)


def _connectable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False
