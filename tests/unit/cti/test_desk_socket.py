"""The desk websocket served in front of the middleware stack (issue 18 round five, cti/desk_socket.py):
same contract as the FastAPI route, one task per connection, the websocket metrics still counted."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket

import pytest
import uvicorn
import websockets

from callcore.bus import Message
from callcore.metrics import Metrics
from cti import desk_socket
from cti.ami import events as ev
from cti.testing import capture_events, wait_for
from tests.conftest import CAPTURES

from .conftest import add_agents, token

pytestmark = pytest.mark.db


class SeenByMiddleware:
    """A pure ASGI middleware that notes every connection it sees."""

    def __init__(self, app, seen: list) -> None:
        self.app, self.seen = app, seen

    async def __call__(self, scope, receive, send) -> None:
        self.seen.append((scope["type"], scope.get("path")))
        await self.app(scope, receive, send)


@contextlib.asynccontextmanager
async def serve(app):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # the implementation callcore.app serves with
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", ws="websockets-sansio"))
    task = asyncio.create_task(server.serve())
    try:
        await wait_for(lambda: server.started, timeout=5)
        yield port
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 5)


async def recv_until(ws, name, timeout=2.0):
    async with asyncio.timeout(timeout):
        while True:
            msg = json.loads(await ws.recv())
            if msg["event"] == name:
                return msg


def value(metrics: Metrics, name: str, **labels: str) -> float:
    got = metrics.registry.get_sample_value(name, labels)
    return got or 0.0


@pytest.fixture
def installed(app):
    seen: list = []
    app.add_middleware(SeenByMiddleware, seen=seen)
    metrics = Metrics()
    desk_socket.install(app, metrics)
    return app, seen, metrics


async def test_ws_is_served_in_front_of_the_middleware_with_the_same_contract(service, installed, clock):
    app, seen, metrics = installed
    await add_agents(service)
    events = capture_events(CAPTURES / "ami-ivr-queue-agent.raw")
    i = next(i for i, e in enumerate(events) if isinstance(e, ev.AgentCalled))
    async with serve(app) as port:
        url = f"ws://127.0.0.1:{port}/ws"
        async with websockets.connect(f"{url}?token=v1.e30.forged") as bad:  # refused: 4401 and a reason
            with pytest.raises(websockets.exceptions.ConnectionClosed) as refused:
                await bad.recv()
        assert refused.value.rcvd.code == 4401
        t1 = service.authenticator.issue("1001", "agent")
        async with websockets.connect(f"{url}?token={t1}") as a, websockets.connect(f"{url}?token=static-sup") as sup:
            hello = await recv_until(a, "hello")
            assert hello["payload"]["keys"] == ["agent:1001"] and hello["payload"]["agent"]["agent_id"] == "1001"
            await recv_until(sup, "hello")
            await a.send(json.dumps({"subscribe": ["queue:sales"]}))
            assert (await recv_until(a, "subscribed"))["payload"]["denied"] == ["queue:sales"]
            await sup.send(json.dumps({"subscribe": ["queue:sales"]}))
            assert "queue:sales" in (await recv_until(sup, "subscribed"))["payload"]["keys"]
            await a.send("not json")
            assert (await recv_until(a, "error"))["payload"]["detail"] == "invalid JSON"
            for e in events[: i + 1]:
                service.handle_event(e)
                clock.advance(0.5)
            pop = await recv_until(a, "call.ringing")
            assert pop["payload"]["agent_id"] == "1001" and pop["payload"]["caller_name"] == "홍길동"
            assert (await recv_until(sup, "call.ringing"))["payload"]["call_id"] == "1795395806.2"
            await a.send(json.dumps({"ping": 7}))
            assert (await recv_until(a, "pong"))["payload"] == {"ping": 7}
            # HTTP still goes through the middleware stack
            import httpx

            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                assert (await http.get("/api/agents/1001", headers=token(service, "1001"))).status_code == 200
        await wait_for(lambda: service.websocket_clients == 0)
    assert [t for t, _ in seen] == ["http"], seen  # no websocket ever reached the middleware
    assert value(metrics, "callcore_websocket_messages_total", direction="in") == 4  # subscribe ×2, bad JSON, ping
    assert value(metrics, "callcore_websocket_messages_total", direction="out") >= 8
    assert value(metrics, "callcore_websocket_disconnects_total", reason="unauthorized") == 1
    assert value(metrics, "callcore_websocket_disconnects_total", reason="client_closed") == 2


async def test_one_task_per_connected_desk(service, installed):
    app, _, _ = installed
    async with serve(app) as port:
        url = f"ws://127.0.0.1:{port}/ws"
        def server_tasks() -> int:  # the websockets client's keepalive tasks are not the server's
            return sum("site-packages/websockets/" not in t.get_coro().cr_code.co_filename for t in asyncio.all_tasks())

        before = server_tasks()
        async with contextlib.AsyncExitStack() as stack:
            socks = [await stack.enter_async_context(websockets.connect(f"{url}?token=static-sup")) for _ in range(3)]
            for ws in socks:
                await recv_until(ws, "hello")
            await wait_for(lambda: service.websocket_clients == 3)
            # the ASGI handler's task only: no reader/writer tasks next to it
            assert server_tasks() - before == 3
            service.bus.publish(Message("m", {"n": 1}, frozenset({"supervisor"})))
            for ws in socks:
                assert (await recv_until(ws, "m"))["payload"] == {"n": 1}
        await wait_for(lambda: service.websocket_clients == 0)
        assert service.bus.subscriber_count == 0


async def test_a_session_ends_when_the_server_stops(service, installed):
    app, _, metrics = installed
    async with serve(app) as port:
        ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws?token=static-sup")
        await recv_until(ws, "hello")
        await wait_for(lambda: service.websocket_clients == 1)
    with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
        await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd.code == 1012  # uvicorn's "service restart"
    assert service.websocket_clients == 0 and service.bus.subscriber_count == 0


@pytest.mark.parametrize("deflate", [False, True])
async def test_permessage_deflate_only_when_configured(service, installed, deflate):
    """Browsers offer permessage-deflate; by default callcore declines it (per-socket zlib memory,
    per-socket compression of every message), ``ws_per_message_deflate`` turns it on."""
    from callcore.app import uvicorn_config
    from callcore.settings import Settings

    app, _, _ = installed
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn_config(app, Settings(http_host="127.0.0.1", http_port=port, ws_per_message_deflate=deflate))
    assert config.ws == "websockets-sansio"
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        await wait_for(lambda: server.started, timeout=5)
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws?token=static-sup", compression="deflate") as ws:
            await recv_until(ws, "hello")
            extensions = ws.response.headers.get("Sec-WebSocket-Extensions")
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 5)
    assert (extensions is not None and "permessage-deflate" in extensions) is deflate
