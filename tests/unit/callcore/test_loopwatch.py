"""Issue 18: the loop watch (stalls seen in production) and the pop-latency hook of the websocket pump."""

from __future__ import annotations

import asyncio
import time

from callcore.bus import Bus, Message
from callcore.loopwatch import FRAME_CLOCK, LoopWatch
from callcore.metrics import Metrics
from callcore.wsguard import WsGuard


def test_record_counts_stalls_over_the_threshold_and_keeps_the_longest() -> None:
    seen: list[float] = []
    w = LoopWatch(seen.append, stall_threshold=0.05)
    for lateness in (0.001, 0.2, -0.003, 0.06, 0.049):
        w.record(lateness)
    assert w.stalls == 2 and w.longest == 0.2 and w.samples == 5
    assert seen == [0.001, 0.2, 0.0, 0.06, 0.049]  # an early wake-up is no lag, not a negative one


async def test_a_callback_that_holds_the_loop_is_seen_as_a_stall(caplog) -> None:
    metrics = Metrics()
    w = LoopWatch(metrics.loop_lag.observe, interval=0.01, stall_threshold=0.05)
    task = asyncio.create_task(w.run())
    try:
        await asyncio.sleep(0.03)
        time.sleep(0.15)  # a synchronous 150 ms in a callback: everything on the loop waits
        await asyncio.sleep(0.03)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert w.stalls >= 1 and w.longest >= 0.1
    assert "event loop stalled" in caplog.text
    text = metrics.render().decode()
    assert "callcore_event_loop_lag_seconds_count" in text
    assert 'callcore_event_loop_lag_seconds_bucket{le="0.05"}' in text


class _Ws:
    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send_text(self, text: str) -> None:
        self.sent.append(text)


async def test_pump_observes_read_to_written_only_for_messages_from_ami() -> None:
    got: list[tuple[str, float]] = []
    guard = WsGuard(on_written=lambda name, s: got.append((name, s)))
    bus = Bus()
    sub = bus.subscribe({"agent:1"})
    bus.publish(Message("call.ringing", {}, frozenset({"agent:1"}), time.perf_counter() - 0.003))
    bus.publish(Message("agent.status", {}, frozenset({"agent:1"})))  # from an API action: origin 0
    ws = _Ws()
    pump = asyncio.create_task(guard.pump(ws, sub, lambda m: m.name))
    try:
        while len(ws.sent) < 2:
            await asyncio.sleep(0)
    finally:
        pump.cancel()
        await asyncio.gather(pump, return_exceptions=True)
    assert [n for n, _ in got] == ["call.ringing"]
    assert 0.003 <= got[0][1] < 1


def test_notifier_stamps_messages_with_the_frame_clock() -> None:
    from cti.notifier import CtiNotifier

    bus = Bus()
    sub = bus.subscribe({"agent:7"})
    notifier = CtiNotifier(bus)
    FRAME_CLOCK.at = 42.5
    try:
        notifier.call_ringing("7", {"call_id": "c1", "queue": None})
    finally:
        FRAME_CLOCK.at = 0.0
    notifier.agent_resync("7", {})
    first, second = sub.queue.get_nowait(), sub.queue.get_nowait()
    assert first.origin == 42.5 and second.origin == 0.0


def test_a_message_is_encoded_once_for_every_socket(monkeypatch) -> None:
    """Issue 18: JSON is made once per message, not once per websocket it goes to."""
    import json

    from cti import desk_socket, routes

    calls: list[int] = []
    real = json.dumps
    monkeypatch.setattr(desk_socket.json, "dumps", lambda *a, **k: calls.append(1) or real(*a, **k))
    msg = Message("call.ringing", {"call_id": "c1", "caller": "01012345678"}, frozenset({"supervisor"}))
    texts = {routes._encode_message(msg) for _ in range(50)}
    masked = {routes._masked_encoder(msg) for _ in range(50)}
    assert len(texts) == 1 and len(masked) == 1 and len(calls) == 2
    assert "01012345678" in texts.pop() and "01012345678" not in masked.pop()


def _hold_the_loop_in_a_named_function() -> None:
    time.sleep(0.2)  # synchronous work in a callback (sleep releases the GIL: the watchdog samples)


async def test_stall_stacks_log_each_hold_with_the_stack_that_held_it() -> None:
    """Issue 18: in the debug mode every callback over the threshold is logged with its stack."""
    import threading

    from callcore.loopwatch import StallStacks

    lines: list[str] = []
    w = LoopWatch(interval=0.01, stack_threshold=0.02)
    assert w.stacks is not None and LoopWatch().stacks is None  # off by default
    assert LoopWatch(debug=True).stacks is not None  # CALLCORE_LOOP_DEBUG turns it on too
    w.stacks.emit = lines.append
    task = asyncio.create_task(w.run())
    try:
        await asyncio.sleep(0.05)
        _hold_the_loop_in_a_named_function()
        for _ in range(200):  # the line is written when the loop beats again
            if lines:
                break
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert len(lines) >= 1 and w.stacks.logged == len(lines)
    held = [line for line in lines if "_hold_the_loop_in_a_named_function" in line]
    assert held and held[0].startswith("event loop held ") and "garbage collector" in held[0]
    assert not any(t.name == "loop-stall-stacks" for t in threading.enumerate())  # the thread left with the task
    assert all(cb.__self__ is not w.stacks for cb in __import__("gc").callbacks if hasattr(cb, "__self__"))
    assert isinstance(w.stacks, StallStacks)
