"""The facts subscriber on a real capture (wrap-up, pause with reason, disposition) and the IVR observer."""

from __future__ import annotations

from types import SimpleNamespace

from cti.state import CtiState
from cti.testing import capture_events
from reports.facts import fold_spans, fold_visits
from reports.service import ReportService
from reports.subscriber import FactsSubscriber


def replay(captures_dir, name: str, start: float = 1_796_000_000.0):
    state = CtiState(default_wrapup_seconds=15)
    facts: dict = {}
    sub = FactsSubscriber(state, lambda fs: [facts.setdefault(f.key, f) for f in fs])
    now = start
    for e in capture_events(captures_dir / name):
        for ch in state.apply(e, now):
            sub(ch, now)
        now += 0.5
    return state, sub, facts, now


def test_wrapup_pause_and_disposition(captures_dir):
    state, sub, facts, now = replay(captures_dir, "ami-ivr-queue-agent.raw")
    call = state.ended["1795395806.2"]
    agent = state.agents["1001"]
    assert {f.kind for f in facts.values()} >= {"visit.entered", "visit.answered", "visit.completed", "call.ended"}
    (v,) = fold_visits(facts.values())
    assert (v.queue, v.agent_id, v.talk, v.wait, v.completed) == ("sales", "1001", 3.0, 0.0, True)
    call.disposition = "resolved"  # set by the agent during wrap-up (CtiService.set_disposition)
    done_at = agent.wrapup_until + 0.1
    for ch in state.tick(done_at):
        sub(ch, done_at)
    wraps = [f for f in facts.values() if f.kind == "wrapup"]
    assert len(wraps) == 1 and round(wraps[0].data["seconds"], 3) == 15.1 and wraps[0].anchor_at == v.entered_at
    (v,) = fold_visits(facts.values())
    assert round(v.wrapup, 3) == 15.1
    disp = facts["d:1795395806.2"]
    assert (disp.data["code"], disp.data["resolved"]) == ("resolved", True)
    # the capture ends with QueuePause Reason=lunch: an open pause span, closed at shutdown
    assert [(s.state, s.reason, s.queue) for s in sub.open_spans(now)] == [
        ("logged_in", None, None), ("paused", "lunch", None), ("member", None, "sales")]
    sub.close_all(now + 60)
    spans = {s.state: s for s in fold_spans(facts.values())}
    assert spans["paused"].reason == "lunch" and spans["paused"].end == now + 60
    assert (spans["member"].queue, spans["member"].end) == ("sales", now + 60)
    assert sub.open_spans(now) == []


def test_abandon_while_ringing(captures_dir):
    state, sub, facts, _ = replay(captures_dir, "ami-queue-abandon.raw")
    (v,) = fold_visits(facts.values())
    assert (v.outcome, v.wait, v.rang_agent) == ("abandoned", 7.0, True)  # app_queue's HoldTime


def test_callback_call_completes_its_callback():
    from reports.subscriber import _callback_done

    call = SimpleNamespace(caller_num="0101", events=[
        {"at": 1.0, "event": "click_to_call", "callback_id": "cb7"}, {"at": 5.0, "event": "customer_answered"}])
    (f,) = _callback_done(call)
    assert (f.key, f.kind, f.at) == ("cb:cb7:completed", "callback.completed", 5.0)
    call.events = call.events[:1]  # the customer never answered: not done
    assert _callback_done(call) == []


async def test_ivr_observer_writes_steps_outcome_survey_and_callback():
    recorded = []
    svc = ReportService.__new__(ReportService)
    svc.record = recorded.extend  # type: ignore[method-assign]
    svc.clock = lambda: 1000.0  # the IVR's own clock (business hours) may differ: times follow the reports' clock
    step = lambda seq, node: SimpleNamespace(seq=seq, flow="main", node=node, started_ms=seq * 1000)  # noqa: E731
    outcome = SimpleNamespace(kind="callback", flow="main", steps=[step(0, "welcome"), step(1, "menu")],
                              survey_answers={"satisfaction": 4, "resolved": None}, callback_id="cb9",
                              queue="sales", context={"caller_num": "0101"})
    ReportService.ivr_finished(svc, "17", "1795.1", outcome, 100.0, 130.0)
    kinds = {f.key: f.kind for f in recorded}
    assert kinds == {"i:17:0": "ivr.step", "i:17:1": "ivr.step", "i:17:end": "ivr.ended",
                     "cb:cb9:requested": "callback.requested", "s:1795.1:satisfaction": "survey.answer"}
    end = next(f for f in recorded if f.kind == "ivr.ended")
    assert end.data["outcome"] == "transfer" and (end.anchor_at, end.at) == (970.0, 1000.0)


def test_a_missed_ring_is_a_fact_with_the_agent_and_the_reason():
    """CTI's ``call.missed`` (AgentRingNoAnswer → no_answer, AgentDump → rejected) is a
    ``ring.missed`` fact; a ring the caller or a colleague ended is none (the wallboard's
    "missed today" is read back from these)."""
    facts: dict = {}
    sub = FactsSubscriber(CtiState(), lambda fs: [facts.setdefault(f.key, f) for f in fs])
    miss = lambda reason, agent="1001": SimpleNamespace(  # noqa: E731
        kind="call.missed", call_id="c1", agent_id=agent, queue="sales", data={"reason": reason})
    sub(miss("no_answer"), 100.0)
    sub(miss("no_answer"), 100.0)  # the same change twice: one fact
    sub(miss("rejected", "1002"), 101.5)
    sub(miss("abandoned", "1003"), 102.0)
    sub(miss("answered_elsewhere", "1004"), 102.0)
    assert sorted((f.kind, f.agent_id, f.queue, f.data["reason"], f.at) for f in facts.values()) == [
        ("ring.missed", "1001", "sales", "no_answer", 100.0), ("ring.missed", "1002", "sales", "rejected", 101.5)]
    from reports.subscriber import KINDS

    assert "call.missed" in KINDS  # the dispatcher hands it to the subscriber
