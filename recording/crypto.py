"""Envelope encryption of recordings (AES-256-GCM, ``cryptography``).

Every file gets a random 256-bit **data key**. The audio is encrypted in
fixed-size chunks (64 KiB) with AES-GCM so a byte range can be decrypted
without reading the whole file (HTTP Range playback): chunk *i* uses nonce =
8 random bytes of the file ‖ *i* (4 bytes), and its additional data binds the
chunk index and whether it is the last chunk (reordering or truncation fails
authentication).

File layout: ``CCR1`` | nonce prefix (8) | chunk size (4) | plaintext length (8) |
chunk₀ ‖ tag₀ | chunk₁ ‖ tag₁ | …

The data key is **wrapped** by a master key (AES-256-GCM, additional data = the
master key id) and stored in ``recording_keys`` with that key id; master keys
come from settings (``recording_master_keys``: id → base64 of 32 bytes) and the
active one is ``recording_master_key_id``. Rotation = add a new key, make it
active, run ``callcore recording rotate-keys`` (rewraps every data key; audio is
not touched), then drop the old key. Deleting a recording's wrapped key makes
its audio unrecoverable (crypto-erase).
"""

from __future__ import annotations

import base64
import os
import struct
from dataclasses import dataclass
from typing import Awaitable, Callable, Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"CCR1"
HEADER = struct.Struct(">4s8sIQ")
CHUNK = 64 * 1024
TAG = 16


class CryptoError(Exception):
    pass


def parse_master_keys(raw: Mapping[str, str]) -> dict[str, bytes]:
    keys = {}
    for key_id, b64 in raw.items():
        try:
            key = base64.b64decode(b64, validate=True)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"recording master key {key_id!r} is not base64") from exc
        if len(key) != 32:
            raise ValueError(f"recording master key {key_id!r} must be 32 bytes (AES-256), got {len(key)}")
        keys[key_id] = key
    return keys


@dataclass
class Keyring:
    keys: dict[str, bytes]
    active: str

    def __post_init__(self) -> None:
        if self.active not in self.keys:
            raise ValueError(f"recording_master_key_id {self.active!r} is not among recording_master_keys")

    def wrap(self, data_key: bytes) -> tuple[str, bytes]:
        nonce = os.urandom(12)
        return self.active, nonce + AESGCM(self.keys[self.active]).encrypt(nonce, data_key, self.active.encode())

    def unwrap(self, key_id: str, wrapped: bytes) -> bytes:
        master = self.keys.get(key_id)
        if master is None:
            raise CryptoError(f"master key {key_id!r} is not configured (rotated out?)")
        try:
            return AESGCM(master).decrypt(wrapped[:12], wrapped[12:], key_id.encode())
        except InvalidTag as exc:
            raise CryptoError(f"wrapped key does not open with master key {key_id!r}") from exc


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def _aad(index: int, last: bool) -> bytes:
    return struct.pack(">IB", index, 1 if last else 0)


def encrypt(data_key: bytes, plaintext: bytes, chunk: int = CHUNK) -> bytearray:
    """The envelope of ``plaintext``, written into one buffer of its final size (issue 18: a list of
    chunks and their join held a 4-hour recording's output three times over, not twice)."""
    prefix = os.urandom(8)
    aes = AESGCM(data_key)
    n = max(1, -(-len(plaintext) // chunk))
    out = bytearray(HEADER.size + len(plaintext) + TAG * n)
    HEADER.pack_into(out, 0, MAGIC, prefix, chunk, len(plaintext))
    pos = HEADER.size
    view = memoryview(plaintext)
    for i in range(n):
        sealed = aes.encrypt(prefix + struct.pack(">I", i), view[i * chunk:(i + 1) * chunk], _aad(i, i == n - 1))
        out[pos:pos + len(sealed)] = sealed
        pos += len(sealed)
    assert pos == len(out)
    return out


def plaintext_length(header: bytes) -> int:
    return _header(header)[3]


def _header(header: bytes) -> tuple[bytes, bytes, int, int]:
    if len(header) < HEADER.size:
        raise CryptoError("encrypted file is truncated (no header)")
    magic, prefix, chunk, length = HEADER.unpack(header[:HEADER.size])
    if magic != MAGIC or chunk <= 0:
        raise CryptoError("not a callcore encrypted recording")
    return magic, prefix, chunk, length


async def decrypt_range(
    data_key: bytes, read: Callable[[int, int], Awaitable[bytes]], start: int, end: int
) -> bytes:
    """Plaintext bytes ``start..end`` (inclusive), reading only the chunks that hold them.
    ``read(offset, length)`` reads ciphertext bytes from storage."""
    _, prefix, chunk, length = _header(await read(0, HEADER.size))
    if length == 0 or start > end:
        return b""
    end = min(end, length - 1)
    n = max(1, -(-length // chunk))
    first, last = start // chunk, end // chunk
    stride = chunk + TAG
    raw = await read(HEADER.size + first * stride, (last - first + 1) * stride)
    aes = AESGCM(data_key)
    out = []
    for j, i in enumerate(range(first, last + 1)):
        blob = raw[j * stride:(j + 1) * stride]
        try:
            out.append(aes.decrypt(prefix + struct.pack(">I", i), blob, _aad(i, i == n - 1)))
        except InvalidTag as exc:
            raise CryptoError(f"chunk {i} fails authentication (tampered or truncated)") from exc
    plain = b"".join(out)
    base = first * chunk
    return plain[start - base:end - base + 1]


async def decrypt_all(data_key: bytes, blob: bytes) -> bytes:
    async def read(offset: int, size: int) -> bytes:
        return blob[offset:offset + size]

    length = plaintext_length(blob)
    return await decrypt_range(data_key, read, 0, length - 1) if length else b""
