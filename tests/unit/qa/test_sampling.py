"""Sampling rules: seeded determinism, quotas, de-duplication, evaluator caps, explanations."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from qa.sampling import Candidate, Evaluator, Rule, RuleSet, assign, draw, period_key

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)  # a Monday


def calls(n_per_agent: int = 10, agents=("1001", "1002", "1003")) -> list[Candidate]:
    out = []
    for a_i, agent in enumerate(agents):
        for i in range(n_per_agent):
            out.append(Candidate(
                f"rec-{agent}-{i}", agent, T0 + timedelta(minutes=10 * i + a_i), duration=60 + i,
                queue="sales" if i % 2 else "support", csat=5, disposition="ok",
            ))
    return out


def ruleset(*rules: Rule, evaluators=(Evaluator("qa1", 100),), seed="s") -> RuleSet:
    return RuleSet("week", seed, "f", tuple(rules), tuple(evaluators))


def test_seeded_draw_is_reproducible_and_depends_on_period_and_seed():
    rs = ruleset(Rule("per-agent", "per_agent", {"count": 3}))
    pool = calls()
    a = [p.candidate.recording_id for p in draw(rs, pool, "2026-W49")]
    b = [p.candidate.recording_id for p in draw(rs, list(reversed(pool)), "2026-W49")]  # input order does not matter
    assert a == b and len(a) == 9
    assert a != [p.candidate.recording_id for p in draw(rs, pool, "2026-W50")]
    assert a != [p.candidate.recording_id for p in draw(ruleset(*rs.rules, seed="other"), pool, "2026-W49")]
    assert period_key("week", T0.date()) == "2026-W49" and period_key("day", T0.date()) == "2026-11-30"


def test_quotas_per_agent_and_per_queue_percent():
    pool = calls()
    picks = draw(ruleset(Rule("pa", "per_agent", {"count": 2})), pool, "W")
    per_agent = {}
    for p in picks:
        per_agent[p.candidate.agent_id] = per_agent.get(p.candidate.agent_id, 0) + 1
    assert per_agent == {"1001": 2, "1002": 2, "1003": 2}
    # 15 sales calls, 10 % rounded up -> 2; support not listed
    qp = draw(ruleset(Rule("q", "queue_percent", {"percent": 10, "queues": ["sales"]})), pool, "W")
    assert len(qp) == 2 and all(p.candidate.queue == "sales" for p in qp)
    assert qp[0].reason == "picked by rule q: 10 % of queue sales in W (2 of 15)"


def test_all_rules_dedup_and_explanations():
    pool = calls(4)
    pool[0] = Candidate("short-low", "1001", T0, 5, "sales", csat=1, disposition="complaint", flags=("pci",))
    rs = ruleset(
        Rule("complaints", "disposition", {"in": ["complaint"]}),
        Rule("short", "shorter_than", {"seconds": 10}),
        Rule("csat", "csat_below", {"value": 3}),
        Rule("pci", "flagged", {"flags": ["pci"]}),
        Rule("pa", "per_agent", {"count": 1}),
    )
    picks = draw(rs, pool, "W")
    first = next(p for p in picks if p.candidate.recording_id == "short-low")
    assert first.rule == "complaints" and first.also == ["short", "csat", "pci"]
    assert first.reason == "picked by rule complaints: disposition complaint"
    ids = [p.candidate.recording_id for p in picks]
    assert len(ids) == len(set(ids))
    # agent 1001 already has a pick from an earlier rule, yet still gets one random call more (never the same one)
    assert sum(1 for p in picks if p.candidate.agent_id == "1001") == 2
    # recordings already in the work list are never picked again
    again = draw(rs, pool, "W", exclude=ids)
    assert not {p.candidate.recording_id for p in again} & set(ids)


def test_evaluator_caps_spread_and_never_own_calls():
    pool = calls(5)
    picks = draw(ruleset(Rule("pa", "per_agent", {"count": 5})), pool, "W")
    evs = [Evaluator("qa1", 4), Evaluator("1001", 6), Evaluator("qa3", 3)]
    left = assign(picks, evs, load={"qa3": 1})
    load = {}
    for p in picks:
        if p.evaluator:
            load[p.evaluator] = load.get(p.evaluator, 0) + 1
            assert p.evaluator != p.candidate.agent_id
    assert load == {"qa1": 4, "1001": 6, "qa3": 2}  # qa3 had 1 already today: cap 3
    assert len(left) == 15 - 12 and all(p.evaluator is None for p in left)
