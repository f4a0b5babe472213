"""The websocket authenticates without a token in a logged URL: bearer subprotocol, session
cookie (same origin only), first message; bad credentials are refused at the handshake."""

from __future__ import annotations

import json

import pytest
import websockets

from api.auth import WS_BAD_CREDENTIAL, WS_NO_CREDENTIAL

pytestmark = pytest.mark.db


@pytest.fixture
async def live(tmp_path, migrated_database_url):
    from callcore.app import Container
    from callcore.settings import Settings

    (tmp_path / "plans").mkdir()
    c = Container(Settings(
        data_dir=tmp_path / "data", database_url=migrated_database_url, only=["http"], http_port=0,
        dialplans_dir=tmp_path / "plans", dialplan_watch=False, dev_mode=True,
    ))
    await c.start()
    try:
        yield c, f"ws://127.0.0.1:{c.http_port}/ws", f"http://127.0.0.1:{c.http_port}"
    finally:
        await c.stop()


async def _hello(ws) -> dict:
    return json.loads(await ws.recv())


async def test_bearer_subprotocol(live):
    c, url, _ = live
    token = c.authenticator.issue("user:s", "supervisor")
    async with websockets.connect(url, subprotocols=["callcore", f"bearer.{token}"]) as ws:
        assert ws.subprotocol == "callcore"
        hello = await _hello(ws)
        assert hello["event"] == "hello" and hello["payload"]["role"] == "supervisor" and "supervisor" in hello["payload"]["keys"]


async def test_first_message_auth_and_its_deadline(live):
    c, url, _ = live
    token = c.authenticator.issue("1001", "agent")
    async with websockets.connect(url, subprotocols=["callcore"]) as ws:
        await ws.send(json.dumps({"auth": token}))
        assert (await _hello(ws))["payload"]["keys"] == ["agent:1001"]
    async with websockets.connect(url, subprotocols=["callcore"]) as ws:
        await ws.send(json.dumps({"auth": "forged"}))
        with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd.code == 4401


async def test_session_cookie_same_origin_only(live):
    import httpx

    c, url, base = live
    await c.auth.create_user(None, id="sup", password="correct horse battery", name="S", role="supervisor")
    async with httpx.AsyncClient(base_url=base) as http:
        r = await http.post("/api/auth/session", json={"username": "sup", "password": "correct horse battery"})
        cookie = f"callcore_session={r.cookies['callcore_session']}"
    async with websockets.connect(url, additional_headers={"Cookie": cookie, "Origin": base}) as ws:
        assert (await _hello(ws))["payload"]["subject"] == "user:sup"
    # cross-site page riding the cookie: no credential counts
    assert await _refusal(url, additional_headers={"Cookie": cookie, "Origin": "http://evil.example"}) == (
        4401, WS_NO_CREDENTIAL)


async def _refusal(url: str, **kwargs) -> tuple[int, str]:
    """Connect and return the close (code, reason) the server sent before any message."""
    async with websockets.connect(url, **kwargs) as ws:
        with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
            await ws.recv()
    return closed.value.rcvd.code, closed.value.rcvd.reason


async def test_bad_or_missing_credentials_are_refused_with_4401_and_a_reason(live):
    # issue 20: a close code and reason reach the client (a bare HTTP 403 tells a browser nothing)
    c, url, _ = live
    assert await _refusal(url) == (4401, WS_NO_CREDENTIAL)
    for kwargs in ({"subprotocols": ["bearer.forged"]}, {"additional_headers": {"Authorization": "Bearer nope"}}):
        assert await _refusal(url, **kwargs) == (4401, WS_BAD_CREDENTIAL), kwargs
