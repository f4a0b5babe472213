"""The search queries walk an index in sort order (SQLite's plan), so a page costs the same at
a million rows: facet filters (agent, queue, IVR node, tag) drive the facet index; no filter
drives (started_at, id)."""

from __future__ import annotations

from datetime import datetime, timezone

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


@pytest.mark.parametrize("f", [SearchFilters(agent="1002"), SearchFilters(agent="1002", muted=True),
                               SearchFilters(tags=["vip"]), SearchFilters(ivr_node="main:menu", agent="1001")])
def test_facet_filters_walk_the_facet_index_in_order(plan, f):
    p = plan(f)
    assert "ix_recording_facets_lookup" in p, p
    assert "TEMP B-TREE" not in p, p  # no sort of the whole match set


def test_unfiltered_page_walks_the_time_index(plan):
    p = plan(SearchFilters())
    assert ("ix_recording_recordings_started_id" in p or "ix_recording_recordings_started_duration" in p), p
    assert "TEMP B-TREE" not in p, p


def test_a_queue_with_a_rare_flag_walks_the_flags_index_and_probes_the_queue(plan):
    """Issue 18: a big queue (30 % of the calls) + muted (4 %) + a duration: the mute drives."""
    p = plan(SearchFilters(queue="sales", muted=True, min_duration=300))
    assert "ix_recording_recordings_muted_started" in p and "TEMP B-TREE" not in p, p
    assert "LIST SUBQUERY" not in p, p  # the queue is a probe per row, not the queue's whole list
    p = plan(SearchFilters(queue="sales", qa_sample=True))
    assert "ix_recording_recordings_qa_started" in p and "TEMP B-TREE" not in p, p


def test_a_duration_filter_or_sort_finds_the_other_column_in_the_index(plan):
    """Migration 0024: long calls of a month, newest first; longest first in a day."""
    p = plan(SearchFilters(min_duration=3600))
    assert "ix_recording_recordings_started_duration" in p and "TEMP B-TREE" not in p, p
    p = plan(SearchFilters(start=datetime(2026, 9, 1, tzinfo=timezone.utc), end=datetime(2026, 9, 2, tzinfo=timezone.utc)),
             sort="duration")
    # SQLite (no statistics here) searches the day's range on a time index and sorts it; PostgreSQL walks
    # (duration, id, started_at) (benchmarks/README.md §6): either way an index, never a scan of the table
    assert "SEARCH recording_recordings USING INDEX ix_recording_recordings_" in p or "duration_started" in p, p


def test_a_server_filter_walks_its_index_newest_first(plan):
    """Issue 19 (migration 0025): ``server=ast2`` newest first is one ordered range of (server, started_at, id)."""
    p = plan(SearchFilters(server="ast2"))
    assert "ix_recording_recordings_server_started" in p and "TEMP B-TREE" not in p, p
