"""Logins, tokens, browser sessions, API keys and user accounts.

handler → check → act: :meth:`AuthService.login` checks the throttle first (429
with ``Retry-After`` while an account or a client address is locked), then the
credential — a user account (``auth_users``, password) or an agent (``cti_agents``,
PIN) — and records every success, failure and lockout in the audit log.
"""

from __future__ import annotations

import inspect
import logging
import secrets
from typing import Any, Iterable, Protocol

from auth.passwords import Passwords
from auth.permissions import PERMISSIONS, ROLES
from auth.ratelimit import LoginThrottle, SharedLoginThrottle
from auth.repository import AuthRepository
from auth.tokens import ApiKey, AuthError, Authenticator, Principal, new_api_key

log = logging.getLogger("callcore.auth")


class AuthFailed(Exception):
    """Wrong credential (401); the message never says which part was wrong."""


class Throttled(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed logins; retry after {retry_after} s")
        self.retry_after = retry_after


class Invalid(Exception):
    """Bad request (422 / 409)."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


class AgentPins(Protocol):
    async def verify_pin(self, agent_id: str, pin: str) -> Any: ...  # AgentRecord (id, role) | None


class Audit(Protocol):
    async def record(self, actor: Any, action: str, target: Any = None, details: dict[str, Any] | None = None) -> Any: ...


async def _maybe(value: Any) -> Any:
    """The in-memory throttle answers at once, the shared one (auth/ratelimit.py) from the database."""
    return await value if inspect.isawaitable(value) else value


class AuthService:
    def __init__(
        self,
        repository: AuthRepository,
        authenticator: Authenticator,
        *,
        audit: Audit,
        throttle: LoginThrottle | SharedLoginThrottle,
        agents: AgentPins | None = None,
        passwords: Passwords | None = None,
        cookie_secure: bool = False,
    ) -> None:
        self.cookie_secure = cookie_secure
        self.repository = repository
        self.authenticator = authenticator
        self.audit = audit
        self.throttle = throttle
        self.agents = agents
        self.passwords = passwords or Passwords()

    async def start(self) -> None:
        await self.reload()

    async def reload(self) -> None:
        """Load revoked token ids and active API keys into the authenticator."""
        self.authenticator.revoked = await self.repository.revoked_tokens(self.authenticator.now())
        self.authenticator.api_keys = {
            r.key_hash: ApiKey(r.id, r.name, r.role, frozenset(r.scopes) if r.scopes is not None else None, frozenset(r.queues or ()), r.key_hash)
            for r in await self.repository.active_keys()
        }

    # ------------------------------------------------------------ login
    async def login(self, username: str, secret: str, address: str | None) -> Principal:
        wait = await _maybe(self.throttle.retry_after(username, address))
        if wait is not None:
            await self.audit.record(f"ip:{address}", "auth.login_refused", username, {"retry_after": wait})
            raise Throttled(wait)
        p = await self._check_credential(username, secret)
        if p is None:
            locked = await _maybe(self.throttle.failure(username, address))
            await self.audit.record(f"ip:{address}", "auth.login_failed", username)
            if locked:
                await self.audit.record("system", "auth.locked", username, {"locked": locked, "address": address, "seconds": self.throttle.lockout})
                log.warning("login locked (%s) for %s from %s", "+".join(locked), username, address)
            raise AuthFailed("wrong user name or password")
        await _maybe(self.throttle.success(username))
        await self.audit.record(p, "auth.login", username, {"address": address})
        return p

    async def _check_credential(self, username: str, secret: str) -> Principal | None:
        user = await self.repository.get_user(username)
        if user is not None:
            if user.disabled:
                return None
            ok, rehashed = await self.passwords.verify_async(secret, user.password_hash)
            if not ok:
                return None
            if rehashed is not None:
                await self.repository.set_password_hash(user.id, rehashed)
            return Principal(
                f"user:{user.id}", user.role, queues=frozenset(user.queues or ()), teams=frozenset(user.teams or ()),
                agent=user.agent_id,
            )
        if self.agents is not None:
            rec = await self.agents.verify_pin(username, secret)
            if rec is not None:
                role = rec.role if rec.role in ROLES else "agent"
                return Principal(rec.id, role)
        return None

    # ------------------------------------------------------------ tokens
    def tokens(self, p: Principal) -> dict[str, Any]:
        a = self.authenticator
        access = a.issue_for(p)
        return {
            "token": access,  # pre-issue-11 name, kept for existing clients
            "access_token": access,
            "refresh_token": a.issue_for(p, typ="refresh"),
            "token_type": "bearer",
            "expires_in": int(a.token_ttl),
            "subject": p.subject,
            "agent_id": p.agent_id,
            "role": p.role,
        }

    async def refresh(self, refresh_token: str) -> dict[str, Any]:
        claims = self.authenticator.decode(refresh_token, "refresh")  # AuthError → 401
        p = Principal(
            str(claims["sub"]), str(claims["role"]), queues=frozenset(claims.get("queues") or ()),
            teams=frozenset(claims.get("teams") or ()), agent=claims.get("agent"),
        )
        if not await self._still_valid(p):
            raise AuthError("account disabled or removed")
        await self._revoke(claims["jti"], claims["exp"])  # refresh tokens are single-use (rotation)
        await self.audit.record(p, "auth.refresh", p.subject)
        return self.tokens(p)

    async def _still_valid(self, p: Principal) -> bool:
        if p.subject.startswith("user:"):
            user = await self.repository.get_user(p.subject[5:])
            return user is not None and not user.disabled and user.role == p.role
        return True

    async def logout(self, p: Principal, refresh_token: str | None = None, *, action: str = "auth.logout") -> None:
        if p.jti:
            await self._revoke(p.jti, self.authenticator.now() + self.authenticator.session_ttl)
        if refresh_token:
            try:
                claims = self.authenticator.decode(refresh_token, "refresh")
            except AuthError:
                claims = None
            if claims is not None and claims["sub"] == p.subject:
                await self._revoke(claims["jti"], claims["exp"])
        await self.audit.record(p, action, p.subject)

    async def _revoke(self, jti: str, exp: float) -> None:
        self.authenticator.revoke(jti, float(exp))
        await self.repository.revoke_token(jti, float(exp))

    def session(self, p: Principal) -> tuple[str, str]:
        """``(cookie value, csrf token)`` for a browser session."""
        csrf = secrets.token_urlsafe(24)
        return self.authenticator.issue_for(p, typ="session", csrf=csrf), csrf

    @staticmethod
    def me(p: Principal) -> dict[str, Any]:
        return {
            "subject": p.subject, "role": p.role, "agent_id": p.agent_id, "queues": sorted(p.queues), "teams": sorted(p.teams),
            "permissions": sorted(p.permissions), "via": p.via,
            "csrf_token": p.csrf if p.via == "session" else None,
        }

    # ------------------------------------------------------------ API keys
    async def create_api_key(
        self, actor: Principal, name: str, role: str, scopes: Iterable[str] | None, queues: Iterable[str] = ()
    ) -> dict[str, Any]:
        self._check_role(role)
        scope_set = None if scopes is None else frozenset(scopes)
        if scope_set is not None:
            unknown = sorted(scope_set - PERMISSIONS.keys())
            if unknown:
                raise Invalid(f"unknown permission(s): {', '.join(unknown)}")
        key_id, secret, digest = new_api_key()
        row = await self.repository.add_key(
            id=key_id, name=name, key_hash=digest, role=role, scopes=sorted(scope_set) if scope_set is not None else None,
            queues=sorted(set(queues)), created_by=actor.subject,
        )
        self.authenticator.api_keys[digest] = ApiKey(key_id, name, role, scope_set, frozenset(queues), digest)
        await self.audit.record(actor, "apikeys.create", key_id, {"name": name, "role": role, "scopes": row["scopes"]})
        return {**row, "key": secret}

    async def revoke_api_key(self, actor: Principal, key_id: str) -> dict[str, Any] | None:
        row = await self.repository.revoke_key(key_id)
        if row is None:
            return None
        self.authenticator.api_keys = {h: k for h, k in self.authenticator.api_keys.items() if k.id != key_id}
        await self.audit.record(actor, "apikeys.revoke", key_id)
        return row

    # ------------------------------------------------------------ users
    @staticmethod
    def _check_role(role: str) -> None:
        if role not in ROLES:
            raise Invalid(f"unknown role {role!r} (one of {', '.join(ROLES)})")

    async def create_user(self, actor: Principal | None, *, id: str, password: str, **fields: Any) -> dict[str, Any]:
        self._check_role(fields["role"])
        row = await self.repository.create_user(id=id, password_hash=await self.passwords.hash_async(password), **fields)
        if row is None:
            raise Invalid(f"user {id} already exists", 409)
        await self.audit.record(actor, "users.create", id, {"role": fields["role"], "queues": fields.get("queues", [])})
        return row

    async def update_user(self, actor: Principal, user_id: str, **fields: Any) -> dict[str, Any] | None:
        if "role" in fields:
            self._check_role(fields["role"])
        password = fields.pop("password", None)
        if password is not None:
            fields["password_hash"] = await self.passwords.hash_async(password)
        row = await self.repository.update_user(user_id, **fields)
        if row is not None:
            changed = sorted(k if k != "password_hash" else "password" for k in fields)
            await self.audit.record(actor, "users.update", user_id, {"changed": changed, "role": row["role"]})
        return row

    async def delete_user(self, actor: Principal, user_id: str) -> bool:
        ok = await self.repository.delete_user(user_id)
        if ok:
            await self.audit.record(actor, "users.delete", user_id)
        return ok
