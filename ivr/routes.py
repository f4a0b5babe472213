"""HTTP edge of the IVR (thin: parse → service/registry → serialize).

Expects ``request.app.state.ivr`` to be the :class:`~ivr.service.IvrService`
(set by the composition root). Mount with ``app.include_router(router)``.

* ``POST /api/dialplans/reload`` → 200 ``{ok: true, changed, versions, warnings}``
  or 422 ``{ok: false, errors: ["file:line:col: message", ...]}`` (previous version keeps serving)
* ``GET /api/dialplans`` → active versions and every stored version per flow
* ``POST /api/dialplans/{flow}/rollback`` ``{"hash": "<hash or 6+ char prefix>"}``
* ``GET /api/ivr/sessions/{uniqueid}`` → the last IVR session of a call: context + step log
* ``GET /api/ivr/stats[?since=ISO]`` → outcomes, containment, drop-off by node

Reload and rollback change what every caller hears: ``dialplans.admin`` (ops, admin),
audited. Reading versions ``dialplans.read``; sessions and stats ``ivr.read``
(permission table: :mod:`auth.permissions`; tokens: :mod:`api.auth`).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from api.auth import Principal, require
from audit.service import record_from
from ivr.service import IvrService

router = APIRouter(tags=["ivr"])


class RollbackBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hash: str = Field(min_length=6, max_length=64, pattern=r"^[0-9a-f]+$")


def _service(request: Request) -> IvrService:
    service = getattr(request.app.state, "ivr", None)
    if service is None:
        raise HTTPException(503, "IVR is not running in this process")
    return service


def _result(result: Any) -> JSONResponse:
    return JSONResponse(result.as_dict(), status_code=200 if result.ok else 422)


@router.post("/api/dialplans/reload")
async def reload_dialplans(request: Request, p: Principal = Depends(require("dialplans.admin"))) -> JSONResponse:
    result = await _service(request).registry.reload("api")
    await record_from(request, p, "dialplans.reload", None, {"ok": result.ok, "changed": result.as_dict().get("changed")})
    return _result(result)


@router.get("/api/dialplans")
async def list_dialplans(request: Request, p: Principal = Depends(require("dialplans.read"))) -> dict[str, Any]:
    registry = _service(request).registry
    versions = await registry.versions()
    active = dict(registry.current.versions) if registry.loaded else {}
    last = registry.last_result.as_dict() if registry.last_result else None
    return {
        "active": active,
        "versions": [v.summary() for v in versions],
        "last_reload": last,
    }


@router.post("/api/dialplans/{flow}/rollback")
async def rollback_dialplan(
    flow: str, body: RollbackBody, request: Request, p: Principal = Depends(require("dialplans.admin"))
) -> JSONResponse:
    result = await _service(request).registry.rollback(flow, body.hash)
    await record_from(request, p, "dialplans.rollback", flow, {"hash": body.hash, "ok": result.ok})
    return _result(result)


@router.get("/api/ivr/sessions/{uniqueid}")
async def ivr_session(uniqueid: str, request: Request, p: Principal = Depends(require("ivr.read"))) -> dict[str, Any]:
    service = _service(request)
    session = await service.repository.session(uniqueid)
    if session is None:
        raise HTTPException(404, f"no IVR session for call {uniqueid}")
    session["survey"] = await service.repository.survey_answers(uniqueid)
    return session


@router.get("/api/ivr/stats")
async def ivr_stats(
    request: Request, since: datetime | None = None, p: Principal = Depends(require("ivr.read"))
) -> dict[str, Any]:
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=timezone.utc)
    return await _service(request).repository.stats(since)
