"""A tiny fake Asterisk AMI server for protocol tests (GUIDE §2.9).

It speaks from the captures in ``tests/fixtures/asterisk-captures``: a test
script (``async def script(session)``) reads the client's actions and writes
captured frames back, re-labelled with the client's ActionIDs.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Awaitable, Callable

CAPTURES = Path(__file__).resolve().parents[2] / "fixtures" / "asterisk-captures"
BANNER = b"Asterisk Call Manager/9.0.0\r\n"
DELIM = b"\r\n\r\n"


def load_capture(name: str) -> bytes:
    return (CAPTURES / name).read_bytes()


def capture_frames(name: str) -> list[bytes]:
    """The frames of a capture (banner removed), each ending with ``\\r\\n\\r\\n``."""
    data = load_capture(name)
    assert data.startswith(b"Asterisk Call Manager/")
    body = data[data.index(b"\r\n") + 2 :]
    return [frame + DELIM for frame in body.split(DELIM) if frame]


def action_id_of(frame: bytes) -> str | None:
    for line in frame.split(b"\r\n"):
        if line.startswith(b"ActionID: "):
            return line[len(b"ActionID: ") :].decode()
    return None


def first_line(frame: bytes) -> bytes:
    return frame.split(b"\r\n", 1)[0]


def section(frames: list[bytes], action_id: str) -> list[bytes]:
    """Every frame answering ``action_id`` (response, list events, Complete)."""
    return [f for f in frames if action_id_of(f) == action_id]


def relabel(frame: bytes, old: str, new: str) -> bytes:
    out = frame.replace(b"\r\nActionID: " + old.encode() + b"\r\n", b"\r\nActionID: " + new.encode() + b"\r\n")
    assert out != frame or old == new, (frame[:80], old)
    return out


def response(action_id: str, status: str = "Success", message: str = "ok", **extra: str) -> bytes:
    lines = [f"Response: {status}", f"ActionID: {action_id}", f"Message: {message}"]
    lines += [f"{k}: {v}" for k, v in extra.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class Session:
    """One accepted client connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.actions: list[dict[str, str]] = []

    async def read_action(self, timeout: float = 3.0) -> dict[str, str] | None:
        """The next action the client sent (None on EOF)."""
        try:
            raw = await asyncio.wait_for(self.reader.readuntil(DELIM), timeout)
        except asyncio.IncompleteReadError:
            return None
        headers: dict[str, str] = {}
        for line in raw.decode().split("\r\n"):
            if ": " in line:
                k, v = line.split(": ", 1)
                headers[k] = headers[k] + "\n" + v if k in headers else v
        self.actions.append(headers)
        return headers

    async def expect(self, name: str, timeout: float = 3.0) -> dict[str, str]:
        action = await self.read_action(timeout)
        assert action is not None, f"EOF while waiting for {name}"
        assert action["Action"] == name, action
        return action

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def accept_login(self) -> dict[str, str]:
        login = await self.expect("Login")
        await self.write(response(login["ActionID"], message="Authentication accepted"))
        return login

    async def answer_logoff(self, timeout: float = 3.0) -> None:
        """Wait for Logoff (skipping other actions), answer Goodbye and close."""
        while True:
            action = await self.read_action(timeout)
            if action is None:
                break
            if action["Action"] == "Logoff":
                await self.write(response(action["ActionID"], "Goodbye", "Thanks for all the fish."))
                break
        self.close()

    def close(self) -> None:
        if not self.writer.is_closing():
            self.writer.close()


Script = Callable[[Session], Awaitable[None]]


class FakeAsterisk:
    """AMI server on 127.0.0.1:<random port>; each connection runs ``scripts[i]``
    (the last script repeats). Every handler task is owned and cancelled on close."""

    def __init__(self, *scripts: Script, banner: bytes = BANNER) -> None:
        assert scripts
        self.scripts = list(scripts)
        self.banner = banner
        self.sessions: list[Session] = []
        self.errors: list[BaseException] = []
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    async def start(self, port: int = 0) -> int:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop_listening(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def close(self) -> None:
        await self.stop_listening()
        for session in self.sessions:
            session.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = Session(reader, writer)
        index = len(self.sessions)
        self.sessions.append(session)
        script = self.scripts[min(index, len(self.scripts) - 1)]
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            if self.banner:
                await session.write(self.banner)
            await script(session)
        except (ConnectionError, asyncio.CancelledError):
            pass
        except BaseException as exc:  # surfaced by the tests through .errors
            self.errors.append(exc)
        finally:
            self._tasks.discard(task)
            session.close()


async def wait_for(predicate: Callable[[], bool], timeout: float = 3.0, what: str = "condition") -> None:
    """Poll ``predicate`` until true, failing after ``timeout`` seconds (GUIDE §2.10)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.005)
