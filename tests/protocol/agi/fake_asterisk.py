"""A fake Asterisk FastAGI client that replays the captures in tests/fixtures/asterisk-captures.

The capture files pair responses with commands the way the capturing script
read them, which is off by one after a ``HANGUP`` notice. We rebuild the
correct pairing: concatenate every response line plus ``after`` into one
stream, split it into response *units* (leading ``HANGUP`` notices + one
status line, or a whole ``520-`` … ``520 End of proper usage.`` block), and
answer the n-th command the server sends with the n-th unit.

``parse_args`` mirrors res_agi.c ``parse_args()`` so tests can check that what
the server sent means to Asterisk exactly what the capture's command meant.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Capture:
    headers: bytes
    commands: list[str]
    units: list[list[str]]
    raw: dict = field(repr=False, default_factory=dict)


def response_units(lines: list[str]) -> list[list[str]]:
    units: list[list[str]] = []
    cur: list[str] = []
    in_usage = False
    for line in lines:
        cur.append(line)
        if in_usage:
            if line.startswith("520 "):
                in_usage = False
                units.append(cur)
                cur = []
        elif line == "HANGUP\n":
            continue
        elif line.startswith("520-"):
            in_usage = True
        else:
            units.append(cur)
            cur = []
    assert not cur, f"dangling response lines {cur!r}"
    return units


def load_capture(path: Path, index: int = 0) -> Capture:
    with path.open(encoding="utf-8") as fh:
        record = json.loads(fh.read().splitlines()[index])
    stream = [line for ex in record["exchanges"] for line in ex["resp"]]
    stream += record["after"].splitlines(keepends=True)
    return Capture(
        headers="".join(record["headers"]).encode("utf-8"),
        commands=[ex["cmd"] for ex in record["exchanges"]],
        units=response_units(stream),
        raw=record,
    )


def parse_args(line: str) -> list[str]:
    """res_agi.c parse_args(): whitespace-separated words, "quotes", backslash escapes."""
    words: list[list[str]] = []
    quoted = escaped = False
    whitespace = True
    for ch in line:
        if ch == '"' and not escaped:
            quoted = not quoted
            if quoted and whitespace:  # an opening quote after whitespace starts a word ("" is one)
                words.append([])
                whitespace = False
            continue
        if ch in " \t" and not quoted and not escaped:
            whitespace = True
            continue
        if ch == "\\" and not escaped:
            escaped = True
            continue
        if whitespace:
            words.append([])
            whitespace = False
        words[-1].append(ch)
        escaped = False
    return ["".join(w) for w in words]


@dataclass
class Replay:
    received: list[str]
    extra: bytes  # anything the server wrote after the last answer, before closing
    closed_by_server: bool
    seconds: float


async def replay(port: int, capture: Capture, *, deadline: float = 10.0, host: str = "127.0.0.1") -> Replay:
    """Connect, send the header, answer each command with the next unit, wait for the server to close."""
    started = time.monotonic()
    reader, writer = await asyncio.open_connection(host, port)
    received: list[str] = []
    closed = False
    extra = b""
    try:
        async with asyncio.timeout(deadline):
            writer.write(capture.headers)
            await writer.drain()
            for unit in capture.units:
                line = await reader.readline()
                if not line:
                    closed = True
                    break
                received.append(line.decode("utf-8"))
                writer.write("".join(unit).encode("utf-8"))
                await writer.drain()
            if not closed:
                extra = await reader.read()  # until the server closes
                closed = True
    finally:
        writer.close()
    return Replay(received, extra, closed, time.monotonic() - started)
