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

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse

from api.auth import Principal, require
from auth import scope
from reports.cli import AGENT_COLUMNS, QUALITY_COLUMNS, QUEUE_COLUMNS, QUEUE_EXTRA, to_csv
from reports.service import Invalid, ReportService

router = APIRouter(prefix="/api/reports", tags=["reports"])
reader = require("reports.read")  # auth/permissions.py: supervisor, qa, qa_lead, ops, admin


class Unavailable(Exception):
    pass


# ---- queue scope (issue 11, auth/scope.py): a user limited to queues reads only their queues
def _scoped_queues(p: Principal, requested: list[str] | None) -> list[str] | None:
    if not p.queues:
        return requested
    outside = sorted(set(requested or ()) - p.queues)
    if outside:
        raise HTTPException(403, f"queues outside your queue scope: {', '.join(outside)}")
    return list(requested) if requested else sorted(p.queues)


def _supervised_agents(request: Request, p: Principal) -> set[str] | None:
    """The agents a scoped user may report on (None: every agent)."""
    if not (p.queues or p.teams):
        return None
    cti = getattr(request.app.state, "cti", None)
    return {a["id"] for a in (cti.agents.list_agents() if cti is not None else []) if scope.supervises(p, a)}


def _scoped_agents(request: Request, p: Principal, requested: list[str] | None) -> tuple[list[str] | None, set[str] | None]:
    """(the agent filter to run the report with, the agents its rows are limited to)."""
    mine = _supervised_agents(request, p)
    if mine is None:
        return requested, None
    outside = sorted(set(requested or ()) - mine)
    if outside:
        raise HTTPException(403, f"agents outside your queue/team scope: {', '.join(outside)}")
    return requested, mine


def _only(rows: list[dict[str, Any]], column: str, allowed: set[str] | None) -> list[dict[str, Any]]:
    return rows if allowed is None else [r for r in rows if r.get(column) in allowed]


def _center_wide(p: Principal, what: str) -> None:
    if p.queues or p.teams:
        raise HTTPException(403, f"the {what} report covers the whole center; your account is limited to queues or teams")


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
                         lambda: svc(request).queue_report(from_, to, interval, _scoped_queues(p, queue)))


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
    wanted, allowed = _scoped_agents(request, p, agent)

    async def make() -> list[dict[str, Any]]:
        return _only(await svc(request).agent_report(from_, to, interval, wanted), "agent_id", allowed)

    return await _answer(request, format, AGENT_COLUMNS, "agents", make)


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
    _center_wide(p, "IVR")
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
    allowed: set[str] | None = None
    if by == "agent":
        allowed = _supervised_agents(request, p)
    elif by == "queue":
        allowed = set(p.queues) or None
    else:
        _center_wide(p, f"survey by {by}")

    async def make() -> list[dict[str, Any]]:
        return _only(await svc(request).survey_report(from_, to, by, interval), "key", allowed)

    return await _answer(request, format, ["by", "key", "csat_answers", "csat_pct", "nps_answers", "nps",
                                           "resolved_answers", "resolved_pct"], "surveys", make)


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
    allowed: set[str] | None = None
    if by == "queue":
        queue = _scoped_queues(p, queue)
    elif by == "agent":
        agent, allowed = _scoped_agents(request, p, agent)
    else:
        _center_wide(p, f"quality by {by}")
    keys = {"queue": queue, "agent": agent, "form": form}.get(by)

    async def make() -> list[dict[str, Any]]:
        return _only(await svc(request).quality_report(from_, to, by, interval, keys), "key", allowed)

    return await _answer(request, format, QUALITY_COLUMNS, "quality", make)
