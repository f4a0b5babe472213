"""The generated constructors and channel parsers of ``cti.ami.events`` (issue 18, round four)
give exactly the typed events the plain dataclasses give: every frame of every AMI capture
(``tests/fixtures/asterisk-captures``, the live ones included) is translated by
:data:`TRANSLATORS` and by the reference table built with the classes' own constructors
(``_translators(lambda cls: cls)``) and the reference channel parser (``_channel_values``)."""

from __future__ import annotations

import dataclasses
import pickle
from typing import Any

import pytest

from cti.ami import events as ev
from cti.ami.events import ChannelInfo, MemberInfo, _channel_values, _translators, translate
from cti.testing import read_frames
from tests.conftest import CAPTURES

FILES = sorted(p for p in CAPTURES.rglob("*.raw"))
REFERENCE = _translators(lambda cls: cls)


def _reference_translate(h: dict[str, str]) -> ev.AmiEvent | None:
    fn = REFERENCE.get(h.get("Event", ""))
    if fn is None:
        return None
    event = _deep_reference(fn(h))
    stamp = h.get("Timestamp")
    if stamp:
        event = dataclasses.replace(event, timestamp=ev.parse_timestamp(stamp))
    return event


def _deep_reference(event: Any) -> Any:
    """Rebuild nested ChannelInfo/MemberInfo with the dataclass constructor (no generated code)."""
    changes = {}
    for f in dataclasses.fields(event):
        if not f.init:
            continue
        v = getattr(event, f.name)
        if isinstance(v, (ChannelInfo, MemberInfo)):
            changes[f.name] = type(v)(**{g.name: getattr(v, g.name) for g in dataclasses.fields(v)})
    return dataclasses.replace(event, **changes) if changes else event


def _same(a: Any, b: Any) -> None:
    assert type(a) is type(b)
    assert a == b and hash(a) == hash(b) and repr(a) == repr(b)
    for f in dataclasses.fields(a):  # compare=False fields too (timestamp, server)
        x, y = getattr(a, f.name), getattr(b, f.name)
        if dataclasses.is_dataclass(x):
            _same(x, y)
        else:
            assert type(x) is type(y) and x == y, f.name


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(CAPTURES)))
def test_every_capture_frame_translates_as_with_the_plain_dataclasses(path) -> None:
    frames = read_frames(path)
    translated = 0
    for h in frames:
        fast = translate(h)
        ref = _reference_translate(h)
        if ref is None:
            assert fast is None
            continue
        _same(fast, ref)
        translated += 1
    assert translated or not any(h.get("Event") in ev.TRANSLATORS for h in frames)


PREFIXES = ["", "Dest", "Transferer", "Transferee", "OrigTransferer", "SecondTransferer", "TransferTarget"]


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(CAPTURES)))
def test_generated_channel_parsers_match_the_reference_on_every_frame(path) -> None:
    for h in read_frames(path):
        for prefix in PREFIXES:
            _same(ChannelInfo.parse(h, prefix), ChannelInfo(*_channel_values(h, prefix)))


@pytest.mark.parametrize("value", [None, "", "0", "7", "999", "1000", "007", "-1", " 6", "6 ", "2.5", "x", "٣", "²", "1e3"])
def test_small_number_table_agrees_with_int_parsing(value) -> None:
    h = {"Channel": "PJSIP/a-1", "ChannelState": value, "Priority": value}
    if value is None:
        h = {"Channel": "PJSIP/a-1"}
    fast = ChannelInfo.parse(h)
    assert (fast.state, fast.priority) == (ev._int(value), ev._int(value))


def test_twin_built_objects_are_ordinary_frozen_dataclasses() -> None:
    h = {"Event": "QueueMemberAdded", "Queue": "sales", "Interface": "Local/1001@agents/n", "Penalty": "2", "Paused": "1"}
    e = translate(h)
    assert isinstance(e, ev.QueueMemberAdded)
    for obj in (e, e.member, translate({"Event": "Newchannel", "Channel": "PJSIP/x-1", "Uniqueid": "1.1"}).chan):  # type: ignore[union-attr]
        assert type(obj).__name__ in {"QueueMemberAdded", "MemberInfo", "ChannelInfo"}
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(obj, dataclasses.fields(obj)[0].name, "x")
        assert pickle.loads(pickle.dumps(obj)) == obj
        assert dataclasses.replace(obj) == obj and not hasattr(obj, "__dict__")


def test_generated_event_constructor_keeps_the_keyword_defaults() -> None:
    make = ev._slot_constructor(ev.Hangup)
    chan = ChannelInfo.parse({"Channel": "PJSIP/x-1", "Uniqueid": "1.1"})
    _same(make(chan, 16, "Normal Clearing"), ev.Hangup(chan, 16, "Normal Clearing"))
    _same(make(chan, 16, "x", timestamp=1.5, server="pbx-a"), ev.Hangup(chan, 16, "x", timestamp=1.5, server="pbx-a"))
