"""Benchmark 3 — FastAGI.

Concurrent IVR sessions driven by an AGI client emulator (load process, one CPU)
that answers like Asterisk: the ``agi_*`` header block, then one status line per
command (``200 result=0 endpos=...`` for prompts, ``200 result=49`` — ASCII '1' —
for the menu prompt that has escape digits, ``200 result=1`` for SET VARIABLE).
Each session runs ``benchmarks/dialplans/bench.yaml`` through the real engine:
ANSWER, language, two prompts, a menu answered with DTMF 1, a CRM lookup against
the load process's HTTP stub, and the queue hand-off (SET VARIABLE IVR_QUEUE,
IVR_PRIORITY, IVR_TIMEOUT, CALLCORE_SESSION).

Server (other CPU): callcore's ``FastAgiServer`` + ``AgiChannel`` + ``IvrService``
(``build_ivr_service``: flow registry, engine, in-memory session store, httpx
lookup client). Baseline, same run: a bare panoramisk 1.4 ``fast_agi.Application``
route that sends the *same command lines* (recorded from one callcore session by a
probe) and makes the same HTTP lookup with httpx at the same point — no engine.

Figures: sessions/s with ``concurrency`` sessions in a closed loop (reps alternated,
best kept); ``sessions`` (1,000) started at once, with the server-side time of every
command (write → answer parsed, from ``on_command`` / timing ``send_command``);
server RSS per idle session (``park`` sessions held at the menu prompt).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import tempfile
import time
from typing import Any

from benchmarks.common import GC_ENV, LOG_COUNTER, LOAD_CPUS, GcPauses, ROOT, SERVER_CPUS, Child, Figure, check, pipe_recv, quiet_logs, rss_bytes, settle_rss, summarize

SIZES = {
    # playback: seconds the emulator takes to answer STREAM FILE (welcome, notice, menu until the digit)
    "full": {"concurrency": 50, "seconds": 6.0, "reps": 3, "sessions": 1000, "hold": 20.0, "playback": (3.0, 2.0, 3.0), "park": 1000},
    "quick": {"concurrency": 4, "seconds": 1.0, "reps": 1, "sessions": 20, "hold": 1.0, "playback": (0.1, 0.05, 0.1), "park": 10,
              "fresh_server_per_phase": False},
    "smoke": {"concurrency": 2, "seconds": 0.3, "reps": 1, "sessions": 10, "hold": 0.3, "playback": (0.02, 0.01, 0.02), "park": 5,
              "fresh_server_per_phase": False},
}
TARGET_RATIO = 0.8
TARGET_P99_MS = 5.0
FLOW_DIR = ROOT / "benchmarks" / "dialplans"
SOUNDS_DIR = ROOT / "dialplans" / "sounds"
SCRIPT = "ivr?flow=bench"

_HEADER_TEMPLATE = (
    "agi_network: yes\nagi_network_script: {script}\nagi_request: agi://127.0.0.1:{port}/{script}\n"
    "agi_channel: Local/bench@sim-caller-{n:08x};1\nagi_language: ko\nagi_type: Local\n"
    "agi_uniqueid: 4{n:09d}.1\nagi_version: 20.20.1\nagi_callerid: 010{num:08d}\nagi_calleridname: 홍길동\n"
    "agi_callingpres: 0\nagi_callingani2: 0\nagi_callington: 0\nagi_callingtns: 0\nagi_dnid: 1588\n"
    "agi_rdnis: unknown\nagi_context: ivr-in\nagi_extension: s\nagi_priority: 1\nagi_enhanced: 0.0\n"
    "agi_accountcode: \nagi_threadid: 140404588803776\n\n"
)


# ================================================================= load side
def load_process(conn: Any) -> None:
    quiet_logs()
    asyncio.run(_AgiLoad(conn).main())


def answer(line: bytes) -> bytes:
    """What Asterisk answers to one AGI command line (happy path)."""
    if line.startswith(b"STREAM FILE"):
        if line.rstrip().endswith(b'""'):
            return b"200 result=0 endpos=12000\n"
        return b"200 result=49 endpos=4000\n"  # a digit pressed during a menu prompt: '1'
    if line.startswith(b"GET DATA"):
        return b"200 result=1\n"
    if line.startswith(b"WAIT FOR DIGIT"):
        return b"200 result=49\n"
    if line.startswith(b"SET VARIABLE") or line.startswith(b"HANGUP"):
        return b"200 result=1\n"
    return b"200 result=0\n"


class _AgiLoad:
    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.n = 0
        self.http_hits = 0
        self.trace: list[tuple[str, str]] | None = None
        self.park_gate: asyncio.Event | None = None
        self.parked = 0
        self.open_sessions = 0
        self.peak_open = 0
        self.http_connections = 0

    async def main(self) -> None:
        http = await asyncio.start_server(self._http, "127.0.0.1", 0, backlog=4096)
        self.conn.send({"crm_port": http.sockets[0].getsockname()[1]})
        while True:
            msg = await pipe_recv(self.conn)
            cmd = msg.get("cmd")
            if cmd == "stop":
                break
            if cmd == "probe":
                self.trace = []
                ok = await self.session(msg["port"])
                trace, self.trace = self.trace, None
                self.conn.send({"probe": trace, "ok": ok})
            elif cmd == "throughput":
                self.conn.send({"throughput": await self.throughput(msg["port"], msg["concurrency"], msg["seconds"])})
            elif cmd == "concurrent":
                self.conn.send({"concurrent": await self.concurrent(msg["port"], msg["sessions"])})
            elif cmd == "held":
                self.conn.send({"held": await self.held(msg["port"], msg["slots"], msg["hold"], tuple(msg["playback"]))})
            elif cmd == "park":
                self.conn.send({"parked": await self.park(msg["port"], msg["sessions"])})
        http.close()

    async def _http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        body = '{"customer": {"id": 42, "name": "홍길동", "tier": "gold"}}'.encode()
        resp = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        self.http_connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.http_hits += 1
                if self.trace is not None:
                    self.trace.append(("http", head.split(b"\r\n", 1)[0].split(b" ")[1].decode()))
                writer.write(resp)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def session(self, port: int, park: bool = False, playback: tuple[float, ...] = ()) -> dict[str, Any] | None:
        """One call: returns {"commands": n, "seconds": s} or None when it failed.

        ``playback``: seconds to wait before answering the 1st, 2nd, ... STREAM FILE
        (a prompt playing, the caller listening before pressing a digit)."""
        self.n += 1
        n = self.n
        t0 = time.perf_counter()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return None
        writer.write(_HEADER_TEMPLATE.format(script=SCRIPT, port=port, n=n, num=n % 100_000_000).encode())
        commands = 0
        streams = 0
        self.open_sessions += 1
        self.peak_open = max(self.peak_open, self.open_sessions)
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                commands += 1
                if self.trace is not None:
                    self.trace.append(("agi", line.decode().rstrip("\n")))
                resp = answer(line)
                if playback and line.startswith(b"STREAM FILE"):
                    if streams < len(playback):
                        await asyncio.sleep(playback[streams])
                    streams += 1
                if park and resp.startswith(b"200 result=49"):
                    self.parked += 1
                    assert self.park_gate is not None
                    await self.park_gate.wait()
                writer.write(resp)
        except (ConnectionError, asyncio.IncompleteReadError):
            return None
        finally:
            self.open_sessions -= 1
            writer.close()
        return {"commands": commands, "seconds": time.perf_counter() - t0}

    async def throughput(self, port: int, concurrency: int, seconds: float) -> dict[str, Any]:
        done = failed = commands = 0
        durations: list[float] = []
        stop_at = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal done, failed, commands
            while time.perf_counter() < stop_at:
                r = await self.session(port)
                if r is None:
                    failed += 1
                    continue
                done += 1
                commands += r["commands"]
                durations.append(r["seconds"])

        t0 = time.perf_counter()
        c0, h0 = self.http_connections, self.http_hits
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - t0
        return {"sessions": done, "failed": failed, "commands": commands, "seconds": wall, "sps": done / wall,
                "crm_requests": self.http_hits - h0, "crm_new_connections": self.http_connections - c0,
                "session_ms": summarize(durations, 1000)}

    async def held(self, port: int, slots: int, hold: float, playback: tuple[float, ...]) -> dict[str, Any]:
        """``slots`` sessions kept open at once for ``hold`` seconds: each slot starts a new
        call when its call ends; prompts take ``playback`` seconds; starts are staggered
        over one call length so the calls do not run in lock-step."""
        loop = asyncio.get_running_loop()
        stop_at = loop.time() + hold
        length = sum(playback) or 0.01
        done = failed = commands = 0
        open_samples: list[int] = []
        self.peak_open = 0

        async def slot(i: int) -> None:
            nonlocal done, failed, commands
            await asyncio.sleep(length * i / slots)
            while loop.time() < stop_at:
                r = await self.session(port, playback=playback)
                if r is None:
                    failed += 1
                    continue
                done += 1
                commands += r["commands"]

        async def sampler() -> None:
            await asyncio.sleep(length)
            while True:
                open_samples.append(self.open_sessions)
                await asyncio.sleep(0.1)

        smp = loop.create_task(sampler())
        t0 = time.perf_counter()
        await asyncio.gather(*(slot(i) for i in range(slots)))
        smp.cancel()
        wall = time.perf_counter() - t0
        return {"slots": slots, "sessions": done, "failed": failed, "commands": commands, "seconds": wall,
                "peak_open": self.peak_open, "mean_open_after_rampup": sum(open_samples) / max(1, len(open_samples)),
                "sps": done / wall}

    async def concurrent(self, port: int, sessions: int) -> dict[str, Any]:
        t0 = time.perf_counter()
        results = await asyncio.gather(*(self.session(port) for _ in range(sessions)))
        wall = time.perf_counter() - t0
        ok = [r for r in results if r]
        return {"sessions": len(ok), "failed": sessions - len(ok), "seconds": wall,
                "commands": sum(r["commands"] for r in ok), "session_ms": summarize([r["seconds"] for r in ok], 1000)}

    async def park(self, port: int, sessions: int) -> dict[str, Any]:
        self.park_gate = asyncio.Event()
        self.parked = 0
        tasks = [asyncio.get_running_loop().create_task(self.session(port, park=True)) for _ in range(sessions)]
        deadline = time.monotonic() + 120
        while self.parked < sessions and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        parked = self.parked
        self.conn.send({"all_parked": parked})
        msg = await pipe_recv(self.conn)
        assert msg.get("cmd") == "release", msg
        self.park_gate.set()
        results = await asyncio.gather(*tasks)
        return {"parked": parked, "completed": sum(1 for r in results if r)}


# =============================================================== server side
def server_process(conn: Any, kind: str, crm_port: int, script: list[tuple[str, str]] | None) -> None:
    quiet_logs()
    logging.getLogger("ivr").setLevel(logging.CRITICAL)
    asyncio.run(_server_main(conn, kind, crm_port, script))


def _command_name(line: str) -> str:
    """``STREAM FILE "x" ""`` → ``STREAM FILE``; ``ANSWER`` → ``ANSWER`` (as ``on_command`` names them)."""
    words = line.split(" ", 2)
    return " ".join(words[:2]) if line.startswith(("STREAM ", "SET ", "GET ", "WAIT ", "SAY ")) else words[0]


def _cpu() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class _Timings:
    def __init__(self) -> None:
        self.samples: list[float] = []
        self.by_name: dict[str, list[float]] = {}
        #: exceptions that ended a baseline session early (callcore's are in ``logged``)
        self.errors: dict[str, int] = {}

    def __call__(self, name: str, seconds: float) -> None:
        self.samples.append(seconds)
        self.by_name.setdefault(name, []).append(seconds)

    def summary(self) -> dict[str, Any]:
        instant = [x for name, v in self.by_name.items() if not name.startswith("STREAM FILE") for x in v]
        return {"all_ms": summarize(self.samples, 1000), "instant_ms": summarize(instant, 1000), "errors": dict(self.errors),
                "by_command_ms": {k: summarize(v, 1000) for k, v in self.by_name.items()}}

    def reset(self) -> None:
        self.samples = []
        self.by_name = {}
        self.errors = {}


async def _server_main(conn: Any, kind: str, crm_port: int, script: list[tuple[str, str]] | None) -> None:
    import gc
    import os

    timings = _Timings()
    gcp = GcPauses()
    cpu0 = _cpu()
    # callcore's server freezes its start-up objects (callcore/app.py Container.start);
    # the bare panoramisk baseline does not. CALLCORE_BENCH_GC overrides both.
    mode = os.environ.get(GC_ENV, "freeze" if kind == "callcore" else "")
    crm_url = f"http://127.0.0.1:{crm_port}"
    if kind == "callcore":
        port, stop = await _start_callcore(crm_url, timings)
    else:
        assert script is not None
        port, stop = await _start_panoramisk(crm_url, timings, script)
    if mode == "freeze":
        gc.collect()
        gc.freeze()
    elif mode == "off":
        gc.disable()
    conn.send({"ready": {"port": port}})
    while True:
        msg = await pipe_recv(conn)
        cmd = msg.get("cmd")
        if cmd == "stop":
            break
        if cmd == "reset":
            timings.reset()
            gcp.reset()
            cpu0 = _cpu()
            conn.send({"reset": True})
        elif cmd == "timings":
            conn.send({"timings": {**timings.summary(), "gc": gcp.summary(), "cpu_seconds": _cpu() - cpu0,
                                   "logged": LOG_COUNTER.top()}})
        elif cmd == "rss":
            conn.send({"rss": settle_rss()})
        elif cmd == "trace_start":
            import gc
            import tracemalloc

            gc.collect()
            tracemalloc.start()
            conn.send({"trace_start": True})
        elif cmd == "trace_read":
            import gc
            import tracemalloc

            gc.collect()
            current = tracemalloc.get_traced_memory()[0]
            tracemalloc.stop()
            conn.send({"trace_read": current})
    await stop()


async def _start_callcore(crm_url: str, on_command: Any) -> tuple[int, Any]:
    from callcore.settings import Settings
    from ivr.agi import AgiChannel, FastAgiServer
    from ivr.service import build_ivr_service

    settings = Settings(
        data_dir=tempfile.mkdtemp(prefix="callcore-bench-"), dialplans_dir=FLOW_DIR, sounds_dir=SOUNDS_DIR,
        dialplan_watch=False, crm_url=crm_url,
    )
    ivr = build_ivr_service(settings)
    if inspect.isawaitable(ivr):
        ivr = await ivr
    if hasattr(ivr, "start"):
        await ivr.start()
    server = FastAgiServer("127.0.0.1", 0, on_command=on_command)

    async def handle_ivr(session: Any) -> None:  # as callcore/wiring.py start_agi
        await ivr.run(AgiChannel(session))

    server.add_route("ivr", handle_ivr)
    await server.start()

    async def stop() -> None:
        await server.close(grace=1.0)
        if hasattr(ivr, "stop"):
            await ivr.stop()

    return server.port, stop


async def _start_panoramisk(crm_url: str, timings: _Timings, script: list[tuple[str, str]]) -> tuple[int, Any]:
    import httpx
    from panoramisk.fast_agi import Application

    client = httpx.AsyncClient()
    perf = time.perf_counter

    async def route(request: Any) -> None:
        try:
            await steps(request)
        except Exception as exc:
            key = f"{type(exc).__name__}: {str(exc)[:80]}"
            timings.errors[key] = timings.errors.get(key, 0) + 1
        finally:
            request.writer.close()

    async def steps(request: Any) -> None:
        for kind, item in script:
            if kind == "http":  # like the flow: a failed lookup takes the fallback and goes on
                try:
                    resp = await client.get(crm_url + item, timeout=2.0)
                    resp.json()
                except Exception as exc:
                    key = f"lookup {type(exc).__name__}"
                    timings.errors[key] = timings.errors.get(key, 0) + 1
            else:
                t = perf()
                await request.send_command(item)
                timings(_command_name(item), perf() - t)

    app = Application(loop=asyncio.get_running_loop())
    app.add_route(SCRIPT, route)  # panoramisk matches agi_network_script including the query string
    server = await asyncio.start_server(app.handler, "127.0.0.1", 0, backlog=4096)

    async def stop() -> None:
        server.close()
        await client.aclose()

    return server.sockets[0].getsockname()[1], stop


# ==================================================================== driver
class _Pair:
    """A load process and a server process of one kind."""

    def __init__(self, kind: str, script: list[tuple[str, str]] | None = None) -> None:
        self.load = Child(load_process, cpus=LOAD_CPUS, name="agi-load")
        self.server: Child | None = None
        try:
            crm_port = self.load.expect("crm_port", 60)["crm_port"]
            self.server = Child(server_process, kind, crm_port, script, cpus=SERVER_CPUS, name=f"agi-{kind}")
            self.port = self.server.expect("ready", 60)["ready"]["port"]
        except BaseException:
            self.close()
            raise

    def ask(self, who: Child, msg: dict[str, Any], key: str, timeout: float = 600) -> Any:
        who.send(msg)
        return who.expect(key, timeout)[key]

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
        self.load.stop()


def probe_script() -> list[tuple[str, str]]:
    """The command lines (and the lookup) of one callcore session, in order."""
    pair = _Pair("callcore")
    try:
        pair.load.send({"cmd": "probe", "port": pair.port})
        msg = pair.load.expect("probe", 60)
        if not msg["ok"]:
            raise RuntimeError("probe session failed")
        return [tuple(x) for x in msg["probe"]]  # type: ignore[misc]
    finally:
        pair.close()


def _measure(kind: str, cfg: dict[str, Any], script: list[tuple[str, str]], parts: tuple[str, ...]) -> dict[str, Any]:
    pair = _Pair(kind, script)
    out: dict[str, Any] = {"kind": kind}
    try:
        srv = pair.server
        assert srv is not None
        # warm-up: imports, httpx pool, flow cache
        pair.ask(pair.load, {"cmd": "throughput", "port": pair.port, "concurrency": 2, "seconds": 0.3}, "throughput")
        if "park" in parts:  # first: before other phases leave freed memory behind
            pair.ask(srv, {"cmd": "trace_start"}, "trace_start")
            before = pair.ask(srv, {"cmd": "rss"}, "rss")
            pair.load.send({"cmd": "park", "port": pair.port, "sessions": cfg["park"]})
            parked = pair.load.expect("all_parked", 180)["all_parked"]
            time.sleep(0.3)
            during = pair.ask(srv, {"cmd": "rss"}, "rss")
            traced = pair.ask(srv, {"cmd": "trace_read"}, "trace_read")
            pair.load.send({"cmd": "release"})
            res = pair.load.expect("parked", 180)["parked"]
            out["park"] = {**res, "rss_before": before, "rss_parked": during, "traced_bytes": traced,
                           "bytes_per_session": traced / max(1, parked),
                           "rss_bytes_per_session": (during - before) / max(1, parked)}
        if "held" in parts:
            pair.ask(srv, {"cmd": "reset"}, "reset")
            out["held"] = pair.ask(pair.load, {"cmd": "held", "port": pair.port, "slots": cfg["sessions"], "hold": cfg["hold"],
                                               "playback": list(cfg["playback"])}, "held", 900)
            out["held"]["server_ms"] = pair.ask(srv, {"cmd": "timings"}, "timings")
        if "throughput" in parts:
            pair.ask(srv, {"cmd": "reset"}, "reset")
            out["throughput"] = pair.ask(pair.load, {"cmd": "throughput", "port": pair.port, "concurrency": cfg["concurrency"],
                                                     "seconds": cfg["seconds"]}, "throughput")
            out["throughput"]["server_ms"] = pair.ask(srv, {"cmd": "timings"}, "timings")
        if "concurrent" in parts:
            pair.ask(srv, {"cmd": "reset"}, "reset")
            out["concurrent"] = pair.ask(pair.load, {"cmd": "concurrent", "port": pair.port, "sessions": cfg["sessions"]}, "concurrent")
            out["concurrent"]["server_ms"] = pair.ask(srv, {"cmd": "timings"}, "timings")
    finally:
        pair.close()
    return out


def run(size: str = "full", parts: tuple[str, ...] = ("park", "held", "throughput", "concurrent")) -> dict[str, Any]:
    """Every phase runs on a fresh server process (sessions of one phase must not weigh on
    the next: the in-memory session store keeps every session, see README)."""
    cfg = SIZES[size]
    script = probe_script()
    runs: dict[str, list[dict[str, Any]]] = {"panoramisk": [], "callcore": []}
    for rep in range(cfg["reps"]):
        for kind in ("panoramisk", "callcore"):
            todo = parts if rep == 0 else tuple(x for x in parts if x == "throughput")
            if not cfg.get("fresh_server_per_phase", True):  # tiny sizes: one server for all phases
                runs[kind].append(_measure(kind, cfg, script, todo))
                continue
            merged: dict[str, Any] = {"kind": kind}
            for part in todo:
                merged.update({k: v for k, v in _measure(kind, cfg, script, (part,)).items() if k != "kind"})
            runs[kind].append(merged)
    figures: list[Figure] = []
    details: dict[str, Any] = {"sizes": cfg, "script": script, "runs": runs}
    if "throughput" in parts:
        # each rep runs the baseline then callcore back to back: the ratio of a pair is
        # measured under the same machine conditions; the median pair is reported
        pairs = sorted(
            (c["throughput"]["sps"] / b["throughput"]["sps"], b["throughput"], c["throughput"])
            for b, c in zip(runs["panoramisk"], runs["callcore"])
        )
        ratio, b, c = pairs[len(pairs) // 2]
        failed = sum(r["throughput"]["failed"] for r in runs["callcore"])
        figures.append(Figure("agi", f"sessions/s ({cfg['concurrency']} concurrent, median of {len(pairs)} pairs)", c["sps"], "/s",
                              b["sps"], ratio=ratio, target=f">= {TARGET_RATIO}x",
                              verdict=check(ratio >= TARGET_RATIO and failed == 0),
                              note="pair ratios " + ", ".join(f"{p[0]:.2f}" for p in pairs)))
        cpu_pairs = sorted(
            (c["throughput"]["sessions"] / c["throughput"]["server_ms"]["cpu_seconds"])
            / (b["throughput"]["sessions"] / b["throughput"]["server_ms"]["cpu_seconds"])
            for b, c in zip(runs["panoramisk"], runs["callcore"])
        )
        figures.append(Figure("agi", "sessions per server CPU-second", c["sessions"] / c["server_ms"]["cpu_seconds"], "/s",
                              b["sessions"] / b["server_ms"]["cpu_seconds"], ratio=cpu_pairs[len(cpu_pairs) // 2],
                              target="info (noise-robust)", note="pair ratios " + ", ".join(f"{x:.2f}" for x in cpu_pairs)))
        figures.append(Figure("agi", "per-command p99 at that load", c["server_ms"]["all_ms"].get("p99"), "ms",
                              b["server_ms"]["all_ms"].get("p99"), target="info", lower_is_better=True))
    if "held" in parts:
        c, b = runs["callcore"][0]["held"], runs["panoramisk"][0]["held"]
        cp, bp = c["server_ms"]["instant_ms"], b["server_ms"]["instant_ms"]
        figures.append(Figure("agi", f"{cfg['sessions']} concurrent sessions: per-command p99", cp.get("p99"), "ms", bp.get("p99"),
                              target=f"<= {TARGET_P99_MS} ms",
                              verdict=check(cp.get("p99", 1e9) <= TARGET_P99_MS and c["failed"] == 0),
                              lower_is_better=True,
                              note=f"{c['mean_open_after_rampup']:.0f} open on average, {c['sps']:.0f} sessions/s, "
                                   "commands answered at once (STREAM FILE excluded: its time is playback)"))
        figures.append(Figure("agi", f"{cfg['sessions']} concurrent: sessions completed / failed", float(c["sessions"]), "",
                              float(b["sessions"]), target="0 failed", verdict=check(c["failed"] == 0)))
    if "concurrent" in parts:
        c, b = runs["callcore"][0]["concurrent"], runs["panoramisk"][0]["concurrent"]
        figures.append(Figure("agi", f"{cfg['sessions']} started in one instant (no playback): per-command p99",
                              c["server_ms"]["all_ms"].get("p99"), "ms", b["server_ms"]["all_ms"].get("p99"),
                              target="info (stress)", lower_is_better=True,
                              note=f"all done in {c['seconds']:.2f} s (baseline {b['seconds']:.2f} s), failed {c['failed']}"))
    if "park" in parts:
        c, b = runs["callcore"][0]["park"], runs["panoramisk"][0]["park"]
        figures.append(Figure("agi", f"memory per idle session ({c['parked']} parked, tracemalloc)", c["bytes_per_session"] / 1024,
                              "KiB", b["bytes_per_session"] / 1024, target="report", lower_is_better=True,
                              note=f"RSS delta {c['rss_bytes_per_session'] / 1024:.1f} KiB/session (baseline "
                                   f"{b['rss_bytes_per_session'] / 1024:.1f})"))
    return {"name": "agi", "figures": figures, "details": details}
