"""Authentication and authorization at the REST/websocket edge — the ONE place.

Every route declares the permission it needs::

    @router.post("/api/calls/{call_id}/transfer")
    async def transfer(..., p: Principal = Depends(require("calls.transfer"))): ...

:func:`require` checks the caller's credential and that the caller's role grants the
permission (table: :mod:`auth.permissions`); failures are 401 (no/invalid credential)
or 403 (``permission <name> required``). Routes anyone may call (health probes, the
login itself) declare :func:`public` instead. A route that declares neither fails the
role × route test (tests/unit/auth/test_route_permissions.py), which is generated from
the assembled app's own route list.

Credentials, in the order they are looked for:

* ``Authorization: Bearer <access token | API key>`` (or ``X-Callcore-Token``);
* the browser session cookie ``callcore_session`` (HttpOnly, SameSite=Strict) — unsafe
  methods (POST, PUT, PATCH, DELETE) must echo the session's CSRF token in
  ``X-CSRF-Token`` (returned by ``POST /api/auth/session`` and ``GET /api/auth/me``);
* the legacy ``?token=`` query parameter (redacted from every log line by :mod:`callcore.logs`);
* websocket also: the subprotocol ``bearer.<token>`` (offer ``["callcore", "bearer.<token>"]``),
  the cookie, or a first message ``{"auth": "<token>"}``.

The :class:`~auth.tokens.Authenticator` is found at ``app.state.authenticator`` (apps
built in tests may set ``app.state.cti`` with an ``authenticator`` instead).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

from fastapi import HTTPException, Request, WebSocket

from auth.permissions import PERMISSIONS, ROLES
from auth.tokens import (  # re-exported: every package imports these from api.auth
    AuthError,
    Authenticator,
    KeyRing,
    Principal,
    issue_token,
    verify_token,
)

__all__ = [
    "AuthError", "Authenticator", "KeyRing", "Principal", "issue_token", "verify_token", "ROLES",
    "principal", "require", "public", "websocket_principal", "websocket_login", "SESSION_COOKIE", "CSRF_HEADER",
]

SESSION_COOKIE = "callcore_session"
CSRF_HEADER = "x-csrf-token"
WS_SUBPROTOCOL = "callcore"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _authenticator(state: Any) -> Authenticator:
    auth = getattr(state, "authenticator", None)
    if auth is None:
        auth = state.cti.authenticator
    return auth


def _bearer(headers: Mapping[str, str]) -> str | None:
    auth = headers.get("authorization")
    if auth and auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return headers.get("x-callcore-token") or headers.get("x-api-key")


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


def principal(request: Request) -> Principal:
    """FastAPI dependency: the authenticated caller, or HTTP 401 (403 on a CSRF failure).

    Declares no permission by itself: routes use :func:`require`."""
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    auth = _authenticator(request.app.state)
    # ?token= is the pre-issue-11 form (kept for old clients; redacted from every log line)
    token = _bearer(request.headers) or request.query_params.get("token")
    try:
        if token:
            p = auth.authenticate(token)
        elif request.cookies.get(SESSION_COOKIE):
            p = auth.authenticate(request.cookies[SESSION_COOKIE], typ="session")
            if request.method not in _SAFE_METHODS:
                sent = request.headers.get(CSRF_HEADER) or ""
                if not p.csrf or not hmac.compare_digest(sent, p.csrf):
                    raise HTTPException(403, "CSRF token missing or wrong (send X-CSRF-Token from GET /api/auth/me)")
        else:
            raise AuthError("missing token")
    except AuthError as exc:
        raise _unauthorized(str(exc)) from None
    request.state.principal = p
    return p


def require(*names: str) -> Callable[[Request], Principal]:
    """Dependency factory: the caller must hold every permission in ``names``.

    ``require("calls.transfer")``. Bare role names (``require("supervisor")``) are the
    pre-issue-11 form: still enforced (the role or admin), but the role × route test
    fails such a route until it declares a permission."""
    if not names:
        raise ValueError("require() needs a permission name, e.g. require('calls.read')")
    perms = tuple(n for n in names if "." in n)
    roles = tuple(n for n in names if "." not in n)
    unknown = [n for n in perms if n not in PERMISSIONS] + [r for r in roles if r not in ROLES]
    if unknown:
        raise ValueError(f"require(): unknown permission/role {unknown}; add it to auth/permissions.py")

    def dep(request: Request) -> Principal:
        p = principal(request)
        for perm in perms:
            if not p.can(perm):
                raise HTTPException(403, f"permission {perm} required")
        if roles and p.role != "admin" and p.role not in roles:
            raise HTTPException(403, f"requires role {' or '.join(roles)}")
        return p

    dep.callcore_permissions = perms  # type: ignore[attr-defined]
    dep.callcore_roles = roles  # type: ignore[attr-defined]
    dep.__name__ = f"require_{'_'.join(names).replace('.', '_')}"
    return dep


def public(reason: str) -> Callable[[], None]:
    """Dependency that marks a route as reachable without a credential (say why)."""

    def dep() -> None:
        return None

    dep.callcore_public = reason  # type: ignore[attr-defined]
    return dep


def declared_permissions(dependant: Any) -> tuple[set[str], set[str], str | None]:
    """``(permissions, legacy_roles, public_reason)`` a route's dependency tree declares."""
    perms: set[str] = set()
    roles: set[str] = set()
    reason: str | None = None
    stack = [dependant]
    while stack:
        d = stack.pop()
        call = getattr(d, "call", None)
        perms.update(getattr(call, "callcore_permissions", ()))
        roles.update(getattr(call, "callcore_roles", ()))
        reason = reason or getattr(call, "callcore_public", None)
        stack.extend(getattr(d, "dependencies", ()))
    return perms, roles, reason


# ------------------------------------------------------------------ websocket
def _ws_subprotocol_token(ws: WebSocket) -> str | None:
    for proto in ws.headers.get("sec-websocket-protocol", "").split(","):
        proto = proto.strip()
        if proto.startswith("bearer."):
            return proto[7:]
    return None


def _same_origin(ws: WebSocket) -> bool:
    origin = ws.headers.get("origin")
    if not origin:
        return True  # not a browser
    return urlsplit(origin).netloc.lower() == ws.headers.get("host", "").lower()


def _ws_credential(ws: WebSocket) -> tuple[str, str] | None:
    token = _bearer(ws.headers) or _ws_subprotocol_token(ws)
    if token:
        return token, "access"
    cookie = ws.cookies.get(SESSION_COOKIE)
    if cookie and _same_origin(ws):
        return cookie, "session"
    query = ws.query_params.get("token")
    if query:
        return query, "access"
    return None


def websocket_principal(ws: WebSocket) -> Principal | None:
    """The websocket caller from its handshake (header, subprotocol, cookie, ``?token=``), or None."""
    found = _ws_credential(ws)
    if found is None:
        return None
    try:
        return _authenticator(ws.app.state).authenticate(found[0], typ=found[1])
    except AuthError:
        return None


def _offered_subprotocol(ws: WebSocket) -> str | None:
    offered = [p.strip() for p in ws.headers.get("sec-websocket-protocol", "").split(",")]
    return WS_SUBPROTOCOL if WS_SUBPROTOCOL in offered else None


#: close reasons of a refused websocket (code 4401); at most 123 bytes each
WS_NO_CREDENTIAL = "authentication required: send a token (Authorization, bearer.<token> subprotocol) or a same-origin session"
WS_BAD_CREDENTIAL = "invalid or expired credential: log in again"


async def websocket_login(ws: WebSocket, *, timeout: float = 5.0) -> Principal | None:
    """Authenticate and accept the websocket, or refuse it (returns None).

    A credential in the handshake is checked before anything is sent. A client that
    offers the ``callcore`` subprotocol without one is accepted and must send
    ``{"auth": "<token>"}`` first, within ``timeout`` (else closed with 4401).
    A refused handshake is accepted and closed at once with code 4401 and a reason
    (issue 20): closing before accepting turns into a bare HTTP 403, and a browser's
    ``WebSocket`` never learns why."""
    subprotocol = _offered_subprotocol(ws)
    found = _ws_credential(ws)
    if found is not None or subprotocol is None:
        p = websocket_principal(ws)
        if p is None:
            await ws.accept(subprotocol=subprotocol)
            await ws.close(code=4401, reason=WS_NO_CREDENTIAL if found is None else WS_BAD_CREDENTIAL)
            return None
        await ws.accept(subprotocol=subprotocol)
        return p
    await ws.accept(subprotocol=subprotocol)
    p = None
    try:
        async with asyncio.timeout(timeout):
            first = json.loads(await ws.receive_text())
        token = first.get("auth") if isinstance(first, dict) else None
        p = _authenticator(ws.app.state).authenticate(token) if isinstance(token, str) else None
    except Exception:  # timeout, bad JSON, bad token, the client went away
        p = None
    if p is None:
        with contextlib.suppress(Exception):
            await ws.close(code=4401, reason="authentication required")
    return p
