"""Classic AGI: PystChannel over pyst2 fed like Asterisk feeds a script's stdin."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import sys
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


CLASSIC_FLOW = """\
flow: main
languages: [ko]
start: ask
agent_vars: [account]
nodes:
  ask:
    type: collect
    prompt: enter_account
    var: account
    min_length: 4
    max_length: 4
    timeout: 3
    retries: 1
    next: to_sales
    on_fail: to_sales
  to_sales:
    type: queue
    queue: sales
    data: {account: account}
"""


def _answer(command: list[str]) -> bytes:
    """What Asterisk answers on a live channel (the caller types 4711 at the prompt)."""
    verb = " ".join(command[:2])
    if verb == "GET DATA":
        return b"200 result=4711\n"
    if verb in ("SET VARIABLE", "HANGUP"):
        return b"200 result=1\n"
    if verb == "STREAM FILE":
        return b"200 result=0 endpos=1600\n"
    if verb == "GET VARIABLE":
        return b"200 result=0\n"
    return b"200 result=0\n"


async def test_callcore_agi_runs_the_real_ivr_and_stores_its_context(tmp_path):
    """`callcore agi` (classic AGI: one process per call, stdin/stdout) runs the real
    engine and writes to the server's database, so the screen pop sees the IVR context."""
    import wave

    from callcore import migrate
    from callcore.db import create_engine, session_factory
    from ivr.repository import SqlIvrRepository

    plans = tmp_path / "plans"
    (plans / "sounds" / "ko").mkdir(parents=True)
    (plans / "main.yaml").write_text(CLASSIC_FLOW, encoding="utf-8")
    with wave.open(str(plans / "sounds" / "ko" / "enter_account.wav"), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000), w.writeframes(b"\0\0" * 800)
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'callcore.db'}"
    await asyncio.to_thread(migrate.upgrade, db_url)  # the server (or `callcore db upgrade`) did this

    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLCORE_")}
    env.update(PYTHONPATH=str(ROOT), CALLCORE_DATA_DIR=str(tmp_path), CALLCORE_DATABASE_URL=db_url,
               CALLCORE_DIALPLANS_DIR=str(plans), CALLCORE_DIALPLAN_WATCH="false", CALLCORE_LOG_LEVEL="INFO")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "callcore.cli", "agi",
        cwd=tmp_path, env=env,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdin and proc.stdout and proc.stderr
    commands: list[list[str]] = []
    try:
        async with asyncio.timeout(30):
            proc.stdin.write(HEADERS.encode("utf-8"))
            await proc.stdin.drain()
            while line := await proc.stdout.readline():
                commands.append(parse_args(line.decode().rstrip("\n")))
                proc.stdin.write(_answer(commands[-1]))
                await proc.stdin.drain()
            err = (await proc.stderr.read()).decode()
            code = await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert code == 0, err
    assert ["GET", "DATA", f"{plans.resolve()}/sounds/ko/enter_account", "3000", "4"] in commands
    assert ["SET", "VARIABLE", "IVR_QUEUE", "sales"] in commands  # the dialplan continues into Queue()

    engine = create_engine(db_url)
    try:
        session = await SqlIvrRepository(session_factory(engine)).session("1795395806.2")
        # reports (issue 16): the session's steps and outcome reached the fact store
        from reports.repository import ReportRepository

        facts = await ReportRepository(session_factory(engine)).facts(0, 4e9, ("ivr.step", "ivr.ended"))
    finally:
        await engine.dispose()
    assert [f.data["outcome"] for f in facts if f.kind == "ivr.ended"] == ["queue"]
    assert any(f.kind == "ivr.step" for f in facts)
    assert session is not None and session["outcome"] == "queue" and session["queue"] == "sales"
    assert session["context"]["agent"]["account"] == "4711"
    assert session["caller"] == "01012345678"
