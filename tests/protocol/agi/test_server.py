"""FastAgiServer behaviour: bad clients, limits, lifecycle, routing, injection refusal."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Any

import pytest

from ivr.agi.channel import AgiChannel
from ivr.agi.protocol import AgiTimeout
from ivr.agi.server import AgiSession, FastAgiServer

from .conftest import wait_until
from .fake_asterisk import load_capture, replay

HEADER = b"agi_network: yes\nagi_network_script: ivr?flow=main\nagi_uniqueid: 42.1\nagi_channel: SIP/x-1\n\n"


async def normal_handler(session: AgiSession) -> None:
    ch = AgiChannel(session)
    await ch.answer()
    await ch.get_variable("CALLERID(num)")
    await ch.play("hello-world")


def drop_logs(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "ivr.agi.server" and "dropping" in r.getMessage()]


async def scripted_call(port: int, captures_dir, deadline: float = 5.0) -> None:
    """A normal call (first three commands of the reference capture) must finish within its deadline."""
    capture = load_capture(captures_dir / "agi-reference.jsonl", 0)
    capture.units = capture.units[:2] + [["200 result=0 endpos=11234\n"]]
    result = await replay(port, capture, deadline=deadline)
    assert [line.split()[0] for line in result.received] == ["ANSWER", "GET", "STREAM"]
    assert result.closed_by_server
    assert result.seconds < deadline


async def open_raw(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def until_closed(reader: asyncio.StreamReader, timeout: float = 5.0) -> bytes:
    async with asyncio.timeout(timeout):
        try:
            return await reader.read()
        except ConnectionError:
            return b""


@pytest.fixture
async def server(make_server) -> FastAgiServer:
    return await make_server({"ivr": normal_handler}, header_timeout=0.6)


async def test_partial_header_then_close(server, captures_dir, caplog):
    caplog.set_level(logging.WARNING)
    reader, writer = await open_raw(server.port)
    writer.write(b"agi_network: yes\nagi_network_script: iv")
    await writer.drain()
    writer.close()  # panoramisk 1.4 spins forever here, freezing the loop
    await asyncio.wait_for(scripted_call(server.port, captures_dir), 5)
    await wait_until(lambda: server.bad_clients == 1, what="bad client counted")
    assert server.sessions_total == 1 and server.sessions_failed == 0
    logs = drop_logs(caplog)
    assert len(logs) == 1 and "inside the header" in logs[0]


async def test_slow_client_hits_header_timeout(server, captures_dir):
    reader, writer = await open_raw(server.port)
    started = time.monotonic()

    async def dribble() -> None:
        for byte in HEADER:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.25)  # ~4 bytes/s: would need ~20 s for the header

    task = asyncio.create_task(dribble())
    try:
        await asyncio.gather(scripted_call(server.port, captures_dir), until_closed(reader, timeout=3))
        elapsed = time.monotonic() - started
        assert 0.5 <= elapsed < 2.0  # header_timeout=0.6
        assert server.bad_clients == 1 and server.sessions_total == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        writer.close()


async def test_endless_line_is_cut_at_the_line_limit(server, captures_dir, caplog):
    caplog.set_level(logging.WARNING)
    reader, writer = await open_raw(server.port)

    async def flood() -> None:
        try:
            writer.write(b"agi_network_script: " + b"x" * 1_000_000)  # no newline, ever
            await writer.drain()
        except ConnectionError:
            pass  # the server hung up on us, as it should

    flooding = asyncio.create_task(flood())
    try:
        await asyncio.gather(scripted_call(server.port, captures_dir), until_closed(reader))
        await wait_until(lambda: server.bad_clients == 1, what="flood dropped")
        logs = drop_logs(caplog)
        assert len(logs) == 1 and "longer than 8192" in logs[0]
    finally:
        flooding.cancel()
        await asyncio.gather(flooding, return_exceptions=True)
        writer.close()


async def test_oversized_header_of_short_lines_is_refused(make_server):
    server = await make_server({"ivr": normal_handler}, max_header_bytes=1024)
    reader, writer = await open_raw(server.port)
    writer.write(b"".join(b"agi_x%d: %s\n" % (i, b"y" * 40) for i in range(100)) + b"\n")
    await writer.drain()
    assert await until_closed(reader) == b""
    await wait_until(lambda: server.bad_clients == 1)
    assert server.sessions_total == 0
    writer.close()


async def test_invalid_utf8_is_replaced_logged_and_served(make_server, captures_dir, caplog):
    caplog.set_level(logging.WARNING)
    seen: dict[str, Any] = {}

    async def handler(session: AgiSession) -> None:
        seen["info"] = session.info
        await AgiChannel(session).answer()

    server = await make_server({"ivr": handler})
    reader, writer = await open_raw(server.port)
    writer.write(b"agi_network_script: ivr\nagi_uniqueid: 7.7\nagi_calleridname: Caf\xe9 \xff\xfe\n\n")
    await writer.drain()
    async with asyncio.timeout(5):
        assert await reader.readline() == b"ANSWER\n"
        writer.write(b"200 result=0\n")
        assert await reader.read() == b""
    writer.close()
    assert seen["info"].caller_name == "Caf\ufffd \ufffd\ufffd"
    warnings = [r.getMessage() for r in caplog.records if r.name == "ivr.agi.server" and "non-UTF-8" in r.getMessage()]
    assert warnings == ["FastAGI: non-UTF-8 bytes in the header of call 7.7 (replaced)"]
    assert server.sessions_total == 1 and server.bad_clients == 0


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_random_garbage(server, captures_dir, seed):
    rng = random.Random(seed)
    reader, writer = await open_raw(server.port)
    garbage = rng.randbytes(20_000)
    if seed == 3:
        garbage = b"\n".join(rng.randbytes(30) for _ in range(20)).replace(b"\n\n", b"\n") + b"\n\n"
    try:
        writer.write(garbage)
        await writer.drain()
    except ConnectionError:
        pass
    await asyncio.gather(scripted_call(server.port, captures_dir), until_closed(reader))
    writer.close()
    await wait_until(lambda: server.bad_clients == 1, what="garbage dropped")
    assert server.sessions_total == 1 and server.sessions_failed == 0


async def test_many_abandoned_connections(server, captures_dir):
    writers = []
    for i in range(60):
        _, writer = await open_raw(server.port)
        if i % 3 == 0:
            writer.close()  # connect and leave at once
        elif i % 3 == 1:
            writer.write(b"agi_network: yes\n")  # half a header, then silence
            writers.append(writer)
        else:
            writers.append(writer)  # connect and say nothing
    await scripted_call(server.port, captures_dir)
    await wait_until(lambda: server.bad_clients == 60 and server.active_connections == 0, timeout=5, what="all dropped")
    assert server.sessions_total == 1
    for writer in writers:
        writer.close()


async def test_max_sessions_refuses_extra_connections(make_server, captures_dir):
    server = await make_server({"ivr": normal_handler}, max_sessions=2, header_timeout=1.0)
    held = [await open_raw(server.port) for _ in range(2)]
    await wait_until(lambda: server.active_connections == 2)
    reader, writer = await open_raw(server.port)
    assert await until_closed(reader) == b""
    assert server.sessions_rejected == 1
    for _, w in held:
        w.close()
    writer.close()
    await wait_until(lambda: server.active_connections == 0)
    await scripted_call(server.port, captures_dir)


async def test_unknown_route_is_counted_and_left_alone(make_server):
    server = await make_server({"ivr": normal_handler})
    reader, writer = await open_raw(server.port)
    writer.write(b"agi_network_script: nosuch?x=1\nagi_uniqueid: 9.9\n\n")
    await writer.drain()
    async with asyncio.timeout(5):
        line = await reader.readline()
        assert line.startswith(b"VERBOSE ") and b"nosuch" in line
        writer.write(b"200 result=1\n")
        assert await reader.read() == b""  # closed: no HANGUP, no other command
    writer.close()
    assert server.unknown_routes == 1 and server.sessions_total == 0


async def test_handler_exception_is_contained(make_server, captures_dir, caplog):
    caplog.set_level(logging.ERROR)

    async def broken(session: AgiSession) -> None:
        await AgiChannel(session).answer()
        raise RuntimeError("flow bug")

    server = await make_server({"broken": broken, "ivr": normal_handler})
    reader, writer = await open_raw(server.port)
    writer.write(b"agi_network_script: broken\nagi_uniqueid: 5.5\n\n")
    async with asyncio.timeout(5):
        assert await reader.readline() == b"ANSWER\n"
        writer.write(b"200 result=0\n")
        assert await reader.read() == b""
    writer.close()
    assert server.sessions_failed == 1
    assert any("5.5" in r.getMessage() and r.exc_info for r in caplog.records)
    # and the server keeps serving
    await scripted_call(server.port, captures_dir)
    assert server.sessions_total == 2 and server.sessions_failed == 1


async def test_command_timeout_gives_up_on_the_session(make_server):
    state: dict[str, Any] = {}

    async def handler(session: AgiSession) -> None:
        try:
            await session.send("NOOP", timeout=0.2)
        except AgiTimeout as exc:
            state["timeout"] = exc
        try:
            await session.send("NOOP")
        except Exception as exc:
            state["after"] = exc

    server = await make_server({"ivr": handler})
    reader, writer = await open_raw(server.port)
    writer.write(b"agi_network_script: ivr\n\n")
    async with asyncio.timeout(5):
        assert await reader.readline() == b"NOOP\n"
        assert await reader.read() == b""  # never answered; only one command was sent
    writer.close()
    assert isinstance(state["timeout"], AgiTimeout)
    assert "unusable" in str(state["after"])


async def test_newline_injection_is_refused_before_anything_is_written(make_server):
    state: dict[str, Any] = {}

    async def handler(session: AgiSession) -> None:
        ch = AgiChannel(session)
        for bad in ("sales\nHANGUP", "a\rb", "nul\0"):
            try:
                await ch.set_variable("IVR_QUEUE", bad)
            except ValueError as exc:
                state.setdefault("refused", []).append(str(exc))
        await ch.set_variable("IVR_NOTE", 'say "hi" \\o/')

    server = await make_server({"ivr": handler})
    reader, writer = await open_raw(server.port)
    writer.write(b"agi_network_script: ivr\n\n")
    async with asyncio.timeout(5):
        assert await reader.readline() == b'SET VARIABLE "IVR_NOTE" "say \\"hi\\" \\\\o/"\n'
        writer.write(b"200 result=1\n")
        assert await reader.read() == b""
    writer.close()
    assert len(state["refused"]) == 3


async def test_on_command_hook_records_latency(make_server, captures_dir):
    calls: list[tuple[str, float]] = []
    server = await make_server({"ivr": normal_handler}, on_command=lambda name, s: calls.append((name, s)))
    await scripted_call(server.port, captures_dir)
    assert [name for name, _ in calls] == ["ANSWER", "GET VARIABLE", "STREAM FILE"]
    assert all(0 <= s < 5 for _, s in calls)


async def test_close_waits_for_grace_then_cancels(make_server):
    state: dict[str, Any] = {"cancelled": False}
    started = asyncio.Event()

    async def slow(session: AgiSession) -> None:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            state["cancelled"] = True
            raise

    server = FastAgiServer("127.0.0.1", 0, header_timeout=1)
    server.add_route("ivr", slow)
    await server.start()
    port = server.port
    reader, writer = await open_raw(port)
    writer.write(b"agi_network_script: ivr\n\n")
    await asyncio.wait_for(started.wait(), 5)
    assert server.active_sessions == 1
    t0 = time.monotonic()
    await server.close(grace=0.3)
    assert 0.25 <= time.monotonic() - t0 < 2
    assert state["cancelled"] and server.active_sessions == 0 and server.active_connections == 0
    assert await until_closed(reader) == b""
    writer.close()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)


async def test_close_lets_quick_sessions_finish(make_server):
    release = asyncio.Event()
    state: dict[str, Any] = {}

    async def handler(session: AgiSession) -> None:
        await release.wait()
        state["result"] = await session.send("NOOP", "bye")

    server = FastAgiServer("127.0.0.1", 0)
    server.add_route("ivr", handler)
    await server.start()
    reader, writer = await open_raw(server.port)
    writer.write(b"agi_network_script: ivr\n\n")
    await wait_until(lambda: server.active_sessions == 1)

    async def asterisk() -> None:
        assert await reader.readline() == b'NOOP "bye"\n'
        writer.write(b"200 result=0\n")

    closing = asyncio.create_task(server.close(grace=5))
    answering = asyncio.create_task(asterisk())
    await asyncio.sleep(0.05)
    release.set()
    await asyncio.wait_for(asyncio.gather(closing, answering), 5)
    assert state["result"].result == "0"
    writer.close()


def test_sync_handlers_are_refused():
    server = FastAgiServer("127.0.0.1", 0)
    with pytest.raises(TypeError):
        server.add_route("ivr", lambda session: None)
    with pytest.raises(ValueError):
        server.add_route("ivr?x=1", normal_handler)
    server.add_route("/ivr", normal_handler)
    with pytest.raises(ValueError):
        server.add_route("ivr", normal_handler)  # panoramisk's duplicate check still applies


async def test_cancelled_command_never_pairs_its_late_answer_with_the_next(make_server):
    state: dict[str, Any] = {}

    async def handler(session: AgiSession) -> None:
        ch = AgiChannel(session)
        try:
            await asyncio.wait_for(ch.collect("enter-account", 5, 4), 0.2)  # e.g. an engine-level deadline
        except TimeoutError:
            state["cut"] = True
        try:
            await ch.get_variable("X")
        except Exception as exc:
            state["after"] = exc

    server = await make_server({"ivr": handler})
    reader, writer = await open_raw(server.port)
    writer.write(b"agi_network_script: ivr\n\n")
    async with asyncio.timeout(5):
        assert (await reader.readline()).startswith(b"GET DATA")
        await wait_until(lambda: "after" in state)
        writer.write(b"200 result=1234\n")  # the late answer to GET DATA
        assert await reader.read() == b""  # GET VARIABLE was never sent
    writer.close()
    assert state["cut"] and "cancelled" in str(state["after"])


async def test_concurrent_calls_do_not_cross_talk(make_server, captures_dir):
    results: dict[str, tuple[str | None, str]] = {}

    async def handler(session: AgiSession) -> None:
        ch = AgiChannel(session)
        await ch.answer()
        await session.send("VERBOSE", "capture start", 1)
        results[session.uniqueid] = (await ch.get_variable("CALLERID(num)"), session.info.caller_num or "")

    server = await make_server({"ivr": handler})
    base = load_capture(captures_dir / "agi-reference.jsonl", 0)

    async def call(n: int) -> None:
        capture = load_capture(captures_dir / "agi-reference.jsonl", 0)
        number = f"0101234{n:04d}"
        capture.headers = base.headers.replace(b"1795395806.2", f"call-{n}".encode()).replace(
            b"agi_callerid: 01012345678", f"agi_callerid: {number}".encode()
        )
        capture.units = capture.units[:2] + [[f"200 result=1 ({number})\n"]]
        result = await replay(server.port, capture, deadline=10)
        assert len(result.received) == 3 and result.closed_by_server

    await asyncio.gather(*(call(n) for n in range(50)))
    assert len(results) == 50
    assert all(got == expected for got, expected in results.values())
    assert server.sessions_total == 50 and server.active_sessions == 0
