"""Migrations 0018 and 0023: the stored search vector and the per-term ranks are added and back-filled
for the articles already there."""

import asyncio

from sqlalchemy import inspect, text

from callcore import migrate
from callcore.db import create_engine
from kb.models import SEARCH_VECTOR_SQL as _VECTOR

_ROW = """INSERT INTO kb_articles (slug, title, body, kind, steps, status, language, tags, products, queues, intents,
    notice, version, created_at, updated_at, search_title, search_body, used_count, helpful_count)
    VALUES ('refund', '환불 절차', '', 'article', '[]', 'published', 'ko', '[]', '[]', '[]', '[]', false, 1,
    CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, '환불 절차', '카드 결제 환불', 0, 0)"""


async def test_0018_adds_and_backfills_the_search_vector(empty_database_url):
    await asyncio.to_thread(migrate.upgrade, empty_database_url, "0016")
    engine = create_engine(empty_database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(_ROW))
        await asyncio.to_thread(migrate.upgrade, empty_database_url, "0018")
        async with engine.connect() as conn:
            value = (await conn.execute(text("SELECT search_vector FROM kb_articles"))).scalar_one()
            if engine.dialect.name == "postgresql":
                assert value == "'결제':4B '절차':2A '카드':3B '환불':1A,5B"
                hit = "SELECT count(*) FROM kb_articles WHERE search_vector @@ to_tsquery('simple', '결제')"
                assert (await conn.execute(text(hit))).scalar_one() == 1
            else:
                assert value is None  # SQLite searches its FTS5 table
        await asyncio.to_thread(migrate.downgrade, empty_database_url, "0016")
        async with engine.connect() as conn:
            cols = await conn.run_sync(lambda c: {col["name"] for col in inspect(c).get_columns("kb_articles")})
        assert "search_vector" not in cols
    finally:
        await engine.dispose()


async def test_0023_adds_and_backfills_the_per_term_ranks(empty_database_url):
    """Migration 0023: the per-term ranks of the articles already there, equal to ``ts_rank``
    of each one-term query; on SQLite the table is there and stays empty."""
    await asyncio.to_thread(migrate.upgrade, empty_database_url, "0019")
    engine = create_engine(empty_database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(_ROW))
            if engine.dialect.name == "postgresql":  # what the repository writes with the article
                await conn.execute(text(f"UPDATE kb_articles SET search_vector = {_VECTOR}"))
        await asyncio.to_thread(migrate.upgrade, empty_database_url, "0023")
        async with engine.connect() as conn:
            rows = dict((await conn.execute(text("SELECT term, score FROM kb_search_terms"))).all())
            if engine.dialect.name == "postgresql":
                assert sorted(rows) == ["결제", "절차", "카드", "환불"]
                rank = "SELECT ts_rank(search_vector, to_tsquery('simple', :t)) FROM kb_articles"
                for term, score in rows.items():
                    assert score == (await conn.execute(text(rank), {"t": term})).scalar_one(), term
                assert rows["환불"] > rows["절차"] > rows["결제"]  # title and body > title > body
            else:
                assert rows == {}
        await asyncio.to_thread(migrate.downgrade, empty_database_url, "0019")
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert "kb_search_terms" not in tables
    finally:
        await engine.dispose()
