"""Outbox REST edge (permission settings.admin: admins only): the deliveries and their state; put a dead one back."""

from __future__ import annotations

import time
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from api.auth import Principal, require
from outbox.repository import OutboxRepository

router = APIRouter(prefix="/api/webhooks", tags=["webhooks"])


def _repo(request: Request) -> OutboxRepository:
    repo = getattr(request.app.state, "outbox", None)
    if repo is None:
        raise HTTPException(404, "no webhook outbox in this process")
    return repo


@router.get("/deliveries")
async def deliveries(
    request: Request,
    status: Literal["pending", "delivered", "dead"] | None = None,
    limit: int = Query(100, ge=1, le=1000),
    p: Principal = Depends(require("settings.admin")),
) -> dict[str, Any]:
    repo = _repo(request)
    rows = await repo.list(status, limit)
    return {"deliveries": [r.to_dict() for r in rows], "counts": await repo.counts()}


@router.post("/deliveries/{delivery_id}/retry", status_code=202)
async def retry(delivery_id: str, request: Request, p: Principal = Depends(require("settings.admin"))) -> dict[str, Any]:
    if not await _repo(request).requeue(delivery_id, time.time()):
        raise HTTPException(404, f"no dead delivery {delivery_id!r}")
    return {"id": delivery_id, "status": "pending"}
