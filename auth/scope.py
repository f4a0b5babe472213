"""Who a scoped principal may see and act on (issue 11) — pure, no I/O, tested directly.

A user (or API key) may be limited to **queues** and, for supervisors, to **teams**:

* a queue scope limits every queue-shaped thing: live calls and call history, recordings
  (a recording of a call that passed through several queues is visible when one of them is
  in scope), QA evaluations (through their recording), callbacks, reports, the wallboard;
* a supervisor's queue and team scopes limit the **agents** it sees and acts on (status,
  force pause/logout, listen/whisper/barge): an agent is in scope when one of its queues
  (skills or live memberships) is in the queue scope, and, with a team scope, when its team
  is one of the teams. Both scopes must hold when both are set.

An empty scope means "every queue" / "every team". The agent's own calls and recordings stay
visible to the agent whatever the scope (``own`` below).
"""

from __future__ import annotations

from typing import Any, Iterable

from auth.tokens import Principal


def sees_queue(p: Principal, queue: str | None) -> bool:
    return not p.queues or (queue is not None and queue in p.queues)


def sees_any_queue(p: Principal, queues: Iterable[str | None]) -> bool:
    """True if one of ``queues`` is in scope (a transferred call's recording has several)."""
    return not p.queues or any(q in p.queues for q in queues if q)


def queue_filter(p: Principal) -> frozenset[str] | None:
    """The queues a query must be limited to, or None for every queue."""
    return p.queues or None


def agent_queues(agent: dict[str, Any]) -> set[str]:
    """An agent's queues: configured skills and live memberships (``AgentRecord``/``AgentState`` dicts)."""
    out: set[str] = set()
    for s in agent.get("skills") or ():
        out.add(s["queue"] if isinstance(s, dict) else str(s))
    out.update(agent.get("queues") or ())
    out.update((agent.get("state") or {}).get("queues") or ())  # AgentService.agent_view: live memberships
    return out


def supervises(p: Principal, agent: dict[str, Any]) -> bool:
    """May ``p`` see and act on ``agent`` (a dict with ``skills``/``queues`` and ``team``)?"""
    if p.queues and not (agent_queues(agent) & p.queues):
        return False
    teams = getattr(p, "teams", frozenset())
    if teams and agent.get("team") not in teams:
        return False
    return True


def record_in_scope(p: Principal, queues: Iterable[str | None], agents: Iterable[str | None] = ()) -> bool:
    """A call/recording/evaluation: in the queue scope, or one of the principal's own calls."""
    if p.agent_id and p.agent_id in set(agents):
        return True
    return sees_any_queue(p, queues)


def message_in_scope(p: Principal, name: str, payload: Any, audience: Iterable[str] = ()) -> bool:
    """May a queue-scoped session receive this bus message (websocket feed)? Messages addressed
    to the principal's own agent always pass; queue-shaped ones pass when their queue is in scope
    (``queue``; an agent's ``queues`` memberships; every queue of a ``queue.stats`` batch);
    anything not about a queue (system notices) passes."""
    if not p.queues:
        return True
    if p.agent_id and f"agent:{p.agent_id}" in set(audience):
        return True
    if not isinstance(payload, dict):
        return True
    if name == "wallboard.update":
        return True  # cut to the session's scope when it is written (wallboard_in_scope, web.routes)
    if name == "queue.stats":
        return all(s.get("queue") in p.queues for s in payload.get("queues") or [] if isinstance(s, dict))
    queue = payload.get("queue")
    if queue is not None:
        return queue in p.queues
    queues = payload.get("queues")
    if isinstance(queues, (dict, list, set, tuple)) and queues:
        return bool({q for q in queues if isinstance(q, str)} & p.queues)
    return True


def wallboard_in_scope(p: Principal, board: dict[str, Any], directory: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The wallboard (``wallboard.update`` / ``GET /api/web/wallboard``) as a scoped supervisor may
    see it: the queue tiles, KPIs, waiting callers and abandoned calls of its queues; the agents it
    supervises (``directory``: the agent records, for their skills and team), with an agent's
    current call left out when that call is in a queue outside the scope. Unscoped: unchanged."""
    teams = getattr(p, "teams", frozenset())
    if not (p.queues or teams):
        return board
    out = dict(board)
    if p.queues:
        # a wallboard.update delta (web.wallboard.WallboardFeed) leaves unchanged parts out: kept out
        for part in ("queues", "waiting", "abandoned", "abandoned_changed"):  # abandoned_removed: ids, kept
            if part in board:
                out[part] = [x for x in board.get(part) or [] if x.get("queue") in p.queues]
        kpis = board.get("kpis")
        if isinstance(kpis, dict):
            out["kpis"] = {**kpis, "queues": {q: v for q, v in (kpis.get("queues") or {}).items() if q in p.queues}}
    if "agents" not in board:
        return out
    mine = {a["id"] for a in directory if supervises(p, a)}
    agents = []
    for a in board.get("agents") or []:
        if a.get("agent_id") not in mine:
            continue
        call = a.get("call")
        if p.queues and isinstance(call, dict) and call.get("queue") and call["queue"] not in p.queues:
            a = {**a, "call": None}
        agents.append(a)
    out["agents"] = agents
    return out
