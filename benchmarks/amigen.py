"""AMI traffic from the real captures, multiplied with fresh unique ids, and a fake AMI server.

:class:`CaptureMix` loads every ``tests/fixtures/asterisk-captures/ami-*.raw`` (banner
and the ``Shutdown`` frame dropped: a Shutdown makes a client reconnect), and turns
the concatenated frames into a template whose call identifiers are slots:

* Uniqueid-like values ``1795395806.2`` (Uniqueid, Linkedid, DestUniqueid, ...);
* channel sequence numbers ``Local/1001@agents-00000002;1`` (the ``00000002``);
* bridge UUIDs.

``copy(i)`` fills the slots with values unique to copy ``i`` (``2000000000+i.j``,
``%06x%02x``, ...), so every copy is a new set of calls that start and end, as on a
busy PBX, instead of the same call replayed (which state would treat as stale).

:func:`serve_ami` is a fake Asterisk manager: banner, answers Login/Ping/Logoff and
the resync list actions (empty lists), and streams whatever the owner hands it.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any, Callable

from benchmarks.common import CAPTURES

DELIM = b"\r\n\r\n"
_SLOT = re.compile(
    rb"(?P<uid>\b1[0-9]{9}\.[0-9]+\b)"
    rb"|(?P<uuid>\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b)"
    rb"|(?<=-)(?P<seq>[0-9a-f]{8})(?=[;\r])"
)
#: the files whose frames make the mix (every AMI capture but the failed login)
EXCLUDE = {"ami-bad-login.raw"}


def capture_frames(paths: list[Path] | None = None) -> list[bytes]:
    """Every frame (without its delimiter) of the captures, banner and Shutdown dropped."""
    if paths is None:
        paths = sorted(p for p in CAPTURES.glob("ami-*.raw") if p.name not in EXCLUDE)
    frames: list[bytes] = []
    for p in paths:
        data = p.read_bytes()
        if data.startswith(b"Asterisk Call Manager/"):
            data = data[data.index(b"\r\n") + 2 :]
        for f in data.split(DELIM):
            f = f.strip(b"\r\n")
            if not f or f.startswith(b"Event: Shutdown\r\n"):
                continue
            frames.append(f)
    return frames + closing_hangups(frames)


_UID = re.compile(rb"^Uniqueid: (.*)$", re.M)


def closing_hangups(frames: list[bytes]) -> list[bytes]:
    """Synthetic ``Hangup`` events for the channels still up at the end of the captures.

    ``ami-resync-snapshot.raw`` stops while one caller still waits in a queue; replayed
    thousands of times, that call would pile up in state as a leak of the *data*, not of
    the code. Each such channel gets the Hangup Asterisk would have sent (its
    ``Newchannel`` headers, ``Cause: 16``), appended once per copy.
    """
    alive: dict[bytes, bytes] = {}
    for f in frames:
        if f.startswith(b"Event: Newchannel\r\n"):
            m = _UID.search(f)
            if m:
                alive[m.group(1)] = f
        elif f.startswith(b"Event: Hangup\r\n"):
            m = _UID.search(f)
            if m:
                alive.pop(m.group(1), None)
    out = []
    for f in alive.values():
        body = f[len(b"Event: Newchannel") :]
        out.append(b"Event: Hangup" + body + b"\r\nCause: 16\r\nCause-txt: Normal Clearing")
    return out


class CaptureMix:
    def __init__(self, frames: list[bytes] | None = None) -> None:
        self.frames = frames if frames is not None else capture_frames()
        blob = b"".join(f + DELIM for f in self.frames)
        self.frames_per_copy = len(self.frames)
        self.bytes_per_copy = len(blob)
        # template: literal pieces and slots (kind, index of the distinct original value)
        pieces: list[bytes] = []
        slots: list[tuple[str, int]] = []
        ids: dict[tuple[str, bytes], int] = {}
        pos = 0
        for m in _SLOT.finditer(blob):
            kind = m.lastgroup or "uid"
            pieces.append(blob[pos : m.start()])
            key = (kind, m.group())
            slots.append((kind, ids.setdefault(key, len(ids))))
            pos = m.end()
        pieces.append(blob[pos:])
        self._pieces = pieces
        self._slots = slots
        self.distinct_ids = len(ids)
        self._kinds = [k for (k, _v), _i in sorted(ids.items(), key=lambda kv: kv[1])]

    def copy(self, i: int) -> bytes:
        """Copy ``i`` of the mix with fresh identifiers."""
        values: list[bytes] = []
        for j, kind in enumerate(self._kinds):
            if kind == "uid":
                values.append(b"%d.%d" % (2000000000 + i, j))
            elif kind == "seq":
                values.append(b"%06x%02x" % (i & 0xFFFFFF, j & 0xFF))
            else:
                values.append(b"00000000-0000-4000-8000-%08x%04x" % (i & 0xFFFFFFFF, j & 0xFFFF))
        pieces = self._pieces
        slots = self._slots
        out = [pieces[0]]
        append = out.append
        for n, (_kind, j) in enumerate(slots):
            append(values[j])
            append(pieces[n + 1])
        return b"".join(out)

    def stream(self, n_frames: int, start: int = 0, chunk_copies: int = 8):
        """Yield byte chunks totalling exactly ``n_frames`` frames (copies from ``start``)."""
        full, rest = divmod(n_frames, self.frames_per_copy)
        i = start
        buf: list[bytes] = []
        for _ in range(full):
            buf.append(self.copy(i))
            i += 1
            if len(buf) >= chunk_copies:
                yield b"".join(buf)
                buf = []
        if rest:
            c = self.copy(i)
            cut = 0
            for _ in range(rest):
                cut = c.index(DELIM, cut) + 4
            buf.append(c[:cut])
        if buf:
            yield b"".join(buf)

    def frames_of(self, i: int) -> list[bytes]:
        """Copy ``i`` split into frames (each with its delimiter), for pacing."""
        c = self.copy(i)
        return [f + DELIM for f in c.split(DELIM)[:-1]]


# ----------------------------------------------------------- fake manager
_LISTS = {
    "coreshowchannels": "CoreShowChannelsComplete",
    "queuestatus": "QueueStatusComplete",
    "queuesummary": "QueueSummaryComplete",
}


def _answer(headers: dict[str, str]) -> bytes:
    action = headers.get("action", "").lower()
    aid = headers.get("actionid", "")
    aid_line = f"ActionID: {aid}\r\n" if aid else ""
    if action == "login":
        return f"Response: Success\r\n{aid_line}Message: Authentication accepted\r\n\r\n".encode()
    if action == "logoff":
        return f"Response: Goodbye\r\n{aid_line}Message: Thanks for all the fish.\r\n\r\n".encode()
    if action == "ping":
        return f"Response: Success\r\n{aid_line}Ping: Pong\r\nTimestamp: 0.0\r\n\r\n".encode()
    complete = _LISTS.get(action)
    if complete:
        return (
            f"Response: Success\r\n{aid_line}EventList: start\r\nMessage: will follow\r\n\r\n"
            f"Event: {complete}\r\n{aid_line}EventList: Complete\r\nListItems: 0\r\n\r\n"
        ).encode()
    return f"Response: Success\r\n{aid_line}Message: OK\r\n\r\n".encode()


class FakeAmiServer:
    """One fake Asterisk manager endpoint. ``connected`` resolves with the writer of the
    first client that logged in (or, with ``require_login=False``, that connected)."""

    def __init__(self, require_login: bool = True) -> None:
        self.require_login = require_login
        self.server: asyncio.base_events.Server | None = None
        self.port = 0
        self.connected: asyncio.Future[asyncio.StreamWriter] | None = None
        self.actions: list[str] = []
        self.writers: list[asyncio.StreamWriter] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self, host: str = "127.0.0.1") -> int:
        self.connected = asyncio.get_running_loop().create_future()
        self.server = await asyncio.start_server(self._client, host, 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self.port

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        writer.write(b"Asterisk Call Manager/9.0.0\r\n")
        if not self.require_login and self.connected is not None and not self.connected.done():
            self.connected.set_result(writer)
        try:
            while True:
                raw = await reader.readuntil(DELIM)
                headers: dict[str, str] = {}
                for line in raw.decode("utf-8", "replace").split("\r\n"):
                    k, sep, v = line.partition(":")
                    if sep:
                        headers[k.strip().lower()] = v.strip()
                self.actions.append(headers.get("action", "?"))
                writer.write(_answer(headers))
                if headers.get("action", "").lower() == "login" and self.connected is not None and not self.connected.done():
                    self.connected.set_result(writer)
                if headers.get("action", "").lower() == "logoff":
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, asyncio.CancelledError):
            pass  # the client left, or the server is shutting down
        finally:
            try:
                writer.close()
            except Exception:
                pass

    async def close(self) -> None:
        for w in self.writers:
            try:
                w.close()
            except Exception:
                pass
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


async def write_all(writer: asyncio.StreamWriter, chunks: Any, on_chunk: Callable[[int], None] | None = None) -> int:
    """Write every chunk with backpressure; returns the bytes written."""
    total = 0
    for chunk in chunks:
        writer.write(chunk)
        total += len(chunk)
        if on_chunk is not None:
            on_chunk(total)
        await writer.drain()
    return total
