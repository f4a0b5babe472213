"""Test-side tools for the emulator conformance tests: a raw-socket AMI client, a tiny
FastAGI responder, capture parsing and the comparison/normalisation used by the assertions.

Deliberately independent of callcore's own AMI/AGI code (written by others in parallel).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from cti.ami.events import CONSUMED_EVENTS

CAPTURES = Path(__file__).resolve().parents[2] / "fixtures" / "asterisk-captures"

Frame = list[tuple[str, str]]


def get(frame: Frame, key: str, default: str | None = None) -> str | None:
    for k, v in frame:
        if k == key:
            return v
    return default


def parse_stream(data: bytes) -> tuple[str, list[Frame]]:
    """Banner and frames of a raw AMI byte stream (decoded as UTF-8 on whole frames)."""
    banner, _, rest = data.partition(b"\r\n")
    frames = []
    for raw in rest.split(b"\r\n\r\n"):
        if not raw:
            continue
        frame = []
        for line in raw.decode("utf-8").split("\r\n"):
            k, _, v = line.partition(": ")
            if line.endswith(":") and not v:
                k = line[:-1]
            frame.append((k, v))
        frames.append(frame)
    return banner.decode(), frames


def load_capture(name: str) -> list[Frame]:
    banner, frames = parse_stream((CAPTURES / name).read_bytes())
    assert banner == "Asterisk Call Manager/9.0.0"
    return frames


def events(frames: list[Frame]) -> list[Frame]:
    return [f for f in frames if f and f[0][0] == "Event"]


def consumed(frames: list[Frame]) -> list[Frame]:
    return [f for f in events(frames) if f[0][1] in CONSUMED_EVENTS]


def names(frames: list[Frame]) -> list[str]:
    return [f[0][1] for f in frames]


def responses(frames: list[Frame]) -> list[Frame]:
    return [f for f in frames if f and f[0][0] == "Response"]


class Normalizer:
    """Replace run-specific ids by ordinals: Uniqueids → U1.., Local sequence → L1.., bridges → B1.."""

    def __init__(self) -> None:
        self.ids: dict[str, str] = {}

    def _ord(self, kind: str, value: str) -> str:
        key = kind + value
        if key not in self.ids:
            self.ids[key] = f"{kind}{sum(1 for k in self.ids if k.startswith(kind)) + 1}"
        return self.ids[key]

    def value(self, key: str, v: str) -> str:
        if key.endswith(("Uniqueid", "Linkedid")) and re.fullmatch(r"\d+\.\d+", v):
            return self._ord("U", v)
        if key.endswith("BridgeUniqueid") or key == "BridgeId":
            return self._ord("B", v) if v else v
        m = re.fullmatch(r"(Local/[^@]+@[^-]+(?:-[a-z]+)*)-([0-9a-f]{8});([12])", v)
        if m:
            return f"{m.group(1)}-{self._ord('L', m.group(2))};{m.group(3)}"
        return v

    def frame(self, f: Frame) -> dict[str, str]:
        return {k: self.value(k, v) for k, v in f}


def per_channel_sequences(frames: list[Frame]) -> dict[str, list[str]]:
    """Event types per (normalised) channel, for events naming a channel."""
    norm = Normalizer()
    out: dict[str, list[str]] = {}
    for f in frames:
        d = norm.frame(f)
        ch = d.get("Channel") or d.get("DestChannel")
        if ch:
            out.setdefault(ch, []).append(d["Event"])
    return out


def header_shapes(frames: list[Frame]) -> dict[str, set[tuple[str, ...]]]:
    out: dict[str, set[tuple[str, ...]]] = {}
    for f in events(frames):
        out.setdefault(f[0][1], set()).add(tuple(k for k, _ in f))
    return out


def assert_same_shapes(ours: list[Frame], theirs: list[Frame]) -> None:
    """Every event type both streams contain has header names (in order) that the capture also has."""
    mine, ref = header_shapes(ours), header_shapes(theirs)
    for name in set(mine) & set(ref):
        for shape in mine[name]:
            assert shape in ref[name], f"{name}: header order {shape} not in capture shapes {ref[name]}"


LIST_ITEMS = {"CoreShowChannel", "QueueParams", "QueueMember", "QueueEntry", "QueueSummary"}


def linkage(frames: list[Frame], norm: "Normalizer | None" = None) -> list[tuple]:
    """Normalised identities of the consumed events: who is who, in which queue, which member.

    Items of one list response (CoreShowChannel, QueueMember …) come in Asterisk's hash
    order, which is not meaningful: each run of list items is sorted.
    """
    norm = norm or Normalizer()
    out: list[tuple] = []
    run: list[tuple] = []
    for f in frames:
        d = norm.frame(f)
        item = (
                d["Event"],
                d.get("Channel"),
                d.get("Uniqueid"),
                d.get("Linkedid"),
                d.get("DestChannel"),
                d.get("DestUniqueid"),
                d.get("DestLinkedid"),
                d.get("Queue"),
                d.get("Interface"),
                d.get("MemberName"),
        )
        if d["Event"] in LIST_ITEMS:
            run.append(item)
            continue
        out.extend(sorted(run, key=repr))
        run = []
        out.append(item)
    out.extend(sorted(run, key=repr))
    return out


def without(frames: list[Frame], floating: tuple[str, ...]) -> list[Frame]:
    return [f for f in frames if f[0][1] not in floating]


# ------------------------------------------------------------------ raw AMI client
class RawAmi:
    """A minimal AMI client over a raw socket: frames split on CRLFCRLF, decoded whole."""

    def __init__(self) -> None:
        self.raw = b""
        self.banner = ""
        self.frames: list[Frame] = []
        self._cond = asyncio.Condition()
        self._task: asyncio.Task | None = None
        self.eof = False

    async def connect(self, port: int, host: str = "127.0.0.1") -> "RawAmi":
        self.reader, self.writer = await asyncio.open_connection(host, port)
        line = await asyncio.wait_for(self.reader.readline(), 5)
        self.raw += line
        self.banner = line.decode().rstrip("\r\n")
        self._task = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        buf = b""
        try:
            while True:
                chunk = await self.reader.read(4096)
                if not chunk:
                    break
                self.raw += chunk
                buf += chunk
                while b"\r\n\r\n" in buf:
                    raw, buf = buf.split(b"\r\n\r\n", 1)
                    _, frames = parse_stream(b"x\r\n" + raw + b"\r\n\r\n")
                    async with self._cond:
                        self.frames.extend(frames)
                        self._cond.notify_all()
        finally:
            self.eof = True
            async with self._cond:
                self._cond.notify_all()

    def send(self, action: str, **headers: str) -> None:
        lines = [f"Action: {action}"]
        for k, v in headers.items():
            if isinstance(v, (list, tuple)):
                lines += [f"{k}: {x}" for x in v]
            else:
                lines.append(f"{k}: {v}")
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8"))

    async def wait(self, pred: Callable[[Frame], bool], timeout: float = 5.0, start: int = 0) -> Frame:
        async def _w() -> Frame:
            async with self._cond:
                while True:
                    for f in self.frames[start:]:
                        if pred(f):
                            return f
                    if self.eof:
                        raise EOFError("AMI connection closed")
                    await self._cond.wait()

        return await asyncio.wait_for(_w(), timeout)

    async def action(self, action: str, aid: str, timeout: float = 5.0, **headers: str) -> Frame:
        self.send(action, ActionID=aid, **headers)
        return await self.wait(lambda f: f[0][0] == "Response" and get(f, "ActionID") == aid, timeout)

    async def list_action(self, action: str, aid: str, complete: str, timeout: float = 5.0, **headers: str) -> list[Frame]:
        start = len(self.frames)
        self.send(action, ActionID=aid, **headers)
        await self.wait(lambda f: get(f, "Event") == complete and get(f, "ActionID") == aid, timeout, start)
        return [f for f in self.frames[start:] if get(f, "ActionID") == aid]

    async def event(self, name: str, timeout: float = 5.0, start: int = 0, **match: str) -> Frame:
        return await self.wait(
            lambda f: get(f, "Event") == name and all(get(f, k) == v for k, v in match.items()), timeout, start
        )

    async def login(self, secret: str = "change-me-callcore-secret") -> Frame:
        return await self.action("Login", "login-1", Username="callcore", Secret=secret)

    async def close(self) -> None:
        self.writer.close()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass


# ------------------------------------------------------------------ FastAGI responder
@dataclass
class AgiScript:
    """A scripted FastAGI server: runs ``commands`` in order for each session, records everything."""

    commands: list[str]
    sessions: list[dict] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session: dict = {"headers": [], "exchanges": [], "notices": 0}
        self.sessions.append(session)
        while True:
            line = await reader.readline()
            if not line:
                break
            session["headers"].append(line.decode("utf-8"))
            if line == b"\n":
                break
        try:
            for cmd in self.commands:
                writer.write((cmd + "\n").encode())
                await writer.drain()
                resp = []
                while True:
                    raw = await asyncio.wait_for(reader.readline(), 10)
                    if not raw:
                        raise EOFError
                    text = raw.decode("utf-8")
                    if text == "HANGUP\n":
                        session["notices"] += 1
                        session.setdefault("notice_before", cmd)
                        continue
                    resp.append(text)
                    if not text.startswith("520-") and not (resp[0].startswith("520-") and not text.startswith("520 ")):
                        break
                session["exchanges"].append({"cmd": cmd, "resp": resp})
        except EOFError:
            pass
        writer.close()


async def start_agi(script: AgiScript) -> tuple[asyncio.base_events.Server, int]:
    server = await asyncio.start_server(script.handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def poll(pred: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not pred():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)
