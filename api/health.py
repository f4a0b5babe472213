"""Liveness, readiness and metrics endpoints."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from api.auth import public

router = APIRouter(tags=["health"], dependencies=[Depends(public("health probes and Prometheus metrics"))])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up and serving HTTP."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Ready when the database answers. The AMI link is reported honestly but does not
    make the API unready: agents can still log in, QA can still score calls."""
    report = await request.app.state.container.readiness()
    return JSONResponse(report, status_code=200 if report["ready"] else 503)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    return Response(request.app.state.container.metrics.render(), media_type=CONTENT_TYPE_LATEST)
