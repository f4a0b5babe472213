"""The wallboard's per-agent handled/missed counts and its abandoned-calls list are the KPI fact
store's (issues 14/16): calls through the PBX emulator, then a wallboard started afresh on the
same database — as after a server restart — shows the same figures; a supervisor scoped to one
queue receives only that queue's tiles, callers, abandoned calls and agents over the websocket."""

from __future__ import annotations

from tests.e2e.conftest import eventually
from web.models import load_config
from web.service import WebService

CALLER = "01055556666"


def _figures(board: dict) -> tuple:
    agents = {a["agent_id"]: (a["handled_today"], a["missed_today"]) for a in board["agents"]}
    gone = [(c["call_id"], c["caller_num"], c["caller_name"], c["queue"], c["waited"]) for c in board["abandoned"]]
    return agents, gone


async def test_handled_missed_and_abandoned_survive_a_restart_and_follow_the_queue_scope(server):
    s, pbx = server, server.pbx
    await s.api("PUT", "/api/queues/billing/settings", json={}, expect=200)
    tok = await s.create_agent("1001", "김상담", ["sales"])
    await s.create_agent("1002", "이상담", ["billing"])
    phone = pbx.agent("1001", answer_after=None)  # rings, never answers: a missed ring
    await s.api("POST", "/api/agents/1001/login", token=tok, expect=200)
    await eventually(lambda: "Local/1001@agents/n" in pbx.queues["sales"].members, what="1001 in sales")

    # a sales-only supervisor's websocket (an API key limited to the sales queue)
    key = (await s.api("POST", "/api/api-keys", expect=201,
                       json={"name": "sales board", "role": "supervisor", "queues": ["sales"]}))["key"]
    scoped = await s.desk(key)

    # 1) the caller rings 1001 (no answer), then gives up: a missed ring and an abandoned call
    gone = await pbx.dial(CALLER, name="강고객", exten="sales", context="queue-direct")
    await gone.wait_for_queue("sales")
    await eventually(lambda: s.container.web.book.missed.get("1001"), 10, "a missed ring")
    await gone.hangup()
    await eventually(lambda: s.container.web.book.abandoned, 10, "the abandoned call")
    await eventually(lambda: not s.cti.state.calls, 10, "call 1 over")
    # 2) 1001 answers the next one: handled
    phone.behavior.answer_after, phone.behavior.hangup_after = 1.0, 3.0
    await eventually(lambda: s.cti.state.agents["1001"].status == "ready", 10, "1001 ready again")
    call = await pbx.dial("01011112222", exten="sales", context="queue-direct")
    await call.wait_for_agent(timeout=10)
    await call.wait_for_hangup(timeout=10)
    await eventually(lambda: not s.cti.state.calls, 10, "call 2 over")
    await s.cti.idle()
    await s.container.reports.flush()

    live = await s.api("GET", "/api/web/wallboard", expect=200)
    agents, abandoned = _figures(live)
    assert agents["1001"][0] == 1 and agents["1001"][1] >= 1 and agents["1002"] == (0, 0)
    ((call_id, number, name, queue, waited),) = abandoned
    assert (number, name, queue) == (CALLER, "강고객", "sales") and waited > 0

    # the same figures from a wallboard that starts afresh on the same database (a restart):
    # read back from the report store, not kept in the old process's memory
    from reports.service import ReportService

    store = ReportService.from_settings(s.container.settings, s.container.sessionmaker, rollup_every=None)
    await store.start()
    fresh = WebService(bus=s.container.bus, config=load_config(), agents=s.cti.agents.list_agents,
                       queue_stats=s.cti.queues.queue_views, pause_reasons=lambda: [], reports=store)
    await fresh.start()
    try:
        assert _figures(fresh.wallboard()) == (agents, abandoned)
        assert fresh.book.seeded_day == fresh.book.day
    finally:
        await fresh.stop()
        await store.stop()

    # the sales-scoped supervisor's pushes: sales only (billing's tile, agent 1002: never)
    assert {q["queue"] for q in live["queues"]} >= {"sales", "billing"}  # the admin sees both
    n = len(scoped.named("wallboard.update"))
    await eventually(lambda: len(scoped.named("wallboard.update")) > n, 5, "a wallboard.update after the calls")
    ups = [m["payload"] for m in scoped.named("wallboard.update")]
    # each is a delta (only the changed parts) or a full board (web.wallboard.WallboardFeed)
    for board in ups:
        assert {q["queue"] for q in board.get("queues", [])} <= {"sales"}
        assert {a["agent_id"] for a in board.get("agents", [])} <= {"1001"}
        assert all(c["queue"] == "sales" for c in board.get("abandoned", []) + board.get("waiting", []))
        assert set((board.get("kpis") or {}).get("queues") or {}) <= {"sales"}
    assert any(q["queue"] == "sales" for board in ups for q in board.get("queues", []))
    assert any(a["agent_id"] == "1001" for board in ups for a in board.get("agents", []))
    assert [c["caller_num"] for c in [b for b in ups if "abandoned" in b][-1]["abandoned"]] == [CALLER]
