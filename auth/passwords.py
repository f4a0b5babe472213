"""Password and PIN hashing: Argon2id (argon2-cffi), with the PBKDF2 PINs that
callcore stored before issue 11 still accepted once and rehashed on that login.

``verify(secret, stored)`` → ``(ok, new_hash_or_None)``: when ``new_hash`` is set the
caller stores it (legacy hash, or Argon2 parameters changed since it was made).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

#: OWASP's Argon2id baseline (m = 19 MiB, t = 2, p = 1): ≈ 40 ms on one core. Hashing runs
#: in a worker thread (``hash_async``/``verify_async``), never on the event loop.
DEFAULT_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)

_LEGACY = "pbkdf2_sha256$"


class Passwords:
    def __init__(self, hasher: PasswordHasher = DEFAULT_HASHER) -> None:
        self.hasher = hasher

    def hash(self, secret: str) -> str:
        return self.hasher.hash(secret)

    def verify(self, secret: str, stored: str | None) -> tuple[bool, str | None]:
        if not stored:
            return False, None
        if stored.startswith(_LEGACY):
            return (True, self.hash(secret)) if _check_pbkdf2(secret, stored) else (False, None)
        try:
            self.hasher.verify(stored, secret)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False, None
        return True, (self.hash(secret) if self.hasher.check_needs_rehash(stored) else None)


    async def hash_async(self, secret: str) -> str:
        return await asyncio.to_thread(self.hash, secret)

    async def verify_async(self, secret: str, stored: str | None) -> tuple[bool, str | None]:
        return await asyncio.to_thread(self.verify, secret, stored)


def _check_pbkdf2(secret: str, stored: str) -> bool:
    """The pre-Argon2 format ``pbkdf2_sha256$<rounds>$<salt hex>$<digest hex>``."""
    try:
        _algo, rounds, salt, digest = stored.split("$")
        calc = hashlib.pbkdf2_hmac("sha256", secret.encode(), bytes.fromhex(salt), int(rounds))
    except ValueError:
        return False
    return hmac.compare_digest(calc.hex(), digest)


def is_legacy(stored: str | None) -> bool:
    return bool(stored) and stored.startswith(_LEGACY)  # type: ignore[union-attr]
