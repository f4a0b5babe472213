"""Queue and team scopes on the CTI edge (issue 11): a supervisor limited to queues or teams
sees and acts on only their agents, callbacks and calls (auth/scope.py)."""

from __future__ import annotations

import pytest

from api.auth import Principal
from cti.errors import Forbidden
from tests.unit.cti.test_service import _talking_call

from .conftest import add_agents

pytestmark = pytest.mark.db


def _h(service, subject, role="supervisor", queues=(), teams=()):
    return {"Authorization": f"Bearer {service.authenticator.issue(subject, role, queues=queues, teams=teams)}"}


async def test_agents_list_and_supervisor_actions_follow_queue_and_team_scopes(service, client):
    await add_agents(service)  # 1001 sales+support, 1002 support, 1003 sales, sup1
    await service.agents.update_agent("1002", team="B")
    await service.agents.update_agent("1003", team="A")
    sales = _h(service, "user:s", queues=["sales"])
    team_b = _h(service, "user:t", teams=["B"])
    ids = lambda r: sorted(a["id"] for a in r.json())  # noqa: E731
    assert ids(await client.get("/api/agents", headers=sales)) == ["1001", "1003"]
    assert ids(await client.get("/api/agents", headers=team_b)) == ["1002"]
    assert ids(await client.get("/api/agents", headers=_h(service, "user:all"))) == ["1001", "1002", "1003", "sup1"]
    assert (await client.get("/api/agents/1002", headers=team_b)).json()["team"] == "B"

    r = await client.post("/api/supervisor/agents/1002/force-pause", json={"reason": "meeting"}, headers=sales)
    assert r.status_code == 403 and "scope" in r.json()["detail"]
    r = await client.post("/api/supervisor/agents/1003/force-logout", headers=team_b)
    assert r.status_code == 403
    assert (await client.post("/api/agents/1002/pause", json={"reason": "meeting"}, headers=sales)).status_code == 403
    assert (await client.get("/api/agents/1002", headers=sales)).status_code == 403
    r = await client.post("/api/supervisor/agents/1002/listen", json={"interface": "SIP/2001"}, headers=sales)
    assert r.status_code == 403  # before any AMI action
    assert (await client.post("/api/agents/1002/login", headers=team_b)).status_code == 200  # in scope: allowed


async def test_callbacks_follow_the_queue_scope(service, client):
    await add_agents(service)
    admin = {"Authorization": "Bearer static-admin"}
    sales_cb = (await client.post("/api/callbacks", json={"number": "0101111", "queue": "sales"}, headers=admin)).json()["id"]
    support_cb = (await client.post("/api/callbacks", json={"number": "0102222", "queue": "support"}, headers=admin)).json()["id"]
    sales_sup = _h(service, "sup1", queues=["sales"])  # sup1 is also an agent record (it may take callbacks)
    assert [c["id"] for c in (await client.get("/api/callbacks", headers=sales_sup)).json()] == [sales_cb]
    everyone = (await client.get("/api/callbacks", headers=_h(service, "sup1"))).json()
    assert sorted(c["id"] for c in everyone) == sorted([sales_cb, support_cb])
    r = await client.post(f"/api/callbacks/{support_cb}/take", headers=sales_sup)
    assert r.status_code == 403 and "scope" in r.json()["detail"]
    assert (await client.post(f"/api/callbacks/{sales_cb}/take", headers=sales_sup)).json()["status"] == "taken"


async def test_spying_on_a_call_of_a_queue_outside_the_scope_is_refused(service, ami, clock):
    await service.agents.create_agent(id="1001", name="A", interface="Local/1001@agents-long/n", skills={"sales": 0, "support": 0})
    await service.agents.create_agent(id="sup1", name="S", interface="SIP/2001", role="supervisor")
    await _talking_call(service, clock)  # 1001 talks to a caller of queue sales
    call = service.state.call_for_agent("1001")
    assert call is not None and call.queue == "sales"
    support_only = Principal("sup1", "supervisor", queues=frozenset({"support"}))
    before = len(ami.of("Originate"))
    with pytest.raises(Forbidden):
        await service.supervision.spy(support_only, "1001", "listen")
    assert len(ami.of("Originate")) == before  # nothing was sent to Asterisk
    await service.supervision.spy(Principal("sup1", "supervisor", queues=frozenset({"sales"})), "1001", "listen")
    assert len(ami.of("Originate")) == before + 1


async def test_a_queue_scoped_supervisors_feed_carries_only_its_queues(service, app, clock):
    """The websocket: the 'supervisor' feed and queue.stats of a supervisor limited to support
    carry nothing about a sales call (the capture's call is in sales)."""
    import asyncio
    import json

    import websockets

    from cti.ami import events as ev
    from cti.testing import capture_events
    from tests.conftest import CAPTURES
    from tests.unit.cti.test_routes import recv_until, serve

    await add_agents(service)
    events = capture_events(CAPTURES / "ami-ivr-queue-agent.raw")
    sales_sup = service.authenticator.issue("user:s", "supervisor", queues=["sales"])
    support_sup = service.authenticator.issue("user:t", "supervisor", queues=["support"])
    async with serve(app) as url:
        async with websockets.connect(f"{url}?token={sales_sup}") as a, websockets.connect(f"{url}?token={support_sup}") as b:
            for ws in (a, b):
                await recv_until(ws, "hello")
                await ws.send(json.dumps({"subscribe": ["queue.stats"]}))
                keys = (await recv_until(ws, "subscribed"))["payload"]["keys"]
                assert "queue.stats" not in keys  # the per-queue keys of its scope instead
            for e in events:
                service.handle_event(e)
                clock.advance(0.5)
            assert (await recv_until(a, "call.answered"))["payload"]["queue"] == "sales"
            await asyncio.sleep(0.3)  # b's writer has sent whatever the bus gave it (the pong does not queue behind it)
            await b.send(json.dumps({"ping": 1}))
            seen = []
            async with asyncio.timeout(3):
                while (msg := json.loads(await b.recv()))["event"] != "pong":
                    seen.append(msg)
            assert not [m for m in seen if m["event"].startswith("call.")]
            assert not [m for m in seen if m["event"] == "queue.stats"
                        and any(q["queue"] != "support" for q in m["payload"]["queues"])]
