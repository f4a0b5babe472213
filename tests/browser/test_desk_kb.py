"""The desk's knowledge-base panel in a real browser (issue 17): a caller chooses "card payment
→ refund" in the shipped IVR; the panel beside the pop shows the refund article first with the
reason; the agent acknowledges the shipped notice, opens the article and marks it helpful; searches in Korean and in English; opens the
refund call script and ticks its steps — and the call's record on the server shows each."""

from __future__ import annotations

from tests.browser.conftest import sign_in
from tests.browser.test_desk_and_wallboard import text, wait_text
from tests.e2e.conftest import eventually, expect_prompt, press_when_listening

CALLER = "01055556666"


async def test_kb_panel_suggests_searches_marks_helpful_and_ticks_script_steps(server, open_tab):
    s, pbx = server, server.pbx
    tok = await s.create_agent("1001", "김상담", ["billing"])
    agent = await open_tab("agent-kb")
    await sign_in(agent, "1001", "4321")
    page = agent.page
    await wait_text(agent, "#kb", "통화가 오면 추천 문서가 여기에 표시됩니다")
    # the notice board: the shipped notice waits for this agent's acknowledgement
    await page.wait_for_selector("#kb-notices li")
    notice_id = int(await page.locator("#kb-notices li").first.get_attribute("data-notice"))
    await page.click(f'#kb-notices button[data-ack="{notice_id}"]')
    await page.wait_for_selector(f'#kb-notices li[data-notice="{notice_id}"]', state="detached")
    board = await s.api("GET", "/api/kb/notices", token=tok, expect=200)
    assert next(n for n in board if n["id"] == notice_id)["acknowledged_at"]
    await page.click("#btn-login")
    await wait_text(agent, "#my-state", "대기")
    await eventually(lambda: "Local/1001@agents/n" in pbx.queues["billing"].members, what="1001 in billing")
    phone = pbx.agent("1001", manual=True)

    call = await pbx.dial(CALLER, name="박고객", exten="15881234", context="ivr-in")
    await expect_prompt(call, "main_menu", timeout=10)
    await press_when_listening(call, "1")  # billing
    await expect_prompt(call, "billing_menu")
    await press_when_listening(call, "3")  # card payment refund
    await call.wait_for_queue("billing", timeout=10)
    await phone.wait_ringing()

    # the suggestions beside the pop: the refund article first, with why
    await page.wait_for_selector("#kb-suggestions li", timeout=10_000)
    first = page.locator("#kb-suggestions li").first
    assert await first.get_attribute("data-slug") == "refund-procedure"
    assert (await first.locator(".kb-because").text_content()).startswith("추천 이유: IVR 의도 = refund")
    await phone.answer()
    await wait_text(agent, "#pop-name", "박고객")
    call_id = next(c for c in s.cti.state.calls.values() if c.caller_num == CALLER).id
    article_id = int(await first.get_attribute("data-article"))

    # open it and mark it helpful on the call
    await first.locator("a").click()
    await wait_text(agent, "#kb-article-title", "환불")
    await page.click(f'#kb-article button[data-helpful="{article_id}"]')
    await wait_text(agent, "#kb-helpful-count", "도움됨 1회")
    assert await page.locator(f'#kb-suggestions button[data-helpful="{article_id}"]').is_disabled()
    await agent.shot("desk-kb-article")

    # search in Korean: an inflected sentence finds the refund article, highlighted
    await page.fill("#kb-q", "환불해주세요")
    await page.press("#kb-q", "Enter")
    await page.wait_for_selector("#kb-results li")
    assert await page.locator("#kb-results li").first.get_attribute("data-slug") == "refund-procedure"
    assert await page.locator("#kb-results li mark").count() > 0
    # and in English, restricted to English articles
    await page.fill("#kb-q", "How do I get a refund?")
    await page.select_option("#kb-lang", "en")
    await page.click("#kb-search button[type=submit]")
    await wait_text(agent, "#kb-results li", "refund")
    slugs = await page.eval_on_selector_all("#kb-results li", "els => els.map(e => e.dataset.slug)")
    assert slugs[0] == "refund-procedure-en" and all(x.endswith("-en") for x in slugs), slugs

    # the refund call script: open it from a search and tick two steps
    await page.select_option("#kb-lang", "")
    await page.fill("#kb-q", "환불 상담 스크립트")
    await page.press("#kb-q", "Enter")
    await page.wait_for_selector('#kb-results li[data-slug="refund-call-script"]')
    await page.click('#kb-results li[data-slug="refund-call-script"] a')
    await wait_text(agent, "#kb-article-title", "스크립트")
    await page.check('#kb-article input[data-step="greeting"]')
    await page.wait_for_selector('#kb-article li.done input[data-step="greeting"]')
    await page.check('#kb-article input[data-step="verification"]')
    await page.wait_for_selector('#kb-article li.done input[data-step="verification"]')
    await agent.shot("desk-kb-script")

    # the server kept all of it on the call's record
    record = await s.api("GET", f"/api/kb/calls/{call_id}", token=tok, expect=200)
    assert {(a["article_id"], a["kind"]) for a in record["articles"]} == {(article_id, "used"), (article_id, "helpful")}
    assert all(a["suggested"] for a in record["articles"])
    assert sorted(t["step"] for t in record["script_ticks"]) == ["greeting", "verification"]
    article = await s.api("GET", f"/api/kb/articles/{article_id}", token=tok, expect=200)
    assert article["helpful_count"] == 1

    await page.click("#kb-close")
    assert await page.locator("#kb-article").count() == 0
    assert "지식 검색" in await text(agent, "#kb")
    await call.hangup()
