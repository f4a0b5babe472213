"""HTTP edge of the IVR (thin: parse → service/registry → serialize).

Expects ``request.app.state.ivr`` to be the :class:`~ivr.service.IvrService`
(set by the composition root). Mount with ``app.include_router(router)``.

* ``POST /api/dialplans/reload`` → 200 ``{ok: true, changed, versions, warnings}``
  or 422 ``{ok: false, errors: ["file:line:col: message", ...]}`` (previous version keeps serving)
* ``GET /api/dialplans`` → active versions and every stored version per flow
* ``POST /api/dialplans/{flow}/rollback`` ``{"hash": "<hash or 6+ char prefix>"}``
* ``GET /api/dialplans/{flow}/versions/{hash}`` → one stored version: source, checker result
* ``GET /api/dialplans/{flow}/diff?a=<hash>&b=<hash>`` → unified diff of two stored versions
* ``GET /api/dialplans/{flow}/graph.svg[?hash=]`` → the flow graph (Graphviz, server-side; default: active)
* ``GET /api/ivr/sessions/{uniqueid}`` → the last IVR session of a call: context + step log
* ``GET /api/ivr/stats[?since=ISO]`` → outcomes, containment, drop-off by node

Reload and rollback change what every caller hears: ``dialplans.admin`` (ops, admin),
audited. Reading versions ``dialplans.read``; sessions and stats ``ivr.read``
(permission table: :mod:`auth.permissions`; tokens: :mod:`api.auth`).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import difflib

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi import Path as PathParam
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


HASH_PATTERN = r"^[0-9a-f]+$"


async def _inspect(request: Request, flow: str, hash: str) -> tuple[Any, Any, list[Any]]:
    found = await _service(request).registry.inspect_version(flow, hash)
    if found is None:
        raise HTTPException(404, f"no stored version {hash!r} of flow {flow!r} (or the prefix is ambiguous)")
    return found


@router.get("/api/dialplans/{flow}/versions/{hash}")
async def dialplan_version(
    flow: str,
    request: Request,
    hash: str = PathParam(min_length=6, max_length=64, pattern=HASH_PATTERN),
    p: Principal = Depends(require("dialplans.read")),
) -> dict[str, Any]:
    version, _, problems = await _inspect(request, flow, hash)
    registry = _service(request).registry
    active = registry.loaded and registry.current.versions.get(flow) == version.hash
    return {
        **version.summary(),
        "active": active,
        "source": version.source,
        "check": {
            "ok": not [x for x in problems if x.severity == "error"],
            "errors": [str(x) for x in problems if x.severity == "error"],
            "warnings": [str(x) for x in problems if x.severity != "error"],
        },
    }


@router.get("/api/dialplans/{flow}/diff")
async def dialplan_diff(
    flow: str,
    request: Request,
    a: str = Query(min_length=6, max_length=64, pattern=HASH_PATTERN),
    b: str = Query(min_length=6, max_length=64, pattern=HASH_PATTERN),
    p: Principal = Depends(require("dialplans.read")),
) -> dict[str, Any]:
    va, _, _ = await _inspect(request, flow, a)
    vb, _, _ = await _inspect(request, flow, b)
    lines = difflib.unified_diff(
        va.source.splitlines(keepends=True), vb.source.splitlines(keepends=True),
        fromfile=f"{flow} {va.hash[:12]}", tofile=f"{flow} {vb.hash[:12]}",
    )
    return {"flow": flow, "a": va.hash, "b": vb.hash, "diff": "".join(lines)}


@router.get("/api/dialplans/{flow}/graph.svg", response_class=Response)
async def dialplan_graph(
    flow: str, request: Request, hash: str | None = Query(None, min_length=6, max_length=64, pattern=HASH_PATTERN),
    p: Principal = Depends(require("dialplans.read")),
) -> Response:
    from ivr.graph import GraphvizMissing, render_svg, to_dot

    registry = _service(request).registry
    if hash is None:
        parsed = registry.current.flows.get(flow) if registry.loaded else None
        if parsed is None:
            raise HTTPException(404, f"no active flow {flow!r}")
    else:
        _, parsed, problems = await _inspect(request, flow, hash)
        if parsed is None:
            raise HTTPException(422, "that version does not parse: " + "; ".join(str(x) for x in problems[:5]))
    try:
        svg = await render_svg(to_dot(parsed))
    except GraphvizMissing as exc:
        raise HTTPException(503, str(exc)) from None
    except RuntimeError as exc:
        raise HTTPException(502, str(exc)) from None
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "no-store"})


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
