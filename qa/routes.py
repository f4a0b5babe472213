"""HTTP edge of QA (thin: parse → :class:`~qa.service.QaService` → serialize).

Expects ``request.app.state.qa``. Permissions (``auth/permissions.py``): ``qa.read_own``
(agents: their own submitted evaluations, acknowledge/dispute), ``qa.evaluate`` (role
``qa``: evaluate, read every evaluation, work list), ``qa.lead`` (role ``qa_lead``:
resolve disputes, reload forms, build the work list, calibration sessions). A subject
listed in ``settings.qa_leads`` also counts as a lead inside the service.

* ``POST /api/recordings/{id}/evaluations`` ``{form_id?, answers, comments?, submit?, work_item_id?, calibration_id?}``
* ``GET /api/qa/evaluations[?agent_id&evaluator&recording_id&state]`` · ``GET /api/qa/evaluations/{id}`` (revisions + history)
* ``PUT /api/qa/evaluations/{id}`` (draft only) · ``POST /api/qa/evaluations/{id}/revisions`` ``{answers, comments?, reason}``
* ``POST /api/qa/evaluations/{id}/acknowledge|dispute`` ``{comment}`` (the agent) ·
  ``POST /api/qa/evaluations/{id}/resolve`` ``{outcome: upheld|changed, comment, answers?, comments?}`` (a lead)
* ``GET /api/qa/forms`` · ``POST /api/qa/forms/reload`` · ``POST /api/qa/forms/{id}/score`` (live score, nothing stored)
* ``POST /api/qa/worklist/build`` ``{day?}`` · ``GET /api/qa/worklist[?evaluator&all]``
* ``POST /api/qa/calibrations`` · ``GET /api/qa/calibrations/{id}/report`` · ``GET /api/qa/calibrations/trend``
"""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.auth import Principal, require
from qa.service import Actor, QaError, QaService

router = APIRouter(tags=["qa"])


class Comment(BaseModel):
    text: str = Field(min_length=1, max_length=4000)
    at: float | None = Field(default=None, ge=0)
    question: str | None = Field(default=None, max_length=100)


Answer = str | int | float | bool | None


class EvaluationBody(BaseModel):
    form_id: str | None = Field(default=None, max_length=100)
    answers: dict[str, Answer] = Field(default_factory=dict)
    comments: list[Comment] = Field(default_factory=list, max_length=500)
    submit: bool = False
    work_item_id: int | None = None
    calibration_id: int | None = None


class DraftBody(BaseModel):
    answers: dict[str, Answer] = Field(default_factory=dict)
    comments: list[Comment] = Field(default_factory=list, max_length=500)
    submit: bool = False


class RevisionBody(BaseModel):
    answers: dict[str, Answer]
    comments: list[Comment] | None = Field(default=None, max_length=500)
    reason: str = Field(min_length=1, max_length=4000)


class ResponseBody(BaseModel):
    comment: str | None = Field(default=None, max_length=4000)


class ResolveBody(BaseModel):
    outcome: str = Field(pattern="^(upheld|changed)$")
    comment: str = Field(min_length=1, max_length=4000)
    answers: dict[str, Answer] | None = None
    comments: list[Comment] | None = Field(default=None, max_length=500)


class ScoreBody(BaseModel):
    answers: dict[str, Answer] = Field(default_factory=dict)


class BuildBody(BaseModel):
    day: date | None = None


class CalibrationBody(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    form_id: str = Field(max_length=100)
    recording_ids: list[str] = Field(min_length=1, max_length=200)
    evaluators: list[str] = Field(min_length=2, max_length=50)
    expert: str | None = Field(default=None, max_length=100)


def _service(request: Request) -> QaService:
    service = getattr(request.app.state, "qa", None)
    if service is None:
        raise HTTPException(503, "QA is not running in this process")
    return service


def _actor(service: QaService, p: Principal) -> Actor:
    return service.actor(p)


def _dump(comments: list[Comment] | None) -> list[dict[str, Any]] | None:
    return None if comments is None else [c.model_dump() for c in comments]


async def _now(fn: Any, *args: Any) -> Any:
    return fn(*args)


async def _run(coro: Any) -> Any:
    try:
        return await coro
    except QaError as exc:
        raise HTTPException(exc.status, str(exc)) from None


@router.post("/api/recordings/{recording_id}/evaluations", status_code=201)
async def create_evaluation(recording_id: str, body: EvaluationBody, request: Request, p: Principal = Depends(require("qa.evaluate"))) -> Any:
    s = _service(request)
    return await _run(s.create(
        _actor(s, p), recording_id, form_id=body.form_id, answers=body.answers, comments=_dump(body.comments),
        submit=body.submit, calibration_id=body.calibration_id, work_item_id=body.work_item_id,
    ))


@router.get("/api/recordings/{recording_id}/evaluations")
async def recording_evaluations(recording_id: str, request: Request, p: Principal = Depends(require("qa.read_own"))) -> Any:
    s = _service(request)
    return await _run(s.list(_actor(s, p), recording_id=recording_id))


@router.get("/api/qa/evaluations")
async def list_evaluations(request: Request, agent_id: str | None = None, evaluator: str | None = None, recording_id: str | None = None,
                           state: str | None = None, p: Principal = Depends(require("qa.read_own"))) -> Any:
    s = _service(request)
    return await _run(s.list(_actor(s, p), agent_id=agent_id, evaluator=evaluator, recording_id=recording_id, state=state))


@router.get("/api/qa/evaluations/{evaluation_id}")
async def get_evaluation(evaluation_id: int, request: Request, p: Principal = Depends(require("qa.read_own"))) -> Any:
    s = _service(request)
    return await _run(s.get(_actor(s, p), evaluation_id))


@router.put("/api/qa/evaluations/{evaluation_id}")
async def update_draft(evaluation_id: int, body: DraftBody, request: Request, p: Principal = Depends(require("qa.evaluate"))) -> Any:
    s = _service(request)
    return await _run(s.update_draft(_actor(s, p), evaluation_id, answers=body.answers, comments=_dump(body.comments), submit=body.submit))


@router.post("/api/qa/evaluations/{evaluation_id}/revisions")
async def revise(evaluation_id: int, body: RevisionBody, request: Request, p: Principal = Depends(require("qa.evaluate"))) -> Any:
    s = _service(request)
    return await _run(s.revise(_actor(s, p), evaluation_id, answers=body.answers, comments=_dump(body.comments), reason=body.reason))


@router.post("/api/qa/evaluations/{evaluation_id}/acknowledge")
async def acknowledge(evaluation_id: int, body: ResponseBody, request: Request, p: Principal = Depends(require("qa.read_own"))) -> Any:
    s = _service(request)
    return await _run(s.acknowledge(_actor(s, p), evaluation_id, body.comment))


@router.post("/api/qa/evaluations/{evaluation_id}/dispute")
async def dispute(evaluation_id: int, body: ResponseBody, request: Request, p: Principal = Depends(require("qa.read_own"))) -> Any:
    s = _service(request)
    return await _run(s.dispute(_actor(s, p), evaluation_id, body.comment or ""))


@router.post("/api/qa/evaluations/{evaluation_id}/resolve")
async def resolve(evaluation_id: int, body: ResolveBody, request: Request, p: Principal = Depends(require("qa.lead"))) -> Any:
    s = _service(request)
    return await _run(s.resolve(_actor(s, p), evaluation_id, outcome=body.outcome, comment=body.comment,
                                answers=body.answers, comments=_dump(body.comments)))


@router.get("/api/qa/forms")
async def forms(request: Request, p: Principal = Depends(require("qa.read_own"))) -> Any:
    s = _service(request)
    cur = await _run(_now(s.forms))
    return {
        "forms": [{**f.summary(), "hash": cur.versions[fid]} for fid, f in sorted(cur.forms.items())],
        "versions": await s.repo.form_versions(),
    }


@router.post("/api/qa/forms/reload")
async def reload_forms(request: Request, p: Principal = Depends(require("qa.lead"))) -> Any:
    result = await _service(request).registry.reload("api")
    return JSONResponse(result.as_dict(), status_code=200 if result.ok else 422)


@router.post("/api/qa/forms/{form_id}/score")
async def live_score(form_id: str, body: ScoreBody, request: Request, p: Principal = Depends(require("qa.evaluate"))) -> Any:
    s = _service(request)

    return await _run(_now(s.preview, form_id, body.answers))


@router.post("/api/qa/worklist/build")
async def build_work_list(body: BuildBody, request: Request, p: Principal = Depends(require("qa.lead"))) -> Any:
    s = _service(request)
    return await _run(s.build_work_list(body.day or s.clock().date(), _actor(s, p)))


@router.get("/api/qa/worklist")
async def work_list(request: Request, evaluator: str | None = None, all: bool = False, p: Principal = Depends(require("qa.evaluate"))) -> Any:
    s = _service(request)
    return await _run(s.work_list(_actor(s, p), evaluator=evaluator, open_only=not all))


@router.post("/api/qa/calibrations", status_code=201)
async def create_calibration(body: CalibrationBody, request: Request, p: Principal = Depends(require("qa.lead"))) -> Any:
    s = _service(request)
    return await _run(s.create_calibration(_actor(s, p), name=body.name, form_id=body.form_id, recording_ids=body.recording_ids,
                                           evaluators=body.evaluators, expert=body.expert))


@router.get("/api/qa/calibrations/trend")
async def calibration_trend(request: Request, p: Principal = Depends(require("qa.lead"))) -> Any:
    s = _service(request)
    return await _run(s.calibration_trend(_actor(s, p)))


@router.get("/api/qa/calibrations/{calibration_id}/report")
async def calibration_report(calibration_id: int, request: Request, p: Principal = Depends(require("qa.evaluate"))) -> Any:
    s = _service(request)
    return await _run(s.calibration_report(_actor(s, p), calibration_id))
