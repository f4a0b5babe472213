"""Who is on the call, from channels and bridges: the second round of real captures
(``live-2026-12/``: blind transfer to a queue / to an agent, hold by dual Redirect + Bridge,
attended transfer, a desk phone's own hold, ChanSpy) replayed through the pure state.

Real app_queue sends ``AgentComplete`` late (blind transfer: at the caller's final hangup,
with a TalkTime covering the later agents) or never (after unhold by AMI ``Bridge``); the
state must release each agent when its leg leaves and account it exactly once.
"""

from __future__ import annotations

import pytest

from cti.ami import events as ev
from cti.state import CtiState
from cti.testing import capture_events

LIVE = "live-2026-12"


def _state() -> CtiState:
    s = CtiState(default_wrapup_seconds=10)
    s.register_agent("9101", "Local/9101@sim-agent-long/n", "Agent 9101", extension="9101")
    s.register_agent("9102", "Local/9102@sim-agent-long/n", "Agent 9102", extension="9102")
    s.register_agent("1001", "Local/1001@agents/n", "Agent 1001", extension="1001")
    return s


def _play(s: CtiState, events, *, start: float = 1000.0, step: float = 0.5):
    """Replay; returns [(event, changes)] so a test can look at the state between events."""
    out = []
    now = start
    for e in events:
        out.append((e, s.apply(e, now)))
        now += step
    return out


def _changes(steps, kind: str, agent_id: str | None = None):
    return [c for _, chs in steps for c in chs if c.kind == kind and (agent_id is None or c.agent_id == agent_id)]


def _index(steps, pred) -> int:
    return next(i for i, (e, _) in enumerate(steps) if pred(e))


def _first_change(steps, kind: str, agent_id: str) -> int:
    return next(i for i, (_, chs) in enumerate(steps) if any(c.kind == kind and c.agent_id == agent_id for c in chs))


def _events(captures_dir, name):
    return capture_events(captures_dir / LIVE / f"{name}.raw")


def _only_call(s: CtiState):
    assert s.calls == {}
    assert len(s.ended) == 1
    return next(iter(s.ended.values()))


def _last_leg_gone(steps, name: str) -> int:
    """Index of the Hangup of the last of an agent's legs (``;1`` and ``;2``) to go."""
    return max(i for i, (e, _) in enumerate(steps) if isinstance(e, ev.Hangup) and e.chan.channel.startswith(name))


def test_blind_transfer_to_queue_releases_the_first_agent_when_its_leg_leaves(captures_dir):
    s = _state()
    steps = _play(s, _events(captures_dir, "ami-blind-transfer-to-queue"))
    # the first agent's leg is hung up at the Redirect: 9101 goes to wrap-up then, not at the
    # caller's final hangup (where app_queue's only AgentComplete for sales/9101 comes)
    released = _first_change(steps, "agent.wrapup", "9101")
    assert released == _last_leg_gone(steps, "Local/9101@")
    assert released < _first_change(steps, "call.answered", "9102")
    late = [i for i, (e, _) in enumerate(steps) if isinstance(e, ev.AgentComplete) and e.queue == "sales"]
    assert late and late[0] > _first_change(steps, "call.answered", "9102")
    # exactly one wrap-up each: the late AgentComplete only confirms 9101's part
    assert len(_changes(steps, "agent.wrapup", "9101")) == 1
    assert len(_changes(steps, "agent.wrapup", "9102")) == 1
    call = _only_call(s)
    parts = [(p.agent_id, p.queue, p.end_reason, p.confirmed) for p in call.parts]
    assert parts == [("9101", "sales", "agent_left", True), ("9102", "support", "caller", True)]
    # 9101's part is what 9101 talked, not app_queue's TalkTime=16 that includes 9102's part
    first, second = call.parts
    assert first.queue_talk_time == 16 and first.talk_time < 16
    assert second.talk_time == 10
    assert call.talk_time == first.talk_time + second.talk_time
    assert call.agent_id == "9102"
    assert s.queues["sales"].completed == 1 and s.queues["support"].completed == 1
    assert s.queues["sales"].talk_seconds_total == first.talk_time


def test_blind_transfer_to_queue_first_agent_is_free_during_the_second_part(captures_dir):
    s = _state()
    events = _events(captures_dir, "ami-blind-transfer-to-queue")
    cut = next(i for i, e in enumerate(events) if isinstance(e, ev.AgentConnect) and e.queue == "support")
    _play(s, events[: cut + 1])
    a, b = s.agents["9101"], s.agents["9102"]
    assert a.current_call is None and a.status == "wrapup"
    assert b.status == "on_call"
    s.tick(a.wrapup_until + 0.1)
    assert s.agents["9101"].status == "ready"  # offered new calls again


def test_blind_transfer_to_agent_by_direct_dial(captures_dir):
    s = _state()
    events = _events(captures_dir, "ami-blind-transfer-to-agent")
    steps = _play(s, events)
    # no queue events for 9102: its ringing and its answer come from DialBegin / DialEnd
    assert len(_changes(steps, "call.ringing", "9102")) == 1
    assert len(_changes(steps, "call.answered", "9102")) == 1
    assert _first_change(steps, "agent.wrapup", "9101") == _last_leg_gone(steps, "Local/9101@")
    assert len(_changes(steps, "agent.wrapup", "9101")) == 1
    assert len(_changes(steps, "agent.wrapup", "9102")) == 1
    call = _only_call(s)
    assert call.agent_id == "9102"
    assert [(p.agent_id, p.queue) for p in call.parts] == [("9101", "sales"), ("9102", None)]
    assert call.parts[0].confirmed  # the AgentComplete (TalkTime 37) at the end confirmed it
    assert call.parts[0].talk_time < 37


def test_blind_transfer_to_agent_the_target_is_on_the_call(captures_dir):
    s = _state()
    events = _events(captures_dir, "ami-blind-transfer-to-agent")
    answered = next(
        i for i, e in enumerate(events)
        if isinstance(e, ev.DialEnd) and e.dest.channel.startswith("Local/9102@") and e.dial_status == "ANSWER"
    )
    _play(s, events[: answered + 1])
    call = next(iter(s.calls.values()))
    assert call.agent_id == "9102" and call.status == "talking"
    assert s.agents["9102"].status == "on_call" and s.agents["9102"].current_call == call.id
    assert s.agents["9101"].status == "wrapup"
    assert call.live_agent_channel() is not None and call.live_agent_channel().startswith("Local/9102@")


@pytest.mark.parametrize("name", ["ami-hold-unhold-agent-hangup"])
def test_hold_then_unhold_by_bridge_still_accounts_the_agent(captures_dir, name):
    s = _state()
    events = _events(captures_dir, name)
    assert not any(isinstance(e, ev.AgentComplete) for e in events)  # what real app_queue does
    steps = _play(s, events)
    assert len(_changes(steps, "agent.wrapup", "9101")) == 1
    call = _only_call(s)
    assert call.outcome == "answered"
    assert call.talk_time is not None and call.talk_time > 0
    assert [(p.agent_id, p.queue, p.confirmed) for p in call.parts] == [("9101", "sales", False)]
    assert s.queues["sales"].completed == 1
    assert s.queues["sales"].talk_seconds_total == call.talk_time


def test_hold_caller_hangs_up_on_hold_uses_app_queue_talk_time(captures_dir):
    s = _state()
    steps = _play(s, _events(captures_dir, "ami-hold-caller-hangup-on-hold"))
    assert len(_changes(steps, "agent.wrapup", "9101")) == 1
    call = _only_call(s)
    assert call.talk_time == 7  # AgentComplete Reason=caller TalkTime=7 (hold counted as talk)
    assert [(p.end_reason, p.confirmed) for p in call.parts] == [("caller", True)]
    assert s.queues["sales"].completed == 1 and s.queues["sales"].talk_seconds_total == 7


def test_attended_transfer_hands_the_call_to_the_target(captures_dir):
    s = _state()
    steps = _play(s, _events(captures_dir, "ami-attended-transfer"))
    assert len(_changes(steps, "agent.wrapup", "9101")) == 1
    # 9101 is released at the AttendedTransfer, before app_queue's AgentComplete Reason=transfer
    xfer = _index(steps, lambda e: isinstance(e, ev.AttendedTransfer))
    assert _first_change(steps, "agent.wrapup", "9101") == xfer
    assert _first_change(steps, "call.answered", "9102") == xfer
    call = _only_call(s)
    assert call.agent_id == "9102"
    assert [(p.agent_id, p.end_reason) for p in call.parts] == [("9101", "transferred"), ("9102", "agent_left")]
    assert call.parts[0].confirmed
    assert not call.on_hold  # the transferer's Hold has no Unhold: the completion ends it
    assert s.queues["sales"].completed == 1


def test_attended_transfer_target_is_on_call_after_completion(captures_dir):
    s = _state()
    events = _events(captures_dir, "ami-attended-transfer")
    cut = next(i for i, e in enumerate(events) if isinstance(e, ev.AgentComplete))
    _play(s, events[: cut + 1])
    assert s.agents["9102"].status == "on_call"
    assert s.agents["9101"].status == "wrapup"


def test_desk_phone_hold_on_the_phone_channel(captures_dir):
    s = _state()
    events = _events(captures_dir, "ami-pjsip-phone-hold")
    holds = [e for e in events if isinstance(e, (ev.Hold, ev.Unhold))]
    assert [type(e).__name__ for e in holds] == ["Hold", "Unhold"]
    assert all(e.chan.channel.startswith("PJSIP/1001-") for e in holds)
    steps = _play(s, events)
    assert [c.kind for c in _changes(steps, "call.held") + _changes(steps, "call.unheld")] == ["call.held", "call.unheld"]
    assert len(_changes(steps, "agent.wrapup", "1001")) == 1
    call = _only_call(s)
    assert call.on_hold_seconds > 0
    assert [e["event"] for e in call.events if e["event"] in ("hold", "unhold")] == ["hold", "unhold"]
    assert call.talk_time == 15  # AgentComplete Reason=agent TalkTime=15


def test_chanspy_agent_complete_without_caller_block_confirms_the_part(captures_dir):
    s = _state()
    events = _events(captures_dir, "ami-chanspy-listen")
    done = [e for e in events if isinstance(e, ev.AgentComplete)]
    assert len(done) == 1 and not done[0].chan.uniqueid  # no Channel block
    steps = _play(s, events)
    assert len(_changes(steps, "agent.wrapup", "9101")) == 1
    call = next(c for c in s.ended.values() if c.parts)
    assert call.parts[0].confirmed and call.talk_time == 10


def test_late_agent_complete_never_wraps_an_agent_up_over_its_next_call():
    """AgentComplete of an old call arriving while the agent is on a new one changes nothing."""
    s = _state()
    s.apply(_member("sales", "Local/9101@sim-agent-long/n"), 0.0)
    old = _connect(s, "1.1", "9101", 1.0)
    s.apply(_hangup("Local/9101@sim-agent-long-00000001;1", "1.2", "1.1"), 5.0)  # leg leaves: wrap-up
    assert s.agents["9101"].status == "wrapup"
    s.end_wrapup("9101", 6.0)
    _connect(s, "2.1", "9101", 7.0, seq=2)
    changes = s.apply(_complete(old, "9101", 8.0), 8.0)
    assert s.agents["9101"].status == "on_call" and s.agents["9101"].current_call == "2.1"
    assert not [c for c in changes if c.kind == "agent.wrapup"]


# --------------------------------------------------------------- tiny event builders
def _chan(name: str, uid: str, linked: str) -> ev.ChannelInfo:
    return ev.ChannelInfo.parse({"Channel": name, "Uniqueid": uid, "Linkedid": linked, "ChannelStateDesc": "Up"})


def _member(queue: str, interface: str) -> ev.QueueMemberAdded:
    return ev.translate({"Event": "QueueMemberAdded", "Queue": queue, "Interface": interface,
                         "MemberName": interface, "Paused": "0", "Status": "1"})


def _connect(s: CtiState, caller: str, agent: str, now: float, seq: int = 1) -> str:
    base = caller.split(".")[0]
    s.apply(ev.translate({"Event": "Newchannel", "Channel": f"SIP/trunk-{seq:08x}", "Uniqueid": caller,
                          "Linkedid": caller, "ChannelStateDesc": "Up"}), now)
    s.apply(ev.translate({"Event": "AgentConnect", "Channel": f"SIP/trunk-{seq:08x}", "Uniqueid": caller,
                          "Linkedid": caller, "DestChannel": f"Local/{agent}@sim-agent-long-{seq:08x};1",
                          "DestUniqueid": f"{base}.2", "DestLinkedid": caller, "Queue": "sales",
                          "Interface": f"Local/{agent}@sim-agent-long/n", "MemberName": agent,
                          "HoldTime": "1", "RingTime": "1"}), now)
    return caller


def _hangup(channel: str, uid: str, linked: str) -> ev.Hangup:
    return ev.translate({"Event": "Hangup", "Channel": channel, "Uniqueid": uid, "Linkedid": linked,
                         "Cause": "16", "Cause-txt": "Normal Clearing"})


def _complete(call_id: str, agent: str, now: float) -> ev.AgentComplete:
    return ev.translate({"Event": "AgentComplete", "Channel": "SIP/trunk-00000001", "Uniqueid": call_id,
                         "Linkedid": call_id, "Queue": "sales", "Interface": f"Local/{agent}@sim-agent-long/n",
                         "MemberName": agent, "HoldTime": "1", "TalkTime": "9", "Reason": "caller"})


def test_click_to_call_to_an_unreachable_trunk_is_not_answered(captures_dir):
    """Only the agent's phone answered; the trunk channel was never created (Reason 4, then the
    Local legs hang up with Cause 3): the call is not "answered" (issue 9 item 8)."""
    s = _state()
    events = _events(captures_dir, "ami-click-to-call-unreachable")
    assert [e.reason for e in events if isinstance(e, ev.OriginateResponse)] == [4]
    steps = _play(s, events)
    call = _only_call(s)
    assert call.direction == "outbound" and call.agent_id == "9101"
    assert call.outcome == "unanswered" and call.answered_at is None
    assert call.end_cause == 3
    assert "customer_answered" not in [e["event"] for e in call.events]
    # the agent was on it while it was dialled (desk pop), free afterwards, no wrap-up
    assert len(_changes(steps, "call.answered", "9101")) == 1
    assert not _changes(steps, "agent.wrapup")
    assert s.agents["9101"].current_call is None


def test_click_to_call_is_answered_when_the_customer_leg_answers():
    s = _state()
    agent = "Local/9101@sim-agent-long-00000001;1"
    uid = "5.1"
    chan = {"Channel": agent, "Uniqueid": uid, "Linkedid": uid}
    s.apply(ev.translate({"Event": "Newchannel", **chan, "ChannelStateDesc": "Ring"}), 1.0)
    s.apply(ev.translate({"Event": "Newstate", **chan, "ChannelStateDesc": "Up"}), 2.0)
    call = s.calls[uid]
    assert call.status == "dialing" and call.answered_at is None and s.agents["9101"].current_call == uid
    trunk = {"DestChannel": "PJSIP/trunk-00000002", "DestUniqueid": "5.3", "DestLinkedid": uid}
    s.apply(ev.translate({"Event": "DialBegin", **chan, **trunk}), 3.0)
    changes = s.apply(ev.translate({"Event": "DialEnd", **chan, **trunk, "DialStatus": "ANSWER"}), 4.0)
    assert call.status == "talking" and call.answered_at == 4.0 and call.outcome == "answered"
    assert [c.kind for c in changes if c.call_id == uid] == ["call.updated"]


# ------------------------------------------------- whatever is missed: the parts stay sound
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests.conftest import CAPTURES  # noqa: E402
from tests.unit.cti.test_state_properties import check_invariants  # noqa: E402

_LIVE_FILES = [
    "ami-blind-transfer-to-queue", "ami-blind-transfer-to-agent", "ami-hold-unhold-agent-hangup",
    "ami-hold-caller-hangup-on-hold", "ami-attended-transfer", "ami-pjsip-phone-hold",
    "ami-click-to-call-unreachable", "ami-chanspy-listen",
]
_LIVE_STREAM = [e for f in _LIVE_FILES for e in capture_events(CAPTURES / LIVE / f"{f}.raw")]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.booleans(), min_size=len(_LIVE_STREAM), max_size=len(_LIVE_STREAM)))
def test_any_subsequence_of_the_live_captures_keeps_the_parts_sound(keep):
    s = _state()
    now = 1000.0
    wrapups = 0
    for e, k in zip(_LIVE_STREAM, keep):
        if k:
            wrapups += sum(1 for c in s.apply(e, now) if c.kind in ("agent.wrapup", "agent.call_completed"))
            check_invariants(s)
        now += 0.25
    calls = [*s.calls.values(), *s.ended.values()]
    closed = [p for c in calls for p in c.parts if p.ended_at is not None]
    assert wrapups == len(closed)  # each part is accounted exactly once
    for c in s.ended.values():
        assert all(p.ended_at is not None for p in c.parts)  # nobody stays on an ended call
        assert c.talk_time == (sum(p.talk_time for p in c.parts) if c.parts else c.talk_time)
    for q in s.queues.values():
        assert q.completed == sum(1 for p in closed if p.queue == q.name)
    for agent in s.agents.values():
        if agent.current_call is not None:
            assert s.calls[agent.current_call].open_part(agent.id) is not None or s.calls[agent.current_call].direction == "outbound"


def test_a_lost_queue_leave_never_leaves_the_ended_call_waiting():
    """Found by the property above: a caller blind-transferred from sales to support whose
    QueueCallerLeave (sales) was lost stayed in sales' waiting list after its hangup. A caller is
    in one Queue() at a time, so joining support takes it out of sales, and its end takes it out
    of every queue."""
    join_sales, join_support, hangup = (_LIVE_STREAM[i] for i in (11, 31, 52))
    assert (join_sales.queue, join_support.queue, type(hangup).__name__) == ("sales", "support", "Hangup")
    s = _state()
    s.apply(join_sales, 1000.0)
    s.apply(join_support, 1001.0)
    assert join_sales.chan.linkedid not in s.queues["sales"].waiting
    assert join_sales.chan.linkedid in s.queues["support"].waiting
    check_invariants(s)
    s.queues["sales"].waiting[join_sales.chan.linkedid] = 1000.0  # as if the join had come the other way round
    s.apply(hangup, 1002.0)
    check_invariants(s)
    assert all(not q.waiting for q in s.queues.values())
