"""(a) Every capture replayed over a real loopback socket, split at random, through AmiClient."""

from __future__ import annotations

import asyncio
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cti.ami import AmiAuthError, AmiClient
from cti.ami.events import AmiEvent, translate
from cti.ami.protocol import AmiFrameParser

from .fake_asterisk import CAPTURES, FakeAsterisk, Session, load_capture, relabel, wait_for

RAW = sorted(p.name for p in CAPTURES.glob("*.raw"))
NAMES = {"ami-ivr-queue-agent.raw": "홍길동", "ami-queue-abandon.raw": "이영희", "ami-action-errors.raw": "최민수"}


def unsplit_events(data: bytes) -> list[AmiEvent]:
    parser = AmiFrameParser()
    parser.feed(data)
    frames: list[dict[str, str]] = []
    while (got := parser.parse()) is not None:
        frames.extend(got)
    return [e for f in frames if "Event" in f and (e := translate(f)) is not None]


def cut_points(data: bytes, seed: int, max_chunk: int) -> list[int]:
    """Random cuts (1..max_chunk apart) plus one inside every multi-byte UTF-8 character."""
    rnd = random.Random(seed)
    cuts = set()
    pos = 0
    while pos < len(data):
        pos += rnd.randint(1, max_chunk)
        cuts.add(min(pos, len(data)))
    cuts.update(i + 1 for i, b in enumerate(data) if 0xE0 <= b <= 0xEF)  # lead byte of a 3-byte char
    return sorted(c for c in cuts if 0 < c <= len(data)) + [len(data)]


async def replay(name: str, seed: int, max_chunk: int) -> tuple[AmiClient, list[AmiEvent], list[AmiEvent], int]:
    data = load_capture(name)
    login_id = "bad-login" if name == "ami-bad-login.raw" else "login-1"
    delivered: list[AmiEvent] = []
    writes = 0

    async def script(session: Session) -> None:
        nonlocal writes
        login = await session.expect("Login")
        stream = relabel(data, login_id, login["ActionID"])
        prev = 0
        for cut in cut_points(stream, seed, max_chunk):
            if cut > prev:
                session.writer.write(stream[prev:cut])
                await session.writer.drain()
                await asyncio.sleep(0)  # let the client read this piece on its own
                writes += 1
                prev = cut
        await session.answer_logoff()

    server = FakeAsterisk(script, banner=b"")  # the capture carries its own banner
    port = await server.start()
    client = AmiClient("127.0.0.1", port, "callcore", "secret", on_event=delivered.append, ping_interval=None)
    expected = unsplit_events(data)
    try:
        if name == "ami-bad-login.raw":
            with pytest.raises(AmiAuthError):
                await client.connect_once()
        else:
            await client.connect_once()
            last = expected[-1].name if expected else None
            await wait_for(lambda: len(delivered) >= len(expected) or client.state == "disconnected", 5, "events")
            await wait_for(lambda: len(delivered) == len(expected), 2, f"{len(expected)} events (last {last})")
    finally:
        await client.close()
        await server.close()
    assert not server.errors, server.errors
    return client, delivered, expected, writes


@pytest.mark.parametrize("name", RAW)
def test_capture_replayed_split_gives_unsplit_events(name: str) -> None:
    @settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
    @given(seed=st.integers(0, 2**32 - 1), max_chunk=st.integers(1, 4096))
    def prop(seed: int, max_chunk: int) -> None:
        # large captures with tiny chunks would be tens of thousands of writes: keep it fast
        size = len(load_capture(name))
        max_chunk = min(max(max_chunk, size // 400), max(1, size // 2))
        client, delivered, expected, writes = asyncio.run(replay(name, seed, max_chunk))
        assert delivered == expected
        if name == "ami-bad-login.raw":
            assert client.state == "disconnected"  # closed by the test after auth_failed
            return
        assert writes > 1 and client.stats.reads > 1
        assert client.decode_errors == 0
        if name in NAMES:
            names = {getattr(e, "chan", None) and e.chan.caller_name for e in delivered}
            assert NAMES[name] in names
        assert not any("\ufffd" in repr(e) for e in delivered)

    prop()
