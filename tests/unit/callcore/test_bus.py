from callcore.bus import Bus, Message


async def test_audience_routing_and_isolation():
    bus = Bus()
    a = bus.subscribe({"agent:1001"})
    b = bus.subscribe({"agent:1002"})
    sup = bus.subscribe({"queue:sales"})
    every = bus.subscribe(None)
    n = bus.publish(Message("call.ringing", {"call": 1}, frozenset({"agent:1001", "queue:sales"})))
    assert n == 3
    assert (await a.get()).payload == {"call": 1}
    assert b.queue.empty()
    assert (await sup.get()).name == "call.ringing"
    assert (await every.get()).name == "call.ringing"
    bus.unsubscribe(a)
    assert bus.publish(Message("call.ended", {}, frozenset({"agent:1001"}))) == 1  # only the wildcard


async def test_slow_subscriber_overflows_without_blocking_others():
    bus = Bus(max_queue=2)
    slow = bus.subscribe({"k"})
    fast = bus.subscribe({"k"})
    for i in range(3):
        bus.publish(Message("m", {"i": i}, frozenset({"k"})))
        await fast.get()
    assert slow.overflowed and not fast.overflowed
    assert bus.dropped == 1
