"""Envelope encryption: round trip, byte ranges across chunks, tampering, key wrapping and rotation."""

from __future__ import annotations

import base64
import io
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


# ---------------------------------------------------------------- streamed (issue 18)
# An envelope written by the whole-bytes ``encrypt`` of main before streaming existed (data key
# bytes(range(32)), nonce prefix 01..08, chunk 16, 50 bytes): the files already in storage.
OLD_KEY = bytes(range(32))
OLD_PLAIN = bytes((i * 7) % 251 for i in range(50))
OLD_ENVELOPE = bytes.fromhex(
    "4343523101020304050607080000001000000000000000328a1820a59134df5ab4f7921020a5ad3fab968aaaf8e81a"
    "2137c98cea8926679215fc9f362f512a5108c3821ea313534f319fa436df059e5cd244538110c26ad9621e5ea34b0d"
    "ff21e26659a0a19d00bebde405cc241135ba6dbb3b373e076b964f0dae62b91a91a910aff2f5acf1194f151b"
)
PREFIX = bytes(range(1, 9))


async def _stream(key, blob, start, end, piece):
    async def read(offset: int, length: int) -> bytes:
        return blob[offset:offset + length]

    return [p async for p in crypto.decrypt_stream(key, read, start, end, piece)]


async def test_stored_envelopes_read_with_every_reader_and_the_stream_writes_the_same_bytes():
    assert await crypto.decrypt_all(OLD_KEY, OLD_ENVELOPE) == OLD_PLAIN
    assert b"".join(await _stream(OLD_KEY, OLD_ENVELOPE, 0, 49, 16)) == OLD_PLAIN
    assert b"".join(await _stream(OLD_KEY, OLD_ENVELOPE, 13, 40, 32)) == OLD_PLAIN[13:41]
    streamed = b"".join(crypto.encrypt_stream(OLD_KEY, io.BytesIO(OLD_PLAIN), len(OLD_PLAIN), chunk=16, prefix=PREFIX))
    assert streamed == OLD_ENVELOPE  # the same format, byte for byte: no new version needed
    assert crypto.sealed_length(len(OLD_PLAIN), 16) == len(OLD_ENVELOPE)


async def test_encrypt_stream_holds_one_chunk_and_refuses_a_source_of_another_length():
    key = crypto.new_data_key()
    plain = os.urandom(10 * 1000 + 1)
    pieces = list(crypto.encrypt_stream(key, io.BytesIO(plain), len(plain), chunk=1000))
    assert len(pieces) == 1 + 11 and max(len(p) for p in pieces) == 1000 + crypto.TAG
    blob = b"".join(pieces)
    assert len(blob) == crypto.sealed_length(len(plain), 1000) and await crypto.decrypt_all(key, blob) == plain
    with pytest.raises(crypto.CryptoError, match="ended at 10001 of 10002"):  # the file shrank
        list(crypto.encrypt_stream(key, io.BytesIO(plain), len(plain) + 1, chunk=1000))
    with pytest.raises(crypto.CryptoError, match="more than"):  # the file grew
        list(crypto.encrypt_stream(key, io.BytesIO(plain), len(plain) - 1, chunk=1000))
    empty = b"".join(crypto.encrypt_stream(key, io.BytesIO(b""), 0))
    assert await crypto.decrypt_all(key, empty) == b"" and len(empty) == crypto.sealed_length(0)


async def test_decrypt_stream_yields_bounded_pieces_and_detects_tampering():
    key = crypto.new_data_key()
    plain = os.urandom(7 * 1000 + 123)
    blob = bytes(crypto.encrypt(key, plain, chunk=1000))
    for start, end, piece in [(0, len(plain) - 1, 3000), (999, 1000, 1000), (1500, 6200, 2000), (7000, 9999, 1)]:
        parts = await _stream(key, blob, start, end, piece)
        assert b"".join(parts) == plain[start:end + 1]
        assert all(len(p) <= max(piece, 1000) for p in parts)
    bad = bytearray(blob)
    bad[crypto.HEADER.size + 3 * (1000 + crypto.TAG) + 7] ^= 1
    with pytest.raises(crypto.CryptoError, match="chunk 3"):
        await _stream(key, bytes(bad), 0, len(plain) - 1, 2000)
    with pytest.raises(crypto.CryptoError):  # cut after chunk 5: the range past it cannot authenticate
        await _stream(key, blob[:crypto.HEADER.size + 6 * (1000 + crypto.TAG)], 5000, len(plain) - 1, 1000)
