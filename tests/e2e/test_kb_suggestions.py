"""Knowledge base end to end: a caller chooses "card payment → refund" in the shipped `main`
IVR (billing menu, 3); the agent's pop carries the refund article first and says why; the agent
marks it helpful on the call; the article's count, the call's record and the gaps report show it."""

from __future__ import annotations

from tests.e2e.conftest import eventually, expect_prompt, press_when_listening

CALLER = "01055556666"


async def test_refund_call_pops_the_refund_article_first_and_the_helpful_mark_counts(server):
    s = server
    pbx = s.pbx
    tok = await s.create_agent("1001", "김상담", ["billing"])
    await s.api("POST", "/api/agents/1001/login", token=tok, expect=200)
    await eventually(lambda: "Local/1001@agents/n" in pbx.queues["billing"].members, what="1001 in billing")
    desk = await s.desk(tok)
    agent = pbx.agent("1001", manual=True)
    # the shipped sample knowledge base was loaded on first start
    found = await s.api("GET", "/api/kb/search", token=tok, params={"q": "환불해주세요"}, expect=200)
    assert found["results"][0]["slug"] == "refund-procedure"

    call = await pbx.dial(CALLER, name="박고객", exten="15881234", context="ivr-in")
    await expect_prompt(call, "main_menu", timeout=10)
    await press_when_listening(call, "1")  # billing
    await expect_prompt(call, "billing_menu")
    await press_when_listening(call, "3")  # card payment refund
    await call.wait_for_queue("billing", timeout=10)

    await agent.wait_ringing()
    pop = (await desk.wait_for("call.ringing"))["payload"]
    call_id = pop["call_id"]
    if not pop.get("kb"):  # the preload (and its enrichers) raced the ring: the update carries it
        pop = (await desk.wait_for("call.updated", call_id=call_id))["payload"]
    assert pop["ivr"]["agent"]["intent"] == "refund"
    kb = pop["kb"]
    assert kb["context"]["intent"] == "refund" and kb["context"]["queue"] == "billing"
    first = kb["suggestions"][0]
    assert first["slug"] == "refund-procedure", [x["slug"] for x in kb["suggestions"]]
    assert first["because"]["en"] == "suggested because: IVR intent = refund; IVR path = billing_menu; queue = billing"
    assert first["because"]["ko"].startswith("추천 이유: IVR 의도 = refund")
    assert len(kb["suggestions"]) == 3
    # the same over REST, from the live call
    again = await s.api("GET", f"/api/kb/calls/{call_id}/suggestions", token=tok, expect=200)
    assert again["suggestions"][0]["slug"] == "refund-procedure"

    await agent.answer()
    await desk.wait_for("call.answered", call_id=call_id)
    marked = await s.api("POST", f"/api/kb/calls/{call_id}/feedback", token=tok,  # "suggested" comes from the pop
                         json={"article_id": first["id"], "kind": "helpful"}, expect=200)
    assert marked["helpful_count"] == 1 and marked["recorded"] == ["used", "helpful"]
    await call.wait(2)
    await call.hangup()
    await desk.wait_for("call.ended", call_id=call_id)
    await s.api("POST", f"/api/calls/{call_id}/disposition", token=tok, json={"disposition": "refund"}, expect=200)

    # the count feeds the article, the call record and the reports
    article = await s.api("GET", f"/api/kb/articles/{first['id']}", token=tok, expect=200)
    assert article["helpful_count"] == 1 and article["used_count"] == 1
    record = await s.api("GET", f"/api/kb/calls/{call_id}", token=tok, expect=200)
    assert {(a["article_id"], a["kind"], a["suggested"]) for a in record["articles"]} == {
        (first["id"], "used", True), (first["id"], "helpful", True)}

    async def stored_disposition():
        row = await s.cti.repository.get_call(call_id)
        return row and row.get("disposition") == "refund"

    for _ in range(300):
        if await stored_disposition():
            break
        await call.wait(1)
    gaps = await s.api("GET", "/api/kb/reports/gaps", expect=200)
    assert gaps["calls_with_disposition"] == 1 and gaps["without_helpful_article"] == 0
    usage = await s.api("GET", "/api/kb/reports/usage", expect=200)
    assert usage[0]["slug"] == "refund-procedure" and usage[0]["helpful_count"] == 1
