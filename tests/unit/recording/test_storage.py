"""The storage port: filesystem backend and the S3 backend against a real local SeaweedFS."""

from __future__ import annotations

import hashlib
import os
import uuid

import pytest

from recording import crypto
from recording.storage import (
    MIN_PART_SIZE as S3_MIN_PART,
    FilesystemStorage,
    MemoryStorage,
    NotFound,
    S3Storage,
    ShortStream,
    StorageError,
    check_key,
    put_file,
)
from tests.s3 import s3_fixture
from tests.unit.recording.audio import wav
from tests.unit.recording.helpers import Clock, make_call, make_service
from tests.unit.recording.test_service import recorded_call

s3_server = s3_fixture()


async def _exercise(storage) -> None:
    data = os.urandom(5000)
    await storage.put("2026/12/02/1.2.wav", data)
    assert await storage.size("2026/12/02/1.2.wav") == 5000
    assert await storage.read("2026/12/02/1.2.wav") == data
    assert await storage.read("2026/12/02/1.2.wav", 4000, 100) == data[4000:4100]
    await storage.put("2026/12/02/1.2.wav", b"again")  # overwrite: a re-run job is idempotent
    assert await storage.read("2026/12/02/1.2.wav") == b"again"
    await storage.delete("2026/12/02/1.2.wav")
    with pytest.raises(NotFound):
        await storage.read("2026/12/02/1.2.wav")


async def test_filesystem_backend(tmp_path):
    storage = FilesystemStorage(tmp_path / "store")
    await _exercise(storage)
    assert not list((tmp_path / "store").rglob("*.part"))


@pytest.mark.parametrize("key", ["../etc/passwd", "/abs", "a//b", "a b", "x/../../y", ""])
def test_keys_cannot_escape(key):
    with pytest.raises(ValueError):
        check_key(key)


async def test_s3_backend_against_seaweedfs(s3_server):
    storage = S3Storage(s3_server.endpoint, f"b-{uuid.uuid4().hex[:8]}", s3_server.access_key, s3_server.secret_key,
                        secure=False, prefix="callcore")
    await _exercise(storage)
    bad = S3Storage(s3_server.endpoint, "nope", s3_server.access_key, "wrong-secret", secure=False)
    with pytest.raises(StorageError):
        await bad.put("a.wav", b"x")


async def test_encrypted_recording_on_s3_plays_by_range(db_sessionmaker, tmp_path, s3_server):
    clock = Clock()
    storage = S3Storage(s3_server.endpoint, f"r-{uuid.uuid4().hex[:8]}", s3_server.access_key, s3_server.secret_key,
                        secure=False)
    ring = crypto.Keyring({"k1": os.urandom(32)}, "k1")
    svc = make_service(db_sessionmaker, tmp_path, clock=clock, storage=storage, keyring=ring, encrypt=True)
    call = make_call()
    await recorded_call(svc, clock, call)
    assert await svc.run_due_jobs() == 1
    rec = await svc.repo.by_call(call.id)
    assert rec["status"] == "ready" and rec["storage_backend"] == "s3" and rec["encrypted"]
    plain = wav([(1.0, False), (1.0, True), (2.0, False)])
    key = (await svc.repo.get_row_fields(rec["id"], "storage_key"))["storage_key"]
    stored = await storage.read(key)
    assert stored.startswith(b"CCR1") and plain[1000:3000] not in stored
    r, size = await svc.open_audio(rec["id"])
    assert size == len(plain) and await svc.read_audio(r, 65530, 65600) == plain[65530:65601]


# ---------------------------------------------------------------- streamed puts (issue 18)
MiB = 2**20


def _pieces(data: bytes, size: int, fail_after: int | None = None):
    for i, at in enumerate(range(0, len(data), size)):
        if fail_after is not None and i == fail_after:
            raise RuntimeError("source read failed")
        yield data[at:at + size]


async def _streams_all_or_nothing(storage, big: int, piece: int) -> None:
    """put_stream stores the whole stream, or — on a failing source, a short or a long stream —
    nothing: the object already under the key is left as it was."""
    key = "2026/12/03/9.9.mp3"
    data = os.urandom(big)
    await storage.put_stream(key, _pieces(data, piece), len(data))
    assert await storage.size(key) == big and await storage.read(key, big - 10) == data[-10:]
    assert await storage.read(key) == data
    await storage.put(key, b"the previous object")
    with pytest.raises((RuntimeError, StorageError), match="source read failed"):
        await storage.put_stream(key, _pieces(data, piece, fail_after=big // piece - 1), len(data))
    with pytest.raises(ShortStream, match="announced"):
        await storage.put_stream(key, _pieces(data[:-1], piece), len(data))
    with pytest.raises(ShortStream, match="announced"):
        await storage.put_stream(key, _pieces(data + b"x", piece), len(data))
    assert await storage.read(key) == b"the previous object"
    with pytest.raises((RuntimeError, StorageError)):
        await storage.put_stream("2026/12/03/new.mp3", _pieces(data, piece, fail_after=big // piece - 1))
    with pytest.raises(NotFound):
        await storage.size("2026/12/03/new.mp3")
    await storage.put_stream("2026/12/03/empty.mp3", iter(()), 0)
    assert await storage.read("2026/12/03/empty.mp3") == b""


async def test_filesystem_put_stream_is_all_or_nothing(tmp_path):
    storage = FilesystemStorage(tmp_path / "store")
    await _streams_all_or_nothing(storage, 3 * 65536 + 5, 65536)
    assert not [p for p in (tmp_path / "store").rglob("*") if p.name.endswith(".part")]


async def test_memory_double_put_stream_is_all_or_nothing():
    await _streams_all_or_nothing(MemoryStorage(), 3 * 65536 + 5, 65536)


async def test_put_file_seals_hashes_and_is_read_back_by_range(tmp_path):
    storage = FilesystemStorage(tmp_path / "store")
    src = tmp_path / "out.mp3"
    src.write_bytes(os.urandom(5 * crypto.CHUNK + 77))
    plain = src.read_bytes()
    stored = await put_file(storage, "2026/12/03/1.1.mp3", src)
    assert (stored.size, stored.stored) == (len(plain), len(plain))
    assert stored.sha256 == hashlib.sha256(plain).hexdigest() and await storage.read("2026/12/03/1.1.mp3") == plain
    key = crypto.new_data_key()
    sealed = await put_file(storage, "2026/12/03/1.2.mp3", src, data_key=key)
    blob = await storage.read("2026/12/03/1.2.mp3")
    assert sealed.size == len(plain) and sealed.stored == len(blob) == crypto.sealed_length(len(plain))
    assert sealed.sha256 == hashlib.sha256(blob).hexdigest() and await crypto.decrypt_all(key, blob) == plain


def _traced_peak(coro_fn) -> int:
    """Peak bytes allocated by Python (every thread) while ``coro_fn()`` runs."""
    import asyncio
    import tracemalloc

    async def run() -> None:
        await coro_fn()

    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        asyncio.run(run())
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_put_file_never_holds_the_object_on_the_filesystem(tmp_path):
    src = tmp_path / "long.mp3"
    with open(src, "wb") as f:
        for _ in range(24):
            f.write(os.urandom(MiB))
    storage = FilesystemStorage(tmp_path / "store")
    peak = _traced_peak(lambda: put_file(storage, "2026/12/03/long.mp3", src, data_key=crypto.new_data_key()))
    assert peak < 4 * MiB, peak  # one read piece + one sealed chunk, not the 24 MiB object
    assert (tmp_path / "store/2026/12/03/long.mp3").stat().st_size == crypto.sealed_length(24 * MiB)


def _s3(server, part_size: int = S3_MIN_PART) -> S3Storage:
    return S3Storage(server.endpoint, f"m-{uuid.uuid4().hex[:8]}", server.access_key, server.secret_key,
                     secure=False, prefix="callcore", part_size=part_size)


async def test_s3_put_stream_multipart_is_all_or_nothing(s3_server):
    storage = _s3(s3_server)
    await _streams_all_or_nothing(storage, 2 * S3_MIN_PART + 12345, 65536)  # three parts
    stat = await storage._call("stat", storage._client.stat_object, storage.bucket, storage._key("2026/12/03/9.9.mp3"))
    uploads = await storage._call("uploads", storage._client._list_multipart_uploads, storage.bucket)
    assert not uploads.uploads  # every failed multipart upload was aborted: no parts left behind
    assert stat.size == len(b"the previous object")


async def test_s3_put_file_is_multipart_above_the_part_size_and_one_put_below(s3_server, tmp_path):
    storage = _s3(s3_server)
    src = tmp_path / "a.mp3"
    src.write_bytes(os.urandom(S3_MIN_PART + 1000))
    key = crypto.new_data_key()
    sealed = await put_file(storage, "2026/12/03/big.mp3", src, data_key=key)
    blob = await storage.read("2026/12/03/big.mp3")
    assert len(blob) == sealed.stored and sealed.sha256 == hashlib.sha256(blob).hexdigest()
    assert await crypto.decrypt_all(key, blob) == src.read_bytes()
    big = await storage._call("stat", storage._client.stat_object, storage.bucket, storage._key("2026/12/03/big.mp3"))
    assert big.etag.endswith("-2")  # two parts
    small = tmp_path / "b.mp3"
    small.write_bytes(os.urandom(1000))
    await put_file(storage, "2026/12/03/small.mp3", small)
    one = await storage._call("stat", storage._client.stat_object, storage.bucket, storage._key("2026/12/03/small.mp3"))
    assert "-" not in one.etag and await storage.read("2026/12/03/small.mp3") == small.read_bytes()


def test_s3_put_file_holds_a_few_parts_not_the_object(s3_server, tmp_path):
    src = tmp_path / "long.mp3"
    with open(src, "wb") as f:
        for _ in range(24):
            f.write(os.urandom(MiB))
    storage = _s3(s3_server)
    peak = _traced_peak(lambda: put_file(storage, "2026/12/03/long.mp3", src, data_key=crypto.new_data_key()))
    # minio's previous part (until its loop drops it), the next part's pieces and their join:
    # about three parts, whatever the object's length (24 MiB here)
    assert peak < 3.5 * S3_MIN_PART, peak
    with pytest.raises(ValueError, match="part size"):
        _s3(s3_server, part_size=MiB)
