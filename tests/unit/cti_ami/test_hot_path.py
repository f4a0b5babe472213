"""The ingest hot path (issue 18, round three): the frame loop's fast paths and
``ChannelInfo.parse`` give exactly what the straightforward code gave, on the edges
(cut frames, stray CRLFs, huge frames, bad bytes, too many lines, odd numbers)."""

from __future__ import annotations

import logging

import pytest

from cti.ami.events import ChannelInfo, _int, _opt, translate
from cti.ami.protocol import AmiFrameParser, parse_headers

CONSUMED = {"Newchannel", "Hangup"}
NEW = b"Event: Newchannel\r\nChannel: PJSIP/1001-1\r\nUniqueid: 1.1\r\n\r\n"
NOISE = b"Event: VarSet\r\nChannel: PJSIP/1001-1\r\nVariable: X\r\nValue: 1\r\n\r\n"
HANG = b"Event: Hangup\r\nChannel: PJSIP/1001-1\r\nUniqueid: 1.1\r\nCause: 16\r\n\r\n"


def _drain(p: AmiFrameParser, step: int | None = None) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    while (frames := p.parse(step)) is not None:
        out.extend(frames)
    return out


def _events(frames: list[dict[str, str]]) -> list[str | None]:
    return [f.get("Event", f.get("Response")) for f in frames]


def test_frames_cut_at_every_byte_give_the_same_frames() -> None:
    stream = NEW + NOISE + b"Response: Success\r\nActionID: 7\r\n\r\n" + HANG
    whole = AmiFrameParser(CONSUMED)
    whole.feed(stream)
    expected = _drain(whole)
    assert _events(expected) == ["Newchannel", "Success", "Hangup"]
    for cut in range(1, len(stream)):
        p = AmiFrameParser(CONSUMED)
        p.feed(stream[:cut])
        got = _drain(p)
        p.feed(stream[cut:])
        got += _drain(p)
        assert got == expected, cut
        assert (p.stats.frames, p.stats.dropped_noise) == (4, 1)


def test_stray_line_ends_and_empty_frames_are_skipped_not_counted() -> None:
    p = AmiFrameParser(CONSUMED)
    p.feed(b"\r\n" + NEW + b"\r\n\r\n" + b"\n" + HANG + b"\r\n\r\n")
    assert _events(_drain(p)) == ["Newchannel", "Hangup"]
    assert p.stats.frames == 2


def test_event_line_without_headers_and_frame_that_is_only_an_event_line() -> None:
    p = AmiFrameParser(CONSUMED)
    p.feed(b"Event: VarSet\r\n\r\nEvent: Hangup\r\n\r\n")
    assert _drain(p) == [{"Event": "Hangup"}]
    assert p.stats.dropped_noise == 1


def test_bad_bytes_with_too_many_lines_count_as_too_many_lines_only(caplog) -> None:
    caplog.set_level(logging.WARNING, logger="cti.ami.protocol")
    p = AmiFrameParser(CONSUMED, max_headers=4)
    bad_long = b"Event: Hangup\r\nA: \xff\r\nB: 1\r\nC: 2\r\nD: 3\r\n\r\n"  # 5 lines, invalid UTF-8
    ok_long = b"Event: Hangup\r\nA: 1\r\nB: 1\r\nC: 2\r\nD: 3\r\n\r\n"
    bad_short = b"Event: Hangup\r\nA: \xff\r\n\r\n"
    p.feed(bad_long + ok_long + bad_short + NEW)
    frames = _drain(p)
    assert frames == [{"Event": "Hangup", "A": "\ufffd"}, {"Event": "Newchannel", "Channel": "PJSIP/1001-1", "Uniqueid": "1.1"}]
    assert (p.stats.too_many_headers, p.stats.decode_errors, p.stats.frames) == (2, 1, 4)
    assert "5 lines > max_headers=4" in caplog.text


def test_exactly_max_headers_lines_is_kept() -> None:
    p = AmiFrameParser(CONSUMED, max_headers=3)
    p.feed(b"Event: Hangup\r\nA: 1\r\nB: 2\r\n\r\n")
    assert _drain(p) == [{"Event": "Hangup", "A": "1", "B": "2"}]


def test_huge_frame_within_the_cap_is_parsed_whole_in_small_slices() -> None:
    value = "가" * 100_000  # 300 KB of UTF-8 in one header
    frame = f"Event: Newchannel\r\nCallerIDName: {value}\r\nUniqueid: 1.1\r\n\r\n".encode()
    p = AmiFrameParser(CONSUMED, max_frame_bytes=1024 * 1024)
    for i in range(0, len(frame), 4096):
        p.feed(frame[i : i + 4096])
    frames = _drain(p, 1024)
    assert frames == [{"Event": "Newchannel", "CallerIDName": value, "Uniqueid": "1.1"}]


def test_repeated_header_and_line_without_separator_take_the_slow_parser() -> None:
    assert parse_headers("Response: Follows\r\nOutput: a\r\nOutput: b") == {"Response": "Follows", "Output": "a\nb"}
    assert parse_headers("Response: Follows\r\nfree text") == {"Response": "Follows", "Output": "free text"}


def _reference(h: dict[str, str], prefix: str = "") -> ChannelInfo:
    """ChannelInfo.parse as it was written before the fast path."""
    g = h.get
    return ChannelInfo(
        channel=g(prefix + "Channel", ""),
        uniqueid=g(prefix + "Uniqueid", ""),
        linkedid=g(prefix + "Linkedid", "") or g(prefix + "Uniqueid", ""),
        state=_int(g(prefix + "ChannelState")),
        state_desc=g(prefix + "ChannelStateDesc", ""),
        caller_num=_opt(g(prefix + "CallerIDNum")),
        caller_name=_opt(g(prefix + "CallerIDName")),
        connected_num=_opt(g(prefix + "ConnectedLineNum")),
        connected_name=_opt(g(prefix + "ConnectedLineName")),
        context=g(prefix + "Context", ""),
        exten=g(prefix + "Exten", ""),
        priority=_int(g(prefix + "Priority")),
        language=g(prefix + "Language", ""),
        accountcode=g(prefix + "AccountCode", ""),
    )


@pytest.mark.parametrize("number", ["4", "", " 6", "2.0", "x", "٣", "²", "-1", "99999999999999999999"])
@pytest.mark.parametrize("name", ["홍길동", "", "<unknown>", "<Unknown>"])
@pytest.mark.parametrize("prefix", ["", "Dest", "Transferee"])
def test_channel_info_parse_matches_the_reference(prefix: str, name: str, number: str) -> None:
    h = {
        f"{prefix}Channel": "PJSIP/1001-00000001", f"{prefix}ChannelState": number, f"{prefix}ChannelStateDesc": "Ring",
        f"{prefix}CallerIDNum": name, f"{prefix}CallerIDName": name, f"{prefix}ConnectedLineNum": "<unknown>",
        f"{prefix}Context": "from-trunk", f"{prefix}Exten": "1588", f"{prefix}Priority": number,
        f"{prefix}Uniqueid": "1.1", f"{prefix}Language": "ko",
    }
    assert ChannelInfo.parse(h, prefix) == _reference(h, prefix)
    h.pop(f"{prefix}Uniqueid")
    h.pop(f"{prefix}ChannelState")
    assert ChannelInfo.parse(h, prefix) == _reference(h, prefix)


def test_translate_gives_the_same_event_as_the_reference_for_an_agent_event() -> None:
    h = {"Event": "AgentCalled", "Channel": "PJSIP/trunk-1", "Uniqueid": "1.1", "DestChannel": "Local/1001@agents-1;1",
         "DestUniqueid": "1.2", "DestLinkedid": "1.1", "Queue": "sales", "Interface": "Local/1001@agents", "MemberName": ""}
    ev = translate(h)
    assert ev is not None and ev.chan == _reference(h) and ev.dest == _reference(h, "Dest")  # type: ignore[attr-defined]
    assert ev.member_name == "Local/1001@agents"  # type: ignore[attr-defined]


def test_fast_constructed_channel_info_is_a_normal_frozen_dataclass() -> None:
    import dataclasses

    h = {"Channel": "PJSIP/1001-1", "Uniqueid": "1.1", "ChannelState": "6", "CallerIDNum": "0101234"}
    fast, ref = ChannelInfo.parse(h), _reference(h)
    assert type(fast) is ChannelInfo and fast == ref and hash(fast) == hash(ref) and repr(fast) == repr(ref)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.channel = "x"  # type: ignore[misc]
    assert dataclasses.replace(fast, uniqueid="2.2").uniqueid == "2.2"
    assert dataclasses.asdict(fast) == dataclasses.asdict(ref)
