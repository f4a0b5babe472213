"""Auth edge: logins, browser sessions, tokens, API keys, users (thin handlers).

``request.app.state.auth`` is the :class:`auth.service.AuthService`. Errors: 401
wrong credential, 429 + ``Retry-After`` while locked out, 403 missing permission,
404/409/422 for bad input.
"""

from __future__ import annotations

from typing import Any, Callable, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field

from api.auth import CSRF_HEADER, SESSION_COOKIE, Principal, public, require
from auth.permissions import PERMISSIONS, ROLE_PERMISSIONS, ROLES
from auth.service import AuthFailed, AuthService, Invalid, Throttled
from auth.tokens import AuthError

Role = Literal["agent", "supervisor", "qa", "qa_lead", "admin", "ops"]
NAME = r"^[A-Za-z0-9_.@-]+$"
QUEUE = r"^[a-z][a-z0-9_-]{0,79}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AgentLogin(Strict):
    agent_id: str = Field(min_length=1, max_length=64)
    pin: str = Field(min_length=1, max_length=128)


class Credentials(Strict):
    username: str = Field(min_length=1, max_length=64, description="a user's login name, or an agent id")
    password: str = Field(min_length=1, max_length=256, description="the user's password, or the agent's PIN")


class RefreshBody(Strict):
    refresh_token: str = Field(min_length=1, max_length=4096)


class LogoutBody(Strict):
    refresh_token: str | None = Field(None, max_length=4096)


class ApiKeyCreate(Strict):
    name: str = Field(min_length=1, max_length=200)
    role: Role
    scopes: list[str] | None = Field(None, max_length=100, description="permissions the key is limited to (default: the role's)")
    queues: list[str] = Field(default_factory=list, max_length=100)


class UserCreate(Strict):
    id: str = Field(min_length=1, max_length=64, pattern=NAME)
    name: str = Field(min_length=1, max_length=200, pattern=r"^[^\r\n\x00]+$")
    password: str = Field(min_length=12, max_length=256)
    role: Role
    queues: list[str] = Field(default_factory=list, max_length=200)
    teams: list[str] = Field(default_factory=list, max_length=200)
    agent_id: str | None = Field(None, max_length=64, pattern=NAME)
    disabled: bool = False


class UserUpdate(Strict):
    name: str | None = Field(None, min_length=1, max_length=200, pattern=r"^[^\r\n\x00]+$")
    password: str | None = Field(None, min_length=12, max_length=256)
    role: Role | None = None
    queues: list[str] | None = Field(None, max_length=200)
    teams: list[str] | None = Field(None, max_length=200)
    agent_id: str | None = Field(None, max_length=64, pattern=NAME)
    disabled: bool | None = None


class AuthRoute(APIRoute):
    """Maps the auth service's errors to HTTP answers for every route here (never a 500)."""

    def get_route_handler(self) -> Callable[..., Any]:
        handler = super().get_route_handler()

        async def wrapped(request: Request) -> Response:
            try:
                return await handler(request)
            except Throttled as exc:
                return JSONResponse({"detail": str(exc)}, status_code=429, headers={"Retry-After": str(exc.retry_after)})
            except (AuthFailed, AuthError) as exc:
                return JSONResponse({"detail": str(exc)}, status_code=401)
            except Invalid as exc:
                return JSONResponse({"detail": str(exc)}, status_code=exc.status)

        return wrapped


router = APIRouter(tags=["auth"], route_class=AuthRoute)


def svc(request: Request) -> AuthService:
    return request.app.state.auth


def _address(request: Request) -> str | None:
    return request.client.host if request.client else None


async def _login(request: Request, username: str, secret: str) -> Principal:
    return await svc(request).login(username, secret, _address(request))


@router.post("/api/auth/login", dependencies=[Depends(public("the agent's PIN login"))])
async def login(body: AgentLogin, request: Request) -> dict[str, Any]:
    """Agent id + PIN → access and refresh tokens (``token`` = the access token)."""
    return svc(request).tokens(await _login(request, body.agent_id, body.pin))


@router.post("/api/auth/token", dependencies=[Depends(public("password login for API clients"))])
async def token(body: Credentials, request: Request) -> dict[str, Any]:
    return svc(request).tokens(await _login(request, body.username, body.password))


@router.post("/api/auth/refresh", dependencies=[Depends(public("the refresh token is the credential"))])
async def refresh(body: RefreshBody, request: Request) -> dict[str, Any]:
    return await svc(request).refresh(body.refresh_token)


@router.post("/api/auth/logout", status_code=204)
async def logout(request: Request, body: LogoutBody | None = None, p: Principal = Depends(require("auth.self"))) -> Response:
    await svc(request).logout(p, body.refresh_token if body else None)
    return Response(status_code=204)


@router.post("/api/auth/session", dependencies=[Depends(public("browser login"))])
async def create_session(body: Credentials, request: Request, response: Response) -> dict[str, Any]:
    """Browser login: sets the HttpOnly, SameSite=Strict session cookie; the body
    carries the CSRF token to send as ``X-CSRF-Token`` on every unsafe request."""
    service = svc(request)
    p = await _login(request, body.username, body.password)
    cookie, csrf = service.session(p)
    response.set_cookie(
        SESSION_COOKIE, cookie, httponly=True, samesite="strict", secure=service.cookie_secure,
        max_age=int(service.authenticator.session_ttl), path="/",
    )
    response.headers["Cache-Control"] = "no-store"
    return {**service.me(p), "via": "session", "csrf_token": csrf, "csrf_header": CSRF_HEADER}


@router.delete("/api/auth/session", status_code=204)
async def delete_session(request: Request, p: Principal = Depends(require("auth.self"))) -> Response:
    await svc(request).logout(p, action="auth.session_end")
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


@router.get("/api/auth/me")
async def me(p: Principal = Depends(require("auth.self"))) -> dict[str, Any]:
    """The caller: subject, role, agent id, queue scope, permissions and (browser
    sessions) the CSRF token."""
    return AuthService.me(p)


@router.get("/api/auth/permissions")
async def permissions(p: Principal = Depends(require("auth.self"))) -> dict[str, Any]:
    """The permission table: every permission and what each role holds."""
    return {"permissions": PERMISSIONS, "roles": {r: sorted(ROLE_PERMISSIONS[r]) for r in ROLES}}


# ---- API keys
@router.get("/api/api-keys")
async def list_keys(request: Request, p: Principal = Depends(require("apikeys.admin"))) -> list[dict[str, Any]]:
    return await svc(request).repository.list_keys()


@router.post("/api/api-keys", status_code=201)
async def create_key(body: ApiKeyCreate, request: Request, p: Principal = Depends(require("apikeys.admin"))) -> dict[str, Any]:
    """Returns the key once (``key``); only its hash is stored."""
    return await svc(request).create_api_key(p, body.name, body.role, body.scopes, body.queues)


@router.delete("/api/api-keys/{key_id}")
async def revoke_key(
    request: Request, key_id: str = Path(max_length=16, pattern=r"^[0-9a-f]+$"), p: Principal = Depends(require("apikeys.admin"))
) -> dict[str, Any]:
    row = await svc(request).revoke_api_key(p, key_id)
    if row is None:
        raise HTTPException(404, f"no such API key: {key_id}")
    return row


# ---- users
@router.get("/api/users")
async def list_users(request: Request, p: Principal = Depends(require("users.admin"))) -> list[dict[str, Any]]:
    return await svc(request).repository.list_users()


@router.post("/api/users", status_code=201)
async def create_user(body: UserCreate, request: Request, p: Principal = Depends(require("users.admin"))) -> dict[str, Any]:
    return await svc(request).create_user(p, **body.model_dump())


@router.put("/api/users/{user_id}")
async def update_user(
    body: UserUpdate, request: Request, user_id: str = Path(max_length=64, pattern=NAME), p: Principal = Depends(require("users.admin"))
) -> dict[str, Any]:
    row = await svc(request).update_user(p, user_id, **body.model_dump(exclude_unset=True))
    if row is None:
        raise HTTPException(404, f"no such user: {user_id}")
    return row


@router.delete("/api/users/{user_id}", status_code=204)
async def delete_user(
    request: Request, user_id: str = Path(max_length=64, pattern=NAME), p: Principal = Depends(require("users.admin"))
) -> Response:
    if not await svc(request).delete_user(p, user_id):
        raise HTTPException(404, f"no such user: {user_id}")
    return Response(status_code=204)
