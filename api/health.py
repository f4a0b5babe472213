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
    """Ready (200) when the database answers, the AMI link is up (when this process runs
    the AMI part) and bookkeeping is not backing up; else 503 with ``reasons``
    (callcore/readiness.py). ``/healthz`` is the liveness probe."""
    report = await request.app.state.container.readiness()
    return JSONResponse(report, status_code=200 if report["ready"] else 503)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    return Response(request.app.state.container.metrics.render(), media_type=CONTENT_TYPE_LATEST)
