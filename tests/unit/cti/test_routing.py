"""Routing decisions: VIP, repeat caller, overflow, callback offer."""

from __future__ import annotations

from cti.ami import events as ev
from cti.routing import CallerFacts, CtiRouter, QueueLoad, decide, estimate_wait, queue_load
from cti.state import CtiState, QueueSettings
from ivr.ports import RouteRequest


def load(logged_in=2, staffed=2, available=1, waiting=0, handle=120):
    return QueueLoad(logged_in, staffed, available, waiting, handle)


def test_estimate_wait():
    assert estimate_wait(load(available=1, waiting=0)) == 0
    assert estimate_wait(load(logged_in=2, staffed=2, available=0, waiting=3, handle=100)) == 200
    assert estimate_wait(load(logged_in=1, staffed=0, available=0)) is None


def test_vip_beats_repeat_and_raises_priority():
    s = QueueSettings("sales", vip_priority=10, repeat_priority=5, callback_after_seconds=None)
    d = decide(RouteRequest("sales", 0, "0101"), s, load(), CallerFacts(vip=True, repeat_calls=3))
    assert d.queue == "sales" and d.priority == 10 and d.reasons == ("vip",)
    d = decide(RouteRequest("sales", 0, "0101"), s, load(), CallerFacts(repeat_calls=1, repeat_hours=24))
    assert d.priority == 5 and d.reasons == ("repeat caller within 24h",)
    d = decide(RouteRequest("sales", 7, "0101"), s, load(), CallerFacts())
    assert d.priority == 7 and d.reasons == ()


def test_overflow_when_no_agent_logged_in():
    s = QueueSettings("sales", overflow_queue="support", callback_after_seconds=600)
    d = decide(RouteRequest("sales", 0, None), s, load(logged_in=0, staffed=0, available=0), CallerFacts(), load(available=2))
    assert d.queue == "support"
    assert "overflow: no agent logged in" in d.reasons
    assert d.estimated_wait == 0 and d.offer_callback is False


def test_without_a_live_view_only_the_priority_is_decided():
    """An --only agi process, or one whose AMI link is down, has an empty state: that must
    not read as "nobody logged in" (overflow + callback offer for every caller)."""
    s = QueueSettings("sales", overflow_queue="support", callback_after_seconds=60, vip_priority=10)
    empty = load(logged_in=0, staffed=0, available=0)
    d = decide(RouteRequest("sales", 0, None, vip=True), s, empty, CallerFacts(), empty, load_known=False)
    assert d.queue == "sales" and d.priority == 10
    assert d.offer_callback is False and d.estimated_wait is None
    assert d.reasons[0] == "vip" and d.reasons[1].startswith("queue load unknown here")


async def test_router_is_not_live_while_the_ami_link_is_down():
    state = CtiState()
    state.set_queue_settings(QueueSettings("sales", overflow_queue="support", callback_after_seconds=60))
    link = {"up": False}

    async def nobody(phone):
        return None

    async def never(phone, hours):
        return 0

    router = CtiRouter(state, lookup_customer=nobody, count_recent_calls=never, live=lambda: link["up"])
    d = await router.route(RouteRequest("sales", 0, "01012345678"))
    assert d.queue == "sales" and not d.offer_callback
    link["up"] = True  # live and really nobody logged in: overflow
    d = await router.route(RouteRequest("sales", 0, "01012345678"))
    assert d.queue == "support" and d.offer_callback


def test_overflow_on_wait_threshold_and_after_timeout():
    s = QueueSettings("sales", overflow_queue="support", overflow_after_seconds=60, callback_after_seconds=None)
    busy = load(logged_in=1, staffed=1, available=0, waiting=4, handle=120)  # 600 s
    d = decide(RouteRequest("sales", 0, None), s, busy, CallerFacts(), load(available=1))
    assert d.queue == "support" and d.reasons == ("overflow: estimated wait 600s",)
    # the sales queue is fine: stay (callcore moves the caller later if the wait passes 60 s)
    d = decide(RouteRequest("sales", 0, None), s, load(available=1), CallerFacts(), load())
    assert d.queue == "sales" and d.timeout is None
    # the flow comes back after that timeout: now overflow
    d = decide(RouteRequest("sales", 0, None, context={"overflow_from": "sales"}), s, load(), CallerFacts(), load())
    assert d.queue == "support" and d.reasons == ("overflow: wait threshold reached",)


def test_callback_offered_when_wait_is_long_or_nobody_can_answer():
    s = QueueSettings("sales", callback_after_seconds=300)
    d = decide(RouteRequest("sales", 0, None), s, load(logged_in=1, staffed=1, available=0, waiting=5, handle=100), CallerFacts())
    assert d.offer_callback is True and d.estimated_wait == 600
    d = decide(RouteRequest("sales", 0, None), s, load(logged_in=0, staffed=0, available=0), CallerFacts())
    assert d.offer_callback is True and d.estimated_wait is None
    d = decide(RouteRequest("sales", 0, None), s, load(available=2), CallerFacts())
    assert d.offer_callback is False


def _member(queue, iface, paused=False):
    return ev.QueueMemberAdded(ev.MemberInfo.parse({"Queue": queue, "Interface": iface, "Status": "1", "Paused": "1" if paused else "0"}))


def test_queue_load_from_live_state():
    s = CtiState()
    s.apply(_member("sales", "Local/1001@agents/n"), 1.0)
    s.apply(_member("sales", "Local/1003@agents/n", paused=True), 1.0)
    l = queue_load(s, "sales")
    assert (l.logged_in, l.staffed, l.available, l.waiting) == (2, 1, 1, 0)
    assert queue_load(s, "nosuch").logged_in == 0
    # an agent paused by callcore for wrap-up still counts as staffed (not as available)
    s.apply(ev.QueueMemberPause(ev.MemberInfo.parse(
        {"Queue": "sales", "Interface": "Local/1001@agents/n", "Status": "1", "Paused": "1", "PausedReason": "wrapup"})), 2.0)
    l = queue_load(s, "sales")
    assert (l.logged_in, l.staffed, l.available) == (2, 1, 0)


async def test_router_uses_crm_vip_and_call_history():
    s = CtiState()
    s.set_queue_settings(QueueSettings("sales", overflow_queue="support", callback_after_seconds=None))
    s.apply(_member("support", "Local/1002@agents/n"), 1.0)
    history = {"01099998888": 2}

    async def lookup(phone):
        return {"vip": True} if phone == "01012345678" else None

    async def count(phone, hours):
        assert hours == 12
        return history.get(phone, 0)

    router = CtiRouter(s, lookup_customer=lookup, count_recent_calls=count, repeat_caller_hours=12)
    d = await router.route(RouteRequest("sales", 0, "01012345678"))
    # nobody in sales: overflow to support, and the CRM says VIP
    assert d.queue == "support" and d.priority == 10
    assert d.reasons[:2] == ("vip", "overflow: no agent logged in")
    d = await router.route(RouteRequest("sales", 0, "01099998888"))
    assert d.priority == 5 and d.reasons[0] == "repeat caller within 12h"


async def test_router_survives_a_slow_or_broken_crm():
    import asyncio

    s = CtiState()
    s.apply(_member("sales", "Local/1001@agents/n"), 1.0)

    async def slow(phone):
        await asyncio.sleep(5)

    async def broken(phone, hours):
        raise RuntimeError("db down")

    router = CtiRouter(s, lookup_customer=slow, count_recent_calls=broken, lookup_timeout=0.05)
    d = await router.route(RouteRequest("sales", 3, "0101"))
    assert d.queue == "sales" and d.priority == 3
