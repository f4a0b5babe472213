"""Benchmark 6 — recording search at a million rows (issues 13 and 18): ``GET /api/recordings``'s
query (``RecordingRepository.search``, the code the REST API runs) on 1,000,000 recordings in
PostgreSQL, with the typical filter combinations QA and supervisors use, p99 ≤ 50 ms each, and
the ``EXPLAIN`` of each showing the index it walks. SQLite figures beside (fewer rows, stated).

Generated (:func:`generate`, deterministic, seeded): ``rows`` recordings over 90 days of a
center, business hours 08–21 in Asia/Seoul (more on Mondays, fewer at the weekend), 500 agents
(a few busy, a long tail), 12 queues (weighted), 200,000 caller numbers, 6 DIDs, directions
(inbound 85 %, click-to-call 8 %, callback 4 %, outbound 3 %), outcomes and dispositions, talk
times log-normal around 4 minutes, 4 % with a PCI mute, 8 % transferred (two agents), IVR paths
(two nodes each), 5 % tagged, statuses mostly ``ready`` — plus the facet rows search uses
(agent, queue, IVR node, tag: ~4.3 per recording). Loaded with COPY (PostgreSQL; secondary
indexes dropped and rebuilt, as PostgreSQL's docs advise) or ``executemany`` (SQLite).

Measured per combination (:data:`COMBOS`): ``rounds`` searches with different values (another
agent, queue, day, caller … each round), page size 50, p50/p99 in ms; the ``EXPLAIN`` of one
of them (PostgreSQL ``EXPLAIN``, SQLite ``EXPLAIN QUERY PLAN``), the indexes it names, and
whether it reads a table without an index (``Seq Scan`` / ``SCAN recording_recordings``).
Baseline (same run, same database): fetching 50 rows by primary key (``WHERE id IN (…)``) —
the floor of any page of 50 recordings.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import re
import sqlite3
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator
from zoneinfo import ZoneInfo

from benchmarks.common import Figure, check, summarize

SIZES = {
    "full": {"rows": int(os.environ.get("CALLCORE_BENCH_REC_ROWS", "1000000")),
             "sqlite_rows": int(os.environ.get("CALLCORE_BENCH_REC_SQLITE_ROWS", "250000")), "rounds": 30},
    "quick": {"rows": 50_000, "sqlite_rows": 20_000, "rounds": 5},
    "smoke": {"rows": 2_000, "sqlite_rows": 1_000, "rounds": 2},
}
P99_MS = 50.0
PAGE = 50
DAYS = 90
TZ = ZoneInfo("Asia/Seoul")
START = datetime(2026, 9, 1, tzinfo=TZ)
PG_DSN = os.environ.get("CALLCORE_BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
QUEUES = ["support", "billing", "sales", "tech", "vip", "retention", "roaming", "internet", "mobile", "corporate",
          "english", "complaints"]
QUEUE_W = [30, 22, 12, 12, 3, 5, 2, 6, 4, 2, 1, 1]
DIDS = ["15881234", "15887000", "15884000", "0212345678", "0800123456", "15889999"]
DISPOSITIONS = ["resolved", "callback-promised", "escalated", "info-given", "complaint", "sale", "no-sale", "transferred",
                "wrong-number", None]
DISP_W = [40, 6, 5, 20, 3, 5, 6, 5, 1, 9]
NODES = ["main:billing_menu", "main:tech_support", "main:set_sales", "main:set_general", "main:balance_check",
         "main:card_payment", "main:vip_greeting", "tech_support:outage", "tech_support:router", "main:ask_account"]
TAGS = ["complaint", "vip", "training", "legal", "praise", "escalation"]
RECORDING_COLUMNS = (
    "id", "call_id", "uniqueids", "caller_num", "caller_name", "called", "direction", "queue", "queues", "agent_id",
    "agents", "started_at", "ended_at", "late_start", "wait_seconds", "talk_seconds", "hold_seconds", "outcome",
    "disposition", "ivr_path", "tags", "muted", "muted_spans", "format", "size", "encrypted", "duration", "status",
    "retention_until", "legal_hold", "qa_sample", "created_at",
)
FACET_COLUMNS = ("recording_id", "kind", "value", "started_at")


def _agents(n: int = 500) -> list[str]:
    return [str(1000 + i) for i in range(n)]


def generate(rows: int, seed: int = 2026) -> Iterator[tuple[tuple[Any, ...], list[tuple[Any, ...]]]]:
    """(recording row, its facet rows) in time order."""
    rng = random.Random(seed)
    agents = _agents()
    agent_w = [1.0 / (1 + i / 40) for i in range(len(agents))]  # busy agents and a long tail
    callers = [f"010{rng.randrange(10**8):08d}" for _ in range(200_000)]
    day_w = [(1.3 if (START + timedelta(days=d)).weekday() == 0 else 0.35 if (START + timedelta(days=d)).weekday() >= 5
              else 1.0) for d in range(DAYS)]
    per_day = [rows * w / sum(day_w) for w in day_w]
    made, rid = 0, 0
    now = datetime.now(timezone.utc)
    for d in range(DAYS):
        n = int(round(sum(per_day[: d + 1]))) - made if d < DAYS - 1 else rows - made
        day = START + timedelta(days=d)
        stamps = sorted(day + timedelta(hours=8 + rng.betavariate(2.2, 2.6) * 13) for _ in range(n))
        for at in stamps:
            rid += 1
            made += 1
            direction = rng.choices(("inbound", "click-to-call", "callback", "outbound"), (85, 8, 4, 3))[0]
            queue = rng.choices(QUEUES, QUEUE_W)[0] if direction in ("inbound", "callback") else None
            agent = rng.choices(agents, agent_w)[0]
            second = rng.choices(agents, agent_w)[0] if rng.random() < 0.08 else None
            talk = min(7200.0, rng.lognormvariate(math.log(240), 0.8))
            wait = rng.expovariate(1 / 45.0) if queue else 0.0
            hold = rng.expovariate(1 / 30.0) if rng.random() < 0.15 else 0.0
            duration = round(talk + hold + (wait if rng.random() < 0.1 else 0.0), 3)
            muted = rng.random() < 0.04
            spans = [{"start": 30.0, "end": 52.0, "by": agent, "reason": "card number"}] if muted else []
            ags = [{"agent_id": agent, "from": 0.0, "to": duration if not second else duration / 2}]
            if second:
                ags.append({"agent_id": second, "from": duration / 2, "to": duration})
            nodes = rng.sample(NODES, 2) if direction == "inbound" else []
            tags = [rng.choice(TAGS)] if rng.random() < 0.05 else []
            status = rng.choices(("ready", "failed", "purged", "pending"), (95, 1, 3.9, 0.1))[0]
            caller = rng.choice(callers)
            ended = at + timedelta(seconds=duration + wait)
            call_id = f"{int(at.timestamp())}.{rid}"
            row = (
                rid, call_id, json.dumps([call_id]), caller, None, rng.choice(DIDS) if direction == "inbound" else caller,
                direction, queue, json.dumps([queue] if queue else []), agent, json.dumps(ags), at, ended, False,
                round(wait, 3), round(talk, 3), round(hold, 3), "answered",
                rng.choices(DISPOSITIONS, DISP_W)[0], json.dumps(nodes), json.dumps(tags), muted, json.dumps(spans), "wav",
                int(duration * 16000), False, duration, status, ended + timedelta(days=90 if queue != "sales" else 365),
                rng.random() < 0.002, rng.random() < 0.1, now,
            )
            facets = [(rid, "agent", agent, at)] + ([(rid, "agent", second, at)] if second and second != agent else [])
            facets += [(rid, "queue", queue, at)] if queue else []
            facets += [(rid, "node", nd, at) for nd in nodes] + [(rid, "tag", t, at) for t in tags]
            yield row, facets


# ------------------------------------------------------------------ the combinations measured
def _combos(rows: int) -> list[tuple[str, Callable[[random.Random], tuple[Any, dict[str, Any]]]]]:
    from recording.repository import SearchFilters

    agents = _agents()[:120]  # agents who have calls at any size
    busy = [a for a in agents[:40]]

    def day(r: random.Random, span: int = 1) -> tuple[datetime, datetime]:
        d = r.randrange(0, DAYS - span)
        lo = START + timedelta(days=d)
        return lo.astimezone(timezone.utc), (lo + timedelta(days=span)).astimezone(timezone.utc)

    def caller(r: random.Random) -> str:  # a number that called (the generator's stream, re-seeded)
        return r.choice(_CALLERS)

    return [
        ("latest page (no filter)", lambda r: (SearchFilters(), {})),
        ("day + queue", lambda r: (SearchFilters(*day(r), queue=r.choice(QUEUES[:4])), {})),
        ("agent (newest first)", lambda r: (SearchFilters(agent=r.choice(busy)), {})),
        ("agent + week", lambda r: (SearchFilters(*day(r, 7), agent=r.choice(busy)), {})),
        ("agent, keyset next page", lambda r: (SearchFilters(agent=r.choice(busy)), {"next_page": True})),
        ("caller number", lambda r: (SearchFilters(caller=caller(r)), {})),
        ("called number (DID) + week", lambda r: (SearchFilters(*day(r, 7), called=r.choice(DIDS[:3])), {})),
        ("muted, last month", lambda r: (SearchFilters(*day(r, 30), muted=True), {})),
        ("duration 10-20 min", lambda r: (SearchFilters(min_duration=600, max_duration=1200), {})),
        ("long calls (> 1 h) + month", lambda r: (SearchFilters(*day(r, 30), min_duration=3600), {})),
        ("disposition (complaint)", lambda r: (SearchFilters(disposition=r.choice(["complaint", "escalated"])), {})),
        ("direction click-to-call + day", lambda r: (SearchFilters(*day(r), direction="click-to-call"), {})),
        ("queue + muted + duration > 5 min", lambda r: (SearchFilters(queue=r.choice(QUEUES[:4]), muted=True,
                                                                      min_duration=300), {})),
        ("tag", lambda r: (SearchFilters(tags=[r.choice(TAGS)]), {})),
        ("IVR node + week", lambda r: (SearchFilters(*day(r, 7), ivr_node=r.choice(NODES)), {})),
        ("longest first, one day (sort=duration)", lambda r: (SearchFilters(*day(r)), {"sort": "duration"})),
        ("QA sample, ready, week", lambda r: (SearchFilters(*day(r, 7), qa_sample=True, status="ready"), {})),
    ]


_CALLERS: list[str] = []


def _sample_callers(rows: int) -> list[str]:
    out = []
    for i, (row, _) in enumerate(generate(min(rows, 5000))):
        out.append(row[3])
    return out


# ------------------------------------------------------------------ loading
async def _load_pg(dsn: str, rows: int) -> float:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        dropped: list[str] = []
        for table in ("recording_recordings", "recording_facets"):
            for ix in await conn.fetch(
                    "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = $1 AND indexname NOT IN "
                    "(SELECT conname FROM pg_constraint WHERE conrelid = $1::regclass)", table):
                await conn.execute(f'DROP INDEX "{ix["indexname"]}"')
                dropped.append(ix["indexdef"])
        uniques = await conn.fetch("SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint "
                                   "WHERE conrelid = 'recording_facets'::regclass AND contype = 'u'")
        for u in uniques:
            await conn.execute(f'ALTER TABLE recording_facets DROP CONSTRAINT "{u["conname"]}"')
        t0 = time.perf_counter()
        recs: list[tuple[Any, ...]] = []
        facets: list[tuple[Any, ...]] = []
        for row, fs in generate(rows):
            recs.append(row)
            facets.extend(fs)
            if len(recs) >= 20_000:
                await conn.copy_records_to_table("recording_recordings", records=recs, columns=RECORDING_COLUMNS)
                await conn.copy_records_to_table("recording_facets", records=facets, columns=FACET_COLUMNS)
                recs.clear()
                facets.clear()
        if recs:
            await conn.copy_records_to_table("recording_recordings", records=recs, columns=RECORDING_COLUMNS)
            await conn.copy_records_to_table("recording_facets", records=facets, columns=FACET_COLUMNS)
        for d in dropped:
            await conn.execute(d)
        for u in uniques:
            await conn.execute(f'ALTER TABLE recording_facets ADD CONSTRAINT "{u["conname"]}" {u["def"]}')
        await conn.execute("SELECT setval(pg_get_serial_sequence('recording_recordings', 'id'), $1)", rows)
        await conn.execute("ANALYZE recording_recordings")
        await conn.execute("ANALYZE recording_facets")
        return time.perf_counter() - t0
    finally:
        await conn.close()


def _load_sqlite(path: Path, rows: int) -> float:
    db = sqlite3.connect(path)
    try:
        t0 = time.perf_counter()
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=OFF")
        q1 = f"INSERT INTO recording_recordings ({', '.join(RECORDING_COLUMNS)}) VALUES ({', '.join('?' * len(RECORDING_COLUMNS))})"
        q2 = f"INSERT INTO recording_facets ({', '.join(FACET_COLUMNS)}) VALUES (?, ?, ?, ?)"

        def iso(v: Any) -> Any:  # SQLAlchemy's SQLite DateTime storage: naive UTC text
            return v.astimezone(timezone.utc).replace(tzinfo=None).isoformat(sep=" ") if isinstance(v, datetime) else v

        recs, facets = [], []
        for row, fs in generate(rows):
            recs.append(tuple(iso(v) for v in row))
            facets.extend(tuple(iso(v) for v in f) for f in fs)
            if len(recs) >= 20_000:
                db.executemany(q1, recs)
                db.executemany(q2, facets)
                recs.clear()
                facets.clear()
        db.executemany(q1, recs)
        db.executemany(q2, facets)
        db.commit()
        db.execute("ANALYZE")
        db.commit()
        return time.perf_counter() - t0
    finally:
        db.close()


# ------------------------------------------------------------------ plans
_PG_INDEX = re.compile(r"(?:Index(?: Only)? Scan(?: Backward)? using|Bitmap Index Scan on) (\w+)")


def _explain_sql(q: Any, dialect: Any) -> str:
    return str(q.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


async def _plan(engine: Any, q: Any) -> dict[str, Any]:
    from sqlalchemy import text

    dialect = engine.dialect
    sql = _explain_sql(q, dialect)
    async with engine.connect() as conn:
        if dialect.name == "postgresql":
            lines = [r[0] for r in await conn.execute(text(f"EXPLAIN {sql}"))]
            indexes = sorted(set(_PG_INDEX.findall("\n".join(lines))))
            seq = [ln.strip() for ln in lines if "Seq Scan on recording_" in ln]
            # the server's own time for the query (no client, driver or scheduling of this process)
            analysed = [r[0] for r in await conn.execute(text(f"EXPLAIN (ANALYZE, BUFFERS) {sql}"))]
            exe = next((float(m.group(1)) for ln in analysed if (m := re.search(r"Execution Time: ([0-9.]+) ms", ln))), None)
            return {"plan": lines, "indexes": indexes, "unindexed_scans": seq, "server_ms": exe,
                    "buffers": next((ln.strip() for ln in analysed if "Buffers:" in ln), None)}
        else:
            lines = [r[-1] for r in await conn.execute(text(f"EXPLAIN QUERY PLAN {sql}"))]
            indexes = sorted({m for ln in lines for m in re.findall(r"USING (?:COVERING )?INDEX (\w+)", ln)}
                             | ({"PRIMARY KEY"} if any("INTEGER PRIMARY KEY" in ln for ln in lines) else set()))
            seq = [ln for ln in lines if re.match(r"SCAN recording_\w+$", ln.strip()) or
                   re.match(r"SCAN recording_\w+ (?!USING)", ln.strip())]
    return {"plan": lines, "indexes": indexes, "unindexed_scans": seq}


# ------------------------------------------------------------------ measure
async def _measure(url: str, rows: int, rounds: int) -> dict[str, Any]:
    from sqlalchemy import select

    from callcore.db import create_engine, session_factory
    from recording.models import RecordingRow
    from recording.repository import RecordingRepository, search_query

    engine = create_engine(url)
    repo = RecordingRepository(session_factory(engine))
    out: dict[str, Any] = {}
    try:
        for name, make in _combos(rows):
            rng = random.Random(hash(name) & 0xFFFF)
            times: list[float] = []
            found = 0
            plan_q = None
            for i in range(rounds + 1):  # the first is a warm-up (cold caches of this combination)
                f, opts = make(rng)
                sort = opts.get("sort", "started_at")
                cursor = None
                if opts.get("next_page"):
                    _, cursor = await repo.search(f, sort=sort, limit=PAGE)
                t0 = time.perf_counter()
                items, _ = await repo.search(f, sort=sort, limit=PAGE, cursor=cursor)
                dt = time.perf_counter() - t0
                if i:
                    times.append(dt)
                found += len(items)
                plan_q = search_query(f, sort=sort, limit=PAGE, cursor=cursor)
            out[name] = {"ms": summarize(times, 1000.0), "rows_per_page": round(found / (rounds + 1), 1),
                         **await _plan(engine, plan_q)}
        # baseline: 50 rows by primary key — the floor of a page of 50
        rng = random.Random(1)
        base: list[float] = []
        for i in range(rounds + 1):
            ids = [rng.randrange(1, rows + 1) for _ in range(PAGE)]
            t0 = time.perf_counter()
            async with repo.sessionmaker() as s:
                got = list((await s.execute(select(RecordingRow).where(RecordingRow.id.in_(ids)))).scalars())
            dt = time.perf_counter() - t0
            if i:
                base.append(dt)
            assert got
        out["_baseline"] = {"ms": summarize(base, 1000.0)}
    finally:
        await engine.dispose()
    return out


#: ``CALLCORE_BENCH_REC_CACHE=1``: keep the generated databases between runs and reuse them (the
#: 1 M-row PostgreSQL load takes minutes): PostgreSQL database ``callcore_bench_recsearch_cache_<rows>``,
#: SQLite file ``callcore-bench-recsearch-<rows>.db`` in ``CALLCORE_BENCH_REC_CACHE_DIR`` (default: the
#: temp dir). A reused database is migrated to head first (a new migration's indexes are built on it)
#: and analysed; ``load_s`` is then null and ``cached`` true. Drop the database to regenerate.
CACHE = os.environ.get("CALLCORE_BENCH_REC_CACHE") == "1"


async def _with_pg(rows: int, rounds: int) -> dict[str, Any]:
    import asyncpg

    from callcore import migrate

    name = f"callcore_bench_recsearch_cache_{rows}" if CACHE else f"callcore_bench_recsearch_{os.getpid()}"
    admin = await asyncio.wait_for(asyncpg.connect(PG_DSN), 5)
    dsn = f"{PG_DSN.rsplit('/', 1)[0]}/{name}"
    url = dsn.replace("postgresql:", "postgresql+asyncpg:", 1)
    cached = False
    if CACHE and await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
        conn = await asyncpg.connect(dsn)
        try:
            cached = await conn.fetchval("SELECT count(*) FROM recording_recordings") == rows
        except asyncpg.PostgresError:
            cached = False
        finally:
            await conn.close()
    if not cached:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        await asyncio.to_thread(migrate.upgrade, url)
        if cached:
            load_s = None
            conn = await asyncpg.connect(dsn)
            try:
                await conn.execute("ANALYZE recording_recordings")
                await conn.execute("ANALYZE recording_facets")
            finally:
                await conn.close()
        else:
            load_s = await _load_pg(dsn, rows)
        conn = await asyncpg.connect(dsn)
        try:
            size = await conn.fetchval("SELECT pg_size_pretty(pg_total_relation_size('recording_recordings') "
                                       "+ pg_total_relation_size('recording_facets'))")
        finally:
            await conn.close()
        return {"rows": rows, "load_s": None if load_s is None else round(load_s, 1), "cached": cached, "size": size,
                "combos": await _measure(url, rows, rounds)}
    finally:
        if not CACHE:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def _with_sqlite(rows: int, rounds: int) -> dict[str, Any]:
    if CACHE:
        path = Path(os.environ.get("CALLCORE_BENCH_REC_CACHE_DIR") or tempfile.gettempdir()) / f"callcore-bench-recsearch-{rows}.db"
        cached = False
        if path.exists():
            try:
                db = sqlite3.connect(path)
                cached = db.execute("SELECT count(*) FROM recording_recordings").fetchone()[0] == rows
                db.close()
            except sqlite3.Error:
                cached = False
            if not cached:
                path.unlink()
        return await _sqlite_at(path, rows, rounds, cached)
    with tempfile.TemporaryDirectory(prefix="callcore-bench-rec-") as tmp:
        return await _sqlite_at(Path(tmp) / "rec.db", rows, rounds, False)


async def _sqlite_at(path: Path, rows: int, rounds: int, cached: bool) -> dict[str, Any]:
    from callcore import migrate

    url = f"sqlite+aiosqlite:///{path}"
    await asyncio.to_thread(migrate.upgrade, url)
    if cached:
        db = sqlite3.connect(path)
        db.execute("ANALYZE")
        db.commit()
        db.close()
        load_s = None
    else:
        load_s = await asyncio.to_thread(_load_sqlite, path, rows)
    return {"rows": rows, "load_s": None if load_s is None else round(load_s, 1), "cached": cached,
            "size": f"{path.stat().st_size / 2**20:.0f} MB", "combos": await _measure(url, rows, rounds)}


async def _pg_reachable() -> bool:
    import asyncpg

    try:
        conn = await asyncio.wait_for(asyncpg.connect(PG_DSN), 3)
    except (OSError, asyncio.TimeoutError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


def run(size: str = "full") -> dict[str, Any]:
    cfg = SIZES[size]
    _CALLERS[:] = _sample_callers(cfg["rows"])
    details: dict[str, Any] = {"sizes": cfg}
    figures: list[Figure] = []
    stores = [("sqlite", cfg["sqlite_rows"])]
    if asyncio.run(_pg_reachable()):
        stores.insert(0, ("postgresql", cfg["rows"]))
    else:
        details["postgresql"] = f"skipped: no PostgreSQL at {PG_DSN} (CALLCORE_BENCH_PG_DSN)"
    for store, rows in stores:
        m = asyncio.run(_with_pg(rows, cfg["rounds"]) if store == "postgresql" else _with_sqlite(rows, cfg["rounds"]))
        details[store] = m
        base = m["combos"]["_baseline"]["ms"]
        for name, c in m["combos"].items():
            if name.startswith("_"):
                continue
            p99 = c["ms"].get("p99")
            indexed = bool(c["indexes"]) and not c["unindexed_scans"]
            gate = store == "postgresql" or len(stores) == 1
            figures.append(Figure(
                "recsearch", f"{store} {rows:,}: {name} (p99)", p99, "ms", base.get("p99"),
                target=f"<= {P99_MS:g} ms" if gate else "info",
                verdict=check(p99 is not None and p99 <= P99_MS and indexed) if gate else "info", lower_is_better=True,
                note=f"p50 {c['ms'].get('p50', 0):.1f} ms"
                     + (f"; server {c['server_ms']:.2f} ms" if c.get("server_ms") is not None else "")
                     + f"; index: {', '.join(c['indexes']) or 'NONE'}"
                     + (f"; UNINDEXED: {c['unindexed_scans']}" if c["unindexed_scans"] else "")))
        if m["load_s"] is not None:
            figures.append(Figure("recsearch", f"{store}: load {rows:,} recordings", rows / max(m["load_s"], 1e-9), "rows/s",
                                  target="info", note=f"{m['load_s']} s, {m['size']}"))
        else:
            figures.append(Figure("recsearch", f"{store}: {rows:,} recordings reused (CALLCORE_BENCH_REC_CACHE)", None,
                                  target="info", note=m["size"]))
    return {"name": "recsearch", "figures": figures, "details": details}


if __name__ == "__main__":  # pragma: no cover
    import sys

    from benchmarks.common import RESULTS, table, write_json

    size = sys.argv[1] if len(sys.argv) > 1 else "full"
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else RESULTS / f"recording_search{'' if size == 'full' else '-' + size}.json"
    res = run(size)
    print(table(res["figures"]))
    write_json(out, res)
