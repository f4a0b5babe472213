"""Issue 19 follow-up: a server lost for good has its live calls ended once (cti/server_watch.py),
on a fake monotonic clock; the in-process run with two emulators is in test_multi_asterisk.py."""

from __future__ import annotations

from cti.ami import events as ev
from cti.dispatcher import ChangeDispatcher
from cti.server_watch import ServerLossWatch
from cti.state import CtiState


def _chan(uid: str, name: str) -> ev.ChannelInfo:
    return ev.ChannelInfo(channel=name, uniqueid=uid, linkedid=uid, state=6, state_desc="Up", caller_num="0101",
                          caller_name="", connected_num="", connected_name="", context="x", exten="s", priority=1,
                          language="en", accountcode="")


def _on(state: CtiState, uid: str, server: str) -> None:
    event = ev.Newchannel(_chan(uid, f"PJSIP/trunk-{uid}"))
    object.__setattr__(event, "server", server)
    state.apply(event, 1.0)


class Now:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _watch(state, states, now, *, active=lambda: True):
    seen: list = []
    dispatcher = ChangeDispatcher()
    dispatcher.subscribe("test", lambda change, at: seen.append((change.kind, change.call_id)))
    watch = ServerLossWatch(states=lambda: dict(states), state=state, dispatcher=dispatcher, grace=300,
                            clock=lambda: 5.0, monotonic=now, active=active)
    return watch, seen


def test_a_server_down_past_the_grace_has_its_calls_ended_once_as_server_lost():
    state, now = CtiState(), Now()
    _on(state, "ast1-1.1", "ast1")
    _on(state, "ast2-1.1", "ast2")
    states = {"ast1": "connected", "ast2": "disconnected"}
    watch, seen = _watch(state, states, now)
    assert watch.check() == []
    now.t += 299
    assert watch.check() == [] and "ast2-1.1" in state.calls
    now.t += 1
    assert watch.check() == ["ast2"]
    ended = state.ended["ast2-1.1"]
    assert (ended.end_cause_txt, ended.outcome, ended.ended_at) == ("server lost", "lost", 5.0)
    assert ("call.ended", "ast2-1.1") in seen and list(state.calls) == ["ast1-1.1"]
    now.t += 600
    assert watch.check() == [] and watch.calls_ended == 1  # once, not at every look


def test_a_server_back_within_the_grace_is_left_to_its_resync_and_a_later_outage_counts_afresh():
    state, now = CtiState(), Now()
    _on(state, "ast2-1.1", "ast2")
    states = {"ast1": "connected", "ast2": "connecting"}
    watch, _ = _watch(state, states, now)
    watch.check()
    now.t += 200
    states["ast2"] = "connected"
    watch.check()
    now.t += 10
    states["ast2"] = "disconnected"
    watch.check()
    now.t += 200  # 410 s since the first outage began, 200 s into this one
    assert watch.check() == [] and "ast2-1.1" in state.calls
    now.t += 100
    assert watch.check() == ["ast2"] and "ast2-1.1" not in state.calls


def test_calls_of_no_server_end_only_when_every_server_is_lost_and_a_standby_never_acts():
    state, now = CtiState(), Now()
    _on(state, "1.1", "")  # restored from an older journal: no server yet
    state.calls["1.1"].answered_at = 2.0
    states = {"ast1": "disconnected", "ast2": "connected"}
    holder = {"held": False}
    watch, _ = _watch(state, states, now, active=lambda: holder["held"])
    now.t += 1000
    assert watch.check() == [] and not watch.down_since  # a standby: the holder's picture, not ours to end
    holder["held"] = True
    watch.check()
    now.t += 300
    assert watch.check() == ["ast1"] and "1.1" in state.calls  # ast2 is up: its resync reconciles it
    states["ast2"] = "disconnected"
    watch.check()
    now.t += 300
    assert watch.check() == ["ast2"]
    assert state.ended["1.1"].outcome == "answered" and state.ended["1.1"].end_cause_txt == "server lost"
