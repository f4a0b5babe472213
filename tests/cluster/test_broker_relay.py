"""The cross-instance bus over the real local NATS (issue 19 item 1): two relayed buses in one
process stand for two instances."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from callcore.broker import NatsRelay, RelayedBus, decode, encode
from callcore.bus import Bus, Message
from tests.broker import broker_url, fresh_prefix, pipe


async def _get(sub, timeout: float = 3.0) -> Message:
    async with asyncio.timeout(timeout):
        return await sub.get()


async def _pair(url: str, prefix: str, **kw):
    a, b = RelayedBus(), RelayedBus()
    ra = NatsRelay(a, url, instance="a", prefix=prefix, **kw)
    rb = NatsRelay(b, url, instance="b", prefix=prefix, **kw)
    await ra.start()
    await rb.start()
    assert await ra.wait_connected(5) and await rb.wait_connected(5)
    await ra._nc.flush()
    await rb._nc.flush()
    return a, b, ra, rb


def test_envelope_round_trip_keeps_name_payload_audience_and_origin() -> None:
    origin = time.perf_counter() - 0.25
    msg = Message("call.ringing", {"caller": "홍길동", "n": 1}, frozenset({"agent:1001", "supervisor"}), origin)
    msg_id, sender, back = decode(encode(msg, "a", "a-1"))
    assert (msg_id, sender) == ("a-1", "a")
    assert back.name == msg.name and back.payload == msg.payload and back.audience == msg.audience
    assert abs(back.origin - origin) < 0.01  # the AMI read time crosses as wall clock and comes back
    assert decode(encode(Message("x", {}), "a", "a-2"))[2].origin == 0.0


@pytest.mark.parametrize("data", [b"not json", b"[]", b'{"name": 1, "payload": {}}', b'{"name": "x", "payload": {}, "audience": [1]}'])
def test_malformed_envelopes_are_refused(data: bytes) -> None:
    with pytest.raises((ValueError, TypeError)):
        decode(data)


def test_remote_messages_reach_keyed_subscribers_only() -> None:
    bus = RelayedBus()
    agent = bus.subscribe({"agent:1001"})
    wildcard = bus.subscribe(None)  # webhook outbox / wallboard feed: local only
    assert bus.deliver_remote(Message("call.ringing", {}, frozenset({"agent:1001"}))) == 1
    assert agent.queue.qsize() == 1 and wildcard.queue.qsize() == 0


def test_plain_bus_unchanged_without_broker() -> None:
    bus = Bus()
    sub = bus.subscribe({"agent:1"})
    assert bus.publish(Message("m", {}, frozenset({"agent:1"}))) == 1 and sub.queue.qsize() == 1


async def test_a_pop_published_on_one_instance_reaches_the_other_once() -> None:
    url, prefix = broker_url(), fresh_prefix()
    a, b, ra, rb = await _pair(url, prefix)
    try:
        on_b = b.subscribe({"agent:1001"})
        on_a = a.subscribe({"agent:1001"})
        a_wild = a.subscribe(None)
        a.publish(Message("call.ringing", {"call_id": "c1", "caller": "홍길동"}, frozenset({"agent:1001"}), time.perf_counter()))
        got = await _get(on_b)
        assert got.name == "call.ringing" and got.payload == {"call_id": "c1", "caller": "홍길동"}
        assert 0 < time.perf_counter() - got.origin < 2  # the receiver's pop latency includes the hop
        assert (await _get(on_a)).payload["call_id"] == "c1"  # local delivery unchanged
        assert a_wild.queue.qsize() == 1
        # the other way, and no echo: a's subscriber gets b's message once, b's own once
        b.publish(Message("agent.status", {"agent_id": "1001"}, frozenset({"agent:1001"})))
        assert (await _get(on_a)).name == "agent.status"
        assert (await _get(on_b)).name == "agent.status"  # b's local delivery
        await asyncio.sleep(0.3)
        assert on_a.queue.qsize() == 0 and on_b.queue.qsize() == 0  # nothing came back round
        assert a_wild.queue.qsize() == 1  # b's message did not reach a's webhooks/wallboard feed
        assert ra.sent == 1 and rb.sent == 1 and ra.received == 1 and rb.received == 1
    finally:
        await ra.stop()
        await rb.stop()


async def test_duplicate_ids_are_delivered_once_and_strangers_are_counted() -> None:
    url, prefix = broker_url(), fresh_prefix()
    a, b, ra, rb = await _pair(url, prefix)
    try:
        on_b = b.subscribe({"supervisor"})
        data = encode(Message("queue.stats", {"q": 1}, frozenset({"supervisor"})), "a", "a-99")
        for _ in range(3):
            await ra._nc.publish(f"{prefix}.bus.a", data)
        await ra._nc.publish(f"{prefix}.bus.a", b"garbage")
        await ra._nc.flush()
        assert (await _get(on_b)).payload == {"q": 1}
        deadline = time.monotonic() + 3
        while rb.malformed < 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert on_b.queue.qsize() == 0 and rb.duplicates == 2 and rb.malformed == 1
    finally:
        await ra.stop()
        await rb.stop()


async def test_the_buffer_is_bounded_while_the_broker_is_away() -> None:
    bus = RelayedBus()
    relay = NatsRelay(bus, "nats://127.0.0.1:9", instance="lonely", max_buffer=5, reconnect_min=5)
    await relay.start()  # nothing listens on port 9: the relay keeps retrying
    try:
        for i in range(12):
            bus.publish(Message("m", {"i": i}, frozenset({"x"})))
        assert len(relay._buffer) == 5 and relay.dropped == 7
        assert [m.payload["i"] for m in relay._buffer] == [7, 8, 9, 10, 11]  # the newest are kept
        assert relay.state == "connecting"
    finally:
        await relay.stop()


async def test_a_relay_started_before_the_broker_connects_and_flushes_its_buffer() -> None:
    """Simulates a late broker with a TCP forwarder that starts refusing, then forwards to NATS."""
    from urllib.parse import urlparse

    url, prefix = broker_url(), fresh_prefix()
    u = urlparse(url)
    accepting = asyncio.Event()

    async def forward(reader, writer):
        if not accepting.is_set():
            writer.close()
            return
        r2, w2 = await asyncio.open_connection(u.hostname, u.port)
        await asyncio.gather(pipe(reader, w2), pipe(r2, writer))

    server = await asyncio.start_server(forward, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    a, b = RelayedBus(), RelayedBus()
    ra = NatsRelay(a, f"nats://127.0.0.1:{port}", instance="late", prefix=prefix, reconnect_min=0.1, reconnect_max=0.2)
    rb = NatsRelay(b, url, instance="b", prefix=prefix)
    try:
        await rb.start()
        assert await rb.wait_connected(5)
        on_b = b.subscribe({"agent:7"})
        await ra.start()
        a.publish(Message("call.ringing", {"early": True}, frozenset({"agent:7"})))
        await asyncio.sleep(0.3)
        assert not ra.connected.is_set()
        accepting.set()
        assert await ra.wait_connected(5)
        assert (await _get(on_b)).payload == {"early": True}  # buffered while away, sent once connected
    finally:
        await ra.stop()
        await rb.stop()
        server.close()


async def test_request_reply_reaches_the_serving_instance() -> None:
    url, prefix = broker_url(), fresh_prefix()
    a, b, ra, rb = await _pair(url, prefix)
    try:
        seen = []

        async def handler(req):
            seen.append(req)
            return {"ok": True, "echo": req["x"]}

        await rb.serve("ctl.test", handler)
        await rb._nc.flush()
        assert await ra.request("ctl.test", {"x": 5}, timeout=2) == {"ok": True, "echo": 5}
        assert seen == [{"x": 5}]
        with pytest.raises(TimeoutError):
            await ra.request("ctl.nobody", {}, timeout=0.5)
    finally:
        await ra.stop()
        await rb.stop()
