"""Benchmark 10 — the capacity of two callcore instances against one (issue 19), same run.

Two parts, each alternating "one instance" and "two instances" back to back ``reps`` times, the
figure being the median pair ratio (each pair ran under the same machine conditions):

* **IVR (FastAGI)** — the FastAGI benchmark's session (``fastagi.py``: ``bench.yaml``, 9 AGI
  commands and an HTTP CRM lookup), ``concurrency`` sessions in a closed loop for ``seconds``:
  against one server process, then spread round-robin over two (what Asterisk does with
  ``hagi://`` + DNS SRV or a TCP load balancer, asterisk-config/README.md). FastAGI is stateless
  per call, so the two servers share nothing. sessions/s, and sessions per server CPU-second
  (summed over the servers: does splitting cost anything per session?).
* **Pops** — the pop benchmark's load (``pop_latency.py``: a fake Asterisk with a background of
  capture traffic, agent websockets, every pop checked: right agent, once) against the real
  composition root, ``callcore.app.Container``, on one throwaway PostgreSQL database: one
  instance (the single-process default: no broker, every desk on it), then two instances on the
  local NATS (``CALLCORE_BROKER_URL``): **a** holds the AMI lease and consumes the fake
  Asterisk, **b** is the standby; half of the desks on each, so half of the pops cross the broker
  from a to b. Sequential pop latency (p50/p99) and bursts of ``burst`` pops in one write: pops
  delivered/s (burst size / time to the last pop).

What the broker adds to one pop on its own (no websockets, no AMI) is benchmark 7
(``broker_hop.py``): this one measures whole instances.

CPUs (2 on the reference VM): one instance runs on the server CPU, the load on the other; with
two instances, **b** runs on the load's CPU — on a 2-core machine the second instance competes
with the load generator, so the two-instance figure is a lower bound of what a second machine
gives. PostgreSQL: ``CALLCORE_BENCH_PG_DSN`` (default postgresql://postgres@127.0.0.1:5432/postgres);
without a server or a broker the pop part is skipped and the figures say so.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import statistics
import tempfile
import time
import urllib.request
import uuid
from typing import Any

from benchmarks import fastagi, pop_latency
from benchmarks.common import LOAD_CPUS, LOG_COUNTER, SERVER_CPUS, Child, Figure, pipe_recv, quiet_logs, summarize

SIZES = {
    "full": {"agi": {"concurrency": 50, "seconds": 6.0}, "reps": 3,
             "pop": {"agents": 400, "bg_fps": 1000, "pops": 300, "burst": 200, "bursts": 3, "gap": 0.01}},
    "quick": {"agi": {"concurrency": 8, "seconds": 1.5}, "reps": 1,
              "pop": {"agents": 40, "bg_fps": 300, "pops": 30, "burst": 20, "bursts": 1, "gap": 0.01}},
    "smoke": {"agi": {"concurrency": 2, "seconds": 0.3}, "reps": 1,
              "pop": {"agents": 8, "bg_fps": 100, "pops": 6, "burst": 4, "bursts": 1, "gap": 0.005}},
}
PG_DSN = os.environ.get("CALLCORE_BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
BROKER_URL = os.environ.get("CALLCORE_TEST_BROKER_URL", "nats://127.0.0.1:4222")


# ================================================================ IVR part
class _SpreadLoad(fastagi._AgiLoad):
    """The FastAGI load, spreading sessions round-robin over several servers (port -1 = next one)."""

    def __init__(self, conn: Any) -> None:
        super().__init__(conn)
        self._ports: Any = None
        self.per_port: dict[int, int] = {}

    async def session(self, port: int, park: bool = False, playback: tuple[float, ...] = ()) -> dict[str, Any] | None:
        if port == -1:
            port = next(self._ports)
        r = await super().session(port, park, playback)
        if r is not None:
            self.per_port[port] = self.per_port.get(port, 0) + 1
        return r

    async def throughput(self, port: Any, concurrency: int, seconds: float) -> dict[str, Any]:
        if isinstance(port, list):
            self._ports, self.per_port = itertools.cycle(port), {}
            res = await super().throughput(-1, concurrency, seconds)
            res["per_server"] = [self.per_port.get(p, 0) for p in port]
            return res
        return await super().throughput(port, concurrency, seconds)


def spread_load_process(conn: Any) -> None:
    quiet_logs()
    asyncio.run(_SpreadLoad(conn).main())


def _ask(who: Child, msg: dict[str, Any], key: str, timeout: float = 600) -> Any:
    who.send(msg)
    return who.expect(key, timeout)[key]


def _agi_round(n_servers: int, cfg: dict[str, Any]) -> dict[str, Any]:
    load = Child(spread_load_process, cpus=LOAD_CPUS, name="cluster-agi-load")
    servers: list[Child] = []
    try:
        crm_port = load.expect("crm_port", 60)["crm_port"]
        for i in range(n_servers):
            servers.append(Child(fastagi.server_process, "callcore", crm_port, None, cpus=SERVER_CPUS if i == 0 else LOAD_CPUS,
                                 name=f"cluster-agi-{i}"))
        ports = [s.expect("ready", 60)["ready"]["port"] for s in servers]
        _ask(load, {"cmd": "throughput", "port": ports, "concurrency": 2, "seconds": 0.3}, "throughput")  # warm-up
        for s in servers:
            _ask(s, {"cmd": "reset"}, "reset")
        res = _ask(load, {"cmd": "throughput", "port": ports, "concurrency": cfg["concurrency"], "seconds": cfg["seconds"]},
                   "throughput")
        timings = [_ask(s, {"cmd": "timings"}, "timings") for s in servers]
        res["cpu_seconds"] = sum(t["cpu_seconds"] for t in timings)
        res["server_cpu_seconds"] = [t["cpu_seconds"] for t in timings]
        res["servers"] = n_servers
        return res
    finally:
        for s in servers:
            s.stop()
        load.stop()


# ================================================================ pop part
def cluster_server_process(conn: Any, name: str, ami_port: int, db_url: str, broker: str | None, prefix: str) -> None:
    quiet_logs()
    asyncio.run(_cluster_server_main(conn, name, ami_port, db_url, broker, prefix))


def _readyz(port: int) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
            return json.loads(r.read())
    except Exception as exc:  # 503 while not ready: the body still says why
        body = getattr(exc, "read", None)
        try:
            return json.loads(body()) if body else {}
        except Exception:
            return {}


async def _cluster_server_main(conn: Any, name: str, ami_port: int, db_url: str, broker: str | None, prefix: str) -> None:
    from callcore.app import Container
    from callcore.settings import Settings

    kw: dict[str, Any] = {"broker_url": broker, "broker_prefix": prefix, "instance_name": name} if broker else {}
    settings = Settings(
        data_dir=tempfile.mkdtemp(prefix=f"callcore-cluster-{name}-"), database_url=db_url, http_host="127.0.0.1",
        http_port=0, ami_host="127.0.0.1", ami_port=ami_port, only=["ami", "http"], dialplan_watch=False,
        jwt_key=pop_latency.JWT_KEY, ami_secret=pop_latency.AMI_SECRET, log_level="WARNING", **kw,
    )
    container = Container(settings)
    await container.start()
    assert container.http_port
    role = "single"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the holder: AMI connected; the standby: ready, someone else holds
        r = await asyncio.to_thread(_readyz, container.http_port)
        lease = (r.get("cluster") or {}).get("ami_lease") or {}
        if not broker and (r.get("ami") or {}).get("connected"):
            break
        if broker and lease.get("held") and (r.get("ami") or {}).get("connected"):
            role = "holder"
            break
        if broker and r.get("ready") and lease.get("holder") not in (None, name):
            role = "standby"
            break
        await asyncio.sleep(0.1)
    else:
        raise TimeoutError(f"{name}: neither the AMI holder nor a ready standby within 60 s: {r}")
    conn.send({"ready": {"port": container.http_port, "role": role}})
    while True:
        msg = await pipe_recv(conn)
        if msg.get("cmd") == "stop":
            break
        if msg.get("cmd") == "status":  # after the run: did the lease move (epoch), is AMI still here
            r = await asyncio.to_thread(_readyz, container.http_port)
            conn.send({"status": {"cluster": r.get("cluster"), "ami_state": (r.get("ami") or {}).get("state"),
                                  "logged": LOG_COUNTER.top()}})  # e.g. "lease … beat failed" warnings
    await container.stop()


def _pop_round(n_instances: int, cfg: dict[str, Any], template: str) -> dict[str, Any]:
    """One measurement on a fresh database (the load replays the same call ids every round, and
    the previous round's lease row must not be in the way)."""
    db_url, drop = asyncio.run(_pg_database(template))
    try:
        return _pop_measure(n_instances, cfg, db_url)
    finally:
        asyncio.run(drop())


def _pop_measure(n_instances: int, cfg: dict[str, Any], db_url: str) -> dict[str, Any]:
    from api.auth import issue_token

    load = Child(pop_latency.load_process, cpus=LOAD_CPUS, name="cluster-pop-load")
    servers: list[Child] = []
    prefix = f"ccbench{uuid.uuid4().hex[:8]}"
    try:
        ami_port = load.expect("port", 60)["port"]
        infos = []
        for i in range(n_instances):  # one at a time: the first takes the lease
            broker = BROKER_URL if n_instances > 1 else None
            servers.append(Child(cluster_server_process, "ab"[i], ami_port, db_url, broker, prefix,
                                 cpus=SERVER_CPUS if i == 0 else LOAD_CPUS, name=f"cluster-pop-{'ab'[i]}", daemon=False))
            infos.append(servers[-1].expect("ready", 120)["ready"])
        agents = [str(pop_latency.AGENT_BASE + i) for i in range(cfg["agents"])]
        connected = []
        for i, info in enumerate(infos):  # desks split evenly over the instances
            mine = agents[i::n_instances]
            load.send({"cmd": "connect", "url": f"ws://127.0.0.1:{info['port']}/ws",
                       "agents": [(a, issue_token(pop_latency.JWT_KEY, a, "agent", 3600)) for a in mine]})
            connected.append(load.expect("connected", 600))
        load.send({"cmd": "run", **cfg, "agents": agents})
        res = load.expect("result", 1800)["result"]
        res.update(instances=n_instances, roles=[x["role"] for x in infos], connect=connected,
                   after=[_ask(s, {"cmd": "status"}, "status", 30) for s in servers])
        return res
    finally:
        load.stop()
        for s in reversed(servers):
            s.stop()


async def _pg_admin(*statements: str) -> None:
    import asyncpg

    admin = await asyncio.wait_for(asyncpg.connect(PG_DSN), 5)
    try:
        for st in statements:
            await admin.execute(st)
    finally:
        await admin.close()


def _url(name: str) -> str:
    return f"{PG_DSN.rsplit('/', 1)[0]}/{name}".replace("postgresql:", "postgresql+asyncpg:", 1)


async def _pg_template() -> tuple[str, Any]:
    """A migrated database to copy for each round (CREATE DATABASE … TEMPLATE: no migration per round)."""
    from callcore import migrate

    name = f"callcore_bench_cluster_{os.getpid()}_tmpl"
    await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')
    await asyncio.to_thread(migrate.upgrade, _url(name))

    async def drop() -> None:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return name, drop


async def _pg_database(template: str) -> tuple[str, Any]:
    name = f"callcore_bench_cluster_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    await _pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')

    async def drop() -> None:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return _url(name), drop


async def _broker_up() -> bool:
    import nats

    try:
        nc = await nats.connect(BROKER_URL, connect_timeout=2, max_reconnect_attempts=0, allow_reconnect=False)
    except Exception:
        return False
    await nc.close()
    return True


def _burst_rates(r: dict[str, Any]) -> list[float]:
    return [len(b) / max(b) for b in r["bursts"] if b]


# ==================================================================== driver
def _median_pair(pairs: list[tuple[float, Any, Any]]) -> tuple[float, Any, Any]:
    pairs = sorted(pairs, key=lambda p: p[0])
    return pairs[len(pairs) // 2]


def run(size: str = "full") -> dict[str, Any]:
    sz = SIZES[size]
    details: dict[str, Any] = {"sizes": sz, "cpus": {"server": sorted(SERVER_CPUS or []), "load": sorted(LOAD_CPUS or [])},
                               "agi": [], "pop": []}
    figures: list[Figure] = []

    # --- IVR: one server, then two, back to back
    for _ in range(sz["reps"]):
        details["agi"].append({"one": _agi_round(1, sz["agi"]), "two": _agi_round(2, sz["agi"])})
    ratio, one, two = _median_pair([(r["two"]["sps"] / r["one"]["sps"], r["one"], r["two"]) for r in details["agi"]])
    n_pairs = len(details["agi"])
    pair_ratios = ", ".join(f"{r['two']['sps'] / r['one']['sps']:.2f}" for r in details["agi"])
    figures.append(Figure("cluster", f"IVR sessions/s, two instances vs one ({sz['agi']['concurrency']} concurrent)", two["sps"],
                          "/s", one["sps"], ratio=ratio, target="info",
                          note=f"median of {n_pairs} pairs ({pair_ratios}); "
                               f"split {two['per_server']}; b shares the load's CPU"))
    cpu = sorted((r["two"]["sessions"] / r["two"]["cpu_seconds"]) / (r["one"]["sessions"] / r["one"]["cpu_seconds"])
                 for r in details["agi"])
    figures.append(Figure("cluster", "IVR sessions per server CPU-second, two vs one", two["sessions"] / two["cpu_seconds"],
                          "/s", one["sessions"] / one["cpu_seconds"], ratio=cpu[len(cpu) // 2], target="info (noise-robust)",
                          note="summed over both servers: what splitting costs per session"))
    failed = sum(r[k]["failed"] for r in details["agi"] for k in ("one", "two"))
    figures.append(Figure("cluster", "IVR sessions failed", float(failed), "", target="0", verdict="PASS" if failed == 0 else "MISS"))

    # --- pops: one instance (no broker) vs two on NATS, desks split
    async def prepare() -> str | None:
        if not await _broker_up():
            return f"no broker at {BROKER_URL}"
        try:
            import asyncpg

            conn = await asyncio.wait_for(asyncpg.connect(PG_DSN), 5)
            await conn.close()
        except Exception as exc:
            return f"no PostgreSQL at {PG_DSN}: {type(exc).__name__}: {exc}"
        return None

    skipped = asyncio.run(prepare())
    if skipped:
        details["pop_skipped"] = skipped
        figures.append(Figure("cluster", "pops, two instances vs one", None, target="skipped", note=skipped))
        return {"name": "cluster", "figures": figures, "details": details}
    template, drop_template = asyncio.run(_pg_template())
    try:
        for _ in range(sz["reps"]):
            details["pop"].append({"one": _pop_round(1, sz["pop"], template), "two": _pop_round(2, sz["pop"], template)})
    finally:
        asyncio.run(drop_template())
    for r in details["pop"]:
        for k in ("one", "two"):
            x = r[k]
            x["sequential_ms"] = summarize(x.pop("sequential"), 1000)
            x["burst_rates"] = _burst_rates(x)
            x["bursts_ms"] = [summarize(b, 1000) for b in x.pop("bursts")]
    lost = sum(r[k]["lost"] + r[k]["burst_lost"] + r[k]["wrong_agent"] + r[k]["duplicates"] for r in details["pop"] for k in ("one", "two"))
    seq = _median_pair([(r["two"]["sequential_ms"]["p50"] / r["one"]["sequential_ms"]["p50"], r["one"], r["two"])
                        for r in details["pop"] if r["one"]["sequential_ms"].get("n") and r["two"]["sequential_ms"].get("n")])
    _, one, two = seq
    cfg = sz["pop"]
    tag = f"{cfg['agents']} desks, {cfg['bg_fps']} bg fr/s"
    figures += [
        Figure("cluster", f"pop p50, two instances (half the desks across NATS) vs one ({tag})", two["sequential_ms"]["p50"], "ms",
               one["sequential_ms"]["p50"], target="info", lower_is_better=True, note=f"roles {two['roles']}"),
        Figure("cluster", "pop p99, two instances vs one", two["sequential_ms"]["p99"], "ms", one["sequential_ms"]["p99"],
               target="info", lower_is_better=True),
    ]
    rates = [(statistics.median(r["two"]["burst_rates"]) / statistics.median(r["one"]["burst_rates"]), r["one"], r["two"])
             for r in details["pop"] if r["one"]["burst_rates"] and r["two"]["burst_rates"]]
    if rates:
        ratio, one, two = _median_pair(rates)
        figures.append(Figure("cluster", f"pops delivered/s (bursts of {cfg['burst']}), two instances vs one",
                              statistics.median(two["burst_rates"]), "/s", statistics.median(one["burst_rates"]), ratio=ratio,
                              target="info", note="burst size / time to its last pop"))
    figures.append(Figure("cluster", "pops lost / wrong desk / duplicated (both runs)", float(lost), "", target="0",
                          verdict="PASS" if lost == 0 else "MISS"))
    return {"name": "cluster", "figures": figures, "details": details}


if __name__ == "__main__":  # pragma: no cover
    r = run(os.environ.get("BENCH_SIZE", "quick"))
    from benchmarks.common import table

    print(table(r["figures"]))
