"""Replay the real Asterisk captures through the pure state machine."""

from __future__ import annotations

import dataclasses

from cti.ami import events as ev
from cti.ami.events import translate
from cti.state import CtiState, QueueSettings, channel_key, interface_key
from cti.testing import capture_events, list_events, read_frames, replay


def kinds(changes, kind):
    return [c for c in changes if c.kind == kind]


def test_channel_and_interface_keys_match():
    assert channel_key("Local/1001@agents-00000002;1") == interface_key("Local/1001@agents/n")
    assert channel_key("Local/1001@agents-long-00000015;2") == interface_key("Local/1001@agents-long/n")
    assert channel_key("PJSIP/1001-0000000a") == interface_key("PJSIP/1001")


def test_ivr_queue_agent(captures_dir):
    s = CtiState(default_wrapup_seconds=15)
    events = capture_events(captures_dir / "ami-ivr-queue-agent.raw")
    changes = replay(s, events, start=1000.0, step=0.5)

    ringing = kinds(changes, "call.ringing")
    assert [(c.call_id, c.agent_id, c.queue) for c in ringing] == [("1795395806.2", "1001", "sales")]
    assert [c.agent_id for c in kinds(changes, "call.answered")] == ["1001"]
    assert len(kinds(changes, "call.ended")) == 1

    assert s.calls == {}
    call = s.ended["1795395806.2"]
    assert call.caller_num == "01012345678"
    assert call.caller_name == "홍길동"
    assert call.queue == "sales"
    assert call.agent_id == "1001"
    assert call.agents_rung == ["1001"]
    assert call.outcome == "answered"
    assert call.recording is True
    assert call.digits == "1"  # the DTMF the caller pressed in the IVR
    assert call.talk_time == 3 and call.hold_time == 0
    assert call.end_cause == 16
    assert call.queued_at is not None and call.answered_at >= call.queued_at
    roles = sorted((l.role, l.channel) for l in call.legs.values())
    assert ("caller", "Local/press1@sim-caller-00000001;1") in roles
    assert ("agent", "Local/1001@agents-00000002;1") in roles
    assert all(l.ended_at is not None for l in call.legs.values())

    agent = s.agents["1001"]
    # AgentComplete put the agent in wrap-up; the later QueuePause(lunch) is recorded
    assert agent.status == "wrapup"
    assert agent.paused is True and agent.pause_reason == "lunch"
    assert agent.queues == {"sales": 0}
    assert s.queues["sales"].answered == 1
    assert s.queues["sales"].waiting == {}
    # wrap-up ends: the agent is paused (lunch), not ready
    done = s.tick(agent.wrapup_until + 0.1)
    assert [c.kind for c in done] == ["agent.updated"]
    assert s.agents["1001"].status == "paused"


def test_queue_abandon_rings_then_abandons(captures_dir):
    s = CtiState()
    changes = replay(s, capture_events(captures_dir / "ami-queue-abandon.raw"), start=1000.0)
    assert [c.agent_id for c in kinds(changes, "call.ringing")] == ["1001"]
    missed = kinds(changes, "call.missed")
    assert [(c.agent_id, c.data["reason"]) for c in missed] == [("1001", "abandoned")]
    call = s.ended["1795395910.10"]
    assert call.outcome == "abandoned"
    assert call.hold_time == 7
    assert call.caller_name == "이영희"
    assert call.agent_id is None
    assert s.queues["sales"].abandoned == 1
    assert s.queues["sales"].waiting == {}
    # the member was removed again (QueueRemove): logged out, not ringing
    assert s.agents["1001"].status == "logged_out"
    assert s.agents["1001"].ringing_call is None


def test_ring_no_answer_returns_agent_and_call_to_queue(captures_dir):
    """AgentRingNoAnswer, built from the capture's own AgentCalled frame."""
    frames = read_frames(captures_dir / "ami-queue-abandon.raw")
    s = CtiState()
    now = 1000.0
    for f in frames:
        if f.get("Event") == "AgentCalled":
            e = translate(f)
            s.apply(e, now)
            rna = translate({**f, "Event": "AgentRingNoAnswer", "RingTime": "10"})
            break
        e = translate(f) if "Event" in f and "ActionID" not in f else None
        if e is not None:
            s.apply(e, now)
        now += 0.1
    call_id = "1795395910.10"
    assert s.agents["1001"].status == "ringing"
    assert s.calls[call_id].status == "ringing"
    changes = s.apply(rna, now + 10)
    missed = [(c.agent_id, c.data["reason"]) for c in changes if c.kind == "call.missed"]
    assert missed == [("1001", "no_answer")]
    assert s.agents["1001"].status == "ready"
    assert s.calls[call_id].status == "queued"
    assert s.calls[call_id].ringing_agents == set()


def test_caller_hangs_up_in_ivr(captures_dir):
    s = CtiState()
    changes = replay(s, capture_events(captures_dir / "ami-caller-hangup-in-ivr.raw"))
    assert [c.kind for c in changes] == ["call.created", "call.ended"]
    call = s.ended["1795395895.8"]
    assert call.outcome == "ivr_hangup"
    assert call.queue is None
    assert call.caller_num == "0212345678"
    assert call.end_cause == 16
    assert len(call.legs) == 2


def test_click_to_call_is_an_outbound_call_of_the_agent(captures_dir):
    s = CtiState()
    s.register_agent("1001", "Local/1001@agents-long/n", "Agent 1001")
    changes = replay(s, capture_events(captures_dir / "ami-click-to-call.raw"))
    assert [c.agent_id for c in kinds(changes, "call.answered")] == ["1001"]
    call = s.ended["1795396151.38"]
    assert call.direction == "outbound"
    assert call.agent_id == "1001"
    assert call.caller_num == "01012345678"  # the customer (CallerID set by the Originate)
    # in this first-round capture the "customer" is the dialplan of the originated Local channel
    # itself: no customer leg ever answers, so callcore does not count it as answered (issue 9/8)
    assert call.outcome == "unanswered" and call.answered_at is None
    assert call.queue is None
    # during the call the agent was on it, afterwards free (outbound: no queue wrap-up)
    statuses = [c for c in changes if c.kind == "agent.updated"]
    assert len(statuses) == 2
    assert s.agents["1001"].current_call is None


def test_leastrecent_picks_1002(captures_dir):
    s = CtiState()
    s.set_queue_settings(QueueSettings("support", wrapup_seconds=0, service_level_seconds=5))
    changes = replay(s, capture_events(captures_dir / "ami-queue-leastrecent-answer.raw"), start=5000.0)
    assert [c.agent_id for c in kinds(changes, "call.ringing")] == ["1002"]
    assert [c.kind for c in changes if c.kind.startswith("agent.") and c.agent_id == "1002" and c.kind != "agent.updated"] == [
        "agent.call_completed"
    ]
    q = s.queues["support"]
    assert q.answered == 1 and q.answered_within_sl == 1
    assert s.queue_stats("support", 5100.0)["service_level"] == 100.0


def test_resync_snapshot_rebuilds_calls_agents_queues(captures_dir):
    path = captures_dir / "ami-resync-snapshot.raw"
    snapshot = [
        *list_events(path, "resync-channels"),
        *list_events(path, "resync-queues"),
        *list_events(path, "resync-summary"),
    ]
    assert any(isinstance(e, ev.CoreShowChannel) for e in snapshot)
    s = CtiState()
    s.register_agent("1001", "Local/1001@agents-long/n", "Agent 1001")
    now = 10_000.0
    changes = s.rebuild(snapshot, now)
    assert changes[-1].kind == "state.resynced"

    talking = s.calls["1795396653.40"]
    assert talking.status == "talking"
    assert talking.queue == "sales"
    assert talking.agent_id == "1001"
    assert talking.agent_channel == "Local/1001@agents-long-00000015;1"
    assert talking.bridge_id == "632b2f92-d469-44d1-bc73-aa9343a46d28"
    assert talking.caller_num == "01033332222"

    waiting = s.calls["1795396653.44"]
    assert waiting.status == "queued"
    assert waiting.queue == "support"
    assert waiting.queued_at == now - 5

    assert s.agents["1001"].status == "on_call"
    assert s.agents["1001"].current_call == "1795396653.40"
    assert s.agents["1003"].status == "paused"
    assert s.agents["1003"].pause_reason == "training"

    support = s.queue_stats("support", now + 2)
    assert support["waiting"] == 1 and support["longest_wait"] == 7
    sales = s.queue_stats("sales", now)
    assert sales["agents"] == {"on_call": 1, "paused": 1}

    # the live stream continues after the snapshot: the answered call ends normally
    tail = capture_events(path)
    idx = max(i for i, e in enumerate(tail) if isinstance(e, ev.QueueCallerJoin))
    more = replay(s, tail[idx + 1 :], start=now + 1)
    ended = [c.call_id for c in more if c.kind == "call.ended"]
    assert ended == ["1795396653.40"]
    assert s.ended["1795396653.40"].outcome == "answered"
    assert s.agents["1001"].status in ("wrapup", "logged_out")


def test_rebuild_ends_calls_that_vanished_and_keeps_known_ones(captures_dir):
    s = CtiState()
    s.register_agent("1001", "Local/1001@agents-long/n")
    events = capture_events(captures_dir / "ami-resync-snapshot.raw")
    # live until both callers are in (before the snapshot was taken)
    idx = max(i for i, e in enumerate(events) if isinstance(e, ev.QueueCallerJoin))
    replay(s, events[: idx + 1], start=1000.0)
    s.calls["1795396653.40"].customer = {"id": 7, "name": "known"}
    # a stale call Asterisk no longer has
    first = next(e for e in events if isinstance(e, ev.Newchannel))
    stale = dataclasses.replace(first.chan, uniqueid="9.1", linkedid="9.1", channel="SIP/x-00000001")
    s.apply(ev.Newchannel(stale), 1001.0)
    assert "9.1" in s.calls
    path = captures_dir / "ami-resync-snapshot.raw"
    snap = [*list_events(path, "resync-channels"), *list_events(path, "resync-queues"), *list_events(path, "resync-summary")]
    changes = s.rebuild(snap, 1010.0)
    assert "9.1" not in s.calls and s.ended["9.1"].end_cause_txt == "ended during AMI disconnect"
    assert [c.call_id for c in changes if c.kind == "call.ended"] == ["9.1"]
    assert s.calls["1795396653.40"].customer == {"id": 7, "name": "known"}
    assert not [c for c in changes if c.kind == "call.created"]


def test_asterisk_restart_ends_calls_and_clears_members(captures_dir):
    s = CtiState()
    s.apply(ev.QueueMemberAdded(ev.MemberInfo.parse({"Queue": "support", "Interface": "Local/1002@agents/n", "Status": "1"})), 1.0)
    assert s.agents["1002"].status == "ready"
    changes = replay(s, capture_events(captures_dir / "ami-asterisk-restart.raw"), start=10.0)
    call = s.ended["1795396685.46"]
    assert call.outcome == "abandoned" and call.end_cause == 0
    assert changes[-1].kind == "asterisk.shutdown"
    assert s.agents["1002"].status == "logged_out"
    # after the restart QueueStatus lists the queues without members
    after = list_events(captures_dir / "ami-after-restart.raw", "qs-after")
    assert {e.queue for e in after if isinstance(e, ev.QueueParams)} == {"support", "sales"}
    s.rebuild(after, 100.0)
    assert s.queues["support"].members == set()
    assert s.calls == {}


def test_overflow_due_after_wait_threshold(captures_dir):
    s = CtiState()
    s.set_queue_settings(QueueSettings("sales", overflow_queue="support", overflow_after_seconds=5))
    events = capture_events(captures_dir / "ami-queue-abandon.raw")
    i = next(i for i, e in enumerate(events) if isinstance(e, ev.AgentCalled))
    replay(s, events[: i + 1], start=1000.0, step=0.1)
    joined = s.calls["1795395910.10"].queued_at
    assert s.overflow_due(joined + 4) == []  # a member is logged in and ringing; not long enough yet
    (due,) = s.overflow_due(joined + 5)
    assert (due[0].id, due[1], due[2]) == ("1795395910.10", "support", "wait")
    due[0].overflowed_to = "support"
    assert s.overflow_due(joined + 60) == []  # moved once only
