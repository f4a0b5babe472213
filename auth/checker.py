"""Start-up safety checks: refuse to run with guessable secrets.

Outside dev mode the server refuses to start when

* the token signing key (``CALLCORE_JWT_KEY``) is missing, the shipped default,
  starts with ``change-me``, or is shorter than 32 characters;
* the AMI secret (``CALLCORE_AMI_SECRET``) starts with ``change-me`` (the
  placeholder of ``asterisk-config/manager.conf`` and ``docker/``);
* a static API token (``CALLCORE_API_TOKENS``) is shorter than 16 characters.

Dev mode (``--dev`` / ``CALLCORE_DEV_MODE=1``) is accepted only when HTTP and FastAGI
listen on loopback; it then uses a random signing key kept in ``<data_dir>/jwt.key``
(created on first run, mode 0600) unless a strong key is set, and only warns.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
from pathlib import Path
from typing import Any

from auth.tokens import KeyRing

log = logging.getLogger("callcore.security")

DEFAULT_JWT_KEY = "change-me-in-production"
MIN_KEY_LENGTH = 32
MIN_STATIC_TOKEN_LENGTH = 16
KEY_HINT = "python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"


class StartupRefused(RuntimeError):
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("refusing to start:\n  - " + "\n  - ".join(problems))


def is_loopback(host: str) -> bool:
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def weak_key(key: str | None) -> str | None:
    """Why ``key`` is not acceptable as a signing key (None: it is)."""
    if not key:
        return "is not set"
    if key == DEFAULT_JWT_KEY or key.lower().startswith("change-me"):
        return "is the shipped placeholder"
    if len(key) < MIN_KEY_LENGTH:
        return f"is shorter than {MIN_KEY_LENGTH} characters"
    return None


def _secret(value: Any) -> str | None:
    if value is None:
        return None
    return value.get_secret_value() if hasattr(value, "get_secret_value") else str(value)


def problems(settings: Any) -> list[str]:
    """Everything unsafe about ``settings`` when run outside dev mode."""
    out = []
    why = weak_key(_secret(settings.jwt_key))
    if why:
        out.append(f"the token signing key CALLCORE_JWT_KEY {why}: set it to a random value of at least "
                   f"{MIN_KEY_LENGTH} characters (e.g. `{KEY_HINT}`)")
    for kid, key in (getattr(settings, "jwt_previous_keys", None) or {}).items():
        why = weak_key(_secret(key))
        if why:
            out.append(f"the previous signing key {kid!r} in CALLCORE_JWT_PREVIOUS_KEYS {why}")
    runs_ami = settings.runs("ami") if hasattr(settings, "runs") else True
    servers = getattr(settings, "ami_servers", None) or []  # several Asterisk servers (issue 19): each secret
    if runs_ami and not servers and (_secret(settings.ami_secret) or "").lower().startswith("change-me"):
        out.append("the AMI secret CALLCORE_AMI_SECRET is a `change-me…` placeholder: set the same new secret in "
                   "asterisk-config/manager.conf ([callcore] secret) and CALLCORE_AMI_SECRET")
    for srv in servers if runs_ami else []:
        if (_secret(srv.secret) or "").lower().startswith("change-me"):
            out.append(f"the AMI secret of server {srv.name!r} in CALLCORE_AMI_SERVERS is a `change-me…` placeholder: set "
                       "the same new secret in that server's manager.conf ([callcore] secret) and its `secret`")
    short = [t for t in (settings.api_tokens or {}) if len(t) < MIN_STATIC_TOKEN_LENGTH]
    if short:
        out.append(f"{len(short)} static API token(s) in CALLCORE_API_TOKENS are shorter than {MIN_STATIC_TOKEN_LENGTH} "
                   "characters: use long random tokens or API keys (POST /api/api-keys)")
    return out


def dev_key(data_dir: Path) -> str:
    """The dev-mode signing key: random, created once in ``<data_dir>/jwt.key`` (0600)."""
    path = data_dir / "jwt.key"
    if path.is_file():
        key = path.read_text(encoding="ascii").strip()
        if len(key) >= MIN_KEY_LENGTH:
            return key
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(key + "\n")
    log.warning("dev mode: generated a random token signing key in %s", path)
    return key


def check_startup(settings: Any) -> KeyRing:
    """Refuse unsafe settings (:class:`StartupRefused`) or return the signing key ring."""
    found = problems(settings)
    if settings.dev_mode:
        hosts = {"http": settings.http_host, "agi": settings.agi_host}
        public = [f"{part} on {host}" for part, host in hosts.items() if settings.runs(part) and not is_loopback(host)]
        if public:
            raise StartupRefused([f"dev mode runs on loopback only, but {', '.join(public)} is configured: "
                                  "bind to 127.0.0.1, or leave dev mode and set real keys"])
        for p in found:
            log.warning("dev mode (loopback only): %s", p)
        key = _secret(settings.jwt_key)
        if weak_key(key):
            key = dev_key(settings.data_dir)
    else:
        if found:
            raise StartupRefused(found)
        key = _secret(settings.jwt_key)
    return _ring(settings, key)  # type: ignore[arg-type]


def _ring(settings: Any, key: str) -> KeyRing:
    previous = {kid: _secret(k) for kid, k in (getattr(settings, "jwt_previous_keys", None) or {}).items()}
    return KeyRing(key, settings.jwt_key_id, previous)  # type: ignore[arg-type]


def signing_keys(settings: Any) -> KeyRing:
    """The key ring the server would sign with (``callcore token``): the configured key if it
    is strong, the data directory's dev key in dev mode, else :class:`StartupRefused`."""
    key = _secret(settings.jwt_key)
    why = weak_key(key)
    if why is None:
        return _ring(settings, key)  # type: ignore[arg-type]
    if settings.dev_mode:
        return _ring(settings, dev_key(settings.data_dir))
    raise StartupRefused([f"the token signing key CALLCORE_JWT_KEY {why}: set it (e.g. `{KEY_HINT}`), or use --dev "
                          "for a server running in dev mode on loopback"])
