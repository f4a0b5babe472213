"""Benchmark — what the cross-instance broker adds to a pop (issue 19).

One message at a time (``pops``, spaced by ``gap``), each shaped like a ``call.ringing`` pop
(≈1 kB payload with a Korean name), from ``publish`` on one bus to ``Subscription.get`` on the
subscriber's side, in the same run:

* **baseline** — the in-process :class:`~callcore.bus.Bus` (one process, what a single
  instance does today);
* **nats** — :class:`~callcore.broker.RelayedBus` + :class:`~callcore.broker.NatsRelay` on two
  separate NATS connections (instance *a* publishes, instance *b*'s websocket subscription
  receives): the relay's buffer task, JSON envelope, the NATS server's fan-out, decode and
  ``deliver_remote`` — the code path of the running app;
* **pg_notify** — for comparison, the same envelope through PostgreSQL ``LISTEN/NOTIFY``
  (``SELECT pg_notify`` on one asyncpg connection, a listener on another), when a server is
  reachable at ``CALLCORE_TEST_PG_DSN``.

Both ends are in one process (one clock, one loop): the figure is the hop's own cost on
loopback, not a network's. Broker URL: ``CALLCORE_TEST_BROKER_URL`` (default
``nats://127.0.0.1:4222``).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from typing import Any

from benchmarks.common import Figure, check, summarize
from callcore.broker import NatsRelay, RelayedBus, decode, encode
from callcore.bus import Bus, Message

SIZES = {"full": {"pops": 2000, "gap": 0.002, "burst": 20000}, "quick": {"pops": 200, "gap": 0.001, "burst": 2000},
         "smoke": {"pops": 20, "gap": 0.0, "burst": 200}}
#: what the broker may add to the p99 of a pop (the pop target is p99 < 10 ms end to end)
ADDED_P99_MS = 2.0


def _pop(i: int) -> Message:
    payload = {"call_id": f"c{i}", "caller": {"number": "01012345678", "name": "홍길동"}, "queue": "sales",
               "ivr": {"path": ["main", "menu", "sales"], "digits": "1"}, "crm": {"notes": "x" * 800}}
    return Message("call.ringing", payload, frozenset({"agent:1001"}), time.perf_counter())


async def _measure(publish_bus: Bus, sub, pops: int, gap: float) -> list[float]:
    out = []
    for i in range(pops):
        t0 = time.perf_counter()
        publish_bus.publish(_pop(i))
        async with asyncio.timeout(5):
            msg = await sub.get()
        out.append(time.perf_counter() - t0)
        assert msg.payload["call_id"] == f"c{i}", msg.payload["call_id"]
        if gap:
            await asyncio.sleep(gap)
    return out


async def _burst(publish_bus: Bus, sub, n: int) -> dict[str, float]:
    """``n`` pops published at once (a storm of calls): how fast the other side receives them all."""
    t0 = time.perf_counter()
    for i in range(n):
        publish_bus.publish(_pop(i))
        if i % 500 == 499:
            await asyncio.sleep(0)  # let the relay's task drain, as the AMI reader does between frames
    got = 0
    async with asyncio.timeout(60):
        while got < n:
            await sub.get()
            got += 1
    took = time.perf_counter() - t0
    return {"n": n, "seconds": took, "per_second": n / took}


async def _baseline(pops: int, gap: float) -> list[float]:
    bus = Bus()
    return await _measure(bus, bus.subscribe({"agent:1001"}), pops, gap)


async def _nats(url: str, pops: int, gap: float, burst: int = 0) -> list[float]:
    prefix = f"ccbench{uuid.uuid4().hex[:8]}"
    a, b = RelayedBus(), RelayedBus()
    ra, rb = NatsRelay(a, url, instance="a", prefix=prefix), NatsRelay(b, url, instance="b", prefix=prefix)
    await ra.start()
    await rb.start()
    try:
        if not (await ra.wait_connected(5) and await rb.wait_connected(5)):
            raise ConnectionError(f"no NATS at {url}")
        await rb._nc.flush()
        sub = b.subscribe({"agent:1001"})
        if burst:
            sub.queue = asyncio.Queue()  # unbounded for the storm: what is measured is the relay, not the cap
            return await _burst(a, sub, burst)  # type: ignore[return-value]
        return await _measure(a, sub, pops, gap)
    finally:
        await ra.stop()
        await rb.stop()


async def _pg_notify(dsn: str, pops: int, gap: float) -> list[float]:
    import asyncpg

    channel = f"ccbench{uuid.uuid4().hex[:8]}"
    pub = await asyncpg.connect(dsn, timeout=3)
    lis = await asyncpg.connect(dsn, timeout=3)
    b = RelayedBus()
    sub = b.subscribe({"agent:1001"})

    def on_notify(_conn: Any, _pid: int, _chan: str, data: str) -> None:
        b.deliver_remote(decode(data.encode())[2])

    class _Pub:  # publish = encode + NOTIFY through one sender task, like the relay's buffer task
        def __init__(self) -> None:
            self.queue: asyncio.Queue[Message] = asyncio.Queue()
            self.n = 0

        def publish(self, msg: Message) -> None:
            self.queue.put_nowait(msg)

        async def run(self) -> None:
            while True:
                msg = await self.queue.get()
                self.n += 1
                await pub.execute("SELECT pg_notify($1, $2)", channel, encode(msg, "a", f"a-{self.n}").decode())

    sender = _Pub()
    task = asyncio.get_running_loop().create_task(sender.run())
    await lis.add_listener(channel, on_notify)
    try:
        return await _measure(sender, sub, pops, gap)  # type: ignore[arg-type]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await lis.close()
        await pub.close()


def run(size: str = "full") -> dict[str, Any]:
    sz = SIZES[size]
    url = os.environ.get("CALLCORE_TEST_BROKER_URL", "nats://127.0.0.1:4222")
    dsn = os.environ.get("CALLCORE_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")

    async def main() -> dict[str, Any]:
        res: dict[str, Any] = {"sizes": sz, "broker": url}
        await _baseline(50, 0)  # warm-up
        res["baseline"] = summarize(await _baseline(sz["pops"], sz["gap"]), 1000)
        await _nats(url, 20, 0)  # warm-up (connections, subject interest)
        res["nats"] = summarize(await _nats(url, sz["pops"], sz["gap"]), 1000)
        bus = Bus()
        bsub = bus.subscribe({"agent:1001"})
        bsub.queue = asyncio.Queue()
        res["burst_baseline"] = await _burst(bus, bsub, sz["burst"])
        res["burst_nats"] = await _nats(url, 0, 0, burst=sz["burst"])
        try:
            res["pg_notify"] = summarize(await _pg_notify(dsn, sz["pops"], sz["gap"]), 1000)
        except (OSError, ConnectionError, TimeoutError, ImportError) as exc:  # optional comparison
            res["pg_notify"] = {"n": 0, "skipped": f"{type(exc).__name__}: {exc}"}
        except Exception as exc:  # asyncpg's own errors (auth, no server)
            res["pg_notify"] = {"n": 0, "skipped": f"{type(exc).__name__}: {exc}"}
        return res

    d = asyncio.run(main())
    base, nats_ = d["baseline"], d["nats"]
    figures = [
        Figure("broker", "in-process bus p50 (baseline)", base["p50"], "ms", note="publish → Subscription.get, one process"),
        Figure("broker", "NATS hop p50", nats_["p50"], "ms", baseline=base["p50"], lower_is_better=True),
        Figure("broker", "NATS hop p99", nats_["p99"], "ms", baseline=base["p99"], lower_is_better=True),
        Figure("broker", "NATS added p99", nats_["p99"] - base["p99"], "ms", target=f"< {ADDED_P99_MS} ms",
               verdict=check(nats_["p99"] - base["p99"] < ADDED_P99_MS) if size == "full" else "info",
               lower_is_better=True),
    ]
    figures += [
        Figure("broker", f"storm of {d['burst_nats']['n']} pops: NATS relay", d["burst_nats"]["per_second"], "msg/s",
               baseline=d["burst_baseline"]["per_second"],
               note="pops/s one instance relays to another (the baseline: the in-process bus)"),
    ]
    pg = d["pg_notify"]
    if pg.get("n"):
        figures += [
            Figure("broker", "PG LISTEN/NOTIFY hop p50", pg["p50"], "ms", baseline=base["p50"], lower_is_better=True),
            Figure("broker", "PG LISTEN/NOTIFY hop p99", pg["p99"], "ms", baseline=base["p99"], lower_is_better=True),
        ]
    return {"figures": figures, "details": d}


if __name__ == "__main__":  # pragma: no cover
    r = run(os.environ.get("BENCH_SIZE", "quick"))
    print(json.dumps(r["details"], indent=1, ensure_ascii=False))
