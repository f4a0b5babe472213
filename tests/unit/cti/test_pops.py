"""Screen-pop enrichment: named pop enrichers run during the preload and their
results appear in the pop under their names."""

from __future__ import annotations

import asyncio

import pytest

from cti.ami import events as ev
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
