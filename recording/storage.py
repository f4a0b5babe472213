"""The storage port for recording audio, with its two backends and a test double.

``Storage`` is narrow on purpose (put / read a byte range / size / delete): the
service never knows where bytes live. Keys are built by the service from the
recording's call id only (``2026/12/02/1795395000.12.wav``) and are checked
here again: no ``..``, no absolute paths, only ``[A-Za-z0-9._/-]``.

* :class:`FilesystemStorage` — the default, under ``<data_dir>/recordings/store``;
  writes go to a temporary file and are renamed (a crash never leaves half a file
  under the final name).
* :class:`S3Storage` — any S3-compatible server (AWS, MinIO, SeaweedFS) through the
  ``minio`` client (synchronous, so every call runs in a worker thread).
* :class:`MemoryStorage` — the test double, with an optional injected failure.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
from pathlib import Path
from typing import Protocol

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,250}$")


class StorageError(Exception):
    """The backend failed (retryable)."""


class NotFound(StorageError):
    pass


def check_key(key: str) -> str:
    if not _KEY.match(key) or ".." in key or "//" in key:
        raise ValueError(f"invalid storage key {key!r}")
    return key


class Storage(Protocol):
    name: str

    async def put(self, key: str, data: bytes) -> None: ...

    async def read(self, key: str, start: int = 0, length: int | None = None) -> bytes: ...

    async def size(self, key: str) -> int: ...

    async def delete(self, key: str) -> None: ...


class FilesystemStorage:
    name = "fs"

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    async def put(self, key: str, data: bytes) -> None:
        path = self._path(key)

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".part")
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)

        try:
            await asyncio.to_thread(write)
        except OSError as exc:
            raise StorageError(f"fs put {key}: {exc}") from exc

    async def read(self, key: str, start: int = 0, length: int | None = None) -> bytes:
        path = self._path(key)

        def read() -> bytes:
            with open(path, "rb") as f:
                f.seek(start)
                return f.read() if length is None else f.read(length)

        try:
            return await asyncio.to_thread(read)
        except FileNotFoundError as exc:
            raise NotFound(key) from exc
        except OSError as exc:
            raise StorageError(f"fs read {key}: {exc}") from exc

    async def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError as exc:
            raise NotFound(key) from exc

    async def delete(self, key: str) -> None:
        try:
            self._path(key).unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"fs delete {key}: {exc}") from exc


class S3Storage:
    name = "s3"

    def __init__(self, endpoint: str, bucket: str, access_key: str, secret_key: str, *, secure: bool = False,
                 region: str | None = None, prefix: str = "") -> None:
        from minio import Minio

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._client = Minio(endpoint, access_key=access_key, secret_key=secret_key, secure=secure, region=region)
        self._bucket_ready = False

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    async def _call(self, what: str, fn, *args, **kw):
        from minio.error import S3Error

        def run():
            if not self._bucket_ready:
                if not self._client.bucket_exists(self.bucket):
                    self._client.make_bucket(self.bucket)
                self._bucket_ready = True
            return fn(*args, **kw)

        try:
            return await asyncio.to_thread(run)
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject", "NotFound"):
                raise NotFound(what) from exc
            raise StorageError(f"s3 {what}: {exc.code}: {exc.message}") from exc
        except Exception as exc:  # noqa: BLE001 - connection errors (urllib3) are retryable storage errors
            raise StorageError(f"s3 {what}: {type(exc).__name__}: {exc}") from exc

    async def put(self, key: str, data: bytes) -> None:
        await self._call(f"put {key}", self._client.put_object, self.bucket, self._key(key), io.BytesIO(data), len(data))

    async def read(self, key: str, start: int = 0, length: int | None = None) -> bytes:
        def get() -> bytes:
            resp = self._client.get_object(self.bucket, self._key(key), offset=start, length=length or 0)
            try:
                return resp.read()
            finally:
                resp.close()
                resp.release_conn()

        return await self._call(f"read {key}", get)

    async def size(self, key: str) -> int:
        stat = await self._call(f"stat {key}", self._client.stat_object, self.bucket, self._key(key))
        return int(stat.size)

    async def delete(self, key: str) -> None:
        await self._call(f"delete {key}", self._client.remove_object, self.bucket, self._key(key))


class MemoryStorage:
    """Test double: bytes in a dict; ``fail_puts`` makes the next N puts fail (retry tests)."""

    name = "memory"

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.fail_puts = 0

    async def put(self, key: str, data: bytes) -> None:
        check_key(key)
        if self.fail_puts > 0:
            self.fail_puts -= 1
            raise StorageError("injected failure")
        self.objects[key] = bytes(data)

    async def read(self, key: str, start: int = 0, length: int | None = None) -> bytes:
        if key not in self.objects:
            raise NotFound(key)
        data = self.objects[key]
        return data[start:] if length is None else data[start:start + length]

    async def size(self, key: str) -> int:
        if key not in self.objects:
            raise NotFound(key)
        return len(self.objects[key])

    async def delete(self, key: str) -> None:
        self.objects.pop(key, None)


def build_storage(settings) -> Storage:
    """The backend named by ``settings.recording_storage`` (``fs`` default, or ``s3``)."""
    if settings.recording_storage == "s3":
        s3 = settings.recording_s3
        if s3 is None:
            raise ValueError("recording_storage is s3 but recording_s3 (endpoint, bucket, keys) is not set")
        return S3Storage(s3.endpoint, s3.bucket, s3.access_key, s3.secret_key.get_secret_value(), secure=s3.secure,
                         region=s3.region, prefix=s3.prefix)
    return FilesystemStorage(settings.effective_recording_store_dir)
