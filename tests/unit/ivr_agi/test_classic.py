"""Classic AGI: PystChannel over pyst2 fed like Asterisk feeds a script's stdin."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import sys
import textwrap
from pathlib import Path

import pytest
from asterisk.agi import AGI

from ivr.agi.classic import PystChannel
from ivr.agi.protocol import AgiConnectionClosed, AgiInvalidCommand, AgiUsageError
from ivr.channel import Channel, ChannelHungUp

from tests.protocol.agi.fake_asterisk import parse_args

ROOT = Path(__file__).resolve().parents[3]

HEADERS = (
    "agi_request: callcore-agi\n"
    "agi_channel: SIP/trunk-00000001\n"
    "agi_language: ko\n"
    "agi_uniqueid: 1795395806.2\n"
    "agi_callerid: 01012345678\n"
    "agi_calleridname: 홍길동\n"
    "agi_dnid: 1600\n"
    "agi_extension: s\n"
    "agi_arg_1: flow=main\n"
    "\n"
)


@pytest.fixture(autouse=True)
def restore_sighup():
    """pyst2's AGI() installs its own SIGHUP handler in the (pytest) process."""
    previous = signal.getsignal(signal.SIGHUP)
    yield
    signal.signal(signal.SIGHUP, previous)


def make(responses: str) -> tuple[PystChannel, io.StringIO]:
    stdout = io.StringIO()
    agi = AGI(stdin=io.StringIO(HEADERS + responses), stdout=stdout, stderr=io.StringIO())
    return PystChannel(agi, command_timeout=5), stdout


def sent(stdout: io.StringIO) -> list[list[str]]:
    return [parse_args(line) for line in stdout.getvalue().splitlines()]


async def test_commands_and_typed_results():
    ch, out = make(
        "200 result=0\n"
        "200 result=49 endpos=2400\n"
        "200 result=-1 endpos=0\n"
        "200 result=123 (timeout)\n"
        "200 result=1\n"
        "200 result=1 (01012345678)\n"
        "200 result=0\n"
        "200 result=0\n"
        "510 Invalid or unknown command\n"
        "520-Invalid command syntax.  Proper usage follows:\n"
        "Usage: WAIT FOR DIGIT <timeout>\n"
        "520 End of proper usage.\n"
        "200 result=53\n"
    )
    assert isinstance(ch, Channel)
    assert ch.info.caller_name == "홍길동" and ch.info.dialed == "1600" and ch.info.args == ("flow=main",)
    await ch.answer()
    assert await ch.play("hello-world", "0123456789*#") == "1"
    assert await ch.play("does-not-exist") == ""  # pyst2 would raise AGIAppError here
    assert await ch.collect("enter-account", 4, 6) == "123"
    await ch.set_variable("IVR_NOTE", 'two "words"')
    assert await ch.get_variable("CALLERID(num)") == "01012345678"
    assert await ch.get_variable("UNSET") is None
    assert await ch.exec("Playback", "beep", "noanswer") == "0"
    with pytest.raises(AgiInvalidCommand):
        await ch.session.send("BOGUS COMMAND")
    with pytest.raises(AgiUsageError) as usage:
        await ch.session.send("WAIT FOR DIGIT")
    assert usage.value.usage == "Usage: WAIT FOR DIGIT <timeout>"
    assert await ch.say_number(5, "5") == "5"
    assert sent(out) == [
        ["ANSWER"],
        ["STREAM", "FILE", "hello-world", "0123456789*#"],
        ["STREAM", "FILE", "does-not-exist", ""],
        ["GET", "DATA", "enter-account", "4000", "6"],
        ["SET", "VARIABLE", "IVR_NOTE", 'two "words"'],
        ["GET", "VARIABLE", "CALLERID(num)"],
        ["GET", "VARIABLE", "UNSET"],
        ["EXEC", "Playback", "beep,noanswer"],
        ["BOGUS", "COMMAND"],
        ["WAIT", "FOR", "DIGIT"],
        ["SAY", "NUMBER", "5", "5"],
    ]


def test_pyst2_itself_breaks_on_the_hangup_notice():
    """Why PystChannel reads answers itself: pyst2 0.5.1 get_result() crashes on 'HANGUP'."""
    agi = AGI(stdin=io.StringIO(HEADERS + "HANGUP\n511 Command Not Permitted\n"), stdout=io.StringIO(), stderr=io.StringIO())
    with pytest.raises(ValueError):
        agi.get_variable("X")


async def test_hangup_notice_then_real_answers():
    ch, out = make(
        "200 result=0\n"
        "HANGUP\n"
        "511 Command Not Permitted on a dead channel or intercept routine\n"
        "200 result=1 (0212345678)\n"
        "200 result=1\n"
        "200 result=0\n"
    )
    await ch.answer()
    with pytest.raises(ChannelHungUp) as hung:
        await ch.collect("beep", 5, 4)
    assert hung.value.result.hangup_notice and ch.session.hung_up
    assert await ch.get_variable("CALLERID(num)") == "0212345678"  # its own answer, not the 511
    await ch.set_variable("X", "1")
    assert (await ch.session.send("NOOP", "done")).result == "0"
    assert len(sent(out)) == 5


async def test_sighup_marks_hung_up_but_dead_channel_commands_still_run():
    ch, out = make("200 result=1\n511 Command Not Permitted on a dead channel or intercept routine\n")
    os.kill(os.getpid(), signal.SIGHUP)  # what Asterisk does to a classic AGI on hangup
    deadline = asyncio.get_running_loop().time() + 5
    while not ch.session.hung_up:
        assert asyncio.get_running_loop().time() < deadline, "SIGHUP not seen"
        await asyncio.sleep(0.01)
    await ch.set_variable("IVR_RESULT", "abandoned")  # pyst2's execute() would refuse this
    with pytest.raises(ChannelHungUp):
        await ch.play("goodbye")
    assert [w[:2] for w in sent(out)] == [["SET", "VARIABLE"], ["STREAM", "FILE"]]


async def test_stdin_eof_is_a_hangup_not_a_spin():
    ch, _ = make("520-Invalid command syntax.  Proper usage follows:\nUsage: ...\n")  # pyst2 would loop forever
    with pytest.raises(AgiConnectionClosed):
        await asyncio.wait_for(ch.session.send("GET DATA"), 5)
    with pytest.raises(ChannelHungUp):
        await ch.answer()  # the session is over


FAKE_SERVICE_MAIN = textwrap.dedent(
    """
    import sys, types
    mod = types.ModuleType("ivr.service")

    class Service:
        async def run(self, channel):
            await channel.answer()
            digits = await channel.collect("enter-account", 3, 4)
            await channel.set_variable("ACCOUNT", digits)
            await channel.play("thanks")
            await channel.set_variable("NOT_REACHED", "1")

    mod.build_ivr_service = lambda settings: Service()
    sys.modules["ivr.service"] = mod
    from ivr.agi.classic import main
    sys.exit(main())
    """
)


async def test_main_runs_the_ivr_over_stdin_stdout(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CALLCORE_DATA_DIR": str(tmp_path), "CALLCORE_LOG_LEVEL": "INFO"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        FAKE_SERVICE_MAIN,
        cwd=tmp_path,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdin and proc.stdout and proc.stderr
    answers = [
        b"200 result=0\n",
        b"200 result=4711\n",
        b"200 result=1\n",
        b"200 result=-1 endpos=1200\n",  # caller hung up during the prompt
    ]
    commands = []
    try:
        async with asyncio.timeout(20):
            proc.stdin.write(HEADERS.encode("utf-8"))
            await proc.stdin.drain()
            for answer in answers:
                line = await proc.stdout.readline()
                assert line, (await proc.stderr.read()).decode()
                commands.append(parse_args(line.decode().rstrip("\n")))
                proc.stdin.write(answer)
                await proc.stdin.drain()
            rest = await proc.stdout.read()
            err = (await proc.stderr.read()).decode()
            code = await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert commands == [
        ["ANSWER"],
        ["GET", "DATA", "enter-account", "3000", "4"],
        ["SET", "VARIABLE", "ACCOUNT", "4711"],
        ["STREAM", "FILE", "thanks", ""],
    ]
    assert rest == b""  # nothing but AGI commands on stdout (logs go to stderr)
    assert code == 0, err
    assert "caller hung up" in err and "1795395806.2" in err
