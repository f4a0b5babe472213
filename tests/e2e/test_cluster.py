"""Scale-out end to end (issue 19): two ``callcore serve`` processes on one PostgreSQL and the
real local NATS, with the PBX emulator as the Asterisk (in this process, so every AMI action it
receives can be counted).

* instance **a** takes the AMI lease, **b** is the standby; the agent's desk is on **b**: the
  pop of a call on the Asterisk that **a** consumes reaches it over the broker;
* call control sent to **b** is forwarded to the holder and reaches Asterisk exactly once;
* ``kill -9`` of **a** mid-call: **b** takes the lease and AMI within 5 s, resyncs, follows the
  call to its end and stores it once, with the queue, agent and talk time it had;
* **a** comes back as the standby; the holder **b** loses its database (a TCP proxy cut) mid-call:
  **b** gives AMI up by itself, **a** takes over within 5 s, never two AMI sessions at once.

PostgreSQL only (the lease is in the shared database; skipped on SQLite) and needs the broker
(skipped on a developer's machine without one, fails in CI — tests/broker.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
import websockets

from callcore import migrate
from tests.broker import broker_url, fresh_prefix, pipe
from tests.fault.test_sigterm import ROOT, free_port, reap
from tests.pbxsim import Pbx, PbxConfig
from tests.pbxsim.__main__ import parse_agent

pytestmark = [pytest.mark.slow, pytest.mark.db]

ADMIN = "cluster-admin-token-0123456789"
AGENT = "cluster-agent-1001-token-0123456789"


def _get(port: int, path: str, token: str | None = ADMIN):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=3) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")
    except Exception:
        return None, None


def _post(port: int, path: str, body: dict, token: str = ADMIN):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(), method="POST",
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


async def _until(pred, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = await asyncio.to_thread(pred)
        if got:
            return got
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class DbProxy:
    """A TCP forwarder between one instance and PostgreSQL: ``cut()`` takes that instance's
    database away (existing connections closed, new ones refused) while the other keeps it."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.open = True
        self.writers: set = set()
        self.server = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _handle(self, reader, writer) -> None:
        if not self.open:
            writer.close()
            return
        r2, w2 = await asyncio.open_connection(*self.target)
        self.writers |= {writer, w2}
        await asyncio.gather(pipe(reader, w2), pipe(r2, writer))

    def cut(self) -> None:
        self.open = False
        for w in list(self.writers):
            w.close()
        self.writers.clear()

    async def close(self) -> None:
        self.cut()
        if self.server is not None:
            self.server.close()


def stop_instances(procs: dict, logs: dict) -> None:
    """SIGTERM every instance still running, wait for each (then kill what is left), close the logs."""
    for p in procs.values():
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs.values():
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
    reap(*procs.values())
    for f in logs.values():
        f.close()


def _lease(port: int):
    status, body = _get(port, "/readyz", None)
    return ((body or {}).get("cluster") or {}).get("ami_lease") or {}, body or {}


async def test_two_instances_one_ami_consumer_pops_across_and_kill9_take_over(tmp_path, empty_database_url) -> None:
    if not empty_database_url.startswith("postgresql"):
        pytest.skip("the cluster shares PostgreSQL (run by scripts/test-pg)")
    nats_url, prefix = broker_url(), fresh_prefix()
    await asyncio.to_thread(migrate.upgrade, empty_database_url)
    pbx = Pbx(PbxConfig(agi_port=1, time_scale=1.0, monitor_dir=tmp_path / "monitor"))
    await pbx.start()
    ext, behaviour = parse_agent("1001:answer=0.3,hangup=never")
    pbx.agent(ext, behaviour)
    pbx.add_member("sales", "Local/1001@agents/n", "Agent 1001")
    ports = {"a": free_port(), "b": free_port()}
    logs = {n: (tmp_path / f"{n}.log").open("w+") for n in ports}
    procs: dict[str, subprocess.Popen] = {}

    # b reaches PostgreSQL through a proxy the test can cut (the holder losing its database)
    from urllib.parse import urlparse

    pg = urlparse(empty_database_url.replace("postgresql+asyncpg", "postgresql"))
    proxy = DbProxy(pg.hostname or "127.0.0.1", pg.port or 5432)
    proxy_port = await proxy.start()
    db_url = {"a": empty_database_url,
              "b": empty_database_url.replace(f"@{pg.hostname}:{pg.port or 5432}/", f"@127.0.0.1:{proxy_port}/")}
    assert db_url["b"] != db_url["a"]

    def start(name: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "CALLCORE_DEV_MODE": "1",
               "CALLCORE_DATA_DIR": str(tmp_path / f"data-{name}"), "CALLCORE_DATABASE_URL": db_url[name],
               "CALLCORE_BROKER_URL": nats_url, "CALLCORE_BROKER_PREFIX": prefix, "CALLCORE_INSTANCE_NAME": name,
               "CALLCORE_API_TOKENS": json.dumps({ADMIN: "admin", AGENT: "agent:1001"}),
               "CALLCORE_JWT_KEY": "cluster-test-signing-key-shared-by-both-instances",  # one key per cluster
               "CALLCORE_AMI_RECONNECT_MIN": "0.1", "CALLCORE_AMI_RECONNECT_MAX": "0.5", "CALLCORE_DIALPLAN_WATCH": "false"}
        procs[name] = subprocess.Popen(
            [sys.executable, "-m", "callcore.cli", "serve", "--http-port", str(ports[name]), "--agi-port", str(free_port()),
             "--ami-host", "127.0.0.1", "--ami-port", str(pbx.ami_port)],
            cwd=ROOT, env=env, stdout=logs[name], stderr=subprocess.STDOUT)

    def tail(name: str) -> str:
        logs[name].flush()
        return (tmp_path / f"{name}.log").read_text()[-3000:]

    def actions(name: str) -> list:
        return [f for a, f in pbx.ami.actions if a == name] if hasattr(pbx, "ami") else []

    desk = None
    try:
        start("a")
        try:
            await _until(lambda: _lease(ports["a"])[0].get("held") and _lease(ports["a"])[1].get("ready"), 40, "a holds AMI")
        except AssertionError:
            raise AssertionError(tail("a")) from None
        start("b")
        try:
            await _until(lambda: _lease(ports["b"])[1].get("ready") and _lease(ports["b"])[0].get("holder"), 40,
                         "b ready (standby)")
        except AssertionError:
            raise AssertionError(tail("b")) from None
        lease_b, ready_b = await asyncio.to_thread(_lease, ports["b"])
        assert lease_b["held"] is False and lease_b["holder"] == "a" and ready_b["ami"]["state"] == "standby"

        # the agent's desk is on b; the call is on the Asterisk a consumes
        desk = await websockets.connect(f"ws://127.0.0.1:{ports['b']}/ws?token={AGENT}")
        hello = json.loads(await asyncio.wait_for(desk.recv(), 5))
        assert hello["event"] == "hello"
        events: list[dict] = []

        async def pump():
            async for text in desk:
                events.append(json.loads(text))

        pumper = asyncio.create_task(pump())

        def pop(name: str):
            return next((e for e in events if e["event"] == name), None)

        # call control through b is carried out by a, once (a login is QueueAdd/QueuePause on Asterisk)
        status, body = await asyncio.to_thread(_post, ports["b"], "/api/agents", {"id": "1002", "name": "Agent 1002", "interface": "Local/1002@agents/n",
                                                         "skills": [{"queue": "sales", "penalty": 0}]})
        assert status == 201, (status, body)
        adds, pauses = len(actions("QueueAdd")), len(actions("QueuePause"))
        status, body = await asyncio.to_thread(_post, ports["b"], "/api/agents/1002/login", {"queues": ["sales"]})
        assert status == 200, (status, body)
        status, body = await asyncio.to_thread(_post, ports["b"], "/api/agents/1002/pause", {"reason": "break"})
        assert status == 200, (status, body)
        # forwarded to the holder, sent once
        assert len(actions("QueueAdd")) - adds == 1 and len(actions("QueuePause")) - pauses == 1
        status, body = await asyncio.to_thread(_get, ports["b"], "/api/agents/1002")
        assert status == 200 and body["state"]["paused"] is True, body  # b answers from a's live state

        call = await pbx.dial("01012345678", "홍길동", context="queue-direct", exten="sales")
        ringing = await _until(lambda: pop("call.ringing"), 10, "the pop on b's desk")
        call_id = ringing["payload"]["call_id"] if "call_id" in ringing["payload"] else ringing["payload"]["call"]["call_id"]
        await _until(lambda: any(e["event"] == "call.answered" for e in events), 10, "answered")
        answered = time.monotonic()
        await asyncio.sleep(1.0)  # talking for a while before the holder dies (hand-off pictures every 100 ms)

        # kill -9 the lease holder mid-call
        procs["a"].send_signal(signal.SIGKILL)
        procs["a"].wait(timeout=10)
        killed = time.monotonic()
        await _until(lambda: (lambda l, r: l.get("held") and r.get("ami", {}).get("state") == "connected")(*_lease(ports["b"])),
                     10, "b takes over AMI")
        took = time.monotonic() - killed
        assert took < 5.0, f"take-over in {took:.1f} s"

        status, live = await asyncio.to_thread(_get, ports["b"], "/api/calls")
        assert status == 200 and [c["call_id"] for c in live] == [call_id], live
        assert live[0]["status"] == "talking" and live[0]["agent_id"] == "1001" and live[0]["queue"] == "sales", live[0]

        await call.hangup()
        talked = time.monotonic() - answered

        def stored():
            status, rows = _get(ports["b"], "/api/calls/history?limit=50")
            mine = [r for r in rows or [] if r.get("call_id") == call_id]
            return mine if mine and status == 200 else None

        rows = await _until(stored, 15, "the call in the history")
        assert len(rows) == 1, rows  # stored once
        r = rows[0]
        assert r["outcome"] == "answered" and r["queue"] == "sales" and r["agent_id"] == "1001", r
        # the talk time runs from the answer on a, not from b's take-over (the live-call hand-off)
        assert r["talk_time"] >= int(talked) - 1, (r, talked)
        status, body = await asyncio.to_thread(_get, ports["b"], "/readyz", None)
        assert body["cluster"]["ami_lease"]["holder"] == "b" and body["cluster"]["ami_lease"]["epoch"] == 2, body
        # no action sent twice: a's actions before the kill, b's after its take-over; one login each
        assert len(actions("Originate")) == 0
        # the take-over's resync found agent 1002 still a paused member: nothing re-sent
        assert len(actions("QueueAdd")) == adds + 1 and len(actions("QueuePause")) == pauses + 1
        assert len(actions("Login")) == 2  # a's login, then b's at the take-over: never both at once
        assert len([e for e in events if e["event"] == "call.ringing"]) == 1  # one pop, not one per instance

        # a comes back as the standby; then the holder b loses its database mid-call: b gives AMI up
        # by itself and a takes over, never two AMI consumers at once
        start("a")
        await _until(lambda: (lambda l, r: r.get("ready") and l.get("holder") == "b")(*_lease(ports["a"])), 40, "a standby")
        call2 = await pbx.dial("01087654321", "김철수", context="queue-direct", exten="sales")
        await _until(lambda: len([e for e in events if e["event"] == "call.answered"]) >= 2, 10, "second call answered")
        answered2 = time.monotonic()
        await asyncio.sleep(1.0)
        logins = len(actions("Login"))
        proxy.cut()
        cut = time.monotonic()
        most = 0
        while time.monotonic() - cut < 10:
            most = max(most, sum(1 for x in pbx.ami.sessions if x.authenticated and not x.closed))
            lease_a, ready_a = await asyncio.to_thread(_lease, ports["a"])
            if lease_a.get("held") and ready_a.get("ami", {}).get("state") == "connected":
                break
            await asyncio.sleep(0.05)
        took2 = time.monotonic() - cut
        assert lease_a.get("held") and took2 < 5.0, (f"take-over after the holder lost its database: {took2:.1f} s", lease_a)
        assert most <= 1, "two AMI consumers at once"
        assert len(actions("Login")) == logins + 1
        status, live = await asyncio.to_thread(_get, ports["a"], "/api/calls")
        assert [c["status"] for c in live] == ["talking"], live
        call2_id = live[0]["call_id"]
        await call2.hangup()
        talked2 = time.monotonic() - answered2

        def stored2():
            status, rows = _get(ports["a"], "/api/calls/history?limit=50")
            mine = [r for r in rows or [] if r.get("call_id") == call2_id]
            return mine if mine and status == 200 else None

        rows2 = await _until(stored2, 15, "the second call in the history")
        assert len(rows2) == 1 and rows2[0]["outcome"] == "answered" and rows2[0]["talk_time"] >= int(talked2) - 1, rows2
        pumper.cancel()
        print(f"\ncluster: pop across instances, take-over after kill -9 in {took:.2f} s and after the holder lost "
              f"its database in {took2:.2f} s, calls stored once")
    finally:
        if desk is not None:
            await desk.close()
        stop_instances(procs, logs)
        await proxy.close()
        await pbx.close()
