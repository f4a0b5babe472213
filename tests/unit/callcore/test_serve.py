"""`callcore serve` as a user runs it: a real process, real ports, real signals."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class ServeProcess:
    def __init__(self, tmp_path, extra_env=None, args=()):
        env = {k: v for k, v in os.environ.items() if not k.startswith("CALLCORE_")}
        self.ami_port = _closed_port()
        env.update(
            CALLCORE_DATA_DIR=str(tmp_path / "data"),
            CALLCORE_HTTP_PORT="0",
            CALLCORE_AGI_PORT="0",
            CALLCORE_AMI_PORT=str(self.ami_port),  # nothing listens: AMI must retry
            CALLCORE_AMI_RECONNECT_MAX="1",
            CALLCORE_AMI_SECRET="do-not-log-me",
            CALLCORE_DEV_MODE="1",  # loopback dev mode: generated signing key (issue 11)
        )
        env.update(extra_env or {})
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "callcore.cli", "serve", *args],
            cwd=os.getcwd(),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stderr:
            self.lines.append(line)

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def wait_for_log(self, pattern: str, timeout: float = 60) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(pattern, self.log)
            if m:
                return m
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"no {pattern!r} in log within {timeout}s:\n{self.log}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def serve(tmp_path):
    procs = []

    def start(**kw):
        p = ServeProcess(tmp_path, **kw)
        procs.append(p)
        return p

    yield start
    for p in procs:
        p.stop()


def test_serve_without_asterisk_reports_ami_honestly_and_stops_on_sigterm(serve):
    p = serve()
    port = int(p.wait_for_log(r"HTTP http://127\.0\.0\.1:(\d+)").group(1))
    base = f"http://127.0.0.1:{port}"
    assert httpx.get(base + "/healthz").json() == {"status": "ok"}

    # the log says clearly what it is waiting for
    p.wait_for_log(r"AMI 127\.0\.0\.1:\d+ not reachable.*retrying in")
    ready = httpx.get(base + "/readyz")
    body = ready.json()
    # reliability (issue 12): a CTI process without its AMI link is not ready, and says why
    assert ready.status_code == 503, body
    assert body["ready"] is False and body["reasons"] == [f"AMI 127.0.0.1:{p.ami_port} {body['ami']['state']}"]
    assert body["ami"]["required"] is True
    assert body["backlog"]["cti_subscribers"] == {"depth": 0, "limit": 1000}
    assert body["database"]["ok"] is True
    assert body["ami"]["connected"] is False
    assert body["ami"]["state"] in ("disconnected", "connecting")
    assert body["ami"]["detail"] == "disconnected, retrying"
    assert body["agi"]["listening"] is True

    metrics = httpx.get(base + "/metrics").text
    assert "callcore_ami_connected 0.0" in metrics
    assert "callcore_agi_sessions_active 0.0" in metrics
    assert "callcore_websocket_clients" in metrics
    assert "callcore_cti_subscriber_failures_total 0.0" in metrics  # cti: cti/dispatcher.py
    assert "callcore_cti_bookkeeping_failures_total 0.0" in metrics and "callcore_cti_persist_failures_total 0.0" in metrics
    # reliability: bounded AMI framing counters (cti/ami/protocol.py)
    for name in ("oversized_frames", "too_many_headers", "decode_errors", "orphan_responses"):
        assert f"callcore_ami_{name}_total 0.0" in metrics

    t0 = time.monotonic()
    p.proc.send_signal(signal.SIGTERM)
    rc = p.proc.wait(timeout=10)
    assert time.monotonic() - t0 < 5, "shutdown took longer than 5 s"
    assert rc == 0, p.log
    p._reader.join(timeout=2)
    assert "callcore stopped" in p.log
    assert "do-not-log-me" not in p.log  # the AMI secret never reaches the log


def test_only_flag_runs_just_that_part(serve):
    p = serve(args=("--only", "http"))
    port = int(p.wait_for_log(r"HTTP http://127\.0\.0\.1:(\d+)").group(1))
    ready = httpx.get(f"http://127.0.0.1:{port}/readyz")
    body = ready.json()
    assert body["ami"]["state"] == "disabled"
    # no AMI part in this process: not a reason to be unready, and the report says so
    assert ready.status_code == 200 and body["ready"] is True and body["reasons"] == []
    assert body["ami"]["required"] is False and "does not run the AMI part" in body["ami"]["detail"]
    assert body["agi"]["listening"] is False
    p.proc.send_signal(signal.SIGINT)
    assert p.proc.wait(timeout=10) == 0


def test_json_logs(serve):
    import json

    p = serve(args=("--log-json", "--only", "http"))
    p.wait_for_log(r"callcore running")
    p.proc.send_signal(signal.SIGTERM)
    p.proc.wait(timeout=10)
    p._reader.join(timeout=2)
    records = [json.loads(line) for line in p.lines if line.startswith("{")]
    assert any(r["msg"].startswith("callcore running") and r["level"] == "INFO" for r in records)


def test_sighup_reloads_the_dialplans(serve, tmp_path):
    import shutil

    plans = tmp_path / "plans"
    shutil.copytree("dialplans", plans)
    p = serve(
        extra_env={
            "CALLCORE_DIALPLANS_DIR": str(plans),
            "CALLCORE_DIALPLAN_WATCH": "false",  # only the signal may reload here
            "CALLCORE_API_TOKENS": '{"serve-admin": "admin"}',
        },
        args=("--only", "http"),
    )
    port = int(p.wait_for_log(r"HTTP http://127\.0\.0\.1:(\d+)").group(1))
    headers = {"Authorization": "Bearer serve-admin"}
    before = httpx.get(f"http://127.0.0.1:{port}/api/dialplans", headers=headers).json()["active"]["main"]
    main = plans / "main.yaml"
    main.write_text(main.read_text(encoding="utf-8").replace("timeout: 2\n", "timeout: 3\n", 1), encoding="utf-8")
    p.proc.send_signal(signal.SIGHUP)
    p.wait_for_log(r"dialplans loaded \(SIGHUP\)")
    after = httpx.get(f"http://127.0.0.1:{port}/api/dialplans", headers=headers).json()["active"]["main"]
    assert after != before
    p.proc.send_signal(signal.SIGTERM)
    assert p.proc.wait(timeout=10) == 0
