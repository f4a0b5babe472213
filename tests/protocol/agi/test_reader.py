"""The FastAGI session's protocol-level reader (issue 18): answers are read in the
connection's ``data_received`` and resolve the waiting command directly. What the old
per-session reader task guaranteed must still hold: split reads, HANGUP notices between
commands, the stalled-client timeout, a cancelled command's late answer never paired with
the next command, the client closing mid-answer. Loopback only, bounded in time."""

from __future__ import annotations

import asyncio
from typing import Any

from ivr.agi.channel import AgiChannel
from ivr.agi.protocol import AgiConnectionClosed, AgiProtocolError, AgiTimeout
from ivr.agi.server import AgiSession

from .conftest import wait_until
from .test_server import open_raw, until_closed

HEADER = b"agi_network_script: ivr\nagi_uniqueid: 7.1\n\n"


async def start(make_server, handler, **kwargs) -> tuple[Any, asyncio.StreamReader, asyncio.StreamWriter]:
    server = await make_server({"ivr": handler}, **kwargs)
    reader, writer = await open_raw(server.port)
    writer.write(HEADER)
    await writer.drain()
    return server, reader, writer


async def test_answer_split_across_packets_is_one_answer(make_server):
    state: dict[str, Any] = {}

    async def handler(session: AgiSession) -> None:
        state["value"] = await AgiChannel(session).get_variable("CALLERID(num)")
        state["second"] = (await session.send("NOOP")).result

    _, reader, writer = await start(make_server, handler)
    async with asyncio.timeout(5):
        assert (await reader.readline()).startswith(b"GET VARIABLE")
        for piece in (b"20", b"0 resu", b"lt=1 (0101", b"2345678", b")", b"\n"):  # one byte run per packet
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0.01)
        assert await reader.readline() == b"NOOP\n"
        writer.write(b"200 result=0\r\n")  # CRLF is accepted too
        assert await until_closed(reader) == b""
    writer.close()
    assert state == {"value": "01012345678", "second": "0"}


async def test_hangup_notice_between_commands_marks_the_session_and_keeps_the_pairing(make_server):
    state: dict[str, Any] = {}
    answered = asyncio.Event()

    async def handler(session: AgiSession) -> None:
        await session.send("ANSWER")
        answered.set()
        state["hung_up_by_notice"] = await session.wait_hangup(3)  # no command in flight
        result = await session.send("VERBOSE", "bye", 1)
        state["after"] = (result.code, result.result, result.hangup_notice)

    _, reader, writer = await start(make_server, handler)
    async with asyncio.timeout(5):
        assert await reader.readline() == b"ANSWER\n"
        writer.write(b"200 result=0\n")
        await answered.wait()
        writer.write(b"HANGUP\n")  # unsolicited: the caller hung up between commands
        assert (await reader.readline()).startswith(b"VERBOSE")
        writer.write(b"200 result=1\n")  # the VERBOSE's own answer, not shifted by the notice
        assert await until_closed(reader) == b""
    writer.close()
    assert state == {"hung_up_by_notice": True, "after": (200, "1", True)}


async def test_hangup_notice_and_answer_in_one_packet(make_server):
    state: dict[str, Any] = {}

    async def handler(session: AgiSession) -> None:
        result = await session.send("STREAM FILE", "hello", "")
        state["result"] = (result.result, result.endpos, result.hangup_notice, session.hung_up)

    _, reader, writer = await start(make_server, handler)
    async with asyncio.timeout(5):
        await reader.readline()
        writer.write(b"HANGUP\n200 result=-1 endpos=1200\n")
        assert await until_closed(reader) == b""
    writer.close()
    assert state["result"] == ("-1", 1200, True, True)


async def test_hangup_notice_right_behind_the_header(make_server):
    """Data that arrives in the same read as the header's blank line belongs to the session."""
    state: dict[str, Any] = {}

    async def handler(session: AgiSession) -> None:
        state["hung_up"] = session.hung_up

    server = await make_server({"ivr": handler})
    reader, writer = await open_raw(server.port)
    writer.write(HEADER + b"HANGUP\n")
    async with asyncio.timeout(5):
        assert await until_closed(reader) == b""
    writer.close()
    assert state == {"hung_up": True}


async def test_stalled_client_times_out_and_its_late_answer_is_never_used(make_server):
    state: dict[str, Any] = {}

    async def handler(session: AgiSession) -> None:
        await session.send("ANSWER")  # arms the session timer with the long timeout
        try:
            await session.send("NOOP", timeout=0.2)  # a shorter deadline: the timer must fire earlier
        except AgiTimeout as exc:
            state["timeout"] = exc
        await asyncio.sleep(0.2)  # the late answer arrives meanwhile
        try:
            await session.send("NOOP")
        except Exception as exc:
            state["after"] = exc

    _, reader, writer = await start(make_server, handler, command_timeout=30.0)
    async with asyncio.timeout(5):
        assert await reader.readline() == b"ANSWER\n"
        writer.write(b"200 result=0\n")
        assert await reader.readline() == b"NOOP\n"
        await wait_until(lambda: "timeout" in state, what="the timeout")
        writer.write(b"200 result=0\n")  # too late
        assert await until_closed(reader) == b""  # the second NOOP was never sent
    writer.close()
    assert isinstance(state["timeout"], AgiTimeout)
    assert isinstance(state["after"], AgiProtocolError) and "unusable" in str(state["after"])


async def test_a_longer_deadline_after_a_short_one_is_kept(make_server):
    """The session's one timer, armed for a short command, re-arms for the next, longer one."""
    state: dict[str, Any] = {}

    async def handler(session: AgiSession) -> None:
        await session.send("NOOP", timeout=0.1)  # answered at once
        state["slow"] = (await session.send("NOOP", timeout=3.0)).result  # answered after 0.1 s has passed

    _, reader, writer = await start(make_server, handler)
    async with asyncio.timeout(5):
        await reader.readline()
        writer.write(b"200 result=0\n")
        await reader.readline()
        await asyncio.sleep(0.4)  # the first deadline passes while the second command waits
        writer.write(b"200 result=5\n")
        assert await until_closed(reader) == b""
    writer.close()
    assert state == {"slow": "5"}


async def test_client_closing_mid_answer(make_server):
    state: dict[str, Any] = {}

    async def handler(session: AgiSession) -> None:
        try:
            await session.send("GET VARIABLE", "X")
        except AgiConnectionClosed as exc:
            state["error"] = str(exc)
        state["hung_up"] = session.hung_up

    server, reader, writer = await start(make_server, handler)
    async with asyncio.timeout(5):
        await reader.readline()
        writer.write(b"200 result=1 (ha")
        await writer.drain()
        writer.close()
        await wait_until(lambda: "hung_up" in state, what="the session's end")
    assert "mid-line" in state["error"] and state["hung_up"] is True
    await wait_until(lambda: server.active_connections == 0, what="connection released")


async def test_unsolicited_answer_makes_the_session_unusable(make_server):
    state: dict[str, Any] = {}
    gate = asyncio.Event()

    async def handler(session: AgiSession) -> None:
        await gate.wait()
        try:
            await session.send("NOOP")
        except AgiProtocolError as exc:
            state["after"] = str(exc)

    _, reader, writer = await start(make_server, handler)
    async with asyncio.timeout(5):
        writer.write(b"200 result=1\n")  # nothing was asked
        await writer.drain()
        await asyncio.sleep(0.1)
        gate.set()
        assert await until_closed(reader) == b""  # NOOP never sent
    writer.close()
    assert "unsolicited" in state["after"]


async def test_overlong_response_line_closes_the_session(make_server):
    state: dict[str, Any] = {}

    async def handler(session: AgiSession) -> None:
        try:
            await session.send("NOOP")
        except AgiProtocolError as exc:
            state["error"] = str(exc)

    _, reader, writer = await start(make_server, handler, max_line_bytes=1024)
    async with asyncio.timeout(5):
        await reader.readline()
        writer.write(b"200 result=1 (" + b"x" * 5000)
        await writer.drain()
        await wait_until(lambda: "error" in state, what="the refusal")
    writer.close()
    assert "too long" in state["error"]


async def test_concurrent_sends_go_one_at_a_time(make_server):
    """Two tasks sending on one session: the second command is written only after the first is answered."""
    state: dict[str, Any] = {}

    async def handler(session: AgiSession) -> None:
        async def get(name: str) -> str | None:
            return await AgiChannel(session).get_variable(name)

        blocked = asyncio.create_task(session.send("NOOP"))  # its turn is cancelled while it waits
        first = asyncio.create_task(get("A"))
        await asyncio.sleep(0)
        third = asyncio.create_task(get("B"))
        await asyncio.sleep(0.05)
        state["values"] = await asyncio.gather(first, third)
        blocked.cancel()

    _, reader, writer = await start(make_server, handler)
    async with asyncio.timeout(5):
        assert await reader.readline() == b"NOOP\n"
        await asyncio.sleep(0.1)
        writer.write(b"200 result=0\n")
        assert await reader.readline() == b'GET VARIABLE "A"\n'
        writer.write(b"200 result=1 (a)\n")
        assert await reader.readline() == b'GET VARIABLE "B"\n'
        writer.write(b"200 result=1 (b)\n")
        assert await until_closed(reader) == b""
    writer.close()
    assert state["values"] == ["a", "b"]


async def test_a_send_cancelled_while_waiting_for_its_turn_passes_the_turn_on(make_server):
    state: dict[str, Any] = {}

    async def handler(session: AgiSession) -> None:
        first = asyncio.create_task(session.send("NOOP"))
        await asyncio.sleep(0)
        waiting = asyncio.create_task(session.send("VERBOSE", "never", 1))
        last = asyncio.create_task(session.send("ANSWER"))
        await asyncio.sleep(0.05)
        waiting.cancel()  # never written: the session stays usable
        await asyncio.gather(first, return_exceptions=True)
        state["last"] = (await last).result

    _, reader, writer = await start(make_server, handler)
    async with asyncio.timeout(5):
        assert await reader.readline() == b"NOOP\n"
        await asyncio.sleep(0.1)
        writer.write(b"200 result=0\n")
        assert await reader.readline() == b"ANSWER\n"
        writer.write(b"200 result=7\n")
        assert await until_closed(reader) == b""
    writer.close()
    assert state == {"last": "7"}
