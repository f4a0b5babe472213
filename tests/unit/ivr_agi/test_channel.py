from __future__ import annotations

import logging

import pytest

from ivr.agi.channel import AgiChannel
from ivr.agi.protocol import AgiConnectionClosed
from ivr.agi.testing import ScriptedSession
from ivr.channel import Channel, ChannelError, ChannelHungUp

from tests.protocol.agi.fake_asterisk import parse_args


def make(*responses: str) -> tuple[AgiChannel, ScriptedSession]:
    session = ScriptedSession(responses)
    return AgiChannel(session), session


def words(session: ScriptedSession) -> list[list[str]]:
    return [parse_args(line.rstrip("\n")) for line in session.sent]


def test_is_a_channel():
    ch, _ = make()
    assert isinstance(ch, Channel)
    assert ch.info.caller_num == "01012345678" and ch.info.dialed == "1600"


async def test_play_escape_digit_and_plain():
    ch, s = make("200 result=0 endpos=11234", "200 result=49 endpos=2400", "200 result=35 endpos=10")
    assert await ch.play("hello-world") == ""
    assert await ch.play("hello-world", "0123456789*#") == "1"
    assert await ch.play("menu", "#") == "#"
    assert words(s) == [
        ["STREAM", "FILE", "hello-world", ""],
        ["STREAM", "FILE", "hello-world", "0123456789*#"],
        ["STREAM", "FILE", "menu", "#"],
    ]


async def test_missing_sound_is_a_warning_not_a_stuck_caller(caplog):
    caplog.set_level(logging.WARNING)
    ch, _ = make("200 result=-1 endpos=0")
    assert await ch.play("does-not-exist") == ""
    assert any("'does-not-exist' missing" in r.getMessage() for r in caplog.records)


async def test_play_cut_by_hangup_raises():
    ch, _ = make("200 result=-1 endpos=8160")
    with pytest.raises(ChannelHungUp):
        await ch.play("hello-world")
    ch, _ = make("HANGUP", "200 result=-1 endpos=0")  # notice + -1: not a missing file
    with pytest.raises(ChannelHungUp):
        await ch.play("hello-world")


async def test_collect_with_get_data():
    ch, s = make("200 result= (timeout)", "200 result=1234", "200 result=12 (timeout)", "200 result=-1")
    assert await ch.collect("beep", 3.0, 1) == ""
    assert await ch.collect("enter-account", 5, 4) == "1234"
    assert await ch.collect("enter-account", 5, 4) == "12"  # partial entry, then timeout
    with pytest.raises(ChannelHungUp):
        await ch.collect("enter-account", 5, 4)
    assert words(s)[1] == ["GET", "DATA", "enter-account", "5000", "4"]


async def test_collect_without_prompt_plays_nothing():
    ch, s = make("200 result=52", "200 result=50", "200 result=35")
    assert await ch.collect(None, 2.5, 6) == "42"  # '#' terminates, not returned
    assert words(s) == [["WAIT", "FOR", "DIGIT", "2500"]] * 3
    ch, s = make("200 result=55", "200 result=0")
    assert await ch.collect(None, 1, 4) == "7"  # inter-digit timeout ends the entry
    ch, s = make("200 result=49", "200 result=50")
    assert await ch.collect(None, 1, 2) == "12"  # max digits reached: no third wait
    assert len(s.sent) == 2


async def test_collect_star_terminator_uses_stream_file_then_wait():
    ch, s = make("200 result=57 endpos=100", "200 result=35", "200 result=42")
    assert await ch.collect("menu", 2, 5, terminator="*") == "9#"
    assert words(s) == [
        ["STREAM", "FILE", "menu", "0123456789*#"],
        ["WAIT", "FOR", "DIGIT", "2000"],
        ["WAIT", "FOR", "DIGIT", "2000"],
    ]


async def test_collect_validates():
    ch, s = make()
    with pytest.raises(ValueError):
        await ch.collect("x", 0, 4)
    with pytest.raises(ValueError):
        await ch.collect("x", 1, 0)
    with pytest.raises(ValueError):
        await ch.collect("x", 1, 4, terminator="5")
    assert s.sent == []


async def test_wait_digit_and_say():
    ch, s = make("200 result=0", "200 result=51", "200 result=-1", "200 result=0", "200 result=50", "200 result=0")
    assert await ch.wait_digit(0.2) == ""
    assert await ch.wait_digit(5) == "3"
    with pytest.raises(ChannelHungUp):
        await ch.wait_digit(5)
    assert await ch.say_digits("123") == ""
    assert await ch.say_number(1234, "12") == "2"
    assert await ch.say_date(1795395806) == ""
    assert words(s)[3:] == [
        ["SAY", "DIGITS", "123", ""],
        ["SAY", "NUMBER", "1234", "12"],
        ["SAY", "DATE", "1795395806", ""],
    ]


async def test_digit_strings_are_validated_before_sending():
    ch, s = make()
    for call in (
        lambda: ch.say_digits("12a"),
        lambda: ch.play("x", "1\n"),
        lambda: ch.say_number(1, "x"),
    ):
        with pytest.raises(ValueError):
            await call()
    with pytest.raises(TypeError):
        await ch.say_number("12")  # type: ignore[arg-type]
    assert s.sent == []


async def test_variables():
    ch, s = make("200 result=1", "200 result=1 (0212345678)", "200 result=0", "200 result=1 ()")
    await ch.set_variable("IVR_NOTE", 'two "quoted" words\\')
    assert await ch.get_variable("CALLERID(num)") == "0212345678"
    assert await ch.get_variable("UNSET") is None
    assert await ch.get_variable("EMPTY") == ""
    assert words(s)[0] == ["SET", "VARIABLE", "IVR_NOTE", 'two "quoted" words\\']
    with pytest.raises(ValueError):
        await ch.set_variable("X", "a\nHANGUP")
    with pytest.raises(ValueError):
        await ch.set_variable("BAD NAME", "v")
    assert len(s.sent) == 4


async def test_exec_joins_args_with_commas():
    ch, s = make("200 result=0", "200 result=-2")
    assert await ch.exec("Queue", "sales", "t", "", "", "300") == "0"
    assert words(s)[0] == ["EXEC", "Queue", "sales,t,,,300"]
    with pytest.raises(ChannelError):
        await ch.exec("NoSuchApp")
    with pytest.raises(ValueError):
        await ch.exec("Playback;System", "x")


async def test_answer_and_hangup():
    ch, s = make("200 result=0", "200 result=1", "HANGUP", "511 Command Not Permitted on a dead channel")
    await ch.answer()
    await ch.hangup()
    assert s.hung_up
    await ch.hangup()  # idempotent on a dead channel
    assert s.sent == ["ANSWER\n", "HANGUP\n", "HANGUP\n"]
    ch, _ = make("200 result=-1")
    with pytest.raises(ChannelError):
        await ch.answer()


async def test_exhausted_connection_is_a_hangup():
    ch, _ = make()
    with pytest.raises(AgiConnectionClosed):
        await ch.answer()
    ch, _ = make()
    with pytest.raises(ChannelHungUp):
        await ch.get_variable("X")
