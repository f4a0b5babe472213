"""Benchmark 4 — knowledge-base search: ``KbService.search`` on 10,000 articles, p95 ≤ 50 ms,
on SQLite (FTS5) and PostgreSQL (the stored ``tsvector``), quiet and under load.

The articles are the shipped sample plus generated Korean/English articles built from a
customer-center vocabulary (products × problems × actions, with particles and verb
endings, as agents write them), each analysed by Kiwi exactly as the service does (once,
for both stores) and inserted in bulk; the full-text index is then built from the table
(``ensure_search_index``: FTS5 on SQLite; on PostgreSQL the back-fill of the stored vector and
of the per-term ranks ``kb_search_terms`` the search ranks from, then ``VACUUM ANALYZE``).

Measured per store, in one process (the search is in-process: analysis → one full-text
query → re-ranking by usage → the page's rows → highlights):

* quiet: ``rounds`` × every query of :data:`QUERIES` (inflected Korean sentences, spacing
  variants, a typo, synonyms, English), each twice: once with the query's Kiwi analysis
  cleared from the cache (a question never asked before), once as a repeat;
* under load (:data:`LOAD`): for ``load_s`` seconds, searches arrive at random (Poisson) at
  ``searches_per_s``, each in its own task so they overlap, while — on the same event loop
  and database — screen pops ask for their suggestions (``KbService.suggest``) at
  ``pops_per_s``, agents mark articles helpful (``KbService.mark``, a write) at
  ``marks_per_s``, and an author saves an article edit (a new version, re-indexed) at
  ``edits_per_s``. The figure is each search's time from its arrival to its answer.

Baseline (same run, same database, same load for the load figure): the bare full-text SQL
of the same analysed terms, without analysis, re-ranking or highlights — SQLite: the FTS5
``MATCH … ORDER BY bm25 LIMIT 10``; PostgreSQL: ``search_vector @@ q ORDER BY ts_rank
LIMIT 10`` over the stored vector (which is what callcore's own query was before the
per-term ranks, migration 0023, but for its ``LIMIT 200``). On PostgreSQL the query callcore
ran before the stored vector (``to_tsvector`` computed per row per query) is timed too, for
comparison. Reported: p50, p95 and p99 of each, each with its ratio to the baseline.

PostgreSQL: a throwaway database on ``CALLCORE_BENCH_PG_DSN`` (default the local server);
without a server the PostgreSQL figures are skipped and say so.
"""

from __future__ import annotations

import asyncio
import os
import random
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from benchmarks.common import Figure, check, percentile, summarize

SIZES = {"full": {"articles": 10_000, "rounds": 20, "load_s": 20.0}, "quick": {"articles": 1000, "rounds": 3, "load_s": 4.0},
         "smoke": {"articles": 150, "rounds": 1, "load_s": 2.0}}
#: the load of the "under load" figure, per second: a 1,000-seat center at its peak (1,000 agents
#: × a 4-minute handle time ≈ 4 calls/s, each pop asking for its suggestions; agents searching
#: about 2.5 times a call; a helpful mark every other call; an author saving an edit every 2 s)
LOAD = {"searches_per_s": 10.0, "pops_per_s": 4.0, "marks_per_s": 2.0, "edits_per_s": 0.5}
P95_MS = 50.0
PG_DSN = os.environ.get("CALLCORE_BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
QUERIES = [
    "환불해주세요", "카드결제 취소하고 싶어요", "카드 결제 취소", "비밀번호를 잊어버렸어요", "비번 재설정",
    "요금이 너무 많이 나왔어요", "인터넷이 안 돼요", "와이파이 끊김", "주소 변경은 어떻게 하나요", "환뷸 절차",
    "해외 로밍 요금 문의", "약정 위약금 얼마예요", "청구서 재발송", "How do I get a refund?", "my bill is too high",
    "명의 변경 서류", "자동이체 계좌 변경", "데이터 쿠폰 사용법", "번호이동 가입 혜택", "기기 분실 신고",
]
_PRODUCTS = ["카드", "인터넷", "모바일", "IPTV", "로밍", "데이터", "요금제", "청구서", "자동이체", "멤버십", "포인트", "기기", "유심",
             "와이파이", "번호이동", "명의", "약정", "쿠폰", "결합상품", "부가서비스"]
_TOPICS = ["환불", "해지", "변경", "신청", "조회", "장애", "분실", "재발급", "연체", "할인", "위약금", "이전", "개통", "정지", "복구",
           "인증", "등록", "취소", "문의", "혜택"]
_SENTENCES = [
    "{p} {t} 요청을 받으면 먼저 본인 확인을 합니다.", "고객이 {p}{t}을 원하면 처리 기간을 안내해 주세요.",
    "{p} 관련 {t}은 영업일 기준 3일 안에 처리됩니다.", "{t}이 되지 않는 경우 {p} 상태를 다시 확인합니다.",
    "{p}의 {t} 조건은 약관 제{n}조를 따릅니다.", "상담원은 {p} {t} 결과를 문자로 보내 드립니다.",
    "{p}을 사용하다가 {t}하려는 고객에게는 위약금을 설명하세요.", "{p} {t} 이력은 최근 {n}개월까지 조회할 수 있습니다.",
]
_EN = ["How to handle a {p} {t} request", "Checklist for {t} of {p}", "{p} {t}: what to tell the customer"]
_EN_P = ["card", "internet", "mobile", "roaming", "data", "plan", "bill", "membership", "device", "sim"]
_EN_T = ["refund", "cancellation", "change", "outage", "loss", "reissue", "discount", "transfer", "activation", "inquiry"]


def _articles(n: int, rng: random.Random) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        if i % 10 == 9:  # one in ten in English
            p, t = rng.choice(_EN_P), rng.choice(_EN_T)
            title = rng.choice(_EN).format(p=p, t=t)
            body = " ".join(f"Step {k}: check the {rng.choice(_EN_P)} {rng.choice(_EN_T)} and tell the customer." for k in range(1, 6))
            out.append({"slug": f"gen-{i}", "title": title, "body": body, "language": "en", "tags": [p, t]})
            continue
        p, t = rng.choice(_PRODUCTS), rng.choice(_TOPICS)
        # mostly about its own product and topic, sometimes mentioning another one (any of them)
        body = "\n".join(rng.choice(_SENTENCES).format(p=p if rng.random() < 0.7 else rng.choice(_PRODUCTS),
                                                       t=t if rng.random() < 0.7 else rng.choice(_TOPICS),
                                                       n=rng.randint(1, 30)) for _ in range(8))
        out.append({"slug": f"gen-{i}", "title": f"{p} {t} 안내", "body": body, "language": "ko", "tags": [p, t],
                    "queues": [rng.choice(["billing", "tech", "sales", "support"])]})
    return out


def _corpus(n: int, analyzer: Any) -> tuple[list[dict[str, Any]], float]:
    """The generated articles as table rows, analysed by Kiwi as the service does (once, for both stores)."""
    rng = random.Random(17)
    t0 = time.perf_counter()
    rows = []
    for a in _articles(n, rng):
        title = analyzer.index_text(a["title"] + " " + " ".join(a["tags"]))
        body = analyzer.index_text(a["body"])
        rows.append({**a, "status": "published", "kind": "article", "steps": [], "products": [], "intents": [],
                     "queues": a.get("queues", []), "search_title": title, "search_body": body,
                     "helpful_count": rng.choice([0, 0, 0, 1, 2, 5, 20])})
    return rows, time.perf_counter() - t0


async def _build(url: str, analyzer: Any, rows: list[dict[str, Any]], n: int):
    from sqlalchemy import insert

    from callcore.db import Base, create_engine, import_all_models, session_factory
    from kb.models import ArticleRow
    from kb.permissions import SYSTEM
    from kb.repository import KbRepository
    from kb.rules import load_rules
    from kb.service import SAMPLE_DIR, KbService
    from recording.storage import MemoryStorage

    import_all_models()
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    root = Path(__file__).resolve().parents[1]
    rules = load_rules(root / "dialplans" / "kb" / "rules.yaml")[0]
    kb = KbService(KbRepository(session_factory(engine)), analyzer, store=MemoryStorage(), rules=rules)
    await kb.start()
    await kb.import_dir(SAMPLE_DIR, SYSTEM)
    rows = rows[: n - await kb.repository.count()]
    async with kb.repository.session() as s:
        for i in range(0, len(rows), 1000):
            await s.execute(insert(ArticleRow), rows[i : i + 1000])
        await s.commit()
    await kb.repository.ensure_search_index()  # FTS5 rebuilt / stored vectors back-filled
    if engine.dialect.name == "postgresql":
        # what autovacuum does after a bulk load: the back-fill's dead rows gone, statistics
        # for the planner, the visibility map that lets the per-term ranks be read from their
        # index alone (VACUUM cannot run in a transaction)
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.exec_driver_sql("VACUUM ANALYZE kb_articles")
            await conn.exec_driver_sql("VACUUM ANALYZE kb_search_terms")
    await kb.start()  # vocabulary of the whole corpus
    return engine, kb


def _raw(dialect: str, terms: list[str]) -> tuple[str, dict[str, Any]]:
    """The bare full-text SQL of the analysed terms (the baseline)."""
    if dialect == "sqlite":
        return ("SELECT rowid FROM kb_fts WHERE kb_fts MATCH :m ORDER BY bm25(kb_fts) LIMIT 10",
                {"m": " OR ".join(f'"{x}"' for x in terms)})
    return ("SELECT id FROM kb_articles WHERE search_vector @@ to_tsquery('simple', :q) "
            "ORDER BY ts_rank(search_vector, to_tsquery('simple', :q)) DESC LIMIT 10",
            {"q": " | ".join("'" + x.replace("'", "''") + "'" for x in terms)})


#: callcore's PostgreSQL query before the stored vector (migration 0018), for comparison
_PG_OLD = ("SELECT id FROM kb_articles WHERE {v} @@ to_tsquery('simple', :q) AND status = 'published' "
           "ORDER BY ts_rank({v}, to_tsquery('simple', :q)) DESC LIMIT 200")


async def _quiet(kb: Any, dialect: str, rounds: int) -> dict[str, Any]:
    from sqlalchemy import text

    from kb.analysis import analyse_query
    from kb.models import SEARCH_VECTOR_SQL
    from kb.permissions import SYSTEM

    for q in QUERIES:  # warm caches once
        await kb.search(q, SYSTEM)
    lat, base, cold, old, hits = [], [], [], [], {}
    for r in range(rounds):
        for q in QUERIES:
            kb.analyzer._qcache.clear()  # a query never seen before: Kiwi analyses it
            t = time.perf_counter()
            await kb.search(q, SYSTEM)
            cold.append(time.perf_counter() - t)
            t = time.perf_counter()
            res = await kb.search(q, SYSTEM)
            lat.append(time.perf_counter() - t)
            hits[q] = res["total"]
            sql, params = _raw(dialect, analyse_query(q, kb.analyzer, kb.synonyms, kb.vocabulary).expanded)
            t = time.perf_counter()
            async with kb.repository.session() as s:
                (await s.execute(text(sql), params)).all()
            base.append(time.perf_counter() - t)
            if dialect == "postgresql" and r == 0:
                t = time.perf_counter()
                async with kb.repository.session() as s:
                    (await s.execute(text(_PG_OLD.format(v=f"({SEARCH_VECTOR_SQL})")), params)).all()
                old.append(time.perf_counter() - t)
    return {"latency": lat, "cold": cold, "baseline": base, "old_query": old, "hits": hits}


async def _under_load(kb: Any, dialect: str, seconds: float, *, raw: bool) -> dict[str, Any]:
    """Searches (callcore's, or the bare SQL when ``raw``) arriving at random under pops, marks and edits."""
    from sqlalchemy import text

    from kb.analysis import analyse_query
    from kb.permissions import SYSTEM
    from kb.rules import CallContext

    rng = random.Random(4)
    ids = [r.id for r in await kb.repository.list_articles(status="published")]
    sample = [a for a in await kb.repository.list_articles(status="published") if not a.slug.startswith("gen-")]
    contexts = [CallContext(intent="refund", queue="billing", tier="vip"), CallContext(intent="tech:internet", queue="tech"),
                CallContext(intent="sales", queue="sales", dispositions=("complaint",)), CallContext(queue="support")]
    raw_sql = {q: _raw(dialect, analyse_query(q, kb.analyzer, kb.synonyms, kb.vocabulary).expanded) for q in QUERIES}
    lat: list[float] = []
    counts = {"searches": 0, "pops": 0, "marks": 0, "edits": 0, "errors": 0}
    errors: list[str] = []
    tasks: set[asyncio.Task] = set()
    stop = time.perf_counter() + seconds

    async def one_search(q: str, t0: float) -> None:
        if raw:
            sql, params = raw_sql[q]
            async with kb.repository.session() as s:
                (await s.execute(text(sql), params)).all()
        else:
            await kb.search(q, SYSTEM)
        lat.append(time.perf_counter() - t0)

    async def pop(i: int) -> None:
        await kb.suggest(contexts[i % len(contexts)])

    async def mark(i: int) -> None:
        await kb.mark(f"bench-{uuid.uuid4().hex[:12]}", rng.choice(ids), "helpful", SYSTEM)

    async def edit(i: int) -> None:
        a = sample[i % len(sample)]
        await kb.update(a.id, {"body": a.body + f"\n\n(개정 {i})"}, SYSTEM, comment="bench")

    def done(t: asyncio.Task, kind: str) -> None:
        tasks.discard(t)
        if t.exception() is None:
            counts[kind] += 1
        else:
            counts["errors"] += 1
            errors.append(f"{kind}: {type(t.exception()).__name__}: {t.exception()}"[:300])

    async def arrivals(kind: str, rate: float, make) -> None:
        times = random.Random(kind)  # each stream its own seeded clock: the same arrivals every run
        i = 0
        nxt = time.perf_counter()
        while True:
            nxt += times.expovariate(rate)
            if nxt >= stop:
                return
            await asyncio.sleep(max(0.0, nxt - time.perf_counter()))
            task = asyncio.create_task(make(i))
            tasks.add(task)
            task.add_done_callback(lambda t, k=kind: done(t, k))
            i += 1

    def search_task(i: int):
        return one_search(QUERIES[rng.randrange(len(QUERIES))], time.perf_counter())

    await asyncio.gather(
        arrivals("searches", LOAD["searches_per_s"], search_task),
        arrivals("pops", LOAD["pops_per_s"], pop),
        arrivals("marks", LOAD["marks_per_s"], mark),
        arrivals("edits", LOAD["edits_per_s"], edit),
    )
    while tasks:
        await asyncio.gather(*list(tasks), return_exceptions=True)
    return {"latency": lat, "counts": counts, "seconds": seconds, "errors": errors[:10]}


async def _measure_store(url: str, analyzer: Any, rows: list[dict[str, Any]], cfg: dict[str, Any]) -> dict[str, Any]:
    t0 = time.perf_counter()
    engine, kb = await _build(url, analyzer, rows, cfg["articles"])
    build_s = time.perf_counter() - t0
    dialect = engine.dialect.name
    try:
        m = await _quiet(kb, dialect, cfg["rounds"])
        m["load_baseline"] = await _under_load(kb, dialect, cfg["load_s"], raw=True)
        m["load"] = await _under_load(kb, dialect, cfg["load_s"], raw=False)
        m["articles"] = await kb.repository.count()
    finally:
        await kb.stop()
        await engine.dispose()
    m["build_s"] = round(build_s, 1)
    return m


async def _pg_database():
    """A throwaway PostgreSQL database (name, admin connection), or None without a server."""
    try:
        import asyncpg

        admin = await asyncio.wait_for(asyncpg.connect(PG_DSN), 5)
    except Exception as exc:  # noqa: BLE001 - no server: the PostgreSQL leg is skipped, and says so
        return None, f"{type(exc).__name__}: {exc}"
    name = f"callcore_bench_kb_{os.getpid()}"
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    await admin.execute(f'CREATE DATABASE "{name}"')
    return (admin, name), None


async def _measure(cfg: dict[str, Any]) -> dict[str, Any]:
    from kb.analysis import Analyzer

    analyzer = Analyzer()
    rows, analyse_s = _corpus(cfg["articles"], analyzer)
    out: dict[str, Any] = {"analyse_s": round(analyse_s, 1), "stores": {}}
    with tempfile.TemporaryDirectory(prefix="callcore-kb-bench-") as tmp:
        out["stores"]["sqlite"] = await _measure_store(f"sqlite+aiosqlite:///{Path(tmp) / 'kb.db'}", analyzer, rows, cfg)
    pg, why = await _pg_database()
    if pg is None:
        out["postgresql_skipped"] = why
        return out
    admin, name = pg
    try:
        base = PG_DSN.replace("postgresql:", "postgresql+asyncpg:", 1).rsplit("/", 1)[0]
        out["stores"]["postgresql"] = await _measure_store(f"{base}/{name}", analyzer, rows, cfg)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    return out


def _p95(values: list[float]) -> float | None:
    return percentile(values, 95) * 1000 if values else None


def run(size: str = "full") -> dict[str, Any]:
    cfg = SIZES[size]
    m = asyncio.run(_measure(cfg))
    figures: list[Figure] = []
    details: dict[str, Any] = {"sizes": cfg, "load": LOAD, "analyse_s": m["analyse_s"], "stores": {}}
    for store, r in m["stores"].items():
        n = r["articles"]
        p95, p95_base = _p95(r["latency"]), _p95(r["baseline"])
        s, b = summarize(r["latency"], 1000), summarize(r["baseline"], 1000)
        ld, lb = r["load"], r["load_baseline"]
        p95_load, p95_load_base = _p95(ld["latency"]), _p95(lb["latency"])
        load_note = (f"{LOAD['searches_per_s']:g} searches/s + {LOAD['pops_per_s']:g} pops/s + {LOAD['marks_per_s']:g} "
                     f"marks/s + {LOAD['edits_per_s']:g} edits/s for {ld['seconds']:g} s; done {ld['counts']}")
        figures += [
            Figure("kb", f"{store}: search p95 ({n} articles, {len(QUERIES)} queries)", p95, "ms", p95_base,
                   target=f"<= {P95_MS} ms", verdict=check(p95 <= P95_MS), lower_is_better=True),
            Figure("kb", f"{store}: search p50", s.get("p50"), "ms", b.get("p50"), target="report", lower_is_better=True),
            Figure("kb", f"{store}: search p99", s.get("p99"), "ms", b.get("p99"), target="report", lower_is_better=True),
            Figure("kb", f"{store}: search p95, query not seen before (Kiwi analysis not cached)", _p95(r["cold"]), "ms",
                   p95_base, target=f"<= {P95_MS} ms", verdict=check(_p95(r["cold"]) <= P95_MS), lower_is_better=True),
            Figure("kb", f"{store}: search p95 under load", p95_load, "ms", p95_load_base, target=f"<= {P95_MS} ms",
                   verdict=check(p95_load is not None and p95_load <= P95_MS and ld["counts"]["errors"] == 0),
                   lower_is_better=True, note=load_note),
            Figure("kb", f"{store}: search p50 under load", summarize(ld["latency"], 1000).get("p50"), "ms",
                   summarize(lb["latency"], 1000).get("p50"), target="report", lower_is_better=True),
            Figure("kb", f"{store}: search p99 under load", summarize(ld["latency"], 1000).get("p99"), "ms",
                   summarize(lb["latency"], 1000).get("p99"), target="report", lower_is_better=True),
            Figure("kb", f"{store}: queries without a hit", float(sum(1 for v in r["hits"].values() if not v)), "", target="info"),
            Figure("kb", f"{store}: index build (insert + index)", r["build_s"], "s", target="info",
                   note=f"Kiwi analysis of the corpus {m['analyse_s']} s, once for both stores"),
        ]
        if r["old_query"]:
            figures.append(Figure("kb", f"{store}: bare SQL p95 with to_tsvector per row (before migration 0018)",
                                  _p95(r["old_query"]), "ms", p95_base, target="info", lower_is_better=True))
        details["stores"][store] = {
            "articles": n, "summary": s, "baseline": b, "cold": summarize(r["cold"], 1000), "hits": r["hits"],
            "old_query": summarize(r["old_query"], 1000), "build_s": r["build_s"],
            "load": {"summary": summarize(ld["latency"], 1000), "p95": p95_load, "counts": ld["counts"], "errors": ld["errors"]},
            "load_baseline": {"summary": summarize(lb["latency"], 1000), "p95": p95_load_base, "counts": lb["counts"],
                              "errors": lb["errors"]},
        }
    if "postgresql_skipped" in m:
        figures.append(Figure("kb", "postgresql: skipped (no server)", None, target="info", note=m["postgresql_skipped"]))
        details["postgresql_skipped"] = m["postgresql_skipped"]
    # the smoke test's view (the first store: SQLite)
    first = details["stores"]["sqlite"]
    details.update(articles=first["articles"], summary=first["summary"], hits=first["hits"])
    return {"name": "kb", "figures": figures, "details": details}
