"""Envelope encryption: round trip, byte ranges across chunks, tampering, key wrapping and rotation."""

from __future__ import annotations

import base64
import os

import pytest

from recording import crypto


def keyring(*ids: str, active: str | None = None) -> crypto.Keyring:
    return crypto.Keyring({i: os.urandom(32) for i in ids}, active or ids[0])


async def test_round_trip_and_ranges_across_chunks():
    key = crypto.new_data_key()
    plain = os.urandom(3 * 1000 + 7)
    blob = crypto.encrypt(key, plain, chunk=1000)
    assert plain not in blob and len(blob) == crypto.HEADER.size + len(plain) + 4 * crypto.TAG
    assert await crypto.decrypt_all(key, blob) == plain
    reads = []

    async def read(offset: int, length: int) -> bytes:
        reads.append((offset, length))
        return blob[offset:offset + length]

    for start, end in [(0, 0), (999, 1000), (1500, 2999), (2990, 3006), (3006, 9999)]:
        reads.clear()
        assert await crypto.decrypt_range(key, read, start, end) == plain[start:end + 1]
        assert sum(n for _, n in reads[1:]) <= 2 * (1000 + crypto.TAG) + (end - start)  # only the chunks needed


async def test_tampering_truncation_and_wrong_key_fail():
    key = crypto.new_data_key()
    blob = bytearray(crypto.encrypt(key, b"x" * 2500, chunk=1000))
    blob[crypto.HEADER.size + 5] ^= 1
    with pytest.raises(crypto.CryptoError, match="chunk 0"):
        await crypto.decrypt_all(key, bytes(blob))
    whole = crypto.encrypt(key, b"y" * 2500, chunk=1000)
    with pytest.raises(crypto.CryptoError):  # last chunk cut off: the 'last' flag no longer authenticates
        await crypto.decrypt_all(key, whole[: -(500 + crypto.TAG)])
    with pytest.raises(crypto.CryptoError):
        await crypto.decrypt_all(crypto.new_data_key(), whole)


def test_wrap_unwrap_and_rotation():
    ring = keyring("k1")
    dk = crypto.new_data_key()
    kid, wrapped = ring.wrap(dk)
    assert kid == "k1" and dk not in wrapped and ring.unwrap(kid, wrapped) == dk
    rotated = crypto.Keyring({**ring.keys, "k2": os.urandom(32)}, "k2")
    kid2, wrapped2 = rotated.wrap(rotated.unwrap(kid, wrapped))
    assert kid2 == "k2" and crypto.Keyring({"k2": rotated.keys["k2"]}, "k2").unwrap(kid2, wrapped2) == dk
    with pytest.raises(crypto.CryptoError, match="not configured"):
        crypto.Keyring({"k2": rotated.keys["k2"]}, "k2").unwrap("k1", wrapped)
    with pytest.raises(crypto.CryptoError):  # the key id is bound into the wrap
        rotated.unwrap("k2", wrapped)


def test_master_key_settings_are_checked():
    assert crypto.parse_master_keys({"a": base64.b64encode(b"k" * 32).decode()}) == {"a": b"k" * 32}
    with pytest.raises(ValueError, match="32 bytes"):
        crypto.parse_master_keys({"a": base64.b64encode(b"short").decode()})
    with pytest.raises(ValueError, match="not among"):
        crypto.Keyring({"a": b"k" * 32}, "b")
