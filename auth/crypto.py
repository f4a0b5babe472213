"""Encryption at rest for sensitive customer fields (AES-256-GCM, ``cryptography``).

Stored form of an encrypted value: ``enc:v1:<key id>:<base64(nonce ‖ ciphertext ‖ tag)>``;
the field name is the associated data, so a ciphertext copied to another field does not
decrypt. The first configured key encrypts; every configured key decrypts (rotation: add
the new key first, re-save the rows, drop the old one).

Reading is **masked by default**: :meth:`FieldCipher.open_attributes` returns the clear
value only with ``reveal=True`` (callers pass ``principal.can("customers.sensitive")``),
so pops, logs, exports and webhooks never carry it by accident.
"""

from __future__ import annotations

import base64
import logging
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

log = logging.getLogger("callcore.security")

PREFIX = "enc:v1:"


def mask(value: Any, keep: int = 2) -> str:
    """``"900101-1234567"`` → ``"************67"``; short values are masked entirely."""
    text = "" if value is None else str(value)
    if len(text) <= keep * 2:
        return "*" * len(text)
    return "*" * (len(text) - keep) + text[-keep:]


class FieldCipher:
    def __init__(self, keys: Mapping[str, bytes], fields: Iterable[str]) -> None:
        if not keys:
            raise ValueError("FieldCipher needs at least one key")
        for kid, key in keys.items():
            if len(key) != 32:
                raise ValueError(f"field key {kid!r} must be 32 bytes (base64 of os.urandom(32)), got {len(key)}")
            if ":" in kid:
                raise ValueError(f"field key id {kid!r} must not contain ':'")
        self._keys = {kid: AESGCM(key) for kid, key in keys.items()}
        self.current = next(iter(keys))
        self.fields = frozenset(fields)

    @classmethod
    def from_settings(cls, settings: Any) -> "FieldCipher":
        keys = {kid: base64.b64decode(v.get_secret_value()) for kid, v in (settings.field_keys or {}).items()}
        if not keys:
            keys = {"local": _local_key(settings.data_dir, warn=not settings.dev_mode)}
        return cls(keys, settings.sensitive_customer_fields)

    def encrypt(self, field: str, value: Any) -> str:
        if isinstance(value, str) and value.startswith(PREFIX):
            return value  # already sealed
        nonce = os.urandom(12)
        ct = self._keys[self.current].encrypt(nonce, str(value).encode(), field.encode())
        return f"{PREFIX}{self.current}:{base64.b64encode(nonce + ct).decode()}"

    def decrypt(self, field: str, stored: str) -> str:
        kid, _, blob = stored[len(PREFIX):].partition(":")
        aes = self._keys.get(kid)
        if aes is None:
            raise ValueError(f"no field key {kid!r} configured (CALLCORE_FIELD_KEYS)")
        raw = base64.b64decode(blob)
        try:
            return aes.decrypt(raw[:12], raw[12:], field.encode()).decode()
        except InvalidTag:
            raise ValueError(f"field {field!r}: ciphertext does not verify (wrong key or tampered)") from None

    def seal_attributes(self, attributes: Mapping[str, Any] | None) -> dict[str, Any]:
        out = dict(attributes or {})
        for k in self.fields & out.keys():
            if out[k] is not None:
                out[k] = self.encrypt(k, out[k])
        return out

    def open_attributes(self, attributes: Mapping[str, Any] | None, *, reveal: bool = False) -> dict[str, Any]:
        out = dict(attributes or {})
        for k in self.fields & out.keys():
            v = out[k]
            if isinstance(v, str) and v.startswith(PREFIX):
                try:
                    clear = self.decrypt(k, v)
                except ValueError as exc:
                    log.error("customer attribute %s: %s", k, exc)
                    out[k] = "********"
                    continue
                out[k] = clear if reveal else mask(clear)
            elif v is not None and not reveal:
                out[k] = mask(v)  # stored before encryption was configured
        return out


def _local_key(data_dir: Path, *, warn: bool) -> bytes:
    path = data_dir / "field.key"
    if path.is_file():
        key = base64.b64decode(path.read_text(encoding="ascii").strip())
        if len(key) == 32:
            return key
    data_dir.mkdir(parents=True, exist_ok=True)
    key = os.urandom(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(base64.b64encode(key).decode() + "\n")
    if warn:
        log.warning("no CALLCORE_FIELD_KEYS: generated a field encryption key in %s; keep it apart from the database "
                    "(set CALLCORE_FIELD_KEYS, docs/security.md)", path)
    return key
