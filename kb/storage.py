"""Where attachment bytes live: a narrow port and two adapters (filesystem, memory).

The port has the same shape as the recording package's storage port
(``put / read / size / delete`` on string keys), so the composition root can hand the
knowledge base that storage (filesystem or S3) instead of :class:`FilesystemStore`
without a change here. Keys are made by the service (``kb/<article>/<sha256>``), never
from a user's file name.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Protocol

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9/_.-]{0,250}$")


class StoreError(Exception):
    pass


class AttachmentStore(Protocol):
    async def put(self, key: str, data: bytes) -> None: ...

    async def read(self, key: str, start: int = 0, length: int | None = None) -> bytes: ...

    async def size(self, key: str) -> int: ...

    async def delete(self, key: str) -> None: ...


def check_key(key: str) -> str:
    if not _KEY.match(key) or ".." in key.split("/"):
        raise StoreError(f"invalid storage key {key!r}")
    return key


class FilesystemStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    async def put(self, key: str, data: bytes) -> None:
        path = self._path(key)

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(path.suffix + ".part")
            tmp.write_bytes(data)
            tmp.replace(path)

        await asyncio.to_thread(write)

    async def read(self, key: str, start: int = 0, length: int | None = None) -> bytes:
        path = self._path(key)

        def read() -> bytes:
            try:
                with path.open("rb") as f:
                    f.seek(start)
                    return f.read() if length is None else f.read(length)
            except FileNotFoundError:
                raise StoreError(f"no such object {key!r}") from None

        return await asyncio.to_thread(read)

    async def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            raise StoreError(f"no such object {key!r}") from None

    async def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


class MemoryStore:
    """The test double shipped next to the port."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    async def put(self, key: str, data: bytes) -> None:
        self.objects[check_key(key)] = bytes(data)

    async def read(self, key: str, start: int = 0, length: int | None = None) -> bytes:
        try:
            data = self.objects[key]
        except KeyError:
            raise StoreError(f"no such object {key!r}") from None
        return data[start:] if length is None else data[start : start + length]

    async def size(self, key: str) -> int:
        return len(await self.read(key))

    async def delete(self, key: str) -> None:
        self.objects.pop(key, None)
