"""Scenarios on the shipped Korean customer-center dialplans (dialplans/)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from ivr.checker import check_dir
from ivr.lookup import FixtureLookupClient
from ivr.ports import InMemoryCallbackSink, RouteDecision

from .helpers import SEOUL, TUESDAY_10, heard, run

ROOT = Path(__file__).resolve().parents[3]

CRM = {
    "/customers/by-phone/01011112222": {"customer": {"id": "C-1", "name": "김VIP", "tier": "vip", "status": "active", "balance": 0}},
    "/customers/by-phone/01012345678": {"customer": {"id": "C-2", "name": "홍길동", "tier": "gold", "status": "active", "balance": 45200}},
    "/customers/by-phone/01055556666": {"customer": {"id": "C-3", "name": "이정지", "tier": "standard", "status": "suspended", "balance": 990000}},
    "/accounts/12345678": {"account": {"customer_id": "C-9", "name": "박계좌", "balance": 30500}},
}


@pytest.fixture(scope="module")
def shipped():
    result = check_dir(ROOT / "dialplans")
    assert result.ok, [str(p) for p in result.errors]
    return result.flows


class WaitRouter:
    def __init__(self, wait=None):
        self.wait = wait

    async def route(self, r):
        return RouteDecision(queue=r.queue, priority=r.priority + (5 if r.vip else 0), estimated_wait=self.wait)


async def call(shipped, answers, *, caller="01012345678", at=TUESDAY_10, wait=None, crm=CRM, callbacks=None):
    return await run(shipped, answers, caller=caller, at=at, lookup=FixtureLookupClient(crm), router=WaitRouter(wait),
                     callbacks=callbacks or InMemoryCallbackSink())


async def test_vip_goes_to_priority_queue_with_screen_pop(shipped):
    o, ch = await call(shipped, [""], caller="01011112222")
    assert (o.kind, o.queue, o.priority) == ("queue", "vip", 15)
    assert o.data == {"customer": "김VIP", "customer_id": "C-1", "tier": "vip", "reason": "VIP line"}
    assert heard(ch) == ["ko/welcome", "ko/press9_for_english", "ko/one_moment", "ko/vip_welcome", "ko/connecting"]
    assert o.survey_flow == "survey"


async def test_gold_customer_hears_balance_then_billing_queue_in_english(shipped):
    o, ch = await call(shipped, ["9", "1", "1", "1"])
    assert o.language == "en"
    assert "🔢 say number 45200" in heard(ch)
    assert (o.queue, o.priority) == ("billing", 5)
    assert o.context["agent"] == {"customer_id": "C-2", "customer_name": "홍길동", "tier": "gold", "account_status": "active",
                                  "intent": "billing", "balance": 45200}
    assert o.data["language"] == "en"


async def test_unknown_caller_enters_account_number_for_balance(shipped):
    o, ch = await call(shipped, ["", "1", "1", "12345678#", "2"], caller="0299990000")
    assert o.context["lookups"]["main:crm_lookup"]["status"] == "error"  # 404 → fallback
    assert o.context["lookups"]["main:account_lookup"]["status"] == "ok"
    assert "🔢 say number 30500" in heard(ch)
    assert o.kind == "hangup" and o.end_node == "main:goodbye"


async def test_tech_subflow_then_tech_queue_with_intent(shipped):
    o, _ = await call(shipped, ["", "2", "2"])
    assert (o.queue, o.data["intent"]) == ("tech", "tech:mobile")
    assert "tech_support:tech_menu" in o.context["path"]
    assert o.context["flows"].keys() == {"main", "tech_support"}


async def test_suspended_account_goes_to_billing(shipped):
    o, ch = await call(shipped, [""], caller="01055556666")
    assert "ko/account_suspended" in heard(ch)
    assert o.queue == "billing"


async def test_long_wait_offers_callback_which_is_stored(shipped):
    sink = InMemoryCallbackSink()
    o, ch = await call(shipped, ["", "3", "1", "1", "2"], wait=600, callbacks=sink)
    assert o.kind == "callback"
    req = sink.requests[0]
    assert (req.number, req.queue) == ("01012345678", "sales")
    assert req.requested_time == "2026-12-22T14:00-18:00"
    assert "ko/callback_confirmed" in heard(ch)


async def test_holiday_offers_voicemail(shipped):
    o, ch = await call(shipped, ["", "1"], at=datetime(2026, 9, 25, 11, 0, tzinfo=SEOUL))  # Chuseok
    assert "ko/holiday_closed" in heard(ch)
    assert o.kind == "voicemail"
    assert ch.executed == [("VoiceMail", ("1000@customer-center", "u"))]
    assert o.context["hours"] == "holiday"


async def test_after_hours_no_input_says_goodbye(shipped):
    o, ch = await call(shipped, ["", "", ""], at=datetime(2026, 12, 22, 21, 0, tzinfo=SEOUL))
    assert heard(ch)[-1] == "ko/goodbye"
    assert o.kind == "hangup" and o.context["hours"] == "closed"


async def test_main_menu_timeouts_fall_back_to_general_queue(shipped):
    o, _ = await call(shipped, ["", "", "", ""])
    assert o.queue == "support"


async def test_post_call_survey_flow(shipped):
    o, ch = await run(shipped, ["5", "1"], flow="survey")
    assert o.survey_answers == {"satisfaction": 5, "resolved": 1}
    assert heard(ch)[-1] == "ko/survey_thanks"


async def test_builtin_crm_vip_flag_also_routes_to_vip_queue(shipped):
    crm = {"/customers/by-phone/01077778888": {"customer": {"id": 5, "name": "최VIP", "vip": True}}}
    o, _ = await call(shipped, [""], caller="01077778888", crm=crm)
    assert (o.queue, o.priority) == ("vip", 15)


from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

ANSWER = st.one_of(st.sampled_from(["", "0", "1", "2", "3", "9", "*", "#", "12345678#", "0212345678#"]), st.text("0123456789*#", max_size=12))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(answers=st.lists(ANSWER, max_size=12), hour=st.integers(0, 23), caller=st.sampled_from(["01011112222", "01012345678", "01055556666", "0299990000"]))
async def test_any_key_sequence_ends_cleanly(shipped, answers, hour, caller):
    at = datetime(2026, 12, 22, hour, 0, tzinfo=SEOUL)
    o, ch = await call(shipped, answers, caller=caller, at=at, wait=200 if hour % 2 else None)
    assert o.kind in ("queue", "hangup", "callback", "voicemail", "caller_hangup")
    assert o.error is None
    assert len(o.steps) < 100
    if o.kind == "queue":
        assert o.queue in ("vip", "billing", "tech", "sales", "support") and not ch.hung_up
