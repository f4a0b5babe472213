"""The /api/kb edge: auth, permissions, clear 4xx answers, highlights in search results."""

import httpx
import pytest
from fastapi import FastAPI

from api.auth import Authenticator
from kb.routes import router

pytestmark = pytest.mark.db

TOKENS = {"agent-tok": "agent:1001", "sup-tok": "supervisor"}


@pytest.fixture
async def client(sample_kb):
    app = FastAPI()
    app.include_router(router)
    app.state.kb = sample_kb
    app.state.authenticator = Authenticator("k", TOKENS)
    pops = {"c-1": {"queue": "billing", "ivr": {"path": ["billing_menu"], "agent": {"intent": "refund"}}}}
    sample_kb.pops = pops.get
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://kb") as c:
        yield c


def h(tok):
    return {"Authorization": f"Bearer {tok}"}


async def test_search_endpoint(client):
    r = await client.get("/api/kb/search", params={"q": "환불해주세요"}, headers=h("agent-tok"))
    assert r.status_code == 200
    body = r.json()
    assert body["terms"] == ["환불"] and body["results"][0]["slug"] == "refund-procedure"
    assert "<mark>환불</mark>" in body["results"][0]["highlights"]["title"]
    r = await client.get("/api/kb/search", params={"q": "환불", "queue": "billing", "limit": 1}, headers=h("agent-tok"))
    assert [x["slug"] for x in r.json()["results"]] == ["refund-procedure"] and r.json()["total"] == 2
    assert (await client.get("/api/kb/search", params={"q": "환불"})).status_code == 401
    assert (await client.get("/api/kb/search", params={"q": "x", "limit": 0}, headers=h("agent-tok"))).status_code == 422
    assert (await client.get("/api/kb/search", params={"q": "x", "status": "bogus"}, headers=h("agent-tok"))).status_code == 422


async def test_propose_review_publish_over_http(client):
    new = {"slug": "roaming", "title": "로밍 요금", "body": "하루 1만 원", "queues": ["billing"]}
    r = await client.post("/api/kb/articles", json=new, headers=h("agent-tok"))
    assert r.status_code == 201, r.text
    aid = r.json()["id"]
    assert (await client.post("/api/kb/articles", json=new, headers=h("agent-tok"))).status_code == 409
    assert (await client.post("/api/kb/articles", json={**new, "slug": "x", "colour": 1}, headers=h("agent-tok"))).status_code == 422
    r = await client.patch(f"/api/kb/articles/{aid}", json={"body": "하루 1만 1천 원", "comment": "인상"}, headers=h("agent-tok"))
    assert r.json()["version"] == 2
    assert (await client.post(f"/api/kb/articles/{aid}/status", json={"status": "published"}, headers=h("agent-tok"))).status_code == 403
    assert (await client.post(f"/api/kb/articles/{aid}/status", json={"status": "published"}, headers=h("sup-tok"))).json()["status"] == "published"
    d = (await client.get(f"/api/kb/articles/{aid}/diff", params={"from": 1, "to": 2}, headers=h("agent-tok"))).json()
    assert "+하루 1만 1천 원" in d["diff"]
    assert (await client.post(f"/api/kb/articles/{aid}/rollback", json={"version": 1}, headers=h("sup-tok"))).json()["version"] == 3
    assert len((await client.get(f"/api/kb/articles/{aid}/versions", headers=h("agent-tok"))).json()) == 3
    assert (await client.get("/api/kb/articles/9999", headers=h("agent-tok"))).status_code == 404
    # attachment: raw body, content type from the header
    r = await client.post(f"/api/kb/articles/{aid}/attachments", params={"filename": "요금표.pdf"}, content=b"%PDF-1.4",
                          headers=h("agent-tok") | {"Content-Type": "application/pdf"})
    assert r.status_code == 201, r.text
    got = await client.get(f"/api/kb/attachments/{r.json()['id']}", headers=h("agent-tok"))
    assert got.content == b"%PDF-1.4" and got.headers["content-type"] == "application/pdf"
    assert "UTF-8''%EC%9A%94" in got.headers["content-disposition"]
    # notice board: the publish is on it, the agent acknowledges
    board = (await client.get("/api/kb/notices", headers=h("agent-tok"))).json()
    assert board[0]["title"] == "로밍 요금"
    assert (await client.post(f"/api/kb/notices/{board[0]['id']}/ack", headers=h("agent-tok"))).status_code == 200


async def test_call_suggestions_feedback_ticks_and_reports(client, sample_kb):
    r = await client.get("/api/kb/calls/c-1/suggestions", headers=h("agent-tok"))
    sugg = r.json()["suggestions"]
    assert sugg[0]["slug"] == "refund-procedure" and sugg[0]["because"]["en"].startswith("suggested because: IVR intent = refund")
    assert (await client.get("/api/kb/calls/nope/suggestions", headers=h("agent-tok"))).status_code == 404
    r = await client.post("/api/kb/calls/c-1/feedback", json={"article_id": sugg[0]["id"], "kind": "helpful", "suggested": True},
                          headers=h("agent-tok"))
    assert r.json()["helpful_count"] == 1
    assert (await client.post("/api/kb/calls/c-1/feedback", json={"article_id": 9999}, headers=h("agent-tok"))).status_code == 404
    script = (await sample_kb.repository.by_slug("refund-call-script")).id
    r = await client.post("/api/kb/calls/c-1/ticks", json={"article_id": script, "step": "greeting"}, headers=h("agent-tok"))
    assert r.json()["script_ticks"][0]["step"] == "greeting"
    rec = (await client.get("/api/kb/calls/c-1", headers=h("agent-tok"))).json()
    assert {a["kind"] for a in rec["articles"]} == {"used", "helpful"} and rec["articles"][0]["suggested"] is True
    assert (await client.get("/api/kb/reports/gaps", headers=h("agent-tok"))).status_code == 403
    assert (await client.get("/api/kb/reports/gaps", headers=h("sup-tok"))).json()["calls_with_disposition"] == 0
    assert (await client.get("/api/kb/reports/usage", headers=h("sup-tok"))).json()[0]["slug"] == "refund-procedure"
    r = await client.post("/api/kb/suggest", json={"intent": "tech:internet", "queue": "tech"}, headers=h("agent-tok"))
    assert r.json()[0]["slug"] == "internet-outage"
    assert (await client.post("/api/kb/suggest", json={"path": "billing_menu"}, headers=h("agent-tok"))).status_code == 422


async def test_synonym_editing_needs_a_reviewer(client):
    assert (await client.post("/api/kb/synonyms", json={"terms": ["환불", "페이백"]}, headers=h("agent-tok"))).status_code == 403
    r = await client.post("/api/kb/synonyms", json={"terms": ["환불", "페이백"]}, headers=h("sup-tok"))
    assert r.status_code == 201
    gid = r.json()["id"]
    assert (await client.put(f"/api/kb/synonyms/{gid}", json={"terms": ["x"]}, headers=h("sup-tok"))).status_code == 422
    assert (await client.delete(f"/api/kb/synonyms/{gid}", headers=h("sup-tok"))).status_code == 204
    assert (await client.delete(f"/api/kb/synonyms/{gid}", headers=h("sup-tok"))).status_code == 404


async def test_proposals_over_http(client, sample_kb):
    art = (await sample_kb.repository.by_slug("address-change")).id
    assert (await client.patch(f"/api/kb/articles/{art}", json={"body": "x"}, headers=h("agent-tok"))).status_code == 403
    r = await client.post(f"/api/kb/articles/{art}/proposals", json={"body": "새 본문", "comment": "갱신"}, headers=h("agent-tok"))
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    assert [p["id"] for p in (await client.get("/api/kb/proposals", headers=h("sup-tok"))).json()] == [pid]
    assert (await client.post(f"/api/kb/proposals/{pid}/decision", json={"accept": True}, headers=h("agent-tok"))).status_code == 403
    r = await client.post(f"/api/kb/proposals/{pid}/decision", json={"accept": True}, headers=h("sup-tok"))
    assert r.json()["article"]["body"] == "새 본문"
    assert (await client.post(f"/api/kb/proposals/{pid}/decision", json={"accept": False}, headers=h("sup-tok"))).status_code == 409


async def test_rules_endpoints(client, sample_kb, tmp_path):
    r = await client.get("/api/kb/rules", headers=h("agent-tok"))
    assert r.status_code == 200 and r.json()["rules"][0]["name"] == "ivr-intent"
    assert (await client.post("/api/kb/rules/reload", headers=h("agent-tok"))).status_code == 403
    f = tmp_path / "rules.yaml"
    f.write_text("rules: []\n", encoding="utf-8")
    sample_kb.rules_file = f
    r = await client.post("/api/kb/rules/reload", headers=h("sup-tok"))
    assert r.status_code == 422 and r.json()["problems"] == [f"{f}:1:8: 'rules' must be a non-empty list"]
