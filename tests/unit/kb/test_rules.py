"""Suggestion rules: the checker (file:line:col, like the dialplans) and the ranking."""

import pytest

from kb.rules import CallContext, Candidate, check_rules, score
from tests.unit.kb.conftest import RULES

GOOD = """\
limit: 2
rules:
  - name: ivr-intent
    match: intent
    weight: 10
    because: {ko: "IVR 의도 = {value}", en: "IVR intent = {value}"}
  - name: queue
    match: queue
    weight: 3
    because: "queue = {value}"
"""


def test_the_shipped_rules_pass_the_checker_against_the_shipped_dialplans():
    from ivr.checker import check_dir

    flows = check_dir(RULES.parent.parent, check_sounds=False).flows
    nodes = {n for f in flows.values() for n in f.nodes}
    from kb.service import parse_markdown
    from tests.unit.kb.conftest import SAMPLE

    slugs = {parse_markdown(p.read_text(encoding="utf-8"), p.name)[0] for p in SAMPLE.glob("*.md")}
    rules, problems = check_rules(RULES.read_text(encoding="utf-8"), "kb/rules.yaml", flow_nodes=nodes, known_slugs=slugs)
    assert problems == [] and rules is not None and rules.limit == 3


@pytest.mark.parametrize(
    "edit, where, message",
    [
        (("weight: 10", "weight: -1"), "5:13", "'weight' must be a number"),
        (("match: queue", "match: mood"), "8:12", "'match' must be one of"),
        (("name: queue", "name: ivr-intent"), "7:11", "duplicate rule name 'ivr-intent' (first at line 3)"),
        (("{value}\"}", "{valeu}\"}"), "6:57", "unknown placeholder {valeu}"),
        (("limit: 2", "limit: 0"), "1:8", "'limit' must be an integer"),
        (("limit: 2", "limt: 2"), "1:1", "unknown key 'limt'"),
        (("    weight: 3\n", "    weight: 3\n    colour: red\n"), "10:5", "unknown rule key 'colour'"),
        (("because: \"queue", "because: [\"queue"), "1:1", "YAML syntax error"),
    ],
)
def test_the_checker_points_at_the_problem(edit, where, message):
    text = GOOD.replace(*edit)
    assert text != GOOD
    rules, problems = check_rules(text, "rules.yaml")
    assert rules is None
    assert any(str(p).startswith(f"rules.yaml:{where}: ") and message in p.message for p in problems) or (
        where == "1:1" and message == "YAML syntax error" and "YAML syntax error" in str(problems[0])
    ), [str(p) for p in problems]


def test_unknown_nodes_and_slugs_are_warnings():
    text = GOOD + """\
  - name: path
    match: path
    weight: 2
    nodes: {billing_menuu: [billing]}
    because: "path"
  - name: vip
    match: tier
    when: vip
    articles: [no-such-article]
    weight: 5
    because: "vip"
"""
    rules, problems = check_rules(text, "r.yaml", flow_nodes={"billing_menu"}, known_slugs={"refund-procedure"})
    assert rules is not None
    assert sorted((p.severity, str(p.pos)) for p in problems) == [("warning", "r.yaml:14:13"), ("warning", "r.yaml:19:16")]


def test_ranking_sums_rule_weights_explains_them_and_counts_usage():
    rules, _ = check_rules(GOOD.replace("limit: 2", "limit: 2\nusage_weight: 1"), "r.yaml")
    ctx = CallContext(intent="tech:internet", queue="tech", language="ko")
    a = Candidate(1, "internet", "ko", ("tech:internet",), ("tech",), ())
    b = Candidate(2, "tech-general", "ko", ("tech",), ("tech",), ())
    c = Candidate(3, "billing", "ko", ("billing",), ("billing",), ())
    ranked = score(rules, ctx, [c, b, a])
    assert [s.candidate.slug for s in ranked] == ["internet", "tech-general"]  # unrelated ones are not suggested
    assert ranked[0].score == 10 + 3 + 1 and ranked[1].score == 5 + 3 + 1  # "tech" is the broader intent: half
    assert [r["text"]["en"] for r in ranked[0].reasons] == ["IVR intent = tech:internet", "queue = tech"]
    assert ranked[0].reasons[0]["text"]["ko"] == "IVR 의도 = tech:internet"
    # 20 helpful marks: × (1 + ln 21) ≈ 4.04 lift the broader article above the exact one
    b_used = Candidate(2, "tech-general", "ko", ("tech",), ("tech",), (), helpful=20)
    assert [s.candidate.slug for s in score(rules, ctx, [a, b_used])] == ["tech-general", "internet"]


def test_call_context_from_a_screen_pop():
    pop = {
        "queue": "billing",
        "customer": {"tier": "gold"},
        "ivr": {"language": "en", "path": ["welcome", "main_menu", "billing_menu", "set_refund"], "agent": {"intent": "refund"}},
        "previous_interactions": [{"disposition": "refund"}, {"disposition": None}, {"disposition": "refund"}],
    }
    ctx = CallContext.from_pop(pop)
    assert ctx == CallContext("refund", ("welcome", "main_menu", "billing_menu", "set_refund"), "billing", "gold", ("refund",), "en")
    assert CallContext.from_pop({}) == CallContext()


async def test_rules_reload_refuses_a_broken_file_and_keeps_the_rules_in_use(kb, tmp_path):
    from kb.service import Invalid

    with pytest.raises(Invalid):
        kb.reload_rules()  # started without a file
    f = tmp_path / "rules.yaml"
    f.write_text(GOOD, encoding="utf-8")
    kb.rules_file = f
    kb._flow_nodes = lambda: ["billing_menu"]
    ok = kb.reload_rules()
    assert ok["reloaded"] and ok["limit"] == 2 and [r["name"] for r in ok["rules"]] == ["ivr-intent", "queue"]
    f.write_text(GOOD.replace("weight: 10", "weight: ten"), encoding="utf-8")
    bad = kb.reload_rules()
    assert not bad["reloaded"] and bad["problems"] == [f"{f}:5:13: 'weight' must be a number between 0.0001 and 1000; got 'ten'"]
    assert kb.rules.limit == 2 and len(kb.rules.rules) == 2  # still the good ones


def test_cli_check_prints_file_line_col_and_fails_on_errors(tmp_path, capsys):
    from callcore.cli import main

    assert main(["kb", "check", str(RULES)]) == 0
    assert capsys.readouterr().out.startswith("OK: 0 error(s), 0 warning(s); 6 rule(s)")
    bad = tmp_path / "kb" / "rules.yaml"
    bad.parent.mkdir()
    bad.write_text(GOOD.replace("match: queue", "match: mood"), encoding="utf-8")
    assert main(["kb", "check", str(bad)]) == 1
    out = capsys.readouterr().out
    assert f"{bad}:8:12: 'match' must be one of" in out and "FAILED: 1 error(s)" in out


def test_cli_import_search_export(tmp_path, capsys):
    from callcore.cli import main
    from tests.unit.kb.conftest import SAMPLE

    data = str(tmp_path / "data")
    assert main(["kb", "import", str(SAMPLE), "--data-dir", data]) == 0
    assert "created 14, updated 0, unchanged 0, errors 0" in capsys.readouterr().out
    assert main(["kb", "search", "환불해주세요", "--data-dir", data]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("terms: 환불") and "refund-procedure" in out[1]
    assert main(["kb", "export", str(tmp_path / "out"), "--data-dir", data]) == 0
    assert (tmp_path / "out" / "refund-procedure.md").read_text(encoding="utf-8").startswith("---\nslug: refund-procedure\n")
    assert main(["kb", "expiring", "--days", "3650", "--data-dir", data]) == 0
    assert "notice-refund-policy-2027" in capsys.readouterr().out
