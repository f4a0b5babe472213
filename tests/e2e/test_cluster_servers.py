"""Scale-out end to end with several Asterisk servers (issue 19): two ``callcore serve`` processes
on one PostgreSQL and the real local NATS, with TWO emulated Asterisk servers (``ast1`` and
``ast2``, two :class:`Pbx` objects in this process, so every AMI action each one receives can be
counted), named in ``CALLCORE_AMI_SERVERS``.

* instance **a** takes the cluster's AMI lease and consumes both servers, **b** is the standby;
  the agents' desks are on **b**: a call on ``ast1`` and a call on ``ast2`` each pop there, over
  the broker;
* a login sent to **b** becomes exactly one ``QueueAdd`` on each server (app_queue state is per
  Asterisk), a click-to-call exactly one ``Originate``;
* ``kill -9`` of **a** while both calls are up: **b** takes the lease and the AMI of BOTH servers
  within 5 s, resyncs, follows both calls to their end and stores each exactly once, with its
  ``server``, queue, agent and talk time; nothing is sent twice (the take-over's resync finds the
  members in place).

PostgreSQL only (the lease is in the shared database; skipped on SQLite) and needs the broker
(tests/broker.py). Helpers shared with tests/e2e/test_cluster.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import websockets

from callcore import migrate
from tests.broker import broker_url, fresh_prefix
from tests.e2e.test_cluster import ADMIN, _get, _lease, _post, _until, stop_instances
from tests.fault.test_sigterm import ROOT, free_port
from tests.pbxsim import Pbx, PbxConfig
from tests.pbxsim.__main__ import parse_agent

pytestmark = [pytest.mark.slow, pytest.mark.db]

SECRETS = {"ast1": "cluster-ast1-ami-secret", "ast2": "cluster-ast2-ami-secret"}  # one per server
TOKENS = {f"cluster-agent-{a}-token-0123456789": f"agent:{a}" for a in ("1001", "1002", "1003")}
TOKEN = {v.split(":")[1]: k for k, v in TOKENS.items()}


def _consumers(pbx: Pbx) -> int:
    """AMI sessions logged in and open on this emulated server right now."""
    return sum(1 for s in pbx.ami.sessions if s.authenticated and not s.closed)


async def test_two_servers_two_instances_pops_across_and_kill9_hands_both_servers_over(tmp_path, empty_database_url) -> None:
    if not empty_database_url.startswith("postgresql"):
        pytest.skip("the cluster shares PostgreSQL (run by scripts/test-pg)")
    nats_url, prefix = broker_url(), fresh_prefix()
    await asyncio.to_thread(migrate.upgrade, empty_database_url)
    pbxs: dict[str, Pbx] = {}
    for name in SECRETS:
        pbx = Pbx(PbxConfig(agi_port=1, time_scale=1.0, secret=SECRETS[name], system_name=name,
                            monitor_dir=tmp_path / f"monitor-{name}"))
        await pbx.start()
        pbxs[name] = pbx
    # agent 1001 answers on ast1, 1002 on ast2 (members before callcore starts: found by the resync);
    # 1003 is logged in through the API (a member on both servers) and places the click-to-call
    for name, agent in (("ast1", "1001"), ("ast2", "1002")):
        pbxs[name].agent(*parse_agent(f"{agent}:answer=0.3,hangup=never"))
        pbxs[name].add_member("sales", f"Local/{agent}@agents/n", f"Agent {agent}")
    for pbx in pbxs.values():
        pbx.agent(*parse_agent("1003:answer=0.2,hangup=0.5"))
    servers = [{"name": n, "host": "127.0.0.1", "port": p.ami_port, "username": "callcore", "secret": SECRETS[n]}
               for n, p in pbxs.items()]
    ports = {"a": free_port(), "b": free_port()}
    logs = {n: (tmp_path / f"{n}.log").open("w+") for n in ports}
    procs: dict[str, subprocess.Popen] = {}

    def start(name: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "CALLCORE_DEV_MODE": "1",
               "CALLCORE_DATA_DIR": str(tmp_path / f"data-{name}"), "CALLCORE_DATABASE_URL": empty_database_url,
               "CALLCORE_BROKER_URL": nats_url, "CALLCORE_BROKER_PREFIX": prefix, "CALLCORE_INSTANCE_NAME": name,
               "CALLCORE_API_TOKENS": json.dumps({ADMIN: "admin", **TOKENS}),
               "CALLCORE_JWT_KEY": "cluster-test-signing-key-shared-by-both-instances",
               "CALLCORE_AMI_SERVERS": json.dumps(servers),
               "CALLCORE_AGENT_SERVERS": json.dumps({"1003": "ast2"}),  # 1003's phone is reached through ast2
               "CALLCORE_AMI_RECONNECT_MIN": "0.1", "CALLCORE_AMI_RECONNECT_MAX": "0.5", "CALLCORE_DIALPLAN_WATCH": "false"}
        procs[name] = subprocess.Popen(
            [sys.executable, "-m", "callcore.cli", "serve", "--http-port", str(ports[name]), "--agi-port", str(free_port())],
            cwd=ROOT, env=env, stdout=logs[name], stderr=subprocess.STDOUT)

    def tail(name: str) -> str:
        logs[name].flush()
        return (tmp_path / f"{name}.log").read_text()[-3000:]

    def actions(server: str, name: str) -> list[dict]:
        """The AMI actions ``name`` that emulated server received, as header dicts."""
        return [dict(f) for a, f in pbxs[server].ami.actions if a == name]

    desks: list = []
    try:
        start("a")
        try:
            await _until(lambda: _lease(ports["a"])[0].get("held") and _lease(ports["a"])[1].get("ready")
                         and all(_consumers(p) == 1 for p in pbxs.values()), 40, "a holds AMI of both servers")
        except AssertionError:
            raise AssertionError(tail("a")) from None
        start("b")
        try:
            await _until(lambda: _lease(ports["b"])[1].get("ready") and _lease(ports["b"])[0].get("holder") == "a", 40,
                         "b ready (standby)")
        except AssertionError:
            raise AssertionError(tail("b")) from None
        lease_b, _ = await asyncio.to_thread(_lease, ports["b"])
        assert lease_b["held"] is False
        assert all(_consumers(p) == 1 for p in pbxs.values())  # the standby consumes no server's AMI
        logins = {n: len(actions(n, "Login")) for n in pbxs}

        # both agents' desks on b, the instance that consumes neither server
        events: dict[str, list[dict]] = {"1001": [], "1002": []}
        pumps = []
        for agent in events:
            ws = await websockets.connect(f"ws://127.0.0.1:{ports['b']}/ws?token={TOKEN[agent]}")
            desks.append(ws)
            assert json.loads(await asyncio.wait_for(ws.recv(), 5))["event"] == "hello"

            async def pump(ws=ws, sink=events[agent]):
                async for text in ws:
                    sink.append(json.loads(text))

            pumps.append(asyncio.create_task(pump()))

        def pops(agent: str, name: str) -> list[dict]:
            return [e for e in events[agent] if e["event"] == name]

        # one call on each server, each popping on b
        calls = {"ast1": await pbxs["ast1"].dial("01012345678", "홍길동", context="queue-direct", exten="sales"),
                 "ast2": await pbxs["ast2"].dial("01087654321", "김철수", context="queue-direct", exten="sales")}
        ringing = {}
        for agent in events:
            ringing[agent] = (await _until(lambda agent=agent: pops(agent, "call.ringing"), 10, f"the pop on {agent}'s desk on b"))[0]
            await _until(lambda agent=agent: pops(agent, "call.answered"), 10, f"{agent} answered")
        answered = time.monotonic()
        call_ids = {agent: (r["payload"].get("call_id") or r["payload"]["call"]["call_id"]) for agent, r in ringing.items()}
        assert call_ids["1001"] != call_ids["1002"]
        status, live = await asyncio.to_thread(_get, ports["b"], "/api/calls")
        by_id = {c["call_id"]: c for c in live}
        assert by_id[call_ids["1001"]]["server"] == "ast1" and by_id[call_ids["1002"]]["server"] == "ast2", live
        # while both talk (so 1003 is not the one the calls ring): a login through b, forwarded to the
        # holder, is one QueueAdd on each server's app_queue
        status, body = await asyncio.to_thread(_post, ports["b"], "/api/agents", {
            "id": "1003", "name": "Agent 1003", "interface": "Local/1003@agents/n", "skills": [{"queue": "sales", "penalty": 0}]})
        assert status == 201, (status, body)
        status, body = await asyncio.to_thread(_post, ports["b"], "/api/agents/1003/login", {"queues": ["sales"]})
        assert status == 200, (status, body)
        for n in pbxs:
            await _until(lambda n=n: actions(n, "QueueAdd"), 5, f"QueueAdd on {n}")
            assert len(actions(n, "QueueAdd")) == 1, (n, actions(n, "QueueAdd"))
            assert actions(n, "QueueAdd")[0].get("Interface") == "Local/1003@agents/n"

        # a click-to-call through b: one Originate, on the server that reaches 1003's phone
        status, body = await asyncio.to_thread(_post, ports["b"], "/api/calls/click-to-call", {"number": "01055556666"},
                                               TOKEN["1003"])
        assert status == 202, (status, body)
        await _until(lambda: sum(len(actions(n, "Originate")) for n in pbxs), 5, "the Originate")
        originates = {n: len(actions(n, "Originate")) for n in pbxs}
        assert originates == {"ast1": 0, "ast2": 1}, originates

        await asyncio.sleep(0.5)  # talking for a while before the holder dies

        # kill -9 the lease holder while both calls are up
        procs["a"].send_signal(signal.SIGKILL)
        procs["a"].wait(timeout=10)
        killed = time.monotonic()
        await _until(lambda: _lease(ports["b"])[0].get("held")
                     and all(len(actions(n, "Login")) > logins[n] and _consumers(p) == 1 for n, p in pbxs.items()),
                     10, "b takes over the AMI of both servers")
        took = time.monotonic() - killed
        assert took < 5.0, f"take-over of both servers in {took:.1f} s"
        for n in pbxs:
            assert len(actions(n, "Login")) == logins[n] + 1  # b's one login per server, a's session gone

        def live_both():
            status, rows = _get(ports["b"], "/api/calls")
            mine = {c["call_id"]: c for c in rows or [] if c.get("call_id") in call_ids.values()}
            return mine if status == 200 and len(mine) == 2 and all(c["status"] == "talking" for c in mine.values()) else None

        live = await _until(live_both, 10, "both calls live on b after the resync")
        for agent, server in (("1001", "ast1"), ("1002", "ast2")):
            c = live[call_ids[agent]]
            assert c["agent_id"] == agent and c["queue"] == "sales" and c["server"] == server, c

        for call in calls.values():
            await call.hangup()
        talked = time.monotonic() - answered

        def stored():
            status, rows = _get(ports["b"], "/api/calls/history?limit=100")
            mine = [r for r in rows or [] if r.get("call_id") in call_ids.values()]
            return mine if status == 200 and {r["call_id"] for r in mine} == set(call_ids.values()) else None

        rows = await _until(stored, 15, "both calls in the history")
        assert len(rows) == 2, rows  # each stored exactly once
        for agent, server in (("1001", "ast1"), ("1002", "ast2")):
            (r,) = [r for r in rows if r["call_id"] == call_ids[agent]]
            assert r["outcome"] == "answered" and r["queue"] == "sales" and r["agent_id"] == agent and r["server"] == server, r
            # the talk time runs from the answer while a held AMI, not from b's take-over
            assert r["talk_time"] >= int(talked) - 1, (r, talked)
        _, ready = await asyncio.to_thread(_get, ports["b"], "/readyz", None)
        assert ready["cluster"]["ami_lease"]["holder"] == "b" and ready["cluster"]["ami_lease"]["epoch"] == 2, ready

        # no action sent twice: the take-over's resync found 1003 a member on both servers
        for n in pbxs:
            assert len(actions(n, "QueueAdd")) == 1, (n, actions(n, "QueueAdd"))
        assert {n: len(actions(n, "Originate")) for n in pbxs} == originates  # the click-to-call not re-sent
        for agent in events:  # one pop per call, not one per instance
            assert len(pops(agent, "call.ringing")) == 1, pops(agent, "call.ringing")
        for t in pumps:
            t.cancel()
        print(f"\ncluster of 2 servers: pops across instances, take-over of both servers after kill -9 in {took:.2f} s, "
              "calls stored once with their server")
    finally:
        for ws in desks:
            await ws.close()
        stop_instances(procs, logs)
        for pbx in pbxs.values():
            await pbx.close()
