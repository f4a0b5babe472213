"""Call control on an instance that does not hold AMI goes to the holder (issue 19,
callcore/cluster.py), over a relay double: the HTTP edge's answers for each outcome."""

from __future__ import annotations

import base64

import httpx
from fastapi import FastAPI

from callcore.cluster import HolderForwarding, asgi_replayer, forwarded


def _app() -> FastAPI:
    app = FastAPI()

    @app.post("/api/agents/{agent_id}/pause")
    async def pause(agent_id: str, body: dict) -> dict:
        return {"agent": agent_id, "reason": body["reason"], "served_by": "holder"}

    @app.get("/api/reports/x")
    async def reports() -> dict:
        return {"served_by": "local"}

    return app


class Relay:
    def __init__(self, handler=None, error: Exception | None = None) -> None:
        self.handler, self.error, self.requests = handler, error, []

    async def request(self, subject: str, body: dict, timeout: float) -> dict:
        self.requests.append((subject, body))
        if self.error is not None:
            raise self.error
        return await self.handler(body)


def _client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://cc")


def test_forwarded_paths() -> None:
    assert forwarded("/api/agents") and forwarded("/api/agents/1001/pause") and forwarded("/api/calls/c1/hold")
    assert not forwarded("/api/agentsX") and not forwarded("/api/reports/queues") and not forwarded("/api/auth/login")


async def test_a_standby_forwards_call_control_and_answers_with_the_holders_response() -> None:
    holder = asgi_replayer(_app())
    relay = Relay(holder)
    standby = HolderForwarding(_app(), "pbx1", lambda: False, relay)
    async with _client(standby) as c:
        r = await c.post("/api/agents/1001/pause?x=1", json={"reason": "break"}, headers={"Authorization": "Bearer t"})
        assert r.status_code == 200 and r.json() == {"agent": "1001", "reason": "break", "served_by": "holder"}
        subject, body = relay.requests[0]
        assert subject == "ami.pbx1.http" and body["query"] == "x=1" and body["method"] == "POST"
        assert ["authorization", "Bearer t"] in body["headers"]  # the holder checks the same credential
        assert base64.b64decode(body["body"]) == b'{"reason":"break"}'
        r = await c.get("/api/reports/x")  # served from the shared database by any instance
        assert r.json() == {"served_by": "local"} and len(relay.requests) == 1
    await holder.aclose()


async def test_the_holder_serves_locally() -> None:
    relay = Relay(error=AssertionError("must not forward"))
    async with _client(HolderForwarding(_app(), "pbx1", lambda: True, relay)) as c:
        r = await c.post("/api/agents/1001/pause", json={"reason": "break"})
        assert r.json()["served_by"] == "holder" and relay.requests == []


async def test_no_holder_is_503_and_no_answer_is_504_never_retried() -> None:
    for error, status, words in ((TimeoutError("nobody serves ami.pbx1.http"), 503, "no instance holds AMI"),
                                 (TimeoutError("no answer in 15 s"), 504, "may have been carried out"),
                                 (ConnectionError("broker away"), 503, "broker not connected")):
        relay = Relay(error=error)
        async with _client(HolderForwarding(_app(), "pbx1", lambda: False, relay)) as c:
            r = await c.post("/api/calls/c1/hangup", json={})
            assert r.status_code == status and words in r.json()["detail"], (status, r.text)
            assert len(relay.requests) == 1  # sent once, not retried


async def test_an_oversized_body_is_413() -> None:
    relay = Relay(error=AssertionError("must not forward"))
    async with _client(HolderForwarding(_app(), "pbx1", lambda: False, relay, max_body=10)) as c:
        r = await c.post("/api/agents/1001/pause", json={"reason": "x" * 100})
        assert r.status_code == 413 and relay.requests == []
