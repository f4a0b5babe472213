"""Calibration report (pure): several evaluators scored the same recordings on one form.

For each recording and question: every evaluator's answer and points (as % of the
question's maximum), the spread (max − min of those %), the reference (the
expert's answer when the session names an expert who answered it, else the
median of the evaluators' %), and each evaluator's deviation (|% − reference|).
Overall per recording: each evaluator's total, the spread of the totals and the
deviation from the reference total. An evaluator's calibration score for the
session is ``100 − mean deviation`` over every question both they and the
reference answered (N/A and hidden questions are skipped), never below 0.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from qa.forms import Form
from qa.scoring import ScoreResult


@dataclass(frozen=True)
class Sheet:
    evaluator: str
    recording_id: str
    answers: Mapping[str, Any]
    result: ScoreResult


def _pct(result: ScoreResult, qid: str) -> float | None:
    q = result.questions.get(qid) or {}
    if q.get("status") != "answered" or not q.get("max"):
        return None
    return 100.0 * float(q["points"]) / float(q["max"])


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 2)


def report(form: Form, sheets: Iterable[Sheet], expert: str | None = None) -> dict[str, Any]:
    by_rec: dict[str, dict[str, Sheet]] = {}
    for s in sheets:
        by_rec.setdefault(s.recording_id, {})[s.evaluator] = s
    deviations: dict[str, list[float]] = {}
    recordings = []
    for rec_id in sorted(by_rec):
        sheets_r = by_rec[rec_id]
        evaluators = sorted(sheets_r)
        has_expert = expert is not None and expert in sheets_r
        questions = []
        for q in form.questions():
            pcts = {e: _pct(sheets_r[e].result, q.id) for e in evaluators}
            vals = [v for v in pcts.values() if v is not None]
            if has_expert:
                ref = pcts[expert]
                basis = "expert"
            else:
                ref = statistics.median(vals) if vals else None
                basis = "median"
            devs: dict[str, float | None] = {}
            for e in evaluators:
                if e == expert and has_expert:
                    continue
                v = pcts[e]
                d = abs(v - ref) if v is not None and ref is not None else None
                devs[e] = _round(d)
                if d is not None:
                    deviations.setdefault(e, []).append(d)
            questions.append({
                "question": q.id,
                "answers": {e: (sheets_r[e].result.questions.get(q.id) or {}).get("answer") for e in evaluators},
                "percent": {e: _round(v) for e, v in pcts.items()},
                "spread": _round(max(vals) - min(vals)) if vals else None,
                "reference": _round(ref),
                "reference_basis": basis,
                "deviation": devs,
            })
        totals = {e: sheets_r[e].result.total for e in evaluators}
        tvals = [t for t in totals.values() if t is not None]
        ref_total = totals[expert] if has_expert else (statistics.median(tvals) if tvals else None)
        recordings.append({
            "recording_id": rec_id,
            "evaluators": evaluators,
            "questions": questions,
            "totals": {e: _round(t) for e, t in totals.items()},
            "total_spread": _round(max(tvals) - min(tvals)) if tvals else None,
            "reference_total": _round(ref_total),
            "total_deviation": {
                e: _round(abs(t - ref_total)) if t is not None and ref_total is not None else None
                for e, t in totals.items() if not (has_expert and e == expert)
            },
        })
    scores = {e: _round(max(0.0, 100.0 - statistics.fmean(d))) for e, d in sorted(deviations.items()) if d}
    return {"form": form.id, "expert": expert, "recordings": recordings, "calibration_scores": scores}
