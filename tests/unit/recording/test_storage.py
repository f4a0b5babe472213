"""The storage port: filesystem backend and the S3 backend against a real local SeaweedFS."""

from __future__ import annotations

import os
import uuid

import pytest

from recording import crypto
from recording.storage import FilesystemStorage, NotFound, S3Storage, StorageError, check_key
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
