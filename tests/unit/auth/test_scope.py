"""Queue and team scopes (issue 11): the pure rules of auth/scope.py."""

from __future__ import annotations

from auth import scope
from auth.tokens import Principal

AGENT_SALES_A = {"id": "1001", "skills": [{"queue": "sales", "penalty": 0}], "team": "A", "state": None}
AGENT_SUPPORT_B = {"id": "1002", "skills": [{"queue": "support", "penalty": 0}], "team": "B",
                   "state": {"queues": {"billing": {}}}}  # a live membership beyond its skills


def test_no_scope_sees_everything() -> None:
    p = Principal("user:s", "supervisor")
    assert scope.sees_queue(p, "sales") and scope.sees_queue(p, None)
    assert scope.queue_filter(p) is None
    assert scope.supervises(p, AGENT_SALES_A) and scope.supervises(p, AGENT_SUPPORT_B)


def test_queue_scope_limits_queues_and_the_agents_of_them() -> None:
    p = Principal("user:s", "supervisor", queues=frozenset({"sales"}))
    assert scope.sees_queue(p, "sales") and not scope.sees_queue(p, "support") and not scope.sees_queue(p, None)
    assert scope.queue_filter(p) == {"sales"}
    assert scope.supervises(p, AGENT_SALES_A) and not scope.supervises(p, AGENT_SUPPORT_B)
    billing = Principal("user:b", "supervisor", queues=frozenset({"billing"}))
    assert scope.supervises(billing, AGENT_SUPPORT_B)  # through the live membership


def test_team_scope_and_both_scopes_together() -> None:
    team_b = Principal("user:t", "supervisor", teams=frozenset({"B"}))
    assert scope.supervises(team_b, AGENT_SUPPORT_B) and not scope.supervises(team_b, AGENT_SALES_A)
    assert not scope.supervises(team_b, {"id": "x", "skills": [], "team": None})  # no team: not in a team scope
    both = Principal("user:t", "supervisor", queues=frozenset({"sales"}), teams=frozenset({"B"}))
    assert not scope.supervises(both, AGENT_SALES_A) and not scope.supervises(both, AGENT_SUPPORT_B)


def test_a_transferred_calls_record_is_visible_through_any_of_its_queues_and_to_its_agents() -> None:
    qa = Principal("user:q", "qa", queues=frozenset({"support"}))
    assert scope.record_in_scope(qa, ["sales", "support"])
    assert not scope.record_in_scope(qa, ["sales"])
    assert not scope.record_in_scope(qa, [None])
    agent = Principal("1001", "agent", queues=frozenset({"support"}))
    assert scope.record_in_scope(agent, ["sales"], agents=["1001"])  # one's own call, whatever the scope


def test_teams_travel_in_the_token() -> None:
    from auth.tokens import Authenticator

    a = Authenticator("k" * 40)
    p = Principal("user:t", "supervisor", queues=frozenset({"sales"}), teams=frozenset({"B", "A"}))
    back = a.authenticate(a.issue_for(p))
    assert back.teams == {"A", "B"} and back.queues == {"sales"}


def test_a_scoped_feed_carries_only_its_queues() -> None:
    sales = Principal("user:s", "supervisor", queues=frozenset({"sales"}))
    ok = lambda name, payload, aud=(): scope.message_in_scope(sales, name, payload, aud)  # noqa: E731
    assert ok("call.ringing", {"queue": "sales"}) and not ok("call.ringing", {"queue": "support"})
    assert ok("agent.status", {"agent_id": "1001", "queues": {"sales": 0, "support": 1}})
    assert not ok("agent.status", {"agent_id": "1002", "queues": {"support": 0}})
    assert ok("queue.stats", {"queues": [{"queue": "sales"}]}) and not ok("queue.stats", {"queues": [{"queue": "support"}]})
    assert ok("cti.resynced", {"calls": 3})  # not about a queue
    own = Principal("1001", "supervisor", queues=frozenset({"sales"}))
    assert scope.message_in_scope(own, "call.ringing", {"queue": "support"}, {"agent:1001"})  # its own pop
    assert scope.message_in_scope(Principal("user:a", "supervisor"), "call.ringing", {"queue": "support"})


def test_a_scoped_wallboard_keeps_only_the_queues_and_agents_in_scope():
    board = {
        "at": 1.0,
        "queues": [{"queue": "sales"}, {"queue": "billing"}],
        "waiting": [{"call_id": "w1", "queue": "sales"}, {"call_id": "w2", "queue": "billing"}],
        "abandoned": [{"call_id": "a1", "queue": "billing"}, {"call_id": "a2", "queue": "sales"}],
        "kpis": {"at": 0.5, "queues": {"sales": {"asa_seconds": 3}, "billing": {"asa_seconds": 9}}},
        "agents": [
            {"agent_id": "1001", "call": {"call_id": "x", "queue": "billing", "caller_num": "0101"}},  # in both queues
            {"agent_id": "1002", "call": None},
            {"agent_id": "1003", "call": {"call_id": "y", "queue": "sales"}},
        ],
    }
    directory = [
        {"id": "1001", "skills": [{"queue": "sales"}, {"queue": "billing"}], "team": "A"},
        {"id": "1002", "skills": [{"queue": "billing"}], "team": "A"},
        {"id": "1003", "skills": [{"queue": "sales"}], "team": "B"},
    ]
    sales = Principal("user:s", "supervisor", queues=frozenset({"sales"}))
    out = scope.wallboard_in_scope(sales, board, directory)
    assert [q["queue"] for q in out["queues"]] == ["sales"]
    assert [c["call_id"] for c in out["waiting"]] == ["w1"] and [c["call_id"] for c in out["abandoned"]] == ["a2"]
    assert out["kpis"] == {"at": 0.5, "queues": {"sales": {"asa_seconds": 3}}}
    # 1001 serves sales too, but its current billing caller is not shown; 1002 (billing only) is left out
    assert [(a["agent_id"], a["call"]) for a in out["agents"]] == [("1001", None), ("1003", {"call_id": "y", "queue": "sales"})]
    team_b = Principal("user:t", "supervisor", teams=frozenset({"B"}))
    assert [a["agent_id"] for a in scope.wallboard_in_scope(team_b, board, directory)["agents"]] == ["1003"]
    everyone = Principal("user:a", "supervisor")
    assert scope.wallboard_in_scope(everyone, board, directory) is board
    assert board["kpis"]["queues"].keys() == {"sales", "billing"}  # the shared message is never changed
    assert scope.message_in_scope(sales, "wallboard.update", board)  # let through, then cut to the scope
