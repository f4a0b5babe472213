"""The state machine never crashes and keeps its invariants, whatever events are missed."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cti.state import CtiState
from cti.testing import capture_events
from tests.conftest import CAPTURES

FILES = [
    "ami-ivr-queue-agent.raw",
    "ami-queue-abandon.raw",
    "ami-caller-hangup-in-ivr.raw",
    "ami-click-to-call.raw",
    "ami-queue-leastrecent-answer.raw",
    "ami-resync-snapshot.raw",
    "ami-asterisk-restart.raw",
    "ami-action-errors.raw",
]
STREAM = [e for f in FILES for e in capture_events(CAPTURES / f)]


def check_invariants(s: CtiState) -> None:
    for agent in s.agents.values():
        if agent.current_call is not None:
            assert agent.current_call in s.calls
        if agent.ringing_call is not None:
            assert agent.ringing_call in s.calls
    for q in s.queues.values():
        for call_id in q.waiting:
            assert call_id in s.calls
    for call in s.ended.values():
        assert call.status == "ended" and call.outcome is not None
        assert call.id not in s.calls


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.booleans(), min_size=len(STREAM), max_size=len(STREAM)))
def test_any_subsequence_of_real_events_keeps_invariants(keep):
    s = CtiState(default_wrapup_seconds=5)
    now = 1000.0
    for e, k in zip(STREAM, keep):
        if k:
            s.apply(e, now)
            check_invariants(s)
        now += 0.25
    s.tick(now + 60)
    check_invariants(s)
    assert all(a.wrapup_until is None for a in s.agents.values())


@settings(max_examples=100, deadline=None)
@given(st.permutations(capture_events(CAPTURES / "ami-ivr-queue-agent.raw")))
def test_reordered_events_do_not_crash(events):
    s = CtiState()
    for i, e in enumerate(events):
        s.apply(e, 1000.0 + i)
    check_invariants(s)


def test_time_on_hold_accumulates_across_holds_and_up_to_the_end():
    from cti.state import Call

    call = Call(id="c1", started_at=0.0)
    call.set_on_hold(True, 10.0)
    call.set_on_hold(True, 12.0)  # already on hold: the first start counts
    call.set_on_hold(False, 15.0)
    call.set_on_hold(True, 20.0)
    call.set_on_hold(False, 21.5)
    assert call.on_hold_seconds == 6.5 and call.held_since is None
    call.set_on_hold(True, 30.0)
    assert call.to_dict(31.0)["on_hold_seconds"] == 6.5  # the running hold is not counted yet
