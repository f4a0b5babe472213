"""The change dispatcher: the contract other packages code against, and a throwaway
subscriber that sees every change kind of replayed captures."""

from __future__ import annotations

import asyncio

import pytest

from cti.dispatcher import KINDS, OPT_IN, ChangeDispatcher
from cti.state import Change, CtiState
from cti.testing import capture_events, ok, wait_for
from tests.conftest import CAPTURES

from .conftest import add_agents

REPLAYS = [
    CAPTURES / "live-2026-12" / "ami-attended-transfer.raw",  # transfers, hold/unhold
    CAPTURES / "ami-queue-abandon.raw",  # missed, abandoned
    CAPTURES / "ami-asterisk-restart.raw",  # asterisk.shutdown
]


def replay_pure(paths, start: float, step: float) -> list[Change]:
    state, out, now = CtiState(default_wrapup_seconds=10), [], start
    for p in paths:
        for e in capture_events(p):
            out.extend(state.apply(e, now))
            now += step
    return out


# --------------------------------------------------------------- the contract
async def test_sync_handlers_run_inline_in_order_and_filter_by_kind():
    d = ChangeDispatcher()
    seen: list[tuple[str, str, float]] = []
    d.subscribe("a", lambda ch, now: seen.append(("a", ch.kind, now)))
    d.subscribe("b", lambda ch, now: seen.append(("b", ch.kind, now)), kinds=["call.ended"])
    d.dispatch([Change("call.created", call_id="1"), Change("call.ended", call_id="1")], 5.0)
    assert seen == [("a", "call.created", 5.0), ("a", "call.ended", 5.0), ("b", "call.ended", 5.0)]


async def test_async_handlers_run_in_their_own_task_in_order_without_blocking():
    d = ChangeDispatcher()
    release = asyncio.Event()
    got: list[str] = []

    async def slow(ch, now):
        await release.wait()
        got.append(ch.call_id)

    d.subscribe("slow", slow)
    d.dispatch([Change("call.created", call_id=str(i)) for i in range(5)], 0.0)  # returns at once
    assert got == [] and d.pending()
    release.set()
    await d.drain(2.0)
    assert got == ["0", "1", "2", "3", "4"] and not d.pending()
    await d.stop()


async def test_a_plain_callable_returning_a_coroutine_is_awaited_in_order():
    d = ChangeDispatcher()
    got: list[str] = []

    async def work(cid):
        await asyncio.sleep(0)
        got.append(cid)

    d.subscribe("lambda", lambda ch, now: work(ch.call_id))
    d.dispatch([Change("call.ended", call_id="x"), Change("call.ended", call_id="y")], 0.0)
    await d.drain(2.0)
    assert got == ["x", "y"]
    await d.stop()


async def test_a_failing_subscriber_is_counted_and_never_stops_the_others(caplog):
    d = ChangeDispatcher()
    seen: list[str] = []

    def broken(ch, now):
        raise RuntimeError("boom")

    async def broken_async(ch, now):
        raise RuntimeError("async boom")

    d.subscribe("broken", broken)
    d.subscribe("broken-async", broken_async)
    d.subscribe("fine", lambda ch, now: seen.append(ch.call_id))
    d.dispatch([Change("call.created", call_id="1"), Change("call.created", call_id="2")], 0.0)
    await d.drain(2.0)
    assert seen == ["1", "2"]
    assert d.failures == {"broken": 2, "broken-async": 2}
    assert "CTI subscriber broken failed on call.created" in caplog.text
    await d.stop()


def test_duplicate_names_are_refused_and_unknown_kinds_reported(caplog):
    d = ChangeDispatcher()
    d.subscribe("x", lambda ch, now: None)
    with pytest.raises(ValueError, match="already registered"):
        d.subscribe("x", lambda ch, now: None)
    d.subscribe("y", lambda ch, now: None, kinds=["call.rung"])
    assert "subscriber 'y' asks for change kinds no part of callcore emits yet: ['call.rung']" in caplog.text


# ------------------------------------------- a throwaway subscriber on the service
@pytest.mark.db
async def test_throwaway_subscriber_sees_every_change_kind_of_replayed_captures(service, ami, clock):
    await add_agents(service)
    sync_seen: list[Change] = []
    async_seen: list[str] = []

    async def record(change, now):
        async_seen.append(change.kind)

    service.dispatcher.subscribe("throwaway", lambda ch, now: sync_seen.append(ch))
    service.dispatcher.subscribe("throwaway-async", record)
    ticks: list[float] = []
    service.dispatcher.subscribe("ticker", lambda ch, now: ticks.append(now), kinds=["clock.tick"])
    start = clock.now
    for p in REPLAYS:
        for e in capture_events(p):
            service.handle_event(e)
            clock.advance(0.5)
    ami.script("CoreShowChannels", ok("CoreShowChannels", events=[]))
    ami.script("QueueStatus", ok("QueueStatus", events=[]))
    ami.script("QueueSummary", ok("QueueSummary", events=[]))
    await service.resync()
    await wait_for(lambda: ticks)  # the timer's tick reaches a subscriber that asks for it
    await service.idle()

    def calls(changes):
        return [(c.kind, c.call_id) for c in changes if c.kind.startswith("call.")]

    # every call change the pure state produces for the same replay reached the subscriber,
    # in order (agent ids differ: the service knows the agents' directory)
    assert calls(sync_seen) == calls(replay_pure(REPLAYS, start, 0.5))
    assert {c.kind for c in sync_seen} == set(KINDS) - OPT_IN  # every kind; the timer only on request
    await wait_for(lambda: set(async_seen) == set(KINDS) - OPT_IN)
    assert service.dispatcher.failures == {}
