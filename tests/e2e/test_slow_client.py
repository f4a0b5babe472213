"""A websocket client that stops reading (issue 12): it is cut off within the send
deadline, with a reason and a counter, and never delays anyone else's pop."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import time

import pytest

from callcore.bus import Message
from tests.e2e.conftest import eventually, expect_prompt, press_when_listening


@pytest.fixture
def server_overrides():
    return {"ws_send_timeout": 1.0, "ws_max_queued": 200}


def _frozen_client(base_url: str, token: str) -> socket.socket:
    """Upgrade to a websocket, read the 101 answer, then never read again (tiny receive window)."""
    host, port = base_url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(5)
    sock.connect((host, int(port)))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET /ws?token={token} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


async def test_frozen_client_is_cut_off_and_does_not_delay_other_pops(server):
    s = server
    pbx = s.pbx
    guard = s.container.ws_guard
    tok = await s.create_agent("1001", "김상담", ["billing"])
    await s.api("POST", "/api/agents/1001/login", token=tok, expect=200)
    desk = await s.desk(tok)
    sup_token = s.cti.authenticator.issue("sup", "supervisor")
    healthy = await s.desk(sup_token)
    frozen = await asyncio.to_thread(_frozen_client, s.base_url, sup_token)
    await eventually(lambda: s.cti.websocket_clients == 3, 5, "3 websocket sessions")
    agent = pbx.agent("1001", manual=True)

    published = 0

    async def flood() -> None:  # supervisor traffic, paced so the queue never passes ws_max_queued
        nonlocal published
        deadline = time.monotonic() + 20
        while not guard.stats.disconnected["send_timeout"] and time.monotonic() < deadline:
            for _ in range(20):
                s.cti.bus.publish(Message("test.flood", {"n": published, "pad": "x" * 16_000}, frozenset({"supervisor"})))
                published += 1
            await asyncio.sleep(0.02)

    flooding = asyncio.get_running_loop().create_task(flood())
    try:
        call = await pbx.dial("01055556666", exten="15881234", context="ivr-in")
        await expect_prompt(call, "main_menu", timeout=10)
        await press_when_listening(call, "1")
        await expect_prompt(call, "billing_menu")
        await press_when_listening(call, "2")
        await agent.wait_ringing()
        # the bound: the pop reaches the agent within 2 s of the phone ringing, flood or not
        pop = (await desk.wait_for("call.ringing", timeout=2))["payload"]
        assert pop["caller_num"] == "01055556666"
        # the frozen one is cut off for missing the send deadline, and released
        await eventually(lambda: guard.stats.disconnected["send_timeout"] == 1, 10, "frozen client cut off")
        await eventually(lambda: s.cti.websocket_clients == 2, 5, "frozen session released")
    finally:
        await flooding
    assert guard.stats.by_reason() == {"send_timeout": 1, "backlog": 0, "overflow": 0}
    # the healthy supervisor got every flood message, in order
    await eventually(lambda: len(healthy.named("test.flood")) == published, 10, "healthy client got the whole flood")
    assert [m["payload"]["n"] for m in healthy.named("test.flood")] == list(range(published))

    # the frozen client's socket ends (close frame 1013 or an abort) once it reads again
    def drained() -> bytes:
        frozen.settimeout(5)
        tail = b""
        try:
            while chunk := frozen.recv(65536):
                tail = (tail + chunk)[-256:]
        except (ConnectionResetError, TimeoutError):
            pass
        finally:
            frozen.close()
        return tail

    tail = await asyncio.to_thread(drained)
    assert b"too slow" in tail or guard.stats.aborted == 1

    metrics = (await s.http.get("/metrics")).text
    assert 'callcore_websocket_slow_disconnects_total{reason="send_timeout"} 1.0' in metrics
    # it can reconnect and resync: the hello carries the current state
    again = await s.desk(sup_token)
    assert again.named("hello")[0]["payload"]["role"] == "supervisor"
    await call.hangup()
