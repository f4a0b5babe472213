"""REST and websocket edge: auth, authorization of pops, HTTP error mapping."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket

import pytest
import uvicorn
import websockets

from cti.ami import events as ev
from cti.ami.actions import AmiActionError, AmiNotConnected
from cti.testing import capture_events, wait_for
from tests.conftest import CAPTURES

from .conftest import add_agents, token

pytestmark = pytest.mark.db


def feed(service, clock, events, step=0.5):
    for e in events:
        service.handle_event(e)
        clock.advance(step)


async def test_pin_login_and_authorization(service, client):
    await add_agents(service)
    r = await client.post("/api/auth/login", json={"agent_id": "1001", "pin": "0000"})
    assert r.status_code == 403
    r = await client.post("/api/auth/login", json={"agent_id": "1001", "pin": "4321"})
    assert r.status_code == 200 and r.json()["role"] == "agent"
    h = {"Authorization": f"Bearer {r.json()['token']}"}
    assert (await client.get("/api/auth/me", headers=h)).json()["agent_id"] == "1001"

    assert (await client.get("/api/agents/1001")).status_code == 401
    assert (await client.get("/api/agents/1001", headers=h)).status_code == 200
    assert (await client.get("/api/agents/1002", headers=h)).status_code == 403
    assert (await client.get("/api/agents", headers=h)).status_code == 403
    assert (await client.post("/api/agents/1002/pause", json={"reason": "lunch"}, headers=h)).status_code == 403
    # static integration token from settings.api_tokens
    r = await client.get("/api/agents", headers={"Authorization": "Bearer static-sup"})
    assert r.status_code == 200 and [a["id"] for a in r.json()] == ["1001", "1002", "1003", "sup1"]
    r = await client.get("/api/agents/1001?token=static-1001")
    assert r.status_code == 200


async def test_agent_crud_is_admin_only(service, client):
    body = {"id": "1005", "name": "New", "interface": "PJSIP/1005", "skills": [{"queue": "sales", "penalty": 2}], "pin": "5555"}
    assert (await client.post("/api/agents", json=body, headers=token(service, "sup1", "supervisor"))).status_code == 403
    admin = {"Authorization": "Bearer static-admin"}
    r = await client.post("/api/agents", json=body, headers=admin)
    assert r.status_code == 201 and r.json()["skills"] == [{"queue": "sales", "penalty": 2}]
    assert (await client.post("/api/agents", json=body, headers=admin)).status_code == 409
    r = await client.put("/api/agents/1005", json={"name": "Renamed"}, headers=admin)
    assert r.json()["name"] == "Renamed"
    assert (await client.delete("/api/agents/1005", headers=admin)).status_code == 204
    assert (await client.get("/api/agents/1005", headers=admin)).status_code == 404


async def test_login_pause_via_rest_and_ami_down(service, client, ami):
    await add_agents(service)
    h = token(service, "1002")
    r = await client.post("/api/agents/1002/login", headers=h)
    assert r.status_code == 200 and r.json()["logged_in"] is True
    assert [a.get("Queue") for a in ami.of("QueueAdd")] == ["support"]
    service.handle_event(ev.QueueMemberAdded(ev.MemberInfo.parse({"Queue": "support", "Interface": "Local/1002@agents/n", "Status": "1"})))
    r = await client.post("/api/agents/1002/pause", json={"reason": "nap"}, headers=h)
    assert r.status_code == 422
    r = await client.post("/api/agents/1002/pause", json={"reason": "break"}, headers=h)
    assert r.status_code == 200 and r.json()["pause_reason"] == "break"
    ami.down = AmiNotConnected("AMI is reconnecting")
    r = await client.post("/api/agents/1002/unpause", headers=h)
    assert r.status_code == 503 and "not connected" in r.json()["detail"]
    ami.down = None
    ami.script("QueuePause", AmiActionError("QueuePause", "Interface not found"))
    r = await client.post("/api/agents/1002/unpause", headers=h)
    assert r.status_code == 404
    assert (await client.get("/api/pause-reasons", headers=h)).json() == ["break", "lunch", "training", "meeting", "admin"]


async def test_calls_rest_and_current_call(service, client, clock, ami):
    await service.agents.create_agent(id="1001", name="A", interface="Local/1001@agents-long/n", skills={"sales": 0})
    await service.agents.create_agent(id="1002", name="B", interface="Local/1002@agents/n", skills={"sales": 0})
    events = capture_events(CAPTURES / "ami-resync-snapshot.raw")
    i = max(i for i, e in enumerate(events) if isinstance(e, ev.QueueCallerJoin))
    feed(service, clock, events[: i + 1])
    h1, h2, hs = token(service, "1001"), token(service, "1002"), {"Authorization": "Bearer static-sup"}

    r = await client.get("/api/agents/1001/current-call", headers=h1)
    assert r.json()["call"]["call_id"] == "1795396653.40" and r.json()["call"]["caller_num"] == "01033332222"
    assert (await client.get("/api/agents/1002/current-call", headers=h2)).json()["call"] is None
    assert [c["call_id"] for c in (await client.get("/api/calls", headers=h1)).json()] == ["1795396653.40"]
    assert (await client.get("/api/calls", headers=h2)).json() == []
    assert len((await client.get("/api/calls", headers=hs)).json()) == 2
    assert (await client.get("/api/calls/1795396653.40", headers=h2)).status_code == 403
    assert (await client.get("/api/calls/nope", headers=hs)).status_code == 404

    assert (await client.post("/api/calls/nope/hangup", headers=hs)).status_code == 404
    assert (await client.post("/api/calls/1795396653.40/hangup", headers=h2)).status_code == 403
    ami.script("Hangup", AmiActionError("Hangup", "No such channel"))
    assert (await client.post("/api/calls/1795396653.40/hangup", headers=h1)).status_code == 404
    r = await client.post("/api/calls/1795396653.44/transfer", json={"type": "queue", "target": "sales"}, headers=hs)
    assert r.status_code == 409
    r = await client.post("/api/calls/1795396653.40/transfer", json={"type": "number", "target": "0212345678"}, headers=h1)
    assert r.status_code == 202 and ami.of("Redirect")[-1].get("Exten") == "0212345678"
    r = await client.post("/api/calls/1795396653.40/dtmf", json={"digits": "9"}, headers=h1)
    assert r.status_code == 202
    r = await client.post("/api/calls/1795396653.40/hold", headers=h1)
    assert r.status_code == 202 and r.json()["on_hold"] is True
    r = await client.post("/api/calls/click-to-call", json={"number": "0101"}, headers=h1)
    assert r.status_code == 409  # agent is on a call
    r = await client.post("/api/calls/click-to-call", json={"number": "0101"}, headers=h2)
    assert r.status_code == 202 and ami.of("Originate")[-1].get("Channel") == "Local/1002@agents"

    feed(service, clock, events[i + 1 :])
    await service.idle()
    assert (await client.post("/api/calls/1795396653.40/hangup", headers=h1)).status_code == 409  # ended
    r = await client.post("/api/calls/1795396653.40/disposition", json={"disposition": "resolved"}, headers=h1)
    assert r.status_code == 200
    r = await client.get("/api/calls/1795396653.40", headers=h1)
    assert r.json()["disposition"] == "resolved" and r.json()["status"] == "ended"
    hist = (await client.get("/api/calls/history", headers=h1)).json()
    assert [c["call_id"] for c in hist] == ["1795396653.40"]


async def test_customers_builtin_crm_and_queues(service, client):
    h = {"Authorization": "Bearer static-sup"}
    r = await client.post("/api/customers", json={"name": "이영희", "phone": "01099998888", "phones": ["0299998888"], "vip": True}, headers=h)
    assert r.status_code == 201
    cid = r.json()["id"]
    assert (await client.post(f"/api/customers/{cid}/notes", json={"text": "VIP since 2020"}, headers=h)).status_code == 201
    r = await client.get("/api/customers/lookup", params={"phone": "0299998888"}, headers=h)
    assert r.status_code == 200 and r.json()["name"] == "이영희" and r.json()["notes"][0]["text"] == "VIP since 2020"
    assert r.json()["previous_calls"] == []
    assert (await client.get("/api/customers/lookup", params={"phone": "000"}, headers=h)).status_code == 404
    r = await client.put(f"/api/customers/{cid}", json={"company": "ACME"}, headers=h)
    assert r.json()["company"] == "ACME"
    assert [c["id"] for c in (await client.get("/api/customers?q=998", headers=h)).json()] == [cid]
    assert (await client.delete(f"/api/customers/{cid}", headers=h)).status_code == 204
    assert (await client.get(f"/api/customers/{cid}", headers=h)).status_code == 404

    r = await client.put("/api/queues/sales/settings", json={"wrapup_seconds": 5, "overflow_queue": "support"}, headers=h)
    assert r.status_code == 200 and service.state.settings_for("sales").overflow_queue == "support"
    qs = (await client.get("/api/queues", headers=h)).json()
    assert [q["queue"] for q in qs] == ["sales"] and qs[0]["waiting"] == 0


async def test_callbacks_rest(service, client):
    await add_agents(service)
    hs = {"Authorization": "Bearer static-sup"}
    r = await client.post("/api/callbacks", json={"number": "0101234", "queue": "support"}, headers=hs)
    assert r.status_code == 201
    cb = r.json()["id"]
    h2 = token(service, "1002")
    assert [c["id"] for c in (await client.get("/api/callbacks", headers=h2)).json()] == [cb]
    assert (await client.post(f"/api/callbacks/{cb}/take", headers=h2)).json()["status"] == "taken"
    assert (await client.post(f"/api/callbacks/{cb}/take", headers=token(service, "1001"))).status_code == 409
    assert (await client.post(f"/api/callbacks/{cb}/dial", headers=h2)).status_code == 202


# ---------------------------------------------------------------- websocket
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.asynccontextmanager
async def serve(app):
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    try:
        await wait_for(lambda: server.started, timeout=5)
        yield f"ws://127.0.0.1:{port}/ws"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 5)


async def recv_until(ws, name, timeout=2.0):
    async with asyncio.timeout(timeout):
        while True:
            msg = json.loads(await ws.recv())
            if msg["event"] == name:
                return msg


async def test_websocket_pops_reach_only_their_agent(service, app, clock):
    await add_agents(service)
    events = capture_events(CAPTURES / "ami-ivr-queue-agent.raw")
    i = next(i for i, e in enumerate(events) if isinstance(e, ev.AgentCalled))
    async with serve(app) as url:
        # no token / a forged token: refused with close code 4401 before any message
        for bad in (url, f"{url}?token=v1.e30.forged"):
            async with websockets.connect(bad) as ws:
                with pytest.raises(websockets.exceptions.ConnectionClosed) as refused:
                    await ws.recv()
            assert refused.value.rcvd.code == 4401
        t1 = service.authenticator.issue("1001", "agent")
        t2 = service.authenticator.issue("1002", "agent")
        async with websockets.connect(f"{url}?token={t1}") as a, websockets.connect(url, additional_headers={"Authorization": f"Bearer {t2}"}) as b, websockets.connect(f"{url}?token=static-sup") as sup:
            for ws in (a, b, sup):
                await recv_until(ws, "hello")
            await wait_for(lambda: service.websocket_clients == 3)
            # agent B tries to listen to A's desk and the queue: refused
            await b.send(json.dumps({"subscribe": ["agent:1001", "queue:sales"]}))
            sub = await recv_until(b, "subscribed")
            assert sub["payload"]["denied"] == ["agent:1001", "queue:sales"]
            await sup.send(json.dumps({"subscribe": ["queue:sales"]}))
            assert "queue:sales" in (await recv_until(sup, "subscribed"))["payload"]["keys"]

            feed(service, clock, events[: i + 1])
            pop = await recv_until(a, "call.ringing")
            assert pop["payload"]["agent_id"] == "1001" and pop["payload"]["caller_name"] == "홍길동"
            assert (await recv_until(sup, "call.ringing"))["payload"]["call_id"] == "1795395806.2"
            feed(service, clock, events[i + 1 :])
            await recv_until(a, "call.ended")
            # B got nothing about the call: ping/pong proves the stream is flowing and empty of pops
            await b.send(json.dumps({"ping": 1}))
            seen = []
            async with asyncio.timeout(2):
                while True:
                    msg = json.loads(await b.recv())
                    if msg["event"] == "pong":
                        break
                    seen.append(msg["event"])
            assert not [e for e in seen if e.startswith("call.")]
        await wait_for(lambda: service.websocket_clients == 0)


async def test_websocket_queue_stats_feed(service, app):
    async with serve(app) as url:
        async with websockets.connect(f"{url}?token=static-sup") as sup:
            await recv_until(sup, "hello")
            await sup.send(json.dumps({"subscribe": ["queue.stats"]}))
            await recv_until(sup, "subscribed")
            service.handle_event(ev.QueueMemberAdded(ev.MemberInfo.parse({"Queue": "sales", "Interface": "Local/1001@agents/n", "Status": "1"})))
            stats = await recv_until(sup, "queue.stats")
            (sales,) = [q for q in stats["payload"]["queues"] if q["queue"] == "sales"]
            assert sales["agents"] == {"ready": 1} and sales["available"] == 1


async def test_pause_reasons_are_configurable(service, client):
    await add_agents(service)
    admin = {"Authorization": "Bearer static-admin"}
    assert (await client.put("/api/pause-reasons/coaching", json={"label": "Coaching"}, headers=token(service, "1001"))).status_code == 403
    r = await client.put("/api/pause-reasons/coaching", json={"label": "Coaching"}, headers=admin)
    assert r.status_code == 200 and "coaching" in r.json()
    r = await client.put("/api/pause-reasons/lunch", json={"active": False}, headers=admin)
    assert "lunch" not in r.json()
    assert (await client.put("/api/pause-reasons/wrapup", json={}, headers=admin)).status_code == 422
    assert await service.repository.pause_reasons() == [
        {"code": "coaching", "label": "Coaching", "active": True},
        {"code": "lunch", "label": "lunch", "active": False},
    ]


async def test_websocket_hello_carries_the_recording_pause(service, app, clock):
    """After a reconnect the desk's PCI badge comes back: the hello's call has ``rec_paused`` (issue 14)."""
    from recording.service import Live, RecordingService

    await service.agents.create_agent(id="1001", name="A", interface="Local/1001@agents-long/n", skills={"sales": 0})
    events = capture_events(CAPTURES / "ami-resync-snapshot.raw")
    i = max(i for i, e in enumerate(events) if isinstance(e, ev.QueueCallerJoin))
    feed(service, clock, events[: i + 1])
    rec = RecordingService.__new__(RecordingService)  # only its live-call map is read by the hello
    rec.live = {}
    app.state.recording = rec
    t1 = service.authenticator.issue("1001", "agent")
    async with serve(app) as url:
        async with websockets.connect(f"{url}?token={t1}") as ws:
            hello = await recv_until(ws, "hello")
        assert hello["payload"]["call"]["call_id"] == "1795396653.40"
        assert hello["payload"]["call"]["rec_paused"] is False
        live = Live.__new__(Live)
        live.muted_at = 12.5
        rec.live["1795396653.40"] = live
        async with websockets.connect(f"{url}?token={t1}") as ws:
            hello = await recv_until(ws, "hello")
        assert hello["payload"]["call"]["rec_paused"] is True
