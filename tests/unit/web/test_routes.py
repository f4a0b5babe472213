"""The web UI's HTTP edge on the assembled app: the page and its modules, /docs offline,
the UI's read views, follow-ups, and the dialplan admin views (version, diff, graph)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import httpx
import pytest

from callcore.app import Container
from callcore.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
ADMIN = {"Authorization": "Bearer web-test-admin"}


@pytest.fixture
async def app(tmp_path, migrated_database_url):
    plans = tmp_path / "plans"
    shutil.copytree(ROOT / "dialplans", plans)
    settings = Settings(
        data_dir=tmp_path, database_url=migrated_database_url, http_port=0, only=["http"],
        dialplans_dir=plans, dialplan_watch=False, api_tokens={"web-test-admin": "admin"},
    )
    c = Container(settings)
    await c.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{c.http_port}") as client:
            yield client, plans
    finally:
        await c.stop()


async def test_the_page_and_every_module_it_imports_are_served_with_relative_urls(app):
    client, _ = app
    page = await client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="static/app.js">' in page.text
    seen: set[str] = set()
    todo = ["static/app.js", "static/style.css"]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        r = await client.get("/" + path)
        assert r.status_code == 200, path
        text = r.text
        assert "localhost" not in text and "127.0.0.1" not in text, f"{path} names a host"
        assert not re.search(r"https?://", text.replace("http://www.w3.org/2000/svg", "")), f"{path} loads from another site"
        base = path.rsplit("/", 1)[0]
        for rel in re.findall(r"""(?:from|import)\s*\(?\s*["'](\.{1,2}/[^"']+)["']""", text):
            parts = (base + "/" + rel).split("/")
            out: list[str] = []
            for part in parts:
                if part == "..":
                    out.pop()
                elif part != ".":
                    out.append(part)
            todo.append("/".join(out))
    assert {"static/agent/agent.js", "static/wallboard/wallboard.js", "static/admin/admin.js", "static/core/ws.js", "static/core/i18n.js"} <= seen
    assert (await client.get("/static/../web/routes.py")).status_code == 404


async def test_docs_work_offline_from_the_vendored_swagger_ui(app):
    client, _ = app
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in docs.text and "/static/vendor/swagger-ui/swagger-ui.css" in docs.text
    assert "cdn" not in docs.text.lower()
    js = await client.get("/static/vendor/swagger-ui/swagger-ui-bundle.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"] and len(js.content) > 500_000
    assert (await client.get("/static/vendor/swagger-ui/swagger-ui.css")).status_code == 200
    assert (await client.get("/redoc")).status_code == 404  # ReDoc would load from a CDN: not offered


async def test_ui_config_directory_and_queue_settings(app):
    client, _ = app
    cfg = (await client.get("/api/web/config", headers=ADMIN)).json()
    assert any(d["code"] == "resolved" and d["ko"] == "해결" for d in cfg["dispositions"])
    assert {"code": "lunch", "ko": "점심", "en": "Lunch"} in cfg["pause_reasons"]
    assert cfg["wallboard"]["lower_is_worse"] == ["service_level", "service_level_30m"]
    r = await client.post("/api/agents", headers=ADMIN, json={"id": "1001", "name": "김상담", "interface": "PJSIP/1001", "extension": "1001",
                                                               "skills": [{"queue": "sales", "penalty": 0}], "pin": "4321"})
    assert r.status_code == 201
    d = (await client.get("/api/web/directory", headers=ADMIN)).json()
    assert d["agents"] == [{"agent_id": "1001", "name": "김상담", "extension": "1001", "status": "logged_out"}]
    qs = (await client.get("/api/web/queue-settings", headers=ADMIN)).json()
    assert [q["name"] for q in qs] == ["sales"] and qs[0]["service_level_seconds"] == 20
    token = (await client.post("/api/auth/login", json={"agent_id": "1001", "pin": "4321"})).json()["token"]
    agent = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/web/directory", headers=agent)).status_code == 200
    assert (await client.get("/api/web/wallboard", headers=agent)).status_code == 403
    wb = (await client.get("/api/web/wallboard", headers=ADMIN)).json()
    assert wb["agents"][0]["agent_id"] == "1001" and wb["abandoned"] == []


async def test_follow_up_errors_are_clear(app):
    client, _ = app
    r = await client.post("/api/web/follow-ups", headers=ADMIN, json={"call_id": "nope", "number": "01012345678", "requested_time": "2026-12-23T10:00"})
    assert r.status_code == 404 and "no such call" in r.json()["detail"]
    r = await client.post("/api/web/follow-ups", headers=ADMIN, json={"call_id": "x", "number": "010-1234; DROP", "requested_time": "t"})
    assert r.status_code == 422


async def test_dialplan_version_check_diff_graph_and_rollback(app):
    client, plans = app
    listing = (await client.get("/api/dialplans", headers=ADMIN)).json()
    first = listing["active"]["main"]
    v = (await client.get(f"/api/dialplans/main/versions/{first[:10]}", headers=ADMIN)).json()
    assert v["hash"] == first and v["active"] is True and v["check"]["ok"] is True and "flow: main" in v["source"]
    main = plans / "main.yaml"
    main.write_text(main.read_text(encoding="utf-8").replace('label: {ko: "요금 문의", en: "Billing"}', 'label: {ko: "요금 안내", en: "Billing info"}'), encoding="utf-8")
    assert (await client.post("/api/dialplans/reload", headers=ADMIN)).json()["ok"] is True
    second = (await client.get("/api/dialplans", headers=ADMIN)).json()["active"]["main"]
    assert second != first
    diff = (await client.get(f"/api/dialplans/main/diff?a={first}&b={second}", headers=ADMIN)).json()["diff"]
    assert '-    label: {ko: "요금 문의", en: "Billing"}' in diff and '+    label: {ko: "요금 안내", en: "Billing info"}' in diff
    assert (await client.get("/api/dialplans/main/diff?a=zzzzzz&b=123456", headers=ADMIN)).status_code == 422
    assert (await client.get("/api/dialplans/main/versions/abcdef0123", headers=ADMIN)).status_code == 404
    if shutil.which("dot"):
        svg = await client.get(f"/api/dialplans/main/graph.svg?hash={first}", headers=ADMIN)
        assert svg.status_code == 200 and svg.headers["content-type"] == "image/svg+xml"
        assert "<svg" in svg.text and "요금 문의" in svg.text  # the journey labels, in Korean
        current = await client.get("/api/dialplans/main/graph.svg", headers=ADMIN)
        assert "요금 안내" in current.text
    r = await client.post("/api/dialplans/main/rollback", headers=ADMIN, json={"hash": first})
    assert r.status_code == 200 and (await client.get("/api/dialplans", headers=ADMIN)).json()["active"]["main"] == first


async def test_a_supervisor_scoped_to_queues_reads_only_their_wallboard(app):
    client, _ = app
    for q in ("sales", "billing"):
        assert (await client.put(f"/api/queues/{q}/settings", headers=ADMIN, json={})).status_code == 200
    key = (await client.post("/api/api-keys", headers=ADMIN, json={"name": "sales wallboard", "role": "supervisor", "queues": ["sales"]})).json()["key"]
    everything = (await client.get("/api/web/wallboard", headers=ADMIN)).json()
    assert {q["queue"] for q in everything["queues"]} >= {"sales", "billing"}
    scoped = (await client.get("/api/web/wallboard", headers={"Authorization": f"Bearer {key}"})).json()
    assert [q["queue"] for q in scoped["queues"]] == ["sales"]


async def test_a_scoped_supervisor_sees_only_the_agents_of_its_queues_and_teams(app):
    """Issue 11: the wallboard's agent grid follows the queue and team scopes (auth/scope.py)."""
    client, _ = app
    for aid, queue, team in (("2001", "sales", "A"), ("2002", "billing", "B"), ("2003", "sales", "B")):
        r = await client.post("/api/agents", headers=ADMIN, json={
            "id": aid, "name": f"상담 {aid}", "interface": f"Local/{aid}@agents/n", "team": team,
            "skills": [{"queue": queue, "penalty": 0}]})
        assert r.status_code == 201, r.text
    ids = lambda board: sorted(a["agent_id"] for a in board["agents"])  # noqa: E731
    assert ids((await client.get("/api/web/wallboard", headers=ADMIN)).json()) == ["2001", "2002", "2003"]
    for body, expected in (({"queues": ["sales"]}, ["2001", "2003"]), ({"queues": ["sales"], "teams": ["B"]}, ["2003"])):
        r = await client.post("/api/users", headers=ADMIN, json={"id": "sup-" + "-".join(expected), "name": "S",
                                                                 "role": "supervisor", "password": "a-long-password-1", **body})
        assert r.status_code == 201, r.text
        login = await client.post("/api/auth/token", json={"username": r.json()["id"], "password": "a-long-password-1"})
        assert login.status_code == 200, login.text
        token = login.json()["access_token"]
        board = (await client.get("/api/web/wallboard", headers={"Authorization": f"Bearer {token}"})).json()
        assert ids(board) == expected
