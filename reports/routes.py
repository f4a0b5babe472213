"""Report REST edge: ``GET /api/reports/{queues,agents,ivr,surveys,quality}``.

Query: ``from``, ``to`` (ISO date / date-time in the center's time zone, or epoch seconds;
default today so far), ``interval`` (15min, hour, day, week, month; default: one row per
queue/agent/flow for the whole period), filters (``queue``, ``agent``, ``flow``, repeatable;
surveys: ``by`` = agent | queue | all; quality: ``by`` = queue | agent | form | all). JSON by default; CSV with ``Accept: text/csv`` or
``?format=csv``. Bad parameters answer 400 with the reason. Permission ``reports.read``
(supervisor, QA, QA lead, ops, admin).
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from api.auth import Principal, require
from reports.cli import AGENT_COLUMNS, QUALITY_COLUMNS, QUEUE_COLUMNS, QUEUE_EXTRA, to_csv
from reports.service import Invalid, ReportService

router = APIRouter(prefix="/api/reports", tags=["reports"])
reader = require("reports.read")  # auth/permissions.py: supervisor, qa, qa_lead, ops, admin


class Unavailable(Exception):
    pass


def svc(request: Request) -> ReportService:
    service = getattr(request.app.state, "reports", None)
    if service is None:
        raise Unavailable("reports are not available in this process")
    return service


async def _answer(request: Request, fmt: str | None, columns: list[str], name: str,
                  make: Callable[[], Awaitable[list[dict[str, Any]]]]) -> Response:
    if fmt not in (None, "json", "csv"):
        return JSONResponse({"detail": "format must be json or csv"}, status_code=400)
    try:
        rows = await make()
    except Invalid as exc:
        return JSONResponse({"detail": str(exc)}, status_code=400)
    except Unavailable as exc:
        return JSONResponse({"detail": str(exc)}, status_code=503)
    wants_csv = fmt == "csv" or (fmt is None and "text/csv" in request.headers.get("accept", ""))
    if wants_csv:
        lead = ["interval_start", "interval_end"] if any("interval_start" in r for r in rows) else []
        return Response(to_csv(rows, lead + columns), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})
    return JSONResponse({"rows": rows})


@router.get("/queues")
async def queues(
    request: Request,
    from_: str | None = Query(None, alias="from"),
    to: str | None = None,
    interval: str | None = None,
    queue: list[str] | None = Query(None),
    format: str | None = None,
    p: Principal = Depends(reader),
) -> Response:
    return await _answer(request, format, QUEUE_COLUMNS + QUEUE_EXTRA, "queues",
                         lambda: svc(request).queue_report(from_, to, interval, queue))


@router.get("/agents")
async def agents(
    request: Request,
    from_: str | None = Query(None, alias="from"),
    to: str | None = None,
    interval: str | None = None,
    agent: list[str] | None = Query(None),
    format: str | None = None,
    p: Principal = Depends(reader),
) -> Response:
    return await _answer(request, format, AGENT_COLUMNS, "agents",
                         lambda: svc(request).agent_report(from_, to, interval, agent))


@router.get("/ivr")
async def ivr(
    request: Request,
    from_: str | None = Query(None, alias="from"),
    to: str | None = None,
    interval: str | None = None,
    flow: list[str] | None = Query(None),
    format: str | None = None,
    p: Principal = Depends(reader),
) -> Response:
    return await _answer(request, format, ["flow", "sessions", "contained", "handed_off", "dropped", "in_progress",
                                           "containment_pct"], "ivr",
                         lambda: svc(request).ivr_report(from_, to, flow, interval))


@router.get("/surveys")
async def surveys(
    request: Request,
    from_: str | None = Query(None, alias="from"),
    to: str | None = None,
    interval: str | None = None,
    by: str = "agent",
    format: str | None = None,
    p: Principal = Depends(reader),
) -> Response:
    return await _answer(request, format, ["by", "key", "csat_answers", "csat_pct", "nps_answers", "nps",
                                           "resolved_answers", "resolved_pct"], "surveys",
                         lambda: svc(request).survey_report(from_, to, by, interval))


@router.get("/quality")
async def quality(
    request: Request,
    from_: str | None = Query(None, alias="from"),
    to: str | None = None,
    interval: str | None = None,
    by: str = "queue",
    queue: list[str] | None = Query(None),
    agent: list[str] | None = Query(None),
    form: list[str] | None = Query(None),
    format: str | None = None,
    p: Principal = Depends(reader),
) -> Response:
    """Recording coverage, QA coverage and QA scores (docs/metrics.md §3a): one row per queue,
    agent, QA form or the whole center (``by``), optionally per interval."""
    keys = {"queue": queue, "agent": agent, "form": form}.get(by)
    return await _answer(request, format, QUALITY_COLUMNS, "quality",
                         lambda: svc(request).quality_report(from_, to, by, interval, keys))
