"""The scoring model against hand-computed values (docs/qa.md)."""

from __future__ import annotations

import pytest

from qa.forms import parse_form
from qa.scoring import ScoringError, score

FORM = """
id: t
critical: {mode: zero}
bands:
  - {id: excellent, min: 90}
  - {id: good, min: 70}
  - {id: coaching, min: 0}
sections:
  - id: a
    weight: 40
    questions:
      - {id: q1, type: yesno}
      - {id: q2, type: scale, na: true}
  - id: b
    weight: 60
    questions:
      - id: q3
        type: choice
        options:
          - {id: full, points: 10}
          - {id: half, points: 4}
          - {id: none, points: 0}
      - {id: q4, type: yesno, when: {question: q3, in: [half, none]}}
      - {id: crit, type: yesno, critical: true, na: true}
"""


def form(text: str = FORM):
    f, problems = parse_form(text, "t.yaml")
    assert f is not None, [str(p) for p in problems]
    return f


def test_weights_and_points():
    # a: q1 yes 1/1, q2 scale 4 -> 3/4  => 4/5 = 80 %
    # b: q3 half 4/10, q4 (shown) no 0/1, crit yes 1/1 => 5/12 = 41.667 %
    # total = (40*80 + 60*41.667)/100 = 32 + 25 = 57.0 -> coaching
    r = score(form(), {"q1": "yes", "q2": 4, "q3": "half", "q4": "no", "crit": "yes"}, complete=True)
    assert [round(s.score, 3) for s in r.sections] == [80.0, 41.667]
    assert round(r.total, 2) == 57.0
    assert r.band == "coaching"
    assert not r.critical_failed


def test_na_leaves_the_denominator():
    # a: q1 yes 1/1 (q2 N/A) => 100 %; b: q3 full 10/10 (q4 hidden), crit N/A => 100 %
    r = score(form(), {"q1": True, "q2": "na", "q3": "full", "crit": "na"}, complete=True)
    assert r.sections[0].possible == 1 and r.sections[0].score == 100
    assert r.total == 100 and r.band == "excellent"
    assert r.questions["q4"]["status"] == "hidden"


def test_conditional_question_hidden_answer_is_ignored_and_not_required():
    r = score(form(), {"q1": "no", "q2": 5, "q3": "full", "q4": "no", "crit": "yes"}, complete=True)
    # a: 0+4 / 1+4 = 80 %, b: 10+1 / 10+1 = 100 % (q4 hidden: its "no" does not count)
    assert round(r.total, 2) == round(0.4 * 80 + 0.6 * 100, 2) == 92.0
    with pytest.raises(ScoringError, match="q4"):
        score(form(), {"q1": "no", "q2": 5, "q3": "none", "crit": "yes"}, complete=True)


def test_critical_fail_zero_and_cap():
    answers = {"q1": "yes", "q2": 5, "q3": "full", "crit": "no"}
    r = score(form(), answers, complete=True)
    # raw: a 100 %, b 10/11 = 90.909 % -> 40 + 54.545 = 94.55; critical -> 0
    assert round(r.raw_total, 2) == 94.55
    assert r.total == 0 and r.critical_failed and r.critical_failures == ("crit",) and r.band == "coaching"
    capped = form(FORM.replace("critical: {mode: zero}", "critical: {mode: cap, cap: 60}"))
    r2 = score(capped, answers, complete=True)
    assert r2.total == 60 and r2.band == "coaching"
    low = score(capped, {"q1": "no", "q2": 1, "q3": "none", "q4": "no", "crit": "no"}, complete=True)
    assert low.total == 0  # min(raw 0, cap 60)


def test_bands_boundaries():
    f = form()
    # exactly 90 and exactly 70 land in the higher band
    assert f.band_for(90).id == "excellent" and f.band_for(89.99).id == "good"
    assert f.band_for(70).id == "good" and f.band_for(69.99).id == "coaching"


def test_draft_partial_and_bad_answers():
    r = score(form(), {"q1": "yes"})
    assert r.total == 100 and set(r.unanswered) == {"q2", "q3", "crit"}
    with pytest.raises(ScoringError, match="has no answer 'maybe'"):
        score(form(), {"q1": "maybe"})
    with pytest.raises(ScoringError, match="does not allow N/A"):
        score(form(), {"q1": "na"})
    with pytest.raises(ScoringError, match="unknown question"):
        score(form(), {"nope": "yes"})


def test_shipped_form_worked_example():
    """The worked example of docs/qa.md on qa-forms/customer-service.yaml."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[3] / "qa-forms" / "customer-service.yaml"
    f, problems = parse_form(path.read_text(encoding="utf-8"), "customer-service.yaml")
    assert f is not None, problems
    answers = {"greeting": "yes", "identity": "na", "courtesy": 4, "resolution": "partial", "followup": "no",
               "hold_etiquette": "na", "summary": "yes", "farewell": 5}
    r = score(f, answers, complete=True)
    assert [round(s.score, 2) for s in r.sections] == [100.0, 53.33, 100.0]
    assert round(r.total, 2) == 76.67 and r.band == "good"
    failed = score(f, {**answers, "identity": "no"}, complete=True)
    # opening 1/2 = 50 % -> 10 + 26.667 + 30 = 66.67, critical -> capped at 50
    assert round(failed.raw_total, 2) == 66.67 and failed.total == 50 and failed.band == "coaching"
