"""HTTP edge of the browser UI (thin: files and small read views for the page).

* ``GET /`` → the one page (``web/static/index.html``): sign-in, then the screen of the role
* ``/static/...`` → the page's ES modules, CSS and the vendored Swagger UI (no CDN)
* ``GET /docs`` → Swagger UI from the vendored assets (works without internet)
* ``GET /api/web/config`` → disposition codes, pause reasons with labels, wallboard thresholds
* ``GET /api/web/directory`` → agents and queues for the transfer picker (``calls.transfer``)
* ``POST /api/web/follow-ups`` → after a call, the agent books a callback at a time for themselves
  (a callback task created for the call's queue and taken by the agent at once)
* ``GET /api/web/queue-settings`` → every queue's settings as they apply now (the admin form)
* ``GET /api/web/wallboard`` → the wallboard now (``queues.monitor``; the page's resync after a reconnect;
  updates then come as ``wallboard.update`` over ``/ws``)

Expects ``request.app.state.web`` (:class:`web.service.WebService`) and ``.cti``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from api.auth import Principal, public, require
from auth import scope
from cti.routes import CtiRoute  # CTI's errors (404/409/422/503) become clear HTTP answers here too

STATIC_DIR = Path(__file__).with_name("static")

router = APIRouter(tags=["web"], route_class=CtiRoute)


def _web(request: Request) -> Any:
    web = getattr(request.app.state, "web", None)
    if web is None:
        raise HTTPException(503, "the web UI service is not running in this process")
    return web


def _cti(request: Request) -> Any:
    cti = getattr(request.app.state, "cti", None)
    if cti is None:
        raise HTTPException(503, "CTI is not running in this process")
    return cti


@router.get("/", include_in_schema=False, dependencies=[Depends(public("the page itself: it signs in"))])
async def index() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html", headers={"Cache-Control": "no-cache"})


@router.get("/docs", include_in_schema=False, dependencies=[Depends(public("API docs (the schema at /openapi.json is public too)"))])
async def docs(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    return get_swagger_ui_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title} — API",
        swagger_js_url=f"{root}/static/vendor/swagger-ui/swagger-ui-bundle.js",
        swagger_css_url=f"{root}/static/vendor/swagger-ui/swagger-ui.css",
        swagger_favicon_url=f"{root}/static/favicon.svg",
        oauth2_redirect_url=None,
    )


@router.get("/api/web/config")
async def web_config(request: Request, p: Principal = Depends(require("auth.self"))) -> dict[str, Any]:
    return _web(request).public_config()


@router.get("/api/web/directory")
async def directory(request: Request, p: Principal = Depends(require("calls.transfer"))) -> dict[str, Any]:
    cti = _cti(request)
    agents = [
        {"agent_id": a["id"], "name": a.get("name"), "extension": a.get("extension"), "status": a.get("status")}
        for a in cti.agents.list_agents()
    ]
    return {"agents": agents, "queues": [q["queue"] for q in cti.queues.queue_views()]}


@router.get("/api/web/queue-settings")
async def queue_settings(request: Request, p: Principal = Depends(require("queues.admin"))) -> list[dict[str, Any]]:
    import dataclasses

    cti = _cti(request)
    names = {q["queue"] for q in cti.queues.queue_views()}
    for a in cti.agents.list_agents():
        names.update(sk["queue"] for sk in a.get("skills") or [])
    return [dataclasses.asdict(cti.state.settings_for(name)) for name in sorted(names)]


class FollowUp(BaseModel):
    call_id: str = Field(min_length=1, max_length=120)
    number: str = Field(min_length=3, max_length=32, pattern=r"^\+?[0-9]+$")
    requested_time: str = Field(min_length=1, max_length=40)  # ISO time the agent picked
    queue: str | None = Field(None, min_length=1, max_length=80)
    note: str | None = Field(None, max_length=2000)


@router.post("/api/web/follow-ups", status_code=201)
async def follow_up(body: FollowUp, request: Request, p: Principal = Depends(require("calls.disposition", "callbacks.take"))) -> dict[str, Any]:
    from ivr.ports import CallbackRequest

    cti = _cti(request)
    live = cti.state.get_call(body.call_id)
    call = live.to_dict() if live is not None else await cti.repository.get_call(body.call_id)
    if call is None:
        raise HTTPException(404, f"no such call: {body.call_id}")
    handled_by = {call.get("agent_id")} | {leg.get("agent_id") for leg in call.get("legs") or [] if isinstance(leg, dict)}
    if not p.is_supervisor and (p.agent_id is None or p.agent_id not in handled_by):
        raise HTTPException(403, "only the agent of the call books its follow-up")
    queue = body.queue or call.get("queue")
    if p.agent_id:
        # the follow-up stays with the agent: on a queue they serve (their callback list shows
        # the tasks of their queues), the call's own queue when they serve it
        skills = [sk["queue"] for sk in cti.agents.agent_view(p.agent_id).get("skills") or []]
        if skills and queue not in skills:
            queue = skills[0]
    if not queue:
        raise HTTPException(422, "the call had no queue: give one")
    context = {"follow_up": True, "note": body.note, "booked_by": p.subject, "call_queue": call.get("queue")}
    cb_id = await cti.callbacks.create_callback(CallbackRequest(body.call_id, call.get("caller_num"), body.number, queue, body.requested_time, context))
    if p.agent_id:
        return await cti.callbacks.take_callback(p, cb_id)
    return await cti.repository.get_callback(cb_id) or {"id": cb_id}


@router.get("/api/web/wallboard")
async def wallboard(request: Request, p: Principal = Depends(require("queues.monitor"))) -> dict[str, Any]:
    board = _web(request).wallboard()
    if p.queues or p.teams:  # a scoped supervisor reads only its queues and agents (auth/scope.py), as on /ws
        cti = getattr(request.app.state, "cti", None)
        board = scope.wallboard_in_scope(p, board, cti.agents.list_agents() if cti is not None else [])
    return board


def mount(app: FastAPI) -> None:
    """Add the UI to an app: the router and the static files (called by ``api.app.create_app``)."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
