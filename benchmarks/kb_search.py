"""Benchmark 4 — knowledge-base search: ``KbService.search`` on 10,000 articles, p95 ≤ 50 ms.

The store is SQLite (the embedded default; FTS5). The articles are the shipped sample
plus generated Korean/English articles built from a customer-center vocabulary
(products × problems × actions, with particles and verb endings, as agents write
them), each analysed by Kiwi exactly as the service does and inserted in bulk; the
full-text index is then built from the table (``ensure_search_index``).

Measured, in one process (the search is in-process: analysis → FTS5 → re-ranking by
usage → highlights): ``rounds`` × every query of :data:`QUERIES` (inflected Korean
sentences, spacing variants, a typo, synonyms, English), each twice: once with the query's
Kiwi analysis cleared from the cache (a question never asked before), once as a repeat
(the cached analysis, the usual case: agents ask the same few questions).

Baseline (same run, same database): the bare FTS5 ``MATCH`` of the same analysed terms,
without analysis, re-ranking or highlights — what the database alone costs.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import Figure, check, summarize

SIZES = {"full": {"articles": 10_000, "rounds": 20}, "quick": {"articles": 1000, "rounds": 3},
         "smoke": {"articles": 150, "rounds": 1}}
P95_MS = 50.0
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


async def _build(db: Path, n: int):
    from sqlalchemy import insert

    from callcore.db import Base, create_engine, import_all_models, session_factory
    from kb.analysis import Analyzer
    from kb.models import ArticleRow
    from kb.permissions import SYSTEM
    from kb.repository import KbRepository
    from kb.rules import load_rules
    from kb.service import SAMPLE_DIR, KbService
    from recording.storage import MemoryStorage

    import_all_models()
    engine = create_engine(f"sqlite+aiosqlite:///{db}")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    root = Path(__file__).resolve().parents[1]
    rules = load_rules(root / "dialplans" / "kb" / "rules.yaml")[0]
    kb = KbService(KbRepository(session_factory(engine)), Analyzer(), store=MemoryStorage(), rules=rules)
    await kb.start()
    await kb.import_dir(SAMPLE_DIR, SYSTEM)
    rng = random.Random(17)
    t0 = time.perf_counter()
    rows = []
    for a in _articles(n - await kb.repository.count(), rng):
        title = kb.analyzer.index_text(a["title"] + " " + " ".join(a["tags"]))
        body = kb.analyzer.index_text(a["body"])
        rows.append({**a, "status": "published", "kind": "article", "steps": [], "products": [], "intents": [],
                     "queues": a.get("queues", []), "search_title": title, "search_body": body,
                     "helpful_count": rng.choice([0, 0, 0, 1, 2, 5, 20])})
    analyse_s = time.perf_counter() - t0
    async with kb.repository.session() as s:
        for i in range(0, len(rows), 1000):
            await s.execute(insert(ArticleRow), rows[i : i + 1000])
        await s.commit()
    await kb.repository.ensure_search_index()
    await kb.start()  # vocabulary of the whole corpus
    return engine, kb, analyse_s


async def _measure(cfg: dict[str, Any]) -> dict[str, Any]:
    from sqlalchemy import text

    from kb.analysis import analyse_query
    from kb.permissions import SYSTEM

    with tempfile.TemporaryDirectory(prefix="callcore-kb-bench-") as tmp:
        t0 = time.perf_counter()
        engine, kb, analyse_s = await _build(Path(tmp) / "kb.db", cfg["articles"])
        build_s = time.perf_counter() - t0
        try:
            articles = await kb.repository.count()
            for q in QUERIES:  # warm caches once
                await kb.search(q, SYSTEM)
            lat, base, cold, hits = [], [], [], {}
            for _ in range(cfg["rounds"]):
                for q in QUERIES:
                    kb.analyzer._qcache.clear()  # a query never seen before: Kiwi analyses it
                    t = time.perf_counter()
                    await kb.search(q, SYSTEM)
                    cold.append(time.perf_counter() - t)
                    t = time.perf_counter()
                    res = await kb.search(q, SYSTEM)
                    lat.append(time.perf_counter() - t)
                    hits[q] = res["total"]
                    terms = analyse_query(q, kb.analyzer, kb.synonyms, kb.vocabulary).expanded
                    match = " OR ".join(f'"{x}"' for x in terms)
                    t = time.perf_counter()
                    async with kb.repository.session() as s:
                        (await s.execute(text("SELECT rowid FROM kb_fts WHERE kb_fts MATCH :m ORDER BY bm25(kb_fts) LIMIT 10"),
                                         {"m": match})).all()
                    base.append(time.perf_counter() - t)
        finally:
            await kb.stop()
            await engine.dispose()
    return {"articles": articles, "build_s": round(build_s, 1), "analyse_s": round(analyse_s, 1), "latency": lat,
            "cold": cold, "baseline": base, "hits": hits}


def run(size: str = "full") -> dict[str, Any]:
    cfg = SIZES[size]
    m = asyncio.run(_measure(cfg))
    s, b = summarize(m["latency"], 1000), summarize(m["baseline"], 1000)
    p95 = sorted(m["latency"])[max(0, int(len(m["latency"]) * 0.95) - 1)] * 1000
    p95_cold = sorted(m["cold"])[max(0, int(len(m["cold"]) * 0.95) - 1)] * 1000
    p95_base = sorted(m["baseline"])[max(0, int(len(m["baseline"]) * 0.95) - 1)] * 1000
    figures = [
        Figure("kb", f"search p95 ({m['articles']} articles, {len(QUERIES)} queries)", p95, "ms", p95_base,
               target=f"<= {P95_MS} ms", verdict=check(p95 <= P95_MS), lower_is_better=True),
        Figure("kb", "search p50", s.get("p50"), "ms", b.get("p50"), target="report", lower_is_better=True),
        Figure("kb", "search p95, query not seen before (Kiwi analysis not cached)", p95_cold, "ms", p95_base,
               target=f"<= {P95_MS} ms", verdict=check(p95_cold <= P95_MS), lower_is_better=True),
        Figure("kb", "queries without a hit", float(sum(1 for v in m["hits"].values() if not v)), "", target="info"),
        Figure("kb", "index build (analysis + insert + FTS5)", m["build_s"], "s", target="info",
               note=f"Kiwi analysis {m['analyse_s']} s"),
    ]
    return {"name": "kb", "figures": figures, "details": {"sizes": cfg, "summary": s, "baseline": b, "cold": summarize(m["cold"], 1000), "hits": m["hits"],
                                                          "articles": m["articles"]}}
