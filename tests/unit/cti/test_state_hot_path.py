"""CtiState's per-event helpers made cheaper in issue 18 (round four) decide exactly as the
code they replaced: the reference versions are kept here and compared on generated input."""

from __future__ import annotations

import time

from hypothesis import given, settings
from hypothesis import strategies as st

from cti.state import Agent, CtiState, _day


def _reference_signature(a: Agent) -> tuple:
    return (a.status, a.paused, a.pause_reason, tuple(sorted(a.queues.items())), a.current_call,
            tuple(sorted((srv, tuple(sorted(qs))) for srv, qs in a.memberships.items())))


_queues = st.dictionaries(st.sampled_from(["sales", "support", "vip", "b"]), st.integers(0, 3), max_size=4)
_agents = st.builds(
    lambda q, m, paused, reason, cur, ring, wrap: _agent(q, m, paused, reason, cur, ring, wrap),
    _queues,
    st.dictionaries(st.sampled_from(["", "pbx-a", "pbx-b"]), _queues, max_size=3),
    st.booleans(),
    st.sampled_from([None, "lunch", "break"]),
    st.sampled_from([None, "c1", "c2"]),
    st.sampled_from([None, "c1"]),
    st.sampled_from([None, 5.0]),
)


def _agent(queues, memberships, paused, reason, current, ringing, wrapup) -> Agent:
    a = Agent("1001", queues=dict(reversed(list(queues.items()))), memberships={s: dict(q) for s, q in memberships.items()})
    a.paused, a.pause_reason, a.current_call, a.ringing_call, a.wrapup_until = paused, reason, current, ringing, wrapup
    return a


@settings(max_examples=400, deadline=None)
@given(_agents, _agents)
def test_signature_tells_two_agents_apart_exactly_as_the_sorted_tuples_did(a, b):
    assert (a.signature() == b.signature()) == (_reference_signature(a) == _reference_signature(b))
    assert a.signature()[0] == a.status


def test_signature_is_a_snapshot_and_ignores_insertion_order():
    a = Agent("1001")
    a.set_member("pbx-a", "sales", 1)
    a.set_member("pbx-a", "support", 0)
    before = a.signature()
    a.set_member("pbx-a", "sales", None)
    assert a.signature() != before  # later changes do not leak into the snapshot
    a.set_member("pbx-a", "sales", 1)  # same membership again, other insertion order
    assert a.signature() == before
    a.set_member("pbx-b", "sales", 1)  # the same queue on a second server: the desk's "servers" changed
    assert a.signature() != before


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(min_value=-2e9, max_value=4e9, allow_nan=False), min_size=1, max_size=20))
def test_day_is_strftime_of_gmtime_whatever_the_order_of_calls(times):
    for t in times + sorted(times) + [times[0]]:
        assert _day(t) == time.strftime("%Y-%m-%d", time.gmtime(t))


def test_queue_counters_reset_at_utc_midnight_with_the_day_cache():
    s = CtiState()
    q = s.queue("sales", 86400.0 * 20000 - 1)
    q.answered = 3
    assert s.queue("sales", 86400.0 * 20000 - 0.5).answered == 3
    assert s.queue("sales", 86400.0 * 20000).answered == 0


def test_new_message_is_the_message_the_dataclass_builds():
    import dataclasses

    from callcore.bus import Message, new_message

    a, b = new_message("call.ringing", {"x": 1}, frozenset({"agent:1"}), 2.5), Message("call.ringing", {"x": 1}, frozenset({"agent:1"}), 2.5)
    assert type(a) is Message and a == b and repr(a) == repr(b) and a.encoded == {} and a.encoded is not new_message("n", {}, frozenset()).encoded
    assert new_message("n", {}, frozenset()) == Message("n", {}, frozenset())
    with __import__("pytest").raises(dataclasses.FrozenInstanceError):
        a.name = "y"  # type: ignore[misc]


async def test_agent_status_audience_is_the_agent_supervisors_and_its_queues():
    from callcore.bus import Bus
    from cti.notifier import CtiNotifier, _aud

    bus = Bus()
    sub = bus.subscribe(None)
    agent = Agent("1001", queues={"sales": 0, "vip": 1})
    CtiNotifier(bus).agent_status(agent.to_dict())
    msg = sub.queue.get_nowait()
    assert msg.audience == _aud("agent:1001", "supervisor", extra=["queue:sales", "queue:vip"])
    assert msg.name == "agent.status" and msg.payload["agent_id"] == "1001"
