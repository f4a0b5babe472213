"""Live calls handed from the AMI holder to a standby (issue 19, callcore/handoff.py)."""

from __future__ import annotations

import json
import pickle
from types import SimpleNamespace

from callcore.handoff import HandoffPublisher, HandoffReceiver, seal, unseal
from cti.state import Call

KEY = b"k" * 32


def test_seal_round_trip_and_tampering_is_refused() -> None:
    text = seal(KEY, b"blob")
    assert unseal(KEY, text) == b"blob"
    assert unseal(b"x" * 32, text) is None


def _change(kind: str, call_id: str) -> SimpleNamespace:
    return SimpleNamespace(kind=kind, call_id=call_id)


def test_the_standby_gets_the_newest_pictures_and_forgets_ended_calls() -> None:
    state = SimpleNamespace(calls={"c1": Call(id="c1", started_at=100.0), "c2": Call(id="c2", started_at=101.0)})
    state.calls["c1"].answered_at = 105.0
    held = [True]
    pub = HandoffPublisher(state, send=None, key=KEY, held=lambda: held[0])
    pub(_change("call.answered", "c1"), 105.0)
    pub(_change("call.created", "c2"), 101.0)
    recv = HandoffReceiver(KEY)
    recv.receive(pub.message())
    assert set(recv.calls) == {"c1", "c2"} and recv.calls["c1"].answered_at == 105.0
    pub(_change("call.ended", "c2"), 110.0)
    recv.receive(pub.message())
    assert set(recv.calls) == {"c1"}
    held[0] = False  # a standby publishes nothing
    pub(_change("call.answered", "c1"), 111.0)
    assert pub.message() is None
    # take-over: the state's calls become the pictures
    standby = SimpleNamespace(calls={"stale": Call(id="stale", started_at=1.0)})
    assert recv.before_rebuild(standby) and set(standby.calls) == {"c1"}


def test_forged_pictures_are_never_unpickled() -> None:
    recv = HandoffReceiver(KEY)
    evil = seal(b"other-cluster-key-000000000000000", pickle.dumps(Call(id="x", started_at=0.0)))
    recv.receive(json.dumps({"calls": [["x", evil]], "ended": []}).encode())
    recv.receive(b"not json")
    assert recv.calls == {} and recv.rejected == 2


def test_nothing_heard_leaves_the_state_to_the_local_journal() -> None:
    state = SimpleNamespace(calls={"mine": object()})
    assert HandoffReceiver(KEY).before_rebuild(state) is False and set(state.calls) == {"mine"}


def test_the_hand_off_carries_each_calls_server_and_each_server_reconciles_its_own() -> None:
    """Several Asterisk servers (issue 19): one holder runs every server's client; a take-over
    gets each call with its server, and the first server's resync does not end the others'."""
    from cti.state import CtiState

    old = CtiState()
    old.calls = {"ast1-1.1": Call(id="ast1-1.1", started_at=100.0, server="ast1"),
                 "ast2-1.1": Call(id="ast2-1.1", started_at=100.0, server="ast2")}
    pub = HandoffPublisher(old, send=None, key=KEY, held=lambda: True)
    for cid in old.calls:
        pub(_change("call.created", cid), 100.0)
    recv = HandoffReceiver(KEY)
    recv.receive(pub.message())
    new = CtiState()
    assert recv.before_rebuild(new)
    assert {c.id: c.server for c in new.calls.values()} == {"ast1-1.1": "ast1", "ast2-1.1": "ast2"}
    ended = [c.call_id for c in new.rebuild([], 110.0, "ast1") if c.kind == "call.ended"]
    assert ended == ["ast1-1.1"] and "ast2-1.1" in new.calls
