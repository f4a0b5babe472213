"""The storage port for recording audio, with its two backends and a test double.

``Storage`` is narrow on purpose (put / put a stream / read a byte range / size / delete):
the service never knows where bytes live. ``put_stream(key, chunks, length)`` takes an
iterable of byte strings, consumed **in the backend's worker thread** (so it may block:
reading a file, sealing AES-GCM chunks), and never holds the whole object (issue 18: a
4-hour recording's MP3 was held twice to be stored): either the whole object lands under
``key`` or nothing does — a failed or short stream leaves the previous object, if any, as
it was. ``put(key, data)`` is the same for bytes in memory (KB attachments). Keys are built by the service from the
recording's call id only (``2026/12/02/1795395000.12.wav``) and are checked
here again: no ``..``, no absolute paths, only ``[A-Za-z0-9._/-]``.

* :class:`FilesystemStorage` — the default, under ``<data_dir>/recordings/store``;
  writes go to a temporary file in the same directory, fsync'd, renamed, and the
  directory fsync'd (a crash never leaves half a file under the final name, and a
  stored file survives the spool file's removal).
* :class:`S3Storage` — any S3-compatible server (AWS, MinIO, SeaweedFS) through the
  ``minio`` client (synchronous, so every call runs in a worker thread). A stream up to
  ``part_size`` (8 MiB) is one PUT; a longer one a multipart upload of ``part_size``
  parts, one at a time (about three parts in memory at the peak: minio's previous part, the
  next one's pieces and their join), aborted on any failure so no part is left.
* :class:`MemoryStorage` — the test double, with an optional injected failure.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import io
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator, Protocol

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,250}$")


class StorageError(Exception):
    """The backend failed (retryable)."""


class NotFound(StorageError):
    pass


def check_key(key: str) -> str:
    if not _KEY.match(key) or ".." in key or "//" in key:
        raise ValueError(f"invalid storage key {key!r}")
    return key


READ_CHUNK = 1 << 20


def file_chunks(f: BinaryIO, size: int = READ_CHUNK) -> Iterator[bytes]:
    """The rest of open file ``f`` in pieces of ``size`` bytes (for ``put_stream``)."""
    while piece := f.read(size):
        yield piece


def _close(chunks: Iterable[bytes]) -> None:
    close = getattr(chunks, "close", None)  # a generator: run its finally blocks now
    if close is not None:
        close()


class ShortStream(StorageError):
    """The stream did not hold the ``length`` announced: nothing was stored."""


class _StreamReader:
    """A file-like ``read(n)`` over an iterable of byte strings, for minio's ``put_object``:
    each read returns exactly ``n`` bytes until the end (minio concatenates short reads, copying
    the part each time). With a ``length``, the iterable must end exactly there: it is drained
    when the last byte is read, before minio completes the upload."""

    def __init__(self, chunks: Iterable[bytes], length: int | None) -> None:
        self._it = iter(chunks)
        self._length = length
        self._buf: collections.deque[bytes] = collections.deque()
        self._have = 0
        self._done = False
        self.total = 0

    def _pull(self, n: int) -> None:
        while self._have < n and not self._done:
            try:
                piece = next(self._it)
            except StopIteration:
                self._done = True
                break
            if piece:
                self._buf.append(bytes(piece))
                self._have += len(piece)

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = 1 << 62
        self._pull(n)
        parts: list[bytes] = []
        got = 0
        while self._buf and got < n:
            piece = self._buf[0]
            take = n - got
            if len(piece) <= take:
                parts.append(self._buf.popleft())
                got += len(piece)
            else:
                parts.append(piece[:take])
                self._buf[0] = piece[take:]
                got += take
        self._have -= got
        out = b"" if not parts else parts[0] if len(parts) == 1 else b"".join(parts)
        self.total += got
        if self._length is not None:
            if self.total > self._length:
                raise ShortStream(f"stream holds more than the {self._length} bytes announced")
            if self.total == self._length:
                self._pull(1)  # must be the end (runs the producer's own end checks)
                if self._have:
                    raise ShortStream(f"stream holds more than the {self._length} bytes announced")
            elif not out:
                raise ShortStream(f"stream ended at {self.total} of the {self._length} bytes announced")
        return out


class Storage(Protocol):
    name: str

    async def put(self, key: str, data: bytes) -> None: ...

    async def put_stream(self, key: str, chunks: Iterable[bytes], length: int | None = None) -> None:
        """Store the concatenation of ``chunks`` (consumed in a worker thread); ``length``, when
        given, is checked: a stream of another length stores nothing."""
        ...

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
        await self.put_stream(key, (data,), len(data))

    async def put_stream(self, key: str, chunks: Iterable[bytes], length: int | None = None) -> None:
        path = self._path(key)

        def write() -> None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                # a unique temporary name in the same directory: two writers never share it
                fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
                try:
                    with os.fdopen(fd, "wb") as f:
                        n = 0
                        for piece in chunks:
                            f.write(piece)
                            n += len(piece)
                        if length is not None and n != length:
                            raise ShortStream(f"fs put {key}: stream of {n} bytes, {length} announced")
                        f.flush()
                        os.fsync(f.fileno())
                    os.replace(tmp, path)
                except BaseException:
                    with contextlib.suppress(OSError):
                        os.unlink(tmp)
                    raise
                dir_fd = os.open(path.parent, os.O_RDONLY)
                try:
                    os.fsync(dir_fd)  # the rename itself is durable before the spool file goes
                finally:
                    os.close(dir_fd)
            finally:
                _close(chunks)

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


PART_SIZE = 8 * 2**20  # a stream longer than this is a multipart upload of parts this size
MIN_PART_SIZE = 5 * 2**20  # S3's minimum for every part but the last


class S3Storage:
    name = "s3"

    def __init__(self, endpoint: str, bucket: str, access_key: str, secret_key: str, *, secure: bool = False,
                 region: str | None = None, prefix: str = "", part_size: int = PART_SIZE) -> None:
        from minio import Minio

        if not MIN_PART_SIZE <= part_size <= 5 * 2**30:
            raise ValueError(f"S3 part size must be 5 MiB..5 GiB, got {part_size}")
        self.part_size = part_size
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
        except ShortStream:
            raise
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject", "NotFound"):
                raise NotFound(what) from exc
            raise StorageError(f"s3 {what}: {exc.code}: {exc.message}") from exc
        except Exception as exc:  # noqa: BLE001 - connection errors (urllib3) are retryable storage errors
            raise StorageError(f"s3 {what}: {type(exc).__name__}: {exc}") from exc

    async def put(self, key: str, data: bytes) -> None:
        await self._call(f"put {key}", self._client.put_object, self.bucket, self._key(key), io.BytesIO(data), len(data))

    async def put_stream(self, key: str, chunks: Iterable[bytes], length: int | None = None) -> None:
        name = self._key(key)

        def upload() -> None:
            reader = _StreamReader(chunks, length)
            try:
                if length == 0:  # minio reads nothing of an empty object: check it is empty
                    reader.read(1)
                # one part uploaded at a time; minio aborts the multipart upload on any error
                # (the reader's included), so a failed stream leaves no object and no parts
                self._client.put_object(self.bucket, name, reader, -1 if length is None else length,
                                        part_size=self.part_size, num_parallel_uploads=1)
            finally:
                _close(chunks)

        await self._call(f"put {key}", upload)

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
        self.streamed = 0  # puts that came through put_stream

    async def put(self, key: str, data: bytes) -> None:
        check_key(key)
        if self.fail_puts > 0:
            self.fail_puts -= 1
            raise StorageError("injected failure")
        self.objects[key] = bytes(data)

    async def put_stream(self, key: str, chunks: Iterable[bytes], length: int | None = None) -> None:
        check_key(key)

        def collect() -> bytes:
            try:
                return b"".join(chunks)
            finally:
                _close(chunks)

        if self.fail_puts > 0:
            self.fail_puts -= 1
            _close(chunks)
            raise StorageError("injected failure")
        data = await asyncio.to_thread(collect)
        if length is not None and len(data) != length:
            raise ShortStream(f"memory put {key}: stream of {len(data)} bytes, {length} announced")
        self.streamed += 1
        self.objects[key] = data

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


@dataclass
class Stored:
    size: int  # bytes of the file (the plaintext)
    stored: int  # bytes of the object (the envelope when sealed)
    sha256: str  # of the object's bytes


async def put_file(storage: Storage, key: str, path: Path, *, data_key: bytes | None = None) -> Stored:
    """Store the file at ``path`` under ``key``, read a piece at a time in the backend's worker
    thread and, with ``data_key``, sealed on the way in the recording envelope
    (``recording.crypto.encrypt_stream``: the same layout as ``encrypt``). Memory is one piece
    whatever the file's length (S3: one part); the SHA-256 of the stored bytes is computed on the
    way too."""
    size = (await asyncio.to_thread(os.stat, path)).st_size
    digest = hashlib.sha256()
    if data_key is None:
        length = size

        def pieces(f: BinaryIO) -> Iterator[bytes]:
            return file_chunks(f)
    else:
        from recording import crypto

        length = crypto.sealed_length(size)

        def pieces(f: BinaryIO) -> Iterator[bytes]:
            return crypto.encrypt_stream(data_key, f, size)

    def produce() -> Iterator[bytes]:  # runs in the backend's thread: the file opens there
        with open(path, "rb") as f:
            for piece in pieces(f):
                digest.update(piece)
                yield piece

    await storage.put_stream(key, produce(), length)
    return Stored(size, length, digest.hexdigest())


def build_storage(settings) -> Storage:
    """The backend named by ``settings.recording_storage`` (``fs`` default, or ``s3``)."""
    if settings.recording_storage == "s3":
        s3 = settings.recording_s3
        if s3 is None:
            raise ValueError("recording_storage is s3 but recording_s3 (endpoint, bucket, keys) is not set")
        return S3Storage(s3.endpoint, s3.bucket, s3.access_key, s3.secret_key.get_secret_value(), secure=s3.secure,
                         region=s3.region, prefix=s3.prefix)
    return FilesystemStorage(settings.effective_recording_store_dir)
