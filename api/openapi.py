"""The OpenAPI description of the running app (issue 20): every route gets a summary,
who may call it (its permission and the roles that hold it, read from the same
``require(...)``/``public(...)`` dependencies that enforce it — ``api.auth.declared_permissions``)
and the error answers it can give; the outgoing events of ``cti/events.yml`` are listed
as OpenAPI ``webhooks`` (the same frames go to websocket clients), with an example screen
pop produced by the real :class:`cti.pops.PopBuilder`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import yaml
from fastapi import FastAPI
from fastapi.routing import APIRoute

from api.auth import declared_permissions
from auth.permissions import PERMISSIONS, ROLE_PERMISSIONS, ROLES

EVENTS_FILE = Path(__file__).resolve().parents[1] / "cti" / "events.yml"

_ERRORS = {
    "401": "No credential, or an expired/invalid one (`Authorization: Bearer …`, session cookie or API key)",
    "403": "The credential lacks the permission above, or the object is outside its queues/agent",
    "404": "No such object",
    "409": "The object is in the wrong state for this action",
    "413": "Request body larger than `http_max_body_bytes`",
    "422": "The request does not validate (the answer names the field)",
    "502": "Asterisk refused the action (the answer carries its message)",
    "503": "Asterisk (AMI) is not connected, or this process runs without the AMI part",
}


def roles_holding(permission: str) -> list[str]:
    return [r for r in ROLES if permission in ROLE_PERMISSIONS.get(r, ())]


def access_text(route: APIRoute) -> tuple[str, bool]:
    """The "who may call it" paragraph, and whether the route is public."""
    perms, roles, public = declared_permissions(route.dependant)
    if public and not perms and not roles:
        return f"**Access:** public — {public}.", True
    lines = []
    for perm in sorted(perms):
        lines.append(f"**Requires permission** `{perm}` — roles: {', '.join(roles_holding(perm))}. ({PERMISSIONS[perm]})")
    for role in sorted(roles):
        lines.append(f"**Requires role** `{role}` (or admin).")
    return "\n\n".join(lines) or "**Access:** any authenticated caller.", False


def _summary(route: APIRoute) -> str:
    doc = (route.endpoint.__doc__ or "").strip()
    if doc:
        return doc.splitlines()[0].rstrip(".")
    return route.name.replace("_", " ").capitalize()


def _errors(route: APIRoute, public: bool) -> dict[str, str]:
    codes: list[str] = [] if public else ["401", "403"]
    if route.dependant.path_params:
        codes.append("404")
    has_input = bool(route.body_field or route.dependant.query_params or route.dependant.path_params)
    if route.body_field is not None:
        codes.append("413")
    if has_input:
        codes.append("422")
    if route.__class__.__name__ == "CtiRoute" and route.methods - {"GET", "HEAD"}:
        codes += ["409", "502", "503"]  # cti.errors: Conflict, AmiFailed, AmiUnavailable
    return {c: _ERRORS[c] for c in codes}


def api_routes(routes: Any, prefix: str = "") -> Iterator[tuple[str, APIRoute]]:
    """``(full path, route)`` of every HTTP route, through included routers (FastAPI keeps
    them nested as ``_IncludedRouter`` with the prefix in ``include_context``)."""
    for r in routes:
        inner = getattr(r, "original_router", None)
        if inner is not None:
            yield from api_routes(inner.routes, prefix + (r.include_context.prefix or ""))
        elif isinstance(r, APIRoute):
            yield prefix + r.path, r


def document_routes(app: FastAPI, schema: dict[str, Any]) -> dict[str, Any]:
    """Summary, access paragraph and error answers into every operation of ``schema``."""
    paths = schema.get("paths", {})
    for path, route in api_routes(app.routes):
        access, public = access_text(route)
        errors = _errors(route, public)
        for method in route.methods:
            op = paths.get(path, {}).get(method.lower())
            if op is None:  # include_in_schema=False
                continue
            if not route.summary:  # FastAPI's default is the function name, title-cased
                op["summary"] = _summary(route)
            op["description"] = f"{access}\n\n{op.get('description', '')}".strip()
            responses = op.setdefault("responses", {})
            for code, text in errors.items():
                responses.setdefault(code, {"description": text})
    return schema


def example_pop() -> dict[str, Any]:
    """A screen pop as :class:`cti.pops.PopBuilder` builds it (fictional caller)."""
    from cti.pops import PopBuilder
    from cti.state import Call

    call = Call(
        id="1733112000.101", started_at=1733112000.0, caller_num="01012345678", caller_name="홍길동", dialed="15881234",
        status="ringing", queue="billing", queued_at=1733112012.0, priority=0,
        customer={"id": 42, "name": "홍길동", "phone": "01012345678", "vip": False, "notes": [], "previous_calls": []},
        ivr_context={"flow": "main", "path": ["main:menu", "main:billing_queue"], "digits": "12", "language": "ko"},
    )
    return PopBuilder(lambda: 1733112020.0).pop(call, "1001", 1733112020.0)


def add_event_docs(schema: dict[str, Any]) -> dict[str, Any]:
    """``cti/events.yml`` as OpenAPI webhooks, with the screen-pop schema and a real example."""
    doc = yaml.safe_load(EVENTS_FILE.read_text(encoding="utf-8"))
    pop_fields = doc["schemas"]["pop"]
    pop = example_pop()
    comps = schema.setdefault("components", {}).setdefault("schemas", {})
    comps["ScreenPop"] = {
        "type": "object",
        "description": "The screen-pop payload of call.ringing, call.answered, call.updated, call.ended (cti/events.yml)",
        "properties": {k: {"description": str(v)} for k, v in pop_fields.items()},
        "example": pop,
    }
    hooks = schema.setdefault("webhooks", {})
    for event in doc["events"]:
        payload = event["payload"]
        is_pop = set(pop_fields) <= set(payload)
        example_payload = {**pop, **{k: v for k, v in payload.items() if k not in pop_fields}} if is_pop else payload
        body_schema: dict[str, Any] = {"type": "object", "properties": {
            "event": {"type": "string", "enum": [event["name"]]},
            "payload": {"$ref": "#/components/schemas/ScreenPop"} if is_pop else {
                "type": "object", "properties": {k: {"description": str(v)} for k, v in payload.items()}},
            "sent_at": {"type": "number", "description": "webhooks only: epoch seconds"},
        }}
        hooks[event["name"]] = {"post": {
            "summary": f"{event['name']} — {event['when'].split(':')[0]}"[:120],
            "description": (
                f"When: {event['when']}\n\nWebsocket audience (bus keys): {', '.join(event['audience'])}.\n\n"
                "Websocket frames are `{\"event\", \"payload\"}`; webhooks POST `{\"event\", \"payload\", \"sent_at\"}` "
                "signed with `X-Callcore-Signature: sha256=<hex HMAC-SHA256(secret, body)>`."
            ),
            "requestBody": {"content": {"application/json": {
                "schema": body_schema,
                "example": {"event": event["name"], "payload": example_payload, "sent_at": 1733112020.0},
            }}},
            "responses": {"200": {"description": "any 2xx: delivered; otherwise retried with back-off"}},
        }}
    return schema


def install(app: FastAPI) -> None:
    """Replace ``app.openapi`` with one that documents routes and events first."""
    default = app.openapi

    def openapi() -> dict[str, Any]:
        if not getattr(app, "_callcore_documented", False) or app.openapi_schema is None:
            app.openapi_schema = add_event_docs(document_routes(app, default()))
            app._callcore_documented = True  # type: ignore[attr-defined]
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
