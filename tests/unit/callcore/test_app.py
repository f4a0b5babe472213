"""The assembled HTTP app (real composition root, HTTP part only): every router mounted,
OpenAPI builds, authentication everywhere, bad requests get clear 4xx answers."""

from __future__ import annotations

import httpx
import pytest

from callcore.app import Container
from callcore.settings import Settings

ADMIN = {"Authorization": "Bearer app-test-admin"}


@pytest.fixture
async def app_client(tmp_path, empty_database_url):
    if empty_database_url.startswith("postgresql"):
        import asyncio

        from callcore import migrate

        await asyncio.to_thread(migrate.upgrade, empty_database_url)
    settings = Settings(
        data_dir=tmp_path, database_url=empty_database_url, http_port=0, only=["http"],
        dialplans_dir=tmp_path / "plans", dialplan_watch=False, api_tokens={"app-test-admin": "admin"},
    )
    (tmp_path / "plans").mkdir()
    c = Container(settings)
    await c.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{c.http_port}") as client:
            yield client
    finally:
        await c.stop()


async def test_openapi_lists_every_part(app_client):
    spec = (await app_client.get("/openapi.json")).json()
    paths = set(spec["paths"])
    for p in ("/healthz", "/readyz", "/metrics", "/api/agents", "/api/calls/{call_id}/transfer", "/api/queues",
              "/api/customers", "/api/callbacks", "/api/dialplans/reload", "/api/ivr/stats",
              "/api/supervisor/agents/{agent_id}/force-pause"):
        assert p in paths, p
    assert (await app_client.get("/docs")).status_code == 200


#: the logins: the credential is the request itself (api.auth.public)
PUBLIC_LOGINS = {"/api/auth/login", "/api/auth/token", "/api/auth/refresh"}


async def test_every_api_route_needs_a_token(app_client):
    spec = (await app_client.get("/openapi.json")).json()
    for path, ops in spec["paths"].items():
        if not path.startswith("/api/") or path in PUBLIC_LOGINS:
            continue
        for method in ops:
            if (method, path) == ("post", "/api/auth/session"):
                continue  # the browser login itself
            url = path.replace("{", "").replace("}", "")  # any value: auth comes before lookup
            r = await app_client.request(method.upper(), url, json={})
            assert r.status_code == 401, f"{method.upper()} {path} answered {r.status_code} without a token"


async def test_bad_requests_are_clear_4xx_never_500(app_client):
    r = await app_client.post("/api/agents", content=b"{not json", headers={**ADMIN, "Content-Type": "application/json"})
    assert r.status_code == 422
    r = await app_client.post("/api/agents", json={"id": "bad id!", "name": "x", "interface": "Local/1@a/n"}, headers=ADMIN)
    assert r.status_code == 422
    r = await app_client.post("/api/calls/nope/hangup", headers=ADMIN)
    assert r.status_code == 404
    r = await app_client.post("/api/agents/ghost/login", headers=ADMIN, json={})
    assert r.status_code == 404
    # no AMI part in this process: call control says so instead of pretending
    await app_client.post(
        "/api/agents", headers=ADMIN,
        json={"id": "1001", "name": "A", "interface": "Local/1001@agents/n", "skills": [{"queue": "sales"}]},
    )
    r = await app_client.post(
        "/api/calls/click-to-call", headers=ADMIN, json={"agent_id": "1001", "number": "01012345678\r\nAction: Hangup"}
    )
    assert r.status_code == 422  # a CR/LF never reaches an AMI header
    r = await app_client.post("/api/agents/1001/login", headers=ADMIN, json={})
    assert r.status_code == 503 and "AMI" in r.json()["detail"]
