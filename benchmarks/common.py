"""Shared helpers: CPU pinning, child processes, statistics, memory, heartbeat, results.

Every benchmark runs a *server side* (callcore or its baseline) and a *load side*
(fake Asterisk, websocket clients, AGI client emulator) in separate processes.
On a machine with two or more CPUs the server process is pinned to one CPU and the
load process to another (``os.sched_setaffinity``), so the figures measure one core
of server work, not two processes fighting over the same core.
"""

from __future__ import annotations

import asyncio
import gc
import json
import math
import multiprocessing as mp
import os
import platform
import re
import resource
import statistics
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
CAPTURES = ROOT / "tests" / "fixtures" / "asterisk-captures"
RESULTS = Path(__file__).resolve().parent / "results"

# --------------------------------------------------------------------- cpus
def cpu_plan() -> tuple[set[int] | None, set[int] | None]:
    """(server cpus, load cpus): one CPU each when there are two or more, else no pinning."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return None, None
    if len(cpus) < 2:
        return None, None
    return {cpus[0]}, {cpus[1]}


def pin(cpus: set[int] | None) -> None:
    if cpus:
        try:
            os.sched_setaffinity(0, cpus)
        except OSError:
            pass


SERVER_CPUS, LOAD_CPUS = cpu_plan()

# ---------------------------------------------------------------- processes
_CTX = mp.get_context("spawn")


#: ``benchmarks/run --profile``: server processes run under pyinstrument, text reports go here
PROFILE_ENV = "CALLCORE_BENCH_PROFILE_DIR"


def _child_main(target: Callable[..., Any], cpus: set[int] | None, conn: Any, args: tuple, kwargs: dict, name: str = "") -> None:
    pin(cpus)
    sys.path.insert(0, str(ROOT))
    profile_dir = os.environ.get(PROFILE_ENV)
    profiler = None
    if profile_dir and os.environ.get(PROFILE_ENV + "_MATCH", "callcore") in name:  # callcore's server side by default
        if os.environ.get(PROFILE_ENV + "_TOOL") == "cprofile":
            # pyinstrument's sampler segfaults the full composition root (2026-12-03, Python 3.11.7);
            # cProfile is deterministic (inflates small calls) but does not crash
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        else:
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.001)
            profiler.start()
    try:
        target(conn, *args, **kwargs)
        if profiler is not None:
            out = Path(profile_dir) / f"{name}.txt"
            out.parent.mkdir(parents=True, exist_ok=True)
            if hasattr(profiler, "output_text"):
                profiler.stop()
                out.write_text(profiler.output_text(unicode=True, color=False, show_all=False))
            else:
                import io
                import pstats

                profiler.disable()
                profiler.dump_stats(str(out.with_suffix(".prof")))  # for pstats / snakeviz
                buf = io.StringIO()
                stats = pstats.Stats(profiler, stream=buf).sort_stats("cumulative")
                stats.print_stats(80)
                stats.sort_stats("tottime").print_stats(40)
                out.write_text(buf.getvalue())
    except BaseException as exc:  # report the failure to the parent instead of hanging it
        try:
            conn.send({"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()})
        except Exception:
            pass
        raise


class Child:
    """A child process running ``target(conn, *args, **kwargs)`` pinned to ``cpus``,
    talking to the parent over a duplex pipe (``send``/``recv`` of picklable dicts)."""

    def __init__(self, target: Callable[..., Any], *args: Any, cpus: set[int] | None = None, name: str = "",
                 daemon: bool = True, **kwargs: Any) -> None:
        # daemon=False for a server that starts its own children (callcore's staffing process):
        # a daemonic process may not have any; stop() still ends it
        self.conn, child_conn = _CTX.Pipe()
        self.name = name or getattr(target, "__name__", "child")
        self.proc = _CTX.Process(target=_child_main, args=(target, cpus, child_conn, args, kwargs, self.name), name=self.name, daemon=daemon)
        self.proc.start()
        child_conn.close()

    def send(self, msg: Any) -> None:
        self.conn.send(msg)

    def recv(self, timeout: float = 120.0) -> Any:
        if not self.conn.poll(timeout):
            raise TimeoutError(f"{self.name}: no message within {timeout} s")
        msg = self.conn.recv()
        if isinstance(msg, dict) and "error" in msg and "traceback" in msg:
            raise RuntimeError(f"{self.name} failed: {msg['error']}\n{msg['traceback']}")
        return msg

    def expect(self, key: str, timeout: float = 120.0) -> Any:
        """Receive messages until one is a dict with ``key`` (others are ignored)."""
        deadline = time.monotonic() + timeout
        while True:
            msg = self.recv(max(0.1, deadline - time.monotonic()))
            if isinstance(msg, dict) and key in msg:
                return msg

    def stop(self, timeout: float | None = None) -> None:
        if timeout is None:
            timeout = 120.0 if os.environ.get(PROFILE_ENV) else 15.0
        try:
            self.conn.send({"cmd": "stop"})
        except (OSError, BrokenPipeError):
            pass
        self.proc.join(timeout)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(5)
        if self.proc.is_alive():  # pragma: no cover
            self.proc.kill()
            self.proc.join(5)


async def pipe_recv(conn: Any, timeout: float | None = None) -> Any:
    """Await the next message from a multiprocessing pipe without blocking the event loop."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[Any] = loop.create_future()
    fd = conn.fileno()

    def ready() -> None:
        if not fut.done():
            fut.set_result(None)

    loop.add_reader(fd, ready)
    try:
        if not conn.poll():
            await asyncio.wait_for(fut, timeout)
    finally:
        loop.remove_reader(fd)
    return conn.recv()


# ------------------------------------------------------------------- memory
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes() -> int:
    """Current resident set size of this process."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except OSError:  # not Linux: peak instead of current
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def settle_rss() -> int:
    gc.collect()
    return rss_bytes()


# -------------------------------------------------------------- event loop
class Heartbeat:
    """Measures how long the event loop is blocked: a task that wakes every
    ``interval`` seconds records how late it woke (the largest late wake-up is the
    longest time the loop ran something else without giving it back)."""

    def __init__(self, interval: float = 0.002) -> None:
        self.interval = interval
        self.max_stall = 0.0
        self.wakeups = 0
        self.stalls_over_50ms = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> "Heartbeat":
        self._task = asyncio.get_running_loop().create_task(self._run(), name="heartbeat")
        return self

    async def _run(self) -> None:
        perf = time.perf_counter
        interval = self.interval
        while True:
            t = perf()
            await asyncio.sleep(interval)
            late = perf() - t - interval
            self.wakeups += 1
            if late > self.max_stall:
                self.max_stall = late
            if late > 0.05:
                self.stalls_over_50ms += 1

    def reset(self) -> None:
        self.max_stall = 0.0
        self.wakeups = 0
        self.stalls_over_50ms = 0

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None


def _kind(o: Any) -> str:
    """A tracked object's type, with the module of its class or coroutine (diagnosis)."""
    t = type(o)
    name = t.__qualname__
    if name in ("coroutine", "function", "frame", "cell", "method"):
        code = getattr(o, "cr_code", None) or getattr(o, "__code__", None) or getattr(o, "f_code", None)
        if code is not None:
            return f"{name}:{code.co_qualname}"
        return name
    if name in ("dict", "tuple", "list"):
        return name
    return f"{t.__module__}.{name}"


class GcPauses:
    """Longest garbage-collector pauses per generation (``gc.callbacks``)."""

    def __init__(self) -> None:
        import gc

        self.max_ms = [0.0, 0.0, 0.0]
        self.count = [0, 0, 0]
        #: every full collection: [seconds since reset, pause ms, objects it walked, collected]
        #: (issue 18 round four: what a gen-2 pause is made of; ``walked`` is counted before the
        #: timer starts, so it does not inflate the pause)
        self.full: list[list[float]] = []
        self._t = 0.0
        self._t0 = time.perf_counter()
        self._walked = 0
        #: CALLCORE_BENCH_GC_TYPES=1 (diagnosis, inflates the pauses): the kinds of objects the
        #: first full collections walked
        self.types_env = os.environ.get("CALLCORE_BENCH_GC_TYPES") == "1"
        self.types: list[Any] = []
        gc.callbacks.append(self._cb)

    def _cb(self, phase: str, info: dict[str, Any]) -> None:
        g = info["generation"]
        if phase == "start":
            if g == 2:
                import gc

                self._walked = sum(len(gc.get_objects(i)) for i in range(3))
                if self.types_env and len(self.types) < 5:  # diagnosis only: what a full collection walks
                    from collections import Counter

                    c = Counter(_kind(o) for i in range(3) for o in gc.get_objects(i))
                    self.types.append([round(time.perf_counter() - self._t0, 2), sum(c.values()), c.most_common(12)])
            self._t = time.perf_counter()
            return
        d = (time.perf_counter() - self._t) * 1000
        self.count[g] += 1
        if d > self.max_ms[g]:
            self.max_ms[g] = d
        if g == 2 and len(self.full) < 50:
            self.full.append([round(self._t - self._t0, 2), round(d, 2), self._walked, info.get("collected", 0)])

    def summary(self) -> dict[str, Any]:
        out = {"max_pause_ms_by_generation": [round(x, 2) for x in self.max_ms], "collections": list(self.count),
               "full_collections": list(self.full)}
        if self.types:
            out["full_collection_types"] = self.types
        return out

    def reset(self) -> None:
        self.max_ms = [0.0, 0.0, 0.0]
        self.count = [0, 0, 0]
        self.full = []
        self._t0 = time.perf_counter()


#: CALLCORE_BENCH_GC overrides what a server process does with the collector after start-up:
#: "freeze" (gc.collect(); gc.freeze(), what callcore's composition root does), "none", "off"
GC_ENV = "CALLCORE_BENCH_GC"


def apply_gc_mode(default: str = "") -> str:
    import gc

    mode = os.environ.get(GC_ENV, default)
    if mode == "freeze":
        gc.collect()
        gc.freeze()
    elif mode == "off":
        gc.disable()
    elif mode.startswith("threshold="):  # e.g. threshold=20000,10,10: gc.set_threshold(...) (issue 18 round three)
        gc.set_threshold(*(int(x) for x in mode.split("=", 1)[1].split(",")))
    return mode


# --------------------------------------------------------------- statistics
def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in [0, 100]); NaN for no values."""
    if not values:
        return math.nan
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(p / 100.0 * len(s)) - 1))
    return s[k]


def summarize(values: list[float], scale: float = 1.0) -> dict[str, float]:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50": percentile(values, 50) * scale,
        "p90": percentile(values, 90) * scale,
        "p99": percentile(values, 99) * scale,
        "max": max(values) * scale,
        "mean": statistics.fmean(values) * scale,
    }


# ------------------------------------------------------------------ results
@dataclass
class Figure:
    """One line of the results table."""

    bench: str
    figure: str
    value: float | None
    unit: str = ""
    baseline: float | None = None
    #: value / baseline (or baseline / value when ``lower_is_better``), computed
    ratio: float | None = None
    target: str = ""
    #: "PASS" | "MISS" | "info"
    verdict: str = "info"
    note: str = ""
    lower_is_better: bool = False

    def __post_init__(self) -> None:
        if self.ratio is None and self.value is not None and self.baseline:
            self.ratio = self.value / self.baseline


def check(ok: bool | None) -> str:
    if ok is None:
        return "info"
    return "PASS" if ok else "MISS"


def fmt_num(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        if abs(v) >= 100:
            return f"{v:.0f}"
        if abs(v) >= 10:
            return f"{v:.1f}"
        if abs(v) >= 1:
            return f"{v:.2f}"
        return f"{v:.3f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def table(figures: list[Figure], markdown: bool = False) -> str:
    head = ["bench", "figure", "value", "baseline", "ratio", "target", "verdict"]
    rows = []
    for f in figures:
        unit = f" {f.unit}" if f.unit else ""
        rows.append(
            [
                f.bench,
                f.figure,
                fmt_num(f.value) + unit,
                (fmt_num(f.baseline) + unit) if f.baseline is not None else "-",
                (f"{f.ratio:.2f}x" if f.ratio is not None else "-"),
                f.target or "-",
                f.verdict,
            ]
        )
    if markdown:
        out = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
        out += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(out)
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]
    line = "  ".join(h.ljust(w) for h, w in zip(head, widths))
    out = [line, "-" * len(line)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(out)


def machine_info() -> dict[str, Any]:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count()
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": cpus,
        "cpu_model": model,
        "server_cpus": sorted(SERVER_CPUS) if SERVER_CPUS else None,
        "load_cpus": sorted(LOAD_CPUS) if LOAD_CPUS else None,
        "loadavg_at_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=_json_default))
    tmp.replace(path)


def _json_default(o: Any) -> Any:
    if isinstance(o, Figure):
        return asdict(o)
    if isinstance(o, float) and math.isnan(o):
        return None
    if isinstance(o, (set, frozenset)):
        return sorted(o)
    return str(o)


class ErrorCounter:
    """A logging handler that counts WARNING+ records by (logger, first words of the
    message) instead of printing them: the benchmark reports them in its details."""

    def __init__(self) -> None:
        import logging

        self.counts: dict[str, int] = {}
        outer = self

        class _H(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                try:
                    msg = record.getMessage()
                except Exception:
                    msg = str(record.msg)
                key = f"{record.levelname} {record.name}: {' '.join(msg.split()[:6])}"
                key = re.sub(r"[0-9][0-9.]*", "#", key)
                outer.counts[key] = outer.counts.get(key, 0) + 1

        self.handler = _H(level=logging.WARNING)

    def top(self, n: int = 8) -> dict[str, int]:
        return dict(sorted(self.counts.items(), key=lambda kv: -kv[1])[:n])


LOG_COUNTER = ErrorCounter()


def quiet_logs() -> None:
    """Server/load processes: count warnings and errors instead of printing them."""
    import logging

    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(LOG_COUNTER.handler)
    root.setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "callcore", "cti", "ivr", "httpx", "panoramisk", "websockets"):
        lg = logging.getLogger(name)
        lg.setLevel(logging.WARNING)
        lg.propagate = True
        for h in list(lg.handlers):
            lg.removeHandler(h)
