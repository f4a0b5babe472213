"""FastAGI against hostile clients (issue 11): allow-list, per-peer limits, idle and silent
peers. Loopback only, bounded in count and time."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ivr.agi.server import FastAgiServer

from .conftest import wait_until
from .test_server import HEADER, normal_handler, open_raw, scripted_call, until_closed


async def test_flood_of_idle_sockets_from_one_peer_does_not_stop_a_real_call(make_server, captures_dir, caplog):
    """1,000 sockets that never send a header, from the same address as Asterisk; then a real call."""
    caplog.set_level(logging.WARNING)
    server: FastAgiServer = await make_server({"ivr": normal_handler}, header_timeout=30.0)
    idle: list[asyncio.StreamWriter] = []
    try:
        for _ in range(1000):
            try:
                _, w = await open_raw(server.port)
            except OSError:  # the server may reset some at once; the flood goes on
                continue
            idle.append(w)
        await asyncio.sleep(server.pending_grace + 0.1)  # the flood is now stale
        assert server.active_connections <= server.max_sessions_per_peer
        await asyncio.wait_for(scripted_call(server.port, captures_dir, deadline=5.0), 10)
        assert server.sessions_total == 1 and server.sessions_failed == 0
        assert server.refused["peer_limit"] + server.refused["pending_evicted"] >= 500
        # refusals are counted every time but logged sparingly
        refusal_logs = [r for r in caplog.records if r.name == "ivr.agi.server" and "refusing" in r.getMessage()]
        assert 1 <= len(refusal_logs) <= 4
    finally:
        for w in idle:
            w.close()
    await wait_until(lambda: server.active_connections == 0, timeout=10, what="flood drained")


async def test_peer_outside_the_allow_list_is_refused_and_counted(make_server, captures_dir, caplog):
    caplog.set_level(logging.WARNING)
    server = await make_server({"ivr": normal_handler}, allowed_peers=["192.0.2.0/24"])
    reader, writer = await open_raw(server.port)
    writer.write(HEADER)
    with contextlib.suppress(ConnectionError):
        await writer.drain()
    assert await until_closed(reader) == b""
    writer.close()
    assert server.refused["not_allowed"] == 1 and server.sessions_total == 0
    assert any("agi_allowed_peers" in r.getMessage() for r in caplog.records)


async def test_default_allow_list_is_loopback(make_server, captures_dir):
    server = await make_server({"ivr": normal_handler})
    assert [str(n) for n in server.allowed_peers] == ["127.0.0.0/8", "::1/128"]
    assert server._allowed("127.0.0.1") and server._allowed("::ffff:127.0.0.1") and not server._allowed("10.1.2.3")
    await scripted_call(server.port, captures_dir)


async def test_per_peer_session_limit(make_server, captures_dir):
    async def hold(session) -> None:
        await session.wait_hangup(5)

    server = await make_server({"ivr": hold}, max_sessions_per_peer=2)
    calls = []
    for n in range(2):
        r, w = await open_raw(server.port)
        w.write(HEADER.replace(b"42.1", f"42.{n}".encode()))
        await w.drain()
        calls.append((r, w))
    await wait_until(lambda: server.active_sessions == 2, what="two sessions")
    r3, w3 = await open_raw(server.port)
    assert await until_closed(r3) == b""  # routed sessions are never evicted: the newcomer is refused
    assert server.refused["peer_limit"] == 1
    for _, w in calls:
        w.close()
    w3.close()


async def test_session_that_sends_a_header_but_never_answers_is_dropped_early(make_server, captures_dir):
    server = await make_server({"ivr": normal_handler}, command_timeout=60.0, first_answer_timeout=0.3)
    reader, writer = await open_raw(server.port)
    writer.write(HEADER)
    await writer.drain()
    first = await asyncio.wait_for(reader.readline(), 2)
    assert first.startswith(b"ANSWER")
    # say nothing: the session goes after first_answer_timeout, not after the 60 s command timeout
    assert await asyncio.wait_for(until_closed(reader), 3) == b""
    writer.close()
    await wait_until(lambda: server.refused["no_first_answer"] == 1, what="silent session counted")
    await scripted_call(server.port, captures_dir)  # later commands keep the long timeout
