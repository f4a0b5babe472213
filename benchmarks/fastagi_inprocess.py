"""FastAGI in one process: the server-side cost of one AGI command and of one IVR session.

Both ends (server and an Asterisk emulator that answers at once) run in one process and
one event loop, so the figure is CPU per command (or per session) of *both* ends; the
emulator is the same for callcore and the baseline, so the difference between the two
is the server side. No HTTP lookup in the session mode: the flow's lookup is answered
by an in-process stub on callcore's side (the bare route has no engine and no lookup),
so the figure is callcore's engine + session + channel against a bare panoramisk route
sending the same lines.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/fastagi_inprocess.py            # both modes, 5 reps
    PYTHONPATH=$PWD .venv/bin/python benchmarks/fastagi_inprocess.py --profile  # cProfile of callcore's session mode

Only public ``ivr.agi``/``ivr.service`` APIs are used, so the same file measures another
checkout: ``PYTHONPATH=/work/main .venv/bin/python benchmarks/fastagi_inprocess.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HEADER = (
    "agi_network: yes\nagi_network_script: {script}\nagi_request: agi://127.0.0.1/{script}\n"
    "agi_channel: Local/bench@sim-caller-{n:08x};1\nagi_language: ko\nagi_type: Local\n"
    "agi_uniqueid: 4{n:09d}.1\nagi_version: 20.20.1\nagi_callerid: 010{n:08d}\nagi_calleridname: caller\n"
    "agi_callingpres: 0\nagi_callingani2: 0\nagi_callington: 0\nagi_callingtns: 0\nagi_dnid: 1588\n"
    "agi_rdnis: unknown\nagi_context: ivr-in\nagi_extension: s\nagi_priority: 1\nagi_enhanced: 0.0\n"
    "agi_accountcode: \nagi_threadid: 140404588803776\n\n"
)
#: the lines one bench.yaml session sends (benchmarks/fastagi.py records the same with its probe)
SESSION_LINES = [
    "ANSWER",
    'SET VARIABLE "CHANNEL(language)" "ko"',
    'STREAM FILE "{p}ko/welcome" ""',
    'STREAM FILE "{p}ko/one_moment" ""',
    'STREAM FILE "{p}ko/main_menu" "12"',
    'SET VARIABLE "IVR_QUEUE" "sales"',
    'SET VARIABLE "IVR_PRIORITY" "0"',
    'SET VARIABLE "IVR_TIMEOUT" "300"',
    'SET VARIABLE "CALLCORE_SESSION" "1"',
]


def answer(line: bytes) -> bytes:
    if line.startswith(b"STREAM FILE"):
        return b"200 result=0 endpos=12000\n" if line.rstrip().endswith(b'""') else b"200 result=49 endpos=4000\n"
    if line.startswith(b"SET VARIABLE") or line.startswith(b"HANGUP"):
        return b"200 result=1\n"
    return b"200 result=0\n"


class Emulator(asyncio.Protocol):
    """Asterisk's side: sends the header, answers every line at once."""

    def __init__(self, header: bytes, done: asyncio.Future[int]) -> None:
        self.header = header
        self.done = done
        self.buf = b""
        self.lines = 0

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.write(self.header)

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data
        while True:
            i = buf.find(b"\n")
            if i < 0:
                break
            line, buf = buf[: i + 1], buf[i + 1 :]
            self.lines += 1
            self.transport.write(answer(line))
        self.buf = buf

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self.done.done():
            self.done.set_result(self.lines)


async def drive(port: int, sessions: int, concurrency: int, script: str) -> int:
    loop = asyncio.get_running_loop()
    n = 0
    commands = 0

    async def worker() -> None:
        nonlocal n, commands
        while n < sessions:
            n += 1
            done: asyncio.Future[int] = loop.create_future()
            header = HEADER.format(script=script, n=n).encode()
            await loop.create_connection(lambda: Emulator(header, done), "127.0.0.1", port)
            got = await done  # not `commands += await done`: that reads `commands` before the await
            commands += got

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return commands


# ----------------------------------------------------------------- servers
async def callcore_commands(commands: int) -> tuple[int, Any]:
    from ivr.agi import FastAgiServer

    async def route(session: Any) -> None:
        for _ in range(commands):
            await session.send("SET VARIABLE", "X", "1")

    server = FastAgiServer("127.0.0.1", 0)
    server.add_route("ivr", route)
    await server.start()
    return server.port, server.close


async def panoramisk_commands(commands: int) -> tuple[int, Any]:
    from panoramisk.fast_agi import Application

    async def route(request: Any) -> None:
        try:
            for _ in range(commands):
                await request.send_command('SET VARIABLE "X" "1"')
        finally:
            request.writer.close()

    app = Application(loop=asyncio.get_running_loop())
    app.add_route("ivr", route)
    server = await asyncio.start_server(app.handler, "127.0.0.1", 0, backlog=4096)

    async def stop(**_: Any) -> None:
        server.close()

    return server.sockets[0].getsockname()[1], stop


class StubLookup:
    async def lookup(self, method: str, path: str, query: Any, timeout: float) -> Any:
        return {"customer": {"id": 42, "name": "caller", "tier": "gold"}}


async def callcore_sessions() -> tuple[int, Any]:
    from callcore.settings import Settings
    from ivr.agi import AgiChannel, FastAgiServer
    from ivr.service import build_ivr_service

    settings = Settings(
        data_dir=tempfile.mkdtemp(prefix="callcore-bench-"), dialplans_dir=ROOT / "benchmarks" / "dialplans",
        sounds_dir=ROOT / "dialplans" / "sounds", dialplan_watch=False, crm_url="http://127.0.0.1:9",
    )
    ivr = await build_ivr_service(settings, lookup=StubLookup())
    await ivr.start()
    server = FastAgiServer("127.0.0.1", 0)

    async def handle_ivr(session: Any) -> None:
        await ivr.run(AgiChannel(session))

    server.add_route("ivr", handle_ivr)
    await server.start()

    async def stop(**_: Any) -> None:
        await server.close(grace=1.0)
        await ivr.stop()

    return server.port, stop


async def panoramisk_sessions() -> tuple[int, Any]:
    from panoramisk.fast_agi import Application

    prefix = str((ROOT / "dialplans" / "sounds").resolve()) + "/"
    lines = [x.replace("{p}", prefix) for x in SESSION_LINES]

    async def route(request: Any) -> None:
        try:
            for line in lines:
                await request.send_command(line)
        finally:
            request.writer.close()

    app = Application(loop=asyncio.get_running_loop())
    app.add_route("ivr?flow=bench", route)
    server = await asyncio.start_server(app.handler, "127.0.0.1", 0, backlog=4096)

    async def stop(**_: Any) -> None:
        server.close()

    return server.sockets[0].getsockname()[1], stop


# ------------------------------------------------------------------ driver
async def measure(kind: str, mode: str, sessions: int, concurrency: int, per_session: int, profile: Any = None) -> dict[str, Any]:
    if mode == "commands":
        port, stop = await (callcore_commands(per_session) if kind == "callcore" else panoramisk_commands(per_session))
        script = "ivr"
    else:
        port, stop = await (callcore_sessions() if kind == "callcore" else panoramisk_sessions())
        script = "ivr?flow=bench"
    await drive(port, 20, 4, script)  # warm-up
    gc.collect()
    t0, c0 = time.perf_counter(), time.process_time()
    if profile is not None:
        profile.enable()
    commands = await drive(port, sessions, concurrency, script)
    if profile is not None:
        profile.disable()
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    await stop()
    return {"kind": kind, "mode": mode, "sessions": sessions, "commands": commands, "cpu_s": cpu, "wall_s": wall,
            "us_per_command": cpu / max(1, commands) * 1e6, "us_per_session": cpu / sessions * 1e6}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=["commands", "sessions", "both"], default="both")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--sessions", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--per-session", type=int, default=50, help="commands per session in the commands mode")
    ap.add_argument("--profile", action="store_true", help="cProfile callcore's sessions mode once, print the top")
    ap.add_argument("--json", help="write every rep here")
    args = ap.parse_args()
    logging.basicConfig(level=logging.CRITICAL)
    logging.getLogger("ivr").setLevel(logging.CRITICAL)
    if args.profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        asyncio.run(measure("callcore", "sessions" if args.mode != "commands" else "commands",
                            args.sessions, args.concurrency, args.per_session, prof))
        pstats.Stats(prof).sort_stats("tottime").print_stats(35)
        return
    modes = ["commands", "sessions"] if args.mode == "both" else [args.mode]
    out: list[dict[str, Any]] = []
    for mode in modes:
        sessions = args.sessions if mode == "sessions" else max(1, args.sessions // 10)
        for _ in range(args.reps):
            for kind in ("panoramisk", "callcore"):
                out.append(asyncio.run(measure(kind, mode, sessions, args.concurrency, args.per_session)))
        for kind in ("panoramisk", "callcore"):
            rows = [r for r in out if r["mode"] == mode and r["kind"] == kind]
            key = "us_per_command" if mode == "commands" else "us_per_session"
            print(f"{mode:9s} {kind:11s} median {statistics.median(r[key] for r in rows):8.1f} {key} "
                  f"(reps {', '.join(f'{r[key]:.1f}' for r in rows)})")
        pairs = []
        key = "us_per_command" if mode == "commands" else "us_per_session"
        b = [r for r in out if r["mode"] == mode and r["kind"] == "panoramisk"]
        c = [r for r in out if r["mode"] == mode and r["kind"] == "callcore"]
        pairs = sorted(x[key] / y[key] for x, y in zip(c, b))
        print(f"{mode:9s} callcore/panoramisk median pair {statistics.median(pairs):.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    sys.exit(main())
