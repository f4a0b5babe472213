"""Envelope encryption of recordings (AES-256-GCM, ``cryptography``).

Every file gets a random 256-bit **data key**. The audio is encrypted in
fixed-size chunks (64 KiB) with AES-GCM so a byte range can be decrypted
without reading the whole file (HTTP Range playback): chunk *i* uses nonce =
8 random bytes of the file ‖ *i* (4 bytes), and its additional data binds the
chunk index and whether it is the last chunk (reordering or truncation fails
authentication).

File layout: ``CCR1`` | nonce prefix (8) | chunk size (4) | plaintext length (8) |
chunk₀ ‖ tag₀ | chunk₁ ‖ tag₁ | …

The format is chunked already, so it streams both ways without a new version: the header
needs only the plaintext *length*, which is known before the first byte is sealed (the
converted file is on disk), so :func:`encrypt_stream` writes exactly the bytes
:func:`encrypt` would (same layout, same readers) holding one chunk at a time, and
:func:`decrypt_stream` yields a byte range piece by piece for playback (issue 18: a 4-hour
recording's output was held whole, twice, to be encrypted and stored).

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
from typing import AsyncIterator, Awaitable, BinaryIO, Callable, Iterator, Mapping

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


def sealed_length(length: int, chunk: int = CHUNK) -> int:
    """Bytes of the envelope of ``length`` bytes of plaintext."""
    return HEADER.size + length + TAG * max(1, -(-length // chunk))


def encrypt_stream(data_key: bytes, src: BinaryIO, length: int, chunk: int = CHUNK,
                   *, prefix: bytes | None = None) -> Iterator[bytes]:
    """The envelope of the ``length`` bytes read from ``src``, as :func:`encrypt` lays it out,
    yielded a piece at a time (the header, then each sealed chunk): one chunk in memory whatever
    the length. Raises :class:`CryptoError` when ``src`` ends before ``length`` bytes (a file
    that shrank while it was read): the consumer must not store what it got."""
    prefix = os.urandom(8) if prefix is None else prefix
    aes = AESGCM(data_key)
    n = max(1, -(-length // chunk))
    yield HEADER.pack(MAGIC, prefix, chunk, length)
    for i in range(n):
        want = min(chunk, length - i * chunk)
        piece = src.read(want) if want else b""
        if len(piece) != want:
            raise CryptoError(f"source ended at {i * chunk + len(piece)} of {length} bytes")
        yield aes.encrypt(prefix + struct.pack(">I", i), piece, _aad(i, i == n - 1))
    if src.read(1):
        raise CryptoError(f"source holds more than the {length} bytes announced")


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


async def decrypt_stream(
    data_key: bytes, read: Callable[[int, int], Awaitable[bytes]], start: int, end: int, piece: int = 16 * CHUNK
) -> AsyncIterator[bytes]:
    """Plaintext bytes ``start..end`` (inclusive) in pieces of at most ``piece`` bytes (rounded to
    whole chunks), the header read once: what playback streams without holding the range."""
    _, prefix, chunk, length = _header(await read(0, HEADER.size))
    if length == 0 or start > end:
        return
    end = min(end, length - 1)
    n = max(1, -(-length // chunk))
    per = max(1, piece // chunk)  # chunks per read
    stride = chunk + TAG
    aes = AESGCM(data_key)
    i = start // chunk
    while i <= end // chunk:
        upto = min(end // chunk, i + per - 1)
        raw = await read(HEADER.size + i * stride, (upto - i + 1) * stride)
        out = []
        for j, k in enumerate(range(i, upto + 1)):
            try:
                out.append(aes.decrypt(prefix + struct.pack(">I", k), raw[j * stride:(j + 1) * stride], _aad(k, k == n - 1)))
            except InvalidTag as exc:
                raise CryptoError(f"chunk {k} fails authentication (tampered or truncated)") from exc
        plain = b"".join(out)
        base = i * chunk
        yield plain[max(start, base) - base:min(end, upto * chunk + chunk - 1) - base + 1]
        i = upto + 1


async def decrypt_all(data_key: bytes, blob: bytes) -> bytes:
    async def read(offset: int, size: int) -> bytes:
        return blob[offset:offset + size]

    length = plaintext_length(blob)
    return await decrypt_range(data_key, read, 0, length - 1) if length else b""
