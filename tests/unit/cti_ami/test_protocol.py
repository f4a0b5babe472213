"""AmiFrameParser / AmiProtocol without sockets: framing, UTF-8, noise filter, linear work."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cti.ami.events import CONSUMED_EVENTS, Newchannel, OriginateResponse, translate
from cti.ami.protocol import AmiFrameParser, AmiProtocol, parse_headers

CAPTURES = Path(__file__).resolve().parents[2] / "fixtures" / "asterisk-captures"
RAW = sorted(p.name for p in CAPTURES.glob("*.raw"))


def parse_all(parser: AmiFrameParser, max_bytes: int | None = None) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    while (frames := parser.parse(max_bytes)) is not None:
        out.extend(frames)
    return out


def feed_in_chunks(data: bytes, sizes: list[int], max_bytes: int | None = None) -> tuple[AmiFrameParser, list[dict]]:
    parser = AmiFrameParser()
    out: list[dict[str, str]] = []
    pos = i = 0
    while pos < len(data):
        n = sizes[i % len(sizes)]
        i += 1
        parser.feed(data[pos : pos + n])
        pos += n
        out.extend(parse_all(parser, max_bytes))
    return parser, out


def whole(name: str) -> list[dict[str, str]]:
    parser = AmiFrameParser()
    parser.feed((CAPTURES / name).read_bytes())
    return parse_all(parser)


def test_banner_is_consumed_and_version_read() -> None:
    parser = AmiFrameParser()
    parser.feed(b"Asterisk Call Man")
    assert parser.parse() is None
    parser.feed(b"ager/9.0.0\r\nResponse: Success\r\nActionID: a\r\nMessage: Authentication accepted\r\n\r\n")
    assert parser.parse() == [{"Response": "Success", "ActionID": "a", "Message": "Authentication accepted"}]
    assert parser.version == "9.0.0"
    assert parser.banner == "Asterisk Call Manager/9.0.0"


def test_stream_without_banner_is_parsed_as_frames() -> None:
    parser = AmiFrameParser()
    parser.feed(b"Response: Success\r\nActionID: x\r\n\r\n")
    assert parser.parse() == [{"Response": "Success", "ActionID": "x"}]
    assert parser.banner is None


def test_korean_name_split_inside_a_character_survives() -> None:
    frame = "Event: Newchannel\r\nChannel: Local/a;1\r\nCallerIDName: 홍길동\r\nUniqueid: 1.1\r\n\r\n".encode()
    cut = frame.index("길".encode()) + 1  # in the middle of the 3-byte character
    parser = AmiFrameParser()
    parser.feed(frame[:cut])
    assert parser.parse() is None
    parser.feed(frame[cut:])
    (headers,) = parser.parse()
    event = translate(headers)
    assert isinstance(event, Newchannel) and event.chan.caller_name == "홍길동"
    assert parser.stats.decode_errors == 0


def test_invalid_utf8_is_replaced_counted_and_the_stream_continues() -> None:
    parser = AmiFrameParser()
    parser.feed(b"Event: Newchannel\r\nCallerIDName: bad\xff\xfename\r\n\r\n")
    parser.feed("Event: Newchannel\r\nCallerIDName: 이영희\r\n\r\n".encode())
    frames = parse_all(parser)
    assert [f["CallerIDName"] for f in frames] == ["bad\ufffd\ufffdname", "이영희"]
    assert parser.stats.decode_errors == 1


def test_noise_is_dropped_before_decoding_but_responses_and_list_events_are_kept() -> None:
    keep: set[bytes] = {b"qs-1"}
    parser = AmiFrameParser(keep_action_ids=keep)
    stream = (
        b"Event: VarSet\r\nChannel: x\r\nVariable: A\r\nValue: \xff\r\n\r\n"  # bad UTF-8: never decoded
        b"Event: Newexten\r\nChannel: x\r\n\r\n"
        b"Event: AGIExecStart\r\nChannel: x\r\n\r\n"
        b"Event: RTCPSent\r\nChannel: x\r\n\r\n"
        b"Event: DeviceStateChange\r\nDevice: x\r\nState: INUSE\r\n\r\n"
        b"Response: Error\r\nActionID: z\r\nMessage: No such channel\r\n\r\n"
        b"Event: QueueStatusComplete\r\nActionID: qs-1\r\nEventList: Complete\r\n\r\n"
        b"Event: QueueStatusComplete\r\nActionID: other\r\nEventList: Complete\r\n\r\n"
        b"Event: Hangup\r\nChannel: x\r\n\r\n"
    )
    parser.feed(stream)
    frames = parse_all(parser)
    assert [f.get("Event") or f["Response"] for f in frames] == ["Error", "QueueStatusComplete", "Hangup"]
    assert frames[1]["ActionID"] == "qs-1"
    assert parser.stats.dropped_noise == 6
    assert parser.stats.frames == 9
    assert parser.stats.decode_errors == 0  # the VarSet was dropped undecoded
    keep.discard(b"qs-1")  # the live set is honoured
    parser.feed(b"Event: QueueStatusComplete\r\nActionID: qs-1\r\n\r\n")
    assert parse_all(parser) == []


def test_action_id_of_a_pending_list_is_found_anywhere_in_the_frame() -> None:
    # QueueParams carries its ActionID as the last header in the captures
    parser = AmiFrameParser(consumed_events=frozenset(), keep_action_ids={b"qs-1"})
    parser.feed(b"Event: QueueParams\r\nQueue: sales\r\nXActionID: qs-1\r\nActionID: qs-1\r\n\r\n")
    parser.feed(b"Event: QueueParams\r\nQueue: sales\r\nXActionID: qs-1\r\n\r\n")
    frames = parse_all(parser)
    assert len(frames) == 1 and frames[0]["ActionID"] == "qs-1"


def test_repeated_headers_and_command_output() -> None:
    assert parse_headers("Response: Success\r\nOutput: line 1\r\nOutput: line 2") == {
        "Response": "Success",
        "Output": "line 1\nline 2",
    }
    assert parse_headers("Response: Follows\r\nPrivilege: Command\r\nlegacy body\r\n--END COMMAND--") == {
        "Response": "Follows",
        "Privilege": "Command",
        "Output": "legacy body",
    }
    assert parse_headers("Event: Newchannel\r\nAccountCode:\r\nExten: s") == {
        "Event": "Newchannel",
        "AccountCode": "",
        "Exten": "s",
    }


def test_stray_crlf_between_frames_is_tolerated() -> None:
    parser = AmiFrameParser()
    parser.feed(b"Response: Success\r\nActionID: a\r\n\r\n\r\n\r\nResponse: Success\r\nActionID: b\r\n\r\n")
    assert [f["ActionID"] for f in parse_all(parser)] == ["a", "b"]


@pytest.mark.parametrize("name", RAW)
def test_every_capture_parses_with_utf8_intact(name: str) -> None:
    frames = whole(name)
    assert frames, name
    text = "".join("".join(f.values()) for f in frames)
    assert "\ufffd" not in text
    events = [translate(f) for f in frames if "Event" in f]
    names = {e.chan.caller_name for e in events if e is not None and hasattr(e, "chan") and e.chan}
    expected = {
        "ami-ivr-queue-agent.raw": "홍길동",
        "ami-queue-abandon.raw": "이영희",
        "ami-action-errors.raw": "최민수",
    }.get(name)
    if expected:
        assert expected in names
    # every consumed event name in the capture made it through the filter
    raw = (CAPTURES / name).read_bytes()
    for consumed in CONSUMED_EVENTS:
        n = raw.count(f"\r\nEvent: {consumed}\r\n".encode())
        assert sum(1 for f in frames if f.get("Event") == consumed) == n, consumed


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(RAW),
    sizes=st.lists(st.integers(1, 4096), min_size=1, max_size=30),
    max_bytes=st.one_of(st.none(), st.integers(1, 70000)),
)
def test_any_chunking_gives_the_unsplit_result(name: str, sizes: list[int], max_bytes: int | None) -> None:
    data = (CAPTURES / name).read_bytes()
    parser, frames = feed_in_chunks(data, sizes, max_bytes)
    assert frames == whole(name)
    assert parser.backlog == 0


def test_large_backlog_is_linear_work() -> None:
    """200k frames in one feed: every byte is scanned a bounded number of times."""
    noise = b"Event: VarSet\r\nPrivilege: dialplan,all\r\nChannel: Local/x;1\r\nVariable: V\r\nValue: 1\r\n\r\n"
    event = "Event: Hangup\r\nChannel: Local/이영희;1\r\nUniqueid: 1.{i}\r\nCause: 16\r\n\r\n"
    parts = []
    for i in range(100_000):
        parts.append(noise)
        parts.append(event.format(i=i).encode())
    data = b"".join(parts)
    parser = AmiFrameParser()
    parser.feed(data)
    count = 0
    calls = 0
    while (frames := parser.parse(64 * 1024)) is not None:
        calls += 1
        count += len(frames)
    assert count == 100_000
    assert parser.stats.frames == 200_000
    assert parser.stats.dropped_noise == 100_000
    assert parser.backlog == 0
    # linear: each byte searched ~once and split once; compaction moves < the input once
    assert parser.stats.scanned_bytes <= 3 * len(data)
    assert parser.stats.moved_bytes <= len(data)
    assert calls >= len(data) // (64 * 1024)  # it was sliced


def test_incomplete_frame_growing_byte_by_byte_is_not_rescanned() -> None:
    """A 1 MB frame arriving in 1 KB reads: the search resumes, it does not restart."""
    big = b"Event: Hangup\r\nChannel: " + b"x" * 1_000_000 + b"\r\n\r\n"
    parser = AmiFrameParser()
    parser.feed(b"Asterisk Call Manager/9.0.0\r\n")
    out = []
    for i in range(0, len(big), 1024):
        parser.feed(big[i : i + 1024])
        out.extend(parse_all(parser, 4096))
    assert len(out) == 1 and len(out[0]["Channel"]) == 1_000_000
    assert parser.stats.scanned_bytes <= 3 * len(big)


class FakeTransport:
    def __init__(self) -> None:
        self.paused = 0
        self.resumed = 0
        self.closed = False
        self.written: list[bytes] = []

    def pause_reading(self) -> None:
        self.paused += 1

    def resume_reading(self) -> None:
        self.resumed += 1

    def is_closing(self) -> bool:
        return self.closed

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, *a, **k):  # pragma: no cover - panoramisk may ask
        return None


async def test_protocol_yields_to_the_loop_on_a_huge_burst() -> None:
    """One data_received with ~100k frames is handed out in slices; other tasks run between."""
    frame = b"Event: Hangup\r\nChannel: Local/a;1\r\nUniqueid: 1.1\r\nCause: 16\r\n\r\n"
    seen: list[int] = []
    ticks: list[int] = []
    proto = AmiProtocol(lambda h: seen.append(1), slice_seconds=0.005, parse_chunk=16 * 1024)
    transport = FakeTransport()
    proto.connection_made(transport)  # type: ignore[arg-type]

    async def ticker() -> None:
        while True:
            ticks.append(len(seen))
            await asyncio.sleep(0)

    tick_task = asyncio.create_task(ticker())
    try:
        proto.data_received(frame * 100_000)
        assert len(seen) < 100_000  # it returned before the whole backlog was handled
        assert transport.paused == 1
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while len(seen) < 100_000:
            assert loop.time() < deadline, "backlog not drained"
            await asyncio.sleep(0)
    finally:
        tick_task.cancel()
        await asyncio.gather(tick_task, return_exceptions=True)
    assert transport.resumed == 1
    assert proto.stats.slices_yielded >= 2
    # the ticker ran while the backlog was being processed
    assert any(0 < t < 100_000 for t in ticks)


async def test_protocol_stops_handing_out_frames_once_closed() -> None:
    got: list[dict] = []
    proto: AmiProtocol

    def on_frame(h: dict) -> None:
        got.append(h)
        if h.get("Event") == "Shutdown":
            proto.close()

    proto = AmiProtocol(on_frame)
    transport = FakeTransport()
    proto.connection_made(transport)  # type: ignore[arg-type]
    proto.data_received(
        b"Event: Shutdown\r\nShutdown: Cleanly\r\nRestart: True\r\n\r\nEvent: Hangup\r\nChannel: x\r\n\r\n"
    )
    assert [h["Event"] for h in got] == ["Shutdown"]
    assert transport.closed
    with pytest.raises(ConnectionError):
        proto.send(b"Action: Ping\r\n\r\n")


def test_originate_response_is_consumed_not_noise() -> None:
    frames = whole("ami-ivr-queue-agent.raw")
    events = [translate(f) for f in frames if "Event" in f]
    (orig,) = [e for e in events if isinstance(e, OriginateResponse)]
    assert orig.action_id == "orig-1" and orig.caller_name == "홍길동" and orig.response == "Success"


def test_backoff_delay_is_capped_exponential_with_bounded_jitter() -> None:
    from cti.ami.client import backoff_delay

    assert [backoff_delay(i, 0.5, 30.0, 1.0) for i in range(8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert backoff_delay(2, 0.5, 30.0, 0.0) == pytest.approx(1.6)  # 20 % jitter below
    assert backoff_delay(0, 0.5, 30.0, 0.0) == 0.5  # never under the minimum
    assert backoff_delay(10_000, 0.5, 30.0, 0.5) <= 30.0  # no overflow, never over the maximum


async def test_frames_are_handled_under_the_time_their_bytes_were_read(monkeypatch) -> None:
    """Issue 18: FRAME_CLOCK holds the read time of the data of the frame being handled, and is
    0 again once the frames are handed out (a message published later did not come from AMI)."""
    from callcore.loopwatch import FRAME_CLOCK
    import cti.ami.protocol as protocol

    now = [100.0]
    monkeypatch.setattr(protocol.time, "perf_counter", lambda: now[0])
    seen: list[tuple[str, float]] = []
    proto = AmiProtocol(lambda h: seen.append((h["Event"], FRAME_CLOCK.at)))
    proto.connection_made(FakeTransport())  # type: ignore[arg-type]
    proto.data_received(b"Event: Newchannel\r\nChannel: a\r\n\r\nEvent: Hangup\r\nChan")
    assert seen == [("Newchannel", 100.0)] and FRAME_CLOCK.at == 0.0
    now[0] = 100.25  # the rest of the cut frame arrives 250 ms later: the frame is as old as that read
    proto.data_received(b"nel: a\r\n\r\n")
    assert seen[1] == ("Hangup", 100.25) and FRAME_CLOCK.at == 0.0
