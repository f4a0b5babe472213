"""The scoring model (pure; written down with a worked example in ``docs/qa.md``).

* A question's points are its answer's points; its maximum is its best option's.
* A question answered N/A, or hidden by its condition (``when``), leaves both the
  numerator and the denominator. A draft may leave questions unanswered (they
  count like N/A); a submission must answer every shown question.
* Section score = 100 × Σ earned / Σ possible over its counted questions;
  a section with nothing counted leaves the total's denominator too.
* Total = Σ (weight × section score) / Σ weight of the counted sections.
* A critical question answered with a failing answer fails the evaluation:
  mode ``zero`` makes the total 0, mode ``cap`` makes it ``min(total, cap)``.
* The band is the first band (highest ``min`` first) with ``total >= min``.

The server always computes this from the stored answers; a client's score is
never read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from qa.forms import NA, Form


class ScoringError(ValueError):
    """Answers that do not fit the form (unknown question or answer, N/A not allowed, missing answers)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class SectionScore:
    id: str
    weight: float
    earned: float
    possible: float

    @property
    def counted(self) -> bool:
        return self.possible > 0

    @property
    def score(self) -> float | None:
        return 100.0 * self.earned / self.possible if self.possible > 0 else None


@dataclass(frozen=True)
class ScoreResult:
    sections: tuple[SectionScore, ...]
    raw_total: float | None  # before a critical failure
    total: float | None
    critical_failed: bool
    critical_failures: tuple[str, ...]
    band: str | None
    band_label: dict[str, str] | None
    questions: dict[str, dict[str, Any]] = field(default_factory=dict)
    unanswered: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": _r(self.total),
            "raw_total": _r(self.raw_total),
            "critical_failed": self.critical_failed,
            "critical_failures": list(self.critical_failures),
            "band": self.band,
            "band_label": self.band_label,
            "sections": [
                {"id": s.id, "weight": s.weight, "earned": s.earned, "possible": s.possible, "score": _r(s.score)}
                for s in self.sections
            ],
            "questions": self.questions,
            "unanswered": list(self.unanswered),
        }


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 2)


def normalise_answer(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip().lower() if isinstance(value, str) else str(value)


def visible_questions(form: Form, answers: Mapping[str, str]) -> dict[str, bool]:
    """question id -> shown? (a question whose condition refers to a hidden question is hidden)."""
    shown: dict[str, bool] = {}
    effective: dict[str, str] = {}
    for q in form.questions():
        ok = q.when is None or (shown.get(q.when.question, False) and q.when.holds(effective))
        shown[q.id] = ok
        if ok and q.id in answers:
            effective[q.id] = answers[q.id]
    return shown


def score(form: Form, answers: Mapping[str, Any], *, complete: bool = False) -> ScoreResult:
    """Score ``answers`` (question id -> option id, ``"na"``, scale digit or bool) on ``form``.

    ``complete=True`` (a submission) requires an answer to every shown question."""
    problems: list[str] = []
    norm: dict[str, str] = {}
    known = {q.id: q for q in form.questions()}
    for qid, value in answers.items():
        if qid not in known:
            problems.append(f"unknown question {qid!r}")
            continue
        if value is None:
            continue
        norm[qid] = normalise_answer(value)
    for qid, ans in norm.items():
        q = known[qid]
        if ans == NA:
            if not q.na_allowed:
                problems.append(f"question {qid!r} does not allow N/A")
        elif q.option(ans) is None:
            problems.append(f"question {qid!r} has no answer {ans!r} (answers: {', '.join(o.id for o in q.options)})")
    if problems:
        raise ScoringError(problems)

    shown = visible_questions(form, norm)
    per_q: dict[str, dict[str, Any]] = {}
    sections: list[SectionScore] = []
    failures: list[str] = []
    unanswered: list[str] = []
    for s in form.sections:
        earned = possible = 0.0
        for q in s.questions:
            ans = norm.get(q.id)
            if not shown[q.id]:
                per_q[q.id] = {"status": "hidden", "answer": None, "points": None, "max": q.max_points}
                continue
            if ans is None:
                unanswered.append(q.id)
                per_q[q.id] = {"status": "unanswered", "answer": None, "points": None, "max": q.max_points}
                continue
            if ans == NA:
                per_q[q.id] = {"status": "na", "answer": NA, "points": None, "max": q.max_points}
                continue
            opt = q.option(ans)
            assert opt is not None
            earned += opt.points
            possible += q.max_points
            failed = q.critical and opt.fail
            if failed:
                failures.append(q.id)
            per_q[q.id] = {"status": "answered", "answer": ans, "points": opt.points, "max": q.max_points, "critical_failed": failed}
        sections.append(SectionScore(s.id, s.weight, earned, possible))
    if complete and unanswered:
        raise ScoringError([f"question {qid!r} is not answered" for qid in unanswered])

    counted = [s for s in sections if s.counted]
    weight = sum(s.weight for s in counted)
    raw_total = sum(s.weight * (s.score or 0.0) for s in counted) / weight if weight > 0 else None
    total = raw_total
    if failures and total is not None:
        total = 0.0 if form.critical_mode == "zero" else min(total, form.critical_cap)
    elif failures:
        total = 0.0 if form.critical_mode == "zero" else None
    band = form.band_for(round(total, 2)) if total is not None else None
    return ScoreResult(
        tuple(sections), raw_total, total, bool(failures), tuple(failures),
        band.id if band else None, band.label if band else None, per_q, tuple(unanswered),
    )
