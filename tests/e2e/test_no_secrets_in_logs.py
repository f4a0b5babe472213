"""No secret, token, PIN or sensitive customer field in any log line of a whole-server run
(issue 11): the logs of an e2e session are captured at DEBUG and grepped."""

from __future__ import annotations

import logging

import websockets
from sqlalchemy import text

from tests.e2e.conftest import ADMIN_TOKEN

RRN = "900101-1234567"


async def test_logs_of_an_e2e_run_hold_no_secret(server, caplog):
    caplog.set_level(logging.DEBUG)
    s = server
    agent_token = await s.create_agent("1001", "Kim", ["sales"], pin="864209")
    login = await s.api("POST", "/api/auth/token", json={"username": "1001", "password": "864209"}, expect=200)
    refresh = login["refresh_token"]
    await s.api("POST", "/api/auth/refresh", json={"refresh_token": refresh}, expect=200)
    key = (await s.api("POST", "/api/api-keys", json={"name": "crm", "role": "supervisor"}, expect=201))["key"]
    await s.api("GET", "/api/queues", token=key, expect=200)
    customer = await s.api(
        "POST", "/api/customers", json={"name": "홍길동", "phone": "01012345678", "attributes": {"rrn": RRN}}, expect=201
    )
    assert customer["attributes"]["rrn"] == RRN  # the admin holds customers.sensitive
    async with s.container.engine.connect() as conn:  # at rest: sealed (AES-GCM)
        stored = (await conn.execute(text("SELECT attributes FROM cti_customers WHERE id = :i"), {"i": customer["id"]})).scalar_one()
    assert RRN not in str(stored) and "enc:v1:" in str(stored)
    await s.http.get(f"/api/agents/1001?token={agent_token}")  # the legacy query token, on REST
    # the legacy websocket URL token: uvicorn logs the path of every websocket handshake
    async with websockets.connect(f"{s.base_url.replace('http', 'ws')}/ws?token={agent_token}") as ws:
        await ws.recv()
    await s.api("POST", "/api/auth/login", json={"agent_id": "1001", "pin": "wrong-pin-0000"}, expect=401)

    logged = "\n".join(f"{r.name}: {r.getMessage()}" for r in caplog.records)
    secrets = {
        "agent access token": agent_token,
        "refresh token": refresh,
        "API key": key,
        "static admin token": ADMIN_TOKEN,
        "PIN": "864209",
        "wrong PIN": "wrong-pin-0000",
        "resident number": RRN,
        "AMI secret": s.container.settings.ami_secret.get_secret_value(),
        "signing key": s.container.authenticator.keys.signing_key()[1].decode(),
    }
    leaked = [name for name, value in secrets.items() if value and value in logged]
    assert not leaked, f"in the logs: {leaked}"
    assert "token=***" in logged, "the websocket/REST URL with a token was not logged at all: the test proves nothing"
