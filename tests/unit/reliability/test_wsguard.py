"""WsGuard.pump with test doubles: which limit cuts a client off, with which close."""

from __future__ import annotations

import asyncio

from callcore.bus import Bus, Message
from callcore.wsguard import CLOSE_CODE, SlowClientPolicy, WsGuard


class FakeWs:
    def __init__(self, block_send: bool = False, block_close: bool = False) -> None:
        self.sent: list[str] = []
        self.closed: tuple[int, str] | None = None
        self.block_send, self.block_close = block_send, block_close
        self.transport = FakeTransport()
        # what Starlette holds: the ASGI send callable, a bound method of the server's protocol
        self._send = _Protocol(self.transport).send

    async def send_text(self, text: str) -> None:
        if self.block_send:
            await asyncio.Event().wait()
        self.sent.append(text)

    async def close(self, code: int, reason: str) -> None:
        if self.block_close:
            await asyncio.Event().wait()
        self.closed = (code, reason)


class _Protocol:
    def __init__(self, transport) -> None:
        self.transport = transport

    async def send(self, message) -> None:  # pragma: no cover - never called
        raise AssertionError


class FakeTransport:
    aborted = False

    def abort(self) -> None:
        self.aborted = True


def _msg(n: int) -> Message:
    return Message("m", {"n": n}, frozenset({"k"}))


async def test_backlog_cuts_off_before_sending():
    bus = Bus(max_queue=100)
    sub = bus.subscribe({"k"})
    for n in range(10):
        bus.publish(_msg(n))
    guard = WsGuard(SlowClientPolicy(send_timeout=1, max_queued=5))
    ws = FakeWs()
    await asyncio.wait_for(guard.pump(ws, sub, lambda m: str(m.payload["n"])), 2)
    assert ws.sent == [] and ws.closed == (CLOSE_CODE, "too slow: backlog")
    assert guard.stats.by_reason() == {"send_timeout": 0, "backlog": 1, "overflow": 0}


async def test_overflowed_queue_cuts_off():
    bus = Bus(max_queue=3)
    sub = bus.subscribe({"k"})
    for n in range(5):
        bus.publish(_msg(n))
    guard = WsGuard(SlowClientPolicy(send_timeout=1, max_queued=50))
    ws = FakeWs()
    await asyncio.wait_for(guard.pump(ws, sub, lambda m: "x"), 2)
    assert ws.closed == (CLOSE_CODE, "too slow: overflow") and guard.stats.disconnected["overflow"] == 1


async def test_send_deadline_then_abort_when_even_the_close_frame_cannot_be_written():
    bus = Bus()
    sub = bus.subscribe({"k"})
    bus.publish(_msg(1))
    guard = WsGuard(SlowClientPolicy(send_timeout=0.05, max_queued=50, close_timeout=0.05))
    ws = FakeWs(block_send=True, block_close=True)
    await asyncio.wait_for(guard.pump(ws, sub, lambda m: "x"), 2)
    assert guard.stats.disconnected["send_timeout"] == 1
    assert guard.stats.aborted == 1 and ws.transport.aborted


async def test_a_client_that_keeps_up_gets_everything_in_order():
    bus = Bus()
    sub = bus.subscribe({"k"})
    guard = WsGuard(SlowClientPolicy(send_timeout=1, max_queued=50))
    ws = FakeWs()
    task = asyncio.get_running_loop().create_task(guard.pump(ws, sub, lambda m: str(m.payload["n"])))
    for n in range(200):
        bus.publish(_msg(n))
        await asyncio.sleep(0)
    async def all_sent() -> None:
        while len(ws.sent) < 200:
            await asyncio.sleep(0.01)

    await asyncio.wait_for(all_sent(), 5)
    task.cancel()
    assert ws.sent == [str(n) for n in range(200)] and ws.closed is None
