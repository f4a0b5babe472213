"""The frame loop of :class:`AmiFrameParser` (issue 18, round four: the ``Event:`` test first,
header parsing inlined) keeps what the straightforward code keeps: every AMI capture, as is and
with stray line ends sprinkled between frames, read in slices of any size, gives the frames a
plain reference parser gives, with the same counters."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cti.ami.events import CONSUMED_EVENTS
from cti.ami.protocol import AmiFrameParser, _parse_slow
from tests.conftest import CAPTURES

FILES = sorted(CAPTURES.rglob("ami-*.raw"))
STRAYS = [b"\r\n", b"\n", b"\r\n\r\n", b"\r"]


def _reference(stream: bytes, keep: set[bytes]) -> tuple[list[dict[str, str]], int, int]:
    """(kept frames, frames, dropped noise) the obvious way: split, strip, filter, decode, parse."""
    if stream.startswith(b"Asterisk Call Manager/"):
        stream = stream[stream.index(b"\r\n") + 2 :]
    body = stream[: stream.rfind(b"\r\n\r\n")] if b"\r\n\r\n" in stream else b""
    out: list[dict[str, str]] = []
    frames = dropped = 0
    for raw in body.split(b"\r\n\r\n") if body else []:
        raw = raw.strip(b"\r\n")
        if not raw:
            continue
        frames += 1
        if raw.startswith(b"Event: "):
            name = raw[7:].split(b"\r\n", 1)[0]
            ids = {line[10:] for line in raw.split(b"\r\n") if line.startswith(b"ActionID: ")}
            if name.decode("utf-8", "replace") not in CONSUMED_EVENTS and not (ids & keep):
                dropped += 1
                continue
        out.append(_parse_slow(raw.decode("utf-8", "replace").split("\r\n")))
    return out, frames, dropped


def _parse(stream: bytes, step: int, keep: set[bytes]) -> tuple[list[dict[str, str]], int, int]:
    p = AmiFrameParser(keep_action_ids=set(keep))
    out: list[dict[str, str]] = []
    for i in range(0, len(stream), step):
        p.feed(stream[i : i + step])
        while (frames := p.parse(4096)) is not None:
            out.extend(frames)
    return out, p.stats.frames, p.stats.dropped_noise


def _sprinkle(data: bytes, seed: int, rate: float) -> bytes:
    rng = random.Random(seed)
    parts = data.split(b"\r\n\r\n")
    return b"".join(p + b"\r\n\r\n" + (rng.choice(STRAYS) if rng.random() < rate else b"") for p in parts[:-1]) + parts[-1]


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(CAPTURES)))
def test_every_capture_gives_the_reference_frames(path) -> None:
    data = path.read_bytes()
    keep = {b"resync-1", b"qs-1", b"csc-1"}
    for stream in (data, _sprinkle(data, 1, 0.3)):
        ref = _reference(stream, keep)
        for step in (len(stream) or 1, 4096, 97):
            assert _parse(stream, step, keep) == ref


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(FILES), st.integers(0, 10**6), st.floats(0, 1), st.integers(1, 5000))
def test_stray_line_ends_anywhere_between_frames(path, seed, rate, step) -> None:
    stream = _sprinkle(path.read_bytes(), seed, rate)
    assert _parse(stream, step, set()) == _reference(stream, set())


def test_stray_line_end_before_noise_and_before_a_kept_list_event() -> None:
    stream = (b"\r\nEvent: VarSet\r\nVariable: X\r\n\r\n"
              b"\nEvent: QueueStatusComplete\r\nActionID: 42\r\n\r\n"
              b"\r\nEvent: QueueStatusComplete\r\nActionID: 43\r\n\r\n"
              b"\r\nEvent: Hangup\r\nUniqueid: 1.1\r\n\r\n")
    frames, n, dropped = _parse(stream, len(stream), {b"42"})
    assert frames == [{"Event": "QueueStatusComplete", "ActionID": "42"}, {"Event": "Hangup", "Uniqueid": "1.1"}]
    assert (n, dropped) == (4, 2)


def test_a_failing_on_event_is_logged_and_the_next_events_still_flow(caplog) -> None:
    from cti.ami.client import AmiClient

    seen: list[str] = []

    def on_event(e) -> None:
        seen.append(e.name)
        if e.name == "Newchannel":
            raise RuntimeError("subscriber bug")

    client = AmiClient("127.0.0.1", 1, "u", "p", on_event=on_event)
    client._gate_open = True
    client._on_frame({"Event": "Newchannel", "Channel": "PJSIP/a-1", "Uniqueid": "1.1"})
    client._on_frame({"Event": "Hangup", "Channel": "PJSIP/a-1", "Uniqueid": "1.1", "Cause": "16"})
    assert seen == ["Newchannel", "Hangup"] and client.events_delivered == 2
    assert "AMI on_event callback failed for Newchannel" in caplog.text
