"""The OpenAPI schema of the assembled app (issue 20): every route has a summary, names
the permission that guards it and the roles holding it, lists its error answers; the
outgoing events of cti/events.yml appear as webhooks with a real screen-pop example."""

from __future__ import annotations

import re

import httpx
import pytest
import yaml
from fastapi.routing import APIRoute

from api.auth import declared_permissions
from api.openapi import EVENTS_FILE, api_routes
from auth.permissions import ROLE_PERMISSIONS
from callcore.app import Container
from callcore.settings import Settings


@pytest.fixture
async def running(tmp_path):
    settings = Settings(
        data_dir=tmp_path, http_port=0, only=["http"], dialplans_dir=tmp_path / "plans", dialplan_watch=False,
        api_tokens={"openapi-test-admin-token": "admin"},
    )
    (tmp_path / "plans").mkdir()
    c = Container(settings)
    await c.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{c.http_port}") as client:
            spec = (await client.get("/openapi.json")).json()
        yield c, spec
    finally:
        await c.stop()


def _routes(c: Container) -> dict[tuple[str, str], APIRoute]:
    return {(m.lower(), path): r for path, r in api_routes(c.http.config.app.routes) for m in r.methods}


async def test_every_operation_has_summary_access_and_errors(running):
    c, spec = running
    routes = _routes(c)
    ops = [(m, p, op) for p, item in spec["paths"].items() for m, op in item.items()]
    assert len(ops) >= 40
    for method, path, op in ops:
        where = f"{method.upper()} {path}"
        assert op.get("summary", "").strip(), f"{where}: no summary"
        perms, roles, public = declared_permissions(routes[(method, path)].dependant)
        desc = op.get("description", "")
        if public and not perms:
            assert "public" in desc, where
        else:
            assert "401" in op["responses"] and "403" in op["responses"], f"{where}: error answers missing"
            for perm in perms:
                m = re.search(rf"permission\*\* `{re.escape(perm)}` — roles: ([a-z_, ]+)\.", desc)
                assert m, f"{where}: permission {perm} not in the description"
                named = set(m.group(1).split(", "))
                assert named == {r for r, ps in ROLE_PERMISSIONS.items() if perm in ps}, where
            assert perms or roles, f"{where}: guarded by nothing declared"
        if "{" in path:
            assert "404" in op["responses"], f"{where}: no 404"
        if "requestBody" in op:
            assert "422" in op["responses"] and "413" in op["responses"], where


async def test_events_are_documented_as_webhooks_with_a_real_pop_example(running):
    c, spec = running
    doc = yaml.safe_load(EVENTS_FILE.read_text(encoding="utf-8"))
    assert set(spec["webhooks"]) == {e["name"] for e in doc["events"]}
    pop_schema = spec["components"]["schemas"]["ScreenPop"]
    assert set(pop_schema["example"]) == set(doc["schemas"]["pop"]) == set(pop_schema["properties"])
    ringing = spec["webhooks"]["call.ringing"]["post"]
    example = ringing["requestBody"]["content"]["application/json"]["example"]
    assert example["event"] == "call.ringing" and example["payload"]["caller_name"] == "홍길동"
    assert example["payload"]["customer"]["name"] and example["payload"]["ivr"]["flow"] == "main"
    assert "agent:<ringing agent>" in ringing["description"]
    transferred = spec["webhooks"]["call.transferred"]["post"]["requestBody"]["content"]["application/json"]["example"]
    assert "transfer" in transferred["payload"] and "call_id" in transferred["payload"]
