"""Fault test (issue 12 item b): ``kill -9`` of a real callcore process while calls are going on.

The PBX emulator (``python -m tests.pbxsim``) and ``callcore serve`` (SQLite in a temp data dir)
run as separate processes over loopback. Three callers reach agents 1001–1003 (static
members of ``sales``, answering at once) and talk; callcore is killed with SIGKILL while every one is
talking; the callers hang up while callcore is dead; callcore is started again on the same
data directory. Every call must then be in the call history exactly once, answered, with the
queue and agent it had — the live-call journal (journal/live.py) and the first resync's
reconciliation. Bounded: a few calls, loopback only, well under a minute.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.fault.test_sigterm import ROOT, _connectable, free_port, readyz, reap, wait_for

pytestmark = pytest.mark.slow

TOKEN = "fault-admin-token-0123456789"
CALLERS = ["01011110001", "01011110002", "01011110003"]


def api(port: int, path: str):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        with urllib.request.urlopen(req, timeout=2) as r:
            return json.loads(r.read())
    except Exception:
        return None


def test_kill_9_during_calls_loses_no_call_record(tmp_path):
    ami, agi, http = free_port(), free_port(), free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CALLCORE_DATA_DIR": str(tmp_path / "data"), "CALLCORE_DEV_MODE": "1",
           "CALLCORE_API_TOKENS": json.dumps({TOKEN: "admin"})}
    env.pop("CALLCORE_DATABASE_URL", None)
    # straight into the queue ([queue-direct]): the IVR's business hours would depend on the wall clock
    calls = [arg for n in CALLERS for arg in ("--call", f"{n}@queue-direct/sales")]
    pbx = subprocess.Popen(
        [sys.executable, "-m", "tests.pbxsim", "--ami-port", str(ami), "--agi", f"127.0.0.1:{agi}",
         *[a for n in (1001, 1002, 1003) for a in ("--member", f"sales=Local/{n}@agents/n:Agent {n}",
                                                     "--agent", f"{n}:answer=0.2,hangup=never")],
         "--queues", "sales:ringall", *calls, "--script", "wait:12,hangup"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    log = (tmp_path / "callcore.log").open("w+")
    cmd = [sys.executable, "-m", "callcore.cli", "serve", "--http-port", str(http), "--agi-port", str(agi),
           "--ami-host", "127.0.0.1", "--ami-port", str(ami)]
    cc = None
    try:
        wait_for(lambda: _connectable(ami), 20, "the emulator's AMI port")
        cc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)

        def talking():
            live = api(http, "/api/calls") or []
            return [c for c in live if c.get("status") == "talking"] if len(live) >= len(CALLERS) else None

        try:
            live = wait_for(lambda: (t := talking()) and len(t) == len(CALLERS) and t, 40, "every caller talking")
        except AssertionError:
            raise AssertionError(f"calls: {api(http, '/api/calls')}") from None
        ids = sorted(c["call_id"] for c in live)
        time.sleep(0.3)  # a few journal batches (50 ms) after the last change
        cc.send_signal(signal.SIGKILL)
        assert cc.wait(timeout=10) == -signal.SIGKILL
        killed_at = time.monotonic()

        # the callers hang up 12 s after they called, while callcore is dead
        time.sleep(max(0.0, 13 - (time.monotonic() - killed_at)))
        cc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        wait_for(lambda: (readyz(http) or {}).get("ready"), 40, "callcore ready again (AMI up, resynced)")

        def stored():
            rows = api(http, "/api/calls/history?limit=50") or []
            mine = [r for r in rows if r.get("call_id") in ids]
            return mine if len(mine) >= len(ids) else None

        rows = wait_for(stored, 20, "the calls in the history")
        assert sorted(r["call_id"] for r in rows) == ids  # each exactly once
        for r in rows:
            assert r["outcome"] == "answered" and r["queue"] == "sales", r
            assert r["caller_num"] in CALLERS and r["ended_at"], r
        log.seek(0)
        out = log.read()
        assert "were in progress when callcore stopped" in out, out[-3000:]
        print(f"\nkill -9 with {len(ids)} calls talking → {len(rows)} of {len(ids)} stored once after the restart")
    finally:
        reap(cc, pbx)
        log.close()
