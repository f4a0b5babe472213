"""Benchmark 2 — screen-pop latency.

From the ``AgentCalled`` frame written to the AMI socket by the fake Asterisk to the
``call.ringing`` pop received by that agent's websocket client, with ``agents``
(2,000) agent websockets connected and a background of ``bg_fps`` (5,000) AMI
frames/s of capture traffic. The fake Asterisk, the background traffic and all the
websocket clients live in the load process (one CPU); the server in another (the
other CPU). Both timestamps are taken in the load process, with one clock.

* sequential pops: one call at a time (setup frames, then AgentCalled, wait for the
  pop, then the hang-up frames), to a random agent;
* a burst: ``burst`` (200) AgentCalled frames for as many agents in ONE write;
* every pop is checked: received by exactly the agent it was for, with its call id.

Baseline (same run, same load, same clients): a *transport floor* — a minimal
asyncio relay in the server process that splits the AMI stream, picks out
AgentCalled frames and sends a JSON pop over a plain ``websockets`` server. It shows
what loopback + Python websockets cost, so the ratio is callcore's own overhead.

The server is the composition root (``callcore.app.Container``) when it starts; if
it cannot (wiring still landing), the same pieces are built directly (AmiClient →
CtiService → bus → FastAPI ``/ws`` under uvicorn) and ``details.server`` says so.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import tempfile
import time
from typing import Any

from benchmarks.common import LOG_COUNTER, GcPauses, apply_gc_mode, LOAD_CPUS, SERVER_CPUS, Child, Figure, Heartbeat, check, pipe_recv, quiet_logs, rss_bytes, summarize

SIZES = {
    "full": {"agents": 2000, "bg_fps": 5000, "pops": 1000, "burst": 200, "bursts": 3, "gap": 0.02},
    "quick": {"agents": 40, "bg_fps": 500, "pops": 30, "burst": 20, "bursts": 1, "gap": 0.01},
    "smoke": {"agents": 8, "bg_fps": 200, "pops": 8, "burst": 5, "bursts": 1, "gap": 0.005},
}
JWT_KEY = "bench-pop-key-long-enough-for-the-startup-check"  # >= 32 chars (auth.checker)
AMI_SECRET = "bench-pop-ami-secret"  # not a `change-me` placeholder: the start-up check refuses those
AGENT_BASE = 5000  # agent ids 5000.. (the captures use 1001-1003)
P50_MS, P99_MS = 2.0, 10.0


# ================================================================ frames
def _chan(channel: str, uid: str, linked: str, state: int, desc: str, num: str, name: str, prefix: str = "") -> str:
    p = prefix
    return (
        f"{p}Channel: {channel}\r\n{p}ChannelState: {state}\r\n{p}ChannelStateDesc: {desc}\r\n"
        f"{p}CallerIDNum: {num}\r\n{p}CallerIDName: {name}\r\n{p}ConnectedLineNum: {num}\r\n"
        f"{p}ConnectedLineName: {name}\r\n{p}Language: ko\r\n{p}AccountCode: \r\n{p}Context: queue-direct\r\n"
        f"{p}Exten: sales\r\n{p}Priority: 4\r\n{p}Uniqueid: {uid}\r\n{p}Linkedid: {linked}\r\n"
    )


class PopCall:
    """The frames of one queued call that rings one agent (shaped like the captures)."""

    def __init__(self, n: int, agent: str) -> None:
        self.n = n
        self.agent = agent
        self.uid = f"3{n:09d}.1"
        self.dest_uid = f"3{n:09d}.2"
        self.num = f"010{n % 100000000:08d}"
        self.name = "홍길동"
        self.chan = f"Local/pop@sim-caller-{n:08x};1"
        self.dest = f"Local/{agent}@agents-{n:08x};1"

    def setup(self) -> bytes:
        c = _chan(self.chan, self.uid, self.uid, 6, "Up", self.num, self.name)
        return (
            f"Event: Newchannel\r\nPrivilege: call,all\r\n{c}\r\n"
            f"Event: QueueCallerJoin\r\nPrivilege: agent,all\r\n{c}Queue: sales\r\nPosition: 1\r\nCount: 1\r\n\r\n"
        ).encode()

    def agent_called(self) -> bytes:
        c = _chan(self.chan, self.uid, self.uid, 6, "Up", self.num, self.name)
        d = _chan(self.dest, self.dest_uid, self.uid, 0, "Down", self.num, self.name, prefix="Dest")
        return (
            f"Event: AgentCalled\r\nPrivilege: agent,all\r\n{c}{d}Queue: sales\r\n"
            f"Interface: Local/{self.agent}@agents/n\r\nMemberName: Agent {self.agent}\r\n\r\n"
        ).encode()

    def teardown(self) -> bytes:
        c = _chan(self.chan, self.uid, self.uid, 6, "Up", self.num, self.name)
        d = _chan(self.dest, self.dest_uid, self.uid, 0, "Down", self.num, self.name)
        return (
            f"Event: AgentRingNoAnswer\r\nPrivilege: agent,all\r\n{c}"
            + _chan(self.dest, self.dest_uid, self.uid, 0, "Down", self.num, self.name, prefix="Dest")
            + f"Queue: sales\r\nInterface: Local/{self.agent}@agents/n\r\nMemberName: Agent {self.agent}\r\nRingTime: 0\r\n\r\n"
            f"Event: Hangup\r\nPrivilege: call,all\r\n{d}Cause: 16\r\nCause-txt: Normal Clearing\r\n\r\n"
            f"Event: QueueCallerAbandon\r\nPrivilege: agent,all\r\n{c}Queue: sales\r\nPosition: 1\r\nOriginalPosition: 1\r\nHoldTime: 1\r\n\r\n"
            f"Event: Hangup\r\nPrivilege: call,all\r\n{c}Cause: 16\r\nCause-txt: Normal Clearing\r\n\r\n"
        ).encode()


# ============================================================ load side
def load_process(conn: Any) -> None:
    quiet_logs()
    asyncio.run(_Load(conn).main())


class _Load:
    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.waiters: dict[str, asyncio.Future[float]] = {}
        self.expected: dict[str, str] = {}  # call id -> agent
        self.wrong = 0
        self.duplicates = 0
        self.other_pops = 0
        self.ws_messages = 0
        self.clients: list[Any] = []
        self.tasks: set[asyncio.Task[Any]] = set()
        self.bg_frames = 0

    @property
    def writer(self) -> asyncio.StreamWriter:
        """The AMI connection the server uses NOW: when callcore's AMI client reconnects (its
        keepalive timed out during a stall) frames written to the old socket would be lost and
        every later pop would time out; reconnects are counted (``ami_connections``)."""
        return self.fake.writers[-1]

    @writer.setter
    def writer(self, _: Any) -> None:  # kept for the callers that "pick" a writer
        pass

    async def main(self) -> None:
        from benchmarks.amigen import CaptureMix, FakeAmiServer

        self.mix = CaptureMix()
        self.fake = FakeAmiServer(require_login=False)
        port = await self.fake.start()
        self.conn.send({"port": port})
        while True:
            msg = await pipe_recv(self.conn)
            cmd = msg.get("cmd")
            if cmd == "stop":
                break
            if cmd == "connect":
                await self.connect(msg["url"], msg["agents"])
            else:
                await self.command(cmd, msg)
        for t in self.tasks:
            t.cancel()
        for ws in self.sockets():
            try:
                await asyncio.wait_for(ws.close(), 0.5)
            except Exception:
                pass
        await self.fake.close()

    async def command(self, cmd: str | None, msg: dict[str, Any]) -> None:
        """One command of the driver besides connect/stop (a subclass adds its own)."""
        if cmd == "run":
            self.conn.send({"result": await self.run(msg)})

    def sockets(self) -> list[Any]:
        """The websockets to close at the end."""
        return self.clients

    # --- websocket clients
    async def connect(self, url: str, agents: list[tuple[str, str]]) -> None:
        from websockets.asyncio.client import connect

        sem = asyncio.Semaphore(50)
        t0 = time.perf_counter()
        failed = 0

        async def one(agent: str, token: str) -> None:
            nonlocal failed
            async with sem:
                for attempt in range(5):
                    try:
                        ws = await connect(f"{url}?token={token}&agent={agent}", open_timeout=30, ping_interval=None,
                                           max_queue=None, compression=None)
                        break
                    except Exception:
                        await asyncio.sleep(0.2 * (attempt + 1))
                else:
                    failed += 1
                    return
                hello = json.loads(await ws.recv())
                assert hello.get("event") == "hello", hello
                self.clients.append(ws)
                t = asyncio.get_running_loop().create_task(self.reader(ws, agent))
                self.tasks.add(t)

        await asyncio.gather(*(one(a, tok) for a, tok in agents))
        self.conn.send({"connected": len(self.clients), "failed": failed, "seconds": time.perf_counter() - t0})

    async def reader(self, ws: Any, agent: str) -> None:
        perf = time.perf_counter
        loads = json.loads
        try:
            async for raw in ws:
                now = perf()
                self.ws_messages += 1
                if '"call.ringing"' not in raw:
                    continue
                msg = loads(raw)
                if msg.get("event") != "call.ringing":
                    continue
                payload = msg.get("payload") or {}
                call_id = payload.get("call_id")
                want = self.expected.get(call_id)
                if want is None:
                    self.other_pops += 1
                    continue
                if want != agent or payload.get("agent_id") != agent:
                    self.wrong += 1
                    continue
                fut = self.waiters.get(call_id)
                if fut is None or fut.done():
                    self.duplicates += 1
                    continue
                fut.set_result(now)
        except Exception:
            pass

    # --- AMI traffic
    async def background(self, fps: int) -> None:
        """Capture traffic at ``fps`` frames/s, paced every 10 ms."""
        frames: list[bytes] = []
        copy = 10_000
        tick = 0.01
        per_tick = fps * tick
        owed = 0.0
        nxt = time.perf_counter()
        while True:
            owed += per_tick
            k = int(owed)
            owed -= k
            while len(frames) < k:
                frames.extend(self.mix.frames_of(copy))
                copy += 1
            if k:
                self.writer.write(b"".join(frames[:k]))
                del frames[:k]
                self.bg_frames += k
            nxt += tick
            await asyncio.sleep(max(0.0, nxt - time.perf_counter()))

    async def run(self, cfg: dict[str, Any]) -> dict[str, Any]:
        assert self.fake.writers, "no AMI client connected"
        self.writer = self.fake.writers[-1]
        agents: list[str] = cfg["agents"]
        rng = random.Random(7)
        loop = asyncio.get_running_loop()
        bg = loop.create_task(self.background(cfg["bg_fps"]))
        await asyncio.sleep(1.0 if cfg["pops"] > 100 else 0.2)  # background flowing
        seq: list[float] = []
        at: dict[str, list[float]] = {}  # call id -> [AMI write, received] (the server splits it: pop_path)
        lost = 0
        n = 0
        bg0, t_start = self.bg_frames, time.perf_counter()
        for _ in range(cfg["pops"]):
            n += 1
            call = PopCall(n, rng.choice(agents))
            self.expected[call.uid] = call.agent
            fut = loop.create_future()
            self.waiters[call.uid] = fut
            self.writer.write(call.setup())
            await asyncio.sleep(0.002)
            t0 = time.perf_counter()
            self.writer.write(call.agent_called())
            try:
                t1 = await asyncio.wait_for(fut, 2.0)
                seq.append(t1 - t0)
                at[call.uid] = [t0, t1]
            except asyncio.TimeoutError:
                lost += 1
            self.writer.write(call.teardown())
            await asyncio.sleep(cfg["gap"])
        bg_rate = (self.bg_frames - bg0) / (time.perf_counter() - t_start)
        bursts: list[list[float]] = []
        burst_lost = 0
        for _ in range(cfg["bursts"]):
            calls = []
            for agent in rng.sample(agents, min(cfg["burst"], len(agents))):
                n += 1
                call = PopCall(n, agent)
                calls.append(call)
                self.expected[call.uid] = agent
                self.waiters[call.uid] = loop.create_future()
            self.writer.write(b"".join(c.setup() for c in calls))
            await asyncio.sleep(0.2)
            blob = b"".join(c.agent_called() for c in calls)
            t0 = time.perf_counter()
            self.writer.write(blob)
            lat = []
            for c in calls:
                try:
                    t1 = await asyncio.wait_for(self.waiters[c.uid], 5.0)
                    lat.append(t1 - t0)
                except asyncio.TimeoutError:
                    burst_lost += 1
            bursts.append(lat)
            self.writer.write(b"".join(c.teardown() for c in calls))
            await asyncio.sleep(0.5)
        await asyncio.sleep(0.3)  # late duplicates / wrong deliveries
        bg.cancel()
        return {
            "sequential": seq, "sequential_at": at, "lost": lost, "bursts": bursts, "burst_lost": burst_lost,
            "wrong_agent": self.wrong, "duplicates": self.duplicates, "bg_fps_measured": bg_rate,
            "ws_clients": len(self.clients), "ws_messages": self.ws_messages, "ami_connections": len(self.fake.writers),
        }


# ========================================================== server side
def server_process(conn: Any, kind: str, ami_port: int) -> None:
    quiet_logs()
    asyncio.run(_server_main(conn, kind, ami_port))


_BOOKKEEPING: dict[str, Any] = {}


def _bookkeeping() -> dict[str, Any]:
    """Per-call database bookkeeping of the server (issue 18): counts, independent of the load."""
    c = _BOOKKEEPING.get("container")
    out: dict[str, Any] = {}
    if c is None:
        return out
    for name, obj, attrs in (
        ("persistence", getattr(getattr(c, "cti", None), "persistence", None), ("batches", "batch_fallbacks", "failures")),
        ("journal", getattr(c, "journal", None), ("direct", "drained", "db_failures", "refused")),
        ("recording", getattr(c, "recording", None), ("unrecorded_lookups", "unrecorded_skipped")),
        ("gc_freezer", getattr(c, "gc_freezer", None), ("freezes", "burst_freezes", "settle_freezes", "gc_freezes", "refreezes", "after_full_freezes", "thaws", "thaws_skipped")),
    ):
        if obj is not None:
            out[name] = {a: getattr(obj, a) for a in attrs if hasattr(obj, a)}
    if "freeze_times" in _BOOKKEEPING:
        out["freeze_times_since_measure"] = [round(t - _BOOKKEEPING.get("t0", 0), 2) for t in _BOOKKEEPING["freeze_times"]]
    return out


#: call id -> [AMI read, published, written] (perf_counter: CLOCK_MONOTONIC, one clock for both processes)
_POP_PATH: dict[str, list[float]] = {}
_BENCH_AGENT = str(AGENT_BASE)[0]  # the benchmark's agents (5000..6999), not the captures' 1001-1003


def _watch_pop_path(container: Any) -> None:
    """Where each ``call.ringing`` of the benchmark's agents spends its time in the server (issue
    18 round five): the AMI read, the publication on the bus and the websocket frame written
    (``callcore_pop_latency_seconds`` measures the last minus the first). ``perf_counter`` is
    CLOCK_MONOTONIC on Linux, shared by the load process: the driver splits each pop into
    AMI write → read (kernel + the server's loop busy with other work), read → published (CTI
    pipeline), published → written (the websocket edge) and written → received (kernel + client)."""
    bus, guard = getattr(container, "bus", None), getattr(container, "ws_guard", None)
    if bus is None or guard is None:
        return
    publish, written = bus.publish, guard.on_written
    perf = time.perf_counter
    by_origin: dict[float, str] = {}

    def watched_publish(msg: Any) -> int:
        if msg.name == "call.ringing" and msg.origin and str(msg.payload.get("agent_id", "")).startswith(_BENCH_AGENT):
            call_id = msg.payload.get("call_id")
            if call_id not in _POP_PATH:
                _POP_PATH[call_id] = [msg.origin, perf(), 0.0]
                by_origin[msg.origin] = call_id
        return publish(msg)

    def watched_written(event: str, seconds: float) -> None:
        if event == "call.ringing":
            now = perf()
            est = now - seconds  # the message's origin, give or take this hook's own microseconds
            origin = min(by_origin, key=lambda o: abs(o - est), default=None)
            if origin is not None and abs(origin - est) < 1e-4:
                call_id = by_origin.pop(origin)
                if not _POP_PATH[call_id][2]:
                    _POP_PATH[call_id][2] = now
        if written is not None:
            written(event, seconds)

    bus.publish = watched_publish  # type: ignore[method-assign]
    guard.on_written = watched_written


def _split_pop_path(server: dict[str, list[float]], sent: dict[str, list[float]]) -> dict[str, Any]:
    """Per sequential pop (call id → [AMI write, received] in the load process), its four legs."""
    legs: dict[str, list[float]] = {"write_to_read": [], "read_to_published": [], "published_to_written": [], "written_to_received": []}
    for call_id, (t0, t1) in sent.items():
        got = server.get(call_id)
        if got is None or not got[2]:
            continue
        read, published, written = got
        for k, v in zip(legs, (read - t0, published - read, written - published, t1 - written)):
            legs[k].append(v)
    return {k: summarize(v, 1000) for k, v in legs.items()}


def _frozen_garbage() -> dict[str, Any]:
    """The reference cycles that became garbage after the collector froze them (issue 18 round
    four): what the freezer's price was in this run. Last thing before the server stops: the
    young garbage is collected first, then the frozen objects are handed back and collected with
    ``DEBUG_SAVEALL``, so what is counted is only cyclic garbage that was frozen."""
    import gc
    from collections import Counter

    # the freezer's hook (callcore/gctune.py) would freeze a grown heap at the start of these
    # collections instead of letting them collect: measure without it
    hooks = [cb for cb in gc.callbacks if getattr(cb, "__name__", "") == "_on_collection"]
    for cb in hooks:
        gc.callbacks.remove(cb)
    gc.collect()
    frozen = gc.get_freeze_count()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.unfreeze()
        kinds = None
        if os.environ.get("CALLCORE_BENCH_GC_TYPES") == "1":  # diagnosis: what the hourly thaw walks
            from benchmarks.common import _kind

            kinds = Counter(_kind(o) for o in gc.get_objects(2)).most_common(40)
        t = time.perf_counter()
        gc.collect()
        ms = (time.perf_counter() - t) * 1000
        top = Counter(type(o).__qualname__ for o in gc.garbage).most_common(15)
        n = len(gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    # what a thaw costs in production (round five): the same walk without DEBUG_SAVEALL, the
    # garbage just counted (released above, still cyclic) freed in it
    t = time.perf_counter()
    gc.collect()
    thaw_ms = (time.perf_counter() - t) * 1000
    gc.callbacks.extend(hooks)
    out = {"frozen": frozen, "garbage": n, "full_collection_ms": round(ms, 1), "thaw_collection_ms": round(thaw_ms, 1),
           "top_types": top}
    if kinds is not None:
        out["frozen_kinds"] = kinds
    return out


async def _server_main(conn: Any, kind: str, ami_port: int) -> None:
    stop_server: Any
    info: dict[str, Any] = {"kind": kind}
    if kind == "floor":
        port, stop_server = await _start_floor(ami_port)
    else:
        port, stop_server, how = await _start_callcore(ami_port)
        info["server"] = how
    info.update(port=port, rss=rss_bytes(), gc_mode=apply_gc_mode())
    # CALLCORE_BENCH_CPROFILE=<file> (callcore only): cProfile of the measured part alone
    profile_out = os.environ.get("CALLCORE_BENCH_CPROFILE") if kind != "floor" else None
    profiler: Any = None
    # CALLCORE_BENCH_STALL_DUMP=<file> (callcore only): the stacks that held the loop > 50 ms
    stall_out = os.environ.get("CALLCORE_BENCH_STALL_DUMP") if kind != "floor" else None
    sampler: Any = None
    if stall_out:
        from benchmarks.stallsampler import StallSampler

        sampler = StallSampler(float(os.environ.get("CALLCORE_BENCH_STALL_THRESHOLD_MS", "50")) / 1000).start()
    # CALLCORE_BENCH_SQL_COUNT=<file> (callcore only): which code issues the SQL, holds and waits for connections
    sql_out = os.environ.get("CALLCORE_BENCH_SQL_COUNT") if kind != "floor" else None
    sqlc: Any = None
    if sql_out:
        from benchmarks.sqlcount import SqlCounter

        sqlc = SqlCounter().install()
    hb = Heartbeat(0.005).start()
    gcp = GcPauses()
    conn.send({"ready": info})
    while True:
        msg = await pipe_recv(conn)
        if msg.get("cmd") == "stop":
            break
        if msg.get("cmd") == "rss":
            hb.reset()  # from here on: the measured part
            _POP_PATH.clear()
            gcp.reset()
            if sampler is not None:
                sampler.reset()
            if sqlc is not None:
                sqlc.reset()
            _BOOKKEEPING["t0"] = time.perf_counter()
            if profile_out and profiler is None:
                import cProfile

                profiler = cProfile.Profile()
                profiler.enable()
            conn.send({"rss": rss_bytes()})
        if msg.get("cmd") == "stats":
            import gc
            from collections import Counter

            objs = gc.get_objects()
            types = Counter(type(o).__qualname__ for o in objs).most_common(12)
            # which live tasks (by coroutine) the collector walks: the unfrozen ones are in ``objs``
            unfrozen = {id(o) for o in objs if type(o).__qualname__ == "Task"}
            tasks = Counter((getattr(t.get_coro(), "__qualname__", "?"), id(t) in unfrozen) for t in asyncio.all_tasks())
            task_top = [[f"{name}{'' if young else ' (frozen)'}", n] for (name, young), n in tasks.most_common(15)]
            conn.send({"stats": {"gc_tracked_objects": len(objs), "gc_top_types": types,"loop_max_stall_ms": hb.max_stall * 1000, "loop_stalls_over_50ms": hb.stalls_over_50ms,
                                 "tasks": task_top, "gc": gcp.summary(), "logged": LOG_COUNTER.top(), "rss": rss_bytes(),
                                 "bookkeeping": _bookkeeping(), "pop_path": _POP_PATH,
                                 "stall_episodes": sorted(sampler.episodes, key=lambda e: -e["ms"])[:20] if sampler is not None else None,
                                 "frozen_garbage": _frozen_garbage()}})
    await hb.stop()
    if sqlc is not None:
        with open(sql_out, "w") as fh:  # type: ignore[arg-type]
            fh.write(sqlc.report())
    if sampler is not None:
        await sampler.stop()
        with open(stall_out, "w") as fh:  # type: ignore[arg-type]
            fh.write(sampler.report())
    if profiler is not None:
        import pstats

        profiler.disable()
        with open(profile_out, "w") as fh:  # type: ignore[arg-type]
            st = pstats.Stats(profiler, stream=fh)
            st.sort_stats("cumulative").print_stats(120)
            st.sort_stats("tottime").print_stats(60)
    await stop_server()


async def _start_callcore(ami_port: int) -> tuple[int, Any, str]:
    from callcore.settings import Settings

    tmp = tempfile.mkdtemp(prefix="callcore-bench-")
    settings = Settings(
        data_dir=tmp, http_host="127.0.0.1", http_port=0, ami_host="127.0.0.1", ami_port=ami_port,
        only=["ami", "http"], dialplan_watch=False, jwt_key=JWT_KEY, ami_secret=AMI_SECRET, log_level="WARNING",
    )
    try:
        from callcore.app import Container

        container = Container(settings)
        await container.start()
        await container.ami.wait_connected(10)
        assert container.http_port
        _BOOKKEEPING["container"] = container
        if os.environ.get("CALLCORE_BENCH_GC_TYPES") == "1":  # diagnosis: when the freezer froze
            fz = container.gc_freezer
            orig, times = fz.freeze, _BOOKKEEPING.setdefault("freeze_times", [])

            def timed_freeze() -> None:
                orig()
                times.append(round(time.perf_counter(), 2))

            fz.freeze = timed_freeze  # type: ignore[method-assign]
        _watch_pop_path(container)
        return container.http_port, container.stop, "container"
    except Exception as exc:  # the composition root is still being wired: build the same pieces
        logging.getLogger("bench").warning("Container failed (%s: %s); building the CTI pieces directly", type(exc).__name__, exc)
        try:
            await container.stop()
        except Exception:
            pass
    return await _start_pieces(ami_port)


async def _start_pieces(ami_port: int) -> tuple[int, Any, str]:
    import uvicorn
    from fastapi import FastAPI

    from benchmarks.cti_stub import NullCrm, NullRepository
    from callcore.bus import Bus
    from cti.ami.client import AmiClient
    from api.auth import Authenticator
    from cti.routes import routers
    from cti.service import CtiService

    bus = Bus()
    holder: dict[str, Any] = {}
    client = AmiClient(
        "127.0.0.1", ami_port, "bench", "bench",
        on_event=lambda e: holder["cti"].handle_event(e), on_connect=lambda: holder["cti"].resync(client),
    )
    cti = CtiService(ami=client, repository=NullRepository(), bus=bus, crm=NullCrm(), authenticator=Authenticator(JWT_KEY))  # type: ignore[arg-type]
    holder["cti"] = cti
    await cti.start()
    app = FastAPI()
    for r in routers() if callable(routers) else routers:  # a list, or a function returning one
        app.include_router(r)
    app.state.cti = cti
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="off", ws="websockets-sansio", backlog=4096)
    server = uvicorn.Server(config)
    task = asyncio.get_running_loop().create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    await client.start()
    await client.wait_connected(10)

    async def stop() -> None:
        server.should_exit = True
        await client.close()
        await asyncio.wait({task}, timeout=3)
        await cti.stop()

    return port, stop, "pieces (AmiClient + CtiService + FastAPI /ws; null repository)"


async def _start_floor(ami_port: int) -> tuple[int, Any]:
    """The transport floor: AMI stream → naive split → JSON over plain ``websockets``."""
    from urllib.parse import parse_qs, urlparse

    from websockets.asyncio.server import serve

    conns: dict[str, Any] = {}
    sends: set[asyncio.Task[Any]] = set()
    loop = asyncio.get_running_loop()

    async def handler(ws: Any) -> None:
        q = parse_qs(urlparse(ws.request.path).query)
        agent = q.get("agent", [""])[0]
        conns[agent] = ws
        await ws.send(json.dumps({"event": "hello", "payload": {"agent": agent}}))
        try:
            await ws.wait_closed()
        finally:
            conns.pop(agent, None)

    class Relay(asyncio.Protocol):
        def __init__(self) -> None:
            self.buf = b""

        def data_received(self, data: bytes) -> None:
            self.buf += data
            *frames, self.buf = self.buf.split(b"\r\n\r\n")
            for f in frames:
                if not f.startswith(b"Event: AgentCalled\r\n"):
                    continue
                h = dict(line.split(": ", 1) for line in f.decode("utf-8").split("\r\n")[1:] if ": " in line)
                agent = h.get("Interface", "").split("/")[1].split("@")[0]
                ws = conns.get(agent)
                if ws is not None:
                    msg = json.dumps({"event": "call.ringing", "payload": {"call_id": h.get("Linkedid"), "agent_id": agent,
                                                                          "caller_name": h.get("CallerIDName")}}, ensure_ascii=False)
                    t = loop.create_task(ws.send(msg))
                    sends.add(t)
                    t.add_done_callback(sends.discard)

    server = await serve(handler, "127.0.0.1", 0, ping_interval=None, compression=None, max_queue=None)
    port = list(server.sockets)[0].getsockname()[1]
    transport, _ = await loop.create_connection(Relay, "127.0.0.1", ami_port)

    async def stop() -> None:
        transport.close()
        server.close()
        await server.wait_closed()

    return port, stop


# ================================================================ driver
def _measure(kind: str, cfg: dict[str, Any]) -> dict[str, Any]:
    from api.auth import issue_token

    load = Child(load_process, cpus=LOAD_CPUS, name="pop-load")
    server = None
    try:
        ami_port = load.expect("port", 60)["port"]
        server = Child(server_process, kind, ami_port, cpus=SERVER_CPUS, name=f"pop-{kind}", daemon=False)
        info = server.expect("ready", 120)["ready"]
        agents = [str(AGENT_BASE + i) for i in range(cfg["agents"])]
        pairs = [(a, issue_token(JWT_KEY, a, "agent", 3600)) for a in agents]
        load.send({"cmd": "connect", "url": f"ws://127.0.0.1:{info['port']}/ws", "agents": pairs})
        conn_info = load.expect("connected", 600)
        server.send({"cmd": "rss"})
        rss_connected = server.expect("rss", 30)["rss"]
        load.send({"cmd": "run", **cfg, "agents": agents})
        res = load.expect("result", 1800)["result"]
        server.send({"cmd": "stats"})
        res["server_stats"] = stats = server.expect("stats", 60)["stats"]
        path, sent = stats.pop("pop_path", None), res.pop("sequential_at", None)
        if path and sent:
            stats["pop_path_ms"] = _split_pop_path(path, sent)
        res.update(kind=kind, server=info.get("server", kind), connect=conn_info, rss_before=info["rss"], rss_connected=rss_connected)
        return res
    finally:
        load.stop()
        if server is not None:
            server.stop()


def run(size: str = "full") -> dict[str, Any]:
    cfg = dict(SIZES[size])
    # experiments: CALLCORE_BENCH_POP='{"pops": 200, "bursts": 1}' overrides sizes (stated in the JSON)
    cfg.update(json.loads(os.environ.get("CALLCORE_BENCH_POP") or "{}"))
    floor = _measure("floor", cfg)
    cc = _measure("callcore", cfg)
    figures: list[Figure] = []
    s_cc, s_fl = summarize(cc["sequential"], 1000), summarize(floor["sequential"], 1000)
    b_cc = summarize([x for b in cc["bursts"] for x in b], 1000)
    b_fl = summarize([x for b in floor["bursts"] for x in b], 1000)
    tag = f"{cc['ws_clients']} ws, {cc['bg_fps_measured']:.0f} bg fr/s"
    figures += [
        Figure("pop", f"pop p50 ({tag})", s_cc.get("p50"), "ms", s_fl.get("p50"), target=f"<= {P50_MS} ms",
               verdict=check(s_cc.get("p50", 1e9) <= P50_MS), lower_is_better=True,
               note=f"server: {cc['server']}"),
        Figure("pop", "pop p99", s_cc.get("p99"), "ms", s_fl.get("p99"), target=f"<= {P99_MS} ms",
               verdict=check(s_cc.get("p99", 1e9) <= P99_MS), lower_is_better=True),
        Figure("pop", f"pops lost / wrong agent (of {len(cc['sequential']) + cc['lost']})",
               float(cc["lost"] + cc["wrong_agent"] + cc["burst_lost"] + cc["duplicates"]), "",
               float(floor["lost"] + floor["wrong_agent"] + floor["burst_lost"]), target="0",
               verdict=check(cc["lost"] + cc["wrong_agent"] + cc["burst_lost"] + cc["duplicates"] == 0)),
        Figure("pop", f"burst of {cfg['burst']}: p50", b_cc.get("p50"), "ms", b_fl.get("p50"), target="report", lower_is_better=True),
        Figure("pop", f"burst of {cfg['burst']}: p99 (last pop)", b_cc.get("p99"), "ms", b_fl.get("p99"), target="report",
               lower_is_better=True),
        Figure("pop", "server loop: longest stall during the run", cc["server_stats"]["loop_max_stall_ms"], "ms",
               floor["server_stats"]["loop_max_stall_ms"], target="info", lower_is_better=True,
               note=f"{cc['server_stats']['loop_stalls_over_50ms']} stalls over 50 ms; AMI connections {cc.get('ami_connections')}"),
        Figure("pop", f"server RSS per websocket", (cc["rss_connected"] - cc["rss_before"]) / max(1, cc["ws_clients"]) / 1024, "KiB",
               (floor["rss_connected"] - floor["rss_before"]) / max(1, floor["ws_clients"]) / 1024, target="info"),
    ]
    details = {"sizes": cfg, "callcore": _slim(cc), "floor": _slim(floor), "summary": {"callcore": s_cc, "floor": s_fl,
               "burst_callcore": b_cc, "burst_floor": b_fl}}
    return {"name": "pop", "figures": figures, "details": details}


def _slim(r: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in r.items() if k not in ("sequential", "bursts")}
    out["sequential_ms"] = [round(x * 1000, 3) for x in r["sequential"]]
    out["bursts_ms"] = [[round(x * 1000, 3) for x in b] for b in r["bursts"]]
    return out
