"""``GET /api/audit`` (admins: ``audit.read``) and ``GET /api/audit/verify``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from api.auth import Principal, require

router = APIRouter(tags=["audit"])


@router.get("/api/audit")
async def list_audit(
    request: Request,
    actor: str | None = Query(None, max_length=120),
    action: str | None = Query(None, max_length=80, description="exact action, or a prefix ending in '.' (e.g. 'auth.')"),
    target: str | None = Query(None, max_length=200),
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: int | None = Query(None, ge=1, le=2**62),
    limit: int = Query(100, ge=1, le=1000),
    p: Principal = Depends(require("audit.read")),
) -> list[dict[str, Any]]:
    """Newest first; page with ``before_id`` = the last id of the previous page."""
    return await request.app.state.audit.query(
        actor=actor, action=action, target=target, since=since, until=until, limit=limit, before_id=before_id
    )


@router.get("/api/audit/verify")
async def verify_audit(request: Request, p: Principal = Depends(require("audit.read"))) -> dict[str, Any]:
    return (await request.app.state.audit.verify()).as_dict()
