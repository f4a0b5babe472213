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
    "smoke": {"days": 2, "calls_per_day": 150, "agents": 20, "queues": 2, "rounds": 1, "old_days": 1},
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


# ------------------------------------------------------------- server-side generation
#: a deterministic uniform in (0, 1) from the call's number ``n`` and a salt: no RNG state, so
#: days are generated in any order, on any connection, and always give the same facts
def _u(salt: int) -> str:
    return f"((hashint8extended(n, {salt}) & 281474976710655)::float8 + 0.5) / 281474976710656.0"


def _day_sql(cfg: dict[str, Any]) -> tuple[str, str]:
    """Two INSERT … SELECT statements that generate one day of the center inside PostgreSQL
    (parameters: $1 = the day's index, $2 = its start, epoch seconds): the agents' day and the
    calls, with the distribution of :func:`generate` (its draws, not its exact numbers)."""
    queues, agents, calls = cfg["queues"], cfg["agents"], cfg["calls_per_day"]
    per_q = max(1, agents // queues)
    w = [1.0 / (i + 1) for i in range(queues)]
    cdf, acc = [], 0.0
    for x in w[:-1]:
        acc += x / sum(w)
        cdf.append(acc)
    cdf_sql = "ARRAY[" + ",".join(repr(c) for c in cdf) + "]::float8[]" if cdf else "ARRAY[2.0]::float8[]"
    j = "json_build_object"
    agents_sql = f"""
INSERT INTO report_facts (key, kind, at, anchor_at, call_id, queue, agent_id, data, recorded_at)
SELECT f.key, f.kind, f.at, f.anchor_at, NULL, f.queue, a.agent, f.data, now()
FROM (
  SELECT agent, queue, login, logout, lunch, brk FROM (
    SELECT (9000 + g)::text AS agent, 'q' || lpad((g / {per_q})::text, 2, '0') AS queue,
           $2::bigint::float8 + 9 * 3600 + ({_u(1)}) * 1200 - 600 AS login,
           $2::bigint::float8 + 18 * 3600 + ({_u(2)}) * 1200 - 600 AS logout,
           $2::bigint::float8 + 12 * 3600 + ({_u(3)}) * 1800 - 900 AS lunch,
           $2::bigint::float8 + 15.5 * 3600 + ({_u(4)}) * 1800 - 900 AS brk
    FROM (SELECT g, -($1::bigint * 100000 + g) - 1 AS n FROM generate_series(0, {per_q * queues - 1}) AS g) s
  ) t
) a
CROSS JOIN LATERAL (VALUES
  ('a:' || a.agent || ':logged_in:' || round(a.login::numeric, 3), 'agent.logged_in', a.logout, a.login, NULL::text,
   {j}('start', a.login, 'end', a.logout, 'reason', NULL)),
  ('a:' || a.agent || ':member:' || a.queue || ':' || round(a.login::numeric, 3), 'agent.member', a.logout, a.login, a.queue,
   {j}('start', a.login, 'end', a.logout, 'reason', NULL)),
  ('a:' || a.agent || ':paused:' || round(a.lunch::numeric, 3), 'agent.paused', a.lunch + 3600, a.lunch, NULL,
   {j}('start', a.lunch, 'end', a.lunch + 3600, 'reason', 'lunch')),
  ('a:' || a.agent || ':paused:' || round(a.brk::numeric, 3), 'agent.paused', a.brk + 900, a.brk, NULL,
   {j}('start', a.brk, 'end', a.brk + 900, 'reason', 'break'))
) AS f(key, kind, at, anchor_at, queue, data)"""
    calls_sql = f"""
INSERT INTO report_facts (key, kind, at, anchor_at, call_id, queue, agent_id, data, recorded_at)
WITH c AS MATERIALIZED (
  SELECT cid, q, entered, caller, p, agent, wait, talk, hold, wrap, ans, ans + talk AS "end", disp, resolved,
         survey, sat, nps, ready, qa, total, critical, rang, n
  FROM (
    SELECT cid, n, q, entered, caller, p,
           CASE WHEN p < 0.88 THEN (9000 + qi * {per_q} + floor(u5 * {per_q}))::int::text END AS agent,
           CASE WHEN p < 0.88 THEN -25.0 * ln(1 - u6) WHEN p < 0.90 THEN 0.5 + 4 * u6 ELSE -60.0 * ln(1 - u6) END AS wait,
           exp(5.0 + 0.6 * sqrt(-2 * ln(u7)) * cos(2 * pi() * u8)) AS talk,
           CASE WHEN u9 < 0.1 THEN 30.0 ELSE 0.0 END AS hold, 10 + 50 * u10 AS wrap,
           entered + CASE WHEN p < 0.88 THEN -25.0 * ln(1 - u6) ELSE 0 END AS ans,
           u11 < 0.7 AS disp, u12 < 0.8 AS resolved, u13 < 0.2 AS survey,
           (ARRAY[3, 4, 4, 5, 5])[1 + floor(u14 * 5)::int] AS sat, floor(u15 * 11)::int AS nps,
           u16 < 0.98 AS ready, u17 < 0.02 AS qa, round((50 + 50 * u18)::numeric, 2)::float8 AS total,
           u19 < 0.03 AS critical, u20 < 0.3 AS rang
    FROM (
      SELECT cid, n, qi, 'q' || lpad(qi::text, 2, '0') AS q, entered, caller, p,
             u5, u6, u7, u8, u9, u10, u11, u12, u13, u14, u15, u16, u17, u18, u19, u20
      FROM (
        SELECT ($2::bigint)::text || '.' || i AS cid, n,
               width_bucket({_u(1)}, {cdf_sql}) AS qi,
               $2::bigint::float8 + 9 * 3600 + ({_u(2)}) * 9 * 3600 AS entered,
               '010' || lpad(floor(({_u(3)}) * 100000000)::bigint::text, 8, '0') AS caller,
               {_u(4)} AS p, {_u(5)} AS u5, {_u(6)} AS u6, {_u(7)} AS u7, {_u(8)} AS u8, {_u(9)} AS u9,
               {_u(10)} AS u10, {_u(11)} AS u11, {_u(12)} AS u12, {_u(13)} AS u13, {_u(14)} AS u14,
               {_u(15)} AS u15, {_u(16)} AS u16, {_u(17)} AS u17, {_u(18)} AS u18, {_u(19)} AS u19, {_u(20)} AS u20
        FROM (SELECT i, $1::bigint * 100000 + i AS n FROM generate_series(0, {calls - 1}) AS i) s
        OFFSET 0
      ) r
    ) r2
  ) r3
)
SELECT f.key, f.kind, f.at, f.anchor_at, c.cid, f.queue, f.agent, f.data, now()
FROM c CROSS JOIN LATERAL (VALUES
  (true, 'v:' || c.cid || ':0:entered', 'visit.entered', c.entered, c.entered, c.q, NULL::text,
   {j}('seq', 0, 'caller', c.caller)),
  (c.agent IS NOT NULL, 'v:' || c.cid || ':0:answered', 'visit.answered', c.ans, c.entered, c.q, c.agent,
   {j}('seq', 0, 'wait', c.wait)),
  (c.agent IS NOT NULL, 'v:' || c.cid || ':0:completed', 'visit.completed', c."end", c.entered, c.q, c.agent,
   {j}('seq', 0, 'talk', c.talk, 'hold', c.hold, 'transferred', false)),
  (c.agent IS NOT NULL, 'w:' || c.cid || ':' || c.agent || ':' || round(c."end"::numeric, 3), 'wrapup', c."end" + c.wrap,
   c.entered, c.q, c.agent, {j}('start', c."end", 'end', c."end" + c.wrap, 'seconds', c.wrap)),
  (c.agent IS NOT NULL AND c.disp, 'd:' || c.cid, 'disposition', c."end" + c.wrap, c.entered, NULL, c.agent,
   {j}('code', CASE WHEN c.resolved THEN 'resolved' ELSE 'callback_needed' END, 'resolved', c.resolved)),
  (c.agent IS NOT NULL AND c.survey, 's:' || c.cid || ':satisfaction', 'survey.answer', c."end" + 30, c."end" + 30, NULL, NULL,
   {j}('question', 'satisfaction', 'value', c.sat)),
  (c.agent IS NOT NULL AND c.survey, 's:' || c.cid || ':nps', 'survey.answer', c."end" + 30, c."end" + 30, NULL, NULL,
   {j}('question', 'nps', 'value', c.nps)),
  (c.agent IS NOT NULL, 'rec:' || c.cid || ':decided', 'recording.decided', c."end", c.entered, c.q, c.agent,
   {j}('status', 'pending', 'required', true, 'direction', 'inbound', 'reason', NULL)),
  (c.agent IS NOT NULL, 'rec:' || c.cid || ':processed', 'recording.processed', c."end" + 60, c.entered, c.q, c.agent,
   {j}('status', CASE WHEN c.ready THEN 'ready' ELSE 'failed' END, 'required', true, 'direction', 'inbound', 'reason', NULL)),
  (c.agent IS NOT NULL AND c.qa, 'qa:' || c.cid || ':1', 'qa.scored', c."end" + 86400, c.entered, c.q, c.agent,
   {j}('evaluation', c.cid, 'revision', 1, 'form', 'customer-service', 'total', c.total, 'critical_failed', c.critical)),
  (c.agent IS NULL, 'v:' || c.cid || ':0:left', 'visit.left', c.entered + c.wait, c.entered, c.q, NULL,
   {j}('seq', 0, 'outcome', CASE WHEN c.p < 0.98 THEN 'abandoned' ELSE 'timeout' END, 'wait', c.wait, 'rang_agent', c.rang)),
  (true, 'c:' || c.cid || ':ended', 'call.ended', CASE WHEN c.agent IS NULL THEN c.entered + c.wait ELSE c."end" END,
   c.entered, c.q, c.agent,
   {j}('outcome', CASE WHEN c.agent IS NOT NULL THEN 'answered' WHEN c.p < 0.98 THEN 'abandoned' ELSE 'timeout' END,
       'caller', c.caller, 'customer', NULL, 'direction', 'inbound', 'first_queued_at', c.entered))
) AS f(inc, key, kind, at, anchor_at, queue, agent, data)
WHERE f.inc"""
    return agents_sql, calls_sql


async def _generate_pg(dsn: str, cfg: dict[str, Any], workers: int = 2) -> None:
    """Generate ``cfg["days"]`` days inside PostgreSQL, a day per statement, on ``workers``
    connections at once (days taken in order from a shared counter)."""
    import asyncpg

    agents_sql, calls_sql = _day_sql(cfg)
    todo = iter(range(cfg["days"]))

    async def worker() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("SET synchronous_commit = off")
            await conn.execute("SET jit = off")  # compiling the day's statement costs more than it saves
            for d in todo:
                async with conn.transaction():
                    await conn.execute(agents_sql, d, int(_day_start(d)))
                    await conn.execute(calls_sql, d, int(_day_start(d)))
        finally:
            await conn.close()

    await asyncio.gather(*(worker() for _ in range(max(1, min(workers, cfg["days"])))))


async def _load_pg(dsn: str, cfg: dict[str, Any], gen: str = "server") -> tuple[int, float]:
    """Fill ``report_facts`` of the database at ``dsn``: generated inside PostgreSQL
    (``gen`` "server", :func:`_generate_pg`) or generated here and COPYed (``gen`` "copy")."""
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
        if gen == "server":
            await _generate_pg(dsn, cfg, workers=int(os.environ.get("CALLCORE_BENCH_REPORT_WORKERS", "2")))
            total = await conn.fetchval("SELECT count(*) FROM report_facts")
        else:
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
        gen_s = time.perf_counter() - t0
        await conn.execute("SET maintenance_work_mem = '512MB'")
        for ix in indexes:
            await conn.execute(ix["indexdef"])
        for u in uniques:
            await conn.execute(f'ALTER TABLE report_facts ADD CONSTRAINT "{u["conname"]}" {u["def"]}')
        await conn.execute("ANALYZE report_facts")
        print(f"reports: {total:,} facts generated in {gen_s:.0f} s, indexed in {time.perf_counter() - t0 - gen_s:.0f} s",
              flush=True)
        return total, time.perf_counter() - t0
    finally:
        await conn.close()


async def _day_rollups(dsn: str, day: float) -> Any:
    """The rollup rows of one day (queue slots and day, agents, FCR), comparable across builds."""
    import asyncpg

    def norm(v: Any) -> Any:
        if isinstance(v, bool):
            return v
        if isinstance(v, (int, float)):
            return round(float(v), 4)
        return {k: norm(x) for k, x in v.items()} if isinstance(v, dict) else v

    conn = await asyncpg.connect(dsn)
    try:
        q = await conn.fetch("SELECT span, interval_start, queue, config::text AS config, counts::text AS counts FROM report_rollups "
                             "WHERE interval_start >= $1 AND interval_start < $2", day, day + 86400)
        a = await conn.fetch("SELECT interval_start, agent_id, counts::text AS counts FROM report_agent_rollups "
                             "WHERE interval_start >= $1 AND interval_start < $2", day, day + 86400)
    finally:
        await conn.close()
    out = {}
    for r in q:
        counts = norm(json.loads(r["counts"]))
        if r["span"] == "fcr_day" and counts:
            counts.setdefault("callbacks_requested", 0.0)
            counts.setdefault("callbacks_completed", 0.0)
        out[(r["span"], r["interval_start"], r["queue"])] = (json.loads(r["config"]), counts)
    out.update({("agent", r["interval_start"], r["agent_id"]): norm(json.loads(r["counts"])) for r in a})
    return out


async def _table_size(dsn: str) -> str:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval("SELECT pg_size_pretty(pg_total_relation_size('report_facts'))")
    finally:
        await conn.close()


async def _measure(url: str, dsn: str, cfg: dict[str, Any], n_facts: int, load_s: float | None) -> dict[str, Any]:
    from callcore.db import create_engine, session_factory
    from reports.repository import ReportRepository
    from reports.service import ReportConfig, ReportService

    engine = create_engine(url)
    end_all = _day_start(cfg["days"])
    svc = ReportService(ReportRepository(session_factory(engine)), ReportConfig(timezone="Asia/Seoul"),
                        clock=lambda: end_all + 7 * 86400, rollup_every=None)
    try:
        # paired, before the year's build: the Python fold (main's build) and the set-based build of
        # the same days, alternating; the rollups each gives are compared
        pairs: list[dict[str, Any]] = []
        n_old = min(cfg["days"], int(os.environ.get("CALLCORE_BENCH_REPORT_OLD_DAYS", str(cfg.get("old_days", 3)))))
        for i, d in enumerate(random.Random(5).sample(range(cfg["days"]), n_old)):
            pair: dict[str, Any] = {"day": d}
            for set_based in ((False, True) if i % 2 == 0 else (True, False)):
                svc.set_based = set_based
                t0 = time.perf_counter()
                await svc.rebuild_rollups(_day_start(d), _day_start(d + 1))
                pair["set_based_s" if set_based else "python_s"] = time.perf_counter() - t0
                pair["rollups_sql" if set_based else "rollups_py"] = await _day_rollups(dsn, _day_start(d))
            pair["equal"] = pair.pop("rollups_sql") == pair.pop("rollups_py")
            pair["load"] = os.getloadavg()[0]
            pairs.append(pair)
            print(f"reports: day {d}: python build {pair['python_s']:.1f} s, set-based {pair['set_based_s']:.2f} s, "
                  f"equal {pair['equal']}, load {pair['load']:.1f}", flush=True)
        # the period's rollups, a day per call, on ``workers`` connections at once (days are independent:
        # a day's build writes only that day's rows)
        svc.set_based = True
        build: list[float] = []
        t_all = time.perf_counter()
        todo = iter(range(cfg["days"]))
        workers = int(os.environ.get("CALLCORE_BENCH_REPORT_BUILD_WORKERS", "2"))

        async def builder() -> None:
            for d in todo:
                t0 = time.perf_counter()
                await svc.rebuild_rollups(_day_start(d), _day_start(d + 1))
                build.append(time.perf_counter() - t0)
                if len(build) % 30 == 0:
                    print(f"reports: {len(build)} days rolled up in {time.perf_counter() - t_all:.0f} s "
                          f"(load {os.getloadavg()[0]:.1f})", flush=True)

        await asyncio.gather(*(builder() for _ in range(max(1, workers))))
        build_total = time.perf_counter() - t_all
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
    return {"facts": n_facts, "load_s": None if load_s is None else round(load_s, 1), "table": await _table_size(dsn),
            "build_s": build, "build_total_s": round(build_total, 1), "build_workers": workers, "build_pairs": pairs,
            "latency": out, "rows": rows, "month_days": month}


def _median(xs: list[float]) -> float | None:
    xs = sorted(xs)
    return None if not xs else xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2


def _strip(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows without the figures that legitimately differ by float summation order."""
    def r(v: Any) -> Any:
        return round(v, 1) if isinstance(v, float) else {k: r(x) for k, x in v.items()} if isinstance(v, dict) else v
    return [r(x) for x in rows]


async def _with_database(cfg: dict[str, Any], gen: str, keep: str | None = None, load_only: bool = False) -> dict[str, Any]:
    """A throwaway database per run; ``keep`` (``CALLCORE_BENCH_REPORT_DB``): that database, kept
    after the run and, when it already holds facts, used as it is (no load: a year is loaded once)."""
    import asyncpg

    from callcore import migrate

    name = keep or f"callcore_bench_reports_{os.getpid()}"
    admin = await asyncio.wait_for(asyncpg.connect(PG_DSN), 5)
    exists = keep is not None and await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
    if not exists:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_DSN.rsplit("/", 1)[0]
    dsn = f"{base}/{name}"
    url = dsn.replace("postgresql:", "postgresql+asyncpg:", 1)
    try:
        await asyncio.to_thread(migrate.upgrade, url)
        conn = await asyncpg.connect(dsn)
        try:
            loaded = await conn.fetchval("SELECT EXISTS (SELECT 1 FROM report_facts)")
        finally:
            await conn.close()
        n_facts, load_s = (await _count(dsn), None) if loaded else await _load_pg(dsn, cfg, gen)
        if load_only:
            return {"facts": n_facts, "load_s": load_s}
        return await _measure(url, dsn, cfg, n_facts, load_s)
    finally:
        if keep is None:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def _count(dsn: str) -> int:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM report_facts"))
    finally:
        await conn.close()


def run(size: str = "full", gen: str | None = None) -> dict[str, Any]:
    """``gen``: "server" (generated inside PostgreSQL, the default) or "copy" (generated here,
    COPYed; ``CALLCORE_BENCH_REPORT_GEN``)."""
    cfg = SIZES[size]
    gen = gen or os.environ.get("CALLCORE_BENCH_REPORT_GEN", "server")
    m = asyncio.run(_with_database(cfg, gen, os.environ.get("CALLCORE_BENCH_REPORT_DB") or None))
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
        Figure("reports", "rollup build per day of the center (mean, set-based)", build.get("mean"), "s", target="info",
               note=f"{cfg['days']} days built in {m['build_total_s']:.0f} s wall on {m['build_workers']} connections"),
        Figure("reports", "rollup build of one day: set-based vs the Python fold (paired, median)",
               _median([p["set_based_s"] for p in m["build_pairs"]]), "s",
               _median([p["python_s"] for p in m["build_pairs"]]), target="info", lower_is_better=True,
               verdict="info" if all(p["equal"] for p in m["build_pairs"]) else "MISS",
               note=f"{len(m['build_pairs'])} days, alternating; rollups equal: "
                    f"{all(p['equal'] for p in m['build_pairs'])}"),
        Figure("reports", f"fact load ({gen})", m["facts"] / max(m["load_s"], 1e-3) if m["load_s"] is not None else None,
               "facts/s", target="info", note="database reused: not loaded in this run" if m["load_s"] is None else
               f"{m['load_s']:.0f} s for {m['facts']:,} facts"),
    ]
    return {"name": "reports", "figures": figures, "details": {"sizes": cfg, "gen": gen, **m, "summary": {
        "day_queue": day, "day_queue_facts": day_f, "month_agent": mon, "month_agent_facts": mon_f,
        "month_queue_by_day": by_day, "build": build}}}


if __name__ == "__main__":  # load only: python -m benchmarks.reports_bench load <database> [days]
    import sys

    if len(sys.argv) >= 3 and sys.argv[1] == "load":
        c = dict(SIZES["full"], days=int(sys.argv[3]) if len(sys.argv) > 3 else SIZES["full"]["days"])
        print(asyncio.run(_with_database(c, os.environ.get("CALLCORE_BENCH_REPORT_GEN", "server"), sys.argv[2],
                                         load_only=True)))
