"""Tokens (PyJWT, HS256 with a key id), API keys and the :class:`Principal`.

* **access** tokens are short-lived (``access_token_ttl``, default 15 min);
* **refresh** tokens (``refresh_token_ttl``, default 12 h) buy new access tokens
  (``POST /api/auth/refresh``) and are revoked on logout;
* **session** tokens travel only in the HttpOnly browser cookie and carry the
  CSRF token the browser must echo in ``X-CSRF-Token`` on unsafe requests.

Every token has a ``jti``; revoked ``jti``s are kept until they expire. The JWT
header's ``kid`` names the signing key: the current key signs, older keys
(``jwt_previous_keys``) still verify, so keys rotate without logging everyone out.

API keys (``cc_<id>_<secret>``) are stored as SHA-256 hashes (they are long random
secrets, so a fast hash is enough), scoped to a subset of their role's permissions.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import jwt

from auth.permissions import ROLES, permissions_of

ALGORITHM = "HS256"
TOKEN_TYPES = ("access", "refresh", "session")
API_KEY_PREFIX = "cc_"


class AuthError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a subject, one role, an optional queue scope."""

    subject: str
    role: str
    #: queues this principal is limited to (empty: all queues)
    queues: frozenset[str] = frozenset()
    #: teams of agents a supervisor is limited to (empty: every team; auth/scope.py)
    teams: frozenset[str] = frozenset()
    #: API keys: the permissions the key was limited to (None: the role's)
    scopes: frozenset[str] | None = None
    #: the agent a user account acts as (None: derived from the subject for agent logins)
    agent: str | None = None
    via: str = field(default="token", compare=False)  # token | session | apikey | static
    jti: str | None = field(default=None, compare=False)
    csrf: str | None = field(default=None, compare=False, repr=False)

    @property
    def agent_id(self) -> str | None:
        """The agent this principal acts as (agents, and supervisors who are also agents)."""
        if self.agent is not None:
            return self.agent
        if self.role in ("agent", "supervisor") and not self.subject.startswith(("token:", "user:", "key:")):
            return self.subject
        return None

    @property
    def is_supervisor(self) -> bool:
        return self.role in ("supervisor", "admin")

    @property
    def permissions(self) -> frozenset[str]:
        perms = permissions_of(self.role)
        return perms & self.scopes if self.scopes is not None else perms

    def can(self, permission: str) -> bool:
        return permission in self.permissions

    def in_scope(self, queue: str | None) -> bool:
        """True if this principal may see ``queue`` (no scope: every queue)."""
        return not self.queues or (queue is not None and queue in self.queues)

    def may_act_for(self, agent_id: str) -> bool:
        return self.is_supervisor or self.agent_id == agent_id


# ------------------------------------------------------------------ keys
def _raw(key: str | bytes) -> bytes:
    return key.encode() if isinstance(key, str) else key


class KeyRing:
    """The signing key (``kid`` → key) and older keys that still verify."""

    def __init__(self, key: str | bytes, key_id: str = "k1", previous: Mapping[str, str | bytes] | None = None) -> None:
        self.current = key_id
        self.keys: dict[str, bytes] = {kid: _raw(k) for kid, k in (previous or {}).items()}
        self.keys[key_id] = _raw(key)

    def signing_key(self) -> tuple[str, bytes]:
        return self.current, self.keys[self.current]

    def key_for(self, kid: str | None) -> bytes:
        if kid is None or kid not in self.keys:
            raise AuthError("unknown key id")
        return self.keys[kid]


def _ring(key: str | bytes | KeyRing) -> KeyRing:
    return key if isinstance(key, KeyRing) else KeyRing(key)


def issue_token(
    key: str | bytes | KeyRing,
    subject: str,
    role: str,
    ttl: float,
    *,
    now: float | None = None,
    typ: str = "access",
    queues: Iterable[str] = (),
    agent: str | None = None,
    extra: Mapping[str, Any] | None = None,
    teams: Iterable[str] = (),
) -> str:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    if typ not in TOKEN_TYPES:
        raise ValueError(f"unknown token type {typ!r}")
    ring = _ring(key)
    kid, raw = ring.signing_key()
    iat = int(now if now is not None else time.time())
    claims: dict[str, Any] = {"sub": subject, "role": role, "typ": typ, "iat": iat, "exp": int(iat + ttl), "jti": uuid.uuid4().hex}
    if queues:
        claims["queues"] = sorted(queues)
    if teams:
        claims["teams"] = sorted(teams)
    if agent:
        claims["agent"] = agent
    claims.update(extra or {})
    return jwt.encode(claims, raw, algorithm=ALGORITHM, headers={"kid": kid})


def decode_token(key: str | bytes | KeyRing, token: str, *, now: float | None = None) -> dict[str, Any]:
    """The verified claims of ``token`` (signature, key id, expiry), or :class:`AuthError`."""
    ring = _ring(key)
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise AuthError("malformed token") from None
    if header.get("alg") != ALGORITHM:
        raise AuthError("unexpected token algorithm")
    raw = ring.key_for(header.get("kid"))
    try:
        # expiry is checked below against the injectable clock
        claims = jwt.decode(token, raw, algorithms=[ALGORITHM], options={"verify_exp": False, "require": ["sub", "exp", "jti"]})
    except jwt.InvalidSignatureError:
        raise AuthError("bad signature") from None
    except jwt.PyJWTError:
        raise AuthError("malformed token") from None
    try:
        exp = float(claims["exp"])
        role = str(claims["role"])
    except (KeyError, TypeError, ValueError):
        raise AuthError("malformed token payload") from None
    if role not in ROLES:
        raise AuthError("unknown role")
    if exp < (now if now is not None else time.time()):
        raise AuthError("token expired")
    return claims


def principal_from_claims(claims: Mapping[str, Any], via: str = "token") -> Principal:
    return Principal(
        str(claims["sub"]),
        str(claims["role"]),
        queues=frozenset(claims.get("queues") or ()),
        teams=frozenset(claims.get("teams") or ()),
        agent=claims.get("agent"),
        via=via,
        jti=claims.get("jti"),
        csrf=claims.get("csrf"),
    )


def verify_token(key: str | bytes | KeyRing, token: str, *, now: float | None = None, typ: str = "access") -> Principal:
    claims = decode_token(key, token, now=now)
    if claims.get("typ", "access") != typ:
        raise AuthError(f"not an {typ} token")
    return principal_from_claims(claims, "session" if typ == "session" else "token")


# ------------------------------------------------------------------ API keys
@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    name: str
    role: str
    scopes: frozenset[str] | None
    queues: frozenset[str]
    key_hash: str


def new_api_key() -> tuple[str, str, str]:
    """``(key_id, secret_key, sha256_hash)``; the secret is shown once, only the hash is stored."""
    key_id = secrets.token_hex(4)
    secret = f"{API_KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    return key_id, secret, hash_api_key(secret)


def hash_api_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


# ------------------------------------------------------------------ the authenticator
class Authenticator:
    """Turns a presented credential into a :class:`Principal` (synchronous: it runs in
    every request's dependency). Keeps the revoked ``jti``s and the API key table in
    memory; :class:`auth.service.AuthService` loads and persists them."""

    def __init__(
        self,
        key: str | bytes | KeyRing,
        api_tokens: Mapping[str, str] | None = None,
        *,
        token_ttl: float = 15 * 60,
        refresh_ttl: float = 12 * 3600,
        session_ttl: float = 12 * 3600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.keys = _ring(key)
        self._static = {hash_api_key(t): role for t, role in (api_tokens or {}).items()}
        self.token_ttl = token_ttl
        self.refresh_ttl = refresh_ttl
        self.session_ttl = session_ttl
        self._clock = clock
        self.revoked: dict[str, float] = {}  # jti → exp
        self.api_keys: dict[str, ApiKey] = {}  # sha256 → key

    def now(self) -> float:
        return self._clock()

    def issue(self, subject: str, role: str, ttl: float | None = None, *, typ: str = "access", **kw: Any) -> str:
        default = {"access": self.token_ttl, "refresh": self.refresh_ttl, "session": self.session_ttl}[typ]
        return issue_token(self.keys, subject, role, ttl or default, now=self._clock(), typ=typ, **kw)

    def issue_for(self, p: Principal, *, typ: str = "access", ttl: float | None = None, **extra: Any) -> str:
        return self.issue(p.subject, p.role, ttl, typ=typ, queues=p.queues, teams=p.teams, agent=p.agent, extra=extra or None)

    def decode(self, token: str, typ: str = "access") -> dict[str, Any]:
        claims = decode_token(self.keys, token, now=self._clock())
        if claims.get("typ", "access") != typ:
            raise AuthError(f"not an {typ} token")
        if claims["jti"] in self.revoked:
            raise AuthError("token revoked")
        return claims

    def revoke(self, jti: str, exp: float) -> None:
        now = self._clock()
        self.revoked = {j: e for j, e in self.revoked.items() if e >= now}
        self.revoked[jti] = exp

    def authenticate(self, token: str | None, *, typ: str = "access") -> Principal:
        if not token:
            raise AuthError("missing token")
        digest = hash_api_key(token)
        static = next((role for h, role in self._static.items() if hmac.compare_digest(h, digest)), None)
        if static is not None:
            if static.startswith("agent:"):
                return Principal(static.split(":", 1)[1], "agent", via="static")
            if static in ROLES and static != "agent":
                return Principal(f"token:{digest[:8]}", static, via="static")
            raise AuthError("misconfigured static token")
        if token.startswith(API_KEY_PREFIX):
            key = self.api_keys.get(digest)
            if key is None:
                raise AuthError("unknown or revoked API key")
            return Principal(f"key:{key.id}", key.role, queues=key.queues, scopes=key.scopes, via="apikey")
        return principal_from_claims(self.decode(token, typ), "session" if typ == "session" else "token")
