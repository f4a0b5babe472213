"""Smoke run of the knowledge-base search benchmark (benchmarks/kb_search.py).
What every smoke run checks, and what it never does
(timing): tests/benchmarks/figures.py.
"""

from __future__ import annotations

from tests.benchmarks.figures import figures_ok as _figures_ok


def test_kb_search_smoke() -> None:
    """kb search benchmark (issue 17): builds the corpus, every query answers, the sample's hits are there."""
    from benchmarks import kb_search

    res = kb_search.run("smoke")
    _figures_ok(res)
    d = res["details"]
    assert d["articles"] == kb_search.SIZES["smoke"]["articles"]
    assert d["summary"]["n"] == len(kb_search.QUERIES)
    assert d["hits"]["환불해주세요"] > 0 and d["hits"]["How do I get a refund?"] > 0
    # both stores (PostgreSQL unless no server is reachable, which the figures then say), each
    # with its under-load run: searches answered during pops, marks and edits, none failed
    assert set(d["stores"]) == {"sqlite", "postgresql"} or "postgresql_skipped" in d
    for store, r in d["stores"].items():
        assert r["articles"] == kb_search.SIZES["smoke"]["articles"], store
        assert r["hits"]["환불해주세요"] > 0, store
        for run in ("load", "load_baseline"):
            assert r[run]["counts"]["errors"] == 0, (store, run, r[run]["errors"])
            assert r[run]["counts"]["searches"] == r[run]["summary"]["n"] > 0, (store, run)
        assert r["load"]["counts"]["pops"] > 0 and r["load"]["counts"]["marks"] > 0, store
