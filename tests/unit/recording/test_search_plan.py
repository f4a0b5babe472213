"""The search queries walk an index in sort order (SQLite's plan), so a page costs the same at
a million rows: facet filters (agent, queue, IVR node, tag) drive the facet index; no filter
drives (started_at, id)."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.dialects import sqlite

from callcore.db import Base, import_all_models
from recording.repository import SearchFilters, search_query


@pytest.fixture(scope="module")
def plan():
    import_all_models()
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)

    def explain(f: SearchFilters, **kw) -> str:
        q = search_query(f, **kw).compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True})
        with engine.connect() as conn:
            return "\n".join(r[-1] for r in conn.execute(text(f"EXPLAIN QUERY PLAN {q}")))

    yield explain
    engine.dispose()


@pytest.mark.parametrize("f", [SearchFilters(agent="1002"), SearchFilters(queue="sales", muted=True),
                               SearchFilters(tags=["vip"]), SearchFilters(ivr_node="main:menu", agent="1001")])
def test_facet_filters_walk_the_facet_index_in_order(plan, f):
    p = plan(f)
    assert "ix_recording_facets_lookup" in p, p
    assert "TEMP B-TREE" not in p, p  # no sort of the whole match set


def test_unfiltered_page_walks_the_time_index(plan):
    p = plan(SearchFilters())
    assert "ix_recording_recordings_started_id" in p and "TEMP B-TREE" not in p, p
