"""CRM implementations, today's counters after a restart, and from_settings wiring."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from pydantic import SecretStr

from callcore.bus import Bus
from callcore.settings import Settings, WebhookSettings
from cti.crm import BuiltinCrm, HttpCrm
from cti.service import CtiService
from cti.testing import FakeAmi, capture_events, wait_for
from cti.webhooks import WebhookSender
from tests.conftest import CAPTURES

pytestmark = pytest.mark.db


async def test_http_crm_lookup_timeout_and_errors():
    seen = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        phone = request.url.params["phone"]
        if phone == "slow":
            await asyncio.sleep(1)
        if phone == "500":
            return httpx.Response(500)
        if phone == "01012345678":
            return httpx.Response(200, json={"id": "c-9", "name": "홍길동", "vip": True})
        return httpx.Response(404, json={"detail": "no"})

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    crm = HttpCrm("http://crm.test/api/", timeout=0.1, client=client)
    try:
        rec = await crm.lookup("01012345678")
        assert rec == {"id": "c-9", "name": "홍길동", "vip": True, "source": "http"}
        assert seen[0] == "http://crm.test/api/customers/lookup?phone=01012345678"
        assert await crm.lookup("nobody") is None and crm.failures == 0
        assert await crm.lookup("500") is None and crm.failures == 1
        assert await crm.lookup("slow") is None and crm.failures == 2
    finally:
        await client.aclose()


async def test_builtin_crm_includes_previous_calls(repo, db_sessionmaker):
    from cti.state import CtiState

    c = await repo.create_customer(name="Kim", phone="0101", phones=["0202"])
    s = CtiState()
    for e in capture_events(CAPTURES / "ami-caller-hangup-in-ivr.raw"):
        s.apply(e, 1_795_395_895.0)
    call = s.ended["1795395895.8"]
    call.caller_num = "0101"
    await repo.save_call(call)
    await repo.save_call(call)  # idempotent
    rec = await BuiltinCrm(repo).lookup("0101")
    assert rec["id"] == c["id"] and [p["call_id"] for p in rec["previous_calls"]] == ["1795395895.8"]
    assert (await BuiltinCrm(repo).lookup("0202"))["id"] == c["id"]
    assert await BuiltinCrm(repo).lookup("0303") is None


async def test_today_counters_survive_a_restart(service, clock, repo, ami, db_sessionmaker, authenticator):
    for e in capture_events(CAPTURES / "ami-queue-abandon.raw") + capture_events(CAPTURES / "ami-ivr-queue-agent.raw"):
        service.handle_event(e)
        clock.advance(0.5)
    await service.idle()
    before = {q["queue"]: q for q in service.queues.queue_views()}
    assert before["sales"]["answered_today"] == 1 and before["sales"]["abandoned_today"] == 1
    fresh = CtiService(ami=FakeAmi(), repository=repo, bus=Bus(), crm=BuiltinCrm(repo), authenticator=authenticator, clock=clock)
    await fresh.start()
    try:
        after = {q["queue"]: q for q in fresh.queues.queue_views()}
        assert after["sales"]["answered_today"] == 1 and after["sales"]["abandoned_today"] == 1
        assert after["sales"]["answered_within_sl"] == 1
    finally:
        await fresh.stop()


async def test_from_settings_wires_http_crm_webhooks_and_tokens(db_sessionmaker):
    settings = Settings(
        crm_url="http://crm.example/api",
        jwt_key=SecretStr("k1"),
        api_tokens={"wall": "supervisor"},
        pause_reasons=["break"],
        default_wrapup_seconds=3,
        webhooks=[WebhookSettings(url="http://hook.example/", secret=SecretStr("s"), events=["call.ended"])],
    )
    bus = Bus()
    svc = CtiService.from_settings(settings, ami=FakeAmi(), sessionmaker=db_sessionmaker, bus=bus)
    assert isinstance(svc.crm, HttpCrm)
    assert isinstance(svc.webhooks, WebhookSender) and svc.webhooks.hooks[0].secret == "s"
    assert svc.authenticator.authenticate("wall").role == "supervisor"
    assert svc.agents.pause_reasons == ["break"] and svc.state.default_wrapup_seconds == 3
    await svc.start()
    try:
        await wait_for(lambda: bus.subscriber_count == 1)  # the webhook sender listens
    finally:
        await svc.stop()
    assert bus.subscriber_count == 0
    default = CtiService.from_settings(Settings(), ami=FakeAmi(), sessionmaker=db_sessionmaker, bus=Bus())
    assert isinstance(default.crm, BuiltinCrm) and default.webhooks is None
