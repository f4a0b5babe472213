"""Which code issues the database work of a benchmark server (issue 18 round five, diagnosis).

``CALLCORE_BENCH_SQL_COUNT=<file>`` (``pop_latency``'s server process, so the pop and wallboard
benchmarks): every SQL statement and every pooled connection's checkout is attributed to the
innermost callcore coroutine of the asyncio task that caused it (the task's ``cr_await`` chain:
SQLAlchemy's async layer runs the statement in a greenlet of that task), and the report gives,
per origin: statements, their time (cursor execute → done, wall clock: includes waiting for the
SQLite writer lock), connection checkouts, how long the connections were held, and how long a
checkout waited for a free pooled connection. Measuring only: nothing is changed.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import defaultdict
from typing import Any

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _origin() -> str:
    try:
        task = asyncio.current_task()
    except RuntimeError:
        return "(no loop)"
    if task is None:
        return "(no task)"
    coro: Any = task.get_coro()
    best = getattr(coro, "__qualname__", "?")
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            fn = frame.f_code.co_filename
            if fn.startswith(_ROOT) and "/benchmarks/" not in fn:
                best = f"{os.path.relpath(fn, _ROOT)}:{frame.f_code.co_name}"
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return best


class SqlCounter:
    def __init__(self) -> None:
        self.stmts: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])  # origin|verb table -> [n, seconds]
        self.holds: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])  # origin -> [checkouts, held s, max held]
        self.waits: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])  # origin -> [checkouts, waited s, max]
        self.connects: dict[str, int] = defaultdict(int)  # origin -> new DBAPI connections (a thread each, aiosqlite)
        self.closes = 0
        self.started = time.perf_counter()

    def install(self) -> "SqlCounter":
        from sqlalchemy import event
        from sqlalchemy.engine import Engine
        from sqlalchemy.pool import Pool

        @event.listens_for(Engine, "before_cursor_execute")
        def _before(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
            conn.info["_t0"] = time.perf_counter()

        @event.listens_for(Engine, "after_cursor_execute")
        def _after(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
            words = statement.split(None, 4)
            verb = words[0].upper() if words else "?"
            table = next((w.strip('"') for i, w in enumerate(words[:-1]) if w.upper() in ("FROM", "INTO", "UPDATE")
                          for w in [words[i + 1]]), "") if words else ""
            if verb == "UPDATE" and len(words) > 1:
                table = words[1].strip('"')
            rec = self.stmts[f"{_origin()} | {verb} {table}"]
            rec[0] += 1
            rec[1] += time.perf_counter() - conn.info.pop("_t0", time.perf_counter())

        @event.listens_for(Pool, "checkout")
        def _checkout(dbapi_conn: Any, record: Any, proxy: Any) -> None:
            now = time.perf_counter()
            record.info["_held_since"] = now
            record.info["_origin"] = _origin()

        @event.listens_for(Pool, "connect")
        def _connect(dbapi_conn: Any, record: Any) -> None:
            self.connects[_origin()] += 1

        @event.listens_for(Pool, "close")
        def _close(dbapi_conn: Any, record: Any) -> None:
            self.closes += 1

        @event.listens_for(Pool, "checkin")
        def _checkin(dbapi_conn: Any, record: Any) -> None:
            t0 = record.info.pop("_held_since", None)
            if t0 is None:
                return
            held = time.perf_counter() - t0
            rec = self.holds[record.info.pop("_origin", "?")]
            rec[0] += 1
            rec[1] += held
            rec[2] = max(rec[2], held)

        self._wrap_pool_wait()
        return self

    def _wrap_pool_wait(self) -> None:
        """Time spent waiting in ``QueuePool._do_get`` (all connections busy)."""
        from sqlalchemy.pool import impl

        counter = self
        for cls in (impl.QueuePool, getattr(impl, "AsyncAdaptedQueuePool", None)):
            if cls is None or getattr(cls._do_get, "_sqlcount", False):
                continue
            orig = cls._do_get

            def _do_get(self: Any, _orig: Any = orig) -> Any:
                t0 = time.perf_counter()
                try:
                    return _orig(self)
                finally:
                    waited = time.perf_counter() - t0
                    rec = counter.waits[_origin()]
                    rec[0] += 1
                    rec[1] += waited
                    rec[2] = max(rec[2], waited)

            _do_get._sqlcount = True  # type: ignore[attr-defined]
            cls._do_get = _do_get  # type: ignore[method-assign]

    def reset(self) -> None:
        self.stmts.clear()
        self.holds.clear()
        self.waits.clear()
        self.connects.clear()
        self.closes = 0
        self.started = time.perf_counter()

    def report(self) -> str:
        took = max(1e-9, time.perf_counter() - self.started)
        out = [f"{took:.1f} s measured; per second of it:", "", "statements (origin | verb table): n/s, busy s/s, mean ms"]
        for k, (n, s) in sorted(self.stmts.items(), key=lambda kv: -kv[1][1])[:40]:
            out.append(f"  {n / took:8.1f} {s / took:7.3f} {1000 * s / max(1, n):8.2f}  {k}")
        out += ["", "connections held (origin): checkouts/s, held s/s, mean ms, max ms"]
        for k, (n, s, mx) in sorted(self.holds.items(), key=lambda kv: -kv[1][1])[:30]:
            out.append(f"  {n / took:8.1f} {s / took:7.3f} {1000 * s / max(1, n):8.2f} {1000 * mx:8.1f}  {k}")
        out += ["", "waiting for a pooled connection (origin): checkouts/s, waited s/s, mean ms, max ms"]
        for k, (n, s, mx) in sorted(self.waits.items(), key=lambda kv: -kv[1][1])[:30]:
            out.append(f"  {n / took:8.1f} {s / took:7.3f} {1000 * s / max(1, n):8.2f} {1000 * mx:8.1f}  {k}")
        out += ["", f"new connections (origin): n ({self.closes} closed)"]
        for k, n in sorted(self.connects.items(), key=lambda kv: -kv[1])[:20]:
            out.append(f"  {n:8d}  {k}")
        return "\n".join(out) + "\n"
