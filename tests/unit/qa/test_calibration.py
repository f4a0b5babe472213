"""Calibration report: answers, spread, deviation from the expert or the median, scores."""

from __future__ import annotations

from qa.calibration import Sheet, report
from qa.scoring import score
from tests.unit.qa.test_scoring import form


def sheets(data: dict[str, dict]) -> list[Sheet]:
    f = form()
    return [Sheet(e, "r1", a, score(f, a)) for e, a in data.items()]


A = {"q1": "yes", "q2": 5, "q3": "full", "crit": "yes"}
B = {"q1": "no", "q2": 3, "q3": "full", "crit": "yes"}
C = {"q1": "yes", "q2": 4, "q3": "half", "q4": "yes", "crit": "yes"}


def test_spread_and_deviation_from_expert():
    rep = report(form(), sheets({"expert": A, "e1": B}), expert="expert")
    rec = rep["recordings"][0]
    q1 = next(q for q in rec["questions"] if q["question"] == "q1")
    assert q1["answers"] == {"e1": "no", "expert": "yes"}
    assert q1["spread"] == 100 and q1["reference"] == 100 and q1["deviation"] == {"e1": 100}
    q2 = next(q for q in rec["questions"] if q["question"] == "q2")
    assert q2["percent"] == {"e1": 50, "expert": 100} and q2["deviation"] == {"e1": 50}
    # totals: expert 100; e1: a (0+2)/(1+4)=40 %, b 100 % -> 16 + 60 = 76
    assert rec["totals"] == {"e1": 76.0, "expert": 100.0} and rec["total_spread"] == 24.0
    assert rec["total_deviation"] == {"e1": 24.0}
    # e1 deviations over q1, q2, q3, crit: 100, 50, 0, 0 -> mean 37.5 -> score 62.5
    assert rep["calibration_scores"] == {"e1": 62.5}


def test_median_reference_without_expert():
    rep = report(form(), sheets({"e1": A, "e2": B, "e3": C}))
    q2 = next(q for q in rep["recordings"][0]["questions"] if q["question"] == "q2")
    assert q2["reference_basis"] == "median" and q2["reference"] == 75  # median of 100, 50, 75
    assert q2["spread"] == 50 and q2["deviation"] == {"e1": 25, "e2": 25, "e3": 0}
    q4 = next(q for q in rep["recordings"][0]["questions"] if q["question"] == "q4")
    assert q4["percent"] == {"e1": None, "e2": None, "e3": 100.0} and q4["spread"] == 0
