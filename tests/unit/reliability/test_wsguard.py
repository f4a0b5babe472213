"""WsGuard.pump with test doubles: which limit cuts a client off, with which close."""

from __future__ import annotations

import asyncio
import time

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


# ---------------------------------------------------------------- PushWriter (issue 18 round five)
class AsgiSend:
    """An ASGI ``send`` that completes at once, or waits on ``gate`` while it is closed."""

    def __init__(self, block_close: bool = False) -> None:
        self.sent: list[str] = []
        self.closes: list[tuple[int, str]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.block_close = block_close
        self.transport = FakeTransport()

    async def send(self, message) -> None:
        if message["type"] == "websocket.close":
            if self.block_close:
                await asyncio.Event().wait()
            self.closes.append((message["code"], message["reason"]))
            return
        await self.gate.wait()  # an Event that is set does not suspend: the frame is written at once
        self.sent.append(message["text"])


def _writer(guard: WsGuard, out: AsgiSend, bus: Bus, ended: list[int] | None = None):
    w = guard.writer(out.send, lambda m: str(m.payload["n"]), who="t", max_backlog=bus.max_queue,
                     on_end=(lambda: ended.append(1)) if ended is not None else None)
    w.sub = bus.subscribe({"k"}, sink=w.offer)
    return w


async def _until(cond) -> None:
    async with asyncio.timeout(5):
        while not cond():
            await asyncio.sleep(0.005)


async def test_push_writer_writes_inside_publish_without_a_task():
    bus = Bus()
    out = AsgiSend()
    w = _writer(WsGuard(), out, bus)
    tasks = len(asyncio.all_tasks())
    assert bus.publish(_msg(1)) == 1
    assert out.sent == ["1"]  # written before publish returned: no task, no queue
    w.offer('{"event": "pong"}')
    assert out.sent == ["1", '{"event": "pong"}'] and len(asyncio.all_tasks()) == tasks and w.task is None


async def test_push_writer_keeps_order_behind_a_send_that_waits():
    bus = Bus()
    out = AsgiSend()
    w = _writer(WsGuard(SlowClientPolicy(send_timeout=5, max_queued=50)), out, bus)
    out.gate.clear()  # the transport is full: the next send has to wait
    for n in range(5):
        bus.publish(_msg(n))
    assert out.sent == [] and w.task is not None and len(w.backlog) == 4
    out.gate.set()
    await _until(lambda: len(out.sent) == 5)
    assert out.sent == ["0", "1", "2", "3", "4"] and w.task is None and not w.backlog
    bus.publish(_msg(5))  # and back to writing at once
    assert out.sent[-1] == "5"


async def test_push_writer_cuts_off_on_the_send_deadline_and_aborts_a_frozen_close():
    bus = Bus()
    out = AsgiSend(block_close=True)
    guard = WsGuard(SlowClientPolicy(send_timeout=0.05, max_queued=50, close_timeout=0.05))
    ended: list[int] = []
    w = _writer(guard, out, bus, ended)
    out.gate.clear()
    bus.publish(_msg(1))
    await _until(lambda: ended == [1])
    assert guard.stats.by_reason() == {"send_timeout": 1, "backlog": 0, "overflow": 0}
    assert guard.stats.aborted == 1 and out.transport.aborted  # reached through send.__self__.transport
    assert w.ended and bus.publish(_msg(2)) == 1 and out.sent == []  # nothing more is written


async def test_push_writer_cuts_off_a_backlog_before_sending_it():
    bus = Bus()
    out = AsgiSend()
    guard = WsGuard(SlowClientPolicy(send_timeout=5, max_queued=3))
    ended: list[int] = []
    _writer(guard, out, bus, ended)
    out.gate.clear()
    for n in range(6):
        bus.publish(_msg(n))
    out.gate.set()
    await _until(lambda: ended == [1])
    assert out.sent == ["0"] and out.closes == [(CLOSE_CODE, "too slow: backlog")]
    assert guard.stats.by_reason() == {"send_timeout": 0, "backlog": 1, "overflow": 0}


async def test_push_writer_overflow_is_a_bus_drop_then_a_cut():
    bus = Bus(max_queue=3)
    out = AsgiSend()
    guard = WsGuard(SlowClientPolicy(send_timeout=5, max_queued=50))
    ended: list[int] = []
    w = _writer(guard, out, bus, ended)
    out.gate.clear()
    delivered = [bus.publish(_msg(n)) for n in range(6)]  # one in flight, three waiting, two dropped
    assert delivered == [1, 1, 1, 1, 0, 0] and bus.dropped == 2 and w.sub.overflowed
    out.gate.set()
    await _until(lambda: ended == [1])
    assert out.closes == [(CLOSE_CODE, "too slow: overflow")] and guard.stats.disconnected["overflow"] == 1


async def test_push_writer_observes_read_to_written_for_messages_from_ami():
    got: list[tuple[str, float]] = []
    bus = Bus()
    out = AsgiSend()
    _writer(WsGuard(on_written=lambda name, s: got.append((name, s))), out, bus)
    bus.publish(Message("call.ringing", {"n": 1}, frozenset({"k"}), time.perf_counter() - 0.003))
    bus.publish(Message("agent.status", {"n": 2}, frozenset({"k"})))  # origin 0: not from an AMI frame
    assert [n for n, _ in got] == ["call.ringing"] and 0.003 <= got[0][1] < 1


async def test_push_writer_a_failed_send_ends_the_writer_once():
    bus = Bus()
    ended: list[int] = []

    async def gone(message) -> None:
        raise ConnectionResetError("client gone")

    w = WsGuard().writer(gone, str, who="t", on_end=lambda: ended.append(1))
    w.sub = bus.subscribe({"k"}, sink=w.offer)
    bus.publish(_msg(1))
    bus.publish(_msg(2))
    assert ended == [1] and w.ended
