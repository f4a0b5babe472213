"""`callcore qa check`: file:line:col problems for forms and sampling rules."""

from __future__ import annotations

from pathlib import Path

from qa.checker import check_dir
from qa.cli import main

BAD_FORM = """id: bad
bands:
  - {id: top, min: 80}
sections:
  - id: s1
    weight: 60
    questions:
      - {id: q1, type: yesno}
      - {id: q1, type: scale}
      - {id: q2, type: yesno, when: {question: q9, equals: yes}}
      - {id: q3, type: choise}
  - id: s2
    weight: 30
    questions:
      - {id: q4, type: yesno, when: {question: q1, equals: maybe}}
"""


def test_form_problems_with_positions(tmp_path: Path):
    (tmp_path / "bad.yaml").write_text(BAD_FORM, encoding="utf-8")
    result = check_dir(tmp_path, display_prefix="qa-forms")
    msgs = [str(p) for p in result.problems]
    assert "qa-forms/bad.yaml:9:14: duplicate question id 'q1' (first at line 8)" in msgs
    assert any(m.startswith("qa-forms/bad.yaml:10:48: question 'q2': condition names question 'q9'") for m in msgs)
    assert any(m.startswith("qa-forms/bad.yaml:11:24: question 'q3': type must be one of") and "did you mean 'choice'" in m for m in msgs)
    assert "qa-forms/bad.yaml:5:3: section weights sum to 90, not 100" in msgs
    assert any(m.startswith("qa-forms/bad.yaml:3:3: the lowest band must start at 0") for m in msgs)
    assert any(m.startswith("qa-forms/bad.yaml:15:60: question 'q4': question 'q1' has no answer 'maybe'") for m in msgs)
    assert not result.ok and result.forms == {}


def test_rules_problems_and_cli(tmp_path: Path, capsys):
    shipped = Path(__file__).resolve().parents[3] / "qa-forms" / "customer-service.yaml"
    (tmp_path / "cs.yaml").write_text(shipped.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "sampling.yaml").write_text(
        "form: customer-servce\nevaluators:\n  - {id: qa1, daily_cap: 0}\nrules:\n"
        "  - {id: r1, kind: per_agent, count: 2}\n  - {id: r1, kind: shorter_than, seconds: 5}\n"
        "  - {id: r3, kind: queue_pct, percent: 5}\n",
        encoding="utf-8",
    )
    assert main(["qa", "check", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"{tmp_path}/sampling.yaml:1:7: no form 'customer-servce' (did you mean 'customer-service'?)" in out
    assert f"{tmp_path}/sampling.yaml:3:26: evaluator 'qa1': 'daily_cap' must be a whole number >= 1" in out
    assert f"{tmp_path}/sampling.yaml:6:10: duplicate rule id 'r1' (first at line 5)" in out
    assert f"{tmp_path}/sampling.yaml:7:20: rule 'r3': kind must be one of" in out


def test_shipped_forms_pass():
    d = Path(__file__).resolve().parents[3] / "qa-forms"
    assert main(["qa", "check", str(d)]) == 0
    r = check_dir(d)
    assert set(r.forms) == {"customer-service"} and r.rules is not None and r.rules.form == "customer-service"
    f = r.forms["customer-service"]
    assert f.title["ko"] and f.title["en"] and all(q.text["ko"] and q.text["en"] for q in f.questions())
