"""Bounded AMI framing (issue 12): oversized frames and header floods are dropped,
counted and logged with their type; the stream resyncs at the next frame; memory
stays bounded by ``max_frame_bytes`` whatever the peer sends."""

from __future__ import annotations

import logging

import pytest

from cti.ami.protocol import AmiFrameParser

CONSUMED = {"Newchannel", "Hangup"}
GOOD = b"Event: Newchannel\r\nChannel: PJSIP/1001-1\r\nUniqueid: 1.1\r\n\r\n"
AFTER = b"Event: Hangup\r\nChannel: PJSIP/1001-1\r\nUniqueid: 1.1\r\n\r\n"


def _parser(**kw) -> AmiFrameParser:
    return AmiFrameParser(CONSUMED, max_frame_bytes=kw.pop("max_frame_bytes", 4096), max_headers=kw.pop("max_headers", 64))


def _drain(p: AmiFrameParser) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    while (frames := p.parse(1024)) is not None:
        out.extend(frames)
    return out


def test_unterminated_frame_is_dropped_counted_logged_and_memory_stays_bounded(caplog):
    p = _parser()
    caplog.set_level(logging.WARNING, logger="cti.ami.protocol")
    p.feed(GOOD)
    assert [f["Event"] for f in _drain(p)] == ["Newchannel"]
    p.feed(b"Event: Newchannel\r\nChannel: PJSIP/evil\r\nX: ")
    peak = 0
    for _ in range(2000):  # 2 MB with no terminator, in 1 KiB reads
        p.feed(b"A" * 1024)
        assert _drain(p) == []
        peak = max(peak, p.backlog)
    assert peak <= 4096 + 1024  # never more than one cap + one read buffered
    p.feed(b"\r\n\r\n" + AFTER)  # the end of the bad frame, then a good one: resync
    assert [f["Event"] for f in _drain(p)] == ["Hangup"]
    assert p.stats.oversized_frames == 1
    assert p.stats.oversized_bytes > 2_000_000
    assert p.stats.dropped_by_type == {"oversized Event: Newchannel": 1}
    warnings = [r for r in caplog.records if "oversized" in r.getMessage()]
    assert len(warnings) == 1 and "Event: Newchannel" in warnings[0].getMessage()


def test_delimiter_split_across_reads_while_discarding_still_resyncs():
    p = _parser()
    p.feed(b"Event: Newchannel\r\n" + b"B" * 5000)
    assert _drain(p) == []
    assert p.stats.oversized_frames == 1
    for piece in (b"\r", b"\n\r", b"\n" + GOOD):
        p.feed(piece)
    assert [f["Channel"] for f in _drain(p)] == ["PJSIP/1001-1"]


def test_oversized_frame_that_arrives_whole_is_dropped_and_neighbours_kept():
    p = _parser()
    big = b"Response: Follows\r\nActionID: x\r\nOutput: " + b"C" * 10_000 + b"\r\n\r\n"
    p.feed(GOOD + big + AFTER)
    frames = []
    while (f := p.parse()) is not None:  # one slice: the whole buffer
        frames.extend(f)
    assert [f.get("Event") for f in frames] == ["Newchannel", "Hangup"]
    assert p.stats.oversized_frames == 1
    assert "oversized Response: Follows" in p.stats.dropped_by_type


def test_ten_thousand_header_frame_is_dropped_counted_and_logged_once(caplog):
    caplog.set_level(logging.WARNING, logger="cti.ami.protocol")
    p = AmiFrameParser(CONSUMED, max_frame_bytes=1024 * 1024, max_headers=4096)
    flood = b"Event: Newchannel\r\n" + b"".join(b"H%d: v\r\n" % i for i in range(10_000)) + b"\r\n"
    p.feed(GOOD + flood + AFTER)
    assert [f["Event"] for f in _drain(p)] == ["Newchannel", "Hangup"]
    assert p.stats.too_many_headers == 1
    assert [r.getMessage() for r in caplog.records if "too many headers" in r.getMessage()] != []
    assert sum("too many headers" in r.getMessage() for r in caplog.records) == 1


def test_decode_errors_are_counted_and_logged_with_the_event_type(caplog):
    caplog.set_level(logging.WARNING, logger="cti.ami.protocol")
    p = _parser()
    p.feed(b"Event: Newchannel\r\nCallerIDName: \xff\xfe\r\n\r\n")
    (frame,) = _drain(p)
    assert frame["CallerIDName"] == "\ufffd\ufffd"
    assert p.stats.decode_errors == 1
    assert any("decode error" in r.getMessage() and "Event: Newchannel" in r.getMessage() for r in caplog.records)


def test_log_lines_are_capped_per_type_and_the_type_table_is_bounded(caplog):
    caplog.set_level(logging.WARNING, logger="cti.ami.protocol")
    p = _parser(max_frame_bytes=64)
    for i in range(400):
        p.feed(b"Event: Newchannel\r\nX: " + b"D" * 100 + b"\r\n\r\n")
        p.feed(b"Event: Odd%d\r\nEventList: x\r\nX: " % i + b"D" * 100 + b"\r\n\r\n")
    # Odd%d is not consumed: the noise filter drops it before the size check
    _drain(p)
    assert p.stats.oversized_frames == 400
    assert sum("oversized" in r.getMessage() for r in caplog.records) == 3
    # a Response (never noise-filtered) with a varying first line: the table stays bounded
    p2 = _parser(max_frame_bytes=64)
    for i in range(600):
        p2.feed(b"Response: R%d\r\nX: " % i + b"E" * 100 + b"\r\n\r\n")
    _drain(p2)
    assert p2.stats.oversized_frames == 600
    assert len(p2.stats.dropped_by_type) <= 257


def test_limits_are_validated():
    with pytest.raises(ValueError):
        AmiFrameParser(CONSUMED, max_frame_bytes=0)


def test_orphan_responses_are_counted_and_logged(caplog):
    from cti.ami.client import AmiClient

    caplog.set_level(logging.WARNING, logger="cti.ami.client")
    client = AmiClient("127.0.0.1", 1, "u", "s")
    for i in range(8):
        client._on_frame({"Response": "Success", "ActionID": f"ghost-{i}", "Message": "late"})
    assert client.stats.orphan_responses == 8
    logged = [r for r in caplog.records if "no pending action" in r.getMessage()]
    assert len(logged) == 5 and "ghost-0" in logged[0].getMessage()
