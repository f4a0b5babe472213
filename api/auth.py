"""Authentication for the REST/websocket edge (every package's routes use it).

Tokens are ``v1.<payload>.<signature>``: payload = base64url(JSON ``{"sub",
"role", "exp"}``), signature = base64url(HMAC-SHA256(key, "v1." + payload)).
Roles: ``agent`` (subject = agent id), ``supervisor``, ``admin``. Static tokens
from ``settings.api_tokens`` map a token to ``"agent:<id>"``, ``"supervisor"``
or ``"admin"`` (integrations, wallboards).

The FastAPI dependencies (:func:`principal`, :func:`require`) find the
:class:`Authenticator` at ``app.state.authenticator`` (set by ``api.app.create_app``;
apps built in tests may instead set ``app.state.cti`` and its ``authenticator``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from fastapi import HTTPException, Request, WebSocket

ROLES = ("agent", "supervisor", "admin")


class AuthError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str
    role: str  # agent | supervisor | admin

    @property
    def agent_id(self) -> str | None:
        """The agent this principal acts as (agents, and supervisors who are also agents)."""
        return self.subject if self.role in ("agent", "supervisor") and not self.subject.startswith("token:") else None

    @property
    def is_supervisor(self) -> bool:
        return self.role in ("supervisor", "admin")

    def may_act_for(self, agent_id: str) -> bool:
        return self.is_supervisor or self.subject == agent_id


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _key(key: str | bytes) -> bytes:
    return key.encode() if isinstance(key, str) else key


def issue_token(key: str | bytes, subject: str, role: str, ttl: float, *, now: float | None = None) -> str:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    exp = int((now if now is not None else time.time()) + ttl)
    payload = _b64(json.dumps({"sub": subject, "role": role, "exp": exp}, separators=(",", ":")).encode())
    sig = _b64(hmac.new(_key(key), f"v1.{payload}".encode(), hashlib.sha256).digest())
    return f"v1.{payload}.{sig}"


def verify_token(key: str | bytes, token: str, *, now: float | None = None) -> Principal:
    try:
        version, payload, sig = token.split(".")
    except ValueError:
        raise AuthError("malformed token") from None
    if version != "v1":
        raise AuthError("unknown token version")
    expected = _b64(hmac.new(_key(key), f"v1.{payload}".encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(expected, sig):
        raise AuthError("bad signature")
    try:
        data = json.loads(_unb64(payload))
        sub, role, exp = str(data["sub"]), str(data["role"]), float(data["exp"])
    except (ValueError, KeyError, TypeError):
        raise AuthError("malformed token payload") from None
    if role not in ROLES:
        raise AuthError("unknown role")
    if exp < (now if now is not None else time.time()):
        raise AuthError("token expired")
    return Principal(sub, role)


class Authenticator:
    def __init__(
        self,
        key: str | bytes,
        api_tokens: Mapping[str, str] | None = None,
        *,
        token_ttl: float = 12 * 3600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key = key
        self._static = dict(api_tokens or {})
        self.token_ttl = token_ttl
        self._clock = clock

    def issue(self, subject: str, role: str, ttl: float | None = None) -> str:
        return issue_token(self._key, subject, role, ttl or self.token_ttl, now=self._clock())

    def authenticate(self, token: str | None) -> Principal:
        if not token:
            raise AuthError("missing token")
        static = self._static.get(token)
        if static is not None:
            if static.startswith("agent:"):
                return Principal(static.split(":", 1)[1], "agent")
            if static in ("supervisor", "admin"):
                return Principal(f"token:{hashlib.sha256(token.encode()).hexdigest()[:8]}", static)
            raise AuthError("misconfigured static token")
        return verify_token(self._key, token, now=self._clock())


def _token_from(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    auth = headers.get("authorization")
    if auth and auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return headers.get("x-callcore-token") or query.get("token")


def _authenticator(state: Any) -> Authenticator:
    auth = getattr(state, "authenticator", None)
    if auth is None:
        auth = state.cti.authenticator
    return auth


def principal(request: Request) -> Principal:
    """FastAPI dependency: the caller, or HTTP 401."""
    auth = _authenticator(request.app.state)
    try:
        return auth.authenticate(_token_from(request.headers, request.query_params))
    except AuthError as exc:
        raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None


def websocket_principal(ws: WebSocket) -> Principal | None:
    auth = _authenticator(ws.app.state)
    try:
        return auth.authenticate(_token_from(ws.headers, ws.query_params))
    except AuthError:
        return None


def require(*roles: str) -> Callable[[Request], Principal]:
    """Dependency factory: the caller must have one of ``roles`` (admin always passes)."""

    def dep(request: Request) -> Principal:
        p = principal(request)
        if p.role != "admin" and p.role not in roles:
            raise HTTPException(403, f"requires role {' or '.join(roles)}")
        return p

    return dep
