"""Replay the real Asterisk FastAGI captures against FastAgiServer + AgiChannel over loopback."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable

from ivr.agi.channel import AgiChannel
from ivr.agi.protocol import AgiInvalidCommand, AgiResult, AgiUsageError
from ivr.agi.server import AgiSession
from ivr.channel import ChannelHungUp

from .fake_asterisk import load_capture, parse_args, replay

Step = tuple[str, Callable[[], Awaitable[Any]]]


def reference_steps(session: AgiSession) -> list[Step]:
    """The capture script of agi-reference.jsonl, expressed with the typed API."""
    ch = AgiChannel(session)
    return [
        ("ANSWER", ch.answer),
        ("VERBOSE", lambda: session.send("VERBOSE", "capture start", 1)),
        ("GET VARIABLE", lambda: ch.get_variable("CALLERID(num)")),
        ("GET FULL VARIABLE", lambda: session.send("GET FULL VARIABLE", "${CHANNEL(language)}")),
        ("STREAM FILE", lambda: ch.play("hello-world")),
        ("STREAM FILE escape", lambda: ch.play("hello-world", "0123456789*#")),
        ("GET DATA", lambda: ch.collect("beep", 3.0, 1)),
        ("SET VARIABLE queue", lambda: ch.set_variable("IVR_QUEUE", "sales")),
        ("SET VARIABLE note", lambda: ch.set_variable("IVR_NOTE", "two words")),
        ("CHANNEL STATUS", lambda: session.send("CHANNEL STATUS")),
        ("SAY DIGITS", lambda: ch.say_digits("123")),
        ("WAIT FOR DIGIT", lambda: ch.wait_digit(0.2)),
        ("EXEC", lambda: ch.exec("Playback", "beep")),
        ("NOOP", lambda: session.send("NOOP", "hello")),
        ("BOGUS", lambda: session.send("BOGUS COMMAND")),
        ("GET DATA usage", lambda: session.send("GET DATA")),
        ("missing sound", lambda: ch.play("does-not-exist")),
    ]


async def run_steps(steps: list[Step], session: AgiSession, out: list[tuple[str, Any, bool]]) -> None:
    """Run every step even after errors (as the capture script did); record (name, outcome, hung_up)."""
    for name, step in steps:
        try:
            outcome: Any = await step()
        except Exception as exc:  # recorded and asserted by the test
            outcome = exc
        out.append((name, outcome, session.hung_up))


def assert_same_commands(received: list[str], captured: list[str]) -> None:
    assert len(received) == len(captured)
    for got, want in zip(received, captured):
        assert got.endswith("\n") and got.count("\n") == 1
        assert parse_args(got.rstrip("\n")) == parse_args(want), (got, want)


async def run_capture(make_server, captures_dir, file: str, index: int, steps_for) -> tuple[list, Any, Any]:
    outcomes: list[tuple[str, Any, bool]] = []
    seen: dict[str, AgiSession] = {}

    async def handler(session: AgiSession) -> None:
        seen["session"] = session
        await run_steps(steps_for(session), session, outcomes)

    server = await make_server({"ivr": handler})
    capture = load_capture(captures_dir / file, index)
    result = await replay(server.port, capture, deadline=10)
    assert result.closed_by_server and result.extra == b""
    assert_same_commands(result.received, capture.commands)
    assert server.sessions_total == 1 and server.sessions_failed == 0
    return outcomes, seen["session"], server


def by_name(outcomes):
    return {name: (outcome, hung) for name, outcome, hung in outcomes}


async def test_reference_live_channel_every_command_typed(make_server, captures_dir, caplog):
    caplog.set_level(logging.WARNING, logger="ivr.agi.channel")
    outcomes, session, _ = await run_capture(make_server, captures_dir, "agi-reference.jsonl", 0, reference_steps)
    r = by_name(outcomes)
    assert r["ANSWER"] == (None, False)
    verbose = r["VERBOSE"][0]
    assert isinstance(verbose, AgiResult) and verbose.code == 200 and verbose.result == "1"
    assert r["GET VARIABLE"][0] == "01012345678"
    full = r["GET FULL VARIABLE"][0]
    assert (full.result, full.data) == ("1", "en")
    assert r["STREAM FILE"][0] == ""
    assert r["STREAM FILE escape"][0] == "1"  # 200 result=49 endpos=2400: ASCII '1'
    assert r["GET DATA"][0] == ""  # 200 result= (timeout)
    assert r["SET VARIABLE queue"][0] is None and r["SET VARIABLE note"][0] is None
    status = r["CHANNEL STATUS"][0]
    assert status.int_result == 6  # line is up
    assert r["SAY DIGITS"][0] == "" and r["WAIT FOR DIGIT"][0] == ""
    assert r["EXEC"][0] == "0"
    assert r["NOOP"][0].result == "0"
    bogus = r["BOGUS"][0]
    assert isinstance(bogus, AgiInvalidCommand) and bogus.result.code == 510
    usage = r["GET DATA usage"][0]
    assert isinstance(usage, AgiUsageError)
    assert "Stream the given <replaceable>file</replaceable>, and receive DTMF data." in usage.usage
    assert "Returns the digits received" in usage.usage
    assert r["missing sound"][0] == ""  # 200 result=-1 endpos=0: the caller is not stuck
    assert any("does-not-exist" in rec.getMessage() and "missing" in rec.getMessage() for rec in caplog.records)
    assert not any(hung for _, _, hung in outcomes)
    # headers
    info = session.info
    assert info.args == ("arg one", "2")
    assert info.caller_name == "홍길동" and info.caller_num == "01012345678"
    assert info.uniqueid == "1795395806.2" and info.channel == "Local/press1@sim-caller-00000001;1"
    assert info.dialed == "s"  # agi_dnid is "unknown"
    assert session.headers["agi_accountcode"] == "" and session.route == "ivr" and info.params == {}


async def test_reference_hangup_mid_script_no_off_by_one(make_server, captures_dir):
    outcomes, session, _ = await run_capture(make_server, captures_dir, "agi-reference.jsonl", 1, reference_steps)
    r = by_name(outcomes)
    assert r["GET VARIABLE"][0] == "0212345678"
    assert r["GET FULL VARIABLE"][0].data == "en"
    # 200 result=-1 endpos=8160: playback started and was cut: the caller is gone (no notice yet)
    first = r["STREAM FILE"][0]
    assert isinstance(first, ChannelHungUp) and first.result.endpos == 8160 and r["STREAM FILE"][1] is False
    # HANGUP notice + 511 belong to the second STREAM FILE, and only to it
    second = r["STREAM FILE escape"][0]
    assert isinstance(second, ChannelHungUp)
    assert second.result.code == 511 and second.result.hangup_notice is True and r["STREAM FILE escape"][1] is True
    hangups = [name for name, outcome, _ in outcomes if isinstance(outcome, ChannelHungUp)]
    assert hangups == [
        "STREAM FILE",
        "STREAM FILE escape",
        "GET DATA",
        "CHANNEL STATUS",
        "SAY DIGITS",
        "WAIT FOR DIGIT",
        "GET DATA usage",
        "missing sound",
    ]
    notices = [name for name, o, _ in outcomes if isinstance(o, ChannelHungUp) and o.result.hangup_notice]
    assert notices == ["STREAM FILE escape"]
    # commands allowed on a dead channel get their own answers
    assert r["SET VARIABLE queue"][0] is None and r["SET VARIABLE note"][0] is None
    assert r["EXEC"][0] == "0"
    assert r["NOOP"][0].result == "0"
    assert isinstance(r["BOGUS"][0], AgiInvalidCommand)
    assert session.hung_up


async def test_caller_hangup_capture_pairs_each_answer_with_its_command(make_server, captures_dir):
    def steps(session: AgiSession) -> list[Step]:
        return [
            ("ANSWER", lambda: session.send("ANSWER")),
            ("STREAM FILE", lambda: session.send("STREAM FILE", "hello-world", "")),
            ("GET DATA", lambda: session.send("GET DATA", "beep", 5000, 4)),
            ("GET VARIABLE", lambda: session.send("GET VARIABLE", "CALLERID(num)")),
            ("SET VARIABLE", lambda: session.send("SET VARIABLE", "X", "1")),
            ("NOOP", lambda: session.send("NOOP", "done")),
        ]

    outcomes, session, _ = await run_capture(make_server, captures_dir, "agi-caller-hangup.jsonl", 0, steps)
    r = by_name(outcomes)
    assert r["ANSWER"][0].result == "0"
    sf = r["STREAM FILE"][0]
    assert (sf.result, sf.endpos, sf.hangup_notice, r["STREAM FILE"][1]) == ("-1", 8160, False, False)
    gd = r["GET DATA"][0]
    assert isinstance(gd, ChannelHungUp) and gd.result.code == 511 and gd.result.hangup_notice
    assert r["GET DATA"][1] is True  # marked hung up from here on
    gv = r["GET VARIABLE"][0]
    assert (gv.code, gv.result, gv.data, gv.hangup_notice) == (200, "1", "0212345678", False)
    assert r["SET VARIABLE"][0].result == "1"
    assert r["NOOP"][0].result == "0"  # the answer that was left in "after"
    info = session.info
    assert info.params == {"flow": "main", "lang": "ko"} and session.route == "ivr"
    assert info.args == () and info.caller_name == "Kim Cheolsu" and info.caller_num == "0212345678"


async def test_caller_hangup_capture_through_channel(make_server, captures_dir):
    def steps(session: AgiSession) -> list[Step]:
        ch = AgiChannel(session)
        return [
            ("ANSWER", ch.answer),
            ("play", lambda: ch.play("hello-world")),
            ("collect", lambda: ch.collect("beep", 5.0, 4)),
            ("get", lambda: ch.get_variable("CALLERID(num)")),
            ("set", lambda: ch.set_variable("X", "1")),
            ("NOOP", lambda: session.send("NOOP", "done")),
        ]

    outcomes, _, _ = await run_capture(make_server, captures_dir, "agi-caller-hangup.jsonl", 0, steps)
    r = by_name(outcomes)
    assert r["ANSWER"][0] is None
    assert isinstance(r["play"][0], ChannelHungUp)  # result=-1 endpos=8160: cut by the hangup
    assert isinstance(r["collect"][0], ChannelHungUp) and r["collect"][0].result.code == 511
    assert r["get"][0] == "0212345678"
    assert r["set"][0] is None
    assert r["NOOP"][0].result == "0"


async def test_hangup_notice_while_idle_marks_session(make_server):
    """Asterisk writes HANGUP when it notices the hangup between commands; the session sees it at once."""
    state: dict[str, Any] = {}

    async def handler(session: AgiSession) -> None:
        state["noticed"] = await session.wait_hangup(timeout=5)
        state["hung_up"] = session.hung_up
        try:
            await session.send("STREAM FILE", "beep", "")
        except ChannelHungUp as exc:
            state["error"] = exc
        state["var"] = await AgiChannel(session).get_variable("X")

    server = await make_server({"ivr": handler})
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"agi_network_script: ivr\nagi_uniqueid: 1.1\n\n")
    writer.write(b"HANGUP\n")
    await writer.drain()
    async with asyncio.timeout(5):
        assert await reader.readline() == b'STREAM FILE "beep" ""\n'
        writer.write(b"511 Command Not Permitted on a dead channel or intercept routine\n")
        assert await reader.readline() == b'GET VARIABLE "X"\n'
        writer.write(b"200 result=0\n")
        assert await reader.read() == b""
    writer.close()
    assert state["noticed"] is True and state["hung_up"] is True
    assert state["error"].result.code == 511
    assert state["var"] is None
