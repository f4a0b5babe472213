"""CTI REST + websocket edge. Handlers stay thin: parse → service → serialize.

Each handler calls the feature service it needs on ``request.app.state.cti`` (the
:class:`cti.service.CtiService` assembly: ``.agents``, ``.calls``, ``.outbound``, …),
the caller comes from :mod:`api.auth`. Domain errors become clear HTTP errors
(404 no such call/agent, 409 wrong state, 403, 422, 502/503 when Asterisk
fails or is not connected) through :class:`CtiRoute`, never a 500.

Include every router of :func:`routers` in the app.

Over 500 lines on purpose: it is the whole CTI HTTP edge (request bodies, ~60
handlers of 2-5 lines each, the websocket), one place where the error mapping
and the permissions of every CTI route can be read together.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any, Callable, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response, WebSocket
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import Field

from cti.ami.actions import AmiValueError
from api.auth import Principal, public, require
from audit.service import record_from
from auth import scope
from auth.masking import mask_numbers
from auth.routes import AgentLogin as LoginBody, Strict  # one login body, one strict base for every edge
from cti.errors import CtiError, Forbidden, Invalid, NotFound
from cti.service import CtiService
from cti.state import QueueSettings
from ivr.ports import CallbackRequest
from cti import desk_socket

log = logging.getLogger("callcore.cti.routes")


class CtiRoute(APIRoute):
    """Maps service errors to HTTP answers for every CTI route."""

    def get_route_handler(self) -> Callable[..., Any]:
        handler = super().get_route_handler()

        async def wrapped(request: Request) -> Response:
            try:
                return await handler(request)
            except CtiError as exc:
                return JSONResponse({"detail": exc.message}, status_code=exc.status)
            except AmiValueError as exc:
                return JSONResponse({"detail": str(exc)}, status_code=422)

        return wrapped


def svc(request: Request) -> CtiService:
    return request.app.state.cti


def _self_or_supervisor(p: Principal, agent_id: str, request: Request) -> None:
    if not p.may_act_for(agent_id):
        raise Forbidden("agents may only act for themselves")
    _supervised(p, agent_id, request)


def _supervised(p: Principal, agent_id: str, request: Request) -> None:
    """A supervisor limited to queues or teams acts only on the agents in them (auth/scope.py)."""
    if p.agent_id == agent_id or not (p.queues or p.teams):
        return
    if not scope.supervises(p, svc(request).agents.agent_view(agent_id)):  # NotFound for an unknown agent
        raise Forbidden(f"agent {agent_id} is outside your queue/team scope")


# ------------------------------------------------------------------ bodies
# Strict request models (issue 11): unknown fields are refused (422), every integer and string
# is bounded, and names that reach Asterisk or the database never hold CR/LF or spaces.
AGENT_ID = r"^[A-Za-z0-9_.-]+$"
QUEUE = r"^[a-z][a-z0-9_-]*$"  # the dialplan contract: queue names start with a lowercase letter
INTERFACE = r"^[A-Za-z][A-Za-z0-9_-]*/[A-Za-z0-9_.@/:;+#*-]+$"  # Local/1001@agents/n, PJSIP/1005
EXTENSION = r"^[0-9A-Za-z*#+_-]+$"
CODE = r"^[A-Za-z0-9_.-]+$"
ONE_LINE = r"^[^\r\n\x00]*$"
SECONDS = 7 * 24 * 3600
DB_INT = 2**31 - 1

QueueName = Annotated[str, Field(min_length=1, max_length=80, pattern=QUEUE)]
Phone = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[0-9+*#() .-]+$")]


class SkillBody(Strict):
    queue: QueueName
    penalty: int = Field(0, ge=0, le=1000)


class AgentCreate(Strict):
    id: str = Field(min_length=1, max_length=64, pattern=AGENT_ID)
    name: str = Field(min_length=1, max_length=200, pattern=ONE_LINE)
    interface: str = Field(min_length=3, max_length=200, pattern=INTERFACE)
    extension: str | None = Field(None, min_length=1, max_length=32, pattern=EXTENSION)
    role: Literal["agent", "supervisor", "admin"] = "agent"
    skills: list[SkillBody] = Field(default_factory=list, max_length=200)
    pin: str | None = Field(None, min_length=4, max_length=32)
    team: str | None = Field(None, min_length=1, max_length=64, pattern=ONE_LINE, description="for supervisors' team scopes")


class AgentUpdate(Strict):
    name: str | None = Field(None, min_length=1, max_length=200, pattern=ONE_LINE)
    interface: str | None = Field(None, min_length=3, max_length=200, pattern=INTERFACE)
    extension: str | None = Field(None, min_length=1, max_length=32, pattern=EXTENSION)
    role: Literal["agent", "supervisor", "admin"] | None = None
    skills: list[SkillBody] | None = Field(None, max_length=200)
    pin: str | None = Field(None, min_length=4, max_length=32)
    team: str | None = Field(None, min_length=1, max_length=64, pattern=ONE_LINE)


class QueueLogin(Strict):
    queues: list[QueueName] | None = Field(None, max_length=200)


class PauseBody(Strict):
    reason: str = Field(min_length=1, max_length=64, pattern=CODE)


class PauseReasonBody(Strict):
    label: str | None = Field(None, max_length=200, pattern=ONE_LINE)
    active: bool = True


class TransferBody(Strict):
    type: Literal["agent", "queue", "number"]
    target: str = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_.+*#-]+$")


class DtmfBody(Strict):
    digits: str = Field(min_length=1, max_length=32, pattern=r"^[0-9A-Da-d*#]+$")


class DispositionBody(Strict):
    disposition: str | None = Field(None, max_length=80, pattern=ONE_LINE)
    notes: str | None = Field(None, max_length=10_000)


class ClickToCall(Strict):
    number: str = Field(min_length=1, max_length=32)
    customer_id: int | None = Field(None, ge=1, le=DB_INT)
    agent_id: str | None = Field(None, max_length=64, pattern=AGENT_ID)  # defaults to the caller


class CallbackCreate(Strict):
    number: Phone
    queue: QueueName
    caller_num: Phone | None = None
    call_id: str | None = Field(None, max_length=64, pattern=CODE)
    requested_time: str | None = Field(None, max_length=80, pattern=ONE_LINE)
    context: dict[str, Any] = Field(default_factory=dict, max_length=100)


class CustomerBody(Strict):
    name: str = Field(min_length=1, max_length=200, pattern=ONE_LINE)
    phone: Phone
    phones: list[Phone] = Field(default_factory=list, max_length=20)
    email: str | None = Field(None, max_length=200, pattern=ONE_LINE)
    company: str | None = Field(None, max_length=200, pattern=ONE_LINE)
    vip: bool = False
    language: str | None = Field(None, max_length=16, pattern=r"^[A-Za-z_-]+$")
    attributes: dict[str, Any] = Field(default_factory=dict, max_length=100)


class CustomerPatch(Strict):
    name: str | None = Field(None, min_length=1, max_length=200, pattern=ONE_LINE)
    phone: Phone | None = None
    phones: list[Phone] | None = Field(None, max_length=20)
    email: str | None = Field(None, max_length=200, pattern=ONE_LINE)
    company: str | None = Field(None, max_length=200, pattern=ONE_LINE)
    vip: bool | None = None
    language: str | None = Field(None, max_length=16, pattern=r"^[A-Za-z_-]+$")
    attributes: dict[str, Any] | None = Field(None, max_length=100)


class NoteBody(Strict):
    text: str = Field(min_length=1, max_length=10_000)
    call_id: str | None = Field(None, max_length=64, pattern=CODE)


class QueueSettingsBody(Strict):
    wrapup_seconds: int | None = Field(None, ge=0, le=SECONDS)
    service_level_seconds: int = Field(20, ge=1, le=SECONDS)
    overflow_queue: QueueName | None = None
    overflow_after_seconds: int | None = Field(None, ge=1, le=SECONDS)
    overflow_when_no_agent: bool = True
    callback_after_seconds: int | None = Field(300, ge=0, le=SECONDS)
    vip_priority: int = Field(10, ge=0, le=1000)
    repeat_priority: int = Field(5, ge=0, le=1000)
    default_handle_seconds: int = Field(180, ge=1, le=SECONDS)


class SpyBody(Strict):
    interface: str | None = Field(None, max_length=200, pattern=INTERFACE)  # the supervisor's phone; default: their agent record's


CustomerId = Annotated[int, Path(ge=1, le=DB_INT)]
QueuePath = Annotated[str, Path(min_length=1, max_length=80, pattern=QUEUE)]
Code = Annotated[str, Path(min_length=1, max_length=64, pattern=CODE)]


# ------------------------------------------------------------------ routers
auth_router = APIRouter(prefix="/api/auth", tags=["auth"], route_class=CtiRoute)
agents_router = APIRouter(prefix="/api", tags=["agents"], route_class=CtiRoute)
calls_router = APIRouter(prefix="/api/calls", tags=["calls"], route_class=CtiRoute)
callbacks_router = APIRouter(prefix="/api/callbacks", tags=["callbacks"], route_class=CtiRoute)
customers_router = APIRouter(prefix="/api/customers", tags=["customers"], route_class=CtiRoute)
queues_router = APIRouter(prefix="/api/queues", tags=["queues"], route_class=CtiRoute)
supervisor_router = APIRouter(prefix="/api/supervisor", tags=["supervisor"], route_class=CtiRoute)
ws_router = APIRouter(tags=["websocket"])


# shadowed in the assembled app by auth.routes (same paths, included first); kept for apps built from the CTI routers alone
@auth_router.post("/login", include_in_schema=False, dependencies=[Depends(public("the agent's PIN login"))])
async def login(body: LoginBody, request: Request) -> dict[str, Any]:
    token = await svc(request).agents.authenticate_agent(body.agent_id, body.pin)
    p = svc(request).authenticator.authenticate(token)
    return {"token": token, "agent_id": p.subject, "role": p.role}


@auth_router.get("/me", include_in_schema=False)
async def me(p: Principal = Depends(require("auth.self"))) -> dict[str, Any]:
    return {"subject": p.subject, "role": p.role, "agent_id": p.agent_id}


# ---- agents
@agents_router.get("/agents")
async def list_agents(request: Request, p: Principal = Depends(require("agents.read"))) -> list[dict[str, Any]]:
    agents = svc(request).agents.list_agents()
    if p.queues or p.teams:  # a scoped supervisor sees the agents of its queues/teams (and itself)
        agents = [a for a in agents if a["id"] == p.agent_id or scope.supervises(p, a)]
    return agents


@agents_router.post("/agents", status_code=201)
async def create_agent(body: AgentCreate, request: Request, p: Principal = Depends(require("agents.admin"))) -> dict[str, Any]:
    data = body.model_dump()
    data["skills"] = {s.queue: s.penalty for s in body.skills}
    agent = await svc(request).agents.create_agent(**data)
    await record_from(request, p, "agents.create", body.id, {"role": body.role, "pin_set": body.pin is not None})
    return agent


@agents_router.get("/agents/{agent_id}")
async def get_agent(agent_id: str, request: Request, p: Principal = Depends(require("agents.self"))) -> dict[str, Any]:
    _self_or_supervisor(p, agent_id, request)
    return svc(request).agents.agent_view(agent_id)


@agents_router.put("/agents/{agent_id}")
async def update_agent(agent_id: str, body: AgentUpdate, request: Request, p: Principal = Depends(require("agents.admin"))) -> dict[str, Any]:
    data = body.model_dump(exclude_none=True)
    if body.skills is not None:
        data["skills"] = {s.queue: s.penalty for s in body.skills}
    agent = await svc(request).agents.update_agent(agent_id, **data)
    await record_from(request, p, "agents.update", agent_id, {"fields": sorted(data)})
    return agent


@agents_router.delete("/agents/{agent_id}", status_code=204)
async def delete_agent(agent_id: str, request: Request, p: Principal = Depends(require("agents.admin"))) -> Response:
    await svc(request).agents.delete_agent(agent_id)
    await record_from(request, p, "agents.delete", agent_id)
    return Response(status_code=204)


@agents_router.post("/agents/{agent_id}/login")
async def agent_login(agent_id: str, request: Request, body: QueueLogin | None = None, p: Principal = Depends(require("agents.self"))) -> dict[str, Any]:
    _self_or_supervisor(p, agent_id, request)
    return await svc(request).agents.login(agent_id, body.queues if body else None, by=p.subject)


@agents_router.post("/agents/{agent_id}/logout")
async def agent_logout(agent_id: str, request: Request, p: Principal = Depends(require("agents.self"))) -> dict[str, Any]:
    _self_or_supervisor(p, agent_id, request)
    return await svc(request).agents.logout(agent_id, by=p.subject)


@agents_router.post("/agents/{agent_id}/pause")
async def agent_pause(agent_id: str, body: PauseBody, request: Request, p: Principal = Depends(require("agents.self"))) -> dict[str, Any]:
    _self_or_supervisor(p, agent_id, request)
    return await svc(request).agents.pause(agent_id, body.reason, by=p.subject)


@agents_router.post("/agents/{agent_id}/unpause")
async def agent_unpause(agent_id: str, request: Request, p: Principal = Depends(require("agents.self"))) -> dict[str, Any]:
    _self_or_supervisor(p, agent_id, request)
    return await svc(request).agents.unpause(agent_id, by=p.subject)


@agents_router.post("/agents/{agent_id}/ready")
async def agent_ready(agent_id: str, request: Request, p: Principal = Depends(require("agents.self"))) -> dict[str, Any]:
    _self_or_supervisor(p, agent_id, request)
    return await svc(request).agents.ready(agent_id, by=p.subject)


@agents_router.get("/agents/{agent_id}/current-call")
async def agent_current_call(agent_id: str, request: Request, p: Principal = Depends(require("agents.self"))) -> dict[str, Any]:
    _self_or_supervisor(p, agent_id, request)
    return {"agent_id": agent_id, "call": svc(request).agents.current_call(agent_id)}


@agents_router.get("/agents/{agent_id}/events")
async def agent_events(agent_id: str, request: Request, limit: int = Query(100, ge=1, le=1000), p: Principal = Depends(require("agents.self"))) -> list[dict[str, Any]]:
    _self_or_supervisor(p, agent_id, request)
    svc(request).agents.agent_view(agent_id)
    return await svc(request).repository.agent_events(agent_id, limit)


@agents_router.get("/pause-reasons")
async def pause_reasons(request: Request, p: Principal = Depends(require("pause_reasons.read"))) -> list[str]:
    return list(svc(request).agents.pause_reasons)


@agents_router.put("/pause-reasons/{code}")
async def put_pause_reason(code: Code, body: PauseReasonBody, request: Request, p: Principal = Depends(require("pause_reasons.admin"))) -> list[str]:
    result = await svc(request).agents.set_pause_reason(code, body.label or code, body.active)
    await record_from(request, p, "settings.pause_reason", code, {"label": body.label, "active": body.active})
    return result


# ---- calls
@calls_router.get("")
async def list_calls(request: Request, p: Principal = Depends(require("calls.read"))) -> list[dict[str, Any]]:
    return _numbers_for(request, p, svc(request).calls.list_calls(p))


@calls_router.get("/history")
async def call_history(
    request: Request,
    limit: int = Query(50, ge=1, le=500),
    agent_id: str | None = None,
    queue: str | None = None,
    p: Principal = Depends(require("calls.read")),
) -> list[dict[str, Any]]:
    if not p.can("calls.read_all"):
        agent_id = p.agent_id
    if queue is not None and not p.in_scope(queue):
        raise Forbidden(f"queue {queue} is outside your queues")
    rows = await svc(request).repository.list_calls(limit=limit, agent_id=agent_id, queue=queue)
    if p.queues:  # a user scoped to queues sees their queues' calls (and their own)
        rows = [r for r in rows if p.in_scope(r.get("queue")) or (p.agent_id and r.get("agent_id") == p.agent_id)]
    return _numbers_for(request, p, rows)


@calls_router.post("/click-to-call", status_code=202)
async def click_to_call(body: ClickToCall, request: Request, p: Principal = Depends(require("calls.dial"))) -> dict[str, Any]:
    agent_id = body.agent_id or p.agent_id
    if agent_id is None:
        raise Forbidden("click-to-call needs an agent")
    _self_or_supervisor(p, agent_id, request)
    return await svc(request).outbound.click_to_call(agent_id, body.number, customer_id=body.customer_id)


@calls_router.get("/{call_id}")
async def get_call(call_id: str, request: Request, p: Principal = Depends(require("calls.read"))) -> dict[str, Any]:
    return _numbers_for(request, p, await svc(request).calls.get_call(call_id, p))


@calls_router.post("/{call_id}/hangup", status_code=202)
async def hangup(call_id: str, request: Request, p: Principal = Depends(require("calls.control"))) -> dict[str, Any]:
    await svc(request).calls.hangup(call_id, p)
    return {"call_id": call_id, "status": "hanging_up"}


@calls_router.post("/{call_id}/transfer", status_code=202)
async def transfer(call_id: str, body: TransferBody, request: Request, p: Principal = Depends(require("calls.transfer"))) -> dict[str, Any]:
    return await svc(request).calls.transfer(call_id, p, body.type, body.target)


@calls_router.post("/{call_id}/atxfer", status_code=202)
async def atxfer(call_id: str, body: TransferBody, request: Request, p: Principal = Depends(require("calls.transfer"))) -> dict[str, Any]:
    return await svc(request).calls.atxfer(call_id, p, body.type, body.target)


@calls_router.post("/{call_id}/hold", status_code=202)
async def hold(call_id: str, request: Request, p: Principal = Depends(require("calls.control"))) -> dict[str, Any]:
    await svc(request).calls.hold(call_id, p)
    return {"call_id": call_id, "on_hold": True}


@calls_router.post("/{call_id}/unhold", status_code=202)
async def unhold(call_id: str, request: Request, p: Principal = Depends(require("calls.control"))) -> dict[str, Any]:
    await svc(request).calls.unhold(call_id, p)
    return {"call_id": call_id, "on_hold": False}


@calls_router.post("/{call_id}/dtmf", status_code=202)
async def dtmf(call_id: str, body: DtmfBody, request: Request, p: Principal = Depends(require("calls.control"))) -> dict[str, Any]:
    await svc(request).calls.dtmf(call_id, p, body.digits)
    return {"call_id": call_id, "digits": body.digits}


@calls_router.post("/{call_id}/disposition")
async def disposition(call_id: str, body: DispositionBody, request: Request, p: Principal = Depends(require("calls.disposition"))) -> dict[str, Any]:
    result = await svc(request).calls.set_disposition(call_id, p, body.disposition, body.notes)
    await record_from(request, p, "calls.disposition", call_id, {"disposition": body.disposition})
    return result


# ---- callbacks
@callbacks_router.get("")
async def list_callbacks(request: Request, status: str | None = None, p: Principal = Depends(require("callbacks.read"))) -> list[dict[str, Any]]:
    return await svc(request).callbacks.list_callbacks(p, status)


@callbacks_router.post("", status_code=201)
async def create_callback(body: CallbackCreate, request: Request, p: Principal = Depends(require("callbacks.create"))) -> dict[str, Any]:
    cb_id = await svc(request).callbacks.create_callback(
        CallbackRequest(body.call_id or "", body.caller_num, body.number, body.queue, body.requested_time, body.context)
    )
    return await svc(request).repository.get_callback(cb_id) or {"id": cb_id}


@callbacks_router.post("/{callback_id}/take")
async def take_callback(callback_id: str, request: Request, p: Principal = Depends(require("callbacks.take"))) -> dict[str, Any]:
    return await svc(request).callbacks.take_callback(p, callback_id)


@callbacks_router.post("/{callback_id}/dial", status_code=202)
async def dial_callback(callback_id: str, request: Request, p: Principal = Depends(require("callbacks.take"))) -> dict[str, Any]:
    return await svc(request).callbacks.dial_callback(p, callback_id)


# ---- customers (the built-in CRM; other parts call GET /api/customers/lookup)
# security (issue 11): agents without customers.read_all see only the customers of their own calls
# (setting agents_see_own_customers_only); sensitive attributes come masked unless customers.sensitive.
async def _own_customers(request: Request, p: Principal) -> set[int] | None:
    """None: every customer; else the ids this caller may see."""
    settings = getattr(request.app.state, "settings", None)
    if p.can("customers.read_all") or not getattr(settings, "agents_see_own_customers_only", True):
        return None
    if p.agent_id is None:
        return set()
    service = svc(request)
    ids = await service.repository.customer_ids_of_agent(p.agent_id)
    live = service.state.call_for_agent(p.agent_id)
    if live is not None and isinstance((live.customer or {}).get("id"), int):
        ids.add(live.customer["id"])
    return ids


async def _visible(request: Request, p: Principal, customer_id: int) -> None:
    own = await _own_customers(request, p)
    if own is not None and customer_id not in own:
        raise NotFound(f"no such customer: {customer_id}")  # not 403: do not confirm that it exists


@customers_router.get("")
async def list_customers(
    request: Request, q: str | None = Query(None, max_length=200), limit: int = Query(100, ge=1, le=1000),
    p: Principal = Depends(require("customers.read")),
) -> list[dict[str, Any]]:
    rows = await svc(request).repository.list_customers(
        q=q, limit=limit, only_ids=await _own_customers(request, p), reveal=p.can("customers.sensitive")
    )
    return _numbers_for(request, p, rows)


@customers_router.get("/lookup")
async def lookup_customer(request: Request, phone: str = Query(min_length=1, max_length=64), p: Principal = Depends(require("customers.read"))) -> dict[str, Any]:
    customer = await svc(request).customers.customer_lookup(phone)
    await _visible(request, p, customer.get("id"))  # type: ignore[arg-type]
    return _numbers_for(request, p, customer)


@customers_router.post("", status_code=201)
async def create_customer(body: CustomerBody, request: Request, p: Principal = Depends(require("customers.write"))) -> dict[str, Any]:
    c = await svc(request).repository.create_customer(**body.model_dump(), reveal=p.can("customers.sensitive"))
    await record_from(request, p, "customers.create", c["id"])
    return c


@customers_router.get("/{customer_id}")
async def get_customer(customer_id: CustomerId, request: Request, p: Principal = Depends(require("customers.read"))) -> dict[str, Any]:
    await _visible(request, p, customer_id)
    c = await svc(request).repository.get_customer(customer_id, reveal=p.can("customers.sensitive"))
    if c is None:
        return JSONResponse({"detail": f"no such customer: {customer_id}"}, status_code=404)  # type: ignore[return-value]
    return _numbers_for(request, p, c)


@customers_router.put("/{customer_id}")
async def update_customer(customer_id: CustomerId, body: CustomerPatch, request: Request, p: Principal = Depends(require("customers.write"))) -> dict[str, Any]:
    await _visible(request, p, customer_id)
    fields = body.model_dump(exclude_none=True)
    if any("*" in n for n in [fields.get("phone") or "", *(fields.get("phones") or [])]):
        raise Invalid("a masked number (with '*') cannot be saved: send the full number or leave the field out")
    c = await svc(request).repository.update_customer(customer_id, **fields, reveal=p.can("customers.sensitive"))
    if c is None:
        return JSONResponse({"detail": f"no such customer: {customer_id}"}, status_code=404)  # type: ignore[return-value]
    await record_from(request, p, "customers.update", customer_id, {"fields": sorted(fields)})
    return c


@customers_router.delete("/{customer_id}", status_code=204)
async def delete_customer(customer_id: CustomerId, request: Request, p: Principal = Depends(require("customers.delete"))) -> Response:
    if not await svc(request).repository.delete_customer(customer_id):
        return JSONResponse({"detail": f"no such customer: {customer_id}"}, status_code=404)
    await record_from(request, p, "customers.delete", customer_id)
    return Response(status_code=204)


@customers_router.post("/{customer_id}/notes", status_code=201)
async def add_note(customer_id: CustomerId, body: NoteBody, request: Request, p: Principal = Depends(require("customers.write"))) -> dict[str, Any]:
    await _visible(request, p, customer_id)
    note = await svc(request).repository.add_customer_note(customer_id, body.text, author=p.subject, call_id=body.call_id)
    if note is None:
        return JSONResponse({"detail": f"no such customer: {customer_id}"}, status_code=404)  # type: ignore[return-value]
    await record_from(request, p, "customers.note", customer_id)
    return note


# ---- queues
@queues_router.get("")
async def list_queues(request: Request, p: Principal = Depends(require("queues.read"))) -> list[dict[str, Any]]:
    return svc(request).queues.queue_views()


@queues_router.put("/{name}/settings")
async def put_queue_settings(name: QueuePath, body: QueueSettingsBody, request: Request, p: Principal = Depends(require("queues.admin"))) -> dict[str, Any]:
    result = await svc(request).queues.queue_settings_update(QueueSettings(name=name, **body.model_dump()))
    await record_from(request, p, "queues.settings", name, body.model_dump())
    return result


# ---- supervisor
# the literal force-* paths first: /agents/{agent_id}/{mode} would match them (422)
@supervisor_router.post("/agents/{agent_id}/force-logout")
async def force_logout(agent_id: str, request: Request, p: Principal = Depends(require("agents.supervise"))) -> dict[str, Any]:
    _supervised(p, agent_id, request)
    result = await svc(request).agents.logout(agent_id, force=True, by=p.subject)
    await record_from(request, p, "agents.force_logout", agent_id)
    return result


@supervisor_router.post("/agents/{agent_id}/force-pause")
async def force_pause(agent_id: str, body: PauseBody, request: Request, p: Principal = Depends(require("agents.supervise"))) -> dict[str, Any]:
    _supervised(p, agent_id, request)
    result = await svc(request).agents.pause(agent_id, body.reason, by=p.subject)
    await record_from(request, p, "agents.force_pause", agent_id, {"reason": body.reason})
    return result


@supervisor_router.post("/agents/{agent_id}/{mode}", status_code=202)
async def spy(
    agent_id: str, mode: Literal["listen", "whisper", "barge"], request: Request, body: SpyBody | None = None,
    p: Principal = Depends(require("calls.spy")),
) -> dict[str, Any]:
    _supervised(p, agent_id, request)
    result = await svc(request).supervision.spy(p, agent_id, mode, body.interface if body else None)  # the AMI action first
    await record_from(request, p, f"calls.{mode}", agent_id, {"call_id": result.get("call_id") if isinstance(result, dict) else None})
    return result


# ---- websocket
# the session itself is cti/desk_socket.py (issue 18 round five); the assembled app serves /ws in
# front of its middleware (desk_socket.install), this route serves apps built from routers() alone
allowed_keys = desk_socket.allowed_keys
_masks_numbers = desk_socket.masks_numbers
_encode_message, _masked_encoder, _scoped_encoder = desk_socket.encode_message, desk_socket.masked_encoder, desk_socket.scoped_encoder


def _numbers_for(request: Request, p: Principal, data: Any) -> Any:
    """Call views with caller numbers masked for the roles in ``mask_numbers_for_roles``."""
    return mask_numbers(data) if _masks_numbers(request, p) else data


@ws_router.websocket("/ws")
async def websocket(ws: WebSocket) -> None:
    await desk_socket.serve_session(ws, ws._receive, ws._send)


ALL_ROUTERS: tuple[APIRouter, ...] = (
    auth_router,
    agents_router,
    calls_router,
    callbacks_router,
    customers_router,
    queues_router,
    supervisor_router,
    ws_router,
)


def routers() -> list[APIRouter]:
    """Every CTI router, to include in the app (the app must set ``app.state.cti``)."""
    return list(ALL_ROUTERS)
