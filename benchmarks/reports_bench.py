"""Benchmark 5 — reports on a big center (issue 18): the fact store of a 500-seat center in
PostgreSQL, and the reports a manager opens every day.

Generated (:func:`generate`, deterministic, seeded): ``days`` × ``calls_per_day`` inbound calls
over ``queues`` queues and ``agents`` agents (25 per queue group), business hours in
Asia/Seoul, with realistic outcomes (answered 88 %, abandoned 8 %, short abandons 2 %, queue
timeouts 2 %), waits, talk, hold, wrap-up, dispositions, post-call surveys, recordings (two
facts a call) and QA scores, plus each agent's login, queue membership and pauses every
day — the facts callcore writes (``reports.facts``), about 9 a call. Loaded with COPY.

A year of a 500-seat center is ~10 M calls (~27,400 a day) and ~100 M facts. The full run
generates ``CALLCORE_BENCH_REPORT_DAYS`` days (default 60, ~15 M facts) at the full daily
volume: a report's cost depends on the rows of *its* period (read through the ``anchor_at``
index and the rollups), not on the table's other months, so the figures hold for the year
(a B-tree one level deeper); the table's size is printed with them.

Measured (``ReportService`` on the database, the code the REST API runs):
* rollup build, per day of the center (15-minute and day rollups of queues and agents);
* the **daily per-queue report** (``queue_report`` of one day): target ≤ 1 s;
  baseline in the same run: the same report computed from the facts (no rollups);
* the **month per agent** (``agent_report`` of 30 days): target ≤ 2 s; baseline: from the facts;
* a month per queue by day (``queue_report(interval="day")``), for information.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from datetime import datetime, timedelta
from typing import Any, Iterator
from zoneinfo import ZoneInfo

from benchmarks.common import Figure, check, summarize

SIZES = {
    "full": {"days": int(os.environ.get("CALLCORE_BENCH_REPORT_DAYS", "60")), "calls_per_day": 27_400, "agents": 500,
             "queues": 20, "rounds": 5},
    "quick": {"days": 3, "calls_per_day": 3000, "agents": 100, "queues": 4, "rounds": 2},
    "smoke": {"days": 2, "calls_per_day": 150, "agents": 20, "queues": 2, "rounds": 1},
}
DAY_TARGET_S, MONTH_TARGET_S = 1.0, 2.0
TZ = ZoneInfo("Asia/Seoul")
START = datetime(2026, 1, 5, tzinfo=TZ)  # a Monday
PG_DSN = os.environ.get("CALLCORE_BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
COLUMNS = ("key", "kind", "at", "anchor_at", "call_id", "queue", "agent_id", "data", "recorded_at")


def _day_start(d: int) -> float:
    return (START + timedelta(days=d)).timestamp()


def generate(days: int, calls_per_day: int, agents: int, queues: int, seed: int = 2026) -> Iterator[tuple[Any, ...]]:
    """Fact rows (``COLUMNS``) of the whole period, in time order per day."""
    rng = random.Random(seed)
    now = datetime.now(tz=TZ)
    qnames = [f"q{i:02d}" for i in range(queues)]
    per_q = max(1, agents // queues)
    group = {q: [f"{9000 + i * per_q + k}" for k in range(per_q)] for i, q in enumerate(qnames)}
    weights = [1.0 / (i + 1) for i in range(queues)]  # a few big queues, a long tail
    ev = 0

    def row(key: str, kind: str, at: float, anchor: float, call: str | None, queue: str | None, agent: str | None,
            data: dict[str, Any]) -> tuple[Any, ...]:
        return (key, kind, at, anchor, call, queue, agent, json.dumps(data), now)

    for d in range(days):
        day = _day_start(d)
        for q, members in group.items():  # the agents' day: logged in 09-18, one member span, two pauses
            for a in members:
                login = day + 9 * 3600 + rng.uniform(-600, 600)
                logout = day + 18 * 3600 + rng.uniform(-600, 600)
                yield row(f"a:{a}:logged_in:{login:.3f}", "agent.logged_in", logout, login, None, None, a,
                          {"start": login, "end": logout, "reason": None})
                yield row(f"a:{a}:member:{q}:{login:.3f}", "agent.member", logout, login, None, q, a,
                          {"start": login, "end": logout, "reason": None})
                for reason, at_h, secs in (("lunch", 12.0, 3600), ("break", 15.5, 900)):
                    s = day + at_h * 3600 + rng.uniform(-900, 900)
                    yield row(f"a:{a}:paused:{s:.3f}", "agent.paused", s + secs, s, None, None, a,
                              {"start": s, "end": s + secs, "reason": reason})
        for i in range(calls_per_day):
            cid = f"{int(day)}.{i}"
            q = rng.choices(qnames, weights)[0]
            entered = day + 9 * 3600 + rng.random() * 9 * 3600
            caller = f"010{rng.randrange(10**8):08d}"
            base = f"v:{cid}:0"
            yield row(f"{base}:entered", "visit.entered", entered, entered, cid, q, None, {"seq": 0, "caller": caller})
            p = rng.random()
            if p < 0.88:
                agent = rng.choice(group[q])
                wait = rng.expovariate(1 / 25.0)
                ans = entered + wait
                talk = rng.lognormvariate(5.0, 0.6)
                hold = 30.0 if rng.random() < 0.1 else 0.0
                end = ans + talk
                wrap = rng.uniform(10, 60)
                yield row(f"{base}:answered", "visit.answered", ans, entered, cid, q, agent, {"seq": 0, "wait": wait})
                yield row(f"{base}:completed", "visit.completed", end, entered, cid, q, agent,
                          {"seq": 0, "talk": talk, "hold": hold, "transferred": False})
                yield row(f"w:{cid}:{agent}:{end:.3f}", "wrapup", end + wrap, entered, cid, q, agent,
                          {"start": end, "end": end + wrap, "seconds": wrap})
                outcome = "answered"
                if rng.random() < 0.7:
                    code = "resolved" if rng.random() < 0.8 else "callback_needed"
                    yield row(f"d:{cid}", "disposition", end + wrap, entered, cid, None, agent,
                              {"code": code, "resolved": code == "resolved"})
                if rng.random() < 0.2:
                    yield row(f"s:{cid}:satisfaction", "survey.answer", end + 30, end + 30, cid, None, None,
                              {"question": "satisfaction", "value": rng.choice((3, 4, 4, 5, 5))})
                    yield row(f"s:{cid}:nps", "survey.answer", end + 30, end + 30, cid, None, None,
                              {"question": "nps", "value": rng.randrange(11)})
                yield row(f"rec:{cid}:decided", "recording.decided", end, entered, cid, q, agent,
                          {"status": "pending", "required": True, "direction": "inbound", "reason": None})
                yield row(f"rec:{cid}:processed", "recording.processed", end + 60, entered, cid, q, agent,
                          {"status": "ready" if rng.random() < 0.98 else "failed", "required": True,
                           "direction": "inbound", "reason": None})
                if rng.random() < 0.02:
                    ev += 1
                    yield row(f"qa:{ev}:1", "qa.scored", end + 86400, entered, cid, q, agent,
                              {"evaluation": str(ev), "revision": 1, "form": "customer-service",
                               "total": round(rng.uniform(50, 100), 2), "critical_failed": rng.random() < 0.03})
            else:
                outcome = "abandoned" if p < 0.98 else "timeout"
                wait = rng.uniform(0.5, 4.5) if p < 0.90 else rng.expovariate(1 / 60.0)
                end = entered + wait
                yield row(f"{base}:left", "visit.left", end, entered, cid, q, None,
                          {"seq": 0, "outcome": outcome, "wait": wait, "rang_agent": rng.random() < 0.3})
                agent = None
            yield row(f"c:{cid}:ended", "call.ended", end, entered, cid, q, agent,
                      {"outcome": outcome, "caller": caller, "customer": None, "direction": "inbound",
                       "first_queued_at": entered})


async def _load_pg(dsn: str, cfg: dict[str, Any]) -> tuple[int, float]:
    """COPY the generated facts into ``report_facts`` of the database at ``dsn``."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        # bulk load as PostgreSQL's docs advise: without the secondary indexes and the unique key,
        # built once afterwards (the same definitions, read back from the catalog)
        uniques = await conn.fetch("SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint "
                                   "WHERE conrelid = 'report_facts'::regclass AND contype = 'u'")
        for u in uniques:
            await conn.execute(f'ALTER TABLE report_facts DROP CONSTRAINT "{u["conname"]}"')
        indexes = await conn.fetch("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'report_facts' "
                                   "AND indexname NOT IN (SELECT conname FROM pg_constraint WHERE conrelid = 'report_facts'::regclass)")
        for ix in indexes:
            await conn.execute(f'DROP INDEX "{ix["indexname"]}"')
        total, t0 = 0, time.perf_counter()
        batch: list[tuple[Any, ...]] = []
        for r in generate(cfg["days"], cfg["calls_per_day"], cfg["agents"], cfg["queues"]):
            batch.append(r)
            if len(batch) >= 50_000:
                await conn.copy_records_to_table("report_facts", records=batch, columns=COLUMNS)
                total += len(batch)
                batch.clear()
        if batch:
            await conn.copy_records_to_table("report_facts", records=batch, columns=COLUMNS)
            total += len(batch)
        for ix in indexes:
            await conn.execute(ix["indexdef"])
        for u in uniques:
            await conn.execute(f'ALTER TABLE report_facts ADD CONSTRAINT "{u["conname"]}" {u["def"]}')
        await conn.execute("ANALYZE report_facts")
        return total, time.perf_counter() - t0
    finally:
        await conn.close()


async def _table_size(dsn: str) -> str:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval("SELECT pg_size_pretty(pg_total_relation_size('report_facts'))")
    finally:
        await conn.close()


async def _measure(url: str, dsn: str, cfg: dict[str, Any]) -> dict[str, Any]:
    from callcore.db import create_engine, session_factory
    from reports.repository import ReportRepository
    from reports.service import ReportConfig, ReportService

    n_facts, load_s = await _load_pg(dsn, cfg)
    engine = create_engine(url)
    end_all = _day_start(cfg["days"])
    svc = ReportService(ReportRepository(session_factory(engine)), ReportConfig(timezone="Asia/Seoul"),
                        clock=lambda: end_all + 7 * 86400, rollup_every=None)
    try:
        build = []
        for d in range(cfg["days"]):
            t0 = time.perf_counter()
            await svc.rebuild_rollups(_day_start(d), _day_start(d + 1))
            build.append(time.perf_counter() - t0)
        rng = random.Random(7)
        days = [rng.randrange(cfg["days"]) for _ in range(cfg["rounds"])]
        month = min(30, cfg["days"])
        out: dict[str, list[float]] = {k: [] for k in ("day_queue", "day_queue_facts", "month_agent",
                                                        "month_agent_facts", "month_queue_by_day")}
        rows: dict[str, int] = {}
        for d in days:
            lo, hi = _day_start(d), _day_start(d + 1)
            t0 = time.perf_counter()
            r = await svc.queue_report(lo, hi)
            out["day_queue"].append(time.perf_counter() - t0)
            rows["day_queue"] = len(r)
            svc.use_rollups = False
            t0 = time.perf_counter()
            r2 = await svc.queue_report(lo, hi)
            out["day_queue_facts"].append(time.perf_counter() - t0)
            svc.use_rollups = True
            rows["day_queue_facts_equal"] = int(_strip(r) == _strip(r2))
        start = max(0, cfg["days"] - month)
        lo, hi = _day_start(start), _day_start(start + month)
        for _ in range(max(1, cfg["rounds"] // 2)):
            t0 = time.perf_counter()
            r = await svc.agent_report(lo, hi)
            out["month_agent"].append(time.perf_counter() - t0)
            rows["month_agent"] = len(r)
            t0 = time.perf_counter()
            q = await svc.queue_report(lo, hi, "day")
            out["month_queue_by_day"].append(time.perf_counter() - t0)
            rows["month_queue_by_day"] = len(q)
        svc.use_rollups = False
        t0 = time.perf_counter()
        r2 = await svc.agent_report(lo, hi)
        out["month_agent_facts"].append(time.perf_counter() - t0)
        svc.use_rollups = True
        rows["month_agent_facts_equal"] = int(_strip(r) == _strip(r2))
    finally:
        await engine.dispose()
    return {"facts": n_facts, "load_s": round(load_s, 1), "table": await _table_size(dsn), "build_s": build,
            "latency": out, "rows": rows, "month_days": month}


def _strip(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows without the figures that legitimately differ by float summation order."""
    def r(v: Any) -> Any:
        return round(v, 1) if isinstance(v, float) else {k: r(x) for k, x in v.items()} if isinstance(v, dict) else v
    return [r(x) for x in rows]


async def _with_database(cfg: dict[str, Any]) -> dict[str, Any]:
    import asyncpg

    from callcore import migrate

    name = f"callcore_bench_reports_{os.getpid()}"
    admin = await asyncio.wait_for(asyncpg.connect(PG_DSN), 5)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    await admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_DSN.rsplit("/", 1)[0]
    dsn = f"{base}/{name}"
    url = dsn.replace("postgresql:", "postgresql+asyncpg:", 1)
    try:
        await asyncio.to_thread(migrate.upgrade, url)
        return await _measure(url, dsn, cfg)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def run(size: str = "full") -> dict[str, Any]:
    cfg = SIZES[size]
    m = asyncio.run(_with_database(cfg))
    lat = m["latency"]
    day, day_f = summarize(lat["day_queue"]), summarize(lat["day_queue_facts"])
    mon, mon_f = summarize(lat["month_agent"]), summarize(lat["month_agent_facts"])
    by_day = summarize(lat["month_queue_by_day"])
    build = summarize(m["build_s"])
    calls = cfg["days"] * cfg["calls_per_day"]
    note = f"{cfg['days']} days, {calls:,} calls, {m['facts']:,} facts ({m['table']})"
    figures = [
        Figure("reports", "daily per-queue report (p99)", day.get("p99"), "s", day_f.get("p99"),
               target=f"<= {DAY_TARGET_S:g} s", verdict=check(day.get("p99", 1e9) <= DAY_TARGET_S), lower_is_better=True,
               note=f"baseline: the same report from the facts; {note}"),
        Figure("reports", f"month ({m['month_days']} days) per agent (max)", mon.get("max"), "s", mon_f.get("max"),
               target=f"<= {MONTH_TARGET_S:g} s", verdict=check(mon.get("max", 1e9) <= MONTH_TARGET_S),
               lower_is_better=True, note=f"baseline: from the facts; {cfg['agents']} agents"),
        Figure("reports", f"month ({m['month_days']} days) per queue by day (max)", by_day.get("max"), "s",
               target="info"),
        Figure("reports", "rollup build per day of the center (mean)", build.get("mean"), "s", target="info",
               note=f"a year: ~{(build.get('mean') or 0) * 365 / 60:.0f} min"),
        Figure("reports", "fact load (COPY)", m["facts"] / max(m["load_s"], 1e-9), "facts/s", target="info"),
    ]
    return {"name": "reports", "figures": figures, "details": {"sizes": cfg, **m, "summary": {
        "day_queue": day, "day_queue_facts": day_f, "month_agent": mon, "month_agent_facts": mon_f,
        "month_queue_by_day": by_day, "build": build}}}
