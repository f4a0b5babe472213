"""Every metric on the generated dataset, against hand-computed values (tests/unit/reports/expected.py),
from the folded facts and from the dataset's queue_log: the two paths agree."""

from __future__ import annotations

import dataclasses

import pytest

from reports import formulas as fm
from reports.facts import (
    fold_contacts, fold_ivr, fold_recordings, fold_scores, fold_spans, fold_surveys, fold_visits, recording_fact,
)
from reports.queuelog import parse
from tests.unit.reports import dataset as ds
from tests.unit.reports.expected import (
    AGENTS, FCR_SALES, IVR_MAIN, IVR_NODES, QUALITY_AGENT, QUALITY_ALL, QUALITY_FORM, QUALITY_QUEUE, SALES,
    SL_BY_FORMULA, SUPPORT, SURVEYS_ALL, subset,
)


def day_visits(visits):
    return [v for v in visits if ds.DAY <= v.entered_at < ds.NEXT_DAY]


@pytest.fixture
def facts():
    return ds.facts()


def test_queue_metrics_from_facts(facts):
    rows = {m.queue: m.to_dict() for m in fm.queues_report(day_visits(fold_visits(facts)))}
    assert subset(rows["sales"], SALES) == SALES
    assert subset(rows["support"], SUPPORT) == SUPPORT


def test_queue_metrics_from_the_queue_log_of_the_same_calls():
    ql = parse(ds.queue_log())
    rows = {m.queue: m.to_dict() for m in fm.queues_report(day_visits(ql.visits))}
    # a queue_log knows nothing of hold: only talk + hold together (AHT) can agree
    expected = {k: v for k, v in SALES.items() if k not in ("avg_talk_seconds", "avg_hold_seconds")}
    assert subset(rows["sales"], expected) == expected
    assert subset(rows["support"], SUPPORT) == SUPPORT


@pytest.mark.parametrize("formula,expected", sorted(SL_BY_FORMULA.items()))
def test_the_four_service_level_formulas(facts, formula, expected):
    cfg = fm.QueueConfig(service_level_seconds=20, sl_formula=formula)
    m = fm.queue_metrics("sales", [v for v in day_visits(fold_visits(facts)) if v.queue == "sales"], cfg)
    assert m.to_dict()["service_level_pct"] == expected


def test_short_abandons_counted_when_not_excluded(facts):
    visits = [v for v in day_visits(fold_visits(facts)) if v.queue == "sales"]
    m = fm.queue_metrics("sales", visits, fm.QueueConfig(exclude_short_abandons=False)).to_dict()
    assert (m["abandoned"], m["short_abandoned"], m["abandon_rate_pct"]) == (3, 1, 33.33)  # 3 / 9
    # a higher threshold makes c5 (15 s) short too
    m = fm.queue_metrics("sales", visits, fm.QueueConfig(short_abandon_seconds=20)).to_dict()
    assert (m["abandoned"], m["short_abandoned"]) == (1, 2)


def test_threshold_is_inclusive():
    v = fm.Visit("x", 0, "q", 0.0, outcome="answered", wait=20.0, answered_at=20.0, completed=True)
    assert fm.queue_metrics("q", [v], fm.QueueConfig(service_level_seconds=20)).answered_in_sl == 1
    assert fm.queue_metrics("q", [], fm.QueueConfig()).to_dict()["asa_seconds"] is None  # nothing to divide


def test_agents(facts):
    visits = day_visits(fold_visits(facts))
    rows = {m.agent_id: m.to_dict() for m in fm.agents_report(visits, fold_spans(facts), ds.DAY, ds.NEXT_DAY)}
    for agent, exp in AGENTS.items():
        exp = {k: v for k, v in exp.items() if k not in ("csat_pct", "nps")}
        assert subset(rows[agent], exp) == exp


def test_agents_from_the_queue_log():
    ql = parse(ds.queue_log())
    rows = {m.agent_id: m.to_dict() for m in fm.agents_report(day_visits(ql.visits), ql.spans, ds.DAY, ds.NEXT_DAY)}
    for agent, exp in AGENTS.items():
        exp = {k: v for k, v in exp.items() if k in ("answered", "handled", "aht_seconds", "wrapup_seconds",
                                                      "login_seconds", "pause_seconds", "occupancy_pct")}
        assert subset(rows[agent], exp) == exp


def test_login_and_pause_clipped_to_the_period():
    spans = [fm.AgentSpan("a", "logged_in", 0.0, 1000.0), fm.AgentSpan("a", "paused", 900.0, None, "break")]
    (m,) = fm.agents_report([], spans, 500.0, 1200.0)
    assert m.login_seconds == 500.0 and m.pause_seconds == {"break": 300.0}  # open span ends at the period's end


def test_fcr_three_ways(facts):
    contacts = [c for c in fold_contacts(facts) if ds.DAY <= c.at < ds.NEXT_DAY]
    sales_calls = {"c1", "c2", "c3", "c4", "c5", "c6", "c7", "c10"}
    m = fm.fcr([c for c in contacts if c.call_id in sales_calls], fold_contacts(facts), 72 * 3600, ds.NOW).to_dict()
    exp = {k: v for k, v in FCR_SALES.items() if not k.startswith("callbacks")}
    assert subset(m, exp) == exp


def test_fcr_window_not_over_is_pending(facts):
    contacts = [c for c in fold_contacts(facts) if c.call_id in {"c2", "c3", "c4"}]
    m = fm.fcr(contacts, fold_contacts(facts), 72 * 3600, now=ds.t("12:00:00", 3))
    assert (m.repeat_pending, m.repeat_resolved) == (3, 0)
    assert m.to_dict()["fcr_repeat_pct"] is None


def test_repeat_exactly_at_the_window_edge_counts():
    a = fm.Contact("a", "010", 0.0)
    b = fm.Contact("b", "010", 3600.0)
    m = fm.fcr([a], [a, b], 3600.0, now=10_000.0)
    assert (m.repeat_unresolved, m.repeat_resolved) == (1, 0)


def test_ivr_containment_and_dropoff(facts):
    (m,) = fm.ivr_report(fold_ivr(facts))
    d = m.to_dict()
    assert subset(d, IVR_MAIN) == IVR_MAIN
    assert {n["node"]: (n["visits"], n["dropoff"], n["dropoff_pct"]) for n in d["nodes"]} == IVR_NODES


def test_csat_and_nps(facts):
    agent_of = {v.call_id: (v.agent_id, v.queue) for v in sorted(fold_visits(facts), key=lambda v: v.seq) if v.agent_id}
    kinds = {"satisfaction": "csat", "nps": "nps", "resolved": "resolved"}
    answers = [dataclasses.replace(a, question=kinds[a.question]) for a in fold_surveys(facts, agent_of)]
    (all_,) = fm.survey_report(answers, "all")
    assert subset(all_.to_dict(), SURVEYS_ALL) == SURVEYS_ALL
    by_agent = {m.key: m.to_dict() for m in fm.survey_report(answers, "agent")}
    assert (by_agent["1001"]["csat_pct"], by_agent["1001"]["nps"]) == (100.0, 100.0)
    assert (by_agent["1002"]["csat_pct"], by_agent["1002"]["nps"]) == (50.0, -50.0)
    assert by_agent["1002"]["csat_answers"] == 2  # c7's 7 is off the 1-5 scale


def test_facts_fold_back_to_the_same_visits_in_any_order_and_duplicated(facts):
    once = fold_visits(facts)
    twice = fold_visits(list(reversed(facts)) + facts)
    assert [dataclasses.astuple(v) for v in once] == [dataclasses.astuple(v) for v in twice]


def test_unknown_service_level_formula_is_refused():
    with pytest.raises(ValueError, match="unknown service-level formula"):
        fm.QueueConfig(sl_formula="best")


@pytest.mark.parametrize("seed", range(5))
def test_live_counters_fact_by_fact_equal_the_report_in_any_order(facts, seed):
    """The wallboard's incremental counters (one visit's contribution swapped per fact) equal the
    batch fold, whatever the order facts arrive in, duplicates included."""
    import random

    from reports.service import LiveCounters, ReportConfig

    shuffled = facts + facts[: len(facts) // 3]
    random.Random(seed).shuffle(shuffled)
    live = LiveCounters(ReportConfig(timezone="Asia/Seoul"))
    now = ds.t("23:59:59")
    for i in range(0, len(shuffled), 7):
        live.apply(shuffled[i:i + 7], now)
    got = {q: m.to_dict() for q, m in live.metrics(now).items()}
    want = {m.queue: m.to_dict() for m in fm.queues_report(day_visits(fold_visits(facts)))}
    assert got == want
    # a threshold change recounts the queue
    live.config.queues["sales"] = fm.QueueConfig(service_level_seconds=30)
    assert live.metrics(now)["sales"].answered_in_sl == 5


def test_fcr_knows_a_customer_by_the_crm_record_across_numbers():
    from reports.facts import Fact

    def ended(call, caller, customer, at):
        return Fact(f"c:{call}:ended", "call.ended", at + 60, at, call, "sales", "1001",
                    {"caller": caller, "customer": customer, "direction": "inbound", "first_queued_at": at})

    facts = [ended("a", "0101", 7, 0.0), ended("b", "0202", 7, 3600.0), ended("c", "0303", None, 0.0)]
    contacts = fold_contacts(facts)
    m = fm.fcr([c for c in contacts if c.call_id in ("a", "c")], contacts, 72 * 3600, now=10**6)
    assert (m.repeat_unresolved, m.repeat_resolved) == (1, 1)  # a: the same customer called from 0202


def _quality(facts, by):
    day = lambda at: ds.DAY <= at < ds.NEXT_DAY  # noqa: E731 - the dataset's calls start when they queue
    recs = [r for r in fold_recordings(facts) if day(r.at)]
    scores = [s for s in fold_scores(facts) if day(s.at)]
    return {m.key: m.to_dict() for m in fm.quality_report(day_visits(fold_visits(facts)), recs, scores, by)}


@pytest.mark.parametrize("by, expected", [("queue", QUALITY_QUEUE), ("agent", QUALITY_AGENT), ("form", QUALITY_FORM),
                                          ("all", {"all": QUALITY_ALL})])
def test_recording_and_qa_coverage_and_scores(facts, by, expected):
    rows = _quality(facts, by)
    assert set(rows) == set(expected)
    for key, want in expected.items():
        assert subset(rows[key], want) == want, key


def test_a_later_stage_and_a_later_revision_win_in_any_order(facts):
    shuffled = list(reversed(facts)) + facts[:40]
    assert _quality(shuffled, "agent") == _quality(facts, "agent")


def test_an_unanswered_inbound_recording_is_not_a_handled_call():
    only = [recording_fact("x", "discarded", required=False, at=10.0, call_started_at=5.0, agent_id="1001"),
            recording_fact("y", "pending", required=True, at=10.0, call_started_at=5.0, agent_id="1001")]
    # inbound without a queue visit in the period: its visit is elsewhere — never counted here
    assert fm.quality_report([], fold_recordings(only), [], "agent") == []
