"""Screen-pop enrichment: named pop enrichers run during the preload and their
results appear in the pop under their names."""

from __future__ import annotations

import asyncio

import pytest

from cti.ami import events as ev
from cti.crm import BuiltinCrm
from cti.pops import PopBuilder
from cti.state import Call
from cti.testing import capture_events, drain
from tests.conftest import CAPTURES

from .conftest import add_agents

pytestmark = pytest.mark.db

CALL = "1795395806.2"  # ami-ivr-queue-agent.raw


def feed(service, clock, events, step=0.5):
    for e in events:
        service.handle_event(e)
        clock.advance(step)


def split_at(events, kind):
    i = next(i for i, e in enumerate(events) if isinstance(e, kind))
    return events[:i], events[i:]


async def test_enricher_results_appear_in_the_pop_under_their_names(service, bus, clock, repo, ivr_ctx):
    await add_agents(service)
    await repo.create_customer(name="홍길동", phone="01012345678")
    ivr_ctx.contexts[CALL] = {"path": ["main", "2"], "queue": "sales"}
    seen = []

    async def kb(call, context):
        seen.append((call.id, context["customer"]["name"], context["ivr"]["path"]))
        return [{"title": "Refunds", "id": 7}]

    async def broken(call, context):
        raise RuntimeError("kb down")

    async def slow(call, context):
        await asyncio.sleep(10)

    service.pops.add_enricher("kb_suggestions", kb)
    service.pops.add_enricher("broken", broken)
    service.preload.timeout = 0.2
    service.pops.add_enricher("slow", slow)
    desk = bus.subscribe({"agent:1001"})
    before, rest = split_at(capture_events(CAPTURES / "ami-ivr-queue-agent.raw"), ev.AgentCalled)
    feed(service, clock, before)
    await service.idle()
    service.handle_event(rest[0])
    (ringing,) = [m for m in drain(desk) if m.name == "call.ringing"]
    assert seen == [(CALL, "홍길동", ["main", "2"])]
    assert ringing.payload["kb_suggestions"] == [{"title": "Refunds", "id": 7}]
    assert ringing.payload["broken"] is None and ringing.payload["slow"] is None  # failed / timed out: no pop lost


def test_an_enricher_may_not_shadow_a_pop_key():
    pops = PopBuilder(lambda: 0.0)

    async def e(call, context):
        return 1

    with pytest.raises(ValueError):
        pops.add_enricher("customer", e)
    pops.add_enricher("kb", e)
    with pytest.raises(ValueError):
        pops.add_enricher("kb", e)
    assert pops.pop(Call(id="1", started_at=0.0), None, 0.0)["kb"] is None


# ---------------------------------------------- issue 9 item 12: the ringing pop is complete
IVR_CTX = {"flow": "main", "path": ["main:main_menu", "main:sales_queue"], "language": "ko", "agent": {"intent": "sales"}}


def caller_events():
    events = capture_events(CAPTURES / "ami-ivr-queue-agent.raw")
    join = next(i for i, e in enumerate(events) if isinstance(e, ev.QueueCallerJoin))
    return events[:join], events[join:]


async def test_ringing_pop_carries_crm_record_and_ivr_context_preloaded_at_the_ivr_hand_off(service, bus, clock, repo):
    await add_agents(service)
    customer = await repo.create_customer(name="홍길동", phone="01012345678", vip=True)
    desk = bus.subscribe({"agent:1001"})
    in_ivr, queued = caller_events()
    feed(service, clock, in_ivr)  # the call is in the IVR
    # the IVR hands the call to the queue: it knows the caller and its context
    await service.preload.prepare(CALL, CALL, "01012345678", IVR_CTX)
    # Asterisk: QueueCallerJoin then AgentCalled, with no await in between
    join, rest = queued[0], queued[1:]
    service.handle_event(join)
    ring_at = next(i for i, e in enumerate(rest) if isinstance(e, ev.AgentCalled))
    for e in rest[: ring_at + 1]:
        service.handle_event(e)
    (ringing,) = [m for m in drain(desk) if m.name == "call.ringing"]
    p = ringing.payload
    assert p["customer"]["id"] == customer["id"] and p["customer"]["vip"] is True
    assert p["ivr"]["agent"] == {"intent": "sales"} and p["ivr"]["path"][-1] == "main:sales_queue"
    assert p["loading"] is False


async def test_a_slow_crm_never_delays_the_pop_it_says_loading_and_call_updated_follows(service, bus, clock, repo, monkeypatch):
    await add_agents(service)
    await repo.create_customer(name="홍길동", phone="01012345678")
    release = asyncio.Event()
    real = service.customers.crm.lookup

    async def slow_lookup(phone):
        await release.wait()
        return await real(phone)

    monkeypatch.setattr(service.customers.crm, "lookup", slow_lookup)
    desk = bus.subscribe({"agent:1001"})
    in_ivr, queued = caller_events()
    feed(service, clock, in_ivr)
    prepared = service.preload.prepare(CALL, CALL, "01012345678", IVR_CTX)  # still loading
    for e in queued[: next(i for i, e in enumerate(queued) if isinstance(e, ev.AgentCalled)) + 1]:
        service.handle_event(e)
    (ringing,) = [m for m in drain(desk) if m.name == "call.ringing"]
    assert ringing.payload["loading"] is True and ringing.payload["customer"] is None  # sent at once, says so
    release.set()
    await prepared
    await service.idle()
    updated = [m for m in drain(desk) if m.name == "call.updated"]
    assert updated and updated[-1].payload["loading"] is False
    assert updated[-1].payload["customer"]["name"] == "홍길동" and updated[-1].payload["ivr"]["flow"] == "main"


async def test_a_customer_created_shortly_before_the_call_is_in_the_ringing_pop(service, client, bus, clock):
    await add_agents(service)
    # the number was looked up (e.g. a previous call, the IVR's routing): not a customer yet
    assert await service.customers.lookup_customer("01012345678") is None
    clock.advance(21)
    headers = {"Authorization": f"Bearer {service.authenticator.issue('1001', 'agent')}"}
    r = await client.post("/api/customers", json={"name": "홍길동", "phone": "01012345678"}, headers=headers)
    assert r.status_code == 201
    desk = bus.subscribe({"agent:1001"})
    in_ivr, queued = caller_events()
    feed(service, clock, in_ivr)
    ring_at = next(i for i, e in enumerate(queued) if isinstance(e, ev.AgentCalled))
    feed(service, clock, queued[:ring_at])  # QueueCallerJoin: preloaded from the (not cached) CRM
    await service.idle()
    service.handle_event(queued[ring_at])
    (ringing,) = [m for m in drain(desk) if m.name == "call.ringing"]
    assert ringing.payload["customer"] is not None and ringing.payload["customer"]["name"] == "홍길동"


async def test_crm_cache_keeps_a_miss_briefly_and_drops_lookups_of_a_changed_customer(service, clock, repo):
    customers = service.customers
    external = {"0200": None}

    class ExternalCrm:  # a CRM callcore does not write to: only the short miss cache helps
        async def lookup(self, phone):
            return external.get(phone)

    service.customers.crm = ExternalCrm()
    assert await customers.lookup_customer("0200") is None
    external["0200"] = {"id": "ext-1", "name": "New in the external CRM"}
    assert await customers.lookup_customer("0200") is None  # the miss is cached...
    clock.advance(customers.miss_cache_seconds + 0.1)  # ...only briefly
    assert (await customers.lookup_customer("0200"))["id"] == "ext-1"

    # callcore's own table: any write drops the cached lookups (hits and misses), whoever wrote it
    service.customers.crm = BuiltinCrm(repo)
    assert await customers.lookup_customer("0300") is None
    c = await repo.create_customer(name="Kim", phone="0300")
    assert (await customers.lookup_customer("0300"))["name"] == "Kim"
    await repo.update_customer(c["id"], name="Renamed", phone="0400")  # old and new number
    assert await customers.lookup_customer("0300") is None
    assert (await customers.lookup_customer("0400"))["name"] == "Renamed"
    await repo.add_customer_note(c["id"], "VIP from now on", author="1001", call_id=None)
    assert (await customers.lookup_customer("0400"))["notes"][0]["text"] == "VIP from now on"
    await repo.delete_customer(c["id"])
    assert await customers.lookup_customer("0400") is None
